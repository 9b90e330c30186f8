#!/usr/bin/env bash
# restore on hostile and damaged images:
#  1. directory entries renamed (checksums fixed) to "../../pwn", "..", "a/b":
#     nothing is written outside TARGETDIR, the names are counted as unsafe,
#     everything else is restored, exit status 1;
#  2. both copies of one fs-tree leaf destroyed: restore goes on, counts the
#     errors, exits 1, and every file it did restore equals the kernel's view.
set -uo pipefail
bin=${1:?usage: test-restore-hostile.sh CMDS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/../tools
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ] || ! command -v mkfs.btrfs >/dev/null; then
    echo "SKIP: *** hostile restore tests need root, loop devices and btrfs-progs ***"; exit 0
fi
tmp=$(mktemp -d /tmp/btk-hostile.XXXXXX)
mnt=$tmp/mnt && mkdir -p "$mnt"
trap 'mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$tmp"' EXIT

# 1. Unsafe names.
img=$tmp/names.img
truncate -s 128M "$img" && mkfs.btrfs -q -f "$img" >/dev/null && mount -o loop "$img" "$mnt"
mkdir -p "$mnt/sub/deeper"
echo payload >"$mnt/sub/deeper/QzUpUpPwn"   # becomes ../../pwn (9 bytes)
echo dots >"$mnt/sub/Qd"                    # becomes ..
echo slash >"$mnt/sub/aQb"                  # becomes a/b
echo fine >"$mnt/sub/normal-file"
umount "$mnt"
python3 "$tools/btrfs_patch.py" replace "$img" QzUpUpPwn ../../pwn >/dev/null &&
    python3 "$tools/btrfs_patch.py" replace "$img" Qd .. >/dev/null &&
    python3 "$tools/btrfs_patch.py" replace "$img" aQb a/b >/dev/null || echo "FAIL hostile-names: patching failed"
mkdir -p "$tmp/jail/target"
: >"$tmp/out.txt"; : >"$tmp/err.txt"
before=$(find "$tmp" -path "$tmp/jail/target" -prune -o -print | sort)
"$bin/btk-restore" -x -m -S "$img" "$tmp/jail/target" >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
after=$(find "$tmp" -path "$tmp/jail/target" -prune -o -print | sort)
if [ "$before" != "$after" ]; then
    echo "FAIL hostile-names: files appeared outside the target:"; diff <(echo "$before") <(echo "$after") | head
elif [ $rc -ne 1 ]; then
    echo "FAIL hostile-names: exit status $rc, expected 1"
elif ! grep -q "3 unsafe names" "$tmp/out.txt"; then
    echo "FAIL hostile-names: summary does not count 3 unsafe names: $(tail -1 "$tmp/out.txt")"
elif [ "$(cat "$tmp/jail/target/sub/normal-file" 2>/dev/null)" != fine ]; then
    echo "FAIL hostile-names: the normal file was not restored"
else
    echo "PASS hostile-names (3 unsafe names refused, nothing outside the target)"
fi

# 2. A destroyed leaf.
img=$tmp/leaf.img
truncate -s 256M "$img" && mkfs.btrfs -q -f -n 4096 "$img" >/dev/null && mount -o loop "$img" "$mnt"
python3 - "$mnt" <<'PY'
import os, sys
top = sys.argv[1]
for d in range(20):
    os.makedirs(f"{top}/d{d:02d}")
    for i in range(100):
        with open(f"{top}/d{d:02d}/f{i:03d}", "w") as f:
            f.write(f"file {d} {i}\n" * (i % 7 + 1))
PY
python3 "$tools/manifest.py" "$mnt" >"$tmp/kernel.txt"
umount "$mnt"
# Leaves that hold directory index items (restore walks DIR_INDEX, so losing
# one of them must cost files).
leaves=$(btrfs inspect-internal dump-tree -t 5 "$img" |
    awk '/^leaf / {leaf=$2} / DIR_INDEX / && leaf != last {print leaf; last=leaf}')
nleaves=$(echo "$leaves" | wc -l)
victim=$(echo "$leaves" | sed -n "$((nleaves / 2))p")
for phys in $(btrfs-map-logical -l "$victim" -b 4096 "$img" 2>/dev/null | awk '/physical/ {print $6}'); do
    python3 "$tools/btrfs_patch.py" smash "$img" $((phys + 200)) 64
done
"$bin/btk-restore" -x -m -S "$img" "$tmp/leaf-out" >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
python3 "$tools/manifest.py" "$tmp/leaf-out" >"$tmp/btk.txt"
extra=$(comm -13 <(sort "$tmp/kernel.txt") <(sort "$tmp/btk.txt") | grep -v -E '^\.	|^d[0-9]+	dir' | head -5)
got=$(grep -c '	reg	' "$tmp/btk.txt")
errors=$(sed -nE 's/.*; ([0-9]+) errors.*/\1/p' "$tmp/out.txt")
if [ $rc -ne 1 ]; then
    echo "FAIL damaged-leaf: exit status $rc, expected 1 ($(tail -1 "$tmp/out.txt"))"
elif [ "${errors:-0}" -lt 1 ]; then
    echo "FAIL damaged-leaf: no error counted: $(tail -1 "$tmp/out.txt")"
elif [ -n "$extra" ]; then
    echo "FAIL damaged-leaf: restored files differ from the kernel's view:"; echo "$extra"
elif [ "$got" -lt 1000 ]; then
    echo "FAIL damaged-leaf: only $got of 2000 files restored"
else
    echo "PASS damaged-leaf ($got of 2000 files restored, $errors errors counted, leaf $victim of $nleaves destroyed)"
fi
