#!/usr/bin/env bash
# Every read tool (and the write operations) on every hostile image: btrfs-progs' fuzz images and the
# corrupt fsck images (../shared/peer-images). A tool may report errors, but
# must not crash, hang, or trip a sanitizer. Uses the ASan+UBSan binaries when
# they are built (BTK_ASAN_BIN), else the release ones.
set -uo pipefail
bin=${BTK_ASAN_BIN:-${1:?usage: test-fuzz.sh CMDS_DIR}}
peer=${PEER_IMAGES:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/peer-images}
if [ ! -d "$peer/fuzz" ]; then
    echo "SKIP: *** peer images not found at $peer ***"; exit 0
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=98
tmp=$(mktemp -d /tmp/btk-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
limit=${FUZZ_TIMEOUT:-60}

commands=(
    "btk-inspect dump-super IMG"
    "btk-inspect dump-super -f -a IMG"
    "btk-inspect dump-super --format json -a IMG"
    "btk-inspect dump-tree IMG"
    "btk-inspect dump-tree --format json IMG"
    "btk-inspect dump-tree -e --csum-items IMG"
    "btk-inspect dump-tree -d IMG"
    "btk-inspect dump-tree -r -R IMG"
    "btk-inspect dump-tree -u IMG"
    "btk-inspect dump-tree -t 5 --bfs IMG"
    "btk-inspect dump-tree -t 5 --dfs --hide-names IMG"
    "btk-inspect tree-stats IMG"
    "btk-inspect list-subvolumes IMG"
    "btk-inspect subvolid-resolve 256 IMG"
    "btk-inspect inode-resolve 257 IMG"
    "btk-inspect logical-resolve 13631488 IMG"
    "btk-check IMG"
    "btk-check --format json IMG"
    "btk-file ls -l -R IMG /"
    "btk-restore -s -x -m -S IMG OUT"
    # Write operations last (they change the image copy).
    "btk-file mkdir -p IMG /btk-fuzz/dir"
    "btk-file put IMG /etc/hostname /btk-fuzz/file"
    "btk-file rm -r IMG /btk-fuzz"
)

run_one() {  # run_one IMAGE NAME
    local img=$1 name=$2 bad=0 cmd c rc
    for cmd in "${commands[@]}"; do
        c=${cmd//IMG/$img}
        c=${c//OUT/$tmp/out}
        rm -rf "$tmp/out"
        # shellcheck disable=SC2086
        timeout -k 5 "$limit" "$bin"/$c >/dev/null 2>"$tmp/err"
        rc=$?
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            echo "FAIL fuzz-$name: '$cmd' hung (>${limit}s)"; bad=1
        elif [ $rc -ge 3 ]; then
            # 3 and above: killed by a signal, sanitizer exit codes, or abort.
            echo "FAIL fuzz-$name: '$cmd' exited $rc"; grep -m5 -E 'ERROR|runtime error|SUMMARY|terminate' "$tmp/err"; bad=1
        elif grep -qE 'runtime error:|Sanitizer|terminate called' "$tmp/err"; then
            echo "FAIL fuzz-$name: '$cmd' sanitizer report"; grep -m5 -E 'runtime error|Sanitizer|terminate' "$tmp/err"; bad=1
        fi
    done
    [ $bad = 0 ] && echo "PASS fuzz-$name"
}

images=()
for f in "$peer"/fuzz/*.raw.xz; do images+=("$f"); done
for d in "$peer"/fsck/*/; do
    for f in "$d"*.raw.xz; do [ -e "$f" ] && images+=("$f"); done
done
for f in "${images[@]}"; do
    base=$(basename "$f" .raw.xz)
    case "$f" in */fsck/*) base="fsck-$(basename "$(dirname "$f")")-$base" ;; esac
    img=$tmp/$base.raw
    if ! xz -dc "$f" >"$img" 2>/dev/null; then echo "SKIP $base: cannot decompress"; continue; fi
    run_one "$img" "$base"
    rm -f "$img"
done
for f in "$peer"/fsck/*/*.tar.xz; do
    [ -e "$f" ] || continue
    base="fsck-$(basename "$(dirname "$f")")-$(basename "$f" .tar.xz)"
    mkdir -p "$tmp/tar" && tar -xJf "$f" -C "$tmp/tar" 2>/dev/null
    for img in "$tmp"/tar/*; do [ -f "$img" ] && run_one "$img" "$base"; done
    rm -rf "$tmp/tar"
done
# Restored metadumps (btrfs-image) need btrfs-progs to restore until btk does.
if command -v btrfs-image >/dev/null; then
    for f in "$peer"/fsck/*/*.img "$peer"/fsck/*/*.img.xz; do
        [ -e "$f" ] || continue
        base="fsck-$(basename "$(dirname "$f")")-$(basename "$f")"
        src=$f
        if [[ $f == *.xz ]]; then xz -dc "$f" >"$tmp/dump.img" || continue; src=$tmp/dump.img; fi
        if btrfs-image -r "$src" "$tmp/$base.raw" >/dev/null 2>&1; then
            run_one "$tmp/$base.raw" "$base"
        else
            echo "SKIP $base: btrfs-image -r failed"
        fi
        rm -f "$tmp/$base.raw" "$tmp/dump.img"
    done
else
    echo "SKIP: *** btrfs-image not installed: metadump images not tested ***"
fi
