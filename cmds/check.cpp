// btk-check: verify a filesystem offline and report findings.
#include "check.h"
#include "cli.h"

#include <cstdio>
#include <malloc.h>

int main(int argc, char** argv) {
    // The walk and the subvolume tree thread allocate and free tree blocks
    // all the time: keep freed memory in the process rather than giving it
    // back to the kernel and faulting fresh zeroed pages in again.
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    CLI::App app{"Check a btrfs filesystem offline (never writes)", "btk check"};
    btk::CheckOptions o;
    std::vector<std::string> devices;
    std::string format = "text";
    bool readonly = false, progress = false, data_csum = false, qgroup = false;
    std::optional<uint64_t> subvol_extents;
    int super = -1;
    uint64_t tree_root = 0;
    app.add_flag("--readonly", readonly, "Read only (the default: btk check never writes)");
    auto* o_super = app.add_option("-s,--super", super, "Use this superblock copy (0, 1, 2)")->check(CLI::Range(0, 2));
    auto* o_backup = app.add_flag("-b,--backup", o.backup_root, "Use the newest backup root");
    auto* o_tree = app.add_option("-r,--tree-root", tree_root, "Use this root tree block");
    app.add_flag("--check-data-csum", data_csum, "Read every checksummed data block and verify it (other copies on a mismatch)");
    app.add_flag("-Q,--qgroup-report", qgroup, "Verify qgroup accounting (not implemented yet)");
    app.add_option("-E,--subvol-extents", subvol_extents, "Print extent sharing of a subvolume (not implemented yet)");
    app.add_flag("-p,--progress", progress, "Print each stage to standard error");
    app.add_option("--format", format, "Output format")->check(CLI::IsMember({"text", "json"}));
    app.add_option("devices", devices, "Image files or devices of one filesystem")->required();
    o_super->excludes(o_backup);
    o_tree->excludes(o_backup);
    if (int rc = btk::cli::parse(app, argc, argv, "btk check"); rc >= 0) return rc;
    (void)readonly;
    o.super_mirror = super;
    if (*o_tree) o.tree_root = tree_root;
    o.check_data_csum = data_csum;
    if (qgroup) std::fprintf(stderr, "btk check: --qgroup-report is not implemented yet\n");
    if (subvol_extents) std::fprintf(stderr, "btk check: --subvol-extents is not implemented yet\n");

    const bool json = format == "json";
    if (!json) std::printf("Checking filesystem on %s\n", devices[0].c_str());
    auto on_stage = [&](int n, int total, const char* what) {
        if (!json) std::printf("[%d/%d] %s\n", n, total, what);
        if (progress) std::fprintf(stderr, "[%d/%d] %s\n", n, total, what);
        std::fflush(stdout);
    };
    auto on_finding = [&](const btk::Finding& f) {
        const std::string line = json ? f.json() : f.text_line();
        std::printf("%s\n", line.c_str());
    };
    auto r = btk::check_filesystem(devices, o, on_finding, on_stage);
    if (!r) {
        std::fflush(stdout);
        std::fprintf(stderr, "btk check: %s\n", r.error().message.c_str());
        return 2;
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
    return r->errors ? 1 : 0;
}
