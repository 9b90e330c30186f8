#!/bin/bash
# Compares `btk-inspect dump-super` with `btrfs inspect-internal dump-super`
# (btrfs-progs 6.2) byte for byte, on images made here with mkfs.btrfs,
# btrfstune, truncation, byte patches and (when possible) a loop mount.
#
# Usage: test-dump-super.sh BUILD_CMDS_DIR
#   BUILD_CMDS_DIR  directory holding the btk-inspect binary (e.g. build/cmds)
# Environment:
#   BTK_INSPECT     path of the btk-inspect binary (overrides BUILD_CMDS_DIR)
#   PEER_IMAGES     directory of the peer images (default ../shared/peer-images
#                   next to the repository); its fuzz/*.raw.xz are compared too
#   BTRFS           the btrfs-progs binary (default /usr/bin/btrfs)
#
# Prints "PASS name" or "FAIL name" (with the head of the diff) per
# comparison, a summary, and exits 1 if anything failed. Standard output and
# the exit status must match; the error text may differ. JSON output is
# checked to be valid JSON with one object per printed copy.
set -u

PROGS=${BTRFS:-/usr/bin/btrfs}
if [ ! -x "$PROGS" ]; then
    echo "SKIP: btrfs-progs not installed"
    exit 0
fi
MKFS=$(command -v mkfs.btrfs || true)
TUNE=$(command -v btrfstune || true)
if [ -z "$MKFS" ]; then
    echo "SKIP: mkfs.btrfs not installed"
    exit 0
fi

if [ -n "${BTK_INSPECT:-}" ]; then
    BTK=$BTK_INSPECT
elif [ $# -ge 1 ]; then
    BTK=$1/btk-inspect
else
    echo "usage: $0 BUILD_CMDS_DIR (or set BTK_INSPECT)" >&2
    exit 2
fi
if [ ! -x "$BTK" ]; then
    echo "FAIL: $BTK is not an executable" >&2
    exit 1
fi
BTK=$(realpath "$BTK")

here=$(cd "$(dirname "$0")" && pwd)
PEER=${PEER_IMAGES:-$here/../../../shared/peer-images}

T=$(mktemp -d /tmp/btk-dump-super.XXXXXX)
MNT=""
cleanup() {
    if [ -n "$MNT" ] && mountpoint -q "$MNT" 2>/dev/null; then
        umount "$MNT" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass=0
fail=0
skip=0

# The only difference allowed: a version banner line, should progs print one.
strip_banner() { grep -v -E '^btrfs-progs v[0-9]' "$1" > "$1.s"; mv "$1.s" "$1"; }

# compare NAME ARGS... : runs both tools with ARGS (options and images).
compare() {
    local name=$1
    shift
    (cd "$T" && "$PROGS" inspect-internal dump-super "$@" > "$T/p.out" 2> "$T/p.err")
    local rp=$?
    (cd "$T" && "$BTK" dump-super "$@" > "$T/b.out" 2> "$T/b.err")
    local rb=$?
    strip_banner "$T/p.out"
    strip_banner "$T/b.out"
    if [ $rb -ge 126 ]; then
        echo "FAIL $name (btk-inspect crashed or could not run, status $rb)"
        head -5 "$T/b.err"
        fail=$((fail + 1))
        return
    fi
    if cmp -s "$T/p.out" "$T/b.out" && [ $rp -eq $rb ]; then
        echo "PASS $name"
        pass=$((pass + 1))
    else
        echo "FAIL $name (exit status progs $rp, btk $rb)"
        diff "$T/p.out" "$T/b.out" | head -20
        fail=$((fail + 1))
    fi
}

# json_check NAME ARGS... : JSON output parses and has as many objects as
# the text output has dumped copies.
json_check() {
    local name=$1
    shift
    command -v python3 > /dev/null || return 0
    (cd "$T" && "$BTK" dump-super --format json "$@" > "$T/j.out" 2> /dev/null)
    local rj=$?
    if [ $rj -ge 126 ]; then
        echo "FAIL json $name (btk-inspect crashed, status $rj)"
        fail=$((fail + 1))
        return
    fi
    (cd "$T" && "$BTK" dump-super "$@" > "$T/t.out" 2> /dev/null)
    local ntext
    ntext=$(grep -c '^csum_type' "$T/t.out")
    if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, list)
for o in d:
    assert isinstance(o, dict) and "fsid" in o and "device" in o
if len(d) != int(sys.argv[2]):
    sys.exit("objects: %d, text copies: %s" % (len(d), sys.argv[2]))
' "$T/j.out" "$ntext" 2> "$T/j.err"; then
        echo "PASS json $name"
        pass=$((pass + 1))
    else
        echo "FAIL json $name"
        head -5 "$T/j.err"
        fail=$((fail + 1))
    fi
}

# The usual option sets for one image (or a set of devices).
standard() {
    local name=$1
    shift
    compare "$name" "$@"
    compare "$name -f" -f "$@"
    compare "$name -a" -a "$@"
    compare "$name -a -f" -a -f "$@"
    compare "$name -s 1 -f" -s 1 -f "$@"
    compare "$name -s 2" -s 2 "$@"
    compare "$name --bytenr 65536 -f" --bytenr 65536 -f "$@"
    compare "$name -F -f" -F -f "$@"
    json_check "$name -a -f" -a -f "$@"
}

mk() {  # mk FILE SIZE MKFS-ARGS... ; says SKIP when this mkfs cannot do it
    local f=$1 size=$2
    shift 2
    rm -f "$T/$f"
    truncate -s "$size" "$T/$f"
    if ! "$MKFS" -q -f "$@" "$T/$f" > /dev/null 2>&1; then
        echo "SKIP $f (mkfs.btrfs $* failed)"
        skip=$((skip + 1))
        return 1
    fi
}

# Overwrites bytes of FILE at OFFSET with the bytes given as hex pairs.
patch_bytes() {
    local f=$1 off=$2 hex=$3
    printf "$(echo "$hex" | sed 's/../\\x&/g')" |
        dd of="$T/$f" bs=1 seek="$off" conv=notrunc status=none
}

SB=65536

# --- Checksum types and profiles ---------------------------------------------
for c in crc32c xxhash sha256 blake2; do
    mk csum-$c.img 300M --csum $c && standard "csum-$c" csum-$c.img
done
mk mixed.img 300M -M && standard mixed mixed.img
mk single.img 300M -m single -d single && standard single single.img
mk dup.img 300M -m dup -d dup && standard dup dup.img
if "$MKFS" -O list-all 2>&1 | grep -q '^block-group-tree'; then
    mk bgt.img 300M -O block-group-tree && standard block-group-tree bgt.img
else
    # This mkfs cannot make one: set the compat_ro bit by hand instead.
    mk bgt.img 300M && patch_bytes bgt.img $((SB + 180)) 0b &&
        standard block-group-tree-bit bgt.img
fi
mk quota.img 300M -R quota && standard quota quota.img
mk nodesize.img 300M -n 65536 -s 4096 && standard nodesize-64k nodesize.img
mk label.img 300M -L 'a "label" with \ back\slash' && standard label label.img
mk longlabel.img 300M -L "$(printf 'L%.0s' $(seq 255))" &&
    standard long-label longlabel.img

# --- btrfstune ---------------------------------------------------------------
if [ -n "$TUNE" ]; then
    mk muuid.img 300M && "$TUNE" -M 01234567-89ab-cdef-0123-456789abcdef "$T/muuid.img" \
        > /dev/null 2>&1 && standard metadata-uuid-M muuid.img
    mk muuid2.img 300M && "$TUNE" -m "$T/muuid2.img" > /dev/null 2>&1 &&
        standard metadata-uuid-m muuid2.img
    mk seed.img 300M && "$TUNE" -S 1 "$T/seed.img" > /dev/null 2>&1 && standard seeding seed.img
else
    echo "SKIP btrfstune cases (btrfstune not installed)"
    skip=$((skip + 1))
fi

# --- Several devices ---------------------------------------------------------
for spec in "raid1 2" "raid10 4" "raid1c3 3" "raid1c4 4" "raid0 2" "raid5 3" "raid6 4"; do
    set -- $spec
    prof=$1 n=$2
    devs=()
    for i in $(seq "$n"); do
        truncate -s 300M "$T/$prof-$i.img"
        devs+=("$prof-$i.img")
    done
    if "$MKFS" -q -f -m "$prof" -d "$prof" "${devs[@]/#/$T/}" > /dev/null 2>&1; then
        standard "multi-$prof" "${devs[@]}"
    else
        echo "FAIL mkfs $prof"
        fail=$((fail + 1))
    fi
done

# --- Mirrors: all three, absent, short ---------------------------------------
mk big.img 300G && standard big-3-mirrors big.img
mk cut.img 300M && cp --sparse=always "$T/cut.img" "$T/cut1m.img" &&
    truncate -s 1M "$T/cut1m.img" && standard small-1M cut1m.img
cp --sparse=always "$T/cut.img" "$T/cut64.img" &&
    truncate -s $((64 * 1024 * 1024 + 4096)) "$T/cut64.img" && standard mirror1-exact cut64.img
cp --sparse=always "$T/cut.img" "$T/short1.img" &&
    truncate -s $((64 * 1024 * 1024 + 100)) "$T/short1.img" && standard mirror1-short short1.img
cp --sparse=always "$T/cut.img" "$T/short0.img" &&
    truncate -s $((SB + 2000)) "$T/short0.img" && standard mirror0-short short0.img
: > "$T/empty.img" && standard empty-file empty.img

# --- Corruption ---------------------------------------------------------------
cp --sparse=always "$T/cut.img" "$T/badcsum.img" &&
    patch_bytes badcsum.img $((SB + 72)) 99 && standard bad-csum badcsum.img
cp --sparse=always "$T/cut.img" "$T/badmagic.img" &&
    patch_bytes badmagic.img $((SB + 64)) 00ff && standard bad-magic badmagic.img
# mirror 1 bad, mirror 0 fine: -a stops at mirror 1
cp --sparse=always "$T/cut.img" "$T/badmagic1.img" &&
    patch_bytes badmagic1.img $((64 * 1024 * 1024 + 64)) 41 && standard bad-magic-mirror1 badmagic1.img
# unknown checksum type, flags, label bytes, sys_chunk_array damage
cp --sparse=always "$T/cut.img" "$T/weird.img" &&
    patch_bytes weird.img $((SB + 196)) 0700 &&
    patch_bytes weird.img $((SB + 56)) ffffffffffffffff &&
    patch_bytes weird.img $((SB + 180)) ffffffffffffffff &&
    patch_bytes weird.img $((SB + 188)) ffffffffffffffff &&
    patch_bytes weird.img $((SB + 299)) 01097f80ff41 && standard weird-fields weird.img
for v in 0 1 16 17 80 96 97 113 128 130 200 2048 2049 65535; do
    cp --sparse=always "$T/cut.img" "$T/sys.img"
    patch_bytes sys.img $((SB + 160)) "$(printf '%02x%02x0000' $((v & 255)) $((v >> 8)))"
    compare "sys_array_size=$v -f" -f sys.img
done
cp --sparse=always "$T/cut.img" "$T/stripes0.img" &&
    patch_bytes stripes0.img $((SB + 811 + 17 + 44)) 0000 && compare "num_stripes=0 -f" -f stripes0.img
cp --sparse=always "$T/cut.img" "$T/stripesbig.img" &&
    patch_bytes stripesbig.img $((SB + 811 + 17 + 44)) ffff && compare "num_stripes=65535 -f" -f stripesbig.img
cp --sparse=always "$T/cut.img" "$T/keytype.img" &&
    patch_bytes keytype.img $((SB + 811 + 8)) 84 && compare "sys key type -f" -f keytype.img
cp --sparse=always "$T/cut.img" "$T/etv2.img" &&
    patch_bytes etv2.img $((SB + 188)) 0020 && compare "extent-tree-v2 bit -f" -f etv2.img

# --- Arguments -----------------------------------------------------------------
compare "several images" csum-crc32c.img single.img
compare "several images -a" -a cut1m.img csum-crc32c.img
compare "nonexistent" "$T/does-not-exist.img"
compare "directory" "$T"
compare "image then nonexistent" csum-crc32c.img "$T/does-not-exist.img"
compare "--bytenr 4096 -F" --bytenr 4096 -F csum-crc32c.img
compare "--bytenr past end" --bytenr 1073741824 csum-crc32c.img
compare "--bytenr unaligned" --bytenr 65537 csum-crc32c.img

# --- Kernel-written (loop mount), when allowed ------------------------------
MNT=$T/mnt
mkdir -p "$MNT"
mk kernel.img 300M
if [ "$(id -u)" = 0 ] && mount -o loop "$T/kernel.img" "$MNT" 2> /dev/null; then
    dd if=/dev/urandom of="$MNT/data" bs=1M count=4 status=none
    mkdir "$MNT/dir" && for i in $(seq 20); do echo "$i" > "$MNT/dir/f$i"; done
    "$PROGS" subvolume create "$MNT/sub" > /dev/null 2>&1
    sync
    umount "$MNT"
    standard kernel-written kernel.img
else
    echo "SKIP kernel-written (loop mount not available)"
    skip=$((skip + 1))
fi

# --- Fuzzed images --------------------------------------------------------------
if [ -d "$PEER/fuzz" ] && command -v xz > /dev/null; then
    for z in "$PEER"/fuzz/*.raw.xz; do
        [ -e "$z" ] || continue
        n=$(basename "$z" .raw.xz)
        xz -dc "$z" > "$T/fuzz.img" 2> /dev/null || continue
        compare "fuzz $n -a -f" -a -f fuzz.img
        compare "fuzz $n -F -f" -F -f fuzz.img
        json_check "fuzz $n -F -f" -F -f fuzz.img
    done
else
    echo "SKIP fuzz images ($PEER/fuzz not found)"
    skip=$((skip + 1))
fi

echo "dump-super: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
