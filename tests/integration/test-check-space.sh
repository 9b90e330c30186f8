#!/bin/bash
# Tests the space and qgroup parts of `btk check` against the kernel and
# btrfs-progs, and its root-selection and progress options:
#  (a) kernel-written filesystems (loop mounts, root): one with quotas, 4 KiB
#      nodes, snapshots (blocks shared below a shared node), a level-1 qgroup
#      and reflinks: btk check is clean, every qgroup count equals what
#      `btrfs check --qgroup-report` computes, and `--subvol-extents` lists
#      the same extents and roots as `btrfs check --subvol-extents`; one
#      whose free space tree the kernel turned into bitmaps: clean, and a
#      damaged bitmap is found with the extent count btrfs check finds;
#  (b) the v1 space cache of the corpus image fsv1-space-cache: clean, then a
#      stale cache generation, a damaged cache page and a wrong entry count
#      each give their warning (never an error);
#  (c) -s N, --backup, --tree-root on the fixture base image; the same
#      findings with any number of reader threads;
#  (d) -p: a progress line on a terminal (script(1) gives a pty), nothing
#      when standard error is not a terminal.
# Usage: test-check-space.sh CMDS_DIR
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 CMDS_DIR" >&2
    exit 2
fi
BTK=$(realpath "$1/btk-check")
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CORRUPT=$top/tests/tools/btrfs_corrupt.py
T=$(mktemp -d /tmp/btk-test-check-space.XXXXXX)
loops=()
cleanup() {
    local l
    for l in "$T"/*/mnt; do mountpoint -q "$l" 2>/dev/null && umount "$l"; done
    for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() {
    echo "FAIL $1"
    [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -20
    fail=$((fail + 1))
}
run_check() {  # run_check ARGS... -> $T/out, $rc
    timeout 600 "$BTK" "$@" >"$T/out" 2>&1
    rc=$?
}
# expect RC NAME [GREP_PATTERN]: the exit status, no ERROR unless RC is 1,
# and the pattern (when given) among the output lines.
expect() {
    local want=$1 name=$2 pat=${3:-}
    if [ "$rc" = "$want" ] && { [ "$want" = 1 ] || ! grep -q '^ERROR' "$T/out"; } &&
        { [ -z "$pat" ] || grep -q -- "$pat" "$T/out"; }; then
        ok "$name"
    else
        bad "$name (exit $rc, wanted $want${pat:+ and '$pat'})" "$T/out"
    fi
}

have_kernel=0
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v mkfs.btrfs >/dev/null &&
    command -v btrfs >/dev/null && grep -qw btrfs /proc/filesystems 2>/dev/null; then
    have_kernel=1
fi

# new_fs DIR SIZE MKFS_ARGS... : a loop-mounted fresh filesystem at DIR/mnt
new_fs() {
    local w=$1 size=$2
    shift 2
    mkdir -p "$w/mnt"
    truncate -s "$size" "$w/img"
    local dev
    dev=$(losetup -f --show "$w/img") || return 1
    loops+=("$dev")
    mkfs.btrfs -q -f "$@" "$dev" >/dev/null && mount -o nodiscard "$dev" "$w/mnt"
}
end_fs() {  # end_fs DIR
    umount "$1/mnt" && losetup -d "${loops[-1]}" && unset 'loops[-1]'
}

# --- (a) kernel-written: qgroups and extent sharing ----------------------
qgroup_fs() {
    local w=$1 i m
    new_fs "$w" 300M -n 4096 || return 1
    m=$w/mnt
    (
        set -e
        btrfs quota enable "$m"
        btrfs subvolume create "$m/a" >/dev/null
        btrfs qgroup create 1/10 "$m"
        btrfs qgroup assign 0/256 1/10 "$m" >/dev/null 2>&1 || true
        for i in $(seq 1 1500); do echo "file $i" >"$m/a/f$i"; done
        for i in $(seq 1 40); do head -c $((i * 5000)) /dev/urandom >"$m/a/g$i"; done
        mkdir "$m/a/d"
        for i in $(seq 1 400); do : >"$m/a/d/long-name-entry-number-$i"; done
        btrfs subvolume snapshot "$m/a" "$m/s1" >/dev/null
        btrfs subvolume snapshot -r "$m/a" "$m/s2" >/dev/null
        btrfs qgroup assign 0/257 1/10 "$m" >/dev/null 2>&1 || true
        for i in $(seq 1 100); do echo changed >>"$m/a/f$((i * 7))"; rm -f "$m/s1/g$((i % 40 + 1))"; done
        cp --reflink=always "$m/a/g10" "$m/s1/g10-clone"
        head -c 3000000 /dev/urandom >"$m/s1/big"
        sync
        btrfs quota rescan -w "$m" >/dev/null
    ) || return 1
    end_fs "$w"
}
# "ID REFERENCED EXCLUSIVE" lines, sorted, from either tool's report.
btk_qgroups() { sed -nE 's/^qgroup ([0-9]+\/[0-9]+) +referenced ([0-9]+) exclusive ([0-9]+).*/\1 \2 \3/p' "$1" | sort; }
progs_qgroups() {
    awk '/^Counts for qgroup id:/ {id=$5} /^our:.*referenced/ {r=$3} /^our:.*exclusive/ {print id, r, $3}' "$1" | sort
}

if [ $have_kernel = 1 ]; then
    w=$T/q
    if qgroup_fs "$w" >"$T/mk.log" 2>&1; then
        run_check -Q "$w/img"
        expect 0 "check-space kernel qgroups: clean" "^qgroup 1/10 "
        btk_qgroups "$T/out" >"$T/btk.q"
        btrfs check --qgroup-report "$w/img" >"$T/progs.out" 2>&1
        progs_qgroups "$T/progs.out" >"$T/progs.q"
        if [ -s "$T/progs.q" ] && [ "$(wc -l <"$T/btk.q")" -ge 5 ] && cmp -s "$T/btk.q" "$T/progs.q"; then
            ok "check-space kernel qgroups: counts equal btrfs check --qgroup-report ($(wc -l <"$T/btk.q") qgroups)"
        else
            diff "$T/progs.q" "$T/btk.q" >"$T/diff"
            bad "check-space kernel qgroups: counts differ from btrfs check (< progs, > btk)" "$T/diff"
        fi
        for sv in 5 256 257 258; do
            "$BTK" -E $sv "$w/img" 2>&1 | sed -n '/^Offset/,/^UUID/p' | grep -v '^UUID' >"$T/btk.e"
            btrfs check --subvol-extents $sv "$w/img" 2>/dev/null | sed -n '/^Offset/,$p' >"$T/progs.e"
            if [ "$(wc -l <"$T/progs.e")" -gt 1 ] && cmp -s "$T/btk.e" "$T/progs.e"; then
                ok "check-space kernel --subvol-extents $sv: same as btrfs check ($(($(wc -l <"$T/btk.e") - 1)) extents)"
            else
                diff "$T/progs.e" "$T/btk.e" >"$T/diff"
                bad "check-space kernel --subvol-extents $sv differs from btrfs check" "$T/diff"
            fi
        done
        # The damage btrfs-progs' test 032 has: a count of 0.
        cp --sparse=always "$w/img" "$T/q2.img"
        python3 "$CORRUPT" "$T/q2.img" item-u64 8 0 242 256 8 0
        run_check "$T/q2.img"
        expect 1 "check-space kernel qgroups: a wrong count is an error" "^ERROR: qgroup 0/256: referenced 0 on disk"
        rm -f "$T/q2.img"
    else
        bad "check-space kernel qgroups: could not build the filesystem" "$T/mk.log"
    fi
    rm -rf "$w"

    # Free space bitmaps: many small files, every other one deleted.
    w=$T/b
    if new_fs "$w" 300M -n 4096 -m single >"$T/mk.log" 2>&1 && mkdir "$w/mnt/d" &&
        for i in $(seq 1 3000); do printf '%4096s' x >"$w/mnt/d/f$i"; done && sync &&
        for i in $(seq 1 2 3000); do rm "$w/mnt/d/f$i"; done && end_fs "$w"; then
        n=$(btrfs inspect-internal dump-tree -t 10 "$w/img" | grep -c 'FREE_SPACE_BITMAP')
        run_check "$w/img"
        if [ "$n" -gt 0 ]; then
            expect 0 "check-space kernel free space bitmaps ($n bitmap items): clean"
            bm=$(btrfs inspect-internal dump-tree -t 10 "$w/img" | sed -nE 's/.*key \(([0-9]+) FREE_SPACE_BITMAP ([0-9]+)\).*/\1 \2/p' | head -1)
            python3 "$CORRUPT" "$w/img" item-flip 10 ${bm% *} 200 ${bm#* } 9
            run_check "$w/img"
            progs=$(btrfs check "$w/img" 2>&1 | sed -nE 's/free space info recorded ([0-9]+) extents, counted ([0-9]+)/\1 \2/p' | head -1)
            expect 1 "check-space kernel free space bitmap damaged: found" "^ERROR: free space info .*extent_count ${progs% *}, but ${progs#* } free extents found"
        else
            echo "SKIP check-space kernel free space bitmaps: the kernel wrote no bitmaps"
        fi
    else
        bad "check-space kernel free space bitmaps: could not build the filesystem" "$T/mk.log"
    fi
    rm -rf "$w"
else
    echo "SKIP: *** check-space kernel tests: need root, losetup, mkfs.btrfs, btrfs and kernel btrfs ***"
fi

# --- (b) v1 space cache ---------------------------------------------------
v1=${CORPUS_DIR:-}/fsv1-space-cache.img
if [ -n "${CORPUS_DIR:-}" ] && [ -f "$v1" ]; then
    run_check "$v1"
    if [ $rc = 0 ] && ! grep -q 'space_cache\|free space cache' "$T/out"; then
        ok "check-space v1 cache: kernel-written cache is clean"
    else
        bad "check-space v1 cache: kernel-written cache (exit $rc)" "$T/out"
    fi
    sb_gen=$(btrfs inspect-internal dump-super "$v1" | awk '$1 == "generation" {print $2}')
    hdr=$(python3 "$CORRUPT" "$v1" find 1 0 | head -1)  # objectid offset leaf
    bg=$(echo "$hdr" | cut -d' ' -f2)
    ino=$(btrfs inspect-internal dump-tree -t 1 "$v1" | grep -A1 "FREE_SPACE UNTYPED $bg)" | sed -nE 's/.*location key \(([0-9]+) .*/\1/p')
    data=$(btrfs inspect-internal dump-tree -t 1 "$v1" | grep -A3 "($ino EXTENT_DATA 0)" | sed -nE 's/.*disk byte ([0-9]+) .*/\1/p')
    cp --sparse=always "$v1" "$T/v1.img"
    python3 "$CORRUPT" "$T/v1.img" super-u64 555 $((sb_gen - 1))
    run_check "$T/v1.img"
    expect 0 "check-space v1 cache: stale cache generation is a warning" "^WARNING: free space cache generation $((sb_gen - 1)) differs"
    cp --sparse=always "$v1" "$T/v1.img"
    python3 "$CORRUPT" "$T/v1.img" logical-flip $((data + 100))
    run_check "$T/v1.img"
    expect 0 "check-space v1 cache: damaged page is a warning" "^WARNING: free space cache of block group $bg: page 0 has a bad checksum"
    cp --sparse=always "$v1" "$T/v1.img"
    n=$(btrfs inspect-internal dump-tree -t 1 "$v1" | grep -A2 "FREE_SPACE UNTYPED $bg)" | sed -nE 's/.* entries ([0-9]+) .*/\1/p')
    if [ "${n:-0}" -gt 1 ]; then
        python3 "$CORRUPT" "$T/v1.img" item-u64 1 18446744073709551605 0 "$bg" 25 $((n - 1))
        run_check "$T/v1.img"
        expect 0 "check-space v1 cache: a lost entry is a warning" "^WARNING: free space cache of block group $bg: 1 range(s)"
    else
        echo "SKIP check-space v1 cache lost entry: the first cache has $n entries"
    fi
    rm -f "$T/v1.img"
else
    echo "SKIP: *** check-space v1 cache: no fsv1-space-cache.img in CORPUS_DIR='${CORPUS_DIR:-}' ***"
fi

# --- (c) root selection ---------------------------------------------------
if command -v mkfs.btrfs >/dev/null && command -v python3 >/dev/null; then
    # The fixtures' base image (lib.sh finds its tools from the fixture's path).
    if bash -c '. "$(dirname "$0")/../lib.sh"; make_base "$1"' "$top/fixtures/check/fst_info_stale/make.sh" \
        "$T/base.img" >"$T/mk.log" 2>&1; then
        img=$T/base.img
        root=$(btrfs inspect-internal dump-super "$img" | awk '$1 == "root" {print $2}')
        run_check -r "$root" "$img"
        expect 0 "check-space --tree-root (the current root)"
        run_check -r 12345 "$img"
        [ $rc != 0 ] && ok "check-space --tree-root (a bogus address) fails (exit $rc)" || bad "check-space --tree-root bogus: exit 0" "$T/out"
        run_check -s 1 "$img"
        expect 0 "check-space -s 1"
        run_check -s 2 "$img"
        expect 2 "check-space -s 2 on a 128 MiB image: no such copy" "superblock copy 2"
        cp "$img" "$T/b2.img"
        python3 "$CORRUPT" "$T/b2.img" super-csum 0
        run_check -s 1 "$T/b2.img"
        expect 1 "check-space -s 1 with a bad primary: the primary is still reported" "^ERROR: device 1: superblock copy 0 at 65536 has a bad checksum"
        cp "$img" "$T/b2.img"
        python3 "$CORRUPT" "$T/b2.img" block-csum "$root" 0
        python3 "$CORRUPT" "$T/b2.img" block-csum "$root" 1
        run_check "$T/b2.img"
        expect 1 "check-space bad root tree block without --backup" "^ERROR: tree root: tree block $root copy 1: checksum mismatch"
        # The reader threads do not change the output (a damaged image: findings in walk order).
        "$BTK" --threads 0 "$T/b2.img" >"$T/t0" 2>&1
        "$BTK" --threads 3 "$T/b2.img" >"$T/t3" 2>&1
        if cmp -s "$T/t0" "$T/t3" && cmp -s "$T/t0" "$T/out"; then
            ok "check-space --threads 0 / 3 / default: same output"
        else
            diff "$T/t0" "$T/t3" >"$T/diff"
            bad "check-space --threads changes the output" "$T/diff"
        fi
        run_check --backup "$T/b2.img"
        if [ $rc = 0 ] && ! grep -q "tree block $root" "$T/out"; then
            ok "check-space --backup skips the bad newest backup (same block) and uses the next one"
        else
            bad "check-space --backup (exit $rc)" "$T/out"
        fi
        rm -f "$T/b2.img"
    else
        bad "check-space: could not make the base image" "$T/mk.log"
    fi
else
    echo "SKIP: *** check-space root selection: needs mkfs.btrfs and python3 ***"
fi

# --- (d) progress -----------------------------------------------------------
img=${CORPUS_DIR:-}/node4k.img
[ -f "$img" ] || img=$T/base.img
if [ -f "$img" ] && command -v script >/dev/null; then
    script -qec "$BTK -p $img >/dev/null" /dev/null >"$T/pty" 2>&1
    if grep -q $'\r.*checking tree blocks: [0-9]* blocks' "$T/pty"; then
        ok "check-space -p on a terminal: progress line"
    else
        bad "check-space -p on a terminal: no progress line" "$T/pty"
    fi
    "$BTK" -p "$img" >/dev/null 2>"$T/err"
    if [ ! -s "$T/err" ]; then ok "check-space -p without a terminal: silent"; else bad "check-space -p without a terminal" "$T/err"; fi
else
    echo "SKIP check-space progress: no image or no script(1)"
fi

echo "check-space: $pass passed, $fail failed"
[ $fail -eq 0 ]
