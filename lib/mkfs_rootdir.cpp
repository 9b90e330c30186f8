// mkfs --rootdir, step one: option parsing and the scan of the directory.
#include "mkfs_rootdir.h"

#include "csum.h"
#include "mkfs_rootdir_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace btk {

using namespace format;
using rootdir::bad;

namespace {

// "./a//b/" -> "a/b"; ".." components are refused (the path must stay inside).
Result<std::string> normalize_rel(const std::string& in, const char* what) {
    std::string out;
    size_t i = 0;
    while (i <= in.size()) {
        size_t j = in.find('/', i);
        if (j == std::string::npos) j = in.size();
        std::string comp = in.substr(i, j - i);
        i = j + 1;
        if (comp.empty() || comp == ".") continue;
        if (comp == "..") return bad(fmt::format("{} path '{}' leaves the root directory", what, in));
        if (!out.empty()) out += '/';
        out += comp;
    }
    return out;
}

bool parse_u32(std::string_view s, uint32_t& out) {
    if (s.empty() || s.size() > 10) return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + uint64_t(c - '0');
    }
    if (v > 0xffffffffULL) return false;
    out = uint32_t(v);
    return true;
}

}  // namespace

Result<RootdirSubvolSpec> parse_rootdir_subvol(const std::string& arg) {
    RootdirSubvolSpec s;
    std::string path = arg;
    if (auto c = arg.find(':'); c != std::string::npos) {
        const std::string type = arg.substr(0, c);
        path = arg.substr(c + 1);
        if (type == "rw") {
        } else if (type == "ro") {
            s.readonly = true;
        } else if (type == "default") {
            s.is_default = true;
        } else if (type == "default-ro") {
            s.is_default = s.readonly = true;
        } else {
            return bad(fmt::format("--subvol '{}': unknown type '{}' (rw, ro, default, default-ro)", arg, type));
        }
    }
    BTK_ASSIGN(s.path, normalize_rel(path, "--subvol"));
    if (s.path.empty()) return bad(fmt::format("--subvol '{}': the root directory cannot be a subvolume", arg));
    return s;
}

Result<RootdirInodeFlagSpec> parse_rootdir_inode_flags(const std::string& arg) {
    RootdirInodeFlagSpec s;
    const auto c = arg.find(':');
    if (c == std::string::npos) return bad(fmt::format("--inode-flags '{}': expected FLAGS:PATH", arg));
    std::string flags = arg.substr(0, c);
    size_t i = 0;
    while (i <= flags.size()) {
        size_t j = flags.find(',', i);
        if (j == std::string::npos) j = flags.size();
        const std::string f = flags.substr(i, j - i);
        i = j + 1;
        if (f == "nodatacow") s.nodatacow = true;
        else if (f == "nodatasum") s.nodatasum = true;
        else return bad(fmt::format("--inode-flags '{}': unknown flag '{}' (nodatacow, nodatasum)", arg, f));
    }
    BTK_ASSIGN(s.path, normalize_rel(arg.substr(c + 1), "--inode-flags"));
    return s;
}

Status parse_rootdir_compress(const std::string& arg, uint8_t& type, int& level) {
    std::string name = arg, lv;
    if (auto c = arg.find(':'); c != std::string::npos) {
        name = arg.substr(0, c);
        lv = arg.substr(c + 1);
    }
    level = 0;
    if (name == "no" || name == "none") {
        type = COMPRESS_NONE;
        if (!lv.empty()) return bad(fmt::format("--compress '{}': no level without compression", arg));
        return {};
    }
    int max_level = 0;
    if (name == "zlib") {
        type = COMPRESS_ZLIB;
        max_level = 9;
    } else if (name == "lzo") {
        type = COMPRESS_LZO;
    } else if (name == "zstd") {
        type = COMPRESS_ZSTD;
        max_level = 15;
    } else {
        return bad(fmt::format("--compress '{}': unknown algorithm (zlib, lzo, zstd)", arg));
    }
    if (!lv.empty()) {
        uint32_t v = 0;
        if (!parse_u32(lv, v) || v < 1 || int(v) > max_level)
            return bad(max_level ? fmt::format("--compress '{}': level must be 1..{}", arg, max_level)
                                 : fmt::format("--compress '{}': lzo has no levels", arg));
        level = int(v);
    }
    return {};
}

Result<std::pair<uint32_t, uint32_t>> parse_rootdir_owner(const std::string& arg) {
    const auto c = arg.find(':');
    uint32_t u = 0, g = 0;
    if (c == std::string::npos || !parse_u32(std::string_view(arg).substr(0, c), u) ||
        !parse_u32(std::string_view(arg).substr(c + 1), g))
        return bad(fmt::format("--root-owner '{}': expected UID:GID (numbers)", arg));
    return std::pair{u, g};
}

// ---------------------------------------------------------------------------

std::string RootdirModel::path(uint32_t inode) const {
    std::vector<std::string_view> parts;
    for (uint32_t i = inode;;) {
        const Inode& in = inodes[i];
        uint32_t n = in.first_name;
        if (n == ~0u) {
            const Subvol& sv = subvols[in.subvol];
            if (sv.entry == ~0u) break;  // the top of everything
            n = sv.entry;
        }
        parts.push_back(name(names[n]));
        i = names[n].parent;
    }
    std::string p;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (!p.empty()) p += '/';
        p += *it;
    }
    return p;
}

std::vector<std::pair<std::string_view, std::string_view>> RootdirModel::xattrs(const Inode& in) const {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    const char* p = strings.data() + in.xattr_off;
    const char* end = p + in.xattr_len;
    while (p + 6 <= end) {
        const uint16_t nl = load_le16(p);
        const uint32_t vl = load_le32(p + 2);
        p += 6;
        out.push_back({{p, nl}, {p + nl, vl}});
        p += nl + vl;
    }
    return out;
}

int RootdirModel::default_subvol() const {
    for (size_t i = 0; i < subvols.size(); ++i)
        if (subvols[i].is_default) return int(i);
    return -1;
}

namespace {

// What the scan needs of one directory entry besides its name and stat.
struct EntryExtras {
    std::string xattrs;         // encoded as RootdirModel::xattrs() reads them
    std::string target;         // symlink target
    uint64_t data_bound = 0;    // regular files: sector-rounded data bytes
    uint64_t segments = 1;      // data ranges
    uint32_t scan_flags = 0;    // F_SPARSE, F_NODATA
};

// One directory read: entries in name order with their stat and extras.
struct Listing {
    std::vector<std::string> names;
    std::vector<struct stat> stats;
    std::vector<EntryExtras> extras;
};

// Reads the xattrs of `path` (not following symlinks).
Status read_xattrs(const RootdirOptions& o, const std::string& path, const std::string& rel, std::string& out) {
    const size_t max_item = max_item_data_size(o.nodesize);
    std::vector<char> list(256), val(256);
    ssize_t n;
    for (;;) {
        n = llistxattr(path.c_str(), list.data(), list.size());
        if (n >= 0) break;
        if (errno == ENOTSUP) return {};
        if (errno != ERANGE) return make_error(Errc::io, "cannot list xattrs of {}: {}", path, std::strerror(errno));
        n = llistxattr(path.c_str(), nullptr, 0);
        if (n < 0) return make_error(Errc::io, "cannot list xattrs of {}: {}", path, std::strerror(errno));
        list.resize(size_t(n) + 1);
    }
    for (ssize_t p = 0; p < n;) {
        const std::string name(list.data() + p);
        p += ssize_t(name.size()) + 1;
        if (name.empty()) continue;
        ssize_t v;
        for (;;) {
            v = lgetxattr(path.c_str(), name.c_str(), val.data(), val.size());
            if (v >= 0) break;
            if (errno == ENODATA) break;  // removed meanwhile
            if (errno != ERANGE)
                return make_error(Errc::io, "cannot read xattr {} of {}: {}", name, path, std::strerror(errno));
            v = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
            if (v < 0) return make_error(Errc::io, "cannot read xattr {} of {}: {}", name, path, std::strerror(errno));
            val.resize(size_t(v) + 1);
        }
        if (v < 0) continue;
        if (name.size() > NAME_LEN || sizeof(dir_item) + name.size() + size_t(v) > max_item)
            return bad(fmt::format("xattr {} of '{}' ({} bytes) is too large for nodesize {}", name,
                                   rel.empty() ? "." : rel, v, o.nodesize));
        char hdr[6];
        hdr[0] = char(name.size() & 0xff);
        hdr[1] = char(name.size() >> 8);
        store_le32(hdr + 2, uint32_t(v));
        out.append(hdr, 6);
        out.append(name);
        out.append(val.data(), size_t(v));
    }
    return {};
}

// Data bytes of a regular file (sector-rounded data ranges), from
// SEEK_DATA/SEEK_HOLE when its allocated blocks do not cover its size.
void data_layout(const RootdirOptions& o, const std::string& path, const struct stat& st, EntryExtras& x) {
    const uint64_t ss = o.sectorsize;
    const uint64_t size = uint64_t(st.st_size);
    x.data_bound = (size + ss - 1) / ss * ss;
    x.segments = 1;
    if (uint64_t(st.st_blocks) * 512 >= size) return;
    int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;  // populate reports it
    uint64_t total = 0, prev_end = 0, segments = 0;
    off_t pos = 0;
    int err = 0;
    for (;;) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0) {
            err = errno;
            break;
        }
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0) h = off_t(size);
        uint64_t s = std::max(uint64_t(d) / ss * ss, prev_end);
        const uint64_t e = std::min<uint64_t>((uint64_t(h) + ss - 1) / ss * ss, x.data_bound);
        if (e > s) {
            total += e - s;
            if (s != prev_end || segments == 0) ++segments;
            prev_end = e;
        }
        if (uint64_t(h) >= size) break;
        pos = h;
    }
    close(fd);
    if (segments == 0 && err != ENXIO) return;  // no SEEK_DATA here: the file counts as dense
    x.data_bound = total;
    x.segments = std::max<uint64_t>(segments, 1);
    x.scan_flags |= RootdirModel::F_SPARSE | (total == 0 ? RootdirModel::F_NODATA : 0);
}

Status entry_extras(const RootdirOptions& o, const std::string& path, const std::string& rel, const struct stat& st,
                    EntryExtras& x) {
    BTK_TRY(read_xattrs(o, path, rel, x.xattrs));
    if (S_ISLNK(st.st_mode)) {
        std::vector<char> buf(size_t(std::max<off_t>(st.st_size, 255)) + 2);
        ssize_t n;
        for (;;) {
            n = readlink(path.c_str(), buf.data(), buf.size());
            if (n < 0) return make_error(Errc::io, "cannot read symlink {}: {}", path, std::strerror(errno));
            if (size_t(n) < buf.size()) break;
            buf.resize(buf.size() * 2);
        }
        if (uint64_t(n) > max_inline_data_size(o.nodesize) || n >= 4096)
            return bad(fmt::format("symlink '{}' target of {} bytes is too long for nodesize {}", rel, n, o.nodesize));
        x.target.assign(buf.data(), size_t(n));
    } else if (S_ISREG(st.st_mode) && st.st_size > 0) {
        data_layout(o, path, st, x);
    }
    return {};
}

std::string full_path(const RootdirOptions& o, const std::string& rel) {
    return rel.empty() ? o.dir : o.dir + "/" + rel;
}

Result<Listing> read_listing(const RootdirOptions& o, const std::string& rel) {
    const std::string path = full_path(o, rel);
    // O_NOATIME: reading the source does not change it (when we own it or are root).
    const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (rel.empty() ? 0 : O_NOFOLLOW);
    int fd = open(path.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = open(path.c_str(), flags);
    if (fd < 0) return make_error(Errc::io, "cannot open directory {}: {}", path, std::strerror(errno));
    DIR* d = fdopendir(fd);
    if (!d) {
        close(fd);
        return make_error(Errc::io, "cannot read directory {}: {}", path, std::strerror(errno));
    }
    Listing l;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        l.names.emplace_back(e->d_name);
    }
    if (errno) {
        const int err = errno;
        closedir(d);
        return make_error(Errc::io, "cannot read directory {}: {}", path, std::strerror(err));
    }
    std::sort(l.names.begin(), l.names.end());
    l.stats.resize(l.names.size());
    l.extras.resize(l.names.size());
    for (size_t i = 0; i < l.names.size(); ++i) {
        if (fstatat(fd, l.names[i].c_str(), &l.stats[i], AT_SYMLINK_NOFOLLOW) != 0) {
            const int err = errno;
            closedir(d);
            return make_error(Errc::io, "cannot stat {}/{}: {}", path, l.names[i], std::strerror(err));
        }
        const std::string erel = rel.empty() ? l.names[i] : rel + "/" + l.names[i];
        Status s = entry_extras(o, path + "/" + l.names[i], erel, l.stats[i], l.extras[i]);
        if (!s) {
            closedir(d);
            return std::move(s).error();
        }
    }
    closedir(d);
    return l;
}

// Reads directories ahead of the scan on a few threads. Directories are
// asked for in the order the depth-first walk meets them; the workers take
// the most recently asked first (a stack), which is the order the walk needs
// them, and stop when enough listings wait unclaimed.
class ListingPool {
public:
    ListingPool(const RootdirOptions& o, unsigned n) : o_(o) {
        for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
    }
    ~ListingPool() {
        {
            std::lock_guard l(mu_);
            stop_ = true;
        }
        cv_work_.notify_all();
        for (auto& t : threads_) t.join();
    }
    // Asks for the listings of `rels`, needed in this order.
    void ahead(std::vector<std::string> rels) {
        if (threads_.empty()) return;
        {
            std::lock_guard l(mu_);
            for (auto it = rels.rbegin(); it != rels.rend(); ++it) {
                auto t = std::make_shared<Task>();
                t->rel = *it;
                tasks_[*it] = t;
                stack_.push_back(t);
            }
        }
        cv_work_.notify_all();
    }
    // The listing of `rel`: read ahead, or read now.
    Result<Listing> take(const std::string& rel) {
        std::shared_ptr<Task> t;
        {
            std::unique_lock l(mu_);
            auto it = tasks_.find(rel);
            if (it != tasks_.end()) {
                t = it->second;
                tasks_.erase(it);
                if (!t->started) t->started = true;  // not begun: read it here
                else {
                    cv_done_.wait(l, [&] { return t->result.has_value(); });
                    --unclaimed_;
                    cv_work_.notify_all();
                    return std::move(*t->result);
                }
            }
        }
        return read_listing(o_, rel);
    }

private:
    struct Task {
        std::string rel;
        bool started = false;
        std::optional<Result<Listing>> result;
    };
    void work() {
        for (;;) {
            std::shared_ptr<Task> t;
            {
                std::unique_lock l(mu_);
                cv_work_.wait(l, [&] {
                    if (stop_) return true;
                    while (!stack_.empty() && stack_.back()->started) stack_.pop_back();
                    return !stack_.empty() && unclaimed_ < MAX_UNCLAIMED;
                });
                if (stop_) return;
                t = stack_.back();
                stack_.pop_back();
                t->started = true;
                ++unclaimed_;
            }
            auto r = read_listing(o_, t->rel);
            {
                std::lock_guard l(mu_);
                t->result = std::move(r);
            }
            cv_done_.notify_all();
        }
    }
    static constexpr size_t MAX_UNCLAIMED = 512;
    const RootdirOptions& o_;
    std::mutex mu_;
    std::condition_variable cv_work_, cv_done_;
    std::vector<std::shared_ptr<Task>> stack_;
    std::unordered_map<std::string, std::shared_ptr<Task>> tasks_;
    size_t unclaimed_ = 0;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

struct Scanner {
    const RootdirOptions& o;
    RootdirModel m;
    std::unordered_map<std::string, size_t> subvol_specs, flag_specs;
    std::vector<bool> subvol_used, flag_used;
    struct LinkKey {
        uint64_t dev, ino;
        uint32_t subvol;
        bool operator==(const LinkKey&) const = default;
    };
    struct LinkHash {
        size_t operator()(const LinkKey& k) const noexcept {
            return std::hash<uint64_t>()(k.ino * 0x9E3779B97F4A7C15ULL ^ k.dev) ^ k.subvol;
        }
    };
    struct LinkVal {
        uint32_t inode, last_name;
    };
    std::unordered_map<LinkKey, LinkVal, LinkHash> links;
    uint64_t next_subvol_id = FIRST_FREE_OBJECTID;
    uint32_t max_item = 0;

    explicit Scanner(const RootdirOptions& opts) : o(opts) { m.opts = opts; }

    uint32_t add_string(std::string_view s) {
        const uint32_t off = uint32_t(m.strings.size());
        m.strings.append(s);
        return off;
    }

    bool inline_candidate(uint64_t size) const {
        return size > 0 && size < o.sectorsize && size <= rootdir::max_inline(o);
    }

    void account_meta(const RootdirModel::Inode& in, uint64_t segments) {
        constexpr uint64_t IH = sizeof(item);
        uint64_t b = IH + sizeof(inode_item);
        if (S_ISLNK(in.mode)) b += IH + FILE_EXTENT_INLINE_DATA_START + in.str_len;
        // xattr_len counts 6 bytes of our own header per xattr besides name and value.
        b += in.xattr_len + m.xattrs(in).size() * (IH + sizeof(dir_item) - 6);
        if (S_ISREG(in.mode) && in.size > 0) {
            if (in.data_bound == 0 || (inline_candidate(in.size) && in.data_bound <= o.sectorsize)) {
                b += IH + FILE_EXTENT_INLINE_DATA_START + in.size;
            } else {
                const bool compressing = o.compress != COMPRESS_NONE && !(in.flags & INODE_NODATASUM);
                const uint64_t per = compressing ? MAX_UNCOMPRESSED : rootdir::MAX_EXTENT;
                const uint64_t n = in.data_bound / per + segments + 1;
                const uint64_t holes = o.no_holes ? 0 : segments + 1;
                b += (n + holes) * (IH + sizeof(file_extent_item));
                b += n * (IH + sizeof(extent_item) + 1 + sizeof(extent_data_ref));
                if (!(in.flags & INODE_NODATASUM)) b += in.data_bound / o.sectorsize * csum_size(o.csum_type);
                m.max_extent = std::max(m.max_extent, std::min(in.data_bound, per));
            }
        }
        m.meta_bytes += b;
    }

    // Creates the inode for a directory entry (or links to an earlier one).
    // Returns the inode index.
    // A subvolume's top directory (subvol_root) is objectid 256 of its tree.
    Result<uint32_t> make_inode(const struct stat& st, const EntryExtras& x, uint32_t parent, uint32_t subvol,
                                uint32_t name_idx, bool subvol_root, const std::string& rel) {
        const bool hardlinkable = !S_ISDIR(st.st_mode) && st.st_nlink > 1;
        LinkKey lk{uint64_t(st.st_dev), uint64_t(st.st_ino), subvol};
        if (hardlinkable) {
            if (auto it = links.find(lk); it != links.end()) {
                auto& in = m.inodes[it->second.inode];
                if (in.nlink >= 65535) return bad(fmt::format("'{}': too many hard links", rel));
                ++in.nlink;
                m.names[it->second.last_name].next_link = name_idx;
                it->second.last_name = name_idx;
                m.meta_bytes += sizeof(item) + sizeof(inode_ref) + m.names[name_idx].len;
                return it->second.inode;
            }
        }
        RootdirModel::Inode in;
        in.size = S_ISREG(st.st_mode) ? uint64_t(st.st_size) : 0;
        in.mode = st.st_mode;
        in.uid = st.st_uid;
        in.gid = st.st_gid;
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            in.rdev = (uint64_t(major(st.st_rdev)) << 20) | minor(st.st_rdev);
        in.atime = st.st_atim.tv_sec;
        in.atime_ns = uint32_t(st.st_atim.tv_nsec);
        in.mtime = st.st_mtim.tv_sec;
        in.mtime_ns = uint32_t(st.st_mtim.tv_nsec);
        in.ctime = st.st_ctim.tv_sec;
        in.ctime_ns = uint32_t(st.st_ctim.tv_nsec);
        in.nlink = 1;
        in.subvol = subvol;
        in.first_name = name_idx;
        if (subvol_root) {
            in.ino = FIRST_FREE_OBJECTID;
            in.first_name = ~0u;
            in.scan_flags |= RootdirModel::F_SUBVOL_ROOT;
        } else {
            in.ino = m.subvols[subvol].next_ino++;
        }
        // Flags the kernel passes from a directory to what is created in it.
        if (parent != ~0u && (m.inodes[parent].flags & INODE_NODATACOW)) {
            in.flags |= INODE_NODATACOW;
            if (S_ISREG(st.st_mode)) in.flags |= INODE_NODATASUM;
        }
        if (auto it = flag_specs.find(rel); it != flag_specs.end()) {
            const auto& f = o.inode_flags[it->second];
            if (f.nodatacow) in.flags |= INODE_NODATACOW | INODE_NODATASUM;
            if (f.nodatasum) in.flags |= INODE_NODATASUM;
            flag_used[it->second] = true;
        }
        in.xattr_off = add_string(x.xattrs);
        in.xattr_len = uint32_t(x.xattrs.size());
        if (S_ISLNK(st.st_mode)) {
            in.str_off = add_string(x.target);
            in.str_len = uint32_t(x.target.size());
            in.size = x.target.size();
        } else if (S_ISREG(st.st_mode) && in.size > 0) {
            ++m.regular_files;
            in.data_bound = x.data_bound;
            in.scan_flags |= x.scan_flags;
            if (inline_candidate(in.size) && in.data_bound > 0) {
                ++m.inline_candidates;
                in.data_bound = 0;
            }
            m.data_bound += in.data_bound;
        }
        account_meta(in, x.segments);
        const uint32_t idx = uint32_t(m.inodes.size());
        m.inodes.push_back(in);
        if (hardlinkable) links[lk] = {idx, name_idx};
        return idx;
    }

    // Adds a directory's names (from its listing) to m.names.
    void add_names(uint32_t dir, const Listing& l) {
        auto& di = m.inodes[dir];
        di.entries_begin = uint32_t(m.names.size());
        uint64_t index = 2;
        for (const auto& name : l.names) {
            RootdirModel::Name n;
            n.parent = dir;
            n.off = add_string(name);
            n.len = uint16_t(name.size());
            n.index = index++;
            m.names.push_back(n);
            di.dir_isize += 2 * name.size();
            m.meta_bytes += 2 * (sizeof(item) + sizeof(dir_item) + name.size());
        }
        di.entries_end = uint32_t(m.names.size());
    }

    Status run() {
        max_item = max_item_data_size(o.nodesize);
        for (size_t i = 0; i < o.subvols.size(); ++i) {
            BTK_ASSIGN(std::string p, normalize_rel(o.subvols[i].path, "--subvol"));
            if (p.empty()) return bad("--subvol: the root directory cannot be a subvolume");
            if (!subvol_specs.emplace(p, i).second) return bad(fmt::format("--subvol '{}' given twice", p));
        }
        int defaults = 0;
        for (const auto& s : o.subvols) defaults += s.is_default;
        if (defaults > 1) return bad("--subvol: only one subvolume can be the default");
        for (size_t i = 0; i < o.inode_flags.size(); ++i) {
            BTK_ASSIGN(std::string p, normalize_rel(o.inode_flags[i].path, "--inode-flags"));
            if (!flag_specs.emplace(p, i).second) return bad(fmt::format("--inode-flags '{}' given twice", p));
        }
        subvol_used.assign(o.subvols.size(), false);
        flag_used.assign(o.inode_flags.size(), false);

        struct stat st;
        if (stat(o.dir.c_str(), &st) != 0)
            return bad(fmt::format("rootdir {}: {}", o.dir, std::strerror(errno)));
        if (!S_ISDIR(st.st_mode)) return bad(fmt::format("rootdir {} is not a directory", o.dir));

        RootdirModel::Subvol top;
        top.id = FS_TREE_OBJECTID;
        m.subvols.push_back(top);
        EntryExtras top_extras;
        BTK_TRY(read_xattrs(o, o.dir, "", top_extras.xattrs));
        BTK_ASSIGN(uint32_t root, make_inode(st, top_extras, ~0u, 0, ~0u, true, ""));
        if (o.root_owner) {
            m.inodes[root].uid = o.root_owner->first;
            m.inodes[root].gid = o.root_owner->second;
        }

        // Depth first, entries in name order: the order `cp -a` creates them.
        struct Frame {
            uint32_t dir;
            uint32_t next, end;
            size_t rel_len;
            Listing listing;
        };
        std::vector<Frame> stack;
        std::string rel;
        ListingPool pool(o, std::max(1u, std::thread::hardware_concurrency()));
        // rel_len: length of the parent's path, restored when the frame ends.
        auto enter = [&](uint32_t dir, size_t rel_len) -> Status {
            BTK_ASSIGN(Listing l, pool.take(rel));
            std::vector<std::string> subdirs;
            for (size_t i = 0; i < l.names.size(); ++i)
                if (S_ISDIR(l.stats[i].st_mode)) subdirs.push_back(rel.empty() ? l.names[i] : rel + "/" + l.names[i]);
            pool.ahead(std::move(subdirs));
            add_names(dir, l);
            stack.push_back(Frame{dir, m.inodes[dir].entries_begin, m.inodes[dir].entries_end, rel_len, std::move(l)});
            return {};
        };
        BTK_TRY(enter(root, 0));
        while (!stack.empty()) {
            Frame& f = stack.back();
            if (f.next == f.end) {
                rel.resize(f.rel_len);
                stack.pop_back();
                continue;
            }
            const uint32_t ni = f.next++;
            const size_t li = ni - m.inodes[f.dir].entries_begin;
            const struct stat est = f.listing.stats[li];
            const EntryExtras extras = std::move(f.listing.extras[li]);
            const uint32_t dir = f.dir;
            const std::string erel = rel.empty() ? std::string(m.name(m.names[ni]))
                                                 : rel + "/" + std::string(m.name(m.names[ni]));
            uint32_t subvol = m.inodes[dir].subvol;
            if (auto it = subvol_specs.find(erel); it != subvol_specs.end()) {
                if (!S_ISDIR(est.st_mode)) return bad(fmt::format("--subvol '{}' is not a directory", erel));
                RootdirModel::Subvol sv;
                sv.id = next_subvol_id++;
                sv.root_inode = uint32_t(m.inodes.size());
                sv.parent = subvol;
                sv.entry = ni;
                sv.readonly = o.subvols[it->second].readonly;
                sv.is_default = o.subvols[it->second].is_default;
                if (o.make_uuid) o.make_uuid(sv.id, sv.uuid);
                else rootdir::random_uuid(sv.uuid);
                subvol = uint32_t(m.subvols.size());
                m.subvols.push_back(sv);
                m.names[ni].subvol_entry = true;
                subvol_used[it->second] = true;
                // ROOT_REF, ROOT_BACKREF, uuid item, the ".." ref.
                m.meta_bytes += 2 * (sizeof(item) + sizeof(root_ref) + m.names[ni].len) + sizeof(item) + 8 +
                                sizeof(item) + sizeof(inode_ref) + 2;
            }
            BTK_ASSIGN(uint32_t child, make_inode(est, extras, dir, subvol, ni, m.names[ni].subvol_entry, erel));
            m.names[ni].child = child;
            if (!m.names[ni].subvol_entry) m.meta_bytes += sizeof(item) + sizeof(inode_ref) + m.names[ni].len;
            if (S_ISDIR(est.st_mode)) {
                const size_t parent_len = rel.size();
                rel = erel;
                BTK_TRY(enter(child, parent_len));
            }
        }
        for (size_t i = 0; i < o.subvols.size(); ++i)
            if (!subvol_used[i])
                return bad(fmt::format("--subvol '{}': no such directory in {}", o.subvols[i].path, o.dir));
        for (size_t i = 0; i < o.inode_flags.size(); ++i)
            if (!flag_used[i])
                return bad(fmt::format("--inode-flags '{}': no such file in {}", o.inode_flags[i].path, o.dir));
        return check_refs();
    }

    // Without extref, every name of an inode in one directory must fit in one
    // INODE_REF item.
    Status check_refs() {
        if (o.extref) return {};
        std::unordered_map<uint64_t, uint64_t> per_parent;
        for (uint32_t i = 0; i < m.inodes.size(); ++i) {
            const auto& in = m.inodes[i];
            if (in.nlink < 2 || S_ISDIR(in.mode)) continue;
            per_parent.clear();
            for (uint32_t n = in.first_name; n != ~0u; n = m.names[n].next_link) {
                uint64_t& sz = per_parent[m.names[n].parent];
                sz += sizeof(inode_ref) + m.names[n].len;
                if (sz > max_item)
                    return bad(fmt::format("'{}' has too many hard links in one directory without the extref feature",
                                           m.path(i)));
            }
        }
        return {};
    }
};

}  // namespace

Result<RootdirModel> rootdir_scan(const RootdirOptions& opts) {
    if (opts.dir.empty()) return bad("no rootdir given");
    Scanner s(opts);
    BTK_TRY(s.run());
    return std::move(s.m);
}

uint64_t rootdir_meta_blocks(const RootdirModel& model, uint32_t fill_percent) {
    const uint64_t ns = model.opts.nodesize;
    const uint64_t per_leaf = std::max<uint64_t>(1, leaf_data_size(uint32_t(ns)) * fill_percent / 100);
    const uint64_t leaves = model.meta_bytes / per_leaf + 1;
    // Items that get a leaf of their own (full csum items, big refs) and the
    // node levels: a tenth more, plus a root per subvolume tree.
    return leaves + leaves / 10 + 2 * (model.subvols.size() + 2);
}

}  // namespace btk
