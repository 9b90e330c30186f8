// btk-inspect: superblock and tree dumps, resolvers, statistics.
#include "cli.h"
#include "inspect.h"

#include <map>

namespace {

btk::OutputFormat parse_format(const std::string& f) {
    return f == "json" ? btk::OutputFormat::json : btk::OutputFormat::text;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Inspect btrfs images and devices offline", "btk inspect"};
    app.require_subcommand(1);

    btk::DumpSuperOptions ds;
    std::string ds_format = "text";
    auto* c_ds = app.add_subcommand("dump-super", "Print superblocks");
    c_ds->add_flag("-f,--full", ds.full, "Also print sys_chunk_array and backup roots");
    auto* o_all = c_ds->add_flag("-a,--all", ds.all, "Print every superblock copy");
    auto* o_super = c_ds->add_option("-s,--super", ds.mirror, "Superblock copy to print (0, 1, 2)")->check(CLI::Range(0, 2));
    auto* o_bytenr = c_ds->add_option("--bytenr", ds.bytenr, "Print the superblock at this byte offset");
    c_ds->add_flag("-F,--force", ds.force, "Print even when the magic is wrong");
    c_ds->add_option("--format", ds_format, "Output format")->check(CLI::IsMember({"text", "json"}));
    c_ds->add_option("devices", ds.devices, "Images or devices")->required();

    btk::DumpTreeOptions dt;
    std::string dt_format = "text";
    bool bfs = false, dfs = false;
    auto* c_dt = app.add_subcommand("dump-tree", "Print trees");
    c_dt->add_option("-t,--tree", dt.trees, "Only this tree (id or name)");
    c_dt->add_option("-b,--block", dt.blocks, "Only the tree block at this logical address");
    c_dt->add_flag("--follow", dt.follow, "With -b, also print the blocks below it");
    c_dt->add_flag("-e,--extents", dt.extents, "Only the extent tree");
    c_dt->add_flag("-d,--device", dt.device, "Only the device trees (chunk, dev)");
    c_dt->add_flag("-r,--roots", dt.roots, "Only the tree roots");
    c_dt->add_flag("-R,--backups", dt.backups, "With -r, also the backup roots");
    c_dt->add_flag("-u,--uuid", dt.uuid, "Only the uuid tree");
    c_dt->add_flag("--bfs", bfs, "Breadth-first traversal");
    c_dt->add_flag("--dfs", dfs, "Depth-first traversal");
    c_dt->add_flag("--hide-names", dt.hide_names, "Do not print file names");
    c_dt->add_flag("--csum-headers", dt.csum_headers, "Print tree block checksums");
    c_dt->add_flag("--csum-items", dt.csum_items, "Print checksums stored in csum items");
    c_dt->add_option("--format", dt_format, "Output format")->check(CLI::IsMember({"text", "json"}));
    c_dt->add_option("devices", dt.devices, "Images or devices")->required();

    if (int rc = btk::cli::parse(app, argc, argv, "btk inspect"); rc >= 0) return rc;
    if (*c_ds) {
        ds.format = parse_format(ds_format);
        // As in btrfs-progs, the last of -a, -s and --bytenr wins.
        for (const CLI::Option* o : c_ds->parse_order()) {
            if (o == o_all) ds.all = true;
            if (o == o_super || o == o_bytenr) ds.all = false;
        }
        if (ds.all) ds.bytenr.reset();
        if (ds.bytenr && c_ds->parse_order().back() != o_bytenr) {
            // -s after --bytenr: the mirror wins.
            for (auto it = c_ds->parse_order().rbegin(); it != c_ds->parse_order().rend(); ++it) {
                if (*it == o_super) { ds.bytenr.reset(); break; }
                if (*it == o_bytenr) break;
            }
        }
        return btk::dump_super(ds, stdout, stderr);
    }
    if (*c_dt) {
        dt.format = parse_format(dt_format);
        dt.traversal = bfs ? btk::Traversal::bfs : dfs ? btk::Traversal::dfs : btk::Traversal::default_order;
        return btk::dump_tree(dt, stdout, stderr);
    }
    return 2;
}
