// btk-check: verify a filesystem offline and report findings.
#include "check.h"
#include "cli.h"
#include "progress.h"

#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <malloc.h>
#include <unistd.h>

namespace {

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
    // The walk and the subvolume tree thread allocate and free tree blocks
    // all the time: keep freed memory in the process rather than giving it
    // back to the kernel and faulting fresh zeroed pages in again. The same
    // for the big tables (link logs, reference lists), which glibc would
    // map and unmap on their own.
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    CLI::App app{"Check a btrfs filesystem offline (never writes)", "btk check"};
    btk::CheckOptions o;
    std::vector<std::string> devices;
    std::string format = "text";
    bool readonly = false, progress = false, data_csum = false;
    std::optional<uint64_t> subvol_extents;
    int super = -1;
    uint64_t tree_root = 0;
    app.add_flag("--readonly", readonly, "Read only (the default: btk check never writes)");
    auto* o_super = app.add_option("-s,--super", super, "Use this superblock copy (0, 1, 2)")->check(CLI::Range(0, 2));
    auto* o_backup = app.add_flag("-b,--backup", o.backup_root, "Use the newest backup root");
    auto* o_tree = app.add_option("-r,--tree-root", tree_root, "Use this root tree block");
    app.add_flag("--check-data-csum", data_csum, "Read every checksummed data block and verify it (other copies on a mismatch)");
    app.add_flag("-Q,--qgroup-report", o.qgroup_report, "Print the qgroup counts (verified whenever quotas are on)");
    app.add_option("-E,--subvol-extents", subvol_extents, "Print the extents of a subvolume and the roots sharing them");
    bool reread_shared = false;  // tests: read snapshot-shared inodes again (compare with the reuse)
    app.add_flag("--reread-shared", reread_shared, "")->group("");
    std::string copies_by = "auto";  // tests: who verifies the other copies of leaves
    app.add_option("--copies-by", copies_by, "")->check(CLI::IsMember({"auto", "walk", "worker"}))->group("");
    app.add_flag("-p,--progress", progress, "Show progress on standard error when it is a terminal");
    app.add_option("--threads", o.threads, "Tree block reader threads besides the walk (default: the cores minus 2, at most 8; 0: none)")
        ->check(CLI::Range(0, 64));
    app.add_option("--format", format, "Output format")->check(CLI::IsMember({"text", "json"}));
    app.add_option("devices", devices, "Image files or devices of one filesystem")->required();
    o_super->excludes(o_backup);
    o_tree->excludes(o_backup);
    if (int rc = btk::cli::parse(app, argc, argv, "btk check"); rc >= 0) return rc;
    (void)readonly;
    o.super_mirror = super;
    if (*o_tree) o.tree_root = tree_root;
    o.check_data_csum = data_csum;
    o.subvol_extents = subvol_extents;
    o.reuse_shared = !reread_shared;
    using CV = btk::CheckOptions::CopyVerifier;
    o.copy_verifier = copies_by == "walk" ? CV::walk : copies_by == "worker" ? CV::worker : CV::automatic;

    const bool json = format == "json";
    // The progress line: only on a terminal, rewritten in place.
    const bool live = progress && isatty(STDERR_FILENO);
    btk::ProgressMeter meter;
    std::string phase = "starting";
    bool line_shown = false;
    auto show = [&](const btk::CheckProgress& p, bool force) {
        if (auto line = meter.update(now_seconds(), phase, p.blocks, p.bytes, p.total_bytes, force)) {
            std::fprintf(stderr, "\r\033[K%s", line->c_str());
            std::fflush(stderr);
            line_shown = true;
        }
    };
    auto clear_line = [&] {
        if (line_shown) std::fprintf(stderr, "\r\033[K");
        line_shown = false;
    };
    btk::CheckProgress last;
    if (live)
        o.progress = [&](const btk::CheckProgress& p) {
            last = p;
            show(p, false);
        };
    if (!json) std::printf("Checking filesystem on %s\n", devices[0].c_str());
    auto on_stage = [&](int n, int total, const char* what) {
        if (live) {
            phase = fmt::format("[{}/{}] {}", n, total, what);
            show(last, true);
        }
        if (!json) std::printf("[%d/%d] %s\n", n, total, what);
        std::fflush(stdout);
    };
    auto on_finding = [&](const btk::Finding& f) {
        const std::string line = json ? f.json() : f.text_line();
        if (live) clear_line();
        std::printf("%s\n", line.c_str());
        if (live) std::fflush(stdout);
    };
    auto r = btk::check_filesystem(devices, o, on_finding, on_stage);
    if (live) clear_line();
    if (!r) {
        std::fflush(stdout);
        std::fprintf(stderr, "btk check: %s\n", r.error().message.c_str());
        return 2;
    }
    if (o.qgroup_report) {
        if (json) {
            std::string s = "{\"qgroups\":[";
            for (size_t i = 0; i < r->qgroups.size(); ++i) {
                const auto& q = r->qgroups[i];
                s += fmt::format("{}{{\"qgroupid\":\"{}/{}\",\"referenced\":{},\"exclusive\":{},\"disk_referenced\":{},"
                                 "\"disk_exclusive\":{}}}",
                                 i ? "," : "", q.qgroupid >> 48, q.qgroupid & ((1ull << 48) - 1), q.rfer, q.excl,
                                 q.disk_rfer, q.disk_excl);
            }
            s += "],\"note\":" + btk::json_escape(r->qgroup_note) + "}";
            std::printf("%s\n", s.c_str());
        } else {
            if (!r->qgroup_note.empty()) std::printf("qgroups: %s\n", r->qgroup_note.c_str());
            for (const auto& q : r->qgroups) {
                const std::string id = fmt::format("{}/{}", q.qgroupid >> 48, q.qgroupid & ((1ull << 48) - 1));
                std::printf("qgroup %-12s referenced %llu exclusive %llu", id.c_str(), (unsigned long long)q.rfer,
                            (unsigned long long)q.excl);
                if (q.rfer != q.disk_rfer || q.excl != q.disk_excl)
                    std::printf(" (on disk: referenced %llu exclusive %llu)", (unsigned long long)q.disk_rfer,
                                (unsigned long long)q.disk_excl);
                std::printf("\n");
            }
        }
    }
    if (subvol_extents && !json) {
        // The layout of btrfs check --subvol-extents.
        std::printf("Print extent state for subvolume %llu on %s\nUUID: %s\n", (unsigned long long)*subvol_extents,
                    devices[0].c_str(), r->fsid.c_str());
        std::printf("Offset\t\tLen\tRoot Refs\tRoots\n");
        for (const auto& e : r->subvol_extents) {
            std::printf("%llu\t%llu\t%zu\t", (unsigned long long)e.bytenr, (unsigned long long)e.length, e.roots.size());
            for (uint64_t root : e.roots) std::printf("%llu ", (unsigned long long)root);
            std::printf("\n");
        }
    } else if (subvol_extents) {
        std::string s = "{\"subvol_extents\":[";
        for (size_t i = 0; i < r->subvol_extents.size(); ++i) {
            const auto& e = r->subvol_extents[i];
            s += fmt::format("{}{{\"bytenr\":{},\"length\":{},\"roots\":[{}]}}", i ? "," : "", e.bytenr, e.length,
                             fmt::join(e.roots, ","));
        }
        std::printf("%s]}\n", s.c_str());
    }
    if (!json) {
        std::printf("UUID: %s\n", r->fsid.c_str());
        std::printf("checked %llu tree blocks, %llu bytes in extents\n", (unsigned long long)r->tree_blocks,
                    (unsigned long long)r->bytes_used);
        if (data_csum) std::printf("verified %llu bytes of data\n", (unsigned long long)r->data_bytes_verified);
        if (r->errors == 0 && r->warnings == 0)
            std::printf("no error found\n");
        else
            std::printf("found %llu error%s, %llu warning%s\n", (unsigned long long)r->errors,
                        r->errors == 1 ? "" : "s", (unsigned long long)r->warnings, r->warnings == 1 ? "" : "s");
    }
    // For tests and benchmarks: how much the snapshot-shared subtrees saved.
    if (std::getenv("BTK_CHECK_STATS")) {
        std::fprintf(stderr, "btk check: %llu inodes taken from shared subtrees\n", (unsigned long long)r->reused_inodes);
        std::string trees;
        for (uint64_t t : r->logged_trees) trees += fmt::format(" {}", t);
        std::fprintf(stderr, "btk check: link logs kept for trees:%s\n", trees.empty() ? " none" : trees.c_str());
        std::fprintf(stderr, "btk check: %llu blocks' other copies verified by the subvolume tree thread\n",
                     (unsigned long long)r->worker_copy_blocks);
    }
    return r->errors ? 1 : 0;
}
