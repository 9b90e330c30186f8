#include "restore.h"

#include "file.h"
#include "fs.h"
#include "tree.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <regex.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace btk {

using namespace format;

namespace {

bool unsafe_name(std::string_view n) {
    return n.empty() || n == "." || n == ".." || n.find('/') != std::string_view::npos ||
           n.find('\0') != std::string_view::npos;
}

// btrfs stores the kernel's dev_t: major in bits 20 and up, minor below.
dev_t kernel_rdev_to_dev(uint64_t rdev) {
    return makedev(unsigned(rdev >> 20), unsigned(rdev & 0xfffff));
}

class Restorer {
public:
    Restorer(FileSystemView& view, const RestoreOptions& o, std::FILE* out, std::FILE* err, const regex_t* re)
        : v_(view), o_(o), out_(out), err_(err), re_(re) {}

    void restore_tree(uint64_t subvol, uint64_t dir_ino, int dirfd, const std::string& path, int depth);
    void apply_dir_metadata(int fd, const Inode& in);
    RestoreStats stats;

private:
    void error(const std::string& path, const std::string& what) {
        ++stats.errors;
        fmt::print(err_, "restore: {}: {}\n", path.empty() ? "/" : path, what);
    }
    // Blocks the view skipped while salvaging count as errors of `path`.
    void collect_damage(const std::string& path) {
        for (const auto& d : v_.take_damage()) error(path, "skipped unreadable metadata: " + d);
    }
    bool selected(const std::string& path) const {
        return !re_ || regexec(re_, path.empty() ? "/" : path.c_str(), 0, nullptr, 0) == 0;
    }
    void restore_entry(uint64_t subvol, uint64_t dir_ino, const DirEntry& e, int dirfd, const std::string& path,
                       int depth);
    void make_placeholder_dir(int dirfd, const DirEntry& e, const std::string& path);
    bool restore_file(const Inode& in, int fd, const std::string& path);
    void apply_metadata(int dirfd, const std::string& name, const Inode& in, int fd, const std::string& path);
    void apply_xattrs(int dirfd, const std::string& name, const Inode& in, int fd, const std::string& path);

    FileSystemView& v_;
    const RestoreOptions& o_;
    std::FILE* out_;
    std::FILE* err_;
    const regex_t* re_;  // --path-regex, or nullptr
    std::map<std::pair<uint64_t, uint64_t>, std::string> links_;  // (subvol, ino) -> first path
};

void Restorer::apply_xattrs(int dirfd, const std::string& name, const Inode& in, int fd, const std::string& path) {
    if (!o_.xattr || o_.dry_run) return;
    auto xs = v_.xattrs(in.subvol, in.ino);
    collect_damage(path);
    if (!xs) {
        error(path, "reading xattrs: " + xs.error().message);
        return;
    }
    for (const auto& [k, val] : *xs) {
        int rc;
        if (fd >= 0) {
            rc = fsetxattr(fd, k.c_str(), val.data(), val.size(), 0);
        } else {
            const std::string p = fmt::format("/proc/self/fd/{}/{}", dirfd, name);
            rc = lsetxattr(p.c_str(), k.c_str(), val.data(), val.size(), 0);
        }
        if (rc != 0) error(path, fmt::format("setting xattr {}: {}", k, std::strerror(errno)));
    }
}

void Restorer::apply_metadata(int dirfd, const std::string& name, const Inode& in, int fd, const std::string& path) {
    if (o_.dry_run) return;
    const auto& it = in.item;
    const bool is_link = in.is_symlink();
    if (o_.metadata) {
        if (fchownat(dirfd, name.c_str(), it.uid, it.gid, AT_SYMLINK_NOFOLLOW) != 0)
            error(path, fmt::format("chown: {}", std::strerror(errno)));
    }
    apply_xattrs(dirfd, name, in, fd, path);
    if (o_.metadata) {
        if (!is_link && fchmodat(dirfd, name.c_str(), it.mode & 07777, 0) != 0)
            error(path, fmt::format("chmod: {}", std::strerror(errno)));
        ::timespec ts[2];
        ts[0].tv_sec = time_t(it.atime.sec.get());
        ts[0].tv_nsec = long(it.atime.nsec.get() % 1000000000u);
        ts[1].tv_sec = time_t(it.mtime.sec.get());
        ts[1].tv_nsec = long(it.mtime.nsec.get() % 1000000000u);
        if (utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
            error(path, fmt::format("utimensat: {}", std::strerror(errno)));
    }
}

void Restorer::apply_dir_metadata(int fd, const Inode& in) {
    // For the target directory itself: operate through its own descriptor.
    if (o_.dry_run) return;
    const auto& it = in.item;
    if (o_.metadata && fchown(fd, it.uid, it.gid) != 0) error("/", fmt::format("chown: {}", std::strerror(errno)));
    apply_xattrs(-1, "", in, fd, "/");
    if (o_.metadata) {
        if (fchmod(fd, it.mode & 07777) != 0) error("/", fmt::format("chmod: {}", std::strerror(errno)));
        ::timespec ts[2];
        ts[0] = {time_t(it.atime.sec.get()), long(it.atime.nsec.get() % 1000000000u)};
        ts[1] = {time_t(it.mtime.sec.get()), long(it.mtime.nsec.get() % 1000000000u)};
        if (futimens(fd, ts) != 0) error("/", fmt::format("futimens: {}", std::strerror(errno)));
    }
}

bool Restorer::restore_file(const Inode& in, int fd, const std::string& path) {
    const uint64_t size = in.size();
    std::vector<uint8_t> buf;
    bool ok = true;
    std::string problem;
    auto s = v_.for_each_extent(in.subvol, in.ino, [&](const FileExtent& e) {
        if (e.file_offset >= size) return false;
        if (e.type != FILE_EXTENT_INLINE && (e.type == FILE_EXTENT_PREALLOC || e.disk_bytenr == 0))
            return true;  // hole or preallocated: stays sparse
        const uint64_t end = std::min(size, e.file_offset + e.num_bytes);
        for (uint64_t pos = e.file_offset; pos < end;) {
            const uint64_t n = std::min<uint64_t>(end - pos, 1u << 20);
            buf.resize(n);
            if (auto r = v_.read_extent_range(e, pos, buf); !r) {
                ok = false;
                problem = r.error().message;
                return false;
            }
            if (!o_.dry_run) {
                size_t done = 0;
                while (done < n) {
                    ssize_t w = pwrite(fd, buf.data() + done, n - done, off_t(pos + done));
                    if (w < 0) {
                        if (errno == EINTR) continue;
                        ok = false;
                        problem = fmt::format("write: {}", std::strerror(errno));
                        return false;
                    }
                    done += size_t(w);
                }
            }
            stats.bytes += n;
            pos += n;
        }
        return true;
    });
    collect_damage(path);
    if (!s) {
        ok = false;
        problem = s.error().message;
    }
    if (!o_.dry_run && ftruncate(fd, off_t(size)) != 0) {
        ok = false;
        problem = fmt::format("truncate: {}", std::strerror(errno));
    }
    if (!ok) error(path, problem);
    return ok;
}

void Restorer::make_placeholder_dir(int dirfd, const DirEntry& e, const std::string& path) {
    ++stats.dirs;
    if (o_.dry_run) return;
    if (mkdirat(dirfd, e.name.c_str(), 0755) != 0 && errno != EEXIST)
        error(path, fmt::format("mkdir: {}", std::strerror(errno)));
    else if (o_.metadata && fchmodat(dirfd, e.name.c_str(), 0755, 0) != 0)
        error(path, fmt::format("chmod: {}", std::strerror(errno)));
}

void Restorer::restore_entry(uint64_t subvol, uint64_t dir_ino, const DirEntry& e, int dirfd,
                             const std::string& parent, int depth) {
    if (unsafe_name(e.name)) {
        ++stats.unsafe_names;
        fmt::print(err_, "restore: {}: skipping unsafe name '{}'\n", parent.empty() ? "/" : parent, e.name);
        return;
    }
    const std::string path = parent + "/" + e.name;
    uint64_t sv = subvol, ino = e.location.objectid;
    if (e.is_subvol()) {
        if (!o_.snapshots) {
            ++stats.skipped;
            if (o_.verbose) fmt::print(out_, "Skipping subvolume {}\n", path);
            return;
        }
        if (!v_.subvol_entry_live(subvol, dir_ino, e)) {
            make_placeholder_dir(dirfd, e, path);
            return;
        }
        sv = e.location.objectid;
        auto rd = v_.subvol_root_dir(sv);
        if (!rd) {
            error(path, "subvolume " + std::to_string(sv) + ": " + rd.error().message);
            return;
        }
        ino = *rd;
        ++stats.subvols;
    } else if (e.location.type != INODE_ITEM_KEY) {
        error(path, fmt::format("directory entry points to key type {}", e.location.type));
        return;
    }
    auto in = v_.inode(sv, ino);
    if (!in) {
        error(path, in.error().message);
        return;
    }
    const uint32_t mode = in->mode();
    if (S_ISDIR(mode)) {
        if (depth > 4096) {
            error(path, "directory nesting too deep");
            return;
        }
        int fd = -1;
        if (!o_.dry_run) {
            if (mkdirat(dirfd, e.name.c_str(), 0700) != 0 && errno != EEXIST) {
                error(path, fmt::format("mkdir: {}", std::strerror(errno)));
                return;
            }
            fd = openat(dirfd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                error(path, fmt::format("open directory: {}", std::strerror(errno)));
                return;
            }
        }
        ++stats.dirs;
        if (o_.verbose) fmt::print(out_, "Restoring {}\n", path);
        restore_tree(sv, ino, fd, path, depth + 1);
        if (!o_.dry_run) {
            apply_metadata(dirfd, e.name, *in, fd, path);
            close(fd);
        }
        return;
    }
    if (!selected(path)) return;
    if (o_.verbose || o_.dry_run) fmt::print(out_, "Restoring {}\n", path);
    if (S_ISREG(mode) && in->nlink() > 1) {
        auto key = std::make_pair(sv, ino);
        if (auto it = links_.find(key); it != links_.end()) {
            if (!o_.dry_run) {
                const std::string src = o_.target + it->second;
                if (linkat(AT_FDCWD, src.c_str(), dirfd, e.name.c_str(), 0) != 0) {
                    error(path, fmt::format("link to {}: {}", it->second, std::strerror(errno)));
                    return;
                }
            }
            ++stats.hardlinks;
            return;
        }
        links_[key] = path;
    }
    if (S_ISREG(mode)) {
        int fd = -1;
        if (!o_.dry_run) {
            int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (o_.overwrite ? O_TRUNC : O_EXCL);
            fd = openat(dirfd, e.name.c_str(), flags, 0600);
            if (fd < 0) {
                if (errno == EEXIST) {
                    ++stats.skipped;
                    fmt::print(err_, "restore: {}: exists, skipped (use --overwrite)\n", path);
                    return;
                }
                error(path, fmt::format("create: {}", std::strerror(errno)));
                return;
            }
        }
        ++stats.files;
        restore_file(*in, fd, path);
        if (!o_.dry_run) {
            apply_metadata(dirfd, e.name, *in, fd, path);
            close(fd);
        }
        return;
    }
    if (S_ISLNK(mode)) {
        if (!o_.symlinks) {
            ++stats.skipped;
            return;
        }
        auto target = v_.read_symlink(sv, ino);
        if (!target) {
            error(path, target.error().message);
            return;
        }
        if (!o_.dry_run && symlinkat(target->c_str(), dirfd, e.name.c_str()) != 0) {
            error(path, fmt::format("symlink: {}", std::strerror(errno)));
            return;
        }
        ++stats.symlinks;
        apply_metadata(dirfd, e.name, *in, -1, path);
        return;
    }
    if (S_ISCHR(mode) || S_ISBLK(mode) || S_ISFIFO(mode) || S_ISSOCK(mode)) {
        if (!o_.dry_run) {
            const dev_t dev = (S_ISCHR(mode) || S_ISBLK(mode)) ? kernel_rdev_to_dev(in->item.rdev) : 0;
            if (mknodat(dirfd, e.name.c_str(), (mode & S_IFMT) | 0600, dev) != 0) {
                error(path, fmt::format("mknod: {}", std::strerror(errno)));
                return;
            }
        }
        ++stats.special;
        apply_metadata(dirfd, e.name, *in, -1, path);
        return;
    }
    error(path, fmt::format("unknown file type in mode {:o}", mode));
}

void Restorer::restore_tree(uint64_t subvol, uint64_t dir_ino, int dirfd, const std::string& path, int depth) {
    auto ents = v_.list_dir(subvol, dir_ino);
    collect_damage(path);
    if (!ents) {
        error(path, ents.error().message);
        return;
    }
    for (const auto& e : *ents) restore_entry(subvol, dir_ino, e, dirfd, path, depth);
}

}  // namespace

int restore(const RestoreOptions& o, std::FILE* out, std::FILE* err, RestoreStats* stats_out) {
    regex_t re;
    if (o.path_regex) {
        if (int rc = regcomp(&re, o.path_regex->c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
            char msg[256];
            regerror(rc, &re, msg, sizeof(msg));
            fmt::print(err, "restore: invalid --path-regex '{}': {}\n", *o.path_regex, msg);
            return 2;
        }
    }
    // From here on every return path frees `re`.
    struct RegexGuard {
        regex_t* r;
        ~RegexGuard() { if (r) regfree(r); }
    } guard{o.path_regex ? &re : nullptr};
    OpenOptions oo;
    oo.super_mirror = o.super_mirror;
    oo.tolerate_chunk_errors = true;
    auto fs = Filesystem::open(o.devices, oo);
    if (!fs) {
        fmt::print(err, "restore: {}\n", fs.error().message);
        return 2;
    }
    for (const auto& w : (*fs)->open_warnings()) fmt::print(err, "restore: warning: {}\n", w);
    FileSystemView view(**fs);
    view.set_salvage(true);
    uint64_t subvol;
    if (o.subvol) {
        auto r = view.resolve_subvol_arg(*o.subvol);
        if (!r) {
            fmt::print(err, "restore: subvolume '{}': {}\n", *o.subvol, r.error().message);
            return 2;
        }
        subvol = *r;
    } else {
        auto r = view.default_subvol();
        if (!r) {
            fmt::print(err, "restore: finding the default subvolume: {}\n", r.error().message);
            return 2;
        }
        subvol = *r;
    }
    auto rootdir = view.subvol_root_dir(subvol);
    if (!rootdir) {
        fmt::print(err, "restore: subvolume {}: {}\n", subvol, rootdir.error().message);
        return 2;
    }
    int fd = -1;
    if (!o.dry_run) {
        if (mkdir(o.target.c_str(), 0755) != 0 && errno != EEXIST) {
            fmt::print(err, "restore: cannot create {}: {}\n", o.target, std::strerror(errno));
            return 2;
        }
        fd = open(o.target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            fmt::print(err, "restore: cannot open {}: {}\n", o.target, std::strerror(errno));
            return 2;
        }
    }
    RestoreOptions opts = o;
    while (opts.target.size() > 1 && opts.target.back() == '/') opts.target.pop_back();
    Restorer r(view, opts, out, err, o.path_regex ? &re : nullptr);
    r.restore_tree(subvol, *rootdir, fd, "", 0);
    if (fd >= 0) {
        auto in = view.inode(subvol, *rootdir);
        if (in) r.apply_dir_metadata(fd, *in);
        close(fd);
    }
    const auto& s = r.stats;
    fmt::print(out,
               "{}: {} files, {} directories, {} symlinks, {} special files, {} hard links, "
               "{} subvolumes, {} bytes; {} errors, {} unsafe names, {} skipped\n",
               o.dry_run ? "would restore" : "restored", s.files, s.dirs, s.symlinks, s.special,
               s.hardlinks, s.subvols, s.bytes, s.errors, s.unsafe_names, s.skipped);
    if (stats_out) *stats_out = s;
    return (s.errors || s.unsafe_names) ? 1 : 0;
}

}  // namespace btk
