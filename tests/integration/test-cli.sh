#!/usr/bin/env bash
# The command line: btk dispatches to btk-NAME; bad input gets one clear error
# line and a non-zero exit; --help works everywhere.
set -uo pipefail
bin=${1:?usage: test-cli.sh CMDS_DIR}
bin=$(cd "$bin" && pwd)
tmp=$(mktemp -d /tmp/btk-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
img=$tmp/img
if command -v mkfs.btrfs >/dev/null; then
    truncate -s 128M "$img" && mkfs.btrfs -q -f "$img" >/dev/null
else
    xz -dc "$(dirname "$0")/../../fixtures/images/special-files/image.raw.xz" >"$img"
fi

check() {  # check NAME EXPECTED_RC EXPECTED_STDERR_LINES CMD...
    local name=$1 want_rc=$2 want_lines=$3; shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" != "$want_rc" ]; then
        echo "FAIL cli-$name: exit $rc, expected $want_rc ($(head -2 "$tmp/err" | tr '\n' ' '))"
    elif [ "$want_lines" != any ] && [ "$lines" != "$want_lines" ]; then
        echo "FAIL cli-$name: $lines stderr lines, expected $want_lines: $(head -3 "$tmp/err" | tr '\n' ' ')"
    else
        echo "PASS cli-$name"
    fi
}

check dispatch 0 0 "$bin/btk" inspect dump-super "$img"
if cmp -s "$tmp/out" <("$bin/btk-inspect" dump-super "$img"); then echo "PASS cli-dispatch-same-output"; else echo "FAIL cli-dispatch-same-output"; fi
check unknown-command 127 1 "$bin/btk" frobnicate
check no-command 2 any "$bin/btk"
check help 0 0 "$bin/btk" --help
for b in inspect file restore check mkfs; do check "help-$b" 0 0 "$bin/btk-$b" --help; done
check unknown-option 2 1 "$bin/btk-inspect" dump-tree --no-such-option "$img"
check missing-arg 2 1 "$bin/btk-inspect" dump-super
check bad-mirror 2 1 "$bin/btk-inspect" dump-super -s 7 "$img"
check missing-image 1 any "$bin/btk-inspect" dump-super "$tmp/none"
check missing-image-tree 1 any "$bin/btk-inspect" dump-tree "$tmp/none"
check missing-image-ls 2 1 "$bin/btk-file" ls "$tmp/none" /
check missing-image-restore 2 1 "$bin/btk-restore" "$tmp/none" "$tmp/out-dir"
check not-btrfs 2 1 "$bin/btk-file" ls /etc/hostname /
check restore-one-arg 2 1 "$bin/btk-restore" "$img"
check bad-subvol 2 1 "$bin/btk-restore" --subvol 999999 "$img" "$tmp/o"
