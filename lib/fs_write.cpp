#include "fs_write.h"

#include "compress.h"
#include "csum.h"
#include "file.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace btk {

using namespace format;

namespace {

constexpr uint64_t MAX_EXTENT = 128ull << 20;
constexpr uint32_t MAX_INLINE = 2048;
constexpr uint64_t REF_MIN = 1;  // extents with a host source are read from it at commit

Error fs_error(Errc c, std::string_view path, std::string_view what) {
    return Error{c, fmt::format("'{}': {}", path, what)};
}

std::vector<std::string> split_path(std::string_view p) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        std::string_view c = p.substr(i, j - i);
        if (!c.empty() && c != ".") out.emplace_back(c);
        i = j + 1;
    }
    return out;
}

template <typename T>
std::span<const uint8_t> as_bytes(const T& v) {
    return {reinterpret_cast<const uint8_t*>(&v), sizeof(T)};
}

// One entry of a DIR_ITEM / XATTR_ITEM item (several may share an item when
// their name hashes collide).
struct DirEntry {
    size_t off, len;  // byte range in the item
    std::string_view name;
    const dir_item* di;
};

std::vector<DirEntry> dir_entries(std::span<const uint8_t> d) {
    std::vector<DirEntry> out;
    size_t off = 0;
    while (off + sizeof(dir_item) <= d.size()) {
        const auto* di = reinterpret_cast<const dir_item*>(d.data() + off);
        const size_t len = sizeof(dir_item) + di->name_len + di->data_len;
        if (off + len > d.size()) break;
        out.push_back({off, len, std::string_view(reinterpret_cast<const char*>(d.data() + off + sizeof(dir_item)),
                                                  di->name_len),
                       di});
        off += len;
    }
    return out;
}

// Removes bytes [off, off+len) from an item, deleting it when it empties.
Status cut_item(Transaction& t, uint64_t tree, const Key& k, std::span<const uint8_t> cur, size_t off, size_t len) {
    if (len == cur.size()) return t.delete_item(tree, k);
    std::vector<uint8_t> rest(cur.begin(), cur.end());
    rest.erase(rest.begin() + ptrdiff_t(off), rest.begin() + ptrdiff_t(off + len));
    BTK_ASSIGN(std::span<uint8_t> d, t.resize_item(tree, k, uint32_t(rest.size())));
    std::memcpy(d.data(), rest.data(), rest.size());
    return {};
}

// Appends bytes to an item, creating it when missing.
Status append_item(Transaction& t, uint64_t tree, const Key& k, std::span<const uint8_t> add) {
    BTK_ASSIGN(auto cur, t.lookup(tree, k));
    if (!cur) return t.insert_item(tree, k, add);
    const size_t old = cur->size();
    BTK_ASSIGN(std::span<uint8_t> d, t.resize_item(tree, k, uint32_t(old + add.size())));
    std::memcpy(d.data() + old, add.data(), add.size());
    return {};
}

}  // namespace

FsWriter::FsWriter(Transaction& t) : t_(t) {
    if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) {
        now_sec_ = std::strtoll(e, nullptr, 10);
    } else {
        struct ::timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_sec_ = ts.tv_sec;
        now_nsec_ = uint32_t(ts.tv_nsec);
    }
}

void FsWriter::stamp(inode_item& ii, bool change_mtime) {
    ii.ctime.sec = uint64_t(now_sec_);
    ii.ctime.nsec = now_nsec_;
    if (change_mtime) ii.mtime = ii.ctime;
    ii.transid = t_.generation();
    ii.sequence = ii.sequence + 1;
}

Result<inode_item> FsWriter::read_inode(const InodeLoc& loc) {
    BTK_ASSIGN(auto d, t_.lookup(loc.tree, Key{loc.ino, INODE_ITEM_KEY, 0}));
    if (!d || d->size() < sizeof(inode_item))
        return corruption("tree {}: inode {} has no inode item", loc.tree, loc.ino);
    inode_item ii;
    std::memcpy(&ii, d->data(), sizeof(ii));
    return ii;
}

Status FsWriter::write_inode(const InodeLoc& loc, const inode_item& ii) {
    BTK_ASSIGN(std::span<uint8_t> d, t_.item_for_update(loc.tree, Key{loc.ino, INODE_ITEM_KEY, 0}));
    if (d.size() < sizeof(ii)) return corruption("inode item {} too small", loc.ino);
    std::memcpy(d.data(), &ii, sizeof(ii));
    return {};
}

Result<std::optional<std::pair<InodeLoc, uint8_t>>> FsWriter::lookup_name(const InodeLoc& dir, std::string_view name) {
    using R = std::optional<std::pair<InodeLoc, uint8_t>>;
    BTK_ASSIGN(auto d, t_.lookup(dir.tree, Key{dir.ino, DIR_ITEM_KEY, name_hash(name)}));
    if (!d) return R{};
    for (const auto& e : dir_entries(*d)) {
        if (e.name != name) continue;
        const Key loc = Key::from_disk(e.di->location);
        if (loc.type == ROOT_ITEM_KEY) {
            BTK_ASSIGN(auto r, t_.tree_root(loc.objectid));
            (void)r;
            BTK_ASSIGN(auto ri, t_.lookup(ROOT_TREE_OBJECTID, t_.tree_root(loc.objectid).value()->item_key));
            uint64_t dirid = FIRST_FREE_OBJECTID;
            if (ri && ri->size() >= offsetof(root_item, root_dirid) + 8)
                dirid = reinterpret_cast<const root_item*>(ri->data())->root_dirid;
            return R{std::pair{InodeLoc{loc.objectid, dirid}, e.di->type}};
        }
        return R{std::pair{InodeLoc{dir.tree, loc.objectid}, e.di->type}};
    }
    return R{};
}

Result<InodeLoc> FsWriter::resolve(std::string_view path, bool follow_last) {
    (void)follow_last;
    if (path.empty() || path[0] != '/') return fs_error(Errc::invalid_argument, path, "path must be absolute");
    const auto parts = split_path(path);
    // Directories resolved before are remembered (by their normalized path)
    // until a rename or removal of a directory.
    std::string norm;
    for (const auto& c : parts) norm += "/" + c;
    if (auto it = dir_cache_.find(norm); it != dir_cache_.end()) return it->second;
    InodeLoc cur;
    size_t start = 0;
    // The longest cached directory prefix.
    for (size_t n = parts.size(); n > 0 && start == 0; --n) {
        std::string pre;
        for (size_t i = 0; i < n; ++i) pre += "/" + parts[i];
        if (auto it = dir_cache_.find(pre); it != dir_cache_.end()) {
            cur = it->second;
            start = n;
        }
    }
    if (start == 0) {
        // The default subvolume, as a mount shows it.
        uint64_t tree = FS_TREE_OBJECTID;
        BTK_ASSIGN(auto def, t_.lookup(ROOT_TREE_OBJECTID, Key{ROOT_TREE_DIR_OBJECTID, DIR_ITEM_KEY, name_hash("default")}));
        if (def)
            for (const auto& e : dir_entries(*def))
                if (e.name == "default") tree = Key::from_disk(e.di->location).objectid;
        cur = InodeLoc{tree, FIRST_FREE_OBJECTID};
    }
    std::string at;
    for (size_t i = 0; i < start; ++i) at += "/" + parts[i];
    for (size_t i = start; i < parts.size(); ++i) {
        const auto& c = parts[i];
        if (c == "..") return fs_error(Errc::invalid_argument, path, "'..' is not supported in paths");
        BTK_ASSIGN(inode_item ii, read_inode(cur));
        if ((ii.mode & S_IFMT) != S_IFDIR) return fs_error(Errc::invalid_argument, path, "Not a directory");
        BTK_ASSIGN(auto hit, lookup_name(cur, c));
        if (!hit) return fs_error(Errc::not_found, path, "No such file or directory");
        cur = hit->first;
        at += "/" + c;
        if (hit->second == FT_DIR) dir_cache_[at] = cur;
    }
    return cur;
}

Result<bool> FsWriter::is_dir(std::string_view path) {
    auto r = resolve(path);
    if (!r) {
        if (r.error().code == Errc::not_found) return false;
        return std::move(r).error();
    }
    BTK_ASSIGN(inode_item ii, read_inode(*r));
    return (ii.mode & S_IFMT) == S_IFDIR;
}

Result<FsWriter::Parent> FsWriter::parent_of(std::string_view path) {
    auto parts = split_path(path);
    if (path.empty() || path[0] != '/') return fs_error(Errc::invalid_argument, path, "path must be absolute");
    if (parts.empty()) return fs_error(Errc::invalid_argument, path, "is the root directory");
    std::string name = parts.back();
    if (name == "..") return fs_error(Errc::invalid_argument, path, "'..' is not supported in paths");
    if (name.size() > 255) return fs_error(Errc::invalid_argument, path, "File name too long");
    std::string dir = "/";
    for (size_t i = 0; i + 1 < parts.size(); ++i) dir += parts[i] + "/";
    auto dr = resolve(dir);
    if (!dr) {
        Error e = std::move(dr).error();
        if (e.code == Errc::not_found) return fs_error(Errc::not_found, path, "No such file or directory");
        if (e.message.ends_with("Not a directory")) return fs_error(Errc::invalid_argument, path, "Not a directory");
        return e;
    }
    const InodeLoc d = *dr;
    BTK_ASSIGN(inode_item ii, read_inode(d));
    if ((ii.mode & S_IFMT) != S_IFDIR) return fs_error(Errc::invalid_argument, path, "Not a directory");
    return Parent{d, std::move(name)};
}

Result<uint64_t> FsWriter::new_ino(uint64_t tree) {
    auto it = next_ino_.find(tree);
    if (it == next_ino_.end()) {
        BTK_ASSIGN(auto k, t_.last_key_le(tree, Key{LAST_FREE_OBJECTID, 0xff, ~0ULL}));
        const uint64_t next = k ? std::max<uint64_t>(k->objectid + 1, FIRST_FREE_OBJECTID + 1) : FIRST_FREE_OBJECTID + 1;
        it = next_ino_.emplace(tree, next).first;
    }
    if (it->second > LAST_FREE_OBJECTID) return make_error(Errc::io, "no inode numbers left in tree {}", tree);
    return it->second++;
}

Result<uint64_t> FsWriter::new_dir_index(const InodeLoc& dir) {
    auto key = std::pair{dir.tree, dir.ino};
    auto it = next_index_.find(key);
    if (it == next_index_.end()) {
        BTK_ASSIGN(auto k, t_.last_key_le(dir.tree, Key{dir.ino, DIR_INDEX_KEY, ~0ULL}));
        uint64_t next = 2;
        if (k && k->objectid == dir.ino && k->type == DIR_INDEX_KEY) next = std::max<uint64_t>(k->offset + 1, 2);
        it = next_index_.emplace(key, next).first;
    }
    return it->second++;
}

inode_item FsWriter::fresh_inode(uint32_t mode) {
    inode_item ii{};
    ii.generation = t_.generation();
    ii.transid = t_.generation();
    ii.mode = mode;
    ii.sequence = 1;
    for (timespec* ts : {&ii.atime, &ii.ctime, &ii.mtime, &ii.otime}) {
        ts->sec = uint64_t(now_sec_);
        ts->nsec = now_nsec_;
    }
    return ii;
}

Status FsWriter::add_link(const InodeLoc& dir, std::string_view name, const InodeLoc& child, uint8_t ftype) {
    if (name.empty() || name.size() > 255) return fs_error(Errc::invalid_argument, name, "File name too long");
    if (child.tree != dir.tree)
        return make_error(Errc::unsupported, "linking across subvolumes is not supported");
    BTK_ASSIGN(uint64_t index, new_dir_index(dir));
    std::vector<uint8_t> entry(sizeof(dir_item) + name.size());
    auto* di = reinterpret_cast<dir_item*>(entry.data());
    Key{child.ino, INODE_ITEM_KEY, 0}.to_disk(di->location);
    di->transid = t_.generation();
    di->data_len = 0;
    di->name_len = uint16_t(name.size());
    di->type = ftype;
    std::memcpy(entry.data() + sizeof(dir_item), name.data(), name.size());
    BTK_TRY(append_item(t_, dir.tree, Key{dir.ino, DIR_ITEM_KEY, name_hash(name)}, entry));
    BTK_TRY(t_.insert_item(dir.tree, Key{dir.ino, DIR_INDEX_KEY, index}, entry));
    std::vector<uint8_t> ref(sizeof(inode_ref) + name.size());
    auto* ir = reinterpret_cast<inode_ref*>(ref.data());
    ir->index = index;
    ir->name_len = uint16_t(name.size());
    std::memcpy(ref.data() + sizeof(inode_ref), name.data(), name.size());
    BTK_TRY(append_item(t_, child.tree, Key{child.ino, INODE_REF_KEY, dir.ino}, ref));
    BTK_ASSIGN(inode_item d, read_inode(dir));
    d.size = d.size + 2 * name.size();
    stamp(d, true);
    BTK_TRY(write_inode(dir, d));
    BTK_ASSIGN(inode_item c, read_inode(child));
    c.nlink = c.nlink + 1;
    stamp(c, false);
    return write_inode(child, c);
}

Status FsWriter::del_link(const InodeLoc& dir, std::string_view name, const InodeLoc& child) {
    // The inode ref gives the index of this name.
    const Key rk{child.ino, INODE_REF_KEY, dir.ino};
    BTK_ASSIGN(auto ref, t_.lookup(child.tree, rk));
    if (!ref) return corruption("tree {}: inode {} has no ref from directory {}", child.tree, child.ino, dir.ino);
    std::optional<uint64_t> index;
    size_t off = 0;
    while (off + sizeof(inode_ref) <= ref->size()) {
        const auto* ir = reinterpret_cast<const inode_ref*>(ref->data() + off);
        const size_t len = sizeof(inode_ref) + ir->name_len;
        if (off + len > ref->size()) break;
        if (std::string_view(reinterpret_cast<const char*>(ref->data() + off + sizeof(inode_ref)), ir->name_len) == name) {
            index = ir->index;
            BTK_TRY(cut_item(t_, child.tree, rk, *ref, off, len));
            break;
        }
        off += len;
    }
    if (!index) return corruption("tree {}: inode {} has no ref named '{}'", child.tree, child.ino, name);
    const Key dk{dir.ino, DIR_ITEM_KEY, name_hash(name)};
    BTK_ASSIGN(auto ditem, t_.lookup(dir.tree, dk));
    if (!ditem) return corruption("tree {}: directory {} has no dir item for '{}'", dir.tree, dir.ino, name);
    bool cut = false;
    for (const auto& e : dir_entries(*ditem))
        if (e.name == name) {
            BTK_TRY(cut_item(t_, dir.tree, dk, *ditem, e.off, e.len));
            cut = true;
            break;
        }
    if (!cut) return corruption("tree {}: directory {} dir item lacks '{}'", dir.tree, dir.ino, name);
    BTK_TRY(t_.delete_item(dir.tree, Key{dir.ino, DIR_INDEX_KEY, *index}));
    BTK_ASSIGN(inode_item d, read_inode(dir));
    d.size = d.size - std::min<uint64_t>(d.size, 2 * name.size());
    stamp(d, true);
    BTK_TRY(write_inode(dir, d));
    BTK_ASSIGN(inode_item c, read_inode(child));
    c.nlink = c.nlink - std::min<uint32_t>(c.nlink, 1);
    stamp(c, false);
    BTK_TRY(write_inode(child, c));
    if (c.nlink == 0) return drop_inode(child);
    return {};
}

Status FsWriter::drop_inode(const InodeLoc& loc) {
    BTK_TRY(t_.for_each(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, 0}, Key{loc.ino, EXTENT_DATA_KEY, ~0ULL},
                        [&](const ItemRef& it) {
                            const auto* fe = view_at<file_extent_item>(it.data);
                            if (fe && fe->type != FILE_EXTENT_INLINE && fe->disk_bytenr != 0)
                                t_.refs().add(fe->disk_bytenr, fe->disk_num_bytes, true, 0,
                                              RefId::data(loc.tree, loc.ino, it.key.offset - uint64_t(fe->offset)), -1);
                            return true;
                        }));
    BTK_ASSIGN(uint64_t n, t_.delete_range(loc.tree, Key{loc.ino, 0, 0}, Key{loc.ino, 0xff, ~0ULL}));
    (void)n;
    return {};
}

Result<InodeLoc> FsWriter::create(std::string_view path, uint32_t mode, uint64_t rdev, bool must_not_exist) {
    BTK_ASSIGN(Parent p, parent_of(path));
    BTK_ASSIGN(auto hit, lookup_name(p.dir, p.name));
    if (hit) {
        if (must_not_exist) return fs_error(Errc::invalid_argument, path, "File exists");
        return hit->first;
    }
    BTK_ASSIGN(uint64_t ino, new_ino(p.dir.tree));
    inode_item ii = fresh_inode(mode);
    ii.rdev = rdev;
    BTK_ASSIGN(inode_item pd, read_inode(p.dir));
    // Inherited flags, as the kernel does for new inodes.
    if (pd.flags & INODE_NODATACOW) {
        ii.flags = ii.flags | INODE_NODATACOW;
        if ((mode & S_IFMT) == S_IFREG) ii.flags = ii.flags | INODE_NODATASUM;
    }
    if (pd.flags & INODE_COMPRESS) ii.flags = ii.flags | INODE_COMPRESS;
    // A set-group-ID directory passes its group on, and the bit itself to
    // new directories (as the kernel's inode_init_owner does).
    if (pd.mode & S_ISGID) {
        ii.gid = pd.gid;
        if ((mode & S_IFMT) == S_IFDIR) ii.mode = ii.mode | S_ISGID;
    }
    const InodeLoc loc{p.dir.tree, ino};
    BTK_TRY(t_.insert_item(loc.tree, Key{ino, INODE_ITEM_KEY, 0}, as_bytes(ii)));
    BTK_TRY(add_link(p.dir, p.name, loc, mode_to_ft(mode)));
    return loc;
}

Status FsWriter::mkdir(std::string_view path, uint32_t mode, bool parents) {
    if (parents) {
        std::string cur;
        for (const auto& c : split_path(path)) {
            cur += "/" + c;
            auto r = resolve(cur);
            if (r) {
                BTK_ASSIGN(inode_item ii, read_inode(*r));
                if ((ii.mode & S_IFMT) != S_IFDIR) return fs_error(Errc::invalid_argument, cur, "Not a directory");
                continue;
            }
            if (r.error().code != Errc::not_found) return std::move(r).error();
            BTK_TRY(create(cur, S_IFDIR | (mode & 07777), 0));
        }
        return {};
    }
    BTK_ASSIGN(InodeLoc l, create(path, S_IFDIR | (mode & 07777), 0));
    (void)l;
    return {};
}

Status FsWriter::write_extents(const InodeLoc& loc, uint64_t file_off, std::span<const uint8_t> data, inode_item& ii,
                               const std::shared_ptr<const HostFileRef>& source, bool no_inline) {
    const uint32_t ss = t_.sectorsize();
    const bool datasum = !(ii.flags & INODE_NODATASUM);
    if (!no_inline && file_off == 0 && !data.empty() && data.size() <= MAX_INLINE && data.size() < ss &&
        data.size() <= max_inline_data_size(t_.nodesize())) {
        std::vector<uint8_t> item(FILE_EXTENT_INLINE_DATA_START + data.size(), 0);
        auto* fe = reinterpret_cast<file_extent_item*>(item.data());
        fe->generation = t_.generation();
        fe->ram_bytes = data.size();
        fe->type = FILE_EXTENT_INLINE;
        std::memcpy(item.data() + FILE_EXTENT_INLINE_DATA_START, data.data(), data.size());
        BTK_TRY(t_.insert_item(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, 0}, item));
        ii.nbytes = ii.nbytes + data.size();
        return {};
    }
    size_t done = 0;
    std::vector<uint8_t> buf;
    while (done < data.size()) {
        const uint64_t want = std::min<uint64_t>((data.size() - done + ss - 1) / ss * ss, MAX_EXTENT);
        BTK_ASSIGN(auto ext, t_.alloc_data(want));
        const auto [bytenr, len] = ext;
        const size_t n = std::min<size_t>(len, data.size() - done);
        std::span<const uint8_t> piece = data.subspan(done, n);
        if (n < len) {
            buf.assign(len, 0);
            std::memcpy(buf.data(), piece.data(), n);
            piece = buf;
        }
        if (source && n >= REF_MIN) {
            BTK_TRY(t_.write_data_ref(bytenr, source, file_off + done, n, len));
        } else {
            BTK_TRY(t_.write_data(bytenr, piece));
        }
        if (datasum) BTK_TRY(t_.add_data_csums(bytenr, piece));
        file_extent_item fe{};
        fe.generation = t_.generation();
        fe.ram_bytes = len;
        fe.type = FILE_EXTENT_REG;
        fe.disk_bytenr = bytenr;
        fe.disk_num_bytes = len;
        fe.offset = 0;
        fe.num_bytes = len;
        const uint64_t off = file_off + done;
        BTK_TRY(t_.insert_item(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, off}, as_bytes(fe)));
        t_.refs().add_new(bytenr, len, true, 0, RefId::data(loc.tree, loc.ino, off));
        ii.nbytes = ii.nbytes + len;
        done += n;
    }
    return {};
}

Status FsWriter::insert_hole(const InodeLoc& loc, uint64_t from, uint64_t to) {
    if (to <= from) return {};
    file_extent_item fe{};
    fe.generation = t_.generation();
    fe.ram_bytes = to - from;
    fe.type = FILE_EXTENT_REG;
    fe.num_bytes = to - from;
    return t_.insert_item(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, from}, as_bytes(fe));
}

Status FsWriter::write_file(std::string_view path, std::span<const uint8_t> data, const InodeAttrs& a,
                            std::shared_ptr<const HostFileRef> source,
                            const std::vector<std::pair<uint64_t, uint64_t>>* segments) {
    BTK_ASSIGN(Parent p, parent_of(path));
    BTK_ASSIGN(auto hit, lookup_name(p.dir, p.name));
    InodeLoc loc;
    if (hit) {
        loc = hit->first;
        BTK_ASSIGN(inode_item cur, read_inode(loc));
        if ((cur.mode & S_IFMT) != S_IFREG) return fs_error(Errc::invalid_argument, path, "exists and is not a regular file");
        BTK_TRY(truncate(path, 0));
    } else {
        BTK_ASSIGN(loc, create(path, S_IFREG | (a.mode & 07777), 0));
    }
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    ii.mode = S_IFREG | (a.mode & 07777);
    ii.uid = a.uid;
    ii.gid = a.gid;
    const bool whole = !segments || (segments->size() == 1 && (*segments)[0] == std::pair<uint64_t, uint64_t>{0, data.size()});
    if (whole) {
        BTK_TRY(write_extents(loc, 0, data, ii, source));
    } else {
        // Sparse: only the data segments get extents; the gaps stay holes
        // (explicit hole extents unless the filesystem has no-holes).
        const uint64_t ss = t_.sectorsize();
        const bool holes = !(t_.fs().incompat() & FEATURE_INCOMPAT_NO_HOLES);
        uint64_t cur = 0;
        auto hole = [&](uint64_t from, uint64_t to) -> Status { return holes ? insert_hole(loc, from, to) : Status{}; };
        for (auto [s0, e0] : *segments) {
            const uint64_t s1 = s0 / ss * ss, e1 = std::min<uint64_t>(data.size(), e0);
            if (s1 < cur || e1 <= s1) continue;
            BTK_TRY(hole(cur, s1));
            BTK_TRY(write_extents(loc, s1, data.subspan(s1, e1 - s1), ii, source, true));
            cur = (e1 + ss - 1) / ss * ss;
        }
        BTK_TRY(hole(cur, (data.size() + ss - 1) / ss * ss));
    }
    ii.size = data.size();
    stamp(ii, true);
    if (a.mtime_sec) {
        ii.mtime.sec = uint64_t(*a.mtime_sec);
        ii.mtime.nsec = a.mtime_nsec;
    }
    return write_inode(loc, ii);
}

Status FsWriter::fallocate(std::string_view path, uint64_t offset, uint64_t length) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    if ((ii.mode & S_IFMT) != S_IFREG) return fs_error(Errc::invalid_argument, path, "Is not a regular file");
    if (length == 0) return fs_error(Errc::invalid_argument, path, "Invalid argument");
    const uint64_t ss = t_.sectorsize();
    const bool holes = !(t_.fs().incompat() & FEATURE_INCOMPAT_NO_HOLES);
    const uint64_t s = offset / ss * ss, e = (offset + length + ss - 1) / ss * ss;
    // What the file holds now: extents with data, and hole items.
    struct Ext {
        Key key;
        uint64_t len;
        bool hole;
    };
    std::vector<Ext> exts;
    bool has_inline = false;
    BTK_TRY(t_.for_each(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, 0}, Key{loc.ino, EXTENT_DATA_KEY, ~0ULL},
                        [&](const ItemRef& it) {
                            const auto* fe = view_at<file_extent_item>(it.data);
                            if (it.data.size() >= FILE_EXTENT_INLINE_DATA_START &&
                                it.data[offsetof(file_extent_item, type)] == FILE_EXTENT_INLINE) {
                                has_inline = true;
                                return false;
                            }
                            if (fe) exts.push_back({it.key, fe->num_bytes, fe->disk_bytenr == 0});
                            return true;
                        }));
    if (has_inline) {
        // Inline data moves to a regular extent first (an inline extent must
        // be the file's only extent).
        const Key ik{loc.ino, EXTENT_DATA_KEY, 0};
        BTK_ASSIGN(auto item, t_.lookup(loc.tree, ik));
        if (!item || item->size() < FILE_EXTENT_INLINE_DATA_START) return corruption("inode {}: inline extent vanished", loc.ino);
        const auto* fe = reinterpret_cast<const file_extent_item*>(item->data());
        std::vector<uint8_t> data(fe->ram_bytes);
        std::span<const uint8_t> payload(item->data() + FILE_EXTENT_INLINE_DATA_START,
                                         item->size() - FILE_EXTENT_INLINE_DATA_START);
        BTK_TRY(decompress(fe->compression, payload, data, t_.sectorsize()));
        data.resize(std::min<uint64_t>(data.size(), ii.size));
        ii.nbytes = ii.nbytes - std::min<uint64_t>(ii.nbytes, payload.size() == data.size() ? data.size() : fe->ram_bytes);
        BTK_TRY(t_.delete_item(loc.tree, ik));
        exts.clear();
        if (!data.empty()) {
            BTK_TRY(write_extents(loc, 0, data, ii, nullptr, true));
            exts.push_back({Key{loc.ino, EXTENT_DATA_KEY, 0}, (data.size() + ss - 1) / ss * ss, false});
        }
    }
    // Hole items inside the range go (the parts outside it come back).
    for (const auto& x : exts) {
        if (!x.hole || x.key.offset + x.len <= s || x.key.offset >= e) continue;
        BTK_TRY(t_.delete_item(loc.tree, x.key));
        BTK_TRY(insert_hole(loc, x.key.offset, std::max(x.key.offset, s)));
        BTK_TRY(insert_hole(loc, e, x.key.offset + x.len));
    }
    // Gaps in [s, e) not covered by extents with data get preallocated extents.
    std::vector<std::pair<uint64_t, uint64_t>> gaps;
    uint64_t cur = s;
    for (const auto& x : exts) {
        if (x.hole) continue;
        const uint64_t a = x.key.offset, b = x.key.offset + x.len;
        if (b <= cur) continue;
        if (a >= e) break;
        if (a > cur) gaps.push_back({cur, std::min(a, e)});
        cur = std::max(cur, b);
    }
    if (cur < e) gaps.push_back({cur, e});
    const uint64_t old_end = (ii.size + ss - 1) / ss * ss;
    if (holes && s > old_end) {
        bool covered = false;
        for (const auto& x : exts) covered |= x.key.offset + x.len >= s;
        if (!covered) BTK_TRY(insert_hole(loc, old_end, s));
    }
    for (auto [a, b] : gaps) {
        for (uint64_t at = a; at < b;) {
            BTK_ASSIGN(auto ext, t_.alloc_data(std::min<uint64_t>(b - at, MAX_EXTENT)));
            const auto [bytenr, len] = ext;
            file_extent_item fe{};
            fe.generation = t_.generation();
            fe.ram_bytes = len;
            fe.type = FILE_EXTENT_PREALLOC;
            fe.disk_bytenr = bytenr;
            fe.disk_num_bytes = len;
            fe.num_bytes = len;
            BTK_TRY(t_.insert_item(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, at}, as_bytes(fe)));
            t_.refs().add_new(bytenr, len, true, 0, RefId::data(loc.tree, loc.ino, at));
            ii.nbytes = ii.nbytes + len;
            at += len;
        }
    }
    if (offset + length > ii.size) ii.size = offset + length;
    stamp(ii, true);
    return write_inode(loc, ii);
}

Status FsWriter::symlink(std::string_view target, std::string_view path) {
    if (target.empty() || target.size() > std::min<size_t>(t_.sectorsize() - 1, max_inline_data_size(t_.nodesize())))
        return fs_error(Errc::invalid_argument, path, "File name too long");
    BTK_ASSIGN(InodeLoc loc, create(path, S_IFLNK | 0777, 0));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    std::vector<uint8_t> item(FILE_EXTENT_INLINE_DATA_START + target.size(), 0);
    auto* fe = reinterpret_cast<file_extent_item*>(item.data());
    fe->generation = t_.generation();
    fe->ram_bytes = target.size();
    fe->type = FILE_EXTENT_INLINE;
    std::memcpy(item.data() + FILE_EXTENT_INLINE_DATA_START, target.data(), target.size());
    BTK_TRY(t_.insert_item(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, 0}, item));
    ii.size = target.size();
    ii.nbytes = target.size();
    return write_inode(loc, ii);
}

Status FsWriter::mknod(std::string_view path, uint32_t mode, uint64_t rdev) {
    // On disk, device numbers use the kernel's encoding (major << 20 | minor).
    const uint64_t disk_rdev = (uint64_t(major(dev_t(rdev))) << 20) | minor(dev_t(rdev));
    BTK_ASSIGN(InodeLoc l, create(path, mode, (S_ISCHR(mode) || S_ISBLK(mode)) ? disk_rdev : 0));
    (void)l;
    return {};
}

Status FsWriter::link(std::string_view existing, std::string_view newpath) {
    BTK_ASSIGN(InodeLoc src, resolve(existing));
    BTK_ASSIGN(inode_item ii, read_inode(src));
    if ((ii.mode & S_IFMT) == S_IFDIR) return fs_error(Errc::invalid_argument, existing, "hard link not allowed for directory");
    BTK_ASSIGN(Parent p, parent_of(newpath));
    BTK_ASSIGN(auto hit, lookup_name(p.dir, p.name));
    if (hit) return fs_error(Errc::invalid_argument, newpath, "File exists");
    if (ii.nlink >= 65535) return fs_error(Errc::invalid_argument, existing, "Too many links");
    return add_link(p.dir, p.name, src, mode_to_ft(ii.mode));
}

Status FsWriter::remove(std::string_view path, bool recursive) {
    dir_cache_.clear();
    BTK_ASSIGN(Parent p, parent_of(path));
    BTK_ASSIGN(auto hit, lookup_name(p.dir, p.name));
    if (!hit) return fs_error(Errc::not_found, path, "No such file or directory");
    const InodeLoc loc = hit->first;
    if (loc.tree != p.dir.tree) return fs_error(Errc::unsupported, path, "is a subvolume (not supported)");
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    if ((ii.mode & S_IFMT) == S_IFDIR) {
        std::vector<std::string> names;
        BTK_TRY(t_.for_each(loc.tree, Key{loc.ino, DIR_INDEX_KEY, 0}, Key{loc.ino, DIR_INDEX_KEY, ~0ULL},
                            [&](const ItemRef& it) {
                                for (const auto& e : dir_entries(it.data)) names.emplace_back(e.name);
                                return true;
                            }));
        if (!names.empty() && !recursive) return fs_error(Errc::invalid_argument, path, "Directory not empty");
        std::string base(path);
        if (base.back() != '/') base += '/';
        for (const auto& n : names) BTK_TRY(remove(base + n, true));
    }
    return del_link(p.dir, p.name, loc);
}

Status FsWriter::rename(std::string_view from, std::string_view to) {
    dir_cache_.clear();
    BTK_ASSIGN(Parent src, parent_of(from));
    BTK_ASSIGN(auto hit, lookup_name(src.dir, src.name));
    if (!hit) return fs_error(Errc::not_found, from, "No such file or directory");
    const InodeLoc child = hit->first;
    if (child.tree != src.dir.tree) return fs_error(Errc::unsupported, from, "is a subvolume (not supported)");
    std::string target(to);
    if (auto t = resolve(target); t) {
        BTK_ASSIGN(inode_item ti, read_inode(*t));
        if ((ti.mode & S_IFMT) == S_IFDIR && !(t->tree == child.tree && t->ino == child.ino))
            target = target + (target.back() == '/' ? "" : "/") + src.name;
    }
    BTK_ASSIGN(Parent dst, parent_of(target));
    BTK_ASSIGN(inode_item ci, read_inode(child));
    // A directory cannot move below itself.
    if ((ci.mode & S_IFMT) == S_IFDIR) {
        InodeLoc up = dst.dir;
        for (int depth = 0; depth < 4096 && up.ino != FIRST_FREE_OBJECTID; ++depth) {
            if (up.ino == child.ino && up.tree == child.tree)
                return fs_error(Errc::invalid_argument, to, "cannot move a directory into itself");
            BTK_ASSIGN(auto k, t_.last_key_le(up.tree, Key{up.ino, INODE_REF_KEY, ~0ULL}));
            if (!k || k->objectid != up.ino || k->type != INODE_REF_KEY) break;
            up.ino = k->offset;
        }
    }
    if (dst.dir.tree == src.dir.tree && dst.dir.ino == src.dir.ino && dst.name == src.name) return {};
    BTK_ASSIGN(auto existing, lookup_name(dst.dir, dst.name));
    // Renaming one name of an inode over another name of it does nothing.
    if (existing && existing->first.tree == child.tree && existing->first.ino == child.ino) return {};
    if (existing) {
        BTK_ASSIGN(inode_item ei, read_inode(existing->first));
        if (((ei.mode & S_IFMT) == S_IFDIR) != ((ci.mode & S_IFMT) == S_IFDIR))
            return fs_error(Errc::invalid_argument, target, (ei.mode & S_IFMT) == S_IFDIR ? "Is a directory" : "Not a directory");
        BTK_TRY(remove(target, false));
    }
    BTK_TRY(add_link(dst.dir, dst.name, child, mode_to_ft(ci.mode)));
    return del_link(src.dir, src.name, child);
}

Status FsWriter::setxattr(std::string_view path, std::string_view name, std::span<const uint8_t> value) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    if (name.empty() || name.size() > 255) return fs_error(Errc::invalid_argument, name, "Numerical result out of range");
    if (sizeof(dir_item) + name.size() + value.size() + sizeof(format::item) > leaf_data_size(t_.nodesize()) / 2)
        return fs_error(Errc::invalid_argument, name, "Argument list too long");
    auto st = rmxattr(path, name);
    if (!st && st.error().code != Errc::not_found) return st;
    std::vector<uint8_t> entry(sizeof(dir_item) + name.size() + value.size());
    auto* di = reinterpret_cast<dir_item*>(entry.data());
    di->transid = t_.generation();
    di->data_len = uint16_t(value.size());
    di->name_len = uint16_t(name.size());
    di->type = FT_XATTR;
    std::memcpy(entry.data() + sizeof(dir_item), name.data(), name.size());
    if (!value.empty()) std::memcpy(entry.data() + sizeof(dir_item) + name.size(), value.data(), value.size());
    BTK_TRY(append_item(t_, loc.tree, Key{loc.ino, XATTR_ITEM_KEY, name_hash(name)}, entry));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    stamp(ii, false);
    return write_inode(loc, ii);
}

Status FsWriter::rmxattr(std::string_view path, std::string_view name) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    const Key k{loc.ino, XATTR_ITEM_KEY, name_hash(name)};
    BTK_ASSIGN(auto d, t_.lookup(loc.tree, k));
    if (d)
        for (const auto& e : dir_entries(*d))
            if (e.name == name) {
                BTK_TRY(cut_item(t_, loc.tree, k, *d, e.off, e.len));
                BTK_ASSIGN(inode_item ii, read_inode(loc));
                stamp(ii, false);
                return write_inode(loc, ii);
            }
    return fs_error(Errc::not_found, name, "No such attribute");
}

Status FsWriter::chmod(std::string_view path, uint32_t mode) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    ii.mode = (ii.mode & S_IFMT) | (mode & 07777);
    stamp(ii, false);
    return write_inode(loc, ii);
}

Status FsWriter::chown(std::string_view path, uint32_t uid, uint32_t gid) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    ii.uid = uid;
    ii.gid = gid;
    // As the kernel does: a new owner drops the set-user-ID bit and the
    // set-group-ID bit of group-executable files.
    if ((ii.mode & S_IFMT) == S_IFREG) {
        uint32_t m = ii.mode & ~uint32_t(S_ISUID);
        if (m & S_IXGRP) m &= ~uint32_t(S_ISGID);
        ii.mode = m;
    }
    stamp(ii, false);
    return write_inode(loc, ii);
}

Status FsWriter::touch(std::string_view path) {
    auto r = resolve(path);
    if (!r) {
        if (r.error().code != Errc::not_found) return std::move(r).error();
        BTK_ASSIGN(InodeLoc l, create(path, S_IFREG | 0644, 0));
        (void)l;
        return {};
    }
    BTK_ASSIGN(inode_item ii, read_inode(*r));
    stamp(ii, true);
    ii.atime = ii.mtime;
    return write_inode(*r, ii);
}

Status FsWriter::drop_extents_from(const InodeLoc& loc, uint64_t from, inode_item& ii) {
    // Extents starting at or after `from` go; one reaching past it is cut.
    std::vector<std::pair<Key, std::vector<uint8_t>>> items;
    BTK_TRY(t_.for_each(loc.tree, Key{loc.ino, EXTENT_DATA_KEY, 0}, Key{loc.ino, EXTENT_DATA_KEY, ~0ULL},
                        [&](const ItemRef& it) {
                            items.push_back({it.key, std::vector<uint8_t>(it.data.begin(), it.data.end())});
                            return true;
                        }));
    for (auto& [k, d] : items) {
        const auto* fe = view_at<file_extent_item>(d);
        if (d.size() < FILE_EXTENT_INLINE_DATA_START) return corruption("inode {}: short file extent", loc.ino);
        const uint8_t type = d[offsetof(file_extent_item, type)];
        if (type == FILE_EXTENT_INLINE) {
            if (from == 0) {
                ii.nbytes = ii.nbytes - std::min<uint64_t>(ii.nbytes, d.size() - FILE_EXTENT_INLINE_DATA_START);
                BTK_TRY(t_.delete_item(loc.tree, k));
            } else if (from < d.size() - FILE_EXTENT_INLINE_DATA_START &&
                       d[offsetof(file_extent_item, compression)] == 0) {
                const uint64_t cut = d.size() - FILE_EXTENT_INLINE_DATA_START - from;
                BTK_ASSIGN(std::span<uint8_t> nd, t_.resize_item(loc.tree, k, uint32_t(FILE_EXTENT_INLINE_DATA_START + from)));
                reinterpret_cast<file_extent_item*>(nd.data())->ram_bytes = from;
                ii.nbytes = ii.nbytes - std::min<uint64_t>(ii.nbytes, cut);
            }
            continue;
        }
        if (!fe) return corruption("inode {}: short file extent", loc.ino);
        const uint64_t len = fe->num_bytes;
        if (k.offset >= from) {
            if (fe->disk_bytenr != 0) {
                t_.refs().add(fe->disk_bytenr, fe->disk_num_bytes, true, 0,
                              RefId::data(loc.tree, loc.ino, k.offset - uint64_t(fe->offset)), -1);
                ii.nbytes = ii.nbytes - std::min<uint64_t>(ii.nbytes, len);
            }
            BTK_TRY(t_.delete_item(loc.tree, k));
        } else if (k.offset + len > from) {
            const uint64_t ss = t_.sectorsize();
            const bool with_data = fe->disk_bytenr != 0 && type == FILE_EXTENT_REG;
            // The sector holding the new end keeps only the bytes before it:
            // like the kernel, copy them to a new extent (zero tail) so that
            // growing the file later shows zeroes, not the old bytes.
            const uint64_t rel = from - k.offset;
            const uint64_t keep = with_data && rel % ss ? rel / ss * ss : (rel + ss - 1) / ss * ss;
            std::vector<uint8_t> tail;
            if (with_data && rel % ss) {
                tail.resize(rel - keep);
                BTK_TRY(read_extent_bytes(*fe, keep, tail));
            }
            if (keep == 0) {
                t_.refs().add(fe->disk_bytenr, fe->disk_num_bytes, true, 0,
                              RefId::data(loc.tree, loc.ino, k.offset - uint64_t(fe->offset)), -1);
                ii.nbytes = ii.nbytes - std::min<uint64_t>(ii.nbytes, len);
                BTK_TRY(t_.delete_item(loc.tree, k));
            } else if (keep < len) {
                BTK_ASSIGN(std::span<uint8_t> nd, t_.item_for_update(loc.tree, k));
                reinterpret_cast<file_extent_item*>(nd.data())->num_bytes = keep;
                if (fe->disk_bytenr != 0) ii.nbytes = ii.nbytes - std::min<uint64_t>(ii.nbytes, len - keep);
            }
            if (!tail.empty()) BTK_TRY(write_extents(loc, k.offset + keep, tail, ii, nullptr, true));
        }
    }
    return {};
}

Status FsWriter::read_extent_bytes(const file_extent_item& fe, uint64_t off, std::span<uint8_t> out) {
    // `off` is relative to the start of the file extent (its key offset).
    if (fe.compression == 0) return t_.read_data(fe.disk_bytenr + fe.offset + off, out);
    std::vector<uint8_t> disk(fe.disk_num_bytes), ram(fe.ram_bytes);
    BTK_TRY(t_.read_data(fe.disk_bytenr, disk));
    BTK_ASSIGN(size_t got, decompress(fe.compression, disk, ram, t_.sectorsize()));
    (void)got;
    if (fe.offset + off + out.size() > ram.size()) return corruption("file extent reaches past its decompressed data");
    std::memcpy(out.data(), ram.data() + fe.offset + off, out.size());
    return {};
}

Status FsWriter::truncate(std::string_view path, uint64_t size) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    if ((ii.mode & S_IFMT) != S_IFREG) return fs_error(Errc::invalid_argument, path, "Is not a regular file");
    const uint64_t ss = t_.sectorsize();
    const bool holes = !(t_.fs().incompat() & FEATURE_INCOMPAT_NO_HOLES);
    if (size < ii.size) {
        BTK_TRY(drop_extents_from(loc, size, ii));
    } else if (size > ii.size && holes) {
        // Without no-holes every gap is an explicit hole extent.
        BTK_TRY(insert_hole(loc, (ii.size + ss - 1) / ss * ss, (size + ss - 1) / ss * ss));
    }
    ii.size = size;
    stamp(ii, true);
    return write_inode(loc, ii);
}

Status FsWriter::chattr(std::string_view path, std::string_view change) {
    BTK_ASSIGN(InodeLoc loc, resolve(path));
    BTK_ASSIGN(inode_item ii, read_inode(loc));
    uint64_t f = ii.flags;
    if (change == "+C") {
        if ((ii.mode & S_IFMT) == S_IFREG && ii.size != 0)
            return fs_error(Errc::invalid_argument, path, "nodatacow can only be set on an empty file");
        f |= INODE_NODATACOW;
        if ((ii.mode & S_IFMT) == S_IFREG) f |= INODE_NODATASUM;
    } else if (change == "-C") {
        f &= ~INODE_NODATACOW;
        if ((ii.mode & S_IFMT) == S_IFREG && ii.size == 0) f &= ~INODE_NODATASUM;
    } else if (change == "+c") {
        f = (f | INODE_COMPRESS) & ~INODE_NOCOMPRESS;
    } else if (change == "-c") {
        f &= ~INODE_COMPRESS;
    } else {
        return make_error(Errc::invalid_argument, "unknown attribute change '{}' (use +C, -C, +c or -c)", change);
    }
    ii.flags = f;
    stamp(ii, false);
    return write_inode(loc, ii);
}

}  // namespace btk
