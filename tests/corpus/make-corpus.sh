#!/usr/bin/env bash
# make-corpus.sh OUTDIR [NAME...]
#
# Builds kernel-written btrfs test images via loop mounts.  For every case
# NAME it writes OUTDIR/NAME.img (sparse raw image) and OUTDIR/NAME.txt (one
# line: how the image was made).  Without NAME arguments all cases are built.
# A case is skipped when its .img (or, for an unsupported case, its .txt) is
# newer than this script.  Must run as root (mkfs, losetup, mount).
#
# File *contents* are deterministic (seeded generators in the embedded python
# helper); metadata such as timestamps, inode generations and block layout are
# not.  See tests/corpus/README.md for the list of cases.
set -euo pipefail
export LC_ALL=C
umask 022

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")

usage() { echo "usage: $0 OUTDIR [NAME...]   ($0 --list to list cases)" >&2; exit 2; }

ALL_CASES=(
    csum-crc32c csum-xxhash csum-sha256 csum-blake2
    node4k node16k node64k
    mixed single-single dup-dup
    compress-zlib compress-lzo compress-zstd
    subvols reflink deleted-snapshot deleted-snapshot-pending qgroups
    prealloc-holes no-holes-off nodatacow xattrs hardlinks special-files
    bigdir mixed-content fsv1-space-cache bgt metadata-uuid
)

[[ $# -ge 1 ]] || usage
if [[ $1 == --list ]]; then printf '%s\n' "${ALL_CASES[@]}"; exit 0; fi
OUT=$1; shift
[[ $EUID -eq 0 ]] || { echo "must run as root" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")

WORK=$(mktemp -d /tmp/btk-corpus.XXXXXX)
M=$WORK/mnt          # mount point used by the case bodies
mkdir -p "$M"
LOOP=""              # current loop device
IMG_TMP=""           # image being built
DESC=""              # accumulated description for NAME.txt
SKIP=""              # set by a case body to skip (reason)

cleanup() {
    local rc=$?
    set +e
    if mountpoint -q "$M" 2>/dev/null; then
        umount "$M" 2>/dev/null || umount -l "$M"
    fi
    [[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
    [[ -n $IMG_TMP ]] && rm -f "$IMG_TMP"
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log() { echo "[corpus] $*" >&2; }
note() { DESC+="${DESC:+; }$*"; }

# ---------------------------------------------------------------------------
# Embedded deterministic data generator.
# ---------------------------------------------------------------------------
cat >"$WORK/gen.py" <<'PYEOF'
import hashlib, os, random, socket, struct, sys, fcntl

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform "
         "victor whiskey xray yankee zulu btrfs extent inode chunk device "
         "subvolume snapshot checksum leaf node root tree item key offset "
         "generation transaction the of and to in is for on with data").split()

def rand(n, seed):
    return hashlib.shake_256(b"btk-corpus:%s" % str(seed).encode()).digest(n)

def text(n, seed):
    r = rand(max(n // 5, 16), "t%s" % seed)
    out, ln, i = [], 0, 0
    total = 0
    while total < n:
        w = WORDS[r[i % len(r)] % len(WORDS)]
        i += 1
        if i % 12 == 0:
            w = "%s %d\n" % (w, i)
        else:
            w += " "
        out.append(w)
        total += len(w)
    return "".join(out).encode()[:n]

def data(kind, n, seed):
    if kind == "rand": return rand(n, seed)
    if kind == "text": return text(n, seed)
    if kind == "zero": return bytes(n)
    if kind == "mix":  # alternating 64 KiB incompressible / compressible
        parts, off = [], 0
        while off < n:
            k = min(65536, n - off)
            parts.append(rand(k, "%s/%d" % (seed, off)) if (off // 65536) % 2 == 0
                         else text(k, "%s/%d" % (seed, off)))
            off += k
        return b"".join(parts)
    raise SystemExit("unknown kind " + kind)

def mkparent(p):
    d = os.path.dirname(p)
    if d: os.makedirs(d, exist_ok=True)

def cmd_files(args):
    # KIND:SIZE:SEED:PATH ...
    for spec in args:
        kind, size, seed, path = spec.split(":", 3)
        mkparent(path)
        with open(path, "wb") as f:
            f.write(data(kind, int(size), seed))

def cmd_pwrite(args):
    # PATH OFFSET KIND LEN SEED   (no truncation)
    path, off, kind, n, seed = args
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.pwrite(fd, data(kind, int(n), seed), int(off))
    os.close(fd)

FICLONERANGE = 0x4020940d
def cmd_clone(args):
    # SRC SRCOFF LEN DST DSTOFF
    src, soff, n, dst, doff = args
    s = os.open(src, os.O_RDONLY)
    d = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    fcntl.ioctl(d, FICLONERANGE, struct.pack("=qQQQ", s, int(soff), int(n), int(doff)))
    os.close(s); os.close(d)

def cmd_cfr(args):
    # copy_file_range SRC SRCOFF LEN DST DSTOFF
    src, soff, n, dst, doff = args
    s = os.open(src, os.O_RDONLY)
    d = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    left, so, do = int(n), int(soff), int(doff)
    while left:
        c = os.copy_file_range(s, d, left, so, do)
        if c <= 0: raise SystemExit("copy_file_range short")
        left -= c; so += c; do += c
    os.close(s); os.close(d)

def cmd_xattr(args, follow=True):
    # (PATH NAME KIND LEN SEED)...
    assert len(args) % 5 == 0, args
    for i in range(0, len(args), 5):
        path, name, kind, n, seed = args[i:i + 5]
        os.setxattr(path, name, data(kind, int(n), seed), follow_symlinks=follow)

def cmd_xattr_nofollow(args):
    cmd_xattr(args, follow=False)

def cmd_try_xattr(args):
    try:
        cmd_xattr(args); print("ok")
    except OSError as e:
        print("failed(%s)" % e.strerror)

def cmd_acl(args):
    # PATH access|default : POSIX ACL in the kernel xattr format (version 2)
    path, which = args
    UNDEF = 0xFFFFFFFF
    ents = [(0x01, 7, UNDEF), (0x02, 6, 1000), (0x02, 4, 1001), (0x04, 5, UNDEF),
            (0x08, 5, 100), (0x10, 7, UNDEF), (0x20, 4, UNDEF)]
    blob = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in ents)
    os.setxattr(path, "system.posix_acl_" + which, blob)

def cmd_sock(args):
    for p in args:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(p); s.close()

def cmd_tree(args):
    # DIR NFILES SEED MAXSIZE : realistic nested tree with varied file sizes
    top, nfiles, seed, maxsize = args[0], int(args[1]), args[2], int(args[3])
    r = random.Random("tree:" + seed)
    dirs = [top]
    os.makedirs(top, exist_ok=True)
    buckets = [(0.15, 0, 0), (0.15, 1, 2048), (0.35, 2049, 16384),
               (0.22, 16385, 262144), (0.10, 262145, 1 << 20), (0.03, (1 << 20) + 1, 3 << 20)]
    for i in range(nfiles):
        if r.random() < 0.12 or len(dirs) < 3:
            parent = r.choice(dirs)
            d = os.path.join(parent, "dir%03d-%s" % (len(dirs), r.choice(WORDS)))
            os.makedirs(d, exist_ok=True)
            dirs.append(d)
        parent = r.choice(dirs)
        x, acc = r.random(), 0.0
        for p, lo, hi in buckets:
            acc += p
            if x <= acc: break
        size = min(r.randint(lo, hi), maxsize)
        kind = r.choice(["rand", "text", "text", "mix", "zero"] if size > 4096 else ["text", "rand"])
        ext = {"rand": ".bin", "text": ".txt", "mix": ".dat", "zero": ".zero"}[kind]
        path = os.path.join(parent, "f%04d-%s%s" % (i, r.choice(WORDS), ext))
        with open(path, "wb") as f:
            f.write(data(kind, size, "%s/%d" % (seed, i)))
        if r.random() < 0.05:
            os.symlink(os.path.relpath(path, parent), os.path.join(parent, "ln%04d" % i))

def cmd_bigdir(args):
    # DIR NFILES NDELETE : NFILES entries, then every (NFILES/NDELETE)th removed
    top, n, ndel = args[0], int(args[1]), int(args[2])
    os.makedirs(top, exist_ok=True)
    names = []
    for i in range(n):
        name = "entry-%05d%s" % (i, "-" + "x" * (i % 97) if i % 3 == 0 else "")
        names.append(name)
        with open(os.path.join(top, name), "wb") as f:
            if i % 10 == 0: f.write(text(i % 300, i))
    step = n // ndel if ndel else 0
    for j in range(ndel):
        os.unlink(os.path.join(top, names[j * step + 1]))

def cmd_subdirs(args):
    top, n = args[0], int(args[1])
    for i in range(n):
        d = os.path.join(top, "sub%03d" % i)
        os.makedirs(d)
        if i % 5 == 0:
            with open(os.path.join(d, "file"), "wb") as f: f.write(text(100 + i, i))

globals()["cmd_" + sys.argv[1].replace("-", "_")](sys.argv[2:])
PYEOF
gen() { python3 "$WORK/gen.py" "$@"; }

# ---------------------------------------------------------------------------
# Case helpers
# ---------------------------------------------------------------------------
uuid_for() {  # deterministic fsid derived from the case name
    local h; h=$(printf '%s' "btk-corpus-$1" | sha256sum | cut -c1-32)
    echo "${h:0:8}-${h:8:4}-4${h:13:3}-8${h:17:3}-${h:20:12}"
}

# mkimg SIZE [mkfs.btrfs options...]
mkimg() {
    local size=$1; shift
    rm -f "$IMG_TMP"
    truncate -s "$size" "$IMG_TMP"
    mkfs.btrfs -q -f -U "$(uuid_for "$CASE")" "$@" "$IMG_TMP" >/dev/null
    LOOP=$(losetup --find --show "$IMG_TMP")
    note "truncate -s $size; mkfs.btrfs${*:+ $*}"
}

# try_mkimg SIZE [options] -- like mkimg, but returns 1 if mkfs refuses
try_mkimg() {
    local size=$1; shift
    rm -f "$IMG_TMP"
    truncate -s "$size" "$IMG_TMP"
    mkfs.btrfs -q -f -U "$(uuid_for "$CASE")" "$@" "$IMG_TMP" >/dev/null 2>"$WORK/mkfs.err" || return 1
    LOOP=$(losetup --find --show "$IMG_TMP")
    note "truncate -s $size; mkfs.btrfs${*:+ $*}"
}

# mnt [mount options]
# 'nodiscard' is always added (not recorded in .txt): with the default
# discard=async, freed ranges still queued at umount are never trimmed, and
# fstrim in umnt would not reliably punch them out of the sparse image.
mnt() {
    mount -o "nodiscard${1:+,$1}" "$LOOP" "$M"
    note "mount${1:+ -o $1}"
}
try_mnt() { mount -o "nodiscard${1:+,$1}" "$LOOP" "$M" 2>/dev/null && note "mount${1:+ -o $1}"; }
# umnt: fstrim first so freed blocks become holes in the sparse image (smaller, compresses better)
umnt() { sync -f "$M" 2>/dev/null || true; fstrim "$M" 2>/dev/null || true; umount "$M"; }

# A small general-purpose tree used by several feature cases.
# shellcheck disable=SC2120  # optional DIR argument
small_tree() {
    local d=${1:-$M}
    gen files text:0:0:"$d/empty" text:100:1:"$d/inline-text" rand:1500:2:"$d/inline-rand" \
        text:5000:3:"$d/dir1/small.txt" rand:70000:4:"$d/dir1/medium.bin" \
        mix:300000:5:"$d/dir1/dir2/large.dat" rand:1048576:6:"$d/dir1/dir2/1m.bin"
    ln -s dir1/small.txt "$d/link"
    mkdir -p "$d/emptydir"
    note "small_tree (7 files 0..1MiB, dirs, symlink)"
}

# sparse/prealloc content shared by prealloc-holes and no-holes-off
sparse_files() {
    local d=$M/sparse
    mkdir -p "$d"
    truncate -s 1M "$d/all-hole"                                    # only a hole
    gen pwrite "$d/hole-start" 262144 rand 8192 s1                  # hole then data
    gen pwrite "$d/hole-middle" 0 rand 65536 s2
    gen pwrite "$d/hole-middle" 1048576 rand 65536 s3               # data hole data
    gen pwrite "$d/hole-end" 0 text 10000 s4; truncate -s 5M "$d/hole-end"   # truncate-extended
    gen pwrite "$d/unaligned" 1000 text 3000 s5; gen pwrite "$d/unaligned" 70001 rand 5000 s6
    gen files rand:524288:s7:"$d/punched"; fallocate -p -o 65536 -l 131072 "$d/punched"
    gen files text:8000:s8:"$d/shrunk"; truncate -s 3000 "$d/shrunk"; truncate -s 20000 "$d/shrunk"
    note "sparse files (leading/middle/trailing holes, truncate-extend, punch-hole, shrink+extend)"
}

prealloc_files() {
    local d=$M/prealloc
    mkdir -p "$d"
    fallocate -l 1M "$d/full-prealloc"                              # only prealloc
    fallocate -l 1M "$d/partial"; gen pwrite "$d/partial" 262144 rand 65536 p1   # written middle
    gen pwrite "$d/partial" 0 text 1000 p2                          # unaligned write at start
    gen files text:10000:p3:"$d/beyond-eof"; fallocate -n -o 16384 -l 262144 "$d/beyond-eof"
    touch "$d/keep-size-empty"; fallocate -n -l 131072 "$d/keep-size-empty"                    # size 0, prealloc extent
    gen files rand:262144:p4:"$d/zero-range"; fallocate -z -o 65536 -l 65536 "$d/zero-range"
    fallocate -o 1048576 -l 65536 "$d/prealloc-after-hole"          # hole then prealloc
    note "prealloc (fallocate full, partially written, -n (keep size) beyond EOF, zero-range, hole+prealloc)"
}

# ---------------------------------------------------------------------------
# Cases.  Each body: mkimg, mnt, write content; the driver unmounts & checks.
# ---------------------------------------------------------------------------
case_csum() { mkimg 128M --csum "$1"; mnt; small_tree; }
case_csum-crc32c() { case_csum crc32c; }
case_csum-xxhash() { case_csum xxhash; }
case_csum-sha256() { case_csum sha256; }
case_csum-blake2() { case_csum blake2; }

case_node() {
    mkimg 128M -n "$1"; mnt
    gen tree "$M/tree" 700 "node$1" 20000
    local xa=() i
    for i in $(seq 0 40); do xa+=("$M/tree" "user.x$i" text $((i * 50)) "nx$i"); done
    gen xattr "${xa[@]}"
    note "gen tree 700 files <=20000B; 41 xattrs on tree/"
}
case_node4k() { case_node 4096; }
case_node16k() { case_node 16384; }
case_node64k() { case_node 65536; }

case_mixed() { mkimg 32M -M; mnt; small_tree; gen tree "$M/tree" 100 mixed 65536; note "gen tree 100 files"; }
case_single-single() { mkimg 128M -m single -d single; mnt; small_tree; }
case_dup-dup() { mkimg 256M -m dup -d dup; mnt; small_tree; }

case_compress() {
    local alg=$1 d
    mkimg 128M; mnt "compress-force=$alg"
    d=$M/c
    local specs=() s
    for s in 0 1 100 2000 3000 4095 4096 4097 65536 131072 131073 200000 1048576 3145728; do
        specs+=("text:$s:t$s:$d/text-$s")
        [[ $s -gt 1048576 ]] || specs+=("rand:$s:r$s:$d/rand-$s")    # keep the image small
    done
    specs+=(mix:1000000:mx:"$d/mixed-1m" zero:2097152:z:"$d/zeros-2m")
    gen files "${specs[@]}"
    # partial overwrite of a compressed extent -> file extent refs with offset
    cp "$d/text-1048576" "$d/overwritten"
    sync -f "$M"
    gen pwrite "$d/overwritten" 200000 rand 30000 ow1
    gen pwrite "$d/overwritten" 500001 text 777 ow2
    # inline-able small files in a subdir
    for s in 1 10 500 1000 2048; do gen files text:$s:i$s:"$M/small/t$s" rand:$s:ir$s:"$M/small/r$s"; done
    note "text files 0..3MiB, rand files 0..1MiB (incl. 128KiB boundaries), mix, zeros, partial overwrite of compressed extent, small inline files"
}
case_compress-zlib() { case_compress zlib; }
case_compress-lzo() { case_compress lzo; }
case_compress-zstd() { case_compress zstd; }

case_subvols() {
    mkimg 128M; mnt
    small_tree
    btrfs -q subvolume create "$M/sv1"
    gen files text:5000:a:"$M/sv1/a.txt" rand:200000:b:"$M/sv1/b.bin" text:300:c:"$M/sv1/dir/c.txt"
    btrfs -q subvolume create "$M/sv1/nested"
    gen files text:4000:n:"$M/sv1/nested/n.txt"
    btrfs -q subvolume create "$M/sv1/dir/nested2"
    gen files rand:10000:n2:"$M/sv1/dir/nested2/n2.bin"
    btrfs -q subvolume create "$M/empty-subvol"
    btrfs -q subvolume snapshot "$M/sv1" "$M/snap-rw"
    btrfs -q subvolume snapshot -r "$M/sv1" "$M/snap-ro"
    mkdir "$M/snaps"
    btrfs -q subvolume snapshot -r "$M" "$M/snaps/top-ro"
    # modify source after snapshots
    gen pwrite "$M/sv1/b.bin" 65536 rand 4096 mod1
    echo appended >>"$M/sv1/a.txt"
    rm "$M/sv1/dir/c.txt"
    gen files text:1234:new:"$M/sv1/new-after-snap.txt"
    # modify the rw snapshot too
    gen pwrite "$M/snap-rw/b.bin" 0 text 8192 mod2
    mv "$M/snap-rw/a.txt" "$M/snap-rw/a-renamed.txt"
    btrfs -q subvolume snapshot "$M/snap-rw" "$M/snap-rw/snap-of-snap"
    note "subvols sv1, sv1/nested, sv1/dir/nested2 (nested subvols are empty dirs in snapshots), empty-subvol, snap-rw, snap-ro (-r), snaps/top-ro of FS_TREE, sv1 & snap-rw modified after snapshot, snap-rw/snap-of-snap"
}

case_reflink() {
    mkimg 128M; mnt
    local d=$M/r
    gen files rand:1048576:src:"$d/src" text:524288:srct:"$d/src-text"
    sync -f "$M"
    cp --reflink=always "$d/src" "$d/full-clone"
    gen clone "$d/src" 262144 131072 "$d/partial" 65536        # clone into offset of new file
    gen files text:200000:dst:"$d/dst"
    gen clone "$d/src" 0 65536 "$d/dst" 131072                 # clone over existing data
    gen clone "$d/src" 524288 524288 "$d/src" 0                # same-file clone (other range)
    gen cfr "$d/src-text" 4096 262144 "$d/cfr" 8192            # copy_file_range (reflinks on btrfs)
    gen clone "$d/src-text" 0 524288 "$d/tail-clone" 0         # clone of whole file incl. EOF block
    sync -f "$M"
    gen pwrite "$d/full-clone" 100000 rand 20000 cow1          # break sharing partially
    cp --reflink=always "$d/full-clone" "$d/clone-of-clone"
    btrfs -q subvolume create "$M/sv"
    cp --reflink=always "$d/src" "$M/sv/cross-subvol-clone"
    note "cp --reflink=always, FICLONERANGE partial/same-file clones, copy_file_range, CoW after clone, cross-subvolume reflink"
}

case_deleted-snapshot() {
    mkimg 128M; mnt
    btrfs -q subvolume create "$M/sv"
    gen tree "$M/sv/t" 150 dels 100000
    btrfs -q subvolume snapshot "$M/sv" "$M/s1"
    btrfs -q subvolume snapshot "$M/sv" "$M/s2"
    gen pwrite "$M/s1/t/extra" 0 rand 100000 x1
    btrfs -q subvolume delete -c "$M/s1"
    btrfs -q subvolume sync "$M"
    note "subvol sv (tree of 150 files), snapshots s1 and s2; s1 modified, deleted (-c) and cleaner finished (subvolume sync)"
}

case_deleted-snapshot-pending() {
    mkimg 128M; mnt
    btrfs -q subvolume create "$M/sv"
    gen tree "$M/sv/t" 300 delp 30000
    btrfs -q subvolume snapshot "$M/sv" "$M/keep"
    sync -f "$M"
    fstrim "$M" || true
    btrfs -q subvolume snapshot "$M/sv" "$M/gone"
    gen pwrite "$M/gone/t/extra" 0 rand 100000 x2
    btrfs -q subvolume delete "$M/gone"
    umount "$M"   # no sync: the snapshot drop is most likely still pending
    note "subvol sv (300 files), snapshots keep and gone; gone modified then 'btrfs subvolume delete' and immediate umount"
    local orph
    orph=$(btrfs inspect-internal dump-tree -t root "$IMG_TMP" 2>/dev/null | grep -c 'ORPHAN_ITEM' || true)
    note "root-tree ORPHAN_ITEMs after umount: $orph ($([[ $orph -gt 0 ]] && echo 'drop pending' || echo 'drop already finished'))"
}

case_qgroups() {
    mkimg 128M; mnt
    btrfs quota enable "$M"
    btrfs -q subvolume create "$M/a"
    btrfs -q subvolume create "$M/b"
    btrfs -q subvolume create "$M/c"
    btrfs qgroup create 1/100 "$M"
    btrfs qgroup assign --no-rescan "$M/a" 1/100 "$M" 2>/dev/null || btrfs qgroup assign "$M/a" 1/100 "$M"
    btrfs qgroup assign --no-rescan "$M/b" 1/100 "$M" 2>/dev/null || btrfs qgroup assign "$M/b" 1/100 "$M"
    btrfs qgroup limit 50M 1/100 "$M"
    btrfs qgroup limit 20M "$M/c"
    gen files rand:300000:qa:"$M/a/f" text:100000:qb:"$M/b/f" rand:50000:qc:"$M/c/f" text:4000:qt:"$M/top"
    cp --reflink=always "$M/a/f" "$M/b/shared-with-a"
    btrfs -q subvolume snapshot -i 1/100 "$M/a" "$M/a-snap"
    sync -f "$M"
    btrfs quota rescan -w "$M" >/dev/null
    note "quota enable; subvols a b c; qgroup 1/100 with a,b assigned (limit 50M), limit 20M on c, reflink a->b, snapshot a-snap -i 1/100; quota rescan -w"
}

case_prealloc-holes() { mkimg 128M; mnt; sparse_files; prealloc_files; }
case_no-holes-off() { mkimg 128M -O ^no-holes; mnt; sparse_files; prealloc_files; }

case_nodatacow() {
    mkimg 128M; mnt
    mkdir "$M/nocow"; chattr +C "$M/nocow"
    gen files rand:300000:nc1:"$M/nocow/inherit.bin" text:1000:nc2:"$M/nocow/small.txt"
    touch "$M/empty-then-C"; chattr +C "$M/empty-then-C"; gen pwrite "$M/empty-then-C" 0 rand 200000 nc3
    sync -f "$M"
    gen pwrite "$M/nocow/inherit.bin" 4096 text 8192 nc4           # in-place overwrite
    btrfs -q subvolume create "$M/sv"; chattr +C "$M/sv"
    gen files rand:100000:nc5:"$M/sv/f"
    sync -f "$M"
    btrfs -q subvolume snapshot "$M/sv" "$M/sv-snap"               # forces CoW on next nocow write
    gen pwrite "$M/sv/f" 0 rand 4096 nc6
    gen files rand:100000:cow:"$M/normal-cow.bin"
    note "chattr +C dir (inherited), +C on empty file, nocow overwrite, +C subvol + snapshot (CoW on next write), normal file"
    umnt
    mnt nodatasum
    gen files rand:200000:ns1:"$M/nodatasum/a.bin" text:50000:ns2:"$M/nodatasum/b.txt"
    note "wrote nodatasum/a.bin and nodatasum/b.txt"
}

case_xattrs() {
    mkimg 128M; mnt
    local f=$M/xf
    gen files text:100:x:"$f" text:10:y:"$M/many"
    mkdir "$M/dir"
    local xa=() i
    xa+=("$f" user.small text 5 a  "$f" user.empty text 0 b  "$f" user.binary rand 200 c)
    xa+=("$f" user.large rand 3900 d  "$f" trusted.t text 50 e  "$f" security.s text 20 f)
    xa+=("$f" "user.$(printf 'n%.0s' $(seq 1 250))" text 10 g)          # 255-byte name
    # names with colliding btrfs name hashes (crc32c) -> one DIR_ITEM holding 2 entries
    xa+=("$f" user.coll-1371838 text 30 h1  "$f" user.coll-2000402 text 40 h2)
    xa+=("$M/dir" user.d text 64 i  "$M/dir" trusted.d rand 1000 j)
    for i in $(seq 0 119); do xa+=("$M/many" "user.attr$i" text $((i * 7)) "m$i"); done
    gen xattr "${xa[@]}"
    ln -s xf "$M/lnk"; gen xattr-nofollow "$M/lnk" trusted.l text 16 k   # user.* not allowed on symlinks
    gen files text:10:z:"$M/acl-file"; gen acl "$M/acl-file" access
    gen acl "$M/dir" access; gen acl "$M/dir" default
    gen files text:10:z2:"$M/dir/inherits-acl"
    local big; big=$(gen try-xattr "$M/many" user.huge rand 15000 big)
    note "user.* small/empty/binary/3900B/255-byte name, 120 xattrs on one file, hash-colliding names, trusted/security, dir xattrs, trusted.* on symlink, POSIX ACL access+default (dir + inherited), 15000B xattr: $big"
}

case_hardlinks() {
    mkimg 128M; mnt
    gen files text:1000:h1:"$M/same/orig" rand:5000:h2:"$M/a/cross" text:0:h3:"$M/many/target"
    ln "$M/same/orig" "$M/same/link1"; ln "$M/same/orig" "$M/same/link2"
    mkdir -p "$M/b" "$M/c/d"
    ln "$M/a/cross" "$M/b/cross"; ln "$M/a/cross" "$M/c/d/cross-renamed"
    local i long; long=$(printf 'L%.0s' $(seq 1 230))
    for i in $(seq -w 1 120); do ln "$M/many/target" "$M/many/${long}-$i"; done
    ln "$M/many/target" "$M/same/also-target"
    gen files text:2000:h4:"$M/removed-orig"; ln "$M/removed-orig" "$M/a/survivor"; rm "$M/removed-orig"
    # hash-colliding names (crc32c) in one directory -> one DIR_ITEM with two entries
    gen files text:11:c1:"$M/coll/coll-1371838" text:12:c2:"$M/coll/coll-2000402"
    ln "$M/coll/coll-1371838" "$M/coll/coll-1371839"; ln "$M/coll/coll-1371838" "$M/coll/coll-2000403"
    note "links in one dir, across dirs, 121 links with 234-byte names to one file (INODE_EXTREF), unlinked original, crc32c-colliding names"
    umnt
    local n; n=$(btrfs inspect-internal dump-tree -t fs "$IMG_TMP" | grep -c 'INODE_EXTREF' || true)
    note "INODE_EXTREF items: $n"
}

case_special-files() {
    mkimg 128M; mnt
    local d=$M/s
    mkdir -p "$d"
    mkfifo "$d/fifo"
    mknod "$d/null-like" c 1 3; mknod "$d/blk" b 7 0
    mknod "$d/big-devnum" c 4095 1048575; mknod "$d/blk-minor" b 259 300
    gen sock "$d/socket"
    ln -s target "$d/short-link"; ln -s /absolute/path/x "$d/abs-link"; ln -s ../s "$d/dir-link"
    ln -s "$(printf 'p%.0s' $(seq 1 4000))" "$d/long-link"
    ln -s "$(printf 'a/%.0s' $(seq 1 1000))end" "$d/deep-link"
    ln -s dangling-nowhere "$d/dangling"
    touch "$d/empty"; mkdir "$d/empty-dir"
    gen files text:10:m1:"$d/setuid" text:10:m2:"$d/setgid" text:10:m3:"$d/mode0" text:10:m4:"$d/mode7777"
    chmod 4755 "$d/setuid"; chmod 2755 "$d/setgid"; chmod 0 "$d/mode0"; chmod 7777 "$d/mode7777"
    mkdir "$d/sticky"; chmod 1777 "$d/sticky"; mkdir "$d/setgid-dir"; chmod 2775 "$d/setgid-dir"
    mkdir "$d/dir0"; chmod 0 "$d/dir0"
    gen files text:20:o1:"$d/owned-1000" text:20:o2:"$d/owned-nobody" text:20:o3:"$d/owned-big"
    chown 1000:1000 "$d/owned-1000"; chown 65534:65534 "$d/owned-nobody"; chown 4000000000:123456 "$d/owned-big"
    chown -h 1001:1002 "$d/short-link"; chown 42:43 "$d/fifo"
    gen files text:5:n1:"$d/name with spaces" text:5:n2:"$d/ünïcødé-日本語-🙂" \
        text:5:n3:"$d/$(printf 'N%.0s' $(seq 1 255))" text:5:n5:"$d/-dash" text:5:n6:"$d/.hidden"
    gen files text:5:n4:"$d/"$'new\nline' text:5:n7:"$d/"$'tab\there' text:5:n8:"$d/"$'\x01ctl\x7f'
    gen files text:5:n9:"$d/"$'latin1-\xe9\xff'
    note "fifo, char/blk devs (incl. 4095:1048575), unix socket, symlinks (short, abs, 4000B, 2003B, dangling), empty file/dir, modes 4755/2755/0/7777/1777/2775, uids 1000/65534/4000000000, names with space/unicode/255B/newline/tab/ctl/latin1"
}

case_bigdir() {
    mkimg 128M; mnt
    gen bigdir "$M/big" 3000 500
    gen subdirs "$M/subdirs" 300
    gen files text:1:b1:"$M/big/coll-1371838" text:2:b2:"$M/big/coll-2000402"
    note "big/: 3000 entries created, 500 removed (2500 left, index gaps) + 2 crc32c-colliding names; subdirs/: 300 subdirectories"
}

case_mixed-content() {
    mkimg 256M; mnt
    gen tree "$M" 400 mixed-content $((3 << 20))
    note "gen tree: 400 files 0..3MiB (rand/text/mix/zero), nested dirs, some symlinks"
}

case_fsv1-space-cache() {
    # The kernel only writes a v1 cache for block groups >= 100MiB, so the image
    # must be big enough (chunk size ~10% of the fs) and mkfs' small initial
    # chunks are replaced via a full balance.  Sparse, so the size costs nothing.
    mkimg 1200M -R ^free-space-tree
    if ! try_mnt space_cache=v1; then
        SKIP="kernel refused mount -o space_cache=v1"; return 0
    fi
    small_tree
    gen tree "$M/tree" 60 v1 100000
    btrfs balance start --full-balance "$M" >/dev/null 2>&1
    note "gen tree 60 files; btrfs balance start --full-balance (chunks >= 100MiB get a v1 cache)"
    umnt
    local n; n=$(btrfs inspect-internal dump-tree -t root "$IMG_TMP" | grep -c 'key (FREE_SPACE UNTYPED' || true)
    note "v1 cache entries (FREE_SPACE items in root tree): $n"
    [[ $n -gt 0 ]] || { echo "fsv1-space-cache: no v1 cache written" >&2; return 1; }
}

case_bgt() {
    if ! try_mkimg 128M -O block-group-tree; then
        SKIP="mkfs.btrfs $(mkfs.btrfs --version | awk '{print $NF}') rejects -O block-group-tree: $(head -n1 "$WORK/mkfs.err")"
        return 0
    fi
    mnt; small_tree
}

case_metadata-uuid() {
    mkimg 128M; mnt; small_tree; umnt
    btrfstune -f -M "$(uuid_for metadata-uuid-new)" "$IMG_TMP" >/dev/null
    note "btrfstune -M $(uuid_for metadata-uuid-new) (METADATA_UUID incompat flag; fsid != metadata_uuid)"
}


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------
FAILED=()
build_case() {
    CASE=$1
    local img=$OUT/$CASE.img txt=$OUT/$CASE.txt
    if ! declare -F "case_$CASE" >/dev/null; then
        echo "unknown case: $CASE" >&2; return 1
    fi
    if [[ -e $img && $img -nt $SCRIPT ]] || { [[ ! -e $img && -e $txt && $txt -nt $SCRIPT ]] && grep -q '^SKIPPED' "$txt"; }; then
        log "$CASE: up to date"; return 0
    fi
    rm -f "$img" "$txt"
    IMG_TMP=$OUT/.$CASE.img.tmp
    DESC=""; SKIP=""
    local t0=$SECONDS
    "case_$CASE"
    if mountpoint -q "$M"; then umnt; fi
    if [[ -n $LOOP ]]; then losetup -d "$LOOP"; LOOP=""; fi
    if [[ -n $SKIP ]]; then
        rm -f "$IMG_TMP"; IMG_TMP=""
        echo "SKIPPED: $SKIP" >"$txt"
        log "$CASE: SKIPPED ($SKIP)"
        return 0
    fi
    # verification: btrfs check (read-only) and a ro mount
    if ! btrfs check --readonly "$IMG_TMP" >"$WORK/check.log" 2>&1; then
        log "$CASE: btrfs check FAILED:"; sed 's/^/    /' "$WORK/check.log" | tail -n 30 >&2
        FAILED+=("$CASE"); rm -f "$IMG_TMP"; IMG_TMP=""
        return 0
    fi
    mount -o ro,loop "$IMG_TMP" "$M"; umount "$M"
    mv "$IMG_TMP" "$img"; IMG_TMP=""
    echo "$DESC" >"$txt"
    log "$CASE: ok ($((SECONDS - t0))s, $(du -h "$img" | cut -f1) used)"
}

CASES=("$@")
[[ ${#CASES[@]} -gt 0 ]] || CASES=("${ALL_CASES[@]}")
for c in "${CASES[@]}"; do build_case "$c"; done
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "btrfs check failed for: ${FAILED[*]}" >&2
    exit 1
fi
