#!/usr/bin/env bash
# mkfs --rootdir speed and memory: btk mkfs against mkfs.btrfs on the same tree.
#
#   bench/bench-mkfs.sh CMDS_DIR [SOURCE_DIR] [SCRATCH_DIR]
#
# Copies SOURCE_DIR (default /usr/share) once into a scratch directory (so
# both tools read the same files, on the same filesystem as the images), warms
# the page cache, then runs each tool 3 times, alternating, into a fresh sparse
# image of the same size with the same features (the defaults of both: DUP
# metadata, single data, no-holes, free-space-tree). Reports the median wall
# time and peak RSS (/usr/bin/time -f %M) and the ratios, and checks both images
# with `btrfs check`. Set KEEP_SCRATCH=1 to keep the copy for the next run
# (pass the same SCRATCH_DIR).
set -uo pipefail
bin=${1:?usage: bench-mkfs.sh CMDS_DIR [SOURCE_DIR] [SCRATCH_DIR]}
source_dir=${2:-/usr/share}
scratch=${3:-}
size=${BENCH_IMAGE_SIZE:-4G}
runs=${BENCH_RUNS:-3}
command -v mkfs.btrfs >/dev/null || { echo "bench-mkfs: needs mkfs.btrfs"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-mkfs: needs /usr/bin/time"; exit 1; }
if [ -z "$scratch" ]; then scratch=$(mktemp -d /tmp/btk-bench-mkfs.XXXXXX); fi
mkdir -p "$scratch"
cleanup() {
    rm -f "$scratch"/*.img "$scratch"/time.*
    [ "${KEEP_SCRATCH:-0}" = 1 ] || rm -rf "$scratch"
}
trap cleanup EXIT
tree=$scratch/tree
if [ ! -d "$tree" ]; then
    echo "copying $source_dir to $tree ..."
    cp -a "$source_dir" "$tree" 2>/dev/null || true
fi
files=$(find "$tree" | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
echo "tree: $files paths, $((bytes >> 20)) MiB; image $size; $runs runs each; $(nproc) CPUs"
# Warm cache: every file read once.
find "$tree" -type f -print0 | xargs -0 cat >/dev/null 2>&1

declare -A times mems
run() {  # TOOL IMG
    local tool=$1 img=$2
    rm -f "$img"
    truncate -s "$size" "$img"
    local cmd
    if [ "$tool" = progs ]; then cmd=(mkfs.btrfs -q -f --rootdir "$tree" "$img")
    else cmd=("$bin/btk-mkfs" -q -f --rootdir "$tree" "$img"); fi
    if ! /usr/bin/time -f "%e %M" -o "$scratch/time.$tool" "${cmd[@]}" >/dev/null 2>"$scratch/err.$tool"; then
        echo "FAIL: $tool mkfs: $(tail -3 "$scratch/err.$tool")"; exit 1
    fi
    read -r t m <"$scratch/time.$tool"
    times[$tool]+="$t "
    mems[$tool]+="$m "
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for i in $(seq "$runs"); do
    run progs "$scratch/progs.img"
    run btk "$scratch/btk.img"
done
for tool in progs btk; do
    out=$(btrfs check "$scratch/$tool.img" 2>&1)
    if ! grep -q "no error found" <<<"$out"; then echo "FAIL: btrfs check of the $tool image:"; tail -5 <<<"$out"; exit 1; fi
done
pt=$(median <<<"${times[progs]}"); bt=$(median <<<"${times[btk]}")
pm=$(median <<<"${mems[progs]}"); bm=$(median <<<"${mems[btk]}")
printf '%-12s %10s %12s   (runs: %s)\n' tool "wall s" "peak RSS MB" "" 
printf '%-12s %10s %12s   (%s)\n' mkfs.btrfs "$pt" "$((pm / 1024))" "${times[progs]% }"
printf '%-12s %10s %12s   (%s)\n' "btk mkfs" "$bt" "$((bm / 1024))" "${times[btk]% }"
awk -v p="$pt" -v b="$bt" -v pm="$pm" -v bm="$bm" \
    'BEGIN{printf "speed-up %.1fx, memory %.2fx of mkfs.btrfs\n", p / b, bm / pm}'
echo "both images: btrfs check clean"
