#!/usr/bin/env bash
# btk file write operations against the kernel and btrfs check:
#  (a) model-based randomized test: seeded random operations applied to a
#      host directory (the model) and, through `btk file batch`, to an image;
#      then btrfs check and btk check are clean and the kernel's view equals
#      the model's manifest; the kernel writes more, unmounts, both checks are
#      still clean. Images from btk mkfs and mkfs.btrfs, several node sizes,
#      checksums, DUP and single; one transaction per batch and one every N.
#      Every commit reports max_cow_per_block <= 1 (no block copied twice).
#  (b) crash test: a batch is cut after its k-th write, for every k; each
#      image is clean under both checks, mounts, and shows exactly the old or
#      exactly the new tree.
#  (c) ENOSPC: filling an image fails with a clear error, image unchanged.
#  (d) errors reported like coreutils, one line, image unchanged; a mounted
#      image is refused.
set -uo pipefail
bin=${1:?usage: test-file-write.sh CMDS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/../tools
. "$here/../lib/scratch.sh"
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "SKIP: *** btk file write tests need root and loop devices ***"; exit 0
fi
if ! command -v btrfs >/dev/null || ! command -v mkfs.btrfs >/dev/null; then
    echo "SKIP: *** btk file write tests need btrfs-progs ***"; exit 0
fi
T=$(mktemp -d /tmp/btk-fwrite.XXXXXX)
mnt=$T/mnt
mkdir -p "$mnt"
cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    scratch_umount "$T"
    rm -rf "$T"
}
trap cleanup EXIT
S=$(scratch_mount "$T") || { echo "FAIL file-write: no scratch filesystem"; exit 1; }
file=$bin/btk-file
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -15; }

# clean NAME IMG: btrfs check and btk check report no error.
# (more devices of the same filesystem may follow IMG)
clean() {
    if ! btrfs check "$2" >"$T/progs.out" 2>&1; then bad "$1: btrfs check" "$T/progs.out"; return 1; fi
    if ! "$bin/btk-check" "${@:2}" >"$T/btk.out" 2>&1; then bad "$1: btk check" "$T/btk.out"; return 1; fi
    return 0
}
manifest() { python3 "$tools/manifest.py" "$1"; }

# --- (a) model-based randomized test -------------------------------------
# config: name, maker, options
configs=(
    "btk16k|btk|-n 16k"
    "btk4k-sha256-dup|btk|-n 4k --csum sha256 -d dup -m dup"
    "progs64k-xxhash-single|progs|-n 64k --csum xxhash -m single"
    "progs16k-holes-blake2|progs|-n 16k --csum blake2 -O ^no-holes"
    "progs-raid1-2dev|progs2|-m raid1 -d raid1"
)
seed=${BTK_MODEL_SEED:-20261121}
ops=${BTK_MODEL_OPS:-400}
for c in "${configs[@]}"; do
    IFS='|' read -r name maker opts <<<"$c"
    img=$T/$name.img
    rm -f "$img" "$img.2"
    truncate -s 768M "$img"
    devs=()
    extra=()
    # shellcheck disable=SC2086
    if [ "$maker" = btk ]; then "$bin/btk-mkfs" -q -f $opts "$img"
    elif [ "$maker" = progs2 ]; then
        truncate -s 768M "$img.2"
        mkfs.btrfs -q -f $opts "$img" "$img.2" >/dev/null
        devs=(--device "$img.2")
        extra=("$img.2")
    else mkfs.btrfs -q -f $opts "$img" >/dev/null; fi
    host=$S/model-$name
    rm -rf "$host" "$S/stage-$name"
    mkdir -p "$host"
    failed=0
    maxcow=0
    for round in 1 2 3; do
        python3 "$tools/model_ops.py" --seed $((seed + round)) --count "$ops" --host "$host" \
            --stage "$S/stage-$name" --script "$T/ops.txt" --names-prefix "r$round" || { failed=1; break; }
        every=()
        [ "$round" = 2 ] && every=(--commit-every 37)
        [ "$round" = 3 ] && every=(--commit-every 1)
        if ! BTK_TXN_STATS=1 "$file" batch "${every[@]}" "${devs[@]}" "$img" "$T/ops.txt" >"$T/batch.out" 2>&1; then
            bad "model $name round $round: batch failed" "$T/batch.out"; failed=1; break
        fi
        m=$(sed -n 's/.*max_cow_per_block \([0-9]*\).*/\1/p' "$T/batch.out" | sort -n | tail -1)
        [ "${m:-0}" -gt "$maxcow" ] && maxcow=$m
    done
    [ $failed = 1 ] && continue
    if [ "$maxcow" -le 1 ]; then ok "model $name: no block copied twice in one transaction (max $maxcow)"
    else bad "model $name: a block was copied $maxcow times in one transaction"; fi
    loops=()
    if [ ${#devs[@]} -gt 0 ]; then
        loops=("$(losetup -f --show "$img.2")")
        btrfs device scan "${loops[0]}" >/dev/null 2>&1
    fi
    clean "model $name after btk" "$img" "${extra[@]}" && ok "model $name: btrfs check and btk check clean after $((3 * ops)) operations"
    if ! mount -o loop "$img" "$mnt" 2>"$T/mount.err"; then
        bad "model $name: mount" "$T/mount.err"
        for l in "${loops[@]}"; do losetup -d "$l"; done
        continue
    fi
    manifest "$host" >"$T/want.txt"
    manifest "$mnt" >"$T/got.txt"
    if diff -u "$T/want.txt" "$T/got.txt" >"$T/diff.txt"; then ok "model $name: kernel view equals the model"
    else bad "model $name: kernel view differs from the model" "$T/diff.txt"; fi
    # The kernel writes more on top, then unmounts.
    cp -a /usr/share/doc/gzip "$mnt/kernel-added" 2>/dev/null || mkdir "$mnt/kernel-added"
    first=$(ls "$mnt" | grep -v kernel-added | head -1)
    [ -n "$first" ] && rm -rf "${mnt:?}/$first"
    umount "$mnt"
    clean "model $name after kernel" "$img" "${extra[@]}" && ok "model $name: still clean after the kernel wrote to it"
    for l in "${loops[@]}"; do losetup -d "$l"; done
done

# --- (a1) new chunks in every multi-device profile ---------------------------
head -c $((220 << 20)) /dev/urandom >"$S/chunky.bin"
for spec in raid0:2 raid10:4 raid1c3:3 raid1c4:4 dup:1; do
    prof=${spec%:*}
    nd=${spec#*:}
    imgs=()
    for i in $(seq "$nd"); do
        imgs+=("$T/p$i.img")
        rm -f "$T/p$i.img"
        truncate -s 640M "$T/p$i.img"
    done
    if ! mkfs.btrfs -q -f -d "$prof" -m "$prof" "${imgs[@]}" >"$T/mkfs.out" 2>&1; then
        echo "SKIP: *** mkfs.btrfs cannot make $prof here ***"; continue
    fi
    devargs=()
    for i in $(seq 2 "$nd"); do devargs+=(--device "${imgs[$((i - 1))]}"); done
    before=$(btrfs inspect-internal dump-tree -t chunk "${imgs[0]}" 2>/dev/null | grep -c CHUNK_ITEM)
    if ! "$file" put "${devargs[@]}" "${imgs[0]}" "$S/chunky.bin" /chunky >"$T/put.out" 2>&1; then
        bad "chunks $prof: put failed" "$T/put.out"; continue
    fi
    after=$(btrfs inspect-internal dump-tree -t chunk "${imgs[0]}" 2>/dev/null | grep -c CHUNK_ITEM)
    loops=()
    for i in $(seq 2 "$nd"); do loops+=("$(losetup -f --show "${imgs[$((i - 1))]}")"); done
    for l in "${loops[@]}"; do btrfs device scan "$l" >/dev/null 2>&1; done
    if clean "chunks $prof" "${imgs[@]}" && mount -o loop "${imgs[0]}" "$mnt" 2>"$T/mount.err"; then
        if cmp -s "$S/chunky.bin" "$mnt/chunky" && [ "$after" -gt "$before" ]; then
            ok "chunks $prof on $nd devices: $((after - before)) new chunks, both checks clean, data reads back"
        else
            bad "chunks $prof: data differs or no new chunk ($before -> $after chunks)"
        fi
        umount "$mnt"
    else
        bad "chunks $prof: mount" "$T/mount.err"
    fi
    for l in "${loops[@]}"; do losetup -d "$l"; done
done
rm -f "$S/chunky.bin"

# --- (a2) kernel-written corpus: snapshots, reflinks, compression, qgroups --
# Writing into trees that share blocks with snapshots exercises the shared
# block cases (update_ref_for_cow); the snapshots must not change.
if [ -n "${CORPUS_DIR:-}" ] && ls "$CORPUS_DIR"/*.img >/dev/null 2>&1; then
    for src in "$CORPUS_DIR"/*.img; do
        n=$(basename "$src" .img)
        w=$T/corpus.img
        cp --sparse=always "$src" "$w"
        {
            echo "put -r /usr/share/doc/gzip /btk-added"
            echo "mkdir -p /btk-added/deeper/still"
            echo "rm -r /btk-added/deeper"
        } >"$T/corpus-ops.txt"
        snap_before=
        if [ "$n" = subvols ]; then
            # Change the source subvolume and a writable snapshot of it; the
            # read-only snapshot must stay as it was.
            mount -o loop,ro "$w" "$mnt" && manifest "$mnt/snap-ro" >"$T/snap-before.txt" && umount "$mnt"
            snap_before=$T/snap-before.txt
            for d in /sv1 /snap-rw; do
                echo "put -r /usr/share/doc/gzip $d/btk-in-snapshot"
                first=$(cd "$T" && mount -o loop,ro "$w" "$mnt" && ls "$mnt$d" | grep -v nested | head -1; umount "$mnt")
                [ -n "$first" ] && echo "rm -r '$d/$first'"
            done >>"$T/corpus-ops.txt"
        fi
        if ! "$file" batch "$w" "$T/corpus-ops.txt" >"$T/corpus.out" 2>&1; then
            bad "corpus $n: batch failed" "$T/corpus.out"; continue
        fi
        clean "corpus $n" "$w" || continue
        if ! mount -o loop "$w" "$mnt" 2>"$T/mount.err"; then bad "corpus $n: mount" "$T/mount.err"; continue; fi
        if ! diff -q <(manifest /usr/share/doc/gzip) <(manifest "$mnt/btk-added") >/dev/null; then
            bad "corpus $n: the kernel does not see the added tree"
        elif [ -n "$snap_before" ] && ! diff -q "$snap_before" <(manifest "$mnt/snap-ro") >/dev/null; then
            bad "corpus $n: the read-only snapshot changed"
        else
            [ "$n" = qgroups ] && btrfs quota rescan -w "$mnt" >/dev/null 2>&1
            umount "$mnt"
            clean "corpus $n after mount" "$w" && ok "corpus $n: written offline, both checks clean, kernel sees it${snap_before:+, read-only snapshot unchanged}"
        fi
        mountpoint -q "$mnt" && umount "$mnt"
    done
else
    echo "SKIP: *** no kernel corpus in CORPUS_DIR: writes into kernel-written images not tested ***"
fi

# --- (a3) free space tree: fragmentation turns a group's entries into bitmaps
# and back, as the kernel does; btrfs check verifies both forms.
fr=$T/frag.img
truncate -s 1G "$fr"
"$bin/btk-mkfs" -q -f "$fr"
head -c 8192 /dev/urandom >"$S/8k.bin"
{ for i in $(seq 1 2400); do echo "put $S/8k.bin /f$i"; done; } >"$T/frag1.txt"
{ for i in $(seq 1 2 2400); do echo "rm /f$i"; done; } >"$T/frag2.txt"
{ for i in $(seq 2 2 2400); do echo "rm /f$i"; done; } >"$T/frag3.txt"
"$file" batch "$fr" "$T/frag1.txt" && "$file" batch "$fr" "$T/frag2.txt"
bitmaps=$("$bin/btk-inspect" dump-tree -t 10 "$fr" | grep -c FREE_SPACE_BITMAP)
if [ "$bitmaps" -gt 1 ] && clean "fst bitmaps" "$fr"; then
    ok "free space tree: 1200 holes in data groups stored as $bitmaps bitmap items, both checks clean"
else
    [ "$bitmaps" -gt 1 ] || bad "free space tree: $bitmaps bitmaps after fragmenting the data groups"
fi
"$file" batch "$fr" "$T/frag3.txt"
after=$("$bin/btk-inspect" dump-tree -t 10 "$fr" | grep -c FREE_SPACE_BITMAP)
# A group goes back to extent items below its low threshold (100 below the
# high one); a small group whose low threshold is 0 keeps its bitmaps.
if [ "$after" -lt "$bitmaps" ] && clean "fst extents again" "$fr"; then
    ok "free space tree: $((bitmaps - after)) bitmap items converted back to extents once the groups were whole, both checks clean"
else
    [ "$after" -lt "$bitmaps" ] || bad "free space tree: still $after bitmaps after freeing everything"
fi
mount -o loop "$fr" "$mnt" && cp -a /usr/share/doc/gzip "$mnt/" && umount "$mnt" && clean "fst after kernel" "$fr" &&
    ok "free space tree: the kernel accepts it and writes on"

# --- (b) crash test --------------------------------------------------------
base=$T/crash-base.img
truncate -s 256M "$base"
"$bin/btk-mkfs" -q -f -n 4k "$base"
"$file" put -r "$base" /usr/share/doc/gzip /old >/dev/null 2>&1
mount -o loop "$base" "$mnt" && manifest "$mnt" >"$T/old.txt" && umount "$mnt"
# Enough work to split leaves, grow trees and free the old tree's blocks.
{
    echo "mkdir /new"
    echo "put /usr/share/doc/gzip/copyright /new/copyright"
    echo "rm -r /old"
    echo "symlink target /new/link"
    echo "setxattr /new user.a value"
    for i in $(seq 1 60); do echo "mkdir /new/dir-with-a-long-name-$i"; done
    echo "put -r /usr/share/doc/gzip /new/gz"
    echo "put /etc/hostname /new/small"
} >"$T/crash.txt"
cp "$base" "$T/full.img"
"$file" batch "$T/full.img" "$T/crash.txt" >/dev/null 2>&1
mount -o loop "$T/full.img" "$mnt" && manifest "$mnt" >"$T/new.txt" && umount "$mnt"
k=1
crash_fail=0
while :; do
    cp "$base" "$T/crash.img"
    BTK_FAIL_AFTER_WRITES=$k "$file" batch "$T/crash.img" "$T/crash.txt" >"$T/crash.out" 2>&1
    rc=$?
    if ! clean "crash k=$k" "$T/crash.img"; then crash_fail=1; break; fi
    if ! mount -o loop "$T/crash.img" "$mnt" 2>"$T/mount.err"; then bad "crash k=$k: mount" "$T/mount.err"; crash_fail=1; break; fi
    manifest "$mnt" >"$T/got.txt"
    umount "$mnt"
    if ! cmp -s "$T/got.txt" "$T/old.txt" && ! cmp -s "$T/got.txt" "$T/new.txt"; then
        bad "crash k=$k: neither the old nor the new tree"; crash_fail=1; break
    fi
    if [ $rc = 0 ]; then
        if cmp -s "$T/got.txt" "$T/new.txt"; then break; fi
        bad "crash k=$k: batch succeeded but the new tree is not there"; crash_fail=1; break
    fi
    k=$((k + 1))
    [ $k -gt 2000 ] && { bad "crash: batch never finished"; crash_fail=1; break; }
done
[ $crash_fail = 0 ] && ok "crash: cut after each of $k writes in turn, every image clean and old or new"

# --- (c) ENOSPC --------------------------------------------------------------
small=$T/small.img
truncate -s 128M "$small"
"$bin/btk-mkfs" -q -f "$small"
head -c $((200 << 20)) /dev/urandom >"$S/big.bin"
before=$(sha256sum <"$small")
if "$file" put "$small" "$S/big.bin" /big >"$T/enospc.out" 2>&1; then
    bad "enospc: putting 200 MiB into 128 MiB succeeded"
elif ! grep -q "no space left" "$T/enospc.out" || [ "$(wc -l <"$T/enospc.out")" != 1 ]; then
    bad "enospc: not one clear error line" "$T/enospc.out"
elif [ "$(sha256sum <"$small")" != "$before" ]; then
    bad "enospc: the image changed"
else
    clean "enospc" "$small" && ok "enospc: one clear error ($(cat "$T/enospc.out")), image unchanged and clean"
fi
rm -f "$S/big.bin"

# --- (d) errors ----------------------------------------------------------------
e=$T/err.img
truncate -s 128M "$e"
"$bin/btk-mkfs" -q -f "$e"
"$file" mkdir -p "$e" /d/sub && "$file" put "$e" /etc/hostname /d/file
long=$(printf 'n%.0s' $(seq 256))
expect_err() {  # expect_err NAME MESSAGE-REGEX ARGS...
    local name=$1 re=$2; shift 2
    local before after
    before=$(sha256sum <"$e")
    if "$file" "$@" >"$T/err.out" 2>&1; then bad "error $name: succeeded"; return; fi
    after=$(sha256sum <"$e")
    if [ "$(wc -l <"$T/err.out")" != 1 ] || ! grep -qE "$re" "$T/err.out"; then bad "error $name: message" "$T/err.out"; return; fi
    [ "$before" = "$after" ] && ok "error $name: $(cat "$T/err.out")" || bad "error $name: image changed"
}
expect_err exists "File exists" mkdir "$e" /d
expect_err missing-parent "No such file or directory" mkdir "$e" /x/y
expect_err not-empty "Directory not empty" rm "$e" /d
expect_err no-such "No such file or directory" rm "$e" /nope
expect_err not-dir "Not a directory" mkdir "$e" /d/file/x
expect_err name-too-long "File name too long" mkdir "$e" "/$long"
expect_err bad-mode "invalid mode" chmod "$e" 9999 /d
expect_err no-attr "No such attribute" rmxattr "$e" /d user.none
mount -o loop "$e" "$mnt"
expect_err mounted "is mounted" mkdir "$e" /m
umount "$mnt"
clean "errors" "$e" && ok "errors: image clean after refused operations"

# --- (e) refusals: a log tree (unless --zero-log), unknown feature bits ---
# super_set IMG OFFSET VALUE: a little-endian u64 in every superblock copy,
# crc32c fixed.
super_set() {
    python3 - "$@" <<'PY'
import struct, sys
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff
img, off, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
with open(img, "r+b") as f:
    for sb in (0x10000, 0x4000000, 0x4000000000):
        f.seek(sb)
        b = bytearray(f.read(4096))
        if len(b) < 4096 or b[64:72] != b"_BHRfS_M":
            continue
        b[off:off + 8] = struct.pack("<Q", val)
        b[0:4] = struct.pack("<I", crc32c(bytes(b[32:])))
        f.seek(sb)
        f.write(b)
PY
}
lg=$T/log.img
truncate -s 128M "$lg"
"$bin/btk-mkfs" -q -f "$lg"
cp "$lg" "$T/feat.img"
log_root=$(btrfs inspect-internal dump-super "$lg" | awk '$1 == "root" {print $2}')
super_set "$lg" 96 "$log_root"   # log_root points at some tree block: a log tree is present
expect_refusal() {  # NAME REGEX IMG ARGS...
    local name=$1 re=$2 img=$3; shift 3
    local before
    before=$(sha256sum <"$img")
    if "$file" "$@" >"$T/ref.out" 2>&1; then bad "refuse $name: accepted"; return; fi
    if ! grep -qE "$re" "$T/ref.out" || [ "$(sha256sum <"$img")" != "$before" ]; then bad "refuse $name" "$T/ref.out"; return; fi
    ok "refuse $name: $(cat "$T/ref.out")"
}
expect_refusal log-tree "log tree" "$lg" mkdir "$lg" /x
if "$file" mkdir --zero-log "$lg" /x >"$T/zl.out" 2>&1 && [ "$(btrfs inspect-internal dump-super "$lg" | awk '$1 == "log_root" {print $2}')" = 0 ]; then
    clean "zero-log" "$lg" && ok "--zero-log: log tree dropped, change committed, image clean"
else
    bad "--zero-log" "$T/zl.out"
fi
incompat=$(btrfs inspect-internal dump-super "$T/feat.img" | awk '$1 == "incompat_flags" {print $2}')
super_set "$T/feat.img" 188 $((incompat | (1 << 40)))
expect_refusal unknown-incompat "not supported for writing" "$T/feat.img" mkdir "$T/feat.img" /x
