#!/bin/bash
# Builds the libFuzzer targets with clang (ASan+UBSan, own build directory)
# and runs them: fuzz-tree-block for a quarter of the time, fuzz-check for the
# rest. Seeds are made from mkfs.btrfs images and, when CORPUS_DIR holds the
# kernel-written corpus, from some of its images. The corpora grow in the
# build directory across runs. Crashing inputs land in BUILD/artifacts/; put
# each one (after fixing it) in tests/fuzz/regressions/<target>/, which every
# run replays first.
#
# Usage: run-fuzz.sh [SECONDS]      total fuzzing time (default 600)
#        run-fuzz.sh --smoke        replay the regressions, then 20 s in all
# Environment: FUZZ_BUILD (default BUILD_DIR=<top>/build-fuzz), CORPUS_DIR,
#              CXX (default clang++), FUZZ_JOBS (default 1: one worker).
# Prints PASS/FAIL/SKIP lines; exit status 1 when a target crashed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=600
smoke=0
case ${1:-} in
    --smoke) smoke=1; secs=20 ;;
    '') ;;
    *) secs=$1 ;;
esac
CXX=${CXX:-clang++}
if ! command -v "$CXX" >/dev/null || ! command -v clang >/dev/null; then
    echo "SKIP: *** fuzz: clang not installed ***"
    exit 0
fi
B=${FUZZ_BUILD:-$top/build-fuzz}
probe=$(mktemp -d /tmp/btk-fuzz-probe.XXXXXX)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cpp"
if ! "$CXX" -fsanitize=fuzzer,address "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
    echo "SKIP: *** fuzz: $CXX cannot build libFuzzer targets (install libclang-rt-dev): $(head -1 "$probe/err") ***"
    exit 0
fi
if [ ! -f "$B/build.ninja" ]; then
    CXX=$CXX meson setup "$B" "$top" -Dfuzzing=true -Dbuildtype=debugoptimized -Dwerror=false \
        -Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fsanitize=fuzzer-no-link \
        >"$probe/setup.log" 2>&1 || { echo "FAIL fuzz: meson setup"; tail -20 "$probe/setup.log"; exit 1; }
fi
if ! ninja -C "$B" -j"${FUZZ_JOBS:-1}" tests/fuzz/fuzz-tree-block tests/fuzz/fuzz-check tests/fuzz/fuzz-seed \
    >"$probe/build.log" 2>&1; then
    echo "FAIL fuzz: build"
    tail -30 "$probe/build.log"
    exit 1
fi
F=$B/tests/fuzz
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Seeds (once per build directory).
S=$B/fuzz-seeds
if [ ! -d "$S/check" ]; then
    mkdir -p "$S/check.tmp" "$S/tree-block.tmp"
    w=$(mktemp -d /tmp/btk-fuzz-seed.XXXXXX)
    if command -v mkfs.btrfs >/dev/null; then
        mkdir -p "$w/root/d"
        for i in $(seq 1 40); do head -c $((i * 500)) /dev/zero | tr '\0' 'x' >"$w/root/d/f$i"; done
        ln -s d/f1 "$w/root/link"
        n=0
        for opts in "-n 4096" "-n 4096 -R quota" "-n 16384 -R ^free-space-tree" "-n 4096 -M" "-n 4096 --csum xxhash"; do
            n=$((n + 1))
            truncate -s 128M "$w/img"
            # shellcheck disable=SC2086
            mkfs.btrfs -q -f $opts --rootdir "$w/root" "$w/img" >/dev/null 2>&1 &&
                "$F/fuzz-seed" "$w/img" "$S/check.tmp/mkfs-$n" "$S/tree-block.tmp" >/dev/null
            rm -f "$w/img"
        done
    fi
    for c in qgroups subvols reflink fsv1-space-cache deleted-snapshot-pending node4k; do
        [ -f "${CORPUS_DIR:-/nonexistent}/$c.img" ] &&
            "$F/fuzz-seed" "$CORPUS_DIR/$c.img" "$S/check.tmp/corpus-$c" "$S/tree-block.tmp" >/dev/null 2>&1
    done
    # Keep the inputs small (fast runs): at most 400 pages.
    find "$S/check.tmp" -type f -size +1600k -delete
    rm -rf "$w"
    mv "$S/tree-block.tmp" "$S/tree-block"
    mv "$S/check.tmp" "$S/check"
fi

rc=0
run_target() {  # run_target NAME SECONDS MAX_LEN
    local name=$1 t=$2 maxlen=$3 c=$B/fuzz-corpus/$1 reg=$here/regressions/$1 log=$B/fuzz-$1.log
    # The smoke run starts from the seeds alone (the long runs' corpus is large).
    [ $smoke = 1 ] && c=$B/fuzz-smoke/$1 && rm -rf "$c"
    mkdir -p "$c" "$B/artifacts/$1"
    # Regressions first: each must run cleanly.
    if ls "$reg"/* >/dev/null 2>&1; then
        if "$F/fuzz-$name" "$reg"/* >"$log.reg" 2>&1; then
            echo "PASS fuzz $name regressions ($(ls "$reg" | wc -l) inputs)"
        else
            echo "FAIL fuzz $name regressions"
            tail -30 "$log.reg"
            rc=1
        fi
    fi
    [ "$t" -gt 0 ] || return
    "$F/fuzz-$name" -max_total_time="$t" -max_len="$maxlen" -timeout=60 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$1/" "$c" "$S/$name" >"$log" 2>&1
    local r=$?
    local stats
    stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1)
    local execs
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
    if [ $r -eq 0 ]; then
        echo "PASS fuzz $name: ${t}s, ${execs:-?} execs, $stats"
    else
        echo "FAIL fuzz $name (exit $r): ${execs:-?} execs; see $log and $B/artifacts/$1/"
        grep -E 'ERROR: |SUMMARY: |runtime error' "$log" | head -5
        rc=1
    fi
}
tb=$((secs / 4))
run_target tree-block "$tb" 65536
run_target check $((secs - tb)) $((400 * 4100))
exit $rc
