#!/bin/bash
# libFuzzer smoke run (tests/fuzz/run-fuzz.sh --smoke): builds the fuzz
# targets with clang in BTK_TOP/build-fuzz (ASan+UBSan), replays every saved
# regression input and fuzzes 20 s in all. Prints SKIP when clang cannot
# build libFuzzer targets, or with BTK_FUZZ_SMOKE=0.
# Usage: test-fuzz-smoke.sh CMDS_DIR   (the directory is not used)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${BTK_FUZZ_SMOKE:-1}" = 0 ]; then
    echo "SKIP: *** fuzz smoke: BTK_FUZZ_SMOKE=0 ***"
    exit 0
fi
FUZZ_BUILD=${FUZZ_BUILD:-${BTK_TOP:-$top}/build-fuzz} FUZZ_JOBS=${FUZZ_JOBS:-2} \
    exec bash "$top/tests/fuzz/run-fuzz.sh" --smoke
