#!/bin/bash
# Tests `btk check`:
#  (a) no error on every kernel-written corpus image ($CORPUS_DIR/*.img) and
#      on fixtures/images/*/image.raw.xz;
#  (b) btrfs-progs' fsck images ($PEER_IMAGES/fsck, expectations in
#      $PEER_IMAGES/EXPECT.tsv): `clean` cases give no error, `clean-warn` cases give the
#      named warning, `corrupt`/`corrupt-repair` cases this version covers give
#      errors (the others print SKIP naming the coverage they need; the images
#      in warn_only give the warning named there, see the comment there);
#  (c) fixtures/check/<ID>/make.sh (or <ID>.<CASE>/) builds a corrupted image; the text output
#      and exit status must equal fixtures/check/<ID>/expected.txt byte for byte
#      (options for btk check, if any, in fixtures/check/<ID>/args);
#      --format json must print one valid JSON object per finding;
#  (d) fuzzed images ($PEER_IMAGES/fuzz): exit 0, 1 or 2, never a crash.
#
# Usage: test-check.sh CMDS_DIR    (directory holding btk-check)
# Environment: CORPUS_DIR, PEER_IMAGES (default ../shared/peer-images next to
# the repository), BTK_ASAN_BIN (ASan build's cmds dir, used for (d) when set),
# REGEN=1 rewrites the expected.txt files instead of comparing.
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 CMDS_DIR" >&2
    exit 2
fi
BTK=$(realpath "$1/btk-check")
if [ ! -x "$BTK" ]; then
    echo "FAIL check: $BTK is not an executable"
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PEER=${PEER_IMAGES:-$top/../shared/peer-images}
CORPUS=${CORPUS_DIR:-}
T=$(mktemp -d /tmp/btk-test-check.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() {
    echo "FAIL $1"
    [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -20
    fail=$((fail + 1))
}

# run_check IMG... -> $T/out (stdout+stderr), $rc
run_check() {
    timeout 600 "$BTK" "$@" >"$T/out" 2>&1
    rc=$?
}

expect_clean() {  # expect_clean NAME IMG...
    local name=$1
    shift
    run_check "$@"
    if [ $rc -eq 0 ] && ! grep -q '^ERROR' "$T/out"; then
        ok "$name"
    else
        bad "$name (exit $rc)" "$T/out"
    fi
}

# --- (a) kernel-written images ------------------------------------------
if [ -n "$CORPUS" ] && ls "$CORPUS"/*.img >/dev/null 2>&1; then
    for img in "$CORPUS"/*.img; do
        expect_clean "check clean corpus $(basename "$img")" "$img"
    done
else
    echo "SKIP check corpus: no images in CORPUS_DIR='${CORPUS}' (build them with tests/corpus/make-corpus.sh)"
fi
for x in "$top"/fixtures/images/*/image.raw.xz; do
    [ -e "$x" ] || continue
    n=$(basename "$(dirname "$x")")
    xz -dc "$x" >"$T/fixture.raw"
    expect_clean "check clean fixture $n" "$T/fixture.raw"
    rm -f "$T/fixture.raw"
done

# Kernel-written multi-device filesystems (loop mounts; needs root): every
# profile, with snapshots, reflinks, deletes after a snapshot (shared and
# full-backref tree blocks), 4 KiB nodes for deeper trees.
kernel_fs() {  # kernel_fs PROFILE NDEV DIR
    local prof=$1 n=$2 w=$3 i devs=()
    mkdir -p "$w/mnt"
    for i in $(seq 1 "$n"); do
        truncate -s 400M "$w/d$i.img"
        devs+=("$(losetup -f --show "$w/d$i.img")") || return 1
    done
    (
        set -e
        mkfs.btrfs -q -f -d "$prof" -m "$prof" -n 4096 "${devs[@]}" >/dev/null
        mount "${devs[0]}" "$w/mnt"
        cd "$w/mnt"
        btrfs subvolume create sv >/dev/null
        for i in $(seq 1 300); do echo "file $i" >"sv/f$i"; head -c $((i * 700)) /dev/urandom >"sv/g$i"; done
        mkdir sv/dir
        for i in $(seq 1 500); do touch "sv/dir/long-name-entry-$i"; done
        btrfs subvolume snapshot sv snap >/dev/null
        for i in $(seq 1 150); do echo changed >>"sv/f$i"; rm -f "snap/g$((i * 2))"; done
        cp --reflink=always sv/g100 sv/g100-clone
        btrfs subvolume snapshot -r sv snap2 >/dev/null
        dd if=/dev/urandom of=sv/big bs=1M count=20 status=none
        cd /
        umount "$w/mnt"
    )
    local r=$?
    mountpoint -q "$w/mnt" && umount "$w/mnt"
    for i in "${devs[@]}"; do losetup -d "$i"; done
    return $r
}
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v mkfs.btrfs >/dev/null &&
    command -v btrfs >/dev/null && grep -qw btrfs /proc/filesystems 2>/dev/null; then
    for spec in "single 1" "dup 1" "raid1 2" "raid10 4" "raid5 3" "raid6 4" "raid1c3 3"; do
        set -- $spec
        w=$T/kfs-$1
        if ! kernel_fs "$1" "$2" "$w" >"$T/kfs.log" 2>&1; then
            echo "SKIP check kernel $1: could not build it ($(tail -1 "$T/kfs.log"))"
            rm -rf "$w"
            continue
        fi
        expect_clean "check clean kernel $1 ($2 devices)" "$w"/d*.img
        # Every data block against its checksum (RAID5/6: rebuilt from parity
        # only on a mismatch).
        expect_clean "check clean kernel $1 --check-data-csum" --check-data-csum "$w"/d*.img
        if [ "$1" = raid1 ]; then
            # Degraded: the missing device is an error, nothing else is.
            run_check "$w/d1.img"
            if [ $rc -eq 1 ] && [ "$(grep -c '^ERROR' "$T/out")" = 1 ] && grep -q '^ERROR: device 2 is missing' "$T/out"; then
                ok "check kernel raid1 degraded: only dev_missing"
            else
                bad "check kernel raid1 degraded (exit $rc)" "$T/out"
            fi
            # Data on the missing device is read from the other copy.
            run_check --check-data-csum "$w/d1.img"
            if [ $rc -eq 1 ] && [ "$(grep -c '^ERROR\|^WARNING: data' "$T/out")" = 1 ] && grep -q '^verified [1-9]' "$T/out"; then
                ok "check kernel raid1 degraded --check-data-csum: only dev_missing"
            else
                bad "check kernel raid1 degraded --check-data-csum (exit $rc)" "$T/out"
            fi
        fi
        rm -rf "$w"
    done
else
    echo "SKIP check kernel: needs root, losetup, mkfs.btrfs and btrfs support in the kernel"
fi

# --- (b) btrfs-progs fsck images ----------------------------------------
# Cases whose corruption this version detects, and for the others the
# coverage they need.
declare -A detects=(
    [002-bad-transid]=1 [006-bad-root-items]=1 [014-no-extent-info]=1
    [028-unaligned-super-dev-sizes]=1 [036-bad-dev-extents]=1
    [044-invalid-extent-item-generation]=1 [050-invalid-block-group-used]=1
    [068-orphan-dev-extent]=1 [038-missing-one-file-extent]=1
    [004-no-dir-index]=1 [008-bad-dir-index-name]=1 [010-no-rootdir-inode-item]=1
    [016-wrong-inode-nbytes]=1 [026-bad-dir-item-name]=1 [034-bad-inode-flags]=1
    [040-compressed-nodatasum]=1 [064-deprecated-inode-cache]=1
    [066-missing-root-orphan-item]=1 [070-missing-inode-ref]=1
    [058-bad-free-space-tree-entry]=1 [032-corrupted-qgroup]=1
)
# Images of a corrupt case whose only damage is reported as a warning, and
# why: the second image of 058 holds just the free space tree items that
# mkfs.btrfs before 6.16.1 leaves behind, which every kernel-written image of
# the corpus has too (fst_info_stale; btrfs-progs 6.2 says nothing).
declare -A warn_only=(
    [058-bad-free-space-tree-entry/corrupt-free-space-tree2]="belongs to no block group (left by mkfs.btrfs"
)
# Corrupt cases not covered yet, and the coverage they need (none left).
declare -A needs=(
)
# prepare_images DIR -> raw images in $T/peer/, one per line on stdout
prepare_images() {
    local d=$1 f b i=0
    rm -rf "$T/peer"
    mkdir -p "$T/peer"
    for f in "$d"/*; do
        b=$(basename "$f")
        i=$((i + 1))
        case $b in
            *.raw.xz) xz -dc "$f" >"$T/peer/$i-${b%.raw.xz}.raw" && echo "$T/peer/$i-${b%.raw.xz}.raw" ;;
            *.img.xz)
                command -v btrfs-image >/dev/null || { echo "SKIP:btrfs-image"; continue; }
                xz -dc "$f" >"$T/peer/tmp.img"
                btrfs-image -r "$T/peer/tmp.img" "$T/peer/$i-${b%.img.xz}.raw" >/dev/null 2>&1 &&
                    echo "$T/peer/$i-${b%.img.xz}.raw"
                rm -f "$T/peer/tmp.img" ;;
            *.img)
                command -v btrfs-image >/dev/null || { echo "SKIP:btrfs-image"; continue; }
                btrfs-image -r "$f" "$T/peer/$i-${b%.img}.raw" >/dev/null 2>&1 && echo "$T/peer/$i-${b%.img}.raw" ;;
            *.tar.xz)
                mkdir -p "$T/peer/tar$i"
                tar -xJf "$f" -C "$T/peer/tar$i" && find "$T/peer/tar$i" -type f | head -1 ;;
        esac
    done
}
EXPECT=$PEER/EXPECT.tsv
[ -f "$EXPECT" ] || EXPECT=$PEER/fsck/EXPECT.tsv
if [ -f "$EXPECT" ]; then
    while IFS=$'\t' read -r case expect warn; do
        [ -n "$case" ] || continue
        d=$PEER/fsck/$case
        [ -d "$d" ] || { echo "SKIP check peer $case: directory missing"; continue; }
        if [[ $expect == corrupt* ]] && [ -z "${detects[$case]:-}" ]; then
            echo "SKIP check peer $case ($expect): needs ${needs[$case]:-later coverage}"
            continue
        fi
        imgs=$(prepare_images "$d")
        if grep -q '^SKIP:' <<<"$imgs"; then
            echo "SKIP check peer $case: btrfs-image not installed"
            continue
        fi
        for img in $imgs; do
            name="check peer $case/$(basename "$img" .raw) ($expect)"
            run_check "$img"
            wo=${warn_only[$case/$(basename "$img" .raw | sed 's/^[0-9]*-//')]:-}
            if [ -n "$wo" ]; then
                if [ $rc -eq 0 ] && grep -q "^WARNING:.*$wo" "$T/out"; then ok "$name: a warning"; else bad "$name: exit $rc, wanted warning '$wo'" "$T/out"; fi
                continue
            fi
            case $expect in
                clean)
                    if [ $rc -eq 0 ] && ! grep -q '^ERROR' "$T/out"; then ok "$name"; else bad "$name: exit $rc" "$T/out"; fi ;;
                clean-warn)
                    if [ $rc -eq 0 ] && ! grep -q '^ERROR' "$T/out" && grep -q "^WARNING:.*$warn" "$T/out"; then
                        ok "$name"
                    else
                        bad "$name: exit $rc, wanted warning '$warn'" "$T/out"
                    fi ;;
                corrupt*)
                    if [ $rc -eq 1 ] && grep -q '^ERROR' "$T/out"; then ok "$name"; else bad "$name: exit $rc" "$T/out"; fi ;;
            esac
        done
        rm -rf "$T/peer"
    done <"$EXPECT"
else
    echo "SKIP check peer: $PEER/EXPECT.tsv not found"
fi

# --- (c) corruption fixtures --------------------------------------------
if ! command -v mkfs.btrfs >/dev/null || ! command -v python3 >/dev/null; then
    echo "SKIP check fixtures: mkfs.btrfs or python3 not installed"
else
    for mk in "$top"/fixtures/check/*/make.sh; do
        id=$(basename "$(dirname "$mk")")  # ID or ID.CASE
        exp=$(dirname "$mk")/expected.txt
        w=$T/fx/$id
        mkdir -p "$w"
        bash "$mk" "$w/image.img" >"$w/make.log" 2>&1
        mrc=$?
        if [ $mrc = 77 ]; then
            echo "SKIP check fixture $id: $(tail -1 "$w/make.log")"
            continue
        elif [ $mrc != 0 ]; then
            bad "check fixture $id: make.sh failed" "$w/make.log"
            continue
        fi
        fargs=()
        [ -f "$(dirname "$mk")/args" ] && read -r -a fargs <"$(dirname "$mk")/args"
        (cd "$w" && timeout 600 "$BTK" "${fargs[@]}" image.img >out.txt 2>&1; echo "exit $?" >>out.txt)
        if [ "${REGEN:-}" = 1 ]; then
            cp "$w/out.txt" "$exp"
            echo "REGEN $exp"
        fi
        if cmp -s "$w/out.txt" "$exp"; then
            ok "check fixture $id"
        else
            diff "$exp" "$w/out.txt" >"$w/diff" 2>&1
            bad "check fixture $id: output differs from expected.txt" "$w/diff"
        fi
        if ! grep -q "^ERROR: \|^WARNING: " "$w/out.txt"; then continue; fi
        # The JSON output: one object per finding, the fixture's id among them.
        (cd "$w" && "$BTK" "${fargs[@]}" --format json image.img >json.txt 2>&1)
        if python3 - "$w/json.txt" "${id%%.*}" "$w/out.txt" <<'EOF'; then ok "check fixture $id json"; else bad "check fixture $id json" "$w/json.txt"; fi
import json, sys
lines = open(sys.argv[1]).read().splitlines()
objs = [json.loads(l) for l in lines]
text = [l for l in open(sys.argv[3]).read().splitlines() if l.startswith(("ERROR: ", "WARNING: "))]
assert len(objs) == len(text), (len(objs), len(text))
assert any(o["id"] == sys.argv[2] for o in objs), "id %s missing" % sys.argv[2]
for o, t in zip(objs, text):
    assert t.endswith(o["message"]) and t.lower().startswith(o["severity"]), (o, t)
EOF
        rm -f "$w/image.img"
    done
fi

# --- (d) fuzzed images: no crash ------------------------------------------
FBTK=$BTK
[ -n "${BTK_ASAN_BIN:-}" ] && [ -x "$BTK_ASAN_BIN/btk-check" ] && FBTK=$BTK_ASAN_BIN/btk-check
if ls "$PEER"/fuzz/*.raw.xz >/dev/null 2>&1; then
    for x in "$PEER"/fuzz/*.raw.xz; do
        n=$(basename "$x" .raw.xz)
        xz -dc "$x" >"$T/fuzz.raw"
        ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 timeout 300 "$FBTK" "$T/fuzz.raw" >"$T/out" 2>&1
        rc=$?
        if [ $rc -le 2 ] && ! grep -q "runtime error\|AddressSanitizer" "$T/out"; then
            ok "check fuzz $n (exit $rc)"
        else
            bad "check fuzz $n: exit $rc" "$T/out"
        fi
        rm -f "$T/fuzz.raw"
    done
else
    echo "SKIP check fuzz: no $PEER/fuzz/*.raw.xz"
fi

echo "check: $pass passed, $fail failed"
[ $fail -eq 0 ]
