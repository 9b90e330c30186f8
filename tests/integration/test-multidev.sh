#!/usr/bin/env bash
# Multi-device filesystems and redundancy, against the kernel's view:
#  1. for each RAID profile, a 4-device filesystem written by the kernel is
#     restored by btk from its images (in any order) with the kernel's manifest;
#     one image alone gives a clear error or a partial restore, never a crash;
#  2. degraded: with one image left out, redundant profiles still restore the
#     identical tree (other copies, RAID5/6 parity); RAID0 counts errors;
#  3. a corrupted first copy (DUP) of a data extent and of a tree leaf is
#     detected by checksum and read from the other copy; both copies corrupted
#     give one clear checksum error;
#  4. a corrupted primary superblock falls back to the mirror at 64 MiB.
set -uo pipefail
bin=${1:?usage: test-multidev.sh CMDS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
manifest="python3 $here/../tools/manifest.py"
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "SKIP: *** multi-device tests need root and loop devices ***"; exit 0
fi
for t in mkfs.btrfs btrfs btrfs-map-logical losetup python3; do
    command -v "$t" >/dev/null || { echo "SKIP: *** multi-device tests need $t ***"; exit 0; }
done
tmp=$(mktemp -d /tmp/btk-multidev.XXXXXX)
mnt=$tmp/mnt
scratch=$tmp/scratch
mkdir -p "$mnt" "$scratch"
loops=()
detach_all() {
    local l
    for l in "${loops[@]}"; do
        btrfs device scan --forget "$l" >/dev/null 2>&1
        losetup -d "$l" 2>/dev/null
    done
    loops=()
}
cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    detach_all
    mountpoint -q "$scratch" && umount "$scratch"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# Restore onto btrfs so that xattrs of any size fit.
truncate -s 2G "$tmp/scratch.img" && mkfs.btrfs -q -f "$tmp/scratch.img" >/dev/null &&
    mount -o loop "$tmp/scratch.img" "$scratch" || { echo "FAIL multidev: cannot set up scratch fs"; exit 1; }

# Writes a varied tree below $1: hundreds of small files (some inline), files
# of 1-8 MiB that stripe across devices, zstd-compressed files, a sparse file,
# links, xattrs, owners, modes, a subvolume and a snapshot that then diverge.
populate() {
    local root=$1
    btrfs subvolume create "$root/sv" >/dev/null || return 1
    mkdir "$root/comp" && btrfs property set "$root/comp" compression zstd || return 1
    python3 - "$root" <<'EOF' || return 1
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
for d in range(20):
    dp = os.path.join(root, "d%02d" % d)
    os.mkdir(dp)
    for i in range(15):
        n = rnd.choice([0, 1, 100, 2000, 3000, 4096, 5000, 12288, 20000, 70000])
        write(os.path.join(dp, "f%03d" % i), rnd.randbytes(n))
    os.chmod(dp, 0o750 if d % 3 == 0 else 0o755)
for mib in (1, 3, 8):
    write(os.path.join(root, "big%d" % mib), rnd.randbytes(mib << 20))
text = b"".join(b"line %d of a compressible file\n" % i for i in range(80000))
write(os.path.join(root, "comp", "text"), text)
write(os.path.join(root, "comp", "mixed"), rnd.randbytes(300000) + text[:500000])
write(os.path.join(root, "comp", "small"), b"tiny compressible " * 50)
with open(os.path.join(root, "sparse"), "wb") as f:
    f.truncate(16 << 20)
    for off in (0, 5 << 20, (16 << 20) - 4096):
        f.seek(off)
        f.write(rnd.randbytes(4096))
os.symlink("d01/f001", os.path.join(root, "link"))
os.symlink("/nonexistent/target", os.path.join(root, "dangling"))
os.link(os.path.join(root, "d02", "f002"), os.path.join(root, "hardlink"))
os.mkfifo(os.path.join(root, "fifo"))
os.setxattr(os.path.join(root, "big1"), "user.note", b"multi-device test")
os.setxattr(os.path.join(root, "d03"), "user.big", rnd.randbytes(3000))
os.chown(os.path.join(root, "d04", "f004"), 1000, 1001)
os.chmod(os.path.join(root, "d05", "f005"), 0o4711)
sv = os.path.join(root, "sv")
os.mkdir(os.path.join(sv, "dir"))
for i in range(40):
    write(os.path.join(sv, "dir", "s%02d" % i), rnd.randbytes(rnd.choice([10, 5000, 40000])))
write(os.path.join(sv, "blob"), rnd.randbytes(2 << 20))
EOF
    btrfs subvolume snapshot "$root/sv" "$root/snap" >/dev/null || return 1
    python3 - "$root" <<'EOF' || return 1
import os, random, sys
root = sys.argv[1]
rnd = random.Random(8)
sv = os.path.join(root, "sv")
os.unlink(os.path.join(sv, "dir", "s03"))
with open(os.path.join(sv, "blob"), "r+b") as f:
    f.seek(1 << 20)
    f.write(rnd.randbytes(200000))
with open(os.path.join(sv, "after-snapshot"), "wb") as f:
    f.write(rnd.randbytes(100000))
EOF
    sync
}

attach() {  # attach IMG -> sets $dev
    dev=$(losetup -f --show "$1") || return 1
    loops+=("$dev")
}

# restore_check NAME EXPECTED_MANIFEST IMG... : restore must succeed with the manifest.
restore_check() {
    local name=$1 want=$2
    shift 2
    local out=$scratch/out
    rm -rf "$out"
    "$bin/btk-restore" -s -x -m -S "$@" "$out" >"$tmp/restore.out" 2>"$tmp/restore.err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name: exit $rc: $(head -3 "$tmp/restore.err")"
    elif ! $manifest "$out" >"$tmp/btk.txt" || ! diff -u "$want" "$tmp/btk.txt" >"$tmp/diff.txt"; then
        fail "$name: manifest differs from the kernel's view"; head -20 "$tmp/diff.txt"
    else
        pass "$name ($(wc -l <"$want") paths)"
    fi
    rm -rf "$out"
}

# restore_partial NAME EXPECTED_MANIFEST NEED_ERRORS IMG... : a restore that may lack data
# must not crash: exit 0 with the full manifest (not when NEED_ERRORS is yes),
# exit 1 with errors counted in the summary, or exit 2 with an error message.
restore_partial() {
    local name=$1 want=$2 need_errors=$3
    shift 3
    local out=$scratch/out
    rm -rf "$out"
    "$bin/btk-restore" -s -x -m -S "$@" "$out" >"$tmp/restore.out" 2>"$tmp/restore.err"
    local rc=$?
    partial_rc=$rc
    local errors
    errors=$(sed -nE 's/.*; ([0-9]+) errors,.*/\1/p' "$tmp/restore.out")
    case $rc in
        0)
            if [ "$need_errors" = yes ]; then
                fail "$name: exit 0 although data is missing"
            elif $manifest "$out" >"$tmp/btk.txt" && diff -q "$want" "$tmp/btk.txt" >/dev/null; then
                pass "$name (complete)"
            else
                fail "$name: exit 0 but manifest differs"
            fi ;;
        1)
            if [ "${errors:-0}" -gt 0 ]; then
                pass "$name ($errors errors counted, exit 1)"
            else
                fail "$name: exit 1 without errors in the summary: $(cat "$tmp/restore.out")"
            fi ;;
        2)
            if grep -qv ': warning: ' "$tmp/restore.err"; then
                pass "$name (refused: $(grep -v ': warning: ' "$tmp/restore.err" | head -1))"
            else
                fail "$name: exit 2: $(head -1 "$tmp/restore.err")"
            fi ;;
        *) fail "$name: exit $rc (crash?): $(tail -3 "$tmp/restore.err")" ;;
    esac
    rm -rf "$out"
}

# --- 1 + 2: multi-device profiles ------------------------------------------
for spec in raid0:raid0 raid1:raid1 raid10:raid10 raid1c3:raid1c3 raid1c4:raid1c4 \
            raid5:raid5 raid6:raid6 single:raid1; do
    d=${spec%%:*} m=${spec##*:}
    name=$d; [ "$d" != "$m" ] && name=$d-$m
    imgs=()
    for i in 1 2 3 4; do
        rm -f "$tmp/dev$i.img"; truncate -s 160M "$tmp/dev$i.img"; imgs+=("$tmp/dev$i.img")
    done
    if ! mkfs.btrfs -q -f -d "$d" -m "$m" "${imgs[@]}" >"$tmp/mkfs.out" 2>&1; then
        fail "restore-multidev-$name: mkfs failed: $(tail -2 "$tmp/mkfs.out")"; continue
    fi
    devs=()
    for img in "${imgs[@]}"; do attach "$img" && devs+=("$dev"); done
    if [ ${#devs[@]} -ne 4 ] ||
        ! mount -o "device=${devs[1]},device=${devs[2]},device=${devs[3]}" "${devs[0]}" "$mnt" 2>"$tmp/mount.err"; then
        fail "restore-multidev-$name: cannot attach/mount: $(cat "$tmp/mount.err" 2>/dev/null)"
        detach_all; continue
    fi
    if ! populate "$mnt"; then
        fail "restore-multidev-$name: cannot write the test tree"
        umount "$mnt"; detach_all; continue
    fi
    $manifest "$mnt" >"$tmp/kernel.txt"
    umount "$mnt"
    detach_all
    restore_check "restore-multidev-$name" "$tmp/kernel.txt" "${imgs[@]}"
    restore_check "restore-multidev-$name-reordered" "$tmp/kernel.txt" \
        "${imgs[2]}" "${imgs[0]}" "${imgs[3]}" "${imgs[1]}"
    restore_partial "restore-multidev-$name-one-image" "$tmp/kernel.txt" no "${imgs[1]}"
    case $d in
        raid0)
            # Data is lost: errors counted and exit 1, or, when a root the
            # whole restore depends on was on the missing device, a clear
            # refusal (exit 2). At least one case must get to counting errors.
            counted=0
            for leave in 1 2 3 4; do
                rest=()
                for i in 1 2 3 4; do [ $i != $leave ] && rest+=("${imgs[i-1]}"); done
                restore_partial "degraded-$name-without-dev$leave" "$tmp/kernel.txt" yes "${rest[@]}"
                [ "$partial_rc" = 1 ] && counted=$((counted + 1))
            done
            if [ $counted -gt 0 ]; then pass "degraded-$name-errors-counted ($counted of 4 cases)"
            else fail "degraded-$name-errors-counted: no degraded restore got to count errors"; fi ;;
        single)
            # Metadata is RAID1: the tree stays readable, file data on the
            # missing device is lost (errors counted).
            for leave in 1 2 3 4; do
                rest=()
                for i in 1 2 3 4; do [ $i != $leave ] && rest+=("${imgs[i-1]}"); done
                restore_partial "degraded-$name-without-dev$leave" "$tmp/kernel.txt" no "${rest[@]}"
            done ;;
        *)
            for leave in 1 2 3 4; do
                rest=()
                for i in 1 2 3 4; do [ $i != $leave ] && rest+=("${imgs[i-1]}"); done
                restore_check "degraded-$name-without-dev$leave" "$tmp/kernel.txt" "${rest[@]}"
            done ;;
    esac
    rm -f "${imgs[@]}"
done

# --- 3: a corrupted copy on a DUP filesystem --------------------------------
# physical IMG LOGICAL LEN MIRROR: where btrfs-map-logical puts a copy (1-based).
physical() {
    btrfs-map-logical -l "$2" -b "$3" "$1" 2>/dev/null | awk -v m="$4" '$1 == "mirror" && $2 == m { print $6; exit }'
}
garble() {  # garble IMG OFFSET LEN
    head -c "$3" /dev/urandom >"$tmp/garbage" &&
        dd if="$tmp/garbage" of="$1" bs=4096 seek="$2" oflag=seek_bytes conv=notrunc status=none
}
img=$tmp/dup.img
truncate -s 256M "$img"
if mkfs.btrfs -q -f -m dup -d dup "$img" >/dev/null 2>&1 && mount -o loop "$img" "$mnt"; then
    python3 - "$mnt" "$tmp/victim.orig" <<'EOF2'
import os, random, sys
rnd = random.Random(9)
data = rnd.randbytes(256 << 10)
for path in (os.path.join(sys.argv[1], "victim"), sys.argv[2]):
    with open(path, "wb") as f:
        f.write(data)
os.mkdir(os.path.join(sys.argv[1], "dir"))
for i in range(30):
    with open(os.path.join(sys.argv[1], "dir", "f%02d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.choice([50, 3000, 9000])))
EOF2
    ino=$(stat -c %i "$mnt/victim")
    sync
    $manifest "$mnt" >"$tmp/kernel-dup.txt"
    umount "$mnt"
    btrfs inspect-internal dump-tree -t 5 "$img" >"$tmp/fstree.txt" 2>/dev/null
    # The victim's (only) data extent, and the leaf holding its extent item.
    read -r dlog dlen < <(awk -v k="key ($ino EXTENT_DATA 0)" 'index($0, k) { f = 1 }
        f && /extent data disk byte/ { print $5, $7; exit }' "$tmp/fstree.txt")
    leaf=$(awk -v k="key ($ino EXTENT_DATA 0)" '/^leaf [0-9]+ items/ { cur = $2 }
        index($0, k) { print cur; exit }' "$tmp/fstree.txt")
    nodesize=$(btrfs inspect-internal dump-super "$img" | awk '$1 == "nodesize" { print $2 }')
    d1=$(physical "$img" "${dlog:-0}" "${dlen:-0}" 1)
    d2=$(physical "$img" "${dlog:-0}" "${dlen:-0}" 2)
    l1=$(physical "$img" "${leaf:-0}" "${nodesize:-0}" 1)
    if [ -z "$d1" ] || [ -z "$d2" ] || [ -z "$l1" ] || [ "$d1" = "$d2" ]; then
        fail "dup-corrupt: cannot locate copies (data $dlog+$dlen at '$d1'/'$d2', leaf $leaf at '$l1')"
    else
        garble "$img" "$d1" "$dlen"
        garble "$img" "$l1" "$nodesize"
        if "$bin/btk-file" cat "$img" /victim 2>"$tmp/cat.err" | cmp -s - "$tmp/victim.orig"; then
            pass "dup-corrupt-copy1-cat (data at $dlog and leaf $leaf read from copy 2)"
        else
            fail "dup-corrupt-copy1-cat: wrong content: $(head -2 "$tmp/cat.err")"
        fi
        restore_check "dup-corrupt-copy1-restore" "$tmp/kernel-dup.txt" "$img"
        garble "$img" "$d2" "$dlen"
        "$bin/btk-file" cat "$img" /victim >/dev/null 2>"$tmp/cat.err"
        rc=$?
        if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/cat.err")" = 1 ] &&
            grep -qi 'checksum mismatch' "$tmp/cat.err"; then
            pass "dup-corrupt-both-cat (exit $rc: $(cat "$tmp/cat.err"))"
        else
            fail "dup-corrupt-both-cat: exit $rc, stderr: $(head -3 "$tmp/cat.err")"
        fi
        rm -rf "$scratch/out"
        "$bin/btk-restore" -s -x -m -S "$img" "$scratch/out" >"$tmp/restore.out" 2>"$tmp/restore.err"
        rc=$?
        if [ $rc = 1 ] && grep -q '; 1 errors,' "$tmp/restore.out"; then
            pass "dup-corrupt-both-restore (1 error, exit 1)"
        else
            fail "dup-corrupt-both-restore: exit $rc: $(cat "$tmp/restore.out") $(head -3 "$tmp/restore.err")"
        fi
        rm -rf "$scratch/out"
    fi
else
    fail "dup-corrupt: cannot create or mount the DUP image"
fi
rm -f "$img"

# --- 4: primary superblock corrupted, mirror at 64 MiB used -----------------
img=$tmp/super.img
truncate -s 320M "$img"
if mkfs.btrfs -q -f "$img" >/dev/null 2>&1 && mount -o loop "$img" "$mnt"; then
    mkdir "$mnt/a" && echo hello >"$mnt/a/b" && head -c 200000 /dev/urandom >"$mnt/c" && ln -s a/b "$mnt/l"
    $manifest "$mnt" >"$tmp/kernel-super.txt"
    umount "$mnt"
    "$bin/btk-file" ls -R "$img" >"$tmp/ls-before.txt" 2>&1
    btrfs inspect-internal dump-super -s 1 "$img" 2>/dev/null | grep -q '^csum.*\[match\]' ||
        fail "super-mirror: the image has no valid superblock mirror 1"
    garble "$img" 65536 4096
    if "$bin/btk-file" ls -R "$img" >"$tmp/ls-after.txt" 2>"$tmp/ls.err" &&
        diff -q "$tmp/ls-before.txt" "$tmp/ls-after.txt" >/dev/null; then
        pass "super-mirror-ls ($(wc -l <"$tmp/ls-after.txt") paths)"
    else
        fail "super-mirror-ls: $(head -3 "$tmp/ls.err")"
    fi
    restore_check "super-mirror-restore-u1" "$tmp/kernel-super.txt" -u 1 "$img"
    "$bin/btk-restore" -u 0 "$img" "$scratch/out0" >/dev/null 2>"$tmp/restore.err"
    rc=$?
    if [ $rc = 2 ] && [ -s "$tmp/restore.err" ]; then
        pass "super-mirror-u0-refused ($(head -1 "$tmp/restore.err"))"
    else
        fail "super-mirror-u0-refused: exit $rc"
    fi
    rm -rf "$scratch/out0"
else
    fail "super-mirror: cannot create or mount the image"
fi
rm -f "$img"

echo "failures: $failures"
[ $failures -eq 0 ]
