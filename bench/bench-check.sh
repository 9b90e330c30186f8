#!/usr/bin/env bash
# Check benchmark: on one metadata-heavy kernel-written image (default 400,000
# files and two snapshots, made by make-metadata-image.sh), times in the same
# run
#   btk check   vs  btrfs check (original mode)  vs  btrfs check --mode=lowmem
# with the page cache warm before every run (btrfs-progs drops the image from
# the cache when it closes it). btk and the original mode take turns, 3 each
# (RUNS); lowmem runs LOWMEM_RUNS times (default 1, it is slow). Prints the
# median wall time, CPU time (user+system: what counts when other work shares
# the machine), peak RSS, the ratios of the medians and the wall ratio of
# each turn. Both tools must find no error.
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

# Read twice: the second pass also marks the pages active, so that neither
# tool pays for moving them between the kernel's page lists (the first read
# after a single cat did, and its time varied with it).
warm() { cat "$img" >/dev/null; cat "$img" >/dev/null; }
# one NAME CMD... -> "secs rss_kib cpu_secs exit"
one() {
    local name=$1 rc=0
    shift
    warm
    /usr/bin/time -f "%e %M %U %S" -o "$tmp/time" "$@" >"$tmp/$name.out" 2>&1 || rc=$?
    tail -1 "$tmp/time" | awk -v rc=$rc '{printf "%s %s %.2f %s\n", $1, $2, $3 + $4, rc}'
}
# pick FILE -> the median line (by time) of FILE's "secs rss_kib cpu_secs exit" lines
pick() {
    if [ -s "$1" ]; then sort -n "$1" | sed -n "$((($(wc -l <"$1") + 1) / 2))p"; else echo "0 0 0 -"; fi
}
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.1f}x' if b>0 else 'inf')" "$1" "$2"; }

# btk and btrfs check (original) take turns, so that both see the same
# machine (on a shared machine its speed drifts over a minute); each ratio
# is also taken per turn.
: >"$tmp/btk.runs"
: >"$tmp/orig.runs"
: >"$tmp/ratios"
for i in $(seq 1 "$runs"); do
    one btk "$bin/btk-check" "$img" >>"$tmp/btk.runs"
    one orig btrfs check --readonly "$img" >>"$tmp/orig.runs"
    python3 -c "import sys; print(float(sys.argv[2].split()[0]) / float(sys.argv[1].split()[0]))" \
        "$(tail -1 "$tmp/btk.runs")" "$(tail -1 "$tmp/orig.runs")" >>"$tmp/ratios"
done
read -r b_s b_m b_c b_rc < <(pick "$tmp/btk.runs")
read -r o_s o_m o_c o_rc < <(pick "$tmp/orig.runs")
: >"$tmp/lowmem.runs"
for i in $(seq 1 "$lowmem_runs"); do one lowmem btrfs check --readonly --mode=lowmem "$img" >>"$tmp/lowmem.runs"; done
read -r l_s l_m l_c l_rc < <(pick "$tmp/lowmem.runs")
meta=$(grep -o 'checked [0-9]* tree blocks' "$tmp/btk.out" || true)

echo "image: $img ($n files, 2 snapshots; $meta), page cache warm, median of $runs"
printf '%-28s %8s %8s %12s %6s\n' tool "wall s" "CPU s" "peak RSS" exit
printf '%-28s %8s %8s %8s MiB %6s\n' "btk check" "$b_s" "$b_c" $((b_m / 1024)) "$b_rc"
printf '%-28s %8s %8s %8s MiB %6s\n' "btrfs check (original)" "$o_s" "$o_c" $((o_m / 1024)) "$o_rc"
[ "$lowmem_runs" -gt 0 ] && printf '%-28s %8s %8s %8s MiB %6s\n' "btrfs check --mode=lowmem" "$l_s" "$l_c" $((l_m / 1024)) "$l_rc"
lm() {  # lm TEXT: ", TEXT" when lowmem ran
    if [ "$lowmem_runs" -gt 0 ]; then echo ", $1"; fi
}
echo "speed (wall): $(ratio "$o_s" "$b_s") faster than original$(lm "$(ratio "$l_s" "$b_s") faster than lowmem")"
echo "wall ratio to the original per turn: $(sort -n "$tmp/ratios" | awk '{printf "%s%.1fx", (NR > 1 ? " " : ""), $1}')"
echo "speed (CPU):  $(ratio "$o_c" "$b_c") less than original$(lm "$(ratio "$l_c" "$b_c") less than lowmem")"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "memory: $(ratio "$o_m" "$b_m") less than original$(lm "$(ratio "$l_m" "$b_m") less than lowmem")"
[ "$b_rc" = 0 ] && [ "$o_rc" = 0 ] || { echo "a check found errors:"; tail -5 "$tmp/btk.out" "$tmp/orig.out"; exit 1; }
