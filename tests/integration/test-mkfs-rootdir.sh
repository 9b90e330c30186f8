#!/usr/bin/env bash
# btk mkfs --rootdir against btrfs-progs and the kernel. One source tree with
# every file type, sparse files, hard links, xattrs (top directory too, ACLs),
# long names, a 2000-entry directory, inline-size and odd-size files, a 20 MB
# file, odd modes, owners and times, long symlinks. For each variant (default,
# compression, checksums and node sizes, profiles, subvolumes, inode flags,
# --shrink, --root-owner, no-holes off): `btrfs check` and `btk check` clean,
# the kernel's manifest (with mtimes; atimes and ctimes separately) equals the
# source's, subvolumes and their ro flag and the default subvolume are right,
# then the kernel writes more and `btrfs check` is still clean. Also:
# compressed extents and NOCOMPRESS in the dump, byte-reproducible output,
# one-line errors that write nothing.
set -uo pipefail
bin=${1:?usage: test-mkfs-rootdir.sh CMDS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
manifest="python3 $here/../tools/manifest.py"
mkfs=$bin/btk-mkfs
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ]; then
    echo "SKIP: *** mkfs --rootdir vs kernel needs root and loop devices ***"; exit 0
fi
for t in btrfs python3; do
    if ! command -v $t >/dev/null; then
        echo "SKIP: *** mkfs --rootdir test needs $t ***"; exit 0
    fi
done
tmp=$(mktemp -d /tmp/btk-mkfs-rootdir.XXXXXX)
mnt=$tmp/mnt
mkdir -p "$mnt"
cleanup() {
    mountpoint -q "$mnt" && umount "$mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT
src=$tmp/src
FSID=0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e
DEVUUID=1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b

# --- the source tree
python3 - "$src" <<'EOF'
import os, random, socket, sys
top = sys.argv[1]
os.makedirs(top)
R = random.Random(42)
def text(n, seed):
    r = random.Random(seed)
    words = ["btrfs", "extent", "inode", "tree", "csum", "leaf", "node", "chunk", "data", "subvol"]
    out = []
    size = 0
    while size < n:
        w = " ".join(r.choice(words) for _ in range(12)) + "\n"
        out.append(w)
        size += len(w)
    return "".join(out).encode()[:n]
def put(path, data, mode=None):
    p = os.path.join(top, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(p, mode)
# sizes around the inline and sector limits
for n in [0, 1, 100, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 8192, 131072, 131073, 300000]:
    put("sizes/text-%d" % n, text(n, n))
    put("sizes/rand-%d" % n, R.randbytes(n))
# a 20 MB file: text with a random middle
put("big/20mb", text(8 << 20, 1) + R.randbytes(4 << 20) + text(8 << 20, 2))
put("big/random-2mb", R.randbytes(2 << 20))
put("big/zeros-1mb", bytes(1 << 20))
# sparse files: holes at the start, middle and end; one made of holes only
with open(os.path.join(top, "sparse-a"), "wb") as f:
    f.seek(1 << 20); f.write(text(10000, 3)); f.seek(3 << 20); f.write(R.randbytes(5000)); f.truncate(6 << 20)
with open(os.path.join(top, "sparse-b"), "wb") as f:
    f.write(text(70000, 4)); f.seek(2 << 20); f.write(text(100, 5))
with open(os.path.join(top, "holes-only"), "wb") as f:
    f.truncate(5 << 20)
with open(os.path.join(top, "small-hole"), "wb") as f:
    f.truncate(1000)
# hard links: across directories, one file with 5 links
put("links/orig", text(5000, 6))
os.makedirs(os.path.join(top, "links/other"))
os.link(os.path.join(top, "links/orig"), os.path.join(top, "links/other/second"))
put("links/five", text(300, 7))
for i in range(1, 5):
    os.link(os.path.join(top, "links/five"), os.path.join(top, "links/five-%d" % i))
os.link(os.path.join(top, "links/five"), os.path.join(top, "links/other/five-x"))
# many long names for one file: its INODE_REF overflows into INODE_EXTREF with 4k nodes
put("manylinks/f", b"x")
for i in range(20):
    os.link(os.path.join(top, "manylinks/f"), os.path.join(top, "manylinks", ("%03d" % i) + "L" * 252))
# special files
os.makedirs(os.path.join(top, "special"))
os.mkfifo(os.path.join(top, "special/fifo"))
os.mknod(os.path.join(top, "special/chr"), 0o620 | 0o020000, os.makedev(1, 3))
os.mknod(os.path.join(top, "special/blk"), 0o640 | 0o060000, os.makedev(4095, 1048575))
s = socket.socket(socket.AF_UNIX); s.bind(os.path.join(top, "special/sock")); s.close()
os.symlink("../sizes/text-100", os.path.join(top, "special/link"))
os.symlink("/" + "t" * 2990, os.path.join(top, "special/long-link"))
os.symlink("dangling", os.path.join(top, "special/dangling"))
# long names, a big directory
put("names/" + "n" * 255, b"long name")
put("names/" + "\u00e9" * 127 + "x", b"utf8")
for i in range(2000):
    put("bigdir/entry-%05d" % i, b"" if i % 3 else text(i % 500, i))
# odd modes, owners, times
for m in [0o4755, 0o2755, 0o1777, 0o0000, 0o7777, 0o0600]:
    put("modes/m%04o" % m, b"mode", m)
os.chmod(os.path.join(top, "modes"), 0o2775)
for uid, gid in [(1000, 1000), (65534, 65534), (4000000000, 123)]:
    p = os.path.join(top, "owners/u%d" % uid); put("owners/u%d" % uid, b"own")
    os.chown(p, uid, gid)
os.lchown(os.path.join(top, "special/link"), 1234, 5678)
# subvolume and nodatacow candidates
put("a/file", text(50000, 8)); put("a/inner/deep", text(10, 9))
put("b/file", R.randbytes(10000)); put("c/file", text(200000, 10))
put("c/nested/x", text(1, 11))
put("nocow/file", text(300000, 12)); put("nocow/sub/file2", R.randbytes(70000))
# times last: old, with nanoseconds
for root, dirs, files in os.walk(top):
    for n in files + dirs:
        p = os.path.join(root, n)
        t = 1000000000 + R.randrange(10**8)
        os.utime(p, ns=(t * 10**9 + R.randrange(10**9), t * 10**9 + R.randrange(10**9)), follow_symlinks=False)
os.utime(top, ns=(1234567890123456789, 1234567890987654321))
EOF
[ -d "$src" ] || { echo "FAIL mkfs-rootdir-source: could not build the source tree"; exit 0; }
setfattr() { python3 -c 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)' "$@"; }
setfattr "$src" user.top "on the top directory"
setfattr "$src/sizes/text-100" user.small "v"
setfattr "$src/sizes/text-100" trusted.t "trusted value"
setfattr "$src/sizes/text-100" security.s "security value"
setfattr "$src/bigdir" user.big "$(head -c 3000 /dev/zero | tr '\0' 'x')"
setfattr "$src/special/fifo" trusted.fifo "f"
setfattr "$src/special/link" trusted.link "on a symlink"
# POSIX ACLs in their xattr form (version 2; tag, perm, id entries).
python3 - "$src" <<'EOF'
import os, struct, sys
def acl(entries):
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)
U = 0xFFFFFFFF
os.setxattr(os.path.join(sys.argv[1], "a/file"), "system.posix_acl_access",
            acl([(1, 6, U), (2, 7, 1000), (4, 4, U), (8, 4, 123), (0x10, 7, U), (0x20, 4, U)]))
os.setxattr(os.path.join(sys.argv[1], "a"), "system.posix_acl_default",
            acl([(1, 7, U), (2, 5, 1000), (4, 5, U), (0x10, 5, U), (0x20, 5, U)]))
EOF
sync

# Manifests: kernel view of the source (this also settles the atimes that
# reading sets once), and the times manifest.py does not print.
$manifest --mtime "$src" >"$tmp/src.manifest"
times() {  # path atime ctime for every entry
    python3 - "$1" <<'EOF'
import os, sys
top = sys.argv[1]
rows = []
for root, dirs, files in os.walk(top):
    for n in dirs + files + (["."] if root == top else []):
        p = os.path.normpath(os.path.join(root, n))
        st = os.lstat(p)
        rows.append("%r %d %d" % (os.path.relpath(p, top), st.st_atime_ns, st.st_ctime_ns))
print("\n".join(sorted(rows)))
EOF
}
times "$src" >"$tmp/src.times"
src_entries=$(wc -l <"$tmp/src.manifest")

check_clean() {  # NAME IMG
    local out rc
    out=$(btrfs check "$2" 2>&1); rc=$?
    if [ $rc -ne 0 ] || ! grep -q 'no error found' <<<"$out"; then
        echo "FAIL $1: btrfs check exit $rc"; grep -iE 'error|wrong|mismatch|invalid|missing' <<<"$out" | head -10
        return 1
    fi
    out=$("$bin/btk-check" "$2" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL $1: btk check exit $rc"; head -10 <<<"$out"
        return 1
    fi
}

# variant NAME SIZE EXPECT MKFS-OPTIONS...: EXPECT is a comma list of extra
# checks: subvols, compressed, nocow, shrink, owner.
variant() {
    local name=$1 size=$2 expect=$3; shift 3
    local img=$tmp/$name.img err
    rm -f "$img"
    if ! err=$("$mkfs" -q -b "$size" --rootdir "$src" "$@" "$img" 2>&1); then
        echo "FAIL rootdir-$name: mkfs: $err"; return
    fi
    check_clean "rootdir-$name-check" "$img" || return
    if ! mount -o loop,noatime,subvolid=5 "$img" "$mnt" 2>"$tmp/mount.err"; then
        echo "FAIL rootdir-$name-mount: $(cat "$tmp/mount.err"); $(dmesg | tail -3)"; return
    fi
    local ok=1
    $manifest --mtime "$mnt" >"$tmp/img.manifest"
    times "$mnt" >"$tmp/img.times"
    local want=$tmp/src.manifest
    if [[ $expect == *owner* ]]; then
        awk -F'\t' 'BEGIN{OFS="\t"} $1=="." {$4=1000; $5=1000} {print}' "$tmp/src.manifest" >"$tmp/want.manifest"
        want=$tmp/want.manifest
    fi
    if ! diff -q "$want" "$tmp/img.manifest" >/dev/null; then
        echo "FAIL rootdir-$name-manifest: the kernel sees other files"; diff "$want" "$tmp/img.manifest" | head -8; ok=0
    fi
    if [[ $expect != *owner* ]] && ! diff -q "$tmp/src.times" "$tmp/img.times" >/dev/null; then
        echo "FAIL rootdir-$name-times: atime/ctime differ"; diff "$tmp/src.times" "$tmp/img.times" | head -6; ok=0
    fi
    if [[ $expect == *subvols* ]]; then
        local list
        list=$(btrfs subvolume list "$mnt" | awk '{print $NF}' | sort | tr '\n' ' ')
        [ "$list" = "a b c " ] || { echo "FAIL rootdir-$name-subvols: list is '$list'"; ok=0; }
        [ "$(btrfs property get -ts "$mnt/b" ro)" = "ro=true" ] || { echo "FAIL rootdir-$name-ro: b is not read-only"; ok=0; }
        [ "$(btrfs property get -ts "$mnt/a" ro)" = "ro=false" ] || { echo "FAIL rootdir-$name-rw: a is read-only"; ok=0; }
        [ "$(stat -c %i "$mnt/c")" = 256 ] || { echo "FAIL rootdir-$name-subvol-ino: c is not a subvolume"; ok=0; }
        btrfs subvolume get-default "$mnt" | grep -q " path c$" || {
            echo "FAIL rootdir-$name-default: $(btrfs subvolume get-default "$mnt")"; ok=0; }
    fi
    if [[ $expect == *nocow* ]]; then
        for f in nocow nocow/file nocow/sub nocow/sub/file2; do
            lsattr -d "$mnt/$f" 2>/dev/null | awk '{print $1}' | grep -q C || {
                echo "FAIL rootdir-$name-nocow: $f has no C attribute"; ok=0; }
        done
        lsattr "$mnt/sizes/text-4097" | awk '{print $1}' | grep -q C && { echo "FAIL rootdir-$name-nocow: flag leaked"; ok=0; }
    fi
    # The kernel writes more: new files, a removal, a rename, into a subvolume too.
    mkdir "$mnt/new" && cp -a "$src/sizes" "$mnt/new/" && rm -rf "$mnt/bigdir/entry-0000"* &&
        mv "$mnt/links/five" "$mnt/links/five-moved" && echo more >>"$mnt/big/20mb" || ok=0
    [ -d "$mnt/a" ] && { cp "$src/c/file" "$mnt/a/new-file" || ok=0; }
    umount "$mnt" || ok=0
    if [ $ok = 0 ]; then echo "FAIL rootdir-$name-kernel: see above; $(dmesg | tail -2)"; return; fi
    check_clean "rootdir-$name-check-after" "$img" || return
    if [[ $expect == *default-mount* ]]; then
        mount -o loop,ro "$img" "$mnt" && [ -f "$mnt/nested/x" ] || { echo "FAIL rootdir-$name-default-mount"; ok=0; }
        umount "$mnt" 2>/dev/null
    fi
    if [[ $expect == *shrink* ]]; then
        local total fsize
        total=$(btrfs inspect-internal dump-super "$img" | awk '/^total_bytes/{print $2}')
        fsize=$(stat -c %s "$img")
        if [ "$total" != "$fsize" ] || [ "$fsize" -ge $((200 << 20)) ]; then
            echo "FAIL rootdir-$name-shrink: total_bytes $total, file $fsize"; ok=0
        fi
    fi
    [ $ok = 1 ] && echo "PASS rootdir-$name ($src_entries paths)"
    rm -f "$img"
}

variant default      512M ""
variant zstd         512M compressed --compress zstd
variant zlib9        512M compressed --compress zlib:9
variant lzo          512M compressed --compress lzo
variant n4k-sha256   512M "" -n 4k --csum sha256
variant msingle-ddup 512M "" -m single -d dup
variant subvols      512M subvols,default-mount --subvol rw:a --subvol ro:b --subvol default:c
variant nocow        512M nocow --inode-flags nodatacow:nocow
variant shrink       1G   shrink --shrink
variant owner        512M owner --root-owner 1000:1000
variant holes        512M "" -O ^no-holes

# Compression shows in the dump; incompressible data stays plain with NOCOMPRESS.
img=$tmp/dump.img
if "$mkfs" -q -b 512M --rootdir "$src" --compress zstd "$img" 2>"$tmp/err"; then
    btrfs inspect-internal dump-tree -t 5 "$img" >"$tmp/dump.txt"
    "$bin/btk-inspect" dump-tree -t 5 "$img" >"$tmp/btk-dump.txt" 2>&1
    ncomp=$(grep -c "extent compression 3 (zstd)" "$tmp/btk-dump.txt")
    mount -o loop,ro "$img" "$mnt"
    ino=$(stat -c %i "$mnt/big/random-2mb")
    umount "$mnt"
    flags=$(grep -A3 "key ($ino INODE_ITEM 0)" "$tmp/dump.txt" | grep -o "flags 0x[0-9a-f]*([A-Z|]*)")
    plain=$(awk -v k="key ($ino EXTENT_DATA" 'index($0,k){f=1} f&&/extent compression/{print $3; f=0}' "$tmp/dump.txt" | sort -u)
    if [ "$ncomp" -gt 10 ] && [[ $flags == *NOCOMPRESS* ]] && [ "$plain" = 0 ]; then
        echo "PASS rootdir-compressed-dump ($ncomp zstd extents; random file: $flags)"
    else
        echo "FAIL rootdir-compressed-dump: $ncomp zstd extents, random file flags '$flags', compression '$plain'"
    fi
else
    echo "FAIL rootdir-compressed-dump: $(cat "$tmp/err")"
fi
rm -f "$img"

# Reproducibility.
for i in 1 2; do
    rm -f "$tmp/r$i.img"
    SOURCE_DATE_EPOCH=1234567890 "$mkfs" -q -b 300M -U $FSID --device-uuid $DEVUUID --rootdir "$src" \
        --compress zstd --subvol ro:b "$tmp/r$i.img"
done
if cmp -s "$tmp/r1.img" "$tmp/r2.img"; then echo "PASS rootdir-reproducible"
else echo "FAIL rootdir-reproducible: $(cmp "$tmp/r1.img" "$tmp/r2.img" 2>&1 | head -1)"; fi
rm -f "$tmp/r2.img"

# Errors: one line, non-zero, nothing written (the target keeps its bytes; a
# missing target is not created).
img=$tmp/r1.img
sum=$(sha256sum <"$img")
mkdir -p "$tmp/big-src"
fallocate -l 300M "$tmp/big-src/data"
bad() {  # NAME ARGS...
    local name=$1; shift
    "$mkfs" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/bad.err")
    if [ $rc -eq 0 ]; then echo "FAIL rootdir-bad-$name: exit 0"
    elif [ "$lines" -ne 1 ]; then echo "FAIL rootdir-bad-$name: $lines error lines"; head -5 "$tmp/bad.err"
    elif [ "$(sha256sum <"$img")" != "$sum" ]; then echo "FAIL rootdir-bad-$name: image changed"
    elif [ -e "$tmp/new.img" ]; then echo "FAIL rootdir-bad-$name: image created"
    else echo "PASS rootdir-bad-$name: $(cat "$tmp/bad.err")"; fi
}
bad missing-rootdir -q -f --rootdir "$tmp/nope" "$img"
bad not-a-directory -q -f --rootdir "$src/sizes/text-1" "$img"
bad too-large       -q -f --rootdir "$tmp/big-src" "$img"
bad too-large-new   -q -b 200M --rootdir "$tmp/big-src" "$tmp/new.img"
bad subvol-path     -q -f --rootdir "$src" --subvol rw:nope "$img"
bad subvol-file     -q -f --rootdir "$src" --subvol sizes/text-1 "$img"
bad inode-flags     -q -f --rootdir "$src" --inode-flags nodatacow:nope "$img"
bad compress        -q -f --rootdir "$src" --compress gzip "$img"
bad owner           -q -f --rootdir "$src" --root-owner x "$img"
