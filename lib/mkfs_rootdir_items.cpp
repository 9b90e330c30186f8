// mkfs --rootdir: the items of the content, laid out as the kernel lays them.
#include "csum.h"
#include "file.h"
#include "mkfs_rootdir_impl.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <cstring>
#include <map>

namespace btk {

using namespace format;

namespace rootdir {

void random_uuid(uint8_t u[16]) {
    size_t done = 0;
    while (done < 16) {
        ssize_t r = getrandom(u + done, 16 - done, 0);
        if (r > 0) done += size_t(r);
    }
    u[6] = uint8_t((u[6] & 0x0f) | 0x40);
    u[8] = uint8_t((u[8] & 0x3f) | 0x80);
}

ItemEncoder::ItemEncoder(const RootdirModel& m, ItemSink& sink) : m_(m), sink_(sink) {
    csum_size_ = csum_size(m.opts.csum_type);
    // As many checksums as the kernel puts in one csum item.
    max_csums_ = uint32_t((leaf_data_size(m.opts.nodesize) - 2 * sizeof(item)) / csum_size_ - 1);
}

Status ItemEncoder::put(uint64_t tree, const Key& k) {
    Status s = sink_.add(tree, k, buf_);
    buf_.clear();
    return s;
}

void ItemEncoder::append_dir_item(const Key& location, uint8_t type, std::string_view name, std::string_view data) {
    dir_item d{};
    location.to_disk(d.location);
    d.transid = m_.opts.generation;
    d.data_len = uint16_t(data.size());
    d.name_len = uint16_t(name.size());
    d.type = type;
    append_pod(d);
    append(name);
    append(data);
}

namespace {

void set_time(format::timespec& t, int64_t sec, uint32_t nsec) {
    t.sec = uint64_t(sec);
    t.nsec = nsec;
}

// Entries grouped by key offset (name hashes): each group is one item.
template <typename T, typename KeyFn>
std::vector<std::vector<const T*>> group_by(std::vector<const T*> v, KeyFn key) {
    std::stable_sort(v.begin(), v.end(), [&](const T* a, const T* b) { return key(*a) < key(*b); });
    std::vector<std::vector<const T*>> out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (i == 0 || key(*v[i]) != key(*v[i - 1])) out.emplace_back();
        out.back().push_back(v[i]);
    }
    return out;
}

}  // namespace

Status ItemEncoder::inode(uint32_t idx, uint64_t nbytes, uint64_t extra_flags, std::span<const FileExtent> extents) {
    const auto& in = m_.inodes[idx];
    const auto& opts = m_.opts;
    const uint64_t tree = m_.subvols[in.subvol].id;
    const uint64_t ino = in.ino;
    const uint64_t gen = opts.generation;

    // INODE_ITEM
    {
        inode_item ii{};
        ii.generation = gen;
        ii.transid = gen;
        ii.size = S_ISDIR(in.mode) ? in.dir_isize : in.size;
        ii.nbytes = nbytes;
        ii.nlink = in.nlink;
        ii.uid = in.uid;
        ii.gid = in.gid;
        ii.mode = in.mode;
        ii.rdev = in.rdev;
        ii.flags = in.flags | extra_flags;
        ii.sequence = 1;
        set_time(ii.atime, in.atime, in.atime_ns);
        set_time(ii.ctime, in.ctime, in.ctime_ns);
        set_time(ii.mtime, in.mtime, in.mtime_ns);
        set_time(ii.otime, opts.now_sec, opts.now_nsec);
        append_pod(ii);
        BTK_TRY(put(tree, {ino, INODE_ITEM_KEY, 0}));
    }

    // INODE_REF per parent directory (names in creation order); names that no
    // longer fit in the parent's ref item become INODE_EXTREF items.
    if (in.first_name == ~0u) {
        inode_ref r{};
        r.index = 0;
        r.name_len = 2;
        append_pod(r);
        append(std::string_view(".."));
        BTK_TRY(put(tree, {ino, INODE_REF_KEY, ino}));
    } else {
        std::vector<const RootdirModel::Name*> names;
        for (uint32_t n = in.first_name; n != ~0u; n = m_.names[n].next_link) names.push_back(&m_.names[n]);
        auto parent_ino = [&](const RootdirModel::Name& n) { return m_.inodes[n.parent].ino; };
        std::vector<const RootdirModel::Name*> ext;
        const uint64_t max_item = max_item_data_size(opts.nodesize);
        for (const auto& group : group_by(names, parent_ino)) {
            for (const auto* n : group) {
                if (!buf_.empty() && buf_.size() + sizeof(inode_ref) + n->len > max_item) {
                    ext.push_back(n);
                    continue;
                }
                inode_ref r{};
                r.index = n->index;
                r.name_len = n->len;
                append_pod(r);
                append(m_.name(*n));
            }
            BTK_TRY(put(tree, {ino, INODE_REF_KEY, parent_ino(*group[0])}));
        }
        if (!ext.empty() && !opts.extref)
            return make_error(Errc::invalid_argument, "'{}': too many hard links in one directory without extref",
                              m_.path(idx));
        auto ext_hash = [&](const RootdirModel::Name& n) { return extref_hash(parent_ino(n), m_.name(n)); };
        for (const auto& group : group_by(ext, ext_hash)) {
            for (const auto* n : group) {
                inode_extref r{};
                r.parent_objectid = parent_ino(*n);
                r.index = n->index;
                r.name_len = n->len;
                append_pod(r);
                append(m_.name(*n));
            }
            BTK_TRY(put(tree, {ino, INODE_EXTREF_KEY, ext_hash(*group[0])}));
        }
    }

    // XATTR_ITEM, by name hash.
    if (in.xattr_len) {
        const auto xs = m_.xattrs(in);
        std::vector<const std::pair<std::string_view, std::string_view>*> ptrs;
        for (const auto& x : xs) ptrs.push_back(&x);
        auto h = [](const std::pair<std::string_view, std::string_view>& x) { return name_hash(x.first); };
        for (const auto& group : group_by(ptrs, h)) {
            for (const auto* x : group) append_dir_item(Key{}, FT_XATTR, x->first, x->second);
            if (buf_.size() > max_item_data_size(opts.nodesize))
                return make_error(Errc::invalid_argument, "'{}': xattrs with one name hash do not fit in a leaf",
                                  m_.path(idx));
            BTK_TRY(put(tree, {ino, XATTR_ITEM_KEY, h(*group[0])}));
        }
    }

    // DIR_ITEM by name hash, then DIR_INDEX in creation order.
    if (S_ISDIR(in.mode) && in.entries_end > in.entries_begin) {
        auto location = [&](const RootdirModel::Name& n) -> Key {
            const auto& c = m_.inodes[n.child];
            if (n.subvol_entry) return {m_.subvols[c.subvol].id, ROOT_ITEM_KEY, 0};
            return {c.ino, INODE_ITEM_KEY, 0};
        };
        auto type = [&](const RootdirModel::Name& n) {
            return n.subvol_entry ? FT_DIR : mode_to_ft(m_.inodes[n.child].mode);
        };
        std::vector<const RootdirModel::Name*> entries;
        for (uint32_t i = in.entries_begin; i < in.entries_end; ++i) entries.push_back(&m_.names[i]);
        auto h = [&](const RootdirModel::Name& n) { return name_hash(m_.name(n)); };
        for (const auto& group : group_by(entries, h)) {
            for (const auto* n : group) append_dir_item(location(*n), type(*n), m_.name(*n), {});
            BTK_TRY(put(tree, {ino, DIR_ITEM_KEY, h(*group[0])}));
        }
        for (const auto* n : entries) {
            append_dir_item(location(*n), type(*n), m_.name(*n), {});
            BTK_TRY(put(tree, {ino, DIR_INDEX_KEY, n->index}));
        }
    }

    // EXTENT_DATA
    for (const auto& e : extents) {
        file_extent_item fe{};
        fe.generation = gen;
        fe.ram_bytes = e.ram_bytes;
        fe.compression = e.compression;
        fe.type = e.type;
        if (e.type == FILE_EXTENT_INLINE) {
            const auto* p = reinterpret_cast<const uint8_t*>(&fe);
            buf_.insert(buf_.end(), p, p + FILE_EXTENT_INLINE_DATA_START);
            buf_.insert(buf_.end(), e.inline_data.begin(), e.inline_data.end());
        } else {
            fe.disk_bytenr = e.disk_bytenr;
            fe.disk_num_bytes = e.disk_num_bytes;
            fe.offset = 0;
            fe.num_bytes = e.num_bytes;
            append_pod(fe);
        }
        BTK_TRY(put(tree, {ino, EXTENT_DATA_KEY, e.file_off}));
    }
    return {};
}

Status ItemEncoder::data_extent(uint64_t logical, uint64_t disk_bytes, uint64_t root, uint64_t ino,
                                uint64_t file_off) {
    extent_item ei{};
    ei.refs = 1;
    ei.generation = m_.opts.generation;
    ei.flags = EXTENT_FLAG_DATA;
    append_pod(ei);
    buf_.push_back(EXTENT_DATA_REF_KEY);
    extent_data_ref r{};
    r.root = root;
    r.objectid = ino;
    r.offset = file_off;
    r.count = 1;
    append_pod(r);
    return put(EXTENT_TREE_OBJECTID, {logical, EXTENT_ITEM_KEY, disk_bytes});
}

Status ItemEncoder::flush_csums() {
    if (csum_buf_.empty()) return {};
    Status s = sink_.add(CSUM_TREE_OBJECTID, {EXTENT_CSUM_OBJECTID, EXTENT_CSUM_KEY, csum_start_}, csum_buf_);
    csum_buf_.clear();
    ++csum_items_;
    return s;
}

Status ItemEncoder::csums(uint64_t logical, std::span<const uint8_t> sums) {
    const uint64_t ss = m_.opts.sectorsize;
    while (!sums.empty()) {
        const uint64_t have = csum_buf_.size() / csum_size_;
        if (csum_buf_.empty() || logical != csum_start_ + have * ss || have >= max_csums_) {
            BTK_TRY(flush_csums());
            csum_start_ = logical;
        }
        const uint64_t room = max_csums_ - csum_buf_.size() / csum_size_;
        const uint64_t n = std::min<uint64_t>(room, sums.size() / csum_size_);
        csum_buf_.insert(csum_buf_.end(), sums.begin(), sums.begin() + ptrdiff_t(n * csum_size_));
        sums = sums.subspan(n * csum_size_);
        logical += n * ss;
    }
    return {};
}

Status ItemEncoder::finish() {
    BTK_TRY(flush_csums());
    // Root tree: ROOT_REF and ROOT_BACKREF of each new subvolume; uuid tree.
    std::map<Key, std::vector<uint8_t>> root, uuid;
    for (size_t i = 1; i < m_.subvols.size(); ++i) {
        const auto& sv = m_.subvols[i];
        const auto& n = m_.names[sv.entry];
        const uint64_t parent = m_.subvols[sv.parent].id;
        root_ref r{};
        r.dirid = m_.inodes[n.parent].ino;
        r.sequence = n.index;
        r.name_len = n.len;
        append_pod(r);
        append(m_.name(n));
        root[{parent, ROOT_REF_KEY, sv.id}] = buf_;
        root[{sv.id, ROOT_BACKREF_KEY, parent}] = std::move(buf_);
        buf_.clear();
        std::vector<uint8_t>& u = uuid[{load_le64(sv.uuid), UUID_KEY_SUBVOL, load_le64(sv.uuid + 8)}];
        u.resize(u.size() + 8);
        store_le64(u.data() + u.size() - 8, sv.id);
    }
    for (const auto& [k, d] : root) BTK_TRY(sink_.add(ROOT_TREE_OBJECTID, k, d));
    for (const auto& [k, d] : uuid) BTK_TRY(sink_.add(UUID_TREE_OBJECTID, k, d));
    return {};
}

}  // namespace rootdir

}  // namespace btk
