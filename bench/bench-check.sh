#!/usr/bin/env bash
# Check benchmark: on one metadata-heavy kernel-written image (default 400,000
# files and two snapshots, made by make-metadata-image.sh), times in the same
# run
#   btk check   vs  btrfs check (original mode)  vs  btrfs check --mode=lowmem
# with the page cache warm before every run (btrfs-progs drops the image from
# the cache when it closes it). Median of 3 runs (lowmem: LOWMEM_RUNS, default
# 1, it is slow); prints wall time, CPU time (user+system: what counts when
# other work shares the machine), peak RSS and the ratios. Both tools must
# find no error.
# Usage: bench/bench-check.sh [BUILD_DIR] [NFILES]   (root, loop devices, btrfs-progs)
# Environment: BENCH_DIR (default /tmp/btk-bench), RUNS (3), LOWMEM_RUNS (1).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
n=${2:-400000}
bin=$build/cmds
work=${BENCH_DIR:-/tmp/btk-bench}
runs=${RUNS:-3}
lowmem_runs=${LOWMEM_RUNS:-1}
mkdir -p "$work"
img=$work/meta-$n.img
# Several people may run benchmarks here: one builds the image, the others wait.
exec 9>"$work/.build-$n.lock"
flock 9
if [ ! -f "$img" ]; then
    echo "building $img with $n files (kernel, loop mount)..." >&2
    bash "$top/bench/make-metadata-image.sh" "$img.tmp" "$n"
    mv "$img.tmp" "$img"
fi
flock -u 9
tmp=$(mktemp -d /tmp/btk-bench-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

warm() { cat "$img" >/dev/null; }
# one NAME CMD... -> "secs rss_kib cpu_secs exit"
one() {
    local name=$1 rc=0
    shift
    warm
    /usr/bin/time -f "%e %M %U %S" -o "$tmp/time" "$@" >"$tmp/$name.out" 2>&1 || rc=$?
    tail -1 "$tmp/time" | awk -v rc=$rc '{printf "%s %s %.2f %s\n", $1, $2, $3 + $4, rc}'
}
# median NAME RUNS CMD... -> "secs rss_kib cpu_secs exit" of the median run (by time)
median() {
    local name=$1 k=$2 i
    shift 2
    for i in $(seq 1 "$k"); do one "$name" "$@"; done | sort -n | sed -n "$(((k + 1) / 2))p"
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.1f}x' if b>0 else 'inf')" "$1" "$2"; }

read -r b_s b_m b_c b_rc < <(median btk "$runs" "$bin/btk-check" "$img")
read -r o_s o_m o_c o_rc < <(median orig "$runs" btrfs check --readonly "$img")
read -r l_s l_m l_c l_rc < <(median lowmem "$lowmem_runs" btrfs check --readonly --mode=lowmem "$img")
meta=$(grep -o 'checked [0-9]* tree blocks' "$tmp/btk.out" || true)

echo "image: $img ($n files, 2 snapshots; $meta), page cache warm, median of $runs"
printf '%-28s %8s %8s %12s %6s\n' tool "wall s" "CPU s" "peak RSS" exit
printf '%-28s %8s %8s %8s MiB %6s\n' "btk check" "$b_s" "$b_c" $((b_m / 1024)) "$b_rc"
printf '%-28s %8s %8s %8s MiB %6s\n' "btrfs check (original)" "$o_s" "$o_c" $((o_m / 1024)) "$o_rc"
printf '%-28s %8s %8s %8s MiB %6s\n' "btrfs check --mode=lowmem" "$l_s" "$l_c" $((l_m / 1024)) "$l_rc"
echo "speed (wall): $(ratio "$o_s" "$b_s") faster than original, $(ratio "$l_s" "$b_s") faster than lowmem"
echo "speed (CPU):  $(ratio "$o_c" "$b_c") less than original, $(ratio "$l_c" "$b_c") less than lowmem"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "memory: $(ratio "$o_m" "$b_m") less than original, $(ratio "$l_m" "$b_m") less than lowmem"
[ "$b_rc" = 0 ] && [ "$o_rc" = 0 ] || { echo "a check found errors:"; tail -5 "$tmp/btk.out" "$tmp/orig.out"; exit 1; }
