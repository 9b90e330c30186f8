#include "file_ops.h"

#include "mount_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

namespace btk {

namespace {

Error usage(const FileOp& op, std::string_view what) {
    return Error{Errc::invalid_argument, fmt::format("{}: {}", op.name, what)};
}

bool parse_u64(const std::string& s, uint64_t& out, int base = 10) {
    if (s.empty()) return false;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, base);
    if (errno || *end || s[0] == '-') return false;
    out = v;
    return true;
}

// Splits leading -x flags from the arguments.
std::pair<std::string, std::vector<std::string>> flags_of(const std::vector<std::string>& a) {
    std::string f;
    size_t i = 0;
    for (; i < a.size() && a[i].size() > 1 && a[i][0] == '-' && a[i] != "--"; ++i) f += a[i].substr(1);
    if (i < a.size() && a[i] == "--") ++i;
    return {f, std::vector<std::string>(a.begin() + ptrdiff_t(i), a.end())};
}

struct OpSpec {
    const char* name;
    size_t min_args, max_args;  // after flags
    const char* flags;          // allowed flag letters
    const char* usage;
};
const OpSpec SPECS[] = {
    {"put", 2, 1u << 20, "r", "put [-r] HOSTPATH... DEST"},
    {"mkdir", 1, 1, "p", "mkdir [-p] PATH"},
    {"rm", 1, 1, "rf", "rm [-r] PATH"},
    {"mv", 2, 2, "", "mv FROM TO"},
    {"ln", 2, 2, "", "ln EXISTING NEWPATH"},
    {"symlink", 2, 2, "", "symlink TARGET NEWPATH"},
    {"mknod", 4, 4, "", "mknod PATH c|b MAJOR MINOR"},
    {"mkfifo", 1, 1, "", "mkfifo PATH"},
    {"setxattr", 3, 3, "", "setxattr PATH NAME VALUE"},
    {"rmxattr", 2, 2, "", "rmxattr PATH NAME"},
    {"truncate", 2, 2, "", "truncate SIZE PATH"},
    {"fallocate", 3, 3, "", "fallocate OFFSET LENGTH PATH"},
    {"chmod", 2, 2, "", "chmod OCTALMODE PATH"},
    {"chown", 2, 2, "", "chown UID:GID PATH"},
    {"touch", 1, 1, "", "touch PATH"},
    {"chattr", 2, 2, "", "chattr +C|-C|+c|-c PATH"},
};

const OpSpec* spec_of(const std::string& n) {
    for (const auto& s : SPECS)
        if (n == s.name) return &s;
    return nullptr;
}

// Copies a host file, directory tree, symlink or special file to `dest`.
class HostCopier {
public:
    explicit HostCopier(FsWriter& w) : w_(w) {}

    Status copy(const std::string& host, const std::string& dest) {
        struct stat st;
        if (lstat(host.c_str(), &st) != 0)
            return make_error(Errc::not_found, "cannot stat '{}': {}", host, std::strerror(errno));
        if (st.st_nlink > 1 && !S_ISDIR(st.st_mode)) {
            auto key = std::pair{st.st_dev, st.st_ino};
            if (auto it = links_.find(key); it != links_.end()) return w_.link(it->second, dest);
            links_[key] = dest;
        }
        InodeAttrs a;
        a.mode = st.st_mode;
        a.uid = st.st_uid;
        a.gid = st.st_gid;
        if (S_ISREG(st.st_mode)) {
            BTK_TRY(copy_file(host, st, dest));
        } else if (S_ISDIR(st.st_mode)) {
            BTK_TRY(w_.mkdir(dest, st.st_mode & 07777));
            DIR* d = opendir(host.c_str());
            if (!d) return make_error(Errc::io, "cannot open directory '{}': {}", host, std::strerror(errno));
            std::vector<std::string> names;
            while (dirent* e = readdir(d)) {
                std::string n = e->d_name;
                if (n != "." && n != "..") names.push_back(n);
            }
            closedir(d);
            std::sort(names.begin(), names.end());
            for (const auto& n : names) BTK_TRY(copy(host + "/" + n, dest + (dest == "/" ? "" : "/") + n));
        } else if (S_ISLNK(st.st_mode)) {
            std::string target(size_t(st.st_size) + 1, '\0');
            ssize_t n = readlink(host.c_str(), target.data(), target.size());
            if (n < 0) return make_error(Errc::io, "cannot read link '{}': {}", host, std::strerror(errno));
            target.resize(size_t(n));
            BTK_TRY(w_.symlink(target, dest));
        } else {
            BTK_TRY(w_.mknod(dest, st.st_mode, uint64_t(st.st_rdev)));
        }
        BTK_TRY(copy_xattrs(host, dest));
        BTK_TRY(w_.chown(dest, st.st_uid, st.st_gid));
        if (!S_ISLNK(st.st_mode)) BTK_TRY(w_.chmod(dest, st.st_mode & 07777));
        return {};
    }

private:
    Status copy_file(const std::string& host, const struct stat& st, const std::string& dest) {
        int fd = ::open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return make_error(Errc::io, "cannot open '{}': {}", host, std::strerror(errno));
        const size_t size = size_t(st.st_size);
        const uint8_t* p = nullptr;
        void* m = MAP_FAILED;
        if (size) {
            m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                ::close(fd);
                return make_error(Errc::io, "cannot read '{}': {}", host, std::strerror(errno));
            }
            p = static_cast<const uint8_t*>(m);
        }
        InodeAttrs a;
        a.mode = st.st_mode;
        a.uid = st.st_uid;
        a.gid = st.st_gid;
        auto ref = std::make_shared<HostFileRef>();
        ref->path = host;
        ref->dev = uint64_t(st.st_dev);
        ref->ino = uint64_t(st.st_ino);
        ref->size = uint64_t(st.st_size);
        ref->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        ref->ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
        // Data segments of a sparse file (SEEK_DATA/SEEK_HOLE).
        std::vector<std::pair<uint64_t, uint64_t>> segs;
        for (off_t pos = 0; size && pos < off_t(size);) {
            off_t d = lseek(fd, pos, SEEK_DATA);
            if (d < 0) break;
            off_t h = lseek(fd, d, SEEK_HOLE);
            if (h < 0) h = off_t(size);
            segs.push_back({uint64_t(d), uint64_t(h)});
            pos = h;
        }
        const bool sparse = size && !(segs.size() == 1 && segs[0].first == 0 && segs[0].second >= size);
        Status s = w_.write_file(dest, {p, size}, a, std::move(ref), sparse ? &segs : nullptr);
        if (m != MAP_FAILED) munmap(m, size);
        ::close(fd);
        return s;
    }

    Status copy_xattrs(const std::string& host, const std::string& dest) {
        ssize_t n = llistxattr(host.c_str(), nullptr, 0);
        if (n <= 0) return {};
        std::string names(size_t(n), '\0');
        n = llistxattr(host.c_str(), names.data(), names.size());
        if (n <= 0) return {};
        for (size_t i = 0; i < size_t(n);) {
            std::string name(names.c_str() + i);
            i += name.size() + 1;
            ssize_t vl = lgetxattr(host.c_str(), name.c_str(), nullptr, 0);
            if (vl < 0) continue;
            std::vector<uint8_t> v(static_cast<size_t>(vl), 0);
            vl = lgetxattr(host.c_str(), name.c_str(), v.data(), v.size());
            if (vl < 0) continue;
            v.resize(size_t(vl));
            BTK_TRY(w_.setxattr(dest, name, v));
        }
        return {};
    }

    FsWriter& w_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

std::string basename_of(const std::string& p) {
    std::string s = p;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    auto i = s.rfind('/');
    return i == std::string::npos ? s : s.substr(i + 1);
}

}  // namespace

Status apply_op_inner(FsWriter& w, const FileOp& op);

bool is_write_op(const std::string& name) { return spec_of(name) != nullptr; }

Result<std::vector<std::string>> split_op_line(const std::string& line) {
    std::vector<std::string> out;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quote) {
            if (c == quote) {
                quote = 0;
            } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
                cur += line[++i];
            } else {
                cur += c;
            }
            continue;
        }
        if (c == '#' && !in_word) break;
        if (c == ' ' || c == '\t' || c == '\r') {
            if (in_word) out.push_back(std::exchange(cur, {}));
            in_word = false;
        } else if (c == '"' || c == '\'') {
            quote = c;
            in_word = true;
        } else if (c == '\\' && i + 1 < line.size()) {
            cur += line[++i];
            in_word = true;
        } else {
            cur += c;
            in_word = true;
        }
    }
    if (quote) return make_error(Errc::invalid_argument, "unterminated quote");
    if (in_word) out.push_back(cur);
    return out;
}

Status validate_op(const FileOp& op) {
    const OpSpec* s = spec_of(op.name);
    if (!s) return make_error(Errc::invalid_argument, "unknown operation '{}'", op.name);
    auto [flags, rest] = flags_of(op.args);
    for (char f : flags)
        if (!std::strchr(s->flags, f)) return usage(op, fmt::format("invalid option -- '{}' (usage: {})", f, s->usage));
    if (rest.size() < s->min_args || rest.size() > s->max_args)
        return usage(op, fmt::format("wrong number of arguments (usage: {})", s->usage));
    uint64_t v;
    if (op.name == "mknod") {
        if (rest[1] != "c" && rest[1] != "b") return usage(op, "type must be c or b");
        if (!parse_u64(rest[2], v) || !parse_u64(rest[3], v)) return usage(op, "MAJOR and MINOR must be numbers");
    }
    if (op.name == "chmod" && (!parse_u64(rest[0], v, 8) || v > 07777)) return usage(op, fmt::format("invalid mode '{}'", rest[0]));
    if (op.name == "truncate" && !parse_u64(rest[0], v)) return usage(op, fmt::format("invalid size '{}'", rest[0]));
    if (op.name == "fallocate" && (!parse_u64(rest[0], v) || !parse_u64(rest[1], v)))
        return usage(op, "OFFSET and LENGTH must be numbers");
    if (op.name == "chown") {
        auto c = rest[0].find(':');
        uint64_t g;
        if (c == std::string::npos || !parse_u64(rest[0].substr(0, c), v) || !parse_u64(rest[0].substr(c + 1), g) ||
            v > 0xffffffffu || g > 0xffffffffu)
            return usage(op, fmt::format("invalid owner '{}' (want UID:GID)", rest[0]));
    }
    return {};
}

Status apply_op(FsWriter& w, const FileOp& op) {
    Status s = apply_op_inner(w, op);
    if (!s && s.error().code != Errc::corruption && s.error().code != Errc::io) {
        Error e = std::move(s).error();
        if (!e.message.starts_with(op.name + ":")) e.context(op.name);
        return e;
    }
    return s;
}

Status apply_op_inner(FsWriter& w, const FileOp& op) {
    BTK_TRY(validate_op(op));
    auto [flags, a] = flags_of(op.args);
    auto has = [&](char f) { return flags.find(f) != std::string::npos; };
    const std::string& n = op.name;
    if (n == "put") {
        const std::string dest = a.back();
        BTK_ASSIGN(bool dest_is_dir, w.is_dir(dest));
        if (a.size() > 2 && !dest_is_dir)
            return make_error(Errc::invalid_argument, "target '{}' is not a directory", dest);
        HostCopier c(w);
        for (size_t i = 0; i + 1 < a.size(); ++i) {
            struct stat st;
            if (lstat(a[i].c_str(), &st) != 0)
                return make_error(Errc::not_found, "cannot stat '{}': No such file or directory", a[i]);
            if (S_ISDIR(st.st_mode) && !has('r'))
                return make_error(Errc::invalid_argument, "-r not specified; omitting directory '{}'", a[i]);
            std::string target = dest;
            if (a.size() > 2 || dest_is_dir) target = (dest == "/" ? "" : dest) + "/" + basename_of(a[i]);
            BTK_TRY(c.copy(a[i], target));
        }
        return {};
    }
    uint64_t x = 0, y = 0;
    if (n == "mkdir") return w.mkdir(a[0], 0755, has('p'));
    if (n == "rm") return w.remove(a[0], has('r'));
    if (n == "mv") return w.rename(a[0], a[1]);
    if (n == "ln") return w.link(a[0], a[1]);
    if (n == "symlink") return w.symlink(a[0], a[1]);
    if (n == "mknod") {
        parse_u64(a[2], x);
        parse_u64(a[3], y);
        return w.mknod(a[0], (a[1] == "c" ? S_IFCHR : S_IFBLK) | 0644, uint64_t(makedev(unsigned(x), unsigned(y))));
    }
    if (n == "mkfifo") return w.mknod(a[0], S_IFIFO | 0644, 0);
    if (n == "setxattr")
        return w.setxattr(a[0], a[1], {reinterpret_cast<const uint8_t*>(a[2].data()), a[2].size()});
    if (n == "rmxattr") return w.rmxattr(a[0], a[1]);
    if (n == "truncate") {
        parse_u64(a[0], x);
        return w.truncate(a[1], x);
    }
    if (n == "fallocate") {
        parse_u64(a[0], x);
        parse_u64(a[1], y);
        return w.fallocate(a[2], x, y);
    }
    if (n == "chmod") {
        parse_u64(a[0], x, 8);
        return w.chmod(a[1], uint32_t(x));
    }
    if (n == "chown") {
        auto c = a[0].find(':');
        parse_u64(a[0].substr(0, c), x);
        parse_u64(a[0].substr(c + 1), y);
        return w.chown(a[1], uint32_t(x), uint32_t(y));
    }
    if (n == "touch") return w.touch(a[0]);
    if (n == "chattr") return w.chattr(a[1], a[0]);
    return make_error(Errc::invalid_argument, "unknown operation '{}'", n);
}

int file_write(const FileWriteOptions& o, FILE* err) {
    auto fail = [&](const Error& e) {
        fmt::print(err, "btk file: {}\n", e.message);
        return 1;
    };
    for (const auto& op : o.ops)
        if (Status s = validate_op(op); !s) return fail(s.error());
    std::vector<std::string> devs{o.image};
    devs.insert(devs.end(), o.extra_devices.begin(), o.extra_devices.end());
    for (const auto& d : devs)
        if (Status s = check_not_in_use(d); !s) return fail(s.error());
    OpenOptions oo;
    oo.writable = true;
    auto fs = Filesystem::open(devs, oo);
    if (!fs) return fail(fs.error());
    size_t i = 0;
    while (i < o.ops.size() || (o.ops.empty() && i == 0)) {
        TxnOptions to;
        to.zero_log = o.zero_log;
        auto t = Transaction::begin(**fs, to);
        if (!t) return fail(t.error());
        FsWriter w(**t);
        const size_t end = o.commit_every ? std::min(o.ops.size(), i + o.commit_every) : o.ops.size();
        for (; i < end; ++i)
            if (Status s = apply_op(w, o.ops[i]); !s) {
                (*t)->abort();
                Error e = s.error();
                if (!o.ops[i].text.empty()) e.context(o.ops[i].text);
                return fail(e);
            }
        if (Status s = (*t)->commit(); !s) return fail(s.error());
        if (std::getenv("BTK_TXN_STATS")) {
            const TxnStats& st = (*t)->stats();
            fmt::print(err, "btk file: txn cowed {} max_cow_per_block {} allocated {} freed {} written {} in {} writes, {} passes\n",
                       st.cowed, st.max_cow_per_block, st.allocated_blocks, st.freed_blocks, st.blocks_written,
                       st.write_calls, st.commit_passes);
        }
        if (o.ops.empty()) break;
    }
    return 0;
}

}  // namespace btk
