#!/usr/bin/env python3
"""Random file operations for model-based tests of `btk file`.

Usage: model_ops.py --seed S --count N --host DIR --stage DIR --script OUT
                    [--names-prefix P]

Generates N random but valid operations against the tree in DIR (the model,
a host directory holding what the image should hold), applies each to DIR
with Python's os calls and writes the same operations, in `btk file batch`
syntax, to OUT. File contents are staged as files in --stage (put copies
them). The same seed gives the same operations for the same starting tree.

Operations: put (new and overwrite, sizes from empty through inline-size to
several MiB), mkdir, rm, rm -r, mv (files and directories, into other
directories and over existing files), ln, symlink, mkfifo, mknod, setxattr,
rmxattr, chmod, chown, truncate (shrink and grow), touch.
"""

import argparse
import os
import random
import shutil
import stat


def walk(root):
    """(dirs, others) as paths relative to root ('' is the root dir)."""
    dirs, others = [""], []
    for cur, dnames, fnames in os.walk(root):
        rel = os.path.relpath(cur, root)
        rel = "" if rel == "." else rel
        for d in list(dnames):
            p = os.path.join(rel, d)
            if os.path.islink(os.path.join(root, p)):
                others.append(p)
                dnames.remove(d)
            else:
                dirs.append(p)
        for f in fnames:
            others.append(os.path.join(rel, f))
    return sorted(dirs), sorted(others)


def quote(s):
    if s == "":
        return "''"
    return "'" + s.replace("'", "'\\''") + "'" if any(c in s for c in " \t'\"\\#") else s


class Model:
    def __init__(self, rnd, host, stage, prefix):
        self.r, self.host, self.stage, self.prefix = rnd, host, stage, prefix
        self.lines = []
        self.n = 0

    def name(self):
        self.n += 1
        kinds = ["f", "d", "x", "long" * 10, "sp ace", "ü"]
        return "%s%s%d" % (self.prefix, self.r.choice(kinds), self.n)

    def hp(self, rel):
        return os.path.join(self.host, rel)

    def ip(self, rel):
        return "/" + rel

    def emit(self, *words):
        self.lines.append(" ".join(quote(w) for w in words))

    def regular_files(self, others):
        return [p for p in others if stat.S_ISREG(os.lstat(self.hp(p)).st_mode)]

    def content(self):
        kind = self.r.random()
        if kind < 0.15:
            n = 0
        elif kind < 0.45:
            n = self.r.randint(1, 2048)
        elif kind < 0.6:
            n = self.r.choice([4095, 4096, 4097, 8192, 65536])
        elif kind < 0.95:
            n = self.r.randint(2049, 300000)
        else:
            n = self.r.randint(1 << 20, 5 << 20)
        data = self.r.randbytes(n) if self.r.random() < 0.7 else bytes([self.r.randint(0, 255)]) * n
        self.n += 1  # every staged content gets a file of its own
        path = os.path.join(self.stage, "%sc%d" % (self.prefix, self.n))
        with open(path, "wb") as f:
            if n > 65536 and self.r.random() < 0.3:
                # Sparse: a few data pieces with holes around them.
                for _ in range(self.r.randint(1, 3)):
                    at = self.r.randrange(0, n) // 4096 * 4096
                    f.seek(at)
                    f.write(self.r.randbytes(self.r.randint(1, 20000)))
                f.truncate(n + self.r.randint(0, 1 << 20))
            else:
                f.write(data)
        os.chmod(path, self.r.choice([0o644, 0o600, 0o755, 0o4755]))
        return path

    def step(self):
        dirs, others = walk(self.host)
        files = self.regular_files(others)
        op = self.r.choices(
            ["put", "put_over", "mkdir", "rm", "rmr", "mv", "ln", "symlink", "mkfifo", "mknod", "setxattr",
             "rmxattr", "chmod", "chown", "truncate", "touch", "fallocate"],
            weights=[20, 5, 8, 6, 2, 6, 5, 3, 2, 1, 4, 2, 3, 3, 4, 3, 3])[0]
        d = self.r.choice(dirs)
        if op == "put" or (op == "put_over" and not files):
            src = self.content()
            dest = os.path.join(d, self.name())
            shutil.copyfile(src, self.hp(dest))
            st = os.stat(src)
            os.chmod(self.hp(dest), stat.S_IMODE(st.st_mode))
            self.emit("put", src, self.ip(dest))
        elif op == "put_over":
            dest = self.r.choice(files)
            src = self.content()
            with open(src, "rb") as f, open(self.hp(dest), "r+b") as g:
                g.truncate(0)
                g.write(f.read())
            # put copies owner and then mode (a new owner would drop set-user-ID)
            os.chown(self.hp(dest), 0, 0)
            os.chmod(self.hp(dest), stat.S_IMODE(os.stat(src).st_mode))
            self.emit("put", src, self.ip(dest))
        elif op == "mkdir":
            p = os.path.join(d, self.name())
            os.mkdir(self.hp(p), 0o755)
            self.emit("mkdir", self.ip(p))
        elif op == "rm" and others:
            p = self.r.choice(others)
            os.unlink(self.hp(p))
            self.emit("rm", self.ip(p))
        elif op == "rmr" and len(dirs) > 1:
            p = self.r.choice(dirs[1:])
            shutil.rmtree(self.hp(p))
            self.emit("rm", "-r", self.ip(p))
        elif op == "mv" and (others or len(dirs) > 1):
            src = self.r.choice(others + dirs[1:])
            targets = [x for x in dirs if not (x + "/").startswith(src + "/") and x != src]
            if not targets:
                return
            td = self.r.choice(targets)
            dest = os.path.join(td, self.name())
            if self.r.random() < 0.3 and files and os.path.isfile(self.hp(src)) and not os.path.islink(self.hp(src)):
                over = self.r.choice(files)
                if over != src:
                    dest = over
            os.rename(self.hp(src), self.hp(dest))
            self.emit("mv", self.ip(src), self.ip(dest))
        elif op == "ln" and files:
            src = self.r.choice(files)
            dest = os.path.join(d, self.name())
            os.link(self.hp(src), self.hp(dest))
            self.emit("ln", self.ip(src), self.ip(dest))
        elif op == "symlink":
            target = self.r.choice(["../x", "/abs/target", "t" * self.r.randint(1, 300), "a b"])
            dest = os.path.join(d, self.name())
            os.symlink(target, self.hp(dest))
            self.emit("symlink", target, self.ip(dest))
        elif op == "mkfifo":
            dest = os.path.join(d, self.name())
            os.mkfifo(self.hp(dest), 0o644)
            self.emit("mkfifo", self.ip(dest))
        elif op == "mknod":
            dest = os.path.join(d, self.name())
            ma, mi = self.r.randint(1, 300), self.r.randint(0, 2000)
            os.mknod(self.hp(dest), stat.S_IFCHR | 0o644, os.makedev(ma, mi))
            self.emit("mknod", self.ip(dest), "c", str(ma), str(mi))
        elif op == "setxattr":
            p = self.r.choice(dirs + files)
            name = "user.k%d" % self.r.randint(0, 5)
            val = "v" * self.r.randint(0, 200)
            os.setxattr(self.hp(p), name, val.encode(), follow_symlinks=False)
            self.emit("setxattr", self.ip(p), name, val)
        elif op == "rmxattr":
            cands = [(p, n) for p in dirs + files for n in os.listxattr(self.hp(p), follow_symlinks=False)
                     if n.startswith("user.")]
            if cands:
                p, n = self.r.choice(cands)
                os.removexattr(self.hp(p), n, follow_symlinks=False)
                self.emit("rmxattr", self.ip(p), n)
        elif op == "chmod" and (files or len(dirs) > 1):
            p = self.r.choice(files + dirs[1:])
            m = self.r.choice([0o700, 0o755, 0o644, 0o1777, 0o2750, 0o600])
            os.chmod(self.hp(p), m)
            self.emit("chmod", "%o" % m, self.ip(p))
        elif op == "chown":
            p = self.r.choice(files + dirs)
            u, g = self.r.randint(0, 70000), self.r.randint(0, 70000)
            os.chown(self.hp(p), u, g, follow_symlinks=False)
            self.emit("chown", "%d:%d" % (u, g), self.ip(p))
        elif op == "truncate" and files:
            p = self.r.choice(files)
            size = os.path.getsize(self.hp(p))
            n = self.r.choice([0, size // 2, size + self.r.randint(1, 100000), self.r.randint(0, 3000)])
            os.truncate(self.hp(p), n)
            self.emit("truncate", str(n), self.ip(p))
        elif op == "fallocate" and files:
            p = self.r.choice(files)
            size = os.path.getsize(self.hp(p))
            if 0 < size <= 2048:
                return  # inline data: not preallocated
            off = self.r.choice([0, size, self.r.randint(0, size + 200000)])
            n = self.r.randint(1, 300000)
            fd = os.open(self.hp(p), os.O_WRONLY)
            os.posix_fallocate(fd, off, n)
            os.close(fd)
            self.emit("fallocate", str(off), str(n), self.ip(p))
        elif op == "touch":
            p = os.path.join(d, self.name()) if self.r.random() < 0.5 or not files else self.r.choice(files)
            if not os.path.exists(self.hp(p)):
                with open(self.hp(p), "wb"):
                    pass
                os.chmod(self.hp(p), 0o644)
            self.emit("touch", self.ip(p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--stage", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--names-prefix", default="")
    a = ap.parse_args()
    os.makedirs(a.stage, exist_ok=True)
    m = Model(random.Random(a.seed), a.host, a.stage, a.names_prefix)
    while len(m.lines) < a.count:
        m.step()
    with open(a.script, "w") as f:
        f.write("\n".join(m.lines) + "\n")


if __name__ == "__main__":
    main()
