#!/usr/bin/env bash
# Golden fixtures (fixtures/images/<case>): btk's dump-tree and dump-super -f
# must equal btrfs-progs' saved output byte for byte, and (as root) a full
# restore must equal the manifest of the kernel's read-only mount. Needs
# neither btrfs-progs nor a mount for the dump comparisons.
set -uo pipefail
bin=${1:?usage: test-fixtures.sh CMDS_DIR}
bin=$(cd "$bin" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/scratch.sh"
tmp=$(mktemp -d /tmp/btk-fixtures-test.XXXXXX)
trap 'scratch_umount "$tmp"; rm -rf "$tmp"' EXIT
out=$tmp/out
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ] && command -v mkfs.btrfs >/dev/null; then
    out=$(scratch_mount "$tmp")/out
fi
for d in "$top"/fixtures/images/*/; do
    c=$(basename "$d")
    xz -dc "$d/image.raw.xz" >"$tmp/image.raw" || { echo "FAIL fixture-$c: cannot decompress"; continue; }
    (cd "$tmp" && "$bin/btk-inspect" dump-tree image.raw >dt.txt 2>dt.err)
    if xz -dc "$d/dump-tree.txt.xz" | cmp -s - "$tmp/dt.txt"; then
        echo "PASS fixture-$c-dump-tree"
    else
        echo "FAIL fixture-$c-dump-tree"; xz -dc "$d/dump-tree.txt.xz" | diff - "$tmp/dt.txt" | head -10
    fi
    (cd "$tmp" && "$bin/btk-inspect" dump-super -f image.raw >ds.txt 2>ds.err)
    if cmp -s "$d/dump-super.txt" "$tmp/ds.txt"; then
        echo "PASS fixture-$c-dump-super"
    else
        echo "FAIL fixture-$c-dump-super"; diff "$d/dump-super.txt" "$tmp/ds.txt" | head -10
    fi
    if [ "$(id -u)" = 0 ]; then
        rm -rf "$out"
        "$bin/btk-restore" -s -x -m -S "$tmp/image.raw" "$out" >/dev/null 2>"$tmp/r.err"
        python3 "$top/tests/tools/manifest.py" "$out" >"$tmp/m.txt"
        if cmp -s "$d/manifest.txt" "$tmp/m.txt"; then
            echo "PASS fixture-$c-restore"
        else
            echo "FAIL fixture-$c-restore"; diff "$d/manifest.txt" "$tmp/m.txt" | head -10; head -3 "$tmp/r.err"
        fi
    else
        echo "SKIP fixture-$c-restore: needs root (owners, device nodes, trusted xattrs)"
    fi
    rm -f "$tmp/image.raw"
done
