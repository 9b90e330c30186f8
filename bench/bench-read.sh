#!/usr/bin/env bash
# Read-path benchmark: on one metadata-heavy kernel-written image, times
#   btk inspect dump-tree   vs  btrfs inspect-internal dump-tree   (output must be identical)
#   btk restore             vs  mount -o ro + cp -a + umount
# in the same run, page cache warm for both (the image is read once first).
# Prints wall time, peak RSS and the ratio for each pair.
# Usage: bench/bench-read.sh [BUILD_DIR] [NFILES]   (root, loop devices, btrfs-progs)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
n=${2:-320000}
bin=$build/cmds
work=${BENCH_DIR:-/tmp/btk-bench}
mkdir -p "$work"
img=$work/meta-$n.img
if [ ! -f "$img" ]; then
    echo "building $img with $n files (kernel, loop mount)..." >&2
    bash "$top/bench/make-metadata-image.sh" "$img" "$n"
fi
measure() {  # measure OUTFILE CMD... -> prints "secs rss_kb"
    local out=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$out" 2>"$work/stderr.txt" || {
        echo "command failed: $*" >&2; tail -5 "$work/stderr.txt" >&2; return 1; }
    cat "$work/time.txt"
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.1f}x' if b>0 else 'inf')" "$1" "$2"; }

# btrfs-progs drops the image from the page cache when it closes it
# (fadvise DONTNEED), so warm the cache before every timed run.
warm() { cat "$img" >/dev/null; }
meta=$(btrfs inspect-internal dump-tree -t root "$img" | awk '/bytes_used/ {s+=$NF} END {print s+0}')

echo "image: $img ($n files, 2 snapshots), page cache warm"
warm; read -r p_s p_m < <(measure "$work/progs.txt" btrfs inspect-internal dump-tree "$img")
warm; read -r b_s b_m < <(measure "$work/btk.txt" "$bin/btk-inspect" dump-tree "$img")
size=$(stat -c %s "$work/progs.txt")
if cmp -s "$work/progs.txt" "$work/btk.txt"; then same="identical"; else same="DIFFERENT"; fi
echo "dump-tree: btrfs-progs ${p_s}s ${p_m} KiB RSS | btk ${b_s}s ${b_m} KiB RSS | speedup $(ratio "$p_s" "$b_s") | output $((size / 1048576)) MiB, $same"

mnt=$work/mnt; mkdir -p "$mnt"
rm -rf "$work/cp" "$work/restore"
kernel_copy() { mount -o loop,ro "$img" "$mnt" && cp -a "$mnt" "$work/cp" && umount "$mnt"; }
warm; read -r k_s k_m < <(measure /dev/null bash -c "$(declare -f kernel_copy); img=$img mnt=$mnt work=$work kernel_copy")
warm; read -r r_s r_m < <(measure /dev/null "$bin/btk-restore" --snapshots --xattr --metadata --symlinks "$img" "$work/restore")
echo "restore: mount+cp -a ${k_s}s | btk restore ${r_s}s ${r_m} KiB RSS | speedup $(ratio "$k_s" "$r_s")"
rm -rf "$work/cp" "$work/restore"
[ "$same" = identical ]
