#!/usr/bin/env bash
# btk mkfs against btrfs-progs and the kernel: for a matrix of node sizes,
# checksums and metadata profiles (each value at least twice), the image
# passes `btrfs check`, reads with btk-inspect, mounts, takes a tree of files,
# a snapshot created and deleted, passes `btrfs check` again and shows the
# same files after a remount. Also: reproducible bytes with fixed uuids and
# SOURCE_DATE_EPOCH, bad input refused with one line and the image untouched,
# existing filesystems and mounted images refused, a loop block device, and a
# device large enough for the third superblock copy. Multi-device: every
# profile on the device counts it fits (1-4 loop-backed images), every feature
# (quota, squota, block-group-tree, mixed-bg, ...), btrfs check / btk check
# before and after kernel writes, scrub (mirror copies and RAID5/6 parity),
# qgroup reports, bad multi-device input, reproducible bytes on 3 devices.
set -uo pipefail
bin=${1:?usage: test-mkfs.sh CMDS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
manifest="python3 $here/../tools/manifest.py"
mkfs=$bin/btk-mkfs
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "SKIP: *** mkfs vs kernel needs root and loop devices ***"; exit 0
fi
if ! command -v btrfs >/dev/null; then
    echo "SKIP: *** mkfs tests need btrfs-progs (btrfs check) ***"; exit 0
fi
tmp=$(mktemp -d /tmp/btk-mkfs.XXXXXX)
mnt=$tmp/mnt
mkdir -p "$mnt"
loopdev=
loops=()
detach_loops() {
    local l
    for l in "${loops[@]}"; do
        btrfs device scan --forget "$l" >/dev/null 2>&1
        losetup -d "$l" 2>/dev/null
    done
    loops=()
}
cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    [ -n "$loopdev" ] && losetup -d "$loopdev"
    detach_loops
    rm -rf "$tmp"
}
trap cleanup EXIT
src=(/usr/share/doc/[a-f]*)
FSID=3b0c1d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e
DEVUUID=5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9

# check NAME IMG: btrfs check must exit 0 and report no error.
check() {
    local out rc
    out=$(btrfs check "$2" 2>&1); rc=$?
    if [ $rc -ne 0 ] || ! grep -q 'no error found' <<<"$out"; then
        echo "FAIL $1: btrfs check exit $rc"; grep -iE 'error|wrong|mismatch|invalid' <<<"$out" | head -10
        return 1
    fi
}

# kernel_writes PATHS...: on the mounted $mnt, copy PATHS into data/, take a
# snapshot, compare both manifests, delete the snapshot.
kernel_writes() {
    local ok=0
    mkdir "$mnt/data" && cp -a "$@" "$mnt/data/" || ok=1
    btrfs subvolume snapshot "$mnt" "$mnt/snap" >/dev/null || ok=1
    $manifest "$mnt/data" >"$tmp/before.txt" || ok=1
    $manifest "$mnt/snap/data" >"$tmp/snap.txt" || ok=1
    cmp -s "$tmp/before.txt" "$tmp/snap.txt" || { echo "snapshot differs"; ok=1; }
    btrfs subvolume delete -c "$mnt/snap" >/dev/null || ok=1
    return $ok
}

# full NAME SIZE MKFS-OPTIONS...: the whole cycle on a fresh sparse image.
full() {
    local name=$1 size=$2; shift 2
    local img=$tmp/$name.img
    rm -f "$img"
    local err
    if ! err=$("$mkfs" -q -b "$size" "$@" "$img" 2>&1); then
        echo "FAIL mkfs-$name: $err"; return
    fi
    check "mkfs-$name-check" "$img" || return
    if ! "$bin/btk-inspect" dump-tree "$img" >"$tmp/dump.txt" 2>"$tmp/dump.err" || [ ! -s "$tmp/dump.txt" ]; then
        echo "FAIL mkfs-$name-inspect: $(head -3 "$tmp/dump.err")"; return
    fi
    if ! mount -o loop "$img" "$mnt" 2>"$tmp/mount.err"; then
        echo "FAIL mkfs-$name-mount: $(cat "$tmp/mount.err"); $(dmesg | tail -5)"; return
    fi
    local ok=1
    kernel_writes "${src[@]}" || ok=0
    umount "$mnt" || ok=0
    if [ $ok = 0 ]; then echo "FAIL mkfs-$name-write: kernel writes failed; $(dmesg | tail -3)"; return; fi
    check "mkfs-$name-check-after" "$img" || return
    if ! mount -o loop,ro "$img" "$mnt" 2>"$tmp/mount.err"; then
        echo "FAIL mkfs-$name-remount: $(cat "$tmp/mount.err")"; return
    fi
    $manifest "$mnt/data" >"$tmp/after.txt"
    umount "$mnt"
    if ! diff -q "$tmp/before.txt" "$tmp/after.txt" >/dev/null; then
        echo "FAIL mkfs-$name-files: files differ after remount"; diff "$tmp/before.txt" "$tmp/after.txt" | head -5
        return
    fi
    echo "PASS mkfs-$name ($(wc -l <"$tmp/after.txt") paths)"
    rm -f "$img"
}

# Node size x checksum x metadata profile: each value at least twice.
full n4k-crc32c-dup     256M -n 4k  --csum crc32c -m dup
full n16k-xxhash-single 512M -n 16k --csum xxhash -m single
full n64k-sha256-dup    1G   -n 64k --csum sha256 -m dup
full n4k-blake2-single  512M -n 4k  --csum blake2 -m single
full n16k-sha256-dup    256M -n 16k --csum sha256 -m dup
full n64k-crc32c-single 1G   -n 64k --csum crc32c -m single
full n16k-blake2-dup    512M -n 16k --csum blake2 -m dup
full n64k-xxhash-dup    768M -n 64k --csum xxhash -m dup
# Other layouts and features.
full data-dup           512M -d dup
full mixed              512M -M
full no-skinny-no-fst   512M -O ^skinny-metadata -O ^free-space-tree -L "a label"
full defaults           384M


# mfull NAME NDEV SIZE MKFS-OPTIONS...: NDEV fresh images of SIZE as loop
# devices; btrfs check (unless NOPROGS=1: features btrfs-progs 6.2 does not
# know) and btk check, mount, files, snapshot created and deleted, scrub,
# unmount, both checks again. Quota filesystems: qgroup report and show.
mfull() {
    local name=$1 n=$2 size=$3; shift 3
    local imgs=() i err out
    for i in $(seq 1 "$n"); do imgs+=("$tmp/$name.$i.img"); rm -f "$tmp/$name.$i.img"; done
    if ! err=$("$mkfs" -q -b "$size" "$@" "${imgs[@]}" 2>&1); then echo "FAIL mkfs-$name: $err"; return; fi
    for i in "${imgs[@]}"; do loops+=("$(losetup -f --show "$i")"); done
    btrfs device scan "${loops[@]}" >/dev/null 2>&1
    local opts="" l quota=0
    for l in "${loops[@]:1}"; do opts+="${opts:+,}device=$l"; done
    [[ " $* " == *quota* ]] && quota=1
    checks() {  # checks WHEN
        if [ "${NOPROGS:-0}" != 1 ]; then
            check "mkfs-$name-check-$1" "${loops[0]}" || return 1
            # Each "our:" count (recomputed) must equal the "disk:" one after it.
            if [ $quota = 1 ] && { ! out=$(btrfs check --qgroup-report "${loops[0]}" 2>&1) ||
                ! grep -q '^our:' <<<"$out" || grep -qiE 'different|mismatch' <<<"$out" ||
                [ -n "$(awk '/^our:/ {o=$0; sub(/^our:/, "", o)} /^disk:/ {d=$0; sub(/^disk:/, "", d); if (d != o) print}' <<<"$out")" ]; }; then
                echo "FAIL mkfs-$name-qgroup-report-$1"; grep -E '^(our|disk):|ERROR' <<<"$out" | head -4; return 1
            fi
        fi
        if ! out=$("$bin/btk-check" "${loops[@]}" 2>&1); then
            echo "FAIL mkfs-$name-btk-check-$1"; head -5 <<<"$out"; return 1
        fi
    }
    if ! checks before; then detach_loops; return; fi
    if ! mount ${opts:+-o "$opts"} "${loops[0]}" "$mnt" 2>"$tmp/mount.err"; then
        echo "FAIL mkfs-$name-mount: $(cat "$tmp/mount.err"); $(dmesg | tail -3)"; detach_loops; return
    fi
    local ok=1
    kernel_writes "${src[@]:0:3}" || ok=0
    sync
    if [ $quota = 1 ] && ! btrfs qgroup show "$mnt" >"$tmp/qg.txt" 2>&1; then echo "qgroup show: $(cat "$tmp/qg.txt")"; ok=0; fi
    if ! out=$(btrfs scrub start -B "$mnt" 2>&1) || ! grep -q 'no errors found' <<<"$out"; then
        echo "scrub: $(grep -iE 'error|csum|summary' <<<"$out" | head -3)"; ok=0
    fi
    umount "$mnt" || ok=0
    if [ $ok = 0 ]; then echo "FAIL mkfs-$name-write: $(dmesg | tail -3)"; detach_loops; return; fi
    if ! checks after; then detach_loops; return; fi
    echo "PASS mkfs-$name ($n devices, $(wc -l <"$tmp/before.txt") paths)"
    detach_loops
    rm -f "${imgs[@]}"
}

# Profiles x device counts x checksums x node sizes x features.
mfull 1dev-raid0-bgt-quota   1 400M -d raid0 -O block-group-tree -O quota
mfull 2dev-default           2 300M --csum xxhash
mfull 2dev-raid0-raid1       2 300M -d raid0 -m raid1 -n 4k -O quota
mfull 2dev-raid5-raid10      2 400M -d raid5 -m raid10 --csum sha256
mfull 2dev-mixed-raid1       2 300M -M -d raid1 -m raid1
mfull 2dev-dup-dup           2 300M -d dup -m dup -O ^no-holes,^extref
mfull 3dev-raid6-raid1c3     3 400M -d raid6 -m raid1c3 -n 64k --csum blake2
mfull 3dev-raid1-raid0       3 300M -d raid1 -m raid0 -O ^skinny-metadata
mfull 3dev-raid10-raid5      3 300M -d raid10 -m raid5 -O quota
mfull 4dev-raid10-raid1c4    4 300M -d raid10 -m raid1c4 -n 16k
mfull 4dev-raid1c4-raid6     4 300M -d raid1c4 -m raid6 -O block-group-tree --csum xxhash
mfull 4dev-raid5-raid10      4 300M -d raid5 -m raid10 -O ^free-space-tree -n 4k
NOPROGS=1 mfull 2dev-squota  2 300M -O squota -O block-group-tree

# The layout is mkfs.btrfs 6.2's: stripe counts and sizes, sub_stripes.
rm -f "$tmp"/g*.img
if out=$("$mkfs" -v -b 1G -d raid10 -m raid1c4 "$tmp/g1.img" "$tmp/g2.img" "$tmp/g3.img" "$tmp/g4.img" 2>&1) &&
    grep -qE 'DATA\|RAID10 +1:[0-9]+ 2:' <<<"$out" &&
    grep -qE '^ +[0-9]+ +214695936 +DATA\|RAID10' <<<"$out" &&
    grep -qE '^ +[0-9]+ +268435456 +METADATA\|RAID1C4' <<<"$out" &&
    grep -qE '^ +[0-9]+ +8388608 +SYSTEM\|RAID1C4' <<<"$out"; then
    echo "PASS mkfs-layout-raid10-raid1c4"
else echo "FAIL mkfs-layout-raid10-raid1c4:"; echo "$out" | tail -6; fi
rm -f "$tmp"/g*.img

# Reproducibility: same uuids and time give the same bytes.
for i in 1 2; do
    rm -f "$tmp/r$i.img"
    SOURCE_DATE_EPOCH=1234567890 "$mkfs" -q -b 300M -U $FSID --device-uuid $DEVUUID -n 64k --csum blake2 "$tmp/r$i.img"
done
if cmp -s "$tmp/r1.img" "$tmp/r2.img"; then echo "PASS mkfs-reproducible"
else echo "FAIL mkfs-reproducible: $(cmp "$tmp/r1.img" "$tmp/r2.img" 2>&1)"; fi
# Run again over an existing image (-f): still the same bytes.
SOURCE_DATE_EPOCH=1234567890 "$mkfs" -q -f -b 300M -U $FSID --device-uuid $DEVUUID -n 64k --csum blake2 "$tmp/r2.img"
if cmp -s "$tmp/r1.img" "$tmp/r2.img"; then echo "PASS mkfs-reproducible-overwrite"
else echo "FAIL mkfs-reproducible-overwrite: $(cmp "$tmp/r1.img" "$tmp/r2.img" 2>&1)"; fi
if btrfs inspect-internal dump-super "$tmp/r1.img" | grep -q "^fsid[[:space:]]*$FSID"; then echo "PASS mkfs-fsid"
else echo "FAIL mkfs-fsid: -U not used"; fi

# Bad input: one error line, the expected exit status, image untouched.
img=$tmp/r1.img
sum=$(sha256sum <"$img")
bad() {  # bad NAME EXPECTED-RC ARGS...
    local name=$1 want=$2; shift 2
    "$mkfs" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/bad.err")
    if [ $rc -ne "$want" ]; then echo "FAIL mkfs-bad-$name: exit $rc, expected $want: $(head -2 "$tmp/bad.err")"
    elif [ "$lines" -ne 1 ]; then echo "FAIL mkfs-bad-$name: $lines error lines"; head -5 "$tmp/bad.err"
    elif [ "$(sha256sum <"$img")" != "$sum" ]; then echo "FAIL mkfs-bad-$name: image changed"
    else echo "PASS mkfs-bad-$name: $(cat "$tmp/bad.err")"; fi
}
bad unknown-feature   1 -f -O bogus "$img"
bad nodesize-not-pow2 1 -f -n 12k "$img"
bad nodesize-small    1 -f -n 2k "$img"
bad nodesize-huge     1 -f -n 128k "$img"
bad sectorsize        1 -f -s 3k "$img"
bad too-small         1 -f -b 40M "$img"
bad csum              1 -f --csum md5 "$img"
bad raid1-one-device  1 -f -m raid1 "$img"
bad profile           1 -f -d raid7 "$img"
bad uuid              1 -f -U not-a-uuid "$img"
bad label             1 -f -L "$(printf 'x%.0s' $(seq 300))" "$img"
bad mixed-nodesize    1 -f -M -n 16k "$img"
bad existing-fs       1 "$img"
bad bad-size          2 -f -b 12q "$img"
bad unknown-option    2 -f --bogus "$img"
bad no-device         2 -f
bad missing-file      1 "$tmp/does-not-exist.img"

# Bad multi-device input: one line, nothing written to any image.
for i in 1 2 3; do truncate -s 300M "$tmp/b$i.img"; done
truncate -s 60M "$tmp/small.img"
"$mkfs" -q -f "$tmp/b1.img" "$tmp/b2.img" "$tmp/b3.img"
sums() { cat "$tmp"/b?.img "$tmp/small.img" | sha256sum; }
img=$tmp/b1.img
sum=$(sums)
mbad() {  # like bad, over all the images
    local name=$1; shift
    "$mkfs" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    local rc=$?
    if [ $rc -ne 1 ] || [ "$(wc -l <"$tmp/bad.err")" -ne 1 ]; then
        echo "FAIL mkfs-bad-$name: exit $rc: $(head -3 "$tmp/bad.err")"
    elif [ "$(sums)" != "$sum" ]; then echo "FAIL mkfs-bad-$name: an image changed"
    else echo "PASS mkfs-bad-$name: $(cat "$tmp/bad.err")"; fi
}
mbad raid10-one-device   -f -d raid10 "$tmp/b1.img"
mbad raid1c4-3-devices   -f -m raid1c4 "$tmp/b1.img" "$tmp/b2.img" "$tmp/b3.img"
mbad raid6-2-devices     -f -d raid6 "$tmp/b1.img" "$tmp/b2.img"
mbad device-too-small    -f -d raid1 "$tmp/b1.img" "$tmp/small.img"
mbad duplicate-device    -f "$tmp/b1.img" "$tmp/b2.img" "$tmp/b1.img"
mbad unknown-profile     -f -m raid3 "$tmp/b1.img" "$tmp/b2.img"
mbad bgt-without-fst     -f -O block-group-tree,^free-space-tree "$tmp/b1.img" "$tmp/b2.img"
mbad existing-without-f  "$tmp/b1.img" "$tmp/b2.img"
mbad mixed-profiles      -f -M -d raid1 -m single "$tmp/b1.img" "$tmp/b2.img"

# Reproducible bytes with several devices (RAID5 parity included).
for r in 1 2; do
    rm -f "$tmp"/rep$r.*.img
    SOURCE_DATE_EPOCH=1234567890 "$mkfs" -q -b 200M -U $FSID --device-uuid $DEVUUID -d raid5 -m raid6 \
        "$tmp/rep$r.1.img" "$tmp/rep$r.2.img" "$tmp/rep$r.3.img"
done
if cmp -s <(cat "$tmp"/rep1.*.img) <(cat "$tmp"/rep2.*.img) && [ -s "$tmp/rep1.3.img" ]; then
    echo "PASS mkfs-reproducible-3dev"
else echo "FAIL mkfs-reproducible-3dev"; fi
rm -f "$tmp"/rep?.*.img "$tmp"/b?.img "$tmp/small.img"

# Existing filesystems of other kinds are refused without -f.
if command -v mkfs.ext4 >/dev/null; then
    truncate -s 300M "$tmp/ext4.img" && mkfs.ext4 -q -F "$tmp/ext4.img"
    img=$tmp/ext4.img; sum=$(sha256sum <"$img")
    bad ext4-without-f 1 "$img"
    if "$mkfs" -q -f "$img" && check mkfs-ext4-with-f "$img" && [ "$(blkid -o value -s TYPE "$img")" = btrfs ]; then
        echo "PASS mkfs-ext4-with-f"
    else echo "FAIL mkfs-ext4-with-f: not overwritten cleanly ($(blkid "$img"))"; fi
fi
truncate -s 300M "$tmp/progs.img" && mkfs.btrfs -q -f "$tmp/progs.img" >/dev/null
img=$tmp/progs.img; sum=$(sha256sum <"$img")
bad btrfs-without-f 1 "$img"

# A mounted image is refused even with -f.
if mount -o loop "$img" "$mnt"; then
    bad mounted 1 -f "$img"
    umount "$mnt"
fi

# A loop block device (discard path, size from the kernel).
truncate -s 400M "$tmp/blk.img"
if loopdev=$(losetup -f --show "$tmp/blk.img"); then
    if "$mkfs" -q -f -L blockdev "$loopdev" && check mkfs-blockdev "$loopdev" &&
        mount "$loopdev" "$mnt" && cp -a "${src[0]}" "$mnt/" && umount "$mnt" && check mkfs-blockdev-after "$loopdev"; then
        echo "PASS mkfs-blockdev"
    else echo "FAIL mkfs-blockdev"; mountpoint -q "$mnt" && umount "$mnt"; fi
    img=$loopdev; sum=$(sha256sum <"$img")
    if mount "$loopdev" "$mnt"; then
        bad blockdev-mounted 1 -f "$loopdev"
        umount "$mnt"
    fi
    losetup -d "$loopdev"; loopdev=
fi

# Large enough for all three superblock copies (sparse).
img=$tmp/big.img
rm -f "$img"
if "$mkfs" -q -b 300G "$img" && check mkfs-300g "$img"; then
    n=$(btrfs inspect-internal dump-super -a "$img" | grep -c 'csum.*\[match\]')
    if [ "$n" = 3 ] && mount -o loop "$img" "$mnt" && touch "$mnt/x" && umount "$mnt" && check mkfs-300g-after "$img"; then
        echo "PASS mkfs-300g (3 superblock copies)"
    else echo "FAIL mkfs-300g: $n valid superblock copies"; mountpoint -q "$mnt" && umount "$mnt"; fi
fi
rm -f "$img"
exit 0
