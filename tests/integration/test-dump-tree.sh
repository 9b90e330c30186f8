#!/usr/bin/env bash
# test-dump-tree.sh CMDS_DIR
#
# Compares `btk-inspect dump-tree` with `btrfs inspect-internal dump-tree` of
# btrfs-progs 6.2, byte for byte (stdout only), over a set of option
# combinations, for every image in $CORPUS_DIR (*.img) and a few images this
# script builds itself (with mkfs.btrfs --rootdir, and when run as root with
# loop mounts too).
#
#   CMDS_DIR      build directory holding btk-inspect (BTK_INSPECT overrides)
#   CORPUS_DIR    optional directory of *.img images (tests/corpus/make-corpus.sh)
#   KEEP_TMP=1    keep the scratch directory
#
# Prints PASS/FAIL lines (a FAIL with the head of the diff), then
# "N passed, N failed"; exits 1 when anything failed. Prints "SKIP: ..." and
# exits 0 when btrfs-progs 6.2 is not installed.
set -u
export LC_ALL=C TZ=${TZ:-UTC}

BTK=${BTK_INSPECT:-${1:-}/btk-inspect}
if [[ -z ${BTK_INSPECT:-} && -z ${1:-} ]]; then
    echo "usage: $0 CMDS_DIR   (or set BTK_INSPECT)" >&2
    exit 2
fi
if [[ ! -x $BTK ]]; then
    echo "FAIL: $BTK is not an executable" >&2
    exit 1
fi
if ! command -v btrfs >/dev/null 2>&1 || ! command -v mkfs.btrfs >/dev/null 2>&1; then
    echo "SKIP: btrfs-progs is not installed"
    exit 0
fi
PROGS_VERSION=$(btrfs --version 2>/dev/null | head -n1)
if [[ $PROGS_VERSION != "btrfs-progs v6.2" ]]; then
    echo "SKIP: output is compared with btrfs-progs v6.2, found '$PROGS_VERSION'"
    exit 0
fi

TMP=$(mktemp -d /tmp/btk-dump-tree.XXXXXX)
MNT=$TMP/mnt
LOOP_MOUNTED=""
cleanup() {
    if [[ -n $LOOP_MOUNTED ]]; then umount "$MNT" 2>/dev/null; fi
    if [[ ${KEEP_TMP:-0} != 1 ]]; then rm -rf "$TMP"; else echo "kept $TMP"; fi
}
trap cleanup EXIT
mkdir -p "$MNT"

passed=0
failed=0

# compare NAME IMAGE [OPTIONS...]
compare() {
    local name=$1 img=$2
    shift 2
    btrfs inspect-internal dump-tree "$@" "$img" >"$TMP/want" 2>/dev/null
    "$BTK" dump-tree "$@" "$img" >"$TMP/got" 2>"$TMP/got.err"
    if cmp -s "$TMP/want" "$TMP/got"; then
        passed=$((passed + 1))
        echo "PASS: $name: dump-tree $*"
    else
        failed=$((failed + 1))
        echo "FAIL: $name: dump-tree $*"
        diff "$TMP/want" "$TMP/got" | head -n 12 | sed 's/^/    /'
        head -n 3 "$TMP/got.err" | sed 's/^/    stderr: /'
    fi
}

# --- images built here -----------------------------------------------------

IMAGES=()

# A directory tree with the inode kinds mkfs --rootdir can copy.
make_rootdir() {
    local d=$1
    mkdir -p "$d/dir/sub" "$d/empty"
    printf 'small inline file\n' >"$d/dir/small"
    head -c 300000 /dev/urandom >"$d/dir/big"
    head -c 5000 /dev/zero >"$d/zeros"
    ln -s dir/small "$d/link"
    ln -s "$(printf 'x%.0s' {1..200})" "$d/longlink"
    ln "$d/dir/small" "$d/hardlink"
    mkfifo "$d/fifo" 2>/dev/null || true
    for i in $(seq 1 45); do
        ln "$d/dir/big" "$d/dir/sub/a-rather-long-hard-link-name-to-force-extended-refs-$i" 2>/dev/null
    done
    for i in $(seq 1 30); do printf '%s\n' "$i" >"$d/dir/sub/f$i"; done
    setfattr -n user.comment -v hello "$d/dir/small" 2>/dev/null || true
}

build_mkfs_images() {
    local root=$TMP/rootdir
    make_rootdir "$root"
    local n=0 opts
    for opts in "" "--csum xxhash -n 4096" "--csum sha256 -n 65536" "--csum blake2 -M" \
        "-O ^no-holes -R ^free-space-tree" "-m single -d single"; do
        n=$((n + 1))
        local img=$TMP/mkfs$n.img
        truncate -s 256M "$img"
        # shellcheck disable=SC2086
        if mkfs.btrfs -q -f $opts --rootdir "$root" "$img" >/dev/null 2>&1; then
            IMAGES+=("$img")
        else
            echo "note: mkfs.btrfs $opts --rootdir failed; image skipped"
        fi
    done
}

# Images written by the kernel; needs root and loop mounts.
build_mounted_images() {
    [[ $EUID -eq 0 ]] || { echo "note: not root, kernel-written images skipped"; return; }
    command -v python3 >/dev/null 2>&1 || { echo "note: no python3, kernel-written images skipped"; return; }
    local img=$TMP/kernel.img
    truncate -s 256M "$img"
    mkfs.btrfs -q -f "$img" >/dev/null 2>&1 || return
    if ! mount -o loop,commit=300 "$img" "$MNT" 2>/dev/null; then
        echo "note: cannot loop-mount; kernel-written images skipped"
        return
    fi
    LOOP_MOUNTED=1
    make_rootdir "$MNT/tree" 2>/dev/null
    btrfs quota enable "$MNT" >/dev/null 2>&1
    btrfs subvolume create "$MNT/sv" >/dev/null
    for i in $(seq 1 20); do cp --reflink=always "$MNT/tree/dir/big" "$MNT/sv/ref$i"; done
    btrfs qgroup create 1/100 "$MNT" >/dev/null 2>&1
    btrfs qgroup limit 10M "$MNT/sv" >/dev/null 2>&1
    btrfs subvolume snapshot -r "$MNT/sv" "$MNT/snap-ro" >/dev/null
    btrfs subvolume snapshot "$MNT" "$MNT/snap-rw" >/dev/null
    for i in $(seq 1 10); do echo change >>"$MNT/sv/ref$i"; done
    sync
    # Writes that only reach the log tree: fsync without a transaction commit,
    # then a copy of the image taken while still mounted (a crash image).
    python3 - "$MNT" <<'EOF'
import os, sys
m = sys.argv[1]
os.makedirs(m + '/logged', exist_ok=True)
for i in range(10):
    fd = os.open('%s/logged/f%d' % (m, i), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b'y' * (500 * i + 1))
    os.fsync(fd)
    os.close(fd)
dfd = os.open(m + '/logged', os.O_RDONLY)
os.fsync(dfd)
os.close(dfd)
EOF
    cp --sparse=always "$img" "$TMP/kernel-log.img"
    umount "$MNT" && LOOP_MOUNTED=""
    IMAGES+=("$img" "$TMP/kernel-log.img")
}

build_mkfs_images
build_mounted_images
if [[ -n ${CORPUS_DIR:-} ]]; then
    if [[ -d $CORPUS_DIR ]]; then
        for f in "$CORPUS_DIR"/*.img; do [[ -f $f ]] && IMAGES+=("$f"); done
    else
        echo "note: CORPUS_DIR=$CORPUS_DIR is not a directory"
    fi
fi

# --- comparisons -----------------------------------------------------------

OPTION_SETS=(
    ""
    "-e"
    "-d"
    "-r"
    "-R"
    "-u"
    "-t 5"
    "-t chunk"
    "-t root"
    "--hide-names"
    "--csum-items"
    "--csum-headers"
    "--bfs"
    "--dfs"
)

for img in "${IMAGES[@]}"; do
    name=$(basename "$img" .img)
    for opts in "${OPTION_SETS[@]}"; do
        # shellcheck disable=SC2086
        compare "$name" "$img" $opts
    done
    # The root tree block and the root of every other tree, alone and with
    # their children.
    roots=$(btrfs inspect-internal dump-tree -r "$img" 2>/dev/null |
        awk '/ level [0-9]+$/ { print $(NF - 2) }' | sort -un)
    for bytenr in $roots; do
        compare "$name" "$img" -b "$bytenr"
        compare "$name" "$img" -b "$bytenr" --follow
        compare "$name" "$img" -b "$bytenr" --follow --dfs
    done
done

echo "dump-tree: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
