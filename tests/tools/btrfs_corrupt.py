#!/usr/bin/env python3
"""Edits one named field of a btrfs structure in a single-device image and
fixes the checksum of the tree block (every copy) or superblock holding it.

  btrfs_corrupt.py IMG block-group-used LOGICAL VALUE
  btrfs_corrupt.py IMG block-group-flags LOGICAL VALUE
  btrfs_corrupt.py IMG dev-extent-length DEVID PHYSICAL VALUE
  btrfs_corrupt.py IMG dev-item-bytes-used DEVID VALUE
  btrfs_corrupt.py IMG dev-item-total-bytes DEVID VALUE   (chunk tree item)
  btrfs_corrupt.py IMG header-generation BYTENR VALUE     (a tree block header)
  btrfs_corrupt.py IMG header-owner BYTENR VALUE
  btrfs_corrupt.py IMG extent-refs BYTENR VALUE           (EXTENT/METADATA item)
  btrfs_corrupt.py IMG extent-generation BYTENR VALUE
  btrfs_corrupt.py IMG extent-ref-root BYTENR VALUE       (first inline backref's root/parent)
  btrfs_corrupt.py IMG data-ref-root BYTENR VALUE         (first inline EXTENT_DATA_REF's root)
  btrfs_corrupt.py IMG data-ref-count BYTENR VALUE        (first inline EXTENT_DATA_REF's count)
  btrfs_corrupt.py IMG extent-key-bytenr BYTENR VALUE     (move the item's key; keep key order!)
  btrfs_corrupt.py IMG leaf-key-objectid BYTENR SLOT VALUE (an item key in a leaf)
  btrfs_corrupt.py IMG block-csum BYTENR MIRROR           (break one copy's checksum)
  btrfs_corrupt.py IMG super-generation MIRROR VALUE      (a superblock copy, csum fixed)
  btrfs_corrupt.py IMG super-bytes-used VALUE             (every superblock copy)
  btrfs_corrupt.py IMG sys-array-byte OFFSET VALUE        (byte of sys_chunk_array, every copy)
  btrfs_corrupt.py IMG super-csum MIRROR                  (break a superblock copy's checksum)
  btrfs_corrupt.py IMG find TREE TYPE [POS]               (print "objectid offset leaf [u64 at POS]" of items)
  btrfs_corrupt.py IMG leaf-key-offset BYTENR SLOT VALUE  (an item key's offset in a leaf)
  btrfs_corrupt.py IMG leaf-item-size BYTENR SLOT VALUE   (an item's size field; data stays put)
  btrfs_corrupt.py IMG item-u64 TREE OID TYPE OFF POS VALUE (8 bytes at POS in that item's data)
  btrfs_corrupt.py IMG item-u32 TREE OID TYPE OFF POS VALUE (4 bytes at POS in that item's data)
  btrfs_corrupt.py IMG item-flip TREE OID TYPE OFF POS     (invert the byte at POS in that item's data)
  btrfs_corrupt.py IMG item-key-offset TREE OID TYPE OFF VALUE (that item's key offset)
  btrfs_corrupt.py IMG item-size TREE OID TYPE OFF VALUE  (that item's size field; data stays put)
  btrfs_corrupt.py IMG delete-item TREE OID TYPE OFF      (remove an item from its leaf; not the
                                                           first item of a leaf below a node)
  btrfs_corrupt.py IMG fst-drop-orphans                   (remove the free space tree items that
                                                           mkfs.btrfs < 6.16.1 leaves below the
                                                           first chunk)
  btrfs_corrupt.py IMG super-u64 POS VALUE               (8 bytes at POS, every superblock copy)
  btrfs_corrupt.py IMG logical-flip LOGICAL               (invert one byte, every copy)

Item edits by exact key (TREE OBJ TYPE OFF; the leaf is rebuilt, so keys may
change order; the first key of a leaf must stay the same unless the leaf is
the tree's root):
  btrfs_corrupt.py IMG item-field TREE OBJ TYPE OFF POS SIZE VALUE  (SIZE-byte LE value at POS in the item)
  btrfs_corrupt.py IMG item-bytes TREE OBJ TYPE OFF POS HEX          (raw bytes at POS)
  btrfs_corrupt.py IMG item-key TREE OBJ TYPE OFF NOBJ NTYPE NOFF    (give the item another key)
  btrfs_corrupt.py IMG item-copy TREE OBJ TYPE OFF NOBJ NTYPE NOFF   (add a copy under another key)
  btrfs_corrupt.py IMG item-delete TREE OBJ TYPE OFF
  btrfs_corrupt.py IMG item-resize TREE OBJ TYPE OFF SIZE            (truncate the item's data)
  btrfs_corrupt.py IMG data-byte LOGICAL MIRROR                      (flip a data byte in one copy)
  btrfs_corrupt.py IMG super-log-root BYTENR LEVEL                   (every superblock copy)

Superblock edits:
  btrfs_corrupt.py IMG super-field POS SIZE VALUE          (SIZE-byte LE value at POS, every copy)
  btrfs_corrupt.py IMG super-copy-field MIRROR POS SIZE VALUE (the same in one copy; csum fixed)
  btrfs_corrupt.py IMG sys-array-copy LOGICAL NEWLOGICAL   (append a copy of the sys_chunk_array
                                                            entry of LOGICAL under key NEWLOGICAL)

Tree block, item and cache edits:
  btrfs_corrupt.py IMG header-field BYTENR POS SIZE VALUE [MIRROR]   (a tree block header field, every
                                                           copy or only copy MIRROR; POS < 101)
  btrfs_corrupt.py IMG node-key-offset BYTENR SLOT VALUE  (a key pointer's key offset in a node)
  btrfs_corrupt.py IMG item-insert TREE OBJ TYPE OFF HEX  (add an item with these data bytes; "-" = none)
  btrfs_corrupt.py IMG block-move FROM TO                 (copy a tree root block to TO, fix its header
                                                           bytenr and the superblock or ROOT_ITEM
                                                           pointing at it; extent items and free space
                                                           stay as they are)
  btrfs_corrupt.py IMG cache-entry BG INDEX OFFSET BYTES  (entry INDEX of block group BG's v1 free
                                                           space cache, page checksum fixed)

Numbers may be decimal, 0x hex or negative (objectids like -10 for EXTENT_CSUM). TREE is a tree id (2 extent, 3 chunk,
4 dev, 5 fs, 11 block group); TYPE an item type number. Only crc32c images
with single or DUP chunks are supported (what the fixtures use).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from btrfs_patch import crc32c  # noqa: E402

SUPER_OFFSETS = [65536, 64 << 20, 256 << 30]
HDR = 101


class Image:
    def __init__(self, path):
        self.f = open(path, "r+b")
        self.f.seek(0, 2)
        self.size = self.f.tell()
        self.sb = self.read(65536, 4096)
        if self.sb[64:72] != b"_BHRfS_M":
            sys.exit("not a btrfs image")
        if struct.unpack_from("<H", self.sb, 196)[0] != 0:
            sys.exit("only crc32c images are supported")
        self.nodesize = struct.unpack_from("<I", self.sb, 148)[0]
        self.chunks = []  # (logical, length, [physical...])
        n = struct.unpack_from("<I", self.sb, 160)[0]
        arr = self.sb[811:811 + n]
        p = 0
        while p < len(arr):
            logical = struct.unpack_from("<Q", arr, p + 9)[0]
            p += 17
            clen = self._add_chunk(logical, arr, p)
            p += clen
        self.walk(struct.unpack_from("<Q", self.sb, 88)[0], self._chunk_leaf)

    def read(self, off, n):
        self.f.seek(off)
        return bytearray(self.f.read(n))

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(bytes(data))

    def _add_chunk(self, logical, buf, p):
        length = struct.unpack_from("<Q", buf, p)[0]
        nstripes = struct.unpack_from("<H", buf, p + 44)[0]
        phys = [struct.unpack_from("<Q", buf, p + 48 + 32 * i + 8)[0] for i in range(nstripes)]
        if not any(c[0] == logical for c in self.chunks):
            self.chunks.append((logical, length, phys))
        return 48 + 32 * nstripes

    def _chunk_leaf(self, blk, items):
        for (oid, typ, off, data_off, size) in items:
            if typ == 228:
                self._add_chunk(off, blk, data_off)

    def physical(self, logical):
        for (start, length, phys) in self.chunks:
            if start <= logical < start + length:
                return [p + logical - start for p in phys]
        sys.exit("logical %d is not mapped" % logical)

    def read_block(self, logical):
        return self.read(self.physical(logical)[0], self.nodesize)

    def write_block(self, logical, blk, mirrors=None):
        struct.pack_into("<I", blk, 0, crc32c(bytes(blk[32:])))
        blk[4:32] = bytes(28)
        for i, p in enumerate(self.physical(logical)):
            if mirrors is None or i in mirrors:
                self.write(p, blk)

    @staticmethod
    def items(blk):
        nr = struct.unpack_from("<I", blk, 96)[0]
        out = []
        for i in range(nr):
            o = HDR + 25 * i
            oid, typ, off = struct.unpack_from("<QBQ", blk, o)
            doff, size = struct.unpack_from("<II", blk, o + 17)
            out.append((oid, typ, off, HDR + doff, size))
        return out

    def walk(self, logical, fn):
        """Calls fn(block, items) for every leaf of the tree rooted at logical;
        fn returns True to stop."""
        blk = self.read_block(logical)
        level = blk[100]
        if level == 0:
            return fn(blk, self.items(blk)) if True else None
        nr = struct.unpack_from("<I", blk, 96)[0]
        for i in range(nr):
            ptr = struct.unpack_from("<Q", blk, HDR + 33 * i + 17)[0]
            if self.walk(ptr, fn):
                return True
        return False

    def tree_root(self, tree):
        if tree == 1:
            return struct.unpack_from("<Q", self.sb, 80)[0]
        if tree == 3:
            return struct.unpack_from("<Q", self.sb, 88)[0]
        found = []

        def fn(blk, items):
            for (oid, typ, off, doff, size) in items:
                if oid == tree and typ == 132:
                    found.append(struct.unpack_from("<Q", blk, doff + 176)[0])
                    return True
            return False
        self.walk(self.tree_root(1), fn)
        if not found:
            sys.exit("tree %d not found" % tree)
        return found[0]

    def edit_item(self, tree, match, edit):
        """Finds the first item for which match(oid, typ, off) holds in tree,
        calls edit(block, data_offset, size) and writes the leaf back."""
        done = []

        def fn(blk, items):
            for (oid, typ, off, doff, size) in items:
                if match(oid, typ, off):
                    edit(blk, doff, size)
                    self.write_block(struct.unpack_from("<Q", blk, 48)[0], blk)
                    done.append(1)
                    return True
            return False
        self.walk(self.tree_root(tree), fn)
        if not done:
            sys.exit("item not found")

    def delete_items(self, tree, match):
        """Removes every item for which match(oid, typ, off) holds from the
        leaves of tree (one leaf rewrite per leaf); returns how many."""
        count = [0]

        def fn(blk, items):
            gone = [i for i, (o, t, f, d, z) in enumerate(items) if match(o, t, f)]
            if not gone:
                return False
            for i in reversed(gone):
                nr = struct.unpack_from("<I", blk, 96)[0]
                _, _, _, doff, size = Image.items(blk)[i]
                low = min(d for (_, _, _, d, _) in Image.items(blk)) if nr else doff
                # Item data grows down from the end: the data of later items
                # (below this one) moves up by `size`.
                blk[low + size:doff + size] = blk[low:doff]
                blk[low:low + size] = bytes(size)
                for j in range(i + 1, nr):
                    o = HDR + 25 * j + 17
                    struct.pack_into("<I", blk, o, struct.unpack_from("<I", blk, o)[0] + size)
                blk[HDR + 25 * i:HDR + 25 * (nr - 1)] = blk[HDR + 25 * (i + 1):HDR + 25 * nr]
                blk[HDR + 25 * (nr - 1):HDR + 25 * nr] = bytes(25)
                struct.pack_into("<I", blk, 96, nr - 1)
                count[0] += 1
            self.write_block(struct.unpack_from("<Q", blk, 48)[0], blk)
            return False
        self.walk(self.tree_root(tree), fn)
        return count[0]

    def bg_tree(self):
        compat_ro = struct.unpack_from("<Q", self.sb, 180)[0]
        return 11 if compat_ro & (1 << 3) else 2

    def supers(self):
        return [o for o in SUPER_OFFSETS if o + 4096 <= self.size]

    def write_super(self, off, sb, fix=True):
        if fix:
            struct.pack_into("<I", sb, 0, crc32c(bytes(sb[32:4096])))
        self.write(off, sb)


def num(s):
    return int(s, 0) & (2**64 - 1)


def find_leaf(img, tree, key):
    """(leaf block, slot) of the item with exactly this key."""
    found = []

    def fn(blk, items):
        for i, (oid, typ, off, doff, size) in enumerate(items):
            if (oid, typ, off) == key:
                found.append((blk, i))
                return True
        return False
    img.walk(img.tree_root(tree), fn)
    if not found:
        sys.exit("item %r not found" % (key,))
    return found[0]


def rebuild_leaf(img, blk, entries):
    """Rewrites a leaf's items from (key, data) pairs, sorted by key."""
    entries.sort(key=lambda e: e[0])
    blk[HDR:] = bytes(len(blk) - HDR)
    end = len(blk) - HDR
    if HDR + 25 * len(entries) + sum(len(d) for _, d in entries) > len(blk):
        sys.exit("the items do not fit in the leaf")
    for i, (k, d) in enumerate(entries):
        end -= len(d)
        struct.pack_into("<QBQII", blk, HDR + 25 * i, k[0], k[1], k[2], end, len(d))
        blk[HDR + end:HDR + end + len(d)] = d
    struct.pack_into("<I", blk, 96, len(entries))
    img.write_block(struct.unpack_from("<Q", blk, 48)[0], blk)


def item_op(img, op, a):
    tree, key = a[0], (a[1], a[2], a[3])
    blk, slot = find_leaf(img, tree, key)
    entries = [((o, t, f), bytes(blk[d:d + z])) for (o, t, f, d, z) in Image.items(blk)]
    k, data = entries[slot]
    if op == "item-field":
        pos, size, value = a[4], a[5], a[6]
        data = bytearray(data)
        data[pos:pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        entries[slot] = (k, bytes(data))
    elif op == "item-key":
        entries[slot] = ((a[4], a[5], a[6]), data)
    elif op == "item-copy":
        entries.append(((a[4], a[5], a[6]), data))
    elif op == "item-delete":
        del entries[slot]
    elif op == "item-resize":
        entries[slot] = (k, data[:a[4]])
    rebuild_leaf(img, blk, entries)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    img, op = Image(argv[1]), argv[2]
    if op == "item-bytes":
        a = [num(x) for x in argv[3:8]]
        blk, slot = find_leaf(img, a[0], (a[1], a[2], a[3]))
        doff = Image.items(blk)[slot][3]
        raw = bytes.fromhex(argv[8])
        blk[doff + a[4]:doff + a[4] + len(raw)] = raw
        img.write_block(struct.unpack_from("<Q", blk, 48)[0], blk)
        return
    if op in EXTRA_OPS:
        EXTRA_OPS[op](img, argv[3:])
        return
    args = [num(a) for a in argv[3:]]
    if op in ("item-field", "item-key", "item-copy", "item-delete", "item-resize"):
        item_op(img, op, args)
        return

    def put64(off_in_item):
        def edit(blk, doff, size):
            struct.pack_into("<Q", blk, doff + off_in_item, args[-1])
        return edit

    if op == "block-group-used":
        img.edit_item(img.bg_tree(), lambda o, t, f: o == args[0] and t == 192, put64(0))
    elif op == "block-group-flags":
        img.edit_item(img.bg_tree(), lambda o, t, f: o == args[0] and t == 192, put64(16))
    elif op == "sys-array-byte":
        for off in img.supers():
            sb = img.read(off, 4096)
            if sb[64:72] == b"_BHRfS_M":
                sb[811 + args[0]] = args[1]
                img.write_super(off, sb)
    elif op == "dev-extent-length":
        img.edit_item(4, lambda o, t, f: o == args[0] and t == 204 and f == args[1], put64(24))
    elif op == "dev-item-bytes-used":
        img.edit_item(3, lambda o, t, f: o == 1 and t == 216 and f == args[0], put64(16))
    elif op == "dev-item-total-bytes":
        img.edit_item(3, lambda o, t, f: o == 1 and t == 216 and f == args[0], put64(8))
    elif op in ("extent-refs", "extent-generation"):
        field = 0 if op == "extent-refs" else 8
        img.edit_item(2, lambda o, t, f: o == args[0] and t in (168, 169), put64(field))
    elif op == "extent-ref-root":
        def edit(blk, doff, size):
            flags = struct.unpack_from("<Q", blk, doff + 16)[0]
            skinny = [t for (o, t, f, d, z) in Image.items(blk) if d == doff][0] == 169
            p = doff + 24 + (0 if skinny or not flags & 2 else 18)
            struct.pack_into("<Q", blk, p + 1, args[1])
        img.edit_item(2, lambda o, t, f: o == args[0] and t in (168, 169), edit)
    elif op in ("data-ref-root", "data-ref-count"):
        def edit(blk, doff, size):
            if blk[doff + 24] != 178:
                sys.exit("first inline ref is not an EXTENT_DATA_REF")
            if op == "data-ref-root":
                struct.pack_into("<Q", blk, doff + 25, args[1])
            else:
                struct.pack_into("<I", blk, doff + 49, args[1])
        img.edit_item(2, lambda o, t, f: o == args[0] and t == 168, edit)
    elif op == "extent-key-bytenr":
        def fn(blk, items):
            for i, (oid, typ, off, doff, size) in enumerate(items):
                if oid == args[0] and typ in (168, 169):
                    struct.pack_into("<Q", blk, HDR + 25 * i, args[1])
                    img.write_block(struct.unpack_from("<Q", blk, 48)[0], blk)
                    return True
            return False
        if not img.walk(img.tree_root(2), fn):
            sys.exit("item not found")
    elif op in ("header-generation", "header-owner"):
        blk = img.read_block(args[0])
        struct.pack_into("<Q", blk, 80 if op == "header-generation" else 88, args[1])
        img.write_block(args[0], blk)
    elif op == "leaf-key-objectid":
        blk = img.read_block(args[0])
        struct.pack_into("<Q", blk, HDR + 25 * args[1], args[2])
        img.write_block(args[0], blk)
    elif op == "block-csum":
        p = img.physical(args[0])[args[1]]
        blk = img.read(p, img.nodesize)
        blk[0] ^= 0xFF
        img.write(p, blk)
    elif op == "super-generation":
        off = SUPER_OFFSETS[args[0]]
        sb = img.read(off, 4096)
        struct.pack_into("<Q", sb, 72, args[1])
        img.write_super(off, sb)
    elif op == "super-bytes-used":
        for off in img.supers():
            sb = img.read(off, 4096)
            struct.pack_into("<Q", sb, 120, args[0])
            img.write_super(off, sb)
    elif op == "super-csum":
        off = SUPER_OFFSETS[args[0]]
        sb = img.read(off, 4096)
        sb[0] ^= 0xFF
        img.write_super(off, sb, fix=False)
    elif op == "data-byte":
        p = img.physical(args[0])[args[1]]
        b = img.read(p, 1)
        b[0] ^= 0xFF
        img.write(p, b)
    elif op == "super-log-root":
        for off in img.supers():
            sb = img.read(off, 4096)
            if sb[64:72] == b"_BHRfS_M":
                struct.pack_into("<Q", sb, 96, args[0])
                sb[200] = args[1]
                img.write_super(off, sb)
    elif op in ("leaf-key-offset", "leaf-item-size"):
        blk = img.read_block(args[0])
        if op == "leaf-key-offset":
            struct.pack_into("<Q", blk, HDR + 25 * args[1] + 9, args[2])
        else:
            struct.pack_into("<I", blk, HDR + 25 * args[1] + 21, args[2])
        img.write_block(args[0], blk)
    elif op in ("item-u64", "item-u32"):
        fmt = "<Q" if op == "item-u64" else "<I"

        def edit(blk, doff, size):
            struct.pack_into(fmt, blk, doff + args[4], args[5])
        img.edit_item(args[0], lambda o, t, f: (o, t, f) == (args[1], args[2], args[3]), edit)
    elif op == "item-flip":
        def edit(blk, doff, size):
            blk[doff + args[4]] ^= 0xFF
        img.edit_item(args[0], lambda o, t, f: (o, t, f) == (args[1], args[2], args[3]), edit)
    elif op in ("item-key-offset", "item-size"):
        def fn(blk, items):
            for i, (o, t, f, d, z) in enumerate(items):
                if (o, t, f) == tuple(args[1:4]):
                    if op == "item-key-offset":
                        struct.pack_into("<Q", blk, HDR + 25 * i + 9, args[4])
                    else:
                        struct.pack_into("<I", blk, HDR + 25 * i + 21, args[4])
                    img.write_block(struct.unpack_from("<Q", blk, 48)[0], blk)
                    return True
            return False
        if not img.walk(img.tree_root(args[0]), fn):
            sys.exit("item not found")
    elif op == "delete-item":
        if img.delete_items(args[0], lambda o, t, f: (o, t, f) == (args[1], args[2], args[3])) != 1:
            sys.exit("item not found")
    elif op == "fst-drop-orphans":
        first = min(c[0] for c in img.chunks)
        img.delete_items(10, lambda o, t, f: t in (198, 199, 200) and o < first)
    elif op == "super-u64":
        for off in img.supers():
            sb = img.read(off, 4096)
            if sb[64:72] == b"_BHRfS_M":
                struct.pack_into("<Q", sb, args[0], args[1])
                img.write_super(off, sb)
    elif op == "logical-flip":
        for p in img.physical(args[0]):
            b = img.read(p, 1)
            img.write(p, bytes([b[0] ^ 0xFF]))
    elif op == "find":
        def fn(blk, items):
            for (oid, typ, off, doff, size) in items:
                if typ == args[1]:
                    extra = ""
                    if len(args) > 2 and args[2] + 8 <= size:
                        extra = " %d" % struct.unpack_from("<Q", blk, doff + args[2])[0]
                    print(oid, off, struct.unpack_from("<Q", blk, 48)[0], end=extra + "\n")
            return False
        img.walk(img.tree_root(args[0]), fn)
    # --- superblock edits ---
    elif op in ("super-field", "super-copy-field"):
        offs = img.supers() if op == "super-field" else [SUPER_OFFSETS[args[0]]]
        pos, size, value = args[-3:]
        if pos + size > 4096:
            sys.exit("edit beyond the superblock")
        for off in offs:
            sb = img.read(off, 4096)
            if op == "super-copy-field" or sb[64:72] == b"_BHRfS_M":
                sb[pos:pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                img.write_super(off, sb)
    elif op == "sys-array-copy":
        for off in img.supers():
            sb = img.read(off, 4096)
            if sb[64:72] != b"_BHRfS_M":
                continue
            n = struct.unpack_from("<I", sb, 160)[0]
            p = 0
            entry = None
            while p < n:
                nst = struct.unpack_from("<H", sb, 811 + p + 17 + 44)[0]
                size = 17 + 48 + 32 * nst
                if struct.unpack_from("<Q", sb, 811 + p + 9)[0] == args[0]:
                    entry = bytearray(sb[811 + p:811 + p + size])
                p += size
            if entry is None:
                sys.exit("chunk %d is not in sys_chunk_array" % args[0])
            if n + len(entry) > 2048:
                sys.exit("sys_chunk_array is full")
            struct.pack_into("<Q", entry, 9, args[1])
            sb[811 + n:811 + n + len(entry)] = entry
            struct.pack_into("<I", sb, 160, n + len(entry))
            img.write_super(off, sb)
    else:
        sys.exit("unknown operation " + op)


# --- tree block, item and cache edits (named-function operations) ---

def op_header_field(img, a):
    bytenr, pos, size, value = (num(x) for x in a[:4])
    if pos + size > HDR:
        sys.exit("not a header field")
    blk = img.read_block(bytenr)
    blk[pos:pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    # The block is written back at its own address, whatever the new header
    # says about it.
    struct.pack_into("<I", blk, 0, crc32c(bytes(blk[32:])))
    blk[4:32] = bytes(28)
    for i, p in enumerate(img.physical(bytenr)):
        if len(a) < 5 or i == num(a[4]):
            img.write(p, blk)


def op_node_key_offset(img, a):
    bytenr, slot, value = (num(x) for x in a[:3])
    blk = img.read_block(bytenr)
    if blk[100] == 0:
        sys.exit("%d is a leaf" % bytenr)
    struct.pack_into("<Q", blk, HDR + 33 * slot + 9, value)
    img.write_block(bytenr, blk)


def op_item_insert(img, a):
    tree, oid, typ, off = (num(x) for x in a[:4])
    data = b"" if a[4] == "-" else bytes.fromhex(a[4])
    # The leaf that holds the key just before the new one (or the first leaf).
    best = []

    def fn(blk, items):
        if not best or (items and items[0][:3] <= (oid, typ, off)):
            best[:] = [bytearray(blk)]
        return False
    img.walk(img.tree_root(tree), fn)
    blk = best[0]
    entries = [((o, t, f), bytes(blk[d:d + z])) for (o, t, f, d, z) in Image.items(blk)]
    entries.append(((oid, typ, off), data))
    rebuild_leaf(img, blk, entries)


def op_block_move(img, a):
    src, dst = num(a[0]), num(a[1])
    blk = img.read_block(src)
    struct.pack_into("<Q", blk, 48, dst)
    img.write_block(dst, blk)
    fixed = 0
    for off in img.supers():
        sb = img.read(off, 4096)
        if sb[64:72] != b"_BHRfS_M":
            continue
        for pos in (80, 88):  # root, chunk_root
            if struct.unpack_from("<Q", sb, pos)[0] == src:
                struct.pack_into("<Q", sb, pos, dst)
                fixed += 1
        img.write_super(off, sb)
    img.sb = img.read(65536, 4096)

    if fixed:
        return

    def fn(b, items):
        for (o, t, f, d, z) in items:
            if t == 132 and struct.unpack_from("<Q", b, d + 176)[0] == src:
                struct.pack_into("<Q", b, d + 176, dst)
                img.write_block(struct.unpack_from("<Q", b, 48)[0], b)
                return True
        return False
    if not img.walk(img.tree_root(1), fn):
        sys.exit("no superblock field or ROOT_ITEM points at %d" % src)


def op_cache_entry(img, a):
    bg, index, offset, nbytes = (num(x) for x in a[:4])
    found = []

    def fn(b, items):
        for (o, t, f, d, z) in items:
            if o == (2**64 - 11) and t == 0 and f == bg:
                found.append(struct.unpack_from("<Q", b, d)[0])
                return True
        return False
    img.walk(img.tree_root(1), fn)
    if not found:
        sys.exit("no free space cache header for block group %d" % bg)
    ino = found[0]
    info = {}

    def fn2(b, items):
        for (o, t, f, d, z) in items:
            if o == ino and t == 1:
                info["size"] = struct.unpack_from("<Q", b, d + 16)[0]
            elif o == ino and t == 108 and f == 0:
                info["disk"] = struct.unpack_from("<Q", b, d + 21)[0] + struct.unpack_from("<Q", b, d + 37)[0]
        return False
    img.walk(img.tree_root(1), fn2)
    pages = (info["size"] + 4095) // 4096
    # Entries follow the page checksums and the generation; none crosses a page.
    page, pos = 0, pages * 4 + 8
    for _ in range(index):
        pos += 17
        if 4096 - pos < 17:
            page, pos = page + 1, 0
    if 4096 - pos < 17:
        page, pos = page + 1, 0
    base = img.physical(info["disk"])[0]
    buf = img.read(base, pages * 4096)
    struct.pack_into("<QQ", buf, page * 4096 + pos, offset, nbytes)
    skip = pages * 4 if page == 0 else 0
    crc = crc32c(bytes(buf[page * 4096 + skip:(page + 1) * 4096]))
    struct.pack_into("<I", buf, page * 4, crc)
    img.write(base, buf)


EXTRA_OPS = {
    "header-field": op_header_field,
    "node-key-offset": op_node_key_offset,
    "item-insert": op_item_insert,
    "block-move": op_block_move,
    "cache-entry": op_cache_entry,
}


if __name__ == "__main__":
    main(sys.argv)
