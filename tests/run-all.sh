#!/usr/bin/env bash
# Runs every test and ends with the line "N passed, N failed".
#
# Unit tests (doctest) run from the release and the ASan+UBSan builds.
# Integration scripts tests/integration/test-*.sh print PASS/FAIL/SKIP lines;
# each PASS and FAIL line counts. They get: $1 = directory of the btk binaries,
# and the environment variables below.
set -uo pipefail
top=${1:?usage: run-all.sh PROJECT_DIR}
cd "$top"
export BTK_TOP=$top
export BTK_BIN=$top/build/cmds
export BTK_ASAN_BIN=$top/build-asan/cmds
[ -x "$BTK_ASAN_BIN/btk-inspect" ] || BTK_ASAN_BIN=
export PEER_IMAGES=${PEER_IMAGES:-$(cd "$top/.." && pwd)/shared/peer-images}
export CORPUS_DIR=${CORPUS_DIR:-$top/build/corpus}
export LC_ALL=C

passed=0
failed=0
log_dir=$top/build/test-logs
mkdir -p "$log_dir"

count_doctest() {  # count_doctest NAME BINARY
    local name=$1 bin=$2 out
    if [ ! -x "$bin" ]; then
        echo "SKIP $name: $bin not built"
        return
    fi
    out=$("$bin" --no-colors=true 2>&1)
    local rc=$?
    local line
    line=$(grep -E '^\[doctest\] test cases:' <<<"$out" | tail -1)
    local p f
    p=$(sed -nE 's/.*\| *([0-9]+) passed.*/\1/p' <<<"$line")
    f=$(sed -nE 's/.*\| *([0-9]+) failed.*/\1/p' <<<"$line")
    p=${p:-0}
    f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    # UBSan reports and goes on: a report is a failure too.
    if grep -q 'runtime error:' <<<"$out" && [ "$f" = 0 ]; then
        grep 'runtime error:' <<<"$out" | head -5
        f=1
    fi
    [ "$f" != 0 ] && { echo "$out" | tail -40; echo "FAIL $name"; }
    echo "$name: $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
}

count_doctest unit "$top/build/tests/unit-tests"
if [ -n "$BTK_ASAN_BIN" ]; then
    count_doctest unit-asan "$top/build-asan/tests/unit-tests"
fi

# Kernel-written corpus (needs root and loop devices).
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ] && command -v mkfs.btrfs >/dev/null; then
    mkdir -p "$CORPUS_DIR"
    echo "building kernel-written corpus in $CORPUS_DIR" >&2
    if ! bash "$top/tests/corpus/make-corpus.sh" "$CORPUS_DIR" >"$log_dir/corpus.log" 2>&1; then
        echo "FAIL corpus generation (see $log_dir/corpus.log)"
        tail -20 "$log_dir/corpus.log"
        failed=$((failed + 1))
    fi
else
    echo "SKIP: *** kernel corpus not built: needs root, loop devices and btrfs-progs ***"
fi

for t in "$top"/tests/integration/test-*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    echo "== $name" >&2
    out_file=$log_dir/$name.log
    start=$(date +%s)
    bash "$t" "$BTK_BIN" >"$out_file" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    p=$(grep -c '^PASS' "$out_file")
    f=$(grep -c '^FAIL' "$out_file")
    grep -E '^(FAIL|SKIP)' "$out_file" | head -50
    if [ $rc -ne 0 ] && [ "$f" = 0 ]; then
        echo "FAIL $name: exited $rc without a FAIL line"; tail -20 "$out_file"
        f=1
    fi
    [ "$f" != 0 ] && grep -A15 '^FAIL' "$out_file" | head -60
    echo "$name: $p passed, $f failed (${secs}s)"
    passed=$((passed + p))
    failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
