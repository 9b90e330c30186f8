#!/usr/bin/env bash
# Offline write benchmark: puts one host tree into an empty image
#   btk file put -r IMG TREE /dest              (offline, one transaction)
#   mount -o loop; cp -a TREE MNT/dest; umount  (the kernel path; umount
#                                                 includes writing it back)
# in the same run, on identical fresh images made by mkfs.btrfs, page cache
# warm for the source tree. Checks both results with btrfs check and compares
# the kernel's view of the btk image with the source tree. Median of RUNS.
# Usage: bench/bench-put.sh [BUILD_DIR] [TREE] [RUNS]
#   TREE defaults to /usr/share (here: 57,000 files, 770 MB of data).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
tree=${2:-/usr/share}
runs=${3:-3}
bin=$build/cmds
work=${BENCH_DIR:-/tmp/btk-bench-put}
mkdir -p "$work/mnt"
mnt=$work/mnt
trap 'mountpoint -q "$mnt" && umount "$mnt"; rm -f "$work"/*.img' EXIT
files=$(find "$tree" -xdev \( -type f -o -type l -o -type d \) | wc -l)
bytes=$(du -sb --apparent-size "$tree" | cut -f1)
echo "tree: $tree ($files entries, $((bytes / 1000000)) MB)"
fresh() { rm -f "$1"; truncate -s 8G "$1"; mkfs.btrfs -q -f "$1" >/dev/null; }
warm() { find "$tree" -xdev -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$work/btk.t"
: >"$work/kernel.t"
for r in $(seq "$runs"); do
    fresh "$work/btk.img"
    warm
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$bin/btk-file" put -r "$work/btk.img" "$tree" /dest
    cat "$work/time.txt" >>"$work/btk.t"
    fresh "$work/kernel.img"
    warm
    start=$(date +%s.%N)
    mount -o loop "$work/kernel.img" "$mnt"
    cp -a "$tree" "$mnt/dest"
    umount "$mnt"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')" >>"$work/kernel.t"
done
b=$(cut -d' ' -f1 "$work/btk.t" | median)
bm=$(cut -d' ' -f2 "$work/btk.t" | median)
k=$(median <"$work/kernel.t")
btrfs check "$work/btk.img" >/dev/null 2>&1 && bc="clean" || bc="ERRORS"
btrfs check "$work/kernel.img" >/dev/null 2>&1 && kc="clean" || kc="ERRORS"
mount -o loop,ro "$work/btk.img" "$mnt"
if diff -q <(python3 "$top/tests/tools/manifest.py" "$tree") <(python3 "$top/tests/tools/manifest.py" "$mnt/dest") >/dev/null; then
    same="equals the source"
else
    same="DIFFERS from the source"
fi
umount "$mnt"
echo "btk file put -r:        ${b}s (median of $runs), ${bm} KiB peak RSS, btrfs check $bc, kernel view $same"
echo "kernel cp -a + umount:  ${k}s (median of $runs), btrfs check $kc"
python3 -c "print(f'speedup: {$k / $b:.2f}x')"
