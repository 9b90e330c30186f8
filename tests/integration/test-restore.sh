#!/usr/bin/env bash
# btk restore against the kernel's view: for every image of the kernel-written
# corpus, mount it read-only and take a manifest (paths, types, modes, owners,
# sizes, content hashes, xattrs, link targets, devices, hard-link groups), then
# restore it with btk (all metadata, snapshots included) and compare manifests.
# Regular files' mtimes are compared too. Also checks sparse files stay sparse.
set -uo pipefail
bin=${1:?usage: test-restore.sh CMDS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
manifest="python3 $here/../tools/manifest.py"
corpus=${CORPUS_DIR:-}
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "SKIP: *** restore vs kernel needs root and loop devices ***"; exit 0
fi
if [ -z "$corpus" ] || ! ls "$corpus"/*.img >/dev/null 2>&1; then
    echo "SKIP: *** no corpus images in '${corpus}' ***"; exit 0
fi
tmp=$(mktemp -d /tmp/btk-restore.XXXXXX)
mnt=$tmp/mnt
mkdir -p "$mnt"
. "$here/../lib/scratch.sh"
cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    scratch_umount "$tmp"
    rm -rf "$tmp"
}
trap cleanup EXIT
scratch=$(scratch_mount "$tmp") || { echo "FAIL restore: cannot set up scratch fs"; exit 1; }

for img in "$corpus"/*.img; do
    name=$(basename "$img" .img)
    if ! mount -o loop,ro "$img" "$mnt" 2>"$tmp/mount.err"; then
        echo "FAIL restore-$name: kernel cannot mount: $(cat "$tmp/mount.err")"; continue
    fi
    $manifest "$mnt" >"$tmp/kernel.txt"
    $manifest --mtime "$mnt" | awk -F'\t' '$2=="reg"' >"$tmp/kernel-mtime.txt"
    umount "$mnt"
    out=$scratch/out-$name
    "$bin/btk-restore" --snapshots --xattr --metadata --symlinks "$img" "$out" >"$tmp/restore.out" 2>"$tmp/restore.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL restore-$name: exit $rc: $(head -3 "$tmp/restore.err")"; rm -rf "$out"; continue
    fi
    $manifest "$out" >"$tmp/btk.txt"
    $manifest --mtime "$out" | awk -F'\t' '$2=="reg"' >"$tmp/btk-mtime.txt"
    if ! diff -u "$tmp/kernel.txt" "$tmp/btk.txt" >"$tmp/diff.txt"; then
        echo "FAIL restore-$name: manifest differs from the kernel's view"; head -20 "$tmp/diff.txt"
    elif ! diff -u "$tmp/kernel-mtime.txt" "$tmp/btk-mtime.txt" >"$tmp/diff.txt"; then
        echo "FAIL restore-$name: file mtimes differ"; head -10 "$tmp/diff.txt"
    else
        echo "PASS restore-$name ($(wc -l <"$tmp/kernel.txt") paths)"
    fi
    rm -rf "$out"
done

# Holes stay holes: a 64 MiB file with 4 KiB of data restores to < 1 MiB of blocks.
img=$tmp/sparse.img
truncate -s 128M "$img" && mkfs.btrfs -q -f "$img" >/dev/null && mount -o loop "$img" "$mnt" &&
    truncate -s 64M "$mnt/sparse" && printf 'x%.0s' $(seq 4096) | dd of="$mnt/sparse" bs=4096 seek=1000 conv=notrunc status=none &&
    umount "$mnt"
"$bin/btk-restore" "$img" "$tmp/sp" >/dev/null 2>&1
blocks=$(stat -c %b "$tmp/sp/sparse" 2>/dev/null || echo 999999)
size=$(stat -c %s "$tmp/sp/sparse" 2>/dev/null || echo 0)
if [ "$size" = 67108864 ] && [ "$blocks" -lt 2048 ]; then
    echo "PASS restore-sparse (64 MiB file, $blocks blocks)"
else
    echo "FAIL restore-sparse: size $size, $blocks 512-byte blocks"
fi

# Dry run writes nothing and --path-regex selects.
"$bin/btk-restore" --dry-run "$img" "$tmp/dry" >/dev/null 2>&1
if [ ! -e "$tmp/dry" ]; then echo "PASS restore-dry-run"; else echo "FAIL restore-dry-run: target created"; fi

# --path-regex: only matching files; a bad expression is one error line, exit 2.
mount -o loop "$img" "$mnt" && echo a >"$mnt/keep-me" && echo b >"$mnt/drop-me" && umount "$mnt"
"$bin/btk-restore" --path-regex '^/keep' "$img" "$tmp/rx" >/dev/null 2>&1
if [ -f "$tmp/rx/keep-me" ] && [ ! -e "$tmp/rx/drop-me" ] && [ ! -e "$tmp/rx/sparse" ]; then
    echo "PASS restore-path-regex"
else
    echo "FAIL restore-path-regex: $(ls "$tmp/rx" 2>&1 | tr '\n' ' ')"
fi
"$bin/btk-restore" --path-regex '(' "$img" "$tmp/rx2" >/dev/null 2>"$tmp/rx.err"; rc=$?
if [ $rc = 2 ] && [ "$(wc -l <"$tmp/rx.err")" = 1 ] && [ ! -e "$tmp/rx2" ]; then
    echo "PASS restore-bad-regex"
else
    echo "FAIL restore-bad-regex: exit $rc: $(cat "$tmp/rx.err")"
fi
