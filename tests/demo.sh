#!/usr/bin/env bash
# ./run demo: make a small btrfs image, then look inside it and restore it
# with btk, without mounting it.
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR}
bin=$build/cmds
export PATH=$bin:$PATH
work=$(mktemp -d /tmp/btk-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
img=$work/demo.img
src=$work/src

# A source tree: documentation text, a symlink, a hard link, a sparse file.
mkdir -p "$src/docs" "$src/bin"
for d in /usr/share/doc/*/; do
    [ -f "$d/copyright" ] && cp "$d/copyright" "$src/docs/$(basename "$d").txt"
done 2>/dev/null || true
seq 1 20000 >"$src/numbers.txt"
ln "$src/numbers.txt" "$src/bin/numbers-hardlink"
ln -s ../numbers.txt "$src/bin/numbers-link"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

truncate -s 256M "$img"
step "mkfs.btrfs --rootdir src demo.img   (btrfs-progs makes the image)"
mkfs.btrfs -q -f --rootdir "$src" "$img" >/dev/null
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
    step "mount, snapshot, unmount   (the kernel adds a snapshot and a compressed file)"
    mnt=$work/mnt && mkdir "$mnt"
    mount -o loop,compress=zstd "$img" "$mnt"
    seq 1 50000 >"$mnt/compressed.txt"
    truncate -s 64M "$mnt/sparse.bin" && echo end >>"$mnt/sparse.bin"
    btrfs -q subvolume snapshot -r "$mnt" "$mnt/snapshot"
    umount "$mnt"
fi

step "btk inspect dump-super demo.img | head -12"
btk inspect dump-super "$img" >"$work/o" && head -12 "$work/o"
step "btk inspect dump-tree -t fs demo.img | head -20"
btk inspect dump-tree -t fs "$img" >"$work/o" && head -20 "$work/o"
step "btk file ls -l demo.img /"
btk file ls -l "$img" /
step "btk file cat demo.img /numbers.txt | tail -3"
btk file cat "$img" /numbers.txt >"$work/o" && tail -3 "$work/o"
step "btk restore --snapshots --xattr --metadata --symlinks demo.img out/"
btk restore --snapshots --xattr --metadata --symlinks "$img" "$work/out"
step "diff -r src out   (no output: identical)"
diff -r --exclude=compressed.txt --exclude=snapshot --exclude=sparse.bin "$src" "$work/out" && echo "identical"
if [ -e "$work/out/sparse.bin" ]; then
    step "du -h --apparent-size out/sparse.bin; du -h out/sparse.bin   (holes stay holes)"
    du -h --apparent-size "$work/out/sparse.bin"; du -h "$work/out/sparse.bin"
fi
