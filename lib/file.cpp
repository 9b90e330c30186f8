#include "file.h"

#include "compress.h"
#include "csum.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <sys/stat.h>

namespace btk {

using namespace format;

bool Inode::is_dir() const noexcept { return S_ISDIR(mode()); }
bool Inode::is_reg() const noexcept { return S_ISREG(mode()); }
bool Inode::is_symlink() const noexcept { return S_ISLNK(mode()); }

uint8_t mode_to_ft(uint32_t mode) noexcept {
    switch (mode & S_IFMT) {
        case S_IFREG: return FT_REG_FILE;
        case S_IFDIR: return FT_DIR;
        case S_IFCHR: return FT_CHRDEV;
        case S_IFBLK: return FT_BLKDEV;
        case S_IFIFO: return FT_FIFO;
        case S_IFSOCK: return FT_SOCK;
        case S_IFLNK: return FT_SYMLINK;
    }
    return FT_UNKNOWN;
}

namespace {

// Decodes the entries packed in a DIR_ITEM, DIR_INDEX or XATTR_ITEM.
struct RawDirEntry {
    const dir_item* di;
    std::string_view name;
    std::span<const uint8_t> data;
};

Result<std::vector<RawDirEntry>> parse_dir_items(std::span<const uint8_t> item, const Key& k) {
    std::vector<RawDirEntry> out;
    size_t off = 0;
    while (off < item.size()) {
        const auto* di = view_at<dir_item>(item, off);
        if (!di)
            return corruption("item ({} {} {}): truncated dir item at byte {}", k.objectid, k.type, k.offset, off);
        const size_t nl = di->name_len, dl = di->data_len;
        const size_t start = off + sizeof(dir_item);
        if (start + nl + dl > item.size())
            return corruption("item ({} {} {}): name_len {} + data_len {} overrun the item ({} bytes)",
                              k.objectid, k.type, k.offset, nl, dl, item.size());
        out.push_back({di, std::string_view(reinterpret_cast<const char*>(item.data() + start), nl),
                       item.subspan(start + nl, dl)});
        off = start + nl + dl;
    }
    return out;
}

DirEntry to_entry(const RawDirEntry& r, uint64_t index) {
    DirEntry e;
    e.name = std::string(r.name);
    e.location_disk = r.di->location;
    e.location = Key::from_disk(r.di->location);
    e.type = r.di->type;
    e.index = index;
    return e;
}

}  // namespace

Result<RootRef> FileSystemView::subvol_root(uint64_t subvol) {
    if (auto it = roots_.find(subvol); it != roots_.end()) return it->second;
    if (subvol != FS_TREE_OBJECTID && (subvol < FIRST_FREE_OBJECTID || subvol > LAST_FREE_OBJECTID))
        return make_error(Errc::invalid_argument, "{} is not a subvolume id", subvol);
    BTK_ASSIGN(RootRef r, fs_.find_root(subvol));
    roots_[subvol] = r;
    return r;
}

Result<uint64_t> FileSystemView::subvol_root_dir(uint64_t subvol) {
    BTK_ASSIGN(auto p, fs_.find_root_item(subvol));
    root_item ri{};
    std::memcpy(&ri, p.second.data(), std::min(p.second.size(), sizeof(ri)));
    return ri.root_dirid.get();
}

Result<uint64_t> FileSystemView::default_subvol() {
    const Key k{ROOT_TREE_DIR_OBJECTID, DIR_ITEM_KEY, name_hash("default")};
    auto item = lookup_item(fs_, fs_.tree_root(), k);
    if (!item) {
        if (item.error().code == Errc::not_found) return FS_TREE_OBJECTID;
        return std::move(item).error();
    }
    BTK_ASSIGN(auto ents, parse_dir_items(*item, k));
    for (const auto& e : ents)
        if (e.name == "default") return e.di->location.objectid.get();
    return FS_TREE_OBJECTID;
}

Result<Inode> FileSystemView::inode(uint64_t subvol, uint64_t ino) {
    BTK_ASSIGN(RootRef root, subvol_root(subvol));
    auto data = lookup_item(fs_, root, Key{ino, INODE_ITEM_KEY, 0});
    if (!data) {
        if (data.error().code == Errc::not_found)
            return make_error(Errc::not_found, "inode {} not found in subvolume {}", ino, subvol);
        return std::move(data).error();
    }
    if (data->size() < sizeof(inode_item))
        return corruption("subvolume {} inode {}: inode item has {} bytes, expected {}", subvol, ino,
                          data->size(), sizeof(inode_item));
    Inode i;
    i.subvol = subvol;
    i.ino = ino;
    std::memcpy(&i.item, data->data(), sizeof(inode_item));
    return i;
}

Result<std::vector<DirEntry>> FileSystemView::list_dir(uint64_t subvol, uint64_t dir) {
    BTK_ASSIGN(RootRef root, subvol_root(subvol));
    std::vector<DirEntry> out;
    Status bad;
    const size_t damage_before = damage_.size();
    BTK_TRY(for_each_item(fs_, root, Key{dir, DIR_INDEX_KEY, 0}, Key{dir, DIR_INDEX_KEY, ~0ULL},
                          [&](const Key& k, std::span<const uint8_t> d) {
                              auto ents = parse_dir_items(d, k);
                              if (!ents) {
                                  if (salvage_) {
                                      damage_.push_back(ents.error().message);
                                      return true;
                                  }
                                  bad = std::move(ents).error();
                                  return false;
                              }
                              for (const auto& e : *ents) out.push_back(to_entry(e, k.offset));
                              return true;
                          },
                          damage_sink()));
    if (!bad) return std::move(bad).error();
    if (salvage_ && damage_.size() > damage_before) {
        // The index lost blocks: recover the names from the DIR_ITEM (hash) side.
        std::set<std::string> have;
        for (const auto& e : out) have.insert(e.name);
        BTK_TRY(for_each_item(fs_, root, Key{dir, DIR_ITEM_KEY, 0}, Key{dir, DIR_ITEM_KEY, ~0ULL},
                              [&](const Key& k, std::span<const uint8_t> d) {
                                  auto ents = parse_dir_items(d, k);
                                  if (!ents) return true;
                                  for (const auto& e : *ents)
                                      if (have.insert(std::string(e.name)).second) out.push_back(to_entry(e, 0));
                                  return true;
                              },
                              damage_sink()));
    }
    return out;
}

bool FileSystemView::subvol_entry_live(uint64_t parent, uint64_t dir_ino, const DirEntry& e) {
    auto ref = lookup_item(fs_, fs_.tree_root(), Key{parent, ROOT_REF_KEY, e.location.objectid});
    if (!ref) return false;
    const auto* rr = view_at<root_ref>(*ref);
    if (!rr || rr->dirid != dir_ino) return false;
    const size_t nl = rr->name_len;
    if (sizeof(root_ref) + nl > ref->size()) return false;
    return std::string_view(reinterpret_cast<const char*>(ref->data() + sizeof(root_ref)), nl) == e.name;
}

Result<DirEntry> FileSystemView::lookup(uint64_t subvol, uint64_t dir, std::string_view name) {
    BTK_ASSIGN(RootRef root, subvol_root(subvol));
    const Key k{dir, DIR_ITEM_KEY, name_hash(name)};
    auto item = lookup_item(fs_, root, k);
    if (!item) {
        if (item.error().code == Errc::not_found)
            return make_error(Errc::not_found, "no such file or directory: '{}'", name);
        return std::move(item).error();
    }
    BTK_ASSIGN(auto ents, parse_dir_items(*item, k));
    for (const auto& e : ents)
        if (e.name == name) return to_entry(e, 0);
    return make_error(Errc::not_found, "no such file or directory: '{}'", name);
}

Result<Location> FileSystemView::resolve_path(uint64_t subvol, std::string_view path) {
    BTK_ASSIGN(uint64_t ino, subvol_root_dir(subvol));
    Location loc{subvol, ino};
    size_t pos = 0;
    std::string walked;
    int depth = 0;
    while (pos <= path.size()) {
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        std::string_view part = path.substr(pos, end - pos);
        pos = end + 1;
        if (part.empty() || part == ".") continue;
        if (++depth > 4096) return make_error(Errc::invalid_argument, "path too deep");
        if (loc.placeholder) {
            if (part == "..") {
                loc.placeholder = false;  // back to the directory holding it
                continue;
            }
            return make_error(Errc::not_found, "no such file or directory: '{}/{}'", walked, part);
        }
        if (part == "..") {
            // Parent through the inode ref (or the subvolume back reference).
            BTK_ASSIGN(RootRef root, subvol_root(loc.subvol));
            BTK_ASSIGN(uint64_t rootdir, subvol_root_dir(loc.subvol));
            if (loc.ino == rootdir) {
                if (loc.subvol == FS_TREE_OBJECTID) continue;
                TreeCursor c(fs_, fs_.tree_root());
                BTK_ASSIGN(bool ok, c.seek(Key{loc.subvol, ROOT_BACKREF_KEY, 0}));
                if (!ok || c.key().objectid != loc.subvol || c.key().type != ROOT_BACKREF_KEY)
                    return corruption("subvolume {} has no back reference", loc.subvol);
                const auto* rr = view_at<root_ref>(c.data());
                if (!rr) return corruption("subvolume {}: short root backref", loc.subvol);
                loc = {c.key().offset, rr->dirid};
                continue;
            }
            TreeCursor c(fs_, root);
            BTK_ASSIGN(bool ok, c.seek(Key{loc.ino, INODE_REF_KEY, 0}));
            if (!ok || c.key().objectid != loc.ino || c.key().type != INODE_REF_KEY)
                return corruption("inode {} has no parent reference", loc.ino);
            loc.ino = c.key().offset;
            continue;
        }
        BTK_ASSIGN(Inode dir, inode(loc.subvol, loc.ino));
        if (!dir.is_dir())
            return make_error(Errc::invalid_argument, "not a directory: '{}'", walked.empty() ? "/" : walked);
        auto e = lookup(loc.subvol, loc.ino, part);
        if (!e) {
            if (e.error().code == Errc::not_found)
                return make_error(Errc::not_found, "no such file or directory: '{}/{}'", walked, part);
            return std::move(e).error();
        }
        walked += "/";
        walked += part;
        if (e->is_subvol()) {
            if (!subvol_entry_live(loc.subvol, loc.ino, *e)) {
                loc.placeholder = true;  // stays at the parent directory
                continue;
            }
            loc.subvol = e->location.objectid;
            BTK_ASSIGN(loc.ino, subvol_root_dir(loc.subvol));
        } else {
            loc.ino = e->location.objectid;
        }
    }
    return loc;
}

static Result<FileExtent> decode_extent(const Key& k, std::span<const uint8_t> d, uint64_t ino) {
    FileExtent e;
    e.file_offset = k.offset;
    if (d.size() < FILE_EXTENT_INLINE_DATA_START)
        return corruption("inode {} extent at {}: item too small ({} bytes)", ino, k.offset, d.size());
    const auto* fe = reinterpret_cast<const file_extent_item*>(d.data());
    e.type = fe->type;
    e.compression = fe->compression;
    e.ram_bytes = fe->ram_bytes;
    if (fe->encryption || fe->other_encoding)
        return make_error(Errc::unsupported, "inode {} extent at {}: encoded extent (encryption {}, other {})", ino,
                          k.offset, fe->encryption, fe->other_encoding.get());
    if (e.type == FILE_EXTENT_INLINE) {
        e.inline_data = d.subspan(FILE_EXTENT_INLINE_DATA_START);
        e.num_bytes = e.compression ? e.ram_bytes : e.inline_data.size();
        return e;
    }
    if (e.type != FILE_EXTENT_REG && e.type != FILE_EXTENT_PREALLOC)
        return corruption("inode {} extent at {}: unknown extent type {}", ino, k.offset, e.type);
    if (d.size() < sizeof(file_extent_item))
        return corruption("inode {} extent at {}: item too small ({} bytes)", ino, k.offset, d.size());
    e.disk_bytenr = fe->disk_bytenr;
    e.disk_num_bytes = fe->disk_num_bytes;
    e.offset = fe->offset;
    e.num_bytes = fe->num_bytes;
    if (e.file_offset + e.num_bytes < e.file_offset)
        return corruption("inode {} extent at {}: num_bytes {} overflows", ino, k.offset, e.num_bytes);
    return e;
}

Status FileSystemView::for_each_extent(uint64_t subvol, uint64_t ino,
                                       const std::function<bool(const FileExtent&)>& fn) {
    BTK_ASSIGN(RootRef root, subvol_root(subvol));
    Status bad;
    BTK_TRY(for_each_item(fs_, root, Key{ino, EXTENT_DATA_KEY, 0}, Key{ino, EXTENT_DATA_KEY, ~0ULL},
                          [&](const Key& k, std::span<const uint8_t> d) {
                              auto e = decode_extent(k, d, ino);
                              if (!e) {
                                  bad = std::move(e).error();
                                  return false;
                              }
                              return fn(*e);
                          },
                          damage_sink()));
    return bad;
}

Status FileSystemView::lookup_csums(uint64_t start, uint64_t n, std::vector<uint8_t>& csums,
                                    std::vector<bool>& have) {
    const uint32_t ss = fs_.sectorsize(), cs = fs_.csum_size();
    csums.assign(n * cs, 0);
    have.assign(n, false);
    if (csum_root_missing_) return {};
    if (!csum_root_) {
        auto r = fs_.find_root(CSUM_TREE_OBJECTID);
        if (!r) {
            if (r.error().code != Errc::not_found) return std::move(r).error();
            csum_root_missing_ = true;
            return {};
        }
        csum_root_ = *r;
    }
    const uint64_t end = start + n * ss;
    TreeCursor c(fs_, *csum_root_);
    BTK_ASSIGN(bool ok, c.seek_le(Key{EXTENT_CSUM_OBJECTID, EXTENT_CSUM_KEY, start}));
    if (!ok) {
        BTK_ASSIGN(ok, c.first());
    }
    while (ok) {
        const Key k = c.key();
        if (k.objectid != EXTENT_CSUM_OBJECTID || k.type != EXTENT_CSUM_KEY) {
            if (k > Key{EXTENT_CSUM_OBJECTID, EXTENT_CSUM_KEY, 0}) break;
            BTK_ASSIGN(ok, c.next());
            continue;
        }
        if (k.offset >= end) break;
        const auto d = c.data();
        const uint64_t item_sectors = d.size() / cs;
        for (uint64_t i = 0; i < item_sectors; ++i) {
            const uint64_t addr = k.offset + i * ss;
            if (addr < start) continue;
            if (addr >= end) break;
            const uint64_t idx = (addr - start) / ss;
            std::memcpy(csums.data() + idx * cs, d.data() + i * cs, cs);
            have[idx] = true;
        }
        BTK_ASSIGN(ok, c.next());
    }
    return {};
}

Status FileSystemView::read_data(uint64_t logical, std::span<uint8_t> out) {
    if (out.empty()) return {};
    const uint32_t ss = fs_.sectorsize(), cs = fs_.csum_size();
    const uint64_t start = logical / ss * ss;
    const uint64_t end = (logical + out.size() + ss - 1) / ss * ss;
    const uint64_t n = (end - start) / ss;
    std::vector<uint8_t> csums;
    std::vector<bool> have;
    BTK_TRY(lookup_csums(start, n, csums, have));
    std::vector<uint8_t> buf(end - start);
    const int copies = fs_.num_copies(start);
    std::string first_problem;
    for (int m = 0; m < copies; ++m) {
        if (auto s = fs_.read_logical(start, buf, m); !s) {
            if (first_problem.empty()) first_problem = s.error().message;
            continue;
        }
        bool good = true;
        uint64_t verified = 0;
        for (uint64_t i = 0; i < n && good; ++i) {
            if (!have[i]) continue;
            uint8_t c[32];
            csum_compute(fs_.csum_type(), {buf.data() + i * ss, ss}, c);
            if (std::memcmp(c, csums.data() + i * cs, cs) != 0) {
                good = false;
                ++data_stats_.csum_mismatches;
                if (first_problem.empty())
                    first_problem = fmt::format("data checksum mismatch at logical {} (copy {})", start + i * ss, m + 1);
            } else {
                ++verified;
            }
        }
        if (!good) continue;
        data_stats_.verified_sectors += verified;
        if (m > 0) ++data_stats_.mirror_fallbacks;
        std::memcpy(out.data(), buf.data() + (logical - start), out.size());
        return {};
    }
    return corruption("reading data at logical {} ({} bytes), all {} copies failed: {}", logical, out.size(), copies,
                      first_problem);
}

Result<std::vector<uint8_t>> FileSystemView::read_disk_extent(uint64_t bytenr, uint64_t len) {
    std::vector<uint8_t> buf(len);
    BTK_TRY(read_data(bytenr, buf));
    return buf;
}

// Compressed extents are at most 128 KiB on disk and in memory; allow slack
// for hostile images but refuse absurd sizes before allocating.
static constexpr uint64_t kMaxCompressedExtent = 16ull << 20;

Status FileSystemView::read_extent_range(const FileExtent& e, uint64_t pos, std::span<uint8_t> out) {
    std::fill(out.begin(), out.end(), 0);
    if (out.empty()) return {};
    const uint64_t rel = pos - e.file_offset;
    if (e.type == FILE_EXTENT_INLINE) {
        std::span<const uint8_t> src = e.inline_data;
        std::vector<uint8_t> plain;
        if (e.compression) {
            if (e.ram_bytes > kMaxCompressedExtent)
                return corruption("inline extent ram_bytes {} too large", e.ram_bytes);
            plain.resize(e.ram_bytes);
            BTK_TRY(decompress(e.compression, e.inline_data, plain, fs_.sectorsize()));
            src = plain;
        }
        if (rel < src.size()) {
            const size_t n = std::min<uint64_t>(out.size(), src.size() - rel);
            std::memcpy(out.data(), src.data() + rel, n);
        }
        return {};
    }
    if (e.type == FILE_EXTENT_PREALLOC || e.disk_bytenr == 0) return {};
    if (!e.compression) {
        if (e.offset + rel + out.size() > e.disk_num_bytes && e.disk_num_bytes)
            return corruption("extent at file offset {}: range beyond disk extent {} (+{})", e.file_offset,
                              e.disk_bytenr, e.disk_num_bytes);
        return read_data(e.disk_bytenr + e.offset + rel, out);
    }
    if (e.disk_num_bytes > kMaxCompressedExtent || e.ram_bytes > kMaxCompressedExtent)
        return corruption("compressed extent {} has sizes {} / {} beyond any valid extent", e.disk_bytenr,
                          e.disk_num_bytes, e.ram_bytes);
    if (cached_bytenr_ != e.disk_bytenr || cached_plain_.size() != e.ram_bytes) {
        BTK_ASSIGN(auto raw, read_disk_extent(e.disk_bytenr, e.disk_num_bytes));
        cached_plain_.assign(e.ram_bytes, 0);
        cached_bytenr_ = 0;
        BTK_TRY(decompress(e.compression, raw, cached_plain_, fs_.sectorsize()));
        cached_bytenr_ = e.disk_bytenr;
    }
    const uint64_t start = e.offset + rel;
    if (start < cached_plain_.size()) {
        const size_t n = std::min<uint64_t>(out.size(), cached_plain_.size() - start);
        std::memcpy(out.data(), cached_plain_.data() + start, n);
    }
    return {};
}

Status FileSystemView::read(const Inode& in, uint64_t offset, std::span<uint8_t> out) {
    std::fill(out.begin(), out.end(), 0);
    const uint64_t end = offset + out.size();
    BTK_ASSIGN(RootRef root, subvol_root(in.subvol));
    TreeCursor c(fs_, root);
    BTK_ASSIGN(bool ok, c.seek_le(Key{in.ino, EXTENT_DATA_KEY, offset}));
    if (!ok || c.key().objectid != in.ino || c.key().type != EXTENT_DATA_KEY) {
        BTK_ASSIGN(ok, c.seek(Key{in.ino, EXTENT_DATA_KEY, 0}));
    }
    while (ok) {
        const Key k = c.key();
        if (k.objectid != in.ino || k.type != EXTENT_DATA_KEY || k.offset >= end) break;
        BTK_ASSIGN(FileExtent e, decode_extent(k, c.data(), in.ino));
        const uint64_t a = std::max(offset, e.file_offset);
        const uint64_t b = std::min(end, e.file_offset + e.num_bytes);
        if (a < b) BTK_TRY(read_extent_range(e, a, out.subspan(a - offset, b - a)));
        BTK_ASSIGN(ok, c.next());
    }
    return {};
}

Result<std::string> FileSystemView::read_symlink(uint64_t subvol, uint64_t ino) {
    BTK_ASSIGN(Inode in, inode(subvol, ino));
    if (in.size() > 65536) return corruption("symlink inode {} has size {}", ino, in.size());
    std::string s(in.size(), '\0');
    BTK_TRY(read(in, 0, {reinterpret_cast<uint8_t*>(s.data()), s.size()}));
    return s;
}

Result<std::vector<std::pair<std::string, std::string>>> FileSystemView::xattrs(uint64_t subvol, uint64_t ino) {
    BTK_ASSIGN(RootRef root, subvol_root(subvol));
    std::vector<std::pair<std::string, std::string>> out;
    Status bad;
    BTK_TRY(for_each_item(fs_, root, Key{ino, XATTR_ITEM_KEY, 0}, Key{ino, XATTR_ITEM_KEY, ~0ULL},
                          [&](const Key& k, std::span<const uint8_t> d) {
                              auto ents = parse_dir_items(d, k);
                              if (!ents) {
                                  bad = std::move(ents).error();
                                  return false;
                              }
                              for (const auto& e : *ents)
                                  out.emplace_back(std::string(e.name),
                                                   std::string(e.data.begin(), e.data.end()));
                              return true;
                          },
                          damage_sink()));
    if (!bad) return std::move(bad).error();
    return out;
}

Result<uint64_t> FileSystemView::resolve_subvol_arg(std::string_view arg) {
    if (!arg.empty() && std::all_of(arg.begin(), arg.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        uint64_t id = 0;
        for (char ch : arg) {
            if (id > (~0ULL - 9) / 10) return make_error(Errc::invalid_argument, "subvolume id '{}' too large", arg);
            id = id * 10 + uint64_t(ch - '0');
        }
        BTK_TRY(subvol_root(id));
        return id;
    }
    BTK_ASSIGN(Location loc, resolve_path(FS_TREE_OBJECTID, arg));
    BTK_ASSIGN(uint64_t rootdir, subvol_root_dir(loc.subvol));
    if (loc.ino != rootdir) return make_error(Errc::invalid_argument, "'{}' is not a subvolume", arg);
    return loc.subvol;
}

}  // namespace btk
