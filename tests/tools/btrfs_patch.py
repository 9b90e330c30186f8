#!/usr/bin/env python3
"""Edits a btrfs image for tests: changes bytes inside tree blocks and fixes
their crc32c checksums, or damages blocks on purpose.

  btrfs_patch.py replace IMG OLD NEW     replace byte string OLD by NEW (same length)
                                         in every tree block holding it; fix csums
  btrfs_patch.py smash IMG PHYSICAL [LEN] overwrite LEN bytes (default 64) at a
                                         physical offset with 0xEE (csum left wrong)
  btrfs_patch.py blocks IMG              list physical offsets of tree blocks

Tree blocks are found by scanning the image at nodesize alignment for headers
carrying the filesystem's fsid (every copy of a DUP block is found). Only
crc32c images are supported.
"""
import struct
import sys


def _crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_super(f):
    f.seek(65536)
    sb = f.read(4096)
    if sb[64:72] != b"_BHRfS_M":
        sys.exit("not a btrfs image (bad magic)")
    csum_type = struct.unpack_from("<H", sb, 196)[0]
    if csum_type != 0:
        sys.exit("only crc32c images are supported")
    fsid = sb[32:48]
    incompat = struct.unpack_from("<Q", sb, 188)[0]
    if incompat & (1 << 10):  # METADATA_UUID
        fsid = sb[571:587]
    nodesize = struct.unpack_from("<I", sb, 148)[0]
    return fsid, nodesize


def tree_blocks(f, fsid, nodesize):
    f.seek(0, 2)
    size = f.tell()
    off = 0
    while off + nodesize <= size:
        f.seek(off + 32)
        if f.read(16) == fsid:
            f.seek(off)
            yield off, f.read(nodesize)
        off += nodesize


def fix_csum(block):
    c = crc32c(block[32:])
    return struct.pack("<I", c) + b"\0" * 28 + block[32:]


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, img = argv[1], argv[2]
    with open(img, "r+b") as f:
        if cmd == "smash":
            phys = int(argv[3], 0)
            n = int(argv[4], 0) if len(argv) > 4 else 64
            f.seek(phys)
            f.write(b"\xee" * n)
            return 0
        fsid, nodesize = read_super(f)
        if cmd == "blocks":
            for off, _ in tree_blocks(f, fsid, nodesize):
                print(off)
            return 0
        if cmd == "replace":
            old, new = argv[3].encode(), argv[4].encode()
            if len(old) != len(new):
                sys.exit("OLD and NEW must have the same length")
            changed = 0
            for off, block in list(tree_blocks(f, fsid, nodesize)):
                if old in block[101:]:
                    nb = block[:101] + block[101:].replace(old, new)
                    f.seek(off)
                    f.write(fix_csum(nb))
                    changed += 1
            print(f"{changed} blocks changed")
            return 0 if changed else 1
    sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
