#!/usr/bin/env python3
"""Deterministic manifest of a directory tree (for comparing file trees).

Usage: manifest.py [--mtime] [--no-xattr] [--exclude GLOB]... [--header] DIR

One line per path below DIR (DIR itself is "."), sorted by the raw bytes of
the relative path, tab separated columns:

  path  type  mode  uid  gid  nlink  size  content  xattrs  hlink  [mtime]

  path     relative path; bytes outside 0x20..0x7e and '%' are written %XX
  type     reg dir lnk chr blk fifo sock
  mode     permission bits incl. setuid/setgid/sticky, 4 octal digits
  nlink    link count for regular files, '-' otherwise
  size     st_size for regular files and symlinks, '-' otherwise
  content  reg: sha256 of the data; lnk: target (escaped like paths);
           chr/blk: major:minor; '-' otherwise
  xattrs   ','-joined sorted name=sha256(value) (all namespaces readable,
           symlinks not followed; name escaped, also '=' and ','), '-' if none
  hlink    for non-directories with nlink > 1: 'H<n>', numbered in order of
           the group's first path, so equal link structures compare equal
  mtime    only with --mtime: seconds.nanoseconds

Symlinks are never followed; subvolume / mount boundaries are crossed.
--exclude GLOB (repeatable) drops entries whose relative path or basename
matches (fnmatch); an excluded directory is not descended into.

As a module: manifest(dir, xattrs=True, mtime=False, excludes=(), header=False)
returns the list of lines (without newlines).
"""

import argparse
import fnmatch
import hashlib
import os
import stat
import sys

COLUMNS = ["path", "type", "mode", "uid", "gid", "nlink", "size", "content", "xattrs", "hlink"]

_TYPES = [
    (stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "lnk"),
    (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "sock"),
]


def escape(b, extra=b""):
    """Escape bytes to a one-line ASCII string: %XX for non-printables, '%' and extra."""
    out = []
    for c in b:
        if c < 0x20 or c > 0x7E or c == 0x25 or c in extra:
            out.append("%%%02X" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def _ftype(mode):
    for pred, name in _TYPES:
        if pred(mode):
            return name
    return "unknown"


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def _xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return "ERR(%s)" % (e.strerror or e.errno)
    items = []
    for name in names:
        bname = os.fsencode(name)
        try:
            val = os.getxattr(path, name, follow_symlinks=False)
            digest = hashlib.sha256(val).hexdigest()
        except OSError as e:
            digest = "ERR(%s)" % (e.strerror or e.errno)
        items.append((bname, digest))
    if not items:
        return "-"
    items.sort()
    return ",".join("%s=%s" % (escape(n, b"=,"), d) for n, d in items)


def _excluded(rel, excludes):
    if not excludes:
        return False
    s = os.fsdecode(rel)
    base = s.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(s, p) or fnmatch.fnmatchcase(base, p) for p in excludes)


def _walk(top, excludes):
    """Yield (relpath_bytes, abspath_bytes, stat) for top and everything below."""
    top = os.fsencode(top)
    yield b".", top, os.lstat(top)
    stack = [(b"", top)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = rel_dir + e.name
            if _excluded(rel, excludes):
                continue
            st = os.lstat(e.path)
            yield rel, e.path, st
            if stat.S_ISDIR(st.st_mode):
                stack.append((rel + b"/", e.path))


def manifest(directory, xattrs=True, mtime=False, excludes=(), header=False):
    """Return the manifest lines (see module docstring) for directory."""
    rows = []
    for rel, path, st in _walk(directory, list(excludes)):
        mode = st.st_mode
        ft = _ftype(mode)
        nlink = str(st.st_nlink) if ft == "reg" else "-"
        size = str(st.st_size) if ft in ("reg", "lnk") else "-"
        if ft == "reg":
            content = _sha256_file(path)
        elif ft == "lnk":
            content = escape(os.readlink(path))
        elif ft in ("chr", "blk"):
            content = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        else:
            content = "-"
        xa = _xattrs(path) if xattrs else "-"
        key = (st.st_dev, st.st_ino) if ft != "dir" and st.st_nlink > 1 else None
        cols = [rel, ft, "%04o" % stat.S_IMODE(mode), str(st.st_uid), str(st.st_gid),
                nlink, size, content, xa, key]
        if mtime:
            cols.append("%d.%09d" % divmod(st.st_mtime_ns, 1_000_000_000))
        rows.append(cols)

    rows.sort(key=lambda r: r[0])
    groups = {}
    lines = []
    if header:
        lines.append("#" + "\t".join(COLUMNS + (["mtime"] if mtime else [])))
    for r in rows:
        key = r[9]
        if key is None:
            r[9] = "-"
        else:
            if key not in groups:
                groups[key] = "H%d" % (len(groups) + 1)
            r[9] = groups[key]
        r[0] = escape(r[0])
        lines.append("\t".join(r))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--mtime", action="store_true", help="add mtime column (ns)")
    ap.add_argument("--no-xattr", action="store_true", help="do not read xattrs")
    ap.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                    help="skip paths whose relative path or basename matches (repeatable)")
    ap.add_argument("--header", action="store_true", help="print a '#'-prefixed column header")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.dir):
        ap.error("not a directory: %s" % a.dir)
    lines = manifest(a.dir, xattrs=not a.no_xattr, mtime=a.mtime,
                     excludes=a.exclude, header=a.header)
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
