// btk check: qgroup accounting and the per-subvolume extent listing.
//
// Referenced bytes of a subvolume: every tree block reached from its root,
// and every data extent that a file extent item in such a leaf points to,
// each counted once at its full size. Exclusive: the part of that reached
// from no other subvolume. A higher-level qgroup refers to an extent when
// any of its member subvolumes does, and owns it exclusively when all the
// subvolumes reaching it are members. (See check_space.h for why the roots
// come from the tree structure.)
#include "check_space_impl.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace btk {

using namespace format;
using K = FindingKind;

std::string qgroup_text(uint64_t id) {
    return fmt::format("{}/{}", id >> QGROUP_LEVEL_SHIFT, id & ((1ULL << QGROUP_LEVEL_SHIFT) - 1));
}

namespace {

bool is_subvol(uint64_t id) {
    return id == FS_TREE_OBJECTID || (id >= FIRST_FREE_OBJECTID && id <= LAST_FREE_OBJECTID);
}

// Root sets, interned: each distinct sorted list of subvolume ids gets an index.
class RootSets {
public:
    RootSets() { id_of({}); }
    uint32_t id_of(const std::vector<uint64_t>& roots) {
        auto [it, fresh] = ids_.try_emplace(roots, uint32_t(sets_.size()));
        if (fresh) sets_.push_back(roots);
        return it->second;
    }
    uint32_t unite(uint32_t a, uint32_t b) {
        if (a == b || b == 0) return a;
        if (a == 0) return b;
        std::vector<uint64_t> u;
        std::set_union(sets_[a].begin(), sets_[a].end(), sets_[b].begin(), sets_[b].end(), std::back_inserter(u));
        return id_of(u);
    }
    const std::vector<uint64_t>& at(uint32_t id) const { return sets_[id]; }
    size_t size() const { return sets_.size(); }

private:
    std::map<std::vector<uint64_t>, uint32_t> ids_;
    std::vector<std::vector<uint64_t>> sets_;
};

}  // namespace

void CheckExtras::Impl::fs_leaf(const TreeBlock& b) {
    for (uint32_t s = 0; s < b.nritems(); ++s) {
        if (leaf_key(b, s).type != EXTENT_DATA_KEY) continue;
        const auto* fe = view_at<file_extent_item>(b.item_data(s));
        if (!fe || (fe->type != FILE_EXTENT_REG && fe->type != FILE_EXTENT_PREALLOC) || fe->disk_bytenr == 0) continue;
        uses.push_back({fe->disk_bytenr, fe->disk_num_bytes, b.bytenr()});
    }
}

void CheckExtras::Impl::quota_leaf(const TreeBlock& b) {
    for (uint32_t s = 0; s < b.nritems(); ++s) {
        const Key k = b.key(s);
        auto d = b.item_data(s);
        auto bad = [&](std::string problem) {
            Finding f = mk(K::qgroup_item_invalid);
            f.tree = QUOTA_TREE_OBJECTID;
            f.bytenr = b.bytenr();
            f.key = k;
            f.str("key", key_text(k)).str("problem", std::move(problem));
            report(std::move(f));
        };
        switch (k.type) {
            case QGROUP_STATUS_KEY:
                if (d.size() < QGROUP_STATUS_V1_SIZE) {
                    bad(fmt::format("item size {} too small", d.size()));
                } else {
                    const auto* st = reinterpret_cast<const qgroup_status_item*>(d.data());
                    qstatus_flags = st->flags;
                    qstatus_rescan = st->rescan;
                    qstatus_generation = st->generation;
                }
                break;
            case QGROUP_INFO_KEY:
                if (const auto* qi = view_at<qgroup_info_item>(d))
                    qinfos.push_back({k.offset, qi->rfer, qi->excl});
                else
                    bad(fmt::format("item size {} too small", d.size()));
                break;
            case QGROUP_RELATION_KEY:
                // Stored both ways; the member is the one on the lower level.
                if ((k.objectid >> QGROUP_LEVEL_SHIFT) < (k.offset >> QGROUP_LEVEL_SHIFT))
                    relations.push_back({k.objectid, k.offset});
                break;
            default: break;
        }
    }
}

void CheckExtras::Impl::check_qgroups(CheckSummary& sum) {
    if (!want_qgroups()) return;
    const bool verify = quota_root;
    if (!quota_root) sum.qgroup_note = "quotas are not enabled";
    bool trees_ok = complete(ROOT_TREE_OBJECTID) && (!quota_root || complete(QUOTA_TREE_OBJECTID));
    for (const SubvolRoot& r : subvols)
        if (!complete(r.id)) trees_ok = false;
    if (verify && trees_ok) {
        if (!qstatus_flags) {
            report(mk(K::qgroup_status_missing));
            sum.qgroup_note = "the quota tree has no status item";
        } else if (!(*qstatus_flags & QGROUP_STATUS_FLAG_ON)) {
            sum.qgroup_note = "quotas are being disabled";
        } else if (*qstatus_flags & QGROUP_STATUS_FLAG_SIMPLE_MODE) {
            sum.qgroup_note = "simple quotas are not verified";
        } else if ((*qstatus_flags & (QGROUP_STATUS_FLAG_RESCAN | QGROUP_STATUS_FLAG_INCONSISTENT)) ||
                   qstatus_generation != fs->super().generation) {
            // A status older than the superblock: the kernel marks the counts
            // inconsistent when it mounts such a filesystem.
            if (*qstatus_flags & QGROUP_STATUS_FLAG_RESCAN)
                sum.qgroup_note = fmt::format("a rescan is in progress (at {})", qstatus_rescan);
            else if (*qstatus_flags & QGROUP_STATUS_FLAG_INCONSISTENT)
                sum.qgroup_note = "the quota tree marks the counts inconsistent";
            else
                sum.qgroup_note = fmt::format("the quota status generation {} differs from the super generation {}",
                                              qstatus_generation, uint64_t(fs->super().generation));
            Finding f = mk(K::qgroup_inconsistent);
            f.tree = QUOTA_TREE_OBJECTID;
            f.str("problem", sum.qgroup_note);
            report(std::move(f));
        }
    } else if (verify) {
        sum.qgroup_note = "some trees could not be read";
    }
    const bool compare = verify && trees_ok && sum.qgroup_note.empty();
    if (!compare && !opts.qgroup_report && !opts.subvol_extents) return;

    // Parents of every block reached from a subvolume, and the roots above it.
    std::vector<Edge> es;
    for (const Edge& e : edges)
        if (is_subvol(e.tree)) es.push_back(e);
    std::sort(es.begin(), es.end(), [](const Edge& a, const Edge& b) {
        return std::tie(a.child, a.parent, a.tree) < std::tie(b.child, b.parent, b.tree);
    });
    RootSets sets;
    std::unordered_map<uint64_t, uint32_t> memo;
    constexpr uint32_t kBusy = ~0u;
    // Depth-limited: a damaged tree may point back up; such a cycle adds nothing.
    std::function<uint32_t(uint64_t, int)> roots = [&](uint64_t bytenr, int depth) -> uint32_t {
        auto [mit, fresh] = memo.try_emplace(bytenr, kBusy);
        if (!fresh) return mit->second == kBusy ? 0 : mit->second;
        uint32_t acc = 0;
        auto it = std::lower_bound(es.begin(), es.end(), bytenr, [](const Edge& e, uint64_t v) { return e.child < v; });
        for (; it != es.end() && it->child == bytenr; ++it) {
            if (it->parent == 0)
                acc = sets.unite(acc, sets.id_of({it->tree}));
            else if (depth < 2 * int(MAX_LEVEL))
                acc = sets.unite(acc, roots(it->parent, depth + 1));
        }
        memo[bytenr] = acc;
        return acc;
    };

    struct Item {
        uint64_t bytenr, len;
        uint32_t set;
    };
    std::vector<Item> items;  // every extent with its roots (only kept for the listing)
    std::vector<uint64_t> bytes_by_set;
    auto account = [&](uint64_t bytenr, uint64_t len, uint32_t set) {
        if (set >= bytes_by_set.size()) bytes_by_set.resize(set + 1, 0);
        bytes_by_set[set] += len;
        if (opts.subvol_extents) {
            const auto& v = sets.at(set);
            if (std::binary_search(v.begin(), v.end(), *opts.subvol_extents)) items.push_back({bytenr, len, set});
        }
    };
    for (size_t i = 0; i < es.size(); ++i)
        if (i == 0 || es[i].child != es[i - 1].child) account(es[i].child, ns, roots(es[i].child, 0));
    std::sort(uses.begin(), uses.end(), [](const FileUse& a, const FileUse& b) {
        return std::tie(a.disk_bytenr, a.leaf) < std::tie(b.disk_bytenr, b.leaf);
    });
    for (size_t i = 0; i < uses.size();) {
        size_t j = i;
        uint32_t set = 0;
        for (; j < uses.size() && uses[j].disk_bytenr == uses[i].disk_bytenr; ++j)
            if (j == i || uses[j].leaf != uses[j - 1].leaf) set = sets.unite(set, roots(uses[j].leaf, 0));
        account(uses[i].disk_bytenr, uses[i].disk_len, set);
        i = j;
    }
    bytes_by_set.resize(sets.size(), 0);

    if (opts.subvol_extents) {
        std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.bytenr < b.bytenr; });
        for (const Item& it : items) sum.subvol_extents.push_back({it.bytenr, it.len, sets.at(it.set)});
    }
    if (!verify) return;

    // Members (level-0 ids) of every qgroup, through the relations.
    std::map<uint64_t, std::vector<uint64_t>> children;
    for (const auto& [member, parent] : relations) children[parent].push_back(member);
    auto members = [&](uint64_t qg) {
        std::vector<uint64_t> out, todo{qg};
        std::unordered_set<uint64_t> seen;
        while (!todo.empty()) {
            const uint64_t g = todo.back();
            todo.pop_back();
            if (!seen.insert(g).second) continue;
            if ((g >> QGROUP_LEVEL_SHIFT) == 0) {
                out.push_back(g);
                continue;
            }
            auto it = children.find(g);
            if (it != children.end()) todo.insert(todo.end(), it->second.begin(), it->second.end());
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    std::sort(qinfos.begin(), qinfos.end(), [](const QInfo& a, const QInfo& b) { return a.id < b.id; });
    for (const QInfo& q : qinfos) {
        const std::vector<uint64_t> m = members(q.id);
        QgroupCount c;
        c.qgroupid = q.id;
        c.on_disk = true;
        c.disk_rfer = q.rfer;
        c.disk_excl = q.excl;
        for (uint32_t s = 1; s < sets.size(); ++s) {
            if (!bytes_by_set[s]) continue;
            const auto& v = sets.at(s);
            size_t in = 0;
            for (uint64_t r : v)
                if (std::binary_search(m.begin(), m.end(), r)) ++in;
            if (in) c.rfer += bytes_by_set[s];
            if (in == v.size()) c.excl += bytes_by_set[s];
        }
        sum.qgroups.push_back(c);
        if (!compare) continue;
        auto mismatch = [&](const char* field, uint64_t found, uint64_t expected) {
            if (found == expected) return;
            Finding f = mk(K::qgroup_mismatch);
            f.tree = QUOTA_TREE_OBJECTID;
            f.key = Key{0, QGROUP_INFO_KEY, q.id};
            f.str("qgroup", qgroup_text(q.id)).str("field", field).num("found", found).num("expected", expected);
            report(std::move(f));
        };
        mismatch("referenced", q.rfer, c.rfer);
        mismatch("exclusive", q.excl, c.excl);
    }
    sum.qgroups_computed = true;
    if (!compare) return;
    for (const SubvolRoot& r : subvols) {
        if (r.refs == 0) continue;  // being deleted
        auto qit = std::lower_bound(qinfos.begin(), qinfos.end(), r.id, [](const QInfo& a, uint64_t v) { return a.id < v; });
        if (qit == qinfos.end() || qit->id != r.id) {
            Finding f = mk(K::qgroup_missing);
            f.tree = QUOTA_TREE_OBJECTID;
            f.num("subvol", r.id);
            report(std::move(f));
        }
    }
}

}  // namespace btk
