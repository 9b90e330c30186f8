// inode-resolve, logical-resolve, subvolid-resolve and list-subvolumes, read
// from the image (see inspect_resolve.h).
#include "inspect_resolve.h"

#include "file.h"
#include "fs.h"
#include "out.h"
#include "print_tree.h"
#include "tree.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

namespace btk {

using namespace format;

namespace {

// Longest chain of directories walked when building a path; deeper chains
// (or loops) in a hostile image are reported instead of followed.
constexpr int kMaxPathDepth = 4096;
// Items visited while looking for one extent's references.
constexpr uint64_t kMaxRefItems = 1ull << 22;
// File extent items examined for one EXTENT_DATA_REF.
constexpr uint64_t kMaxExtentItemsPerRef = 1ull << 20;
// Subvolume x candidate lookups done by one logical-resolve.
constexpr uint64_t kMaxProbes = 1ull << 26;

Result<std::unique_ptr<Filesystem>> open_image(const std::vector<std::string>& devices) {
    if (devices.empty()) return make_error(Errc::invalid_argument, "no image or device given");
    OpenOptions oo;
    oo.cache_bytes = 64ull << 20;
    return Filesystem::open(devices, oo);
}

int report_open_error(const Error& e, const std::vector<std::string>& devices, std::FILE* err) {
    fmt::print(err, "ERROR: cannot open {}: {}\n", devices.empty() ? std::string("(none)") : devices[0], e.message);
    return 2;
}

// One name of an inode: the directory holding it and the name in it.
struct RefName {
    uint64_t parent = 0;
    std::string name;
};

// The names packed in an INODE_REF item (key offset = parent directory).
Status parse_inode_ref_item(const Key& k, std::span<const uint8_t> d, std::vector<RefName>& outv) {
    size_t off = 0;
    while (off < d.size()) {
        const auto* r = view_at<inode_ref>(d, off);
        if (!r) return corruption("inode {} ref item ({}): truncated entry at byte {}", k.objectid, k.offset, off);
        const size_t start = off + sizeof(inode_ref);
        const size_t nl = r->name_len;
        if (nl > d.size() - start)
            return corruption("inode {} ref item ({}): name_len {} overruns the item ({} bytes)", k.objectid, k.offset,
                              nl, d.size());
        outv.push_back({k.offset, std::string(reinterpret_cast<const char*>(d.data() + start), nl)});
        off = start + nl;
    }
    return {};
}

// The names packed in an INODE_EXTREF item.
Status parse_inode_extref_item(const Key& k, std::span<const uint8_t> d, std::vector<RefName>& outv) {
    size_t off = 0;
    while (off < d.size()) {
        const auto* r = view_at<inode_extref>(d, off);
        if (!r)
            return corruption("inode {} extref item ({}): truncated entry at byte {}", k.objectid, k.offset, off);
        const size_t start = off + sizeof(inode_extref);
        const size_t nl = r->name_len;
        if (nl > d.size() - start)
            return corruption("inode {} extref item ({}): name_len {} overruns the item ({} bytes)", k.objectid,
                              k.offset, nl, d.size());
        outv.push_back({r->parent_objectid.get(), std::string(reinterpret_cast<const char*>(d.data() + start), nl)});
        off = start + nl;
    }
    return {};
}

// First name of one INODE_REF item.
Result<RefName> first_name_of(const Key& k, std::span<const uint8_t> d) {
    const auto* r = view_at<inode_ref>(d);
    if (!r) return corruption("inode {} ref item ({}): too small ({} bytes)", k.objectid, k.offset, d.size());
    const size_t nl = r->name_len;
    if (nl > d.size() - sizeof(inode_ref))
        return corruption("inode {} ref item ({}): name_len {} overruns the item ({} bytes)", k.objectid, k.offset, nl,
                          d.size());
    return RefName{k.offset, std::string(reinterpret_cast<const char*>(d.data() + sizeof(inode_ref)), nl)};
}

// Every name of inode `ino`: INODE_REF items in key order, then INODE_EXTREF
// items in key order (the order the kernel's INO_PATHS walks them).
Result<std::vector<RefName>> inode_names(Filesystem& fs, const RootRef& root, uint64_t ino) {
    std::vector<RefName> names;
    Status bad;
    BTK_TRY(for_each_item(fs, root, Key{ino, INODE_REF_KEY, 0}, Key{ino, INODE_EXTREF_KEY, ~0ULL},
                          [&](const Key& k, std::span<const uint8_t> d) {
                              Status s = k.type == INODE_REF_KEY ? parse_inode_ref_item(k, d, names)
                                                                 : parse_inode_extref_item(k, d, names);
                              if (!s) {
                                  bad = std::move(s);
                                  return false;
                              }
                              return true;
                          }));
    if (!bad) return std::move(bad).error();
    return names;
}

// Path of one name of an inode inside its subvolume, without a leading "/":
// the name, then for each directory above it the first name of its first
// INODE_REF, up to the directory whose reference points at itself (the
// subvolume's root directory).
Result<std::string> ref_to_path(Filesystem& fs, const RootRef& root, const RefName& ref) {
    std::vector<std::string> comps{ref.name};
    std::set<uint64_t> seen;
    uint64_t cur = ref.parent;
    for (int depth = 0;; ++depth) {
        if (depth > kMaxPathDepth)
            return corruption("path of directory {} is deeper than {} levels", ref.parent, kMaxPathDepth);
        TreeCursor c(fs, root);
        BTK_ASSIGN(bool ok, c.seek(Key{cur, INODE_REF_KEY, 0}));
        if (!ok || c.key().objectid != cur || c.key().type != INODE_REF_KEY)
            return make_error(Errc::not_found, "directory inode {} has no inode reference", cur);
        BTK_ASSIGN(RefName up, first_name_of(c.key(), c.data()));
        if (up.parent == cur) break;
        if (!seen.insert(cur).second) return corruption("directory inode {} is its own ancestor", cur);
        comps.push_back(std::move(up.name));
        cur = up.parent;
    }
    std::string path;
    for (auto it = comps.rbegin(); it != comps.rend(); ++it) {
        if (!path.empty()) path += '/';
        path += *it;
    }
    return path;
}

// Path of directory `dirid` inside a tree as the kernel's INO_LOOKUP gives it:
// "" for the root directory (256), else "a/b/" with a trailing slash. Walks
// the last INODE_REF of each directory up to 256.
Result<std::string> dir_path_in_tree(Filesystem& fs, const RootRef& root, uint64_t dirid) {
    if (dirid == FIRST_FREE_OBJECTID) return std::string();
    std::vector<std::string> comps;
    std::set<uint64_t> seen;
    uint64_t cur = dirid;
    for (int depth = 0;; ++depth) {
        if (depth > kMaxPathDepth)
            return corruption("path of directory {} is deeper than {} levels", dirid, kMaxPathDepth);
        if (!seen.insert(cur).second) return corruption("directory inode {} is its own ancestor", cur);
        TreeCursor c(fs, root);
        BTK_ASSIGN(bool ok, c.seek_le(Key{cur, INODE_REF_KEY, ~0ULL}));
        if (!ok || c.key().objectid != cur || c.key().type != INODE_REF_KEY)
            return make_error(Errc::not_found, "directory inode {} not found in tree {}", cur, root.objectid);
        BTK_ASSIGN(RefName up, first_name_of(c.key(), c.data()));
        comps.push_back(std::move(up.name));
        if (up.parent == FIRST_FREE_OBJECTID) break;
        cur = up.parent;
    }
    std::string path;
    for (auto it = comps.rbegin(); it != comps.rend(); ++it) {
        path += *it;
        path += '/';
    }
    return path;
}

// Path of a subvolume relative to the top level ("" for the top level),
// following the first ROOT_BACKREF of each subvolume up to tree 5.
Result<std::string> subvol_path(Filesystem& fs, uint64_t subvol) {
    std::vector<std::string> segs;
    std::set<uint64_t> seen;
    uint64_t cur = subvol;
    for (int depth = 0; cur != FS_TREE_OBJECTID; ++depth) {
        if (depth > kMaxPathDepth) return corruption("subvolume {} is nested deeper than {} levels", subvol, kMaxPathDepth);
        if (!seen.insert(cur).second) return corruption("subvolume {} is its own ancestor", cur);
        TreeCursor c(fs, fs.tree_root());
        BTK_ASSIGN(bool ok, c.seek(Key{cur, ROOT_BACKREF_KEY, 0}));
        if (!ok || c.key().objectid != cur || c.key().type != ROOT_BACKREF_KEY)
            return make_error(Errc::not_found, "subvolume {} has no back reference (not found or deleted)", cur);
        const Key k = c.key();
        const auto d = c.data();
        const auto* rr = view_at<root_ref>(d);
        if (!rr) return corruption("subvolume {}: root backref item too small ({} bytes)", cur, d.size());
        const size_t nl = rr->name_len;
        if (nl > d.size() - sizeof(root_ref))
            return corruption("subvolume {}: root backref name_len {} overruns the item ({} bytes)", cur, nl, d.size());
        std::string name(reinterpret_cast<const char*>(d.data() + sizeof(root_ref)), nl);
        const uint64_t parent = k.offset, dirid = rr->dirid;
        std::string seg;
        if (dirid != FIRST_FREE_OBJECTID) {
            auto proot = fs.find_root(parent);
            if (!proot) return std::move(proot).error().context(fmt::format("parent of subvolume {}", cur));
            BTK_ASSIGN(seg, dir_path_in_tree(fs, *proot, dirid));
        }
        seg += name;
        segs.push_back(std::move(seg));
        cur = parent;
    }
    std::string path;
    for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (!path.empty()) path += '/';
        path += *it;
    }
    return path;
}

// All paths of an inode, in INO_PATHS order; names whose path cannot be
// built are reported through `on_error`.
Result<std::vector<std::string>> inode_paths(Filesystem& fs, const RootRef& root, uint64_t ino,
                                             const std::function<void(const Error&)>& on_error) {
    BTK_ASSIGN(auto names, inode_names(fs, root, ino));
    std::vector<std::string> paths;
    for (const auto& n : names) {
        auto p = ref_to_path(fs, root, n);
        if (!p) {
            on_error(p.error());
            continue;
        }
        paths.push_back(std::move(*p));
    }
    return paths;
}

Result<uint64_t> choose_subvol(FileSystemView& v, const std::optional<std::string>& arg) {
    if (arg) return v.resolve_subvol_arg(*arg);
    return v.default_subvol();
}

// ---------------------------------------------------------------------------
// Subvolume table (root items and back references of the root tree)

struct SubvolInfo {
    uint64_t id = 0;
    bool has_item = false;
    uint64_t root_offset = 0;  // key offset of the ROOT_ITEM (snapshot: creation transid)
    uint64_t flags = 0;
    uint64_t gen = 0;
    uint64_t ogen = 0;
    int64_t otime = 0;
    uint32_t refs = 1;
    uint8_t uuid[UUID_SIZE] = {};
    uint8_t puuid[UUID_SIZE] = {};
    uint8_t ruuid[UUID_SIZE] = {};
    uint64_t ref_tree = 0;  // parent subvolume (from ROOT_BACKREF)
    uint64_t dir_id = 0;
    std::string name;
    // Filled later.
    std::string path;       // dir path in parent + name
    std::string full_path;
    uint64_t top_id = 0;
    bool deleted = false;
};

// Reads every ROOT_ITEM (ids 5 and 256..) and ROOT_BACKREF of the root tree,
// merging them per subvolume the way progs' list does (later non-zero values
// replace earlier ones). Damaged items are reported and skipped.
Result<std::map<uint64_t, SubvolInfo>> read_subvols(Filesystem& fs, std::FILE* err, bool& damaged) {
    std::map<uint64_t, SubvolInfo> subs;
    BTK_TRY(for_each_item(
        fs, fs.tree_root(), Key{FS_TREE_OBJECTID, 0, 0}, Key{LAST_FREE_OBJECTID, 0xff, ~0ULL},
        [&](const Key& k, std::span<const uint8_t> d) {
            if (k.type == ROOT_ITEM_KEY && (k.objectid >= FIRST_FREE_OBJECTID || k.objectid == FS_TREE_OBJECTID)) {
                if (d.size() < ROOT_ITEM_V1_SIZE) {
                    fmt::print(err, "ERROR: root item of subvolume {} too small ({} bytes), skipped\n", k.objectid,
                               d.size());
                    damaged = true;
                    return true;
                }
                root_item ri{};
                std::memcpy(&ri, d.data(), std::min(d.size(), sizeof(ri)));
                const bool full = d.size() >= sizeof(root_item);
                auto& s = subs[k.objectid];
                s.id = k.objectid;
                s.has_item = true;
                s.refs = ri.refs;
                if (k.offset) s.root_offset = k.offset;
                if (ri.flags.get()) s.flags = ri.flags;
                if (ri.generation.get()) s.gen = ri.generation;
                const uint64_t ogen = full ? ri.otransid.get() : 0;
                if (ogen) s.ogen = ogen;
                if (!s.ogen && s.root_offset) s.ogen = s.root_offset;
                const int64_t otime = full ? int64_t(ri.otime.sec.get()) : 0;
                if (otime) s.otime = otime;
                if (full) {
                    std::memcpy(s.uuid, ri.uuid, UUID_SIZE);
                    std::memcpy(s.puuid, ri.parent_uuid, UUID_SIZE);
                    std::memcpy(s.ruuid, ri.received_uuid, UUID_SIZE);
                } else {
                    std::memset(s.uuid, 0, UUID_SIZE);
                    std::memset(s.puuid, 0, UUID_SIZE);
                    std::memset(s.ruuid, 0, UUID_SIZE);
                }
            } else if (k.type == ROOT_BACKREF_KEY) {
                const auto* rr = view_at<root_ref>(d);
                const size_t nl = rr ? size_t(rr->name_len) : 0;
                if (!rr || nl > d.size() - sizeof(root_ref)) {
                    fmt::print(err, "ERROR: root backref ({} {}) damaged ({} bytes), skipped\n", k.objectid, k.offset,
                               d.size());
                    damaged = true;
                    return true;
                }
                auto& s = subs[k.objectid];
                s.id = k.objectid;
                if (nl) s.name.assign(reinterpret_cast<const char*>(d.data() + sizeof(root_ref)), nl);
                if (k.offset) s.ref_tree = k.offset;
                if (rr->dirid.get()) s.dir_id = rr->dirid;
            }
            return true;
        }));
    return subs;
}

// Fills path/full_path/top_id/deleted of every entry (progs' lookup_ino_path
// and resolve_root with the top level as the mount).
void resolve_subvol_paths(Filesystem& fs, std::map<uint64_t, SubvolInfo>& subs, std::FILE* err, bool& damaged) {
    for (auto& [id, s] : subs) {
        if (id != FS_TREE_OBJECTID && s.has_item && s.refs == 0) s.ref_tree = 0;  // dead root
        if (!s.ref_tree) continue;
        auto proot = fs.find_root(s.ref_tree);
        if (!proot) {
            if (proot.error().code != Errc::not_found) {
                fmt::print(err, "ERROR: subvolume {}: parent tree {}: {}\n", id, s.ref_tree, proot.error().message);
                damaged = true;
            }
            s.ref_tree = 0;
            continue;
        }
        auto dp = dir_path_in_tree(fs, *proot, s.dir_id);
        if (!dp) {
            if (dp.error().code != Errc::not_found) {
                fmt::print(err, "ERROR: subvolume {}: {}\n", id, dp.error().message);
                damaged = true;
            }
            s.ref_tree = 0;
            continue;
        }
        s.path = *dp + s.name;
    }
    for (auto it = subs.rbegin(); it != subs.rend(); ++it) {
        SubvolInfo& ri = it->second;
        const SubvolInfo* found = &ri;
        std::string full;
        bool have = false, ok = true;
        for (size_t steps = 0;; ++steps) {
            if (!found->ref_tree || steps > subs.size()) {
                ok = false;
                break;
            }
            full = have ? found->path + "/" + full : found->path;
            have = true;
            if (!ri.top_id) ri.top_id = found->ref_tree;
            const uint64_t next = found->ref_tree;
            if (next == FS_TREE_OBJECTID) break;
            auto f = subs.find(next);
            if (f == subs.end()) {
                ok = false;
                break;
            }
            found = &f->second;
        }
        if (ok) {
            ri.full_path = std::move(full);
        } else if (ri.id != FS_TREE_OBJECTID) {
            ri.full_path = "DELETED";
            ri.deleted = true;
        } else {
            ri.full_path = "TOPLEVEL";
        }
    }
}

// ---------------------------------------------------------------------------
// logical-resolve pieces

struct DataRef {
    uint64_t root = 0, ino = 0, offset = 0;
    uint32_t count = 0;
};

struct DataExtent {
    uint64_t start = 0, len = 0, flags = 0;
    std::vector<DataRef> refs;
    std::vector<uint64_t> shared_parents;
};

// A file extent item that points into a disk extent (REG or PREALLOC).
struct FileRef {
    uint64_t disk_bytenr = 0, offset = 0, num_bytes = 0;
    bool plain = true;  // not compressed / encrypted / otherwise encoded
};

std::optional<FileRef> decode_file_ref(std::span<const uint8_t> d) {
    const auto* fe = view_at<file_extent_item>(d);
    if (!fe) return std::nullopt;
    if (fe->type != FILE_EXTENT_REG && fe->type != FILE_EXTENT_PREALLOC) return std::nullopt;
    FileRef r;
    r.disk_bytenr = fe->disk_bytenr;
    r.offset = fe->offset;
    r.num_bytes = fe->num_bytes;
    r.plain = !fe->compression && !fe->encryption && !fe->other_encoding.get();
    return r;
}

Result<DataExtent> find_data_extent(Filesystem& fs, uint64_t logical, std::FILE* err, bool& damaged) {
    auto er = fs.find_root(EXTENT_TREE_OBJECTID);
    if (!er) return std::move(er).error().context("extent tree");
    TreeCursor c(fs, *er);
    BTK_ASSIGN(bool ok, c.seek_le(Key{logical, 0xff, ~0ULL}));
    uint64_t steps = 0;
    while (ok && c.key().type != EXTENT_ITEM_KEY && c.key().type != METADATA_ITEM_KEY) {
        if (++steps > kMaxRefItems) return corruption("too many extent tree items before {}", logical);
        BTK_ASSIGN(ok, c.prev());
    }
    if (!ok) return make_error(Errc::not_found, "no extent contains logical address {}", logical);
    const Key k = c.key();
    const uint64_t len = k.type == METADATA_ITEM_KEY ? fs.nodesize() : k.offset;
    if (k.objectid > logical || logical - k.objectid >= len)
        return make_error(Errc::not_found, "no extent contains logical address {}", logical);
    if (k.type == METADATA_ITEM_KEY)
        return make_error(Errc::not_found, "logical address {} is in tree block {}, not in a data extent", logical,
                          k.objectid);
    const auto d = c.data();
    const auto* ei = view_at<extent_item>(d);
    if (!ei) {
        if (d.size() == sizeof(extent_item_v0))
            return make_error(Errc::unsupported, "extent {} uses the old v0 extent item format", k.objectid);
        return corruption("extent item {} too small ({} bytes)", k.objectid, d.size());
    }
    DataExtent x;
    x.start = k.objectid;
    x.len = len;
    x.flags = ei->flags;
    if (x.flags & EXTENT_FLAG_TREE_BLOCK)
        return make_error(Errc::not_found, "logical address {} is in tree block {}, not in a data extent", logical,
                          k.objectid);
    // Inline references.
    size_t off = sizeof(extent_item);
    while (off < d.size()) {
        const uint8_t type = d[off];
        if (type == EXTENT_DATA_REF_KEY) {
            const auto* dr = view_at<extent_data_ref>(d, off + 1);
            if (!dr) break;
            x.refs.push_back({dr->root, dr->objectid, dr->offset, dr->count});
            off += 1 + sizeof(extent_data_ref);
        } else if (type == SHARED_DATA_REF_KEY) {
            if (d.size() - off < 1 + 8 + sizeof(shared_data_ref)) break;
            x.shared_parents.push_back(load_le64(d.data() + off + 1));
            off += 1 + 8 + sizeof(shared_data_ref);
        } else if (type == TREE_BLOCK_REF_KEY || type == SHARED_BLOCK_REF_KEY || type == EXTENT_OWNER_REF_KEY) {
            if (d.size() - off < 9) break;
            off += 9;
        } else {
            break;
        }
    }
    if (off != d.size()) {
        fmt::print(err, "ERROR: extent {}: bad inline reference at byte {} of {}\n", x.start, off, d.size());
        damaged = true;
    }
    // Keyed references follow the extent item.
    steps = 0;
    BTK_ASSIGN(ok, c.next());
    while (ok && c.key().objectid == x.start) {
        if (++steps > kMaxRefItems) return corruption("extent {} has too many reference items", x.start);
        const Key rk = c.key();
        if (rk.type == EXTENT_DATA_REF_KEY) {
            const auto* dr = view_at<extent_data_ref>(c.data());
            if (dr) {
                x.refs.push_back({dr->root, dr->objectid, dr->offset, dr->count});
            } else {
                fmt::print(err, "ERROR: extent {}: data ref item {} too small\n", x.start, rk.offset);
                damaged = true;
            }
        } else if (rk.type == SHARED_DATA_REF_KEY) {
            x.shared_parents.push_back(rk.offset);
        }
        BTK_ASSIGN(ok, c.next());
    }
    return x;
}

struct Hit {
    uint64_t root = 0, ino = 0, offset = 0;
    auto operator<=>(const Hit&) const = default;
};

}  // namespace

// ---------------------------------------------------------------------------

int inode_resolve(const InodeResolveOptions& opts, std::FILE* out, std::FILE* err) {
    auto opened = open_image(opts.devices);
    if (!opened) return report_open_error(opened.error(), opts.devices, err);
    Filesystem& fs = **opened;
    FileSystemView v(fs);
    auto sv = choose_subvol(v, opts.subvol);
    if (!sv) {
        fmt::print(err, "ERROR: subvolume {}: {}\n", opts.subvol.value_or("(default)"), sv.error().message);
        return 1;
    }
    auto root = v.subvol_root(*sv);
    if (!root) {
        fmt::print(err, "ERROR: subvolume {}: {}\n", *sv, root.error().message);
        return 1;
    }
    int rc = 0;
    auto paths = inode_paths(fs, *root, opts.inode, [&](const Error& e) {
        fmt::print(err, "ERROR: inode {}: {}\n", opts.inode, e.message);
        rc = 1;
    });
    if (!paths) {
        fmt::print(err, "ERROR: inode {} in subvolume {}: {}\n", opts.inode, *sv, paths.error().message);
        return 1;
    }
    if (paths->empty() && rc == 0) {
        auto in = v.inode(*sv, opts.inode);
        if (!in)
            fmt::print(err, "ERROR: inode {} in subvolume {}: {}\n", opts.inode, *sv, in.error().message);
        else
            fmt::print(err, "ERROR: inode {} in subvolume {} has no names\n", opts.inode, *sv);
        return 1;
    }
    Out o(out);
    for (const auto& p : *paths) o.print("/{}\n", p);
    o.flush();
    if (opts.verbose) fmt::print(err, "inode {} in subvolume {}: {} path(s)\n", opts.inode, *sv, paths->size());
    return rc;
}

int logical_resolve(const LogicalResolveOptions& opts, std::FILE* out, std::FILE* err) {
    auto opened = open_image(opts.devices);
    if (!opened) return report_open_error(opened.error(), opts.devices, err);
    Filesystem& fs = **opened;
    FileSystemView v(fs);
    std::optional<uint64_t> only;
    if (opts.subvol) {
        auto sv = v.resolve_subvol_arg(*opts.subvol);
        if (!sv) {
            fmt::print(err, "ERROR: subvolume {}: {}\n", *opts.subvol, sv.error().message);
            return 1;
        }
        only = *sv;
    }
    bool damaged = false;
    auto ext = find_data_extent(fs, opts.logical, err, damaged);
    if (!ext) {
        fmt::print(err, "ERROR: {}\n", ext.error().message);
        return 1;
    }
    const DataExtent& x = *ext;
    const uint64_t pos = opts.logical - x.start;

    // Candidate file extent keys (inode, file offset) from every reference.
    std::set<std::pair<uint64_t, uint64_t>> cand;
    for (const auto& r : x.refs) {
        auto root = fs.find_root(r.root);
        if (!root) {
            if (opts.verbose) fmt::print(err, "note: reference from tree {}: {}\n", r.root, root.error().message);
            continue;
        }
        TreeCursor c(fs, *root);
        auto ok = c.seek(Key{r.ino, EXTENT_DATA_KEY, r.offset});
        uint64_t seen = 0, found = 0;
        while (ok && *ok) {
            const Key k = c.key();
            if (k.objectid != r.ino || k.type != EXTENT_DATA_KEY) break;
            if (++seen > kMaxExtentItemsPerRef) break;
            if (auto fr = decode_file_ref(c.data());
                fr && fr->disk_bytenr == x.start && k.offset - fr->offset == r.offset) {
                cand.insert({r.ino, k.offset});
                if (++found >= std::max<uint32_t>(r.count, 1)) break;
            }
            ok = c.next();
        }
        if (!ok) {
            fmt::print(err, "ERROR: tree {} inode {}: {}\n", r.root, r.ino, ok.error().message);
            damaged = true;
        }
    }
    for (uint64_t p : x.shared_parents) {
        BlockExpect e;
        e.level = 0;
        auto b = fs.read_block(p, e);
        if (!b) {
            fmt::print(err, "ERROR: shared reference leaf {}: {}\n", p, b.error().message);
            damaged = true;
            continue;
        }
        const TreeBlock& leaf = **b;
        for (uint32_t s = 0; s < leaf.nritems(); ++s) {
            const Key k = leaf.key(s);
            if (k.type != EXTENT_DATA_KEY) continue;
            if (auto fr = decode_file_ref(leaf.item_data(s)); fr && fr->disk_bytenr == x.start)
                cand.insert({k.objectid, k.offset});
        }
    }

    // Every live subvolume holding one of those items, pointing at this extent.
    std::vector<uint64_t> subvols;
    {
        auto subs = read_subvols(fs, err, damaged);
        if (!subs) {
            fmt::print(err, "ERROR: reading the subvolume list: {}\n", subs.error().message);
            return 1;
        }
        for (const auto& [id, s] : *subs) {
            if (!s.has_item) continue;
            if (id != FS_TREE_OBJECTID && (!s.ref_tree || s.refs == 0)) continue;
            if (only && id != *only) continue;
            subvols.push_back(id);
        }
    }
    if (subvols.size() * cand.size() > kMaxProbes) {
        fmt::print(err, "ERROR: extent {} has too many references to resolve ({} subvolumes x {} items)\n", x.start,
                   subvols.size(), cand.size());
        return 1;
    }
    std::vector<Hit> hits;
    for (uint64_t sv : subvols) {
        auto root = fs.find_root(sv);
        if (!root) {
            fmt::print(err, "ERROR: subvolume {}: {}\n", sv, root.error().message);
            damaged = true;
            continue;
        }
        for (const auto& [ino, koff] : cand) {
            TreeCursor c(fs, *root);
            auto ok = c.seek(Key{ino, EXTENT_DATA_KEY, koff});
            if (!ok) {
                fmt::print(err, "ERROR: subvolume {} inode {}: {}\n", sv, ino, ok.error().message);
                damaged = true;
                continue;
            }
            if (!*ok || c.key() != Key{ino, EXTENT_DATA_KEY, koff}) continue;
            auto fr = decode_file_ref(c.data());
            if (!fr || fr->disk_bytenr != x.start) continue;
            uint64_t file_off = koff;
            if (!opts.ignore_offset && fr->plain) {
                if (pos < fr->offset || pos - fr->offset >= fr->num_bytes) continue;
                file_off = koff + (pos - fr->offset);
            }
            hits.push_back({sv, ino, file_off});
        }
    }
    std::sort(hits.begin(), hits.end());
    if (opts.verbose)
        fmt::print(err, "extent {} len {}: {} reference(s), {} shared leaf ref(s), {} match(es)\n", x.start, x.len,
                   x.refs.size(), x.shared_parents.size(), hits.size());

    Out o(out);
    int rc = damaged ? 1 : 0;
    std::map<uint64_t, Result<std::string>> prefixes;
    for (const auto& h : hits) {
        if (opts.inodes_only) {
            o.print("inode {} offset {} root {}\n", h.ino, h.offset, h.root);
            continue;
        }
        std::string prefix;
        if (!only && h.root != FS_TREE_OBJECTID) {
            auto it = prefixes.find(h.root);
            if (it == prefixes.end()) it = prefixes.emplace(h.root, subvol_path(fs, h.root)).first;
            if (!it->second) {
                o.flush();
                fmt::print(err, "ERROR: inode {} subvol {} could not be accessed: {}\n", h.ino, h.root,
                           it->second.error().message);
                rc = 1;
                continue;
            }
            prefix = "/" + *it->second;
        }
        auto root = fs.find_root(h.root);
        if (!root) {
            o.flush();
            fmt::print(err, "ERROR: subvolume {}: {}\n", h.root, root.error().message);
            rc = 1;
            continue;
        }
        auto paths = inode_paths(fs, *root, h.ino, [&](const Error& e) {
            o.flush();
            fmt::print(err, "ERROR: inode {} root {}: {}\n", h.ino, h.root, e.message);
            rc = 1;
        });
        if (!paths) {
            o.flush();
            fmt::print(err, "ERROR: inode {} root {}: {}\n", h.ino, h.root, paths.error().message);
            rc = 1;
            continue;
        }
        for (const auto& p : *paths) o.print("{}/{}\n", prefix, p);
    }
    o.flush();
    return rc;
}

int subvolid_resolve(const SubvolidResolveOptions& opts, std::FILE* out, std::FILE* err) {
    auto opened = open_image(opts.devices);
    if (!opened) return report_open_error(opened.error(), opts.devices, err);
    Filesystem& fs = **opened;
    if (opts.subvolid != FS_TREE_OBJECTID &&
        (opts.subvolid < FIRST_FREE_OBJECTID || opts.subvolid > LAST_FREE_OBJECTID)) {
        fmt::print(err, "ERROR: {} is not a subvolume id\n", opts.subvolid);
        return 1;
    }
    auto p = subvol_path(fs, opts.subvolid);
    if (!p) {
        fmt::print(err, "ERROR: cannot resolve subvolume {}: {}\n", opts.subvolid, p.error().message);
        return 1;
    }
    fmt::print(out, "{}\n", *p);
    return 0;
}

// ---------------------------------------------------------------------------
// list-subvolumes

namespace {

enum Column { C_ID, C_GEN, C_OGEN, C_PARENT, C_TOP, C_OTIME, C_PUUID, C_RUUID, C_UUID, C_PATH, C_COUNT };
constexpr const char* kColumnNames[C_COUNT] = {"ID",    "gen",         "cgen",          "parent", "top level",
                                               "otime", "parent_uuid", "received_uuid", "uuid",   "path"};

enum class SortKey { rootid, ogen, gen, path };
struct SortItem {
    SortKey key;
    bool descending;
};

bool parse_sort(const std::string& spec, std::vector<SortItem>& outv) {
    size_t pos = 0;
    while (pos <= spec.size()) {
        size_t end = spec.find(',', pos);
        if (end == std::string::npos) end = spec.size();
        std::string tok = spec.substr(pos, end - pos);
        pos = end + 1;
        if (tok.empty()) {
            if (end == spec.size()) break;
            continue;
        }
        bool desc = false;
        if (tok[0] == '+' || tok[0] == '-') {
            desc = tok[0] == '-';
            tok.erase(0, 1);
        }
        SortKey k;
        if (tok == "rootid") k = SortKey::rootid;
        else if (tok == "ogen") k = SortKey::ogen;
        else if (tok == "gen") k = SortKey::gen;
        else if (tok == "path") k = SortKey::path;
        else return false;
        outv.push_back({k, desc});
    }
    return true;
}

struct GenFilter {
    int mode = 0;  // 0 equal, 1 less-or-equal, 2 greater-or-equal
    uint64_t value = 0;
    bool pass(uint64_t v) const { return mode == 0 ? v == value : mode == 1 ? v <= value : v >= value; }
};

bool parse_gen_filter(const std::string& s, GenFilter& f) {
    std::string_view t = s;
    f.mode = 0;
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
        f.mode = t[0] == '+' ? 2 : 1;
        t.remove_prefix(1);
    }
    if (t.empty()) return false;
    uint64_t v = 0;
    for (char ch : t) {
        if (ch < '0' || ch > '9') return false;
        if (v > (~0ULL - 9) / 10) return false;
        v = v * 10 + uint64_t(ch - '0');
    }
    f.value = v;
    return true;
}

std::string uuid_text(const uint8_t* u) {
    static const uint8_t zero[UUID_SIZE] = {};
    if (std::memcmp(u, zero, UUID_SIZE) == 0) return "-";
    char buf[37] = {};
    format_uuid(u, buf);
    return std::string(buf, 36);
}

std::string otime_text(int64_t t) {
    if (!t) return "-";
    std::time_t tt = std::time_t(t);
    std::tm tm{};
    if (!localtime_r(&tt, &tm)) return fmt::format("{}", t);
    char buf[64];
    if (std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0) return fmt::format("{}", t);
    return buf;
}

std::string column_text(const SubvolInfo& s, int c) {
    switch (c) {
        case C_ID: return fmt::format("{}", s.id);
        case C_GEN: return fmt::format("{}", s.gen);
        case C_OGEN: return fmt::format("{}", s.ogen);
        case C_PARENT: return fmt::format("{}", s.ref_tree);
        case C_TOP: return fmt::format("{}", s.top_id);
        case C_OTIME: return otime_text(s.otime);
        case C_PUUID: return uuid_text(s.puuid);
        case C_RUUID: return uuid_text(s.ruuid);
        case C_UUID: return uuid_text(s.uuid);
        case C_PATH: return s.full_path;
    }
    return {};
}

}  // namespace

int list_subvolumes(const ListSubvolumesOptions& opts, std::FILE* out, std::FILE* err) {
    std::vector<SortItem> sort;
    if (opts.sort && !parse_sort(*opts.sort, sort)) {
        fmt::print(err, "ERROR: invalid --sort '{}': use rootid, gen, ogen or path, each optionally after + or -\n",
                   *opts.sort);
        return 1;
    }
    std::optional<GenFilter> gf, cf;
    if (opts.gen_filter) {
        gf.emplace();
        if (!parse_gen_filter(*opts.gen_filter, *gf)) {
            fmt::print(err, "ERROR: invalid generation filter '{}'\n", *opts.gen_filter);
            return 1;
        }
    }
    if (opts.ogen_filter) {
        cf.emplace();
        if (!parse_gen_filter(*opts.ogen_filter, *cf)) {
            fmt::print(err, "ERROR: invalid creation generation filter '{}'\n", *opts.ogen_filter);
            return 1;
        }
    }
    auto opened = open_image(opts.devices);
    if (!opened) return report_open_error(opened.error(), opts.devices, err);
    Filesystem& fs = **opened;
    bool damaged = false;
    auto subs = read_subvols(fs, err, damaged);
    if (!subs) {
        fmt::print(err, "ERROR: reading the root tree: {}\n", subs.error().message);
        return 1;
    }
    resolve_subvol_paths(fs, *subs, err, damaged);

    bool cols[C_COUNT] = {};
    cols[C_ID] = cols[C_GEN] = cols[C_TOP] = cols[C_PATH] = true;
    if (opts.print_parent) cols[C_PARENT] = true;
    if (opts.print_ogen) cols[C_OGEN] = true;
    if (opts.print_uuid) cols[C_UUID] = true;
    if (opts.print_parent_uuid) cols[C_PUUID] = true;
    if (opts.print_received_uuid) cols[C_RUUID] = true;
    if (opts.snapshots_only) cols[C_OGEN] = cols[C_OTIME] = true;
    if (gf) cols[C_GEN] = true;
    if (cf) cols[C_OGEN] = true;

    std::vector<const SubvolInfo*> rows;
    for (const auto& [id, s] : *subs) {
        if (id == FS_TREE_OBJECTID) continue;  // never listed
        if (opts.deleted_only != s.deleted) continue;
        if (opts.snapshots_only && !s.root_offset) continue;
        if (opts.readonly_only && !(s.flags & ROOT_SUBVOL_RDONLY)) continue;
        if (gf && !gf->pass(s.gen)) continue;
        if (cf && !cf->pass(s.ogen)) continue;
        rows.push_back(&s);
    }
    auto cmp3 = [](auto a, auto b) { return a < b ? -1 : a > b ? 1 : 0; };
    std::stable_sort(rows.begin(), rows.end(), [&](const SubvolInfo* a, const SubvolInfo* b) {
        bool rootid_seen = false;
        for (const auto& si : sort) {
            int r = 0;
            switch (si.key) {
                case SortKey::rootid: r = cmp3(a->id, b->id); rootid_seen = true; break;
                case SortKey::gen: r = cmp3(a->gen, b->gen); break;
                case SortKey::ogen: r = cmp3(a->ogen, b->ogen); break;
                case SortKey::path: r = cmp3(a->full_path, b->full_path); break;
            }
            if (si.descending) r = -r;
            if (r) return r < 0;
        }
        if (!rootid_seen) return a->id < b->id;
        return false;
    });

    Out o(out);
    if (opts.format == OutputFormat::json) {
        o.write("{\n  \"__header\": {\n    \"version\": \"1\"\n  },\n  \"subvolume-list\": [");
        bool first_row = true;
        for (const SubvolInfo* s : rows) {
            o.write(first_row ? "\n    {" : ",\n    {");
            first_row = false;
            bool first = true;
            for (int c = 0; c < C_COUNT; ++c) {
                if (!cols[c]) continue;
                o.write(first ? "\n      " : ",\n      ");
                first = false;
                print_json_string(o, kColumnNames[c]);
                o.write(": ");
                if (c == C_ID || c == C_GEN || c == C_OGEN || c == C_PARENT || c == C_TOP)
                    o.write(column_text(*s, c));
                else
                    print_json_string(o, column_text(*s, c));
            }
            o.write("\n    }");
        }
        o.write(first_row ? "]\n}\n" : "\n  ]\n}\n");
    } else if (opts.table) {
        for (int c = 0; c < C_COUNT; ++c)
            if (cols[c]) o.print("{}\t", kColumnNames[c]);
        o.put('\n');
        for (int c = 0; c < C_COUNT; ++c)
            if (cols[c]) o.print("{}\t", std::string(std::strlen(kColumnNames[c]), '-'));
        o.put('\n');
        for (const SubvolInfo* s : rows) {
            for (int c = 0; c < C_COUNT; ++c) {
                if (!cols[c]) continue;
                std::string t = column_text(*s, c);
                if (c == C_UUID || c == C_PUUID || c == C_RUUID) t = fmt::format("{:<36}", t);
                o.write(t);
                if (c != C_PATH) o.put('\t');
                if (c == C_TOP) o.put('\t');
            }
            o.put('\n');
        }
    } else {
        for (const SubvolInfo* s : rows) {
            for (int c = 0; c < C_COUNT; ++c) {
                if (!cols[c]) continue;
                std::string t = column_text(*s, c);
                if (c == C_UUID || c == C_PUUID || c == C_RUUID) t = fmt::format("{:<36}", t);
                o.print("{} {}", kColumnNames[c], t);
                if (c != C_PATH) o.put(' ');
            }
            o.put('\n');
        }
    }
    o.flush();
    return damaged ? 1 : 0;
}

}  // namespace btk
