#!/bin/bash
# Compares btk's offline resolvers with btrfs-progs' answers on a loop mount
# of the same image:
#   btk-inspect inode-resolve    vs  btrfs inspect-internal inode-resolve
#   btk-inspect logical-resolve  vs  btrfs inspect-internal logical-resolve
#   btk-inspect subvolid-resolve vs  btrfs inspect-internal subvolid-resolve
#   btk-inspect list-subvolumes  vs  btrfs subvolume list
#   btk-inspect tree-stats       vs  btrfs inspect-internal tree-stats (unmounted)
# The image is made here (mkfs.btrfs -n 4096, loop mount): hard links across
# directories, a file with 60 long-named links (inode extrefs), 3000 small
# files (multi-level trees), subvolumes (one nested, one inside a directory),
# read-only and writable snapshots modified afterwards (shared leaves), reflinks
# inside and across subvolumes, a partially overwritten extent, a compressed
# file and a deleted subvolume not yet cleaned.
#
# Path normalisation: progs prints paths under the mount point, btk prints
# them from "/" (the top of the subvolume); the mount point is removed from
# progs' lines. progs 6.2 cannot print paths of files in other subvolumes from
# the top mount ("could not be accessed: not mounted"); for those the expected
# path is built with progs too: subvolid-resolve + inode-resolve on a mount of
# that subvolume. progs' inode-resolve returns at most 4 KiB of paths, so for
# the extref file its list must be a prefix of btk's, and btk's must equal the
# links `find -samefile` sees.
#
# Usage: test-resolve.sh BUILD_CMDS_DIR   (binary BUILD_CMDS_DIR/btk-inspect)
# Environment: BTK_INSPECT overrides the binary; BTRFS the progs binary;
# PEER_IMAGES: its fuzz/*.raw.xz are run through every subcommand (no crash,
# no hang, status < 124).
# Prints PASS/FAIL/SKIP lines; exits 1 if anything failed.
set -u

PROGS=${BTRFS:-/usr/bin/btrfs}
if [ -n "${BTK_INSPECT:-}" ]; then
    BTK=$BTK_INSPECT
elif [ $# -ge 1 ]; then
    BTK=$1/btk-inspect
else
    echo "usage: $0 BUILD_CMDS_DIR (or set BTK_INSPECT)" >&2
    exit 2
fi
if [ ! -x "$BTK" ]; then
    echo "FAIL: $BTK is not an executable"
    exit 1
fi
BTK=$(realpath "$BTK")
here=$(cd "$(dirname "$0")" && pwd)
PEER=${PEER_IMAGES:-$here/../../../shared/peer-images}

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() {
    echo "FAIL $1"
    fail=$((fail + 1))
    [ -n "${2:-}" ] && [ -f "$2" ] && head -20 "$2" | sed 's/^/    /'
}

declare -A HAVE
for sub in inode-resolve logical-resolve subvolid-resolve list-subvolumes tree-stats; do
    # "btk-inspect SUB --help" alone is not enough: a parser may answer --help
    # before it rejects an unknown subcommand; the help must be SUB's own.
    if "$BTK" "$sub" --help 2>/dev/null | grep -q "inspect $sub"; then
        HAVE[$sub]=1
    else
        HAVE[$sub]=0
        echo "SKIP: btk-inspect has no '$sub' subcommand yet"
    fi
done
have() { [ "${HAVE[$1]}" = 1 ]; }
if ! printf '%s\n' "${HAVE[@]}" | grep -q 1; then
    echo "0 passed, 0 failed"
    exit 0
fi

T=$(mktemp -d /tmp/btk-resolve.XXXXXX)
MOUNTS=()
cleanup() {
    cd /
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        mountpoint -q "${MOUNTS[$i]}" 2>/dev/null && umount "${MOUNTS[$i]}" 2>/dev/null
    done
    # Anything still mounted below $T (never delete through a mount).
    grep -o " $T/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
    if grep -q " $T/" /proc/mounts 2>/dev/null; then
        echo "warning: $T still has mounts; not removed" >&2
    else
        rm -rf --one-file-system "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- robustness on fuzzed images (needs no root) -------------------------------
fuzz_section() {
    local imgs=("$PEER"/fuzz/*.raw.xz)
    if [ ! -e "${imgs[0]}" ]; then
        echo "SKIP: no fuzz images in $PEER/fuzz"
        return
    fi
    local f name img rc badrun=0 sub
    for f in "${imgs[@]}"; do
        name=$(basename "$f" .raw.xz)
        img=$T/fuzz.img
        rm -f "$img"
        # shellcheck disable=SC2216  # cp reads /dev/stdin, written sparse
        xz -dc "$f" | cp --sparse=always /dev/stdin "$img" 2>/dev/null || continue
        for args in "tree-stats" "tree-stats -b" "list-subvolumes" "list-subvolumes -d -t" \
            "subvolid-resolve 256" "inode-resolve 257" "inode-resolve 256" \
            "logical-resolve 13631488" "logical-resolve -P -o 12582912"; do
            sub=${args%% *}
            have "$sub" || continue
            # shellcheck disable=SC2086
            timeout 60 "$BTK" $args "$img" >/dev/null 2>"$T/fuzz.err"
            rc=$?
            if [ $rc -ge 124 ]; then
                bad "fuzz $name: '$args' exited $rc (crash or hang)" "$T/fuzz.err"
                badrun=1
            fi
        done
    done
    rm -f "$T/fuzz.img"
    [ $badrun = 0 ] && ok "fuzz images: every subcommand ends with a report or an error"
}
fuzz_section

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: not root: no loop mount comparison"
    echo "$pass passed, $fail failed"
    [ $fail = 0 ]
    exit
fi
if [ ! -e /dev/loop-control ] || ! command -v mkfs.btrfs >/dev/null || [ ! -x "$PROGS" ]; then
    echo "SKIP: needs loop devices, mkfs.btrfs and btrfs-progs"
    echo "$pass passed, $fail failed"
    [ $fail = 0 ]
    exit
fi

# --- build the image ----------------------------------------------------------
IMG=$T/img
M=$T/m
mkdir -p "$M"
truncate -s 768M "$IMG"
mkfs.btrfs -q -f -n 4096 "$IMG" >/dev/null 2>&1 || { echo "FAIL mkfs.btrfs"; exit 1; }
if ! mount -o loop "$IMG" "$M" 2>"$T/mount.err"; then
    echo "SKIP: cannot loop-mount a btrfs image here: $(head -1 "$T/mount.err")"
    exit 0
fi
MOUNTS+=("$M")
build() {
    set -e
    cd "$M"
    mkdir -p d1/d2 links dir/deeper small snaps
    echo hello >d1/f
    ln d1/f d1/d2/g
    ln d1/f h
    touch links/many
    local i
    for i in $(seq 1 60); do ln links/many "links/$(printf 'L%03d_%0196d' "$i" 0)"; done
    ln links/many d1/many_too
    for i in $(seq 1 3000); do echo "$i" >small/f$i; done
    dd if=/dev/urandom of=big bs=1M count=2 status=none
    dd if=/dev/urandom of=partial bs=1M count=1 conv=fsync status=none
    dd if=/dev/urandom of=partial bs=64K count=1 seek=4 conv=notrunc,fsync status=none
    cp --reflink=always big big_ref
    ln big_ref d1/d2/big_ref_link
    touch comp
    "$PROGS" property set comp compression zstd
    yes abcdefgh | head -c 1M >comp
    "$PROGS" subvolume create sv >/dev/null
    mkdir sv/x
    dd if=/dev/urandom of=sv/x/data bs=64K count=4 status=none
    ln sv/x/data sv/data_link
    "$PROGS" subvolume create sv/nested >/dev/null
    echo n >sv/nested/nf
    dd if=/dev/urandom of=sv/nested/nd bs=64K count=2 status=none
    "$PROGS" subvolume create dir/deeper/svdeep >/dev/null
    dd if=/dev/urandom of=dir/deeper/svdeep/dd bs=64K count=3 status=none
    cp --reflink=always big sv/bigref
    cp --reflink=always sv/x/data dir/deeper/svdeep/data_ref
    for i in $(seq 1 300); do echo "$i" >sv/x/s$i; done
    sync
    "$PROGS" subvolume snapshot -r sv snap_ro >/dev/null
    "$PROGS" subvolume snapshot sv dir/deeper/snap_rw >/dev/null
    for i in 1 2 3; do "$PROGS" subvolume snapshot sv snaps/s$i >/dev/null; done
    sync
    # Changes after the snapshots: leaves get COWed, refs become shared.
    dd if=/dev/urandom of=dir/deeper/snap_rw/x/new bs=64K count=1 status=none
    for i in $(seq 1 300 7); do echo changed >dir/deeper/snap_rw/x/s$i; done
    dd if=/dev/urandom of=snaps/s2/x/data bs=4K count=1 seek=10 conv=notrunc status=none
    rm -f snaps/s3/bigref
    echo more >>sv/x/s1
    sync
    "$PROGS" subvolume create gone >/dev/null
    for i in $(seq 1 500); do echo "$i" >gone/g$i; done
    sync
    "$PROGS" subvolume delete gone >/dev/null
    cd /
}
if ! (build) >"$T/build.log" 2>&1; then
    echo "FAIL building the test image"
    tail -5 "$T/build.log"
    exit 1
fi
umount "$M"

# --- tree-stats on the unmounted image -----------------------------------------
if have tree-stats; then
    for b in "" "-b"; do
        # shellcheck disable=SC2086
        "$PROGS" inspect-internal tree-stats $b "$IMG" 2>/dev/null | grep -v 'Total read time' >"$T/p.ts"
        # shellcheck disable=SC2086
        "$BTK" tree-stats $b "$IMG" 2>"$T/b.err" | grep -v 'Total read time' >"$T/b.ts"
        if [ -s "$T/p.ts" ] && diff -u "$T/p.ts" "$T/b.ts" >"$T/d.ts"; then
            ok "tree-stats $b (all statistics but the read time)"
        else
            bad "tree-stats $b" "$T/d.ts"
        fi
    done
    grep -q 'Seek histogram' "$T/p.ts" || echo "note: no seek histogram in this image"
    grep -E 'Levels: [3-9]' -q "$T/p.ts" || echo "note: no tree with 3 levels in this image"
fi

"$PROGS" inspect-internal dump-tree -t root "$IMG" >"$T/root.dump" 2>/dev/null
"$PROGS" inspect-internal dump-tree -t extent "$IMG" >"$T/extent.dump" 2>/dev/null
grep -q 'shared data backref' "$T/extent.dump" || echo "note: no shared data backref in this image"
"$PROGS" inspect-internal dump-tree -t 5 "$IMG" 2>/dev/null | grep -q INODE_EXTREF ||
    echo "note: no INODE_EXTREF in this image"

# --- mount read-only, compare --------------------------------------------------
mount -o ro,loop "$IMG" "$M" || { echo "FAIL: read-only mount"; exit 1; }
DEV=$(findmnt -no SOURCE "$M")

strip_mnt() { sed -e "s#^$1/#/#" -e "s#^$1\$#/#"; }

if have list-subvolumes; then
    for o in "" "-s" "-r" "-p" "-c" "-g" "-u -q -R" "-t" "-t -s -p" "-d" "-d -p" "--sort=path" \
        "--sort=-gen,rootid" "--sort=ogen,-path" "-G +9" "-G 8" "-C -9" "-s -r"; do
        # shellcheck disable=SC2086
        "$PROGS" subvolume list $o "$M" >"$T/p.ls" 2>/dev/null
        rp=$?
        # shellcheck disable=SC2086
        "$BTK" list-subvolumes $o "$IMG" >"$T/b.ls" 2>"$T/b.err"
        rb=$?
        if [ $rp = $rb ] && diff -u "$T/p.ls" "$T/b.ls" >"$T/d.ls"; then
            ok "list-subvolumes $o ($(wc -l <"$T/b.ls") lines)"
        else
            echo "status progs $rp btk $rb" >>"$T/d.ls"
            cat "$T/b.err" >>"$T/d.ls"
            bad "list-subvolumes $o" "$T/d.ls"
        fi
    done
    grep -q DELETED <("$PROGS" subvolume list -d "$M") || echo "note: the deleted subvolume was cleaned before the test"
    if "$BTK" list-subvolumes --format json "$IMG" >"$T/b.json" 2>/dev/null &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d["subvolume-list"]) == int(sys.argv[2]) else 1)' \
            "$T/b.json" "$("$PROGS" subvolume list "$M" | wc -l)" 2>/dev/null; then
        ok "list-subvolumes --format json: valid, one object per subvolume"
    else
        bad "list-subvolumes --format json" "$T/b.json"
    fi
fi

IDS=$("$PROGS" subvolume list "$M" | awk '{print $2}')
declare -A SUBPATH
for id in $IDS; do SUBPATH[$id]=$("$PROGS" inspect-internal subvolid-resolve "$id" "$M" 2>/dev/null); done

if have subvolid-resolve; then
    for id in 5 $IDS 4242; do
        "$PROGS" inspect-internal subvolid-resolve "$id" "$M" >"$T/p.sr" 2>/dev/null
        rp=$?
        "$BTK" subvolid-resolve "$id" "$IMG" >"$T/b.sr" 2>"$T/b.err"
        rb=$?
        if [ $rp = $rb ] && cmp -s "$T/p.sr" "$T/b.sr"; then
            ok "subvolid-resolve $id ($(head -c 60 "$T/b.sr" | head -1))"
        else
            { echo "status progs $rp btk $rb"; diff "$T/p.sr" "$T/b.sr"; cat "$T/b.err"; } >"$T/d.sr"
            bad "subvolid-resolve $id" "$T/d.sr"
        fi
    done
fi

# Every subvolume mounted read-only at $T/subID (mounted here, in the main
# shell, so that cleanup knows them).
declare -A SUBMNT
for id in $IDS; do
    d=$T/sub$id
    mkdir -p "$d"
    if mount -o ro,subvolid="$id" "$DEV" "$d" 2>/dev/null; then
        MOUNTS+=("$d")
        SUBMNT[$id]=$d
    fi
done
submount() {
    [ -n "${SUBMNT[$1]:-}" ] || return 1
    echo "${SUBMNT[$1]}"
}
# progs' paths of inode INO of subvolume ID, from "/" of that subvolume.
progs_paths() {
    local id=$1 ino=$2 mnt
    if [ "$id" = 5 ]; then mnt=$M; else mnt=$(submount "$id") || return 1; fi
    "$PROGS" inspect-internal inode-resolve "$ino" "$mnt" 2>/dev/null | strip_mnt "$mnt"
}

if have inode-resolve; then
    # compare_inode NAME SUBVOL_ID INO [BTK OPTIONS...]
    compare_inode() {
        local name=$1 id=$2 ino=$3
        shift 3
        progs_paths "$id" "$ino" >"$T/p.ir"
        "$BTK" inode-resolve "$@" "$ino" "$IMG" >"$T/b.ir" 2>"$T/b.err"
        if cmp -s "$T/p.ir" "$T/b.ir"; then
            return 0
        fi
        { echo "== $name inode $ino"; diff "$T/p.ir" "$T/b.ir"; cat "$T/b.err"; } >>"$T/d.ir"
        return 1
    }
    : >"$T/d.ir"
    n=0
    nbad=0
    for ino in $(find "$M" -xdev -path "$M/small" -prune -o -printf '%i\n' | sort -un) \
        $(stat -c %i "$M/small" "$M/small/f1" "$M/small/f3000"); do
        [ "$ino" = "$(stat -c %i "$M/links/many")" ] && continue
        n=$((n + 1))
        compare_inode top 5 "$ino" || nbad=$((nbad + 1))
    done
    [ $nbad = 0 ] && ok "inode-resolve: $n inodes of the top level" || bad "inode-resolve top level: $nbad of $n differ" "$T/d.ir"

    # Other subvolumes through --subvol (by path and by id).
    for id in $IDS; do
        mnt=$(submount "$id") || { bad "mount subvolume $id"; continue; }
        n=0
        nbad=0
        : >"$T/d.ir"
        for ino in $(find "$mnt" -xdev -printf '%i\n' | sort -un | head -80); do
            n=$((n + 1))
            if [ $((n % 2)) = 0 ]; then
                compare_inode "subvol $id" "$id" "$ino" --subvol "${SUBPATH[$id]}" || nbad=$((nbad + 1))
            else
                compare_inode "subvol $id" "$id" "$ino" --subvol "$id" || nbad=$((nbad + 1))
            fi
        done
        [ $nbad = 0 ] && ok "inode-resolve --subvol: $n inodes of subvolume $id (${SUBPATH[$id]})" ||
            bad "inode-resolve subvolume $id: $nbad of $n differ" "$T/d.ir"
    done

    # The extref file: progs truncates at 4 KiB of paths.
    ino=$(stat -c %i "$M/links/many")
    progs_paths 5 "$ino" >"$T/p.ir"
    "$BTK" inode-resolve "$ino" "$IMG" >"$T/b.ir" 2>"$T/b.err"
    (cd "$M" && find . -xdev -samefile links/many | sed 's#^\.##' | sort) >"$T/f.ir"
    np=$(wc -l <"$T/p.ir")
    if [ "$np" -gt 0 ] && head -n "$np" "$T/b.ir" | cmp -s - "$T/p.ir" && sort "$T/b.ir" | cmp -s - "$T/f.ir"; then
        ok "inode-resolve extref file: $(wc -l <"$T/b.ir") paths (progs shows the first $np)"
    else
        { diff <(head -n "$np" "$T/b.ir") "$T/p.ir"; diff <(sort "$T/b.ir") "$T/f.ir"; } >"$T/d.ir"
        bad "inode-resolve extref file" "$T/d.ir"
    fi

    "$BTK" inode-resolve 999999 "$IMG" >"$T/b.ir" 2>"$T/b.err"
    rb=$?
    "$PROGS" inspect-internal inode-resolve 999999 "$M" >/dev/null 2>&1
    rp=$?
    if [ $rb = $rp ] && [ ! -s "$T/b.ir" ] && [ "$(wc -l <"$T/b.err")" = 1 ]; then
        ok "inode-resolve of a missing inode: status $rb, one error line"
    else
        bad "inode-resolve of a missing inode: status progs $rp btk $rb" "$T/b.err"
    fi
fi

if have logical-resolve; then
    # Data extents: "start length" from the extent tree.
    awk '/EXTENT_ITEM/ { gsub(/[()]/, ""); s = $4; l = $6; next }
         s != "" && /flags DATA/ { print s, l } { s = "" }' "$T/extent.dump" >"$T/extents"
    next_addr=$(awk '{e = $1 + $2; if (e > m) m = e} END {print m}' "$T/extents")
    n=0
    nbad=0
    : >"$T/d.lr"
    while read -r start len; do
        addrs="$start $((start + len / 2)) $((start + len - 1))"
        # Inside the range a later write replaced (the partially overwritten file).
        [ "$len" -gt 327680 ] && addrs="$addrs $((start + 262144 + 4096))"
        for addr in $addrs; do
            n=$((n + 1))
            for o in "-P" "-P -o"; do
                # shellcheck disable=SC2086
                "$PROGS" inspect-internal logical-resolve $o "$addr" "$M" 2>/dev/null | sort >"$T/p.lr"
                # shellcheck disable=SC2086
                "$BTK" logical-resolve $o "$addr" "$IMG" 2>"$T/b.err" | sort >"$T/b.lr"
                if ! cmp -s "$T/p.lr" "$T/b.lr"; then
                    { echo "== $o $addr (extent $start+$len)"; diff "$T/p.lr" "$T/b.lr"; cat "$T/b.err"; } >>"$T/d.lr"
                    nbad=$((nbad + 1))
                fi
            done
            # Paths: progs' for the top level; built with progs for the others.
            "$PROGS" inspect-internal logical-resolve -P "$addr" "$M" 2>/dev/null >"$T/p.P"
            : >"$T/p.lr"
            while read -r _ ino _ _ _ root; do
                if [ "$root" = 5 ]; then
                    progs_paths 5 "$ino" >>"$T/p.lr"
                else
                    progs_paths "$root" "$ino" | sed "s#^#/${SUBPATH[$root]}#" >>"$T/p.lr"
                fi
            done <"$T/p.P"
            "$PROGS" inspect-internal logical-resolve "$addr" "$M" 2>/dev/null | grep "^$M/" | strip_mnt "$M" |
                sort >"$T/p.top"
            sort -o "$T/p.lr" "$T/p.lr"
            "$BTK" logical-resolve "$addr" "$IMG" 2>"$T/b.err" | sort >"$T/b.lr"
            if ! cmp -s "$T/p.lr" "$T/b.lr" || ! comm -23 "$T/p.top" "$T/b.lr" | cmp -s - /dev/null; then
                { echo "== paths $addr (extent $start+$len)"; diff "$T/p.lr" "$T/b.lr"; cat "$T/b.err"; } >>"$T/d.lr"
                nbad=$((nbad + 1))
            fi
        done
    done <"$T/extents"
    [ "$n" -gt 0 ] && [ $nbad = 0 ] && ok "logical-resolve: $n addresses in $(wc -l <"$T/extents") data extents (-P, -P -o, paths)" ||
        bad "logical-resolve: $nbad of $((n * 3)) comparisons differ" "$T/d.lr"

    # Subvolume restriction: only the references of that subvolume.
    sv=$(awk '$NF == "sv" {print $2}' <("$PROGS" subvolume list "$M"))
    nbad=0
    : >"$T/d.lr"
    while read -r start len; do
        "$PROGS" inspect-internal logical-resolve -P "$start" "$M" 2>/dev/null | awk -v r="$sv" '$6 == r' | sort >"$T/p.lr"
        "$BTK" logical-resolve -P --subvol sv "$start" "$IMG" 2>/dev/null | sort >"$T/b.lr"
        cmp -s "$T/p.lr" "$T/b.lr" || { diff "$T/p.lr" "$T/b.lr" >>"$T/d.lr"; nbad=$((nbad + 1)); }
    done <"$T/extents"
    [ $nbad = 0 ] && ok "logical-resolve --subvol sv -P" || bad "logical-resolve --subvol sv" "$T/d.lr"

    # Addresses outside any data extent: a tree block, and past the last extent.
    meta=$(awk '/METADATA_ITEM|EXTENT_ITEM/ && /key/ { gsub(/[()]/, ""); s = $4; next }
                s != "" && /flags TREE_BLOCK/ { print s; exit } { s = "" }' "$T/extent.dump")
    for addr in "$meta" $((next_addr + 1048576 * 64)); do
        [ -n "$addr" ] || continue
        "$PROGS" inspect-internal logical-resolve "$addr" "$M" >/dev/null 2>&1
        rp=$?
        "$BTK" logical-resolve "$addr" "$IMG" >"$T/b.lr" 2>"$T/b.err"
        rb=$?
        if [ $rp = $rb ] && [ ! -s "$T/b.lr" ] && [ "$(wc -l <"$T/b.err")" = 1 ]; then
            ok "logical-resolve $addr (no data extent): status $rb, one error line"
        else
            bad "logical-resolve $addr: status progs $rp btk $rb" "$T/b.err"
        fi
    done
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
