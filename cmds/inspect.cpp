// btk-inspect: superblock and tree dumps, resolvers, statistics.
#include "cli.h"
#include "inspect.h"
#include "inspect_resolve.h"

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

    btk::InodeResolveOptions ir;
    auto* c_ir = app.add_subcommand("inode-resolve", "Print the paths of an inode");
    c_ir->add_flag("-v,--verbose", ir.verbose, "Print a summary on stderr");
    c_ir->add_option("--subvol", ir.subvol, "Subvolume (id or path; default: the default subvolume)");
    c_ir->add_option("inode", ir.inode, "Inode number")->required();
    c_ir->add_option("devices", ir.devices, "Images or devices")->required();

    btk::LogicalResolveOptions lr;
    auto* c_lr = app.add_subcommand("logical-resolve", "Print the files using a logical address");
    c_lr->add_flag("-P", lr.inodes_only, "Print inode, offset and root instead of paths");
    c_lr->add_flag("-o", lr.ignore_offset, "Ignore offsets: every file extent of the extent");
    c_lr->add_flag("-v,--verbose", lr.verbose, "Print a summary on stderr");
    c_lr->add_option("--subvol", lr.subvol, "Only this subvolume (id or path), paths relative to it");
    c_lr->add_option("logical", lr.logical, "Logical address")->required();
    c_lr->add_option("devices", lr.devices, "Images or devices")->required();

    btk::SubvolidResolveOptions sr;
    auto* c_sr = app.add_subcommand("subvolid-resolve", "Print the path of a subvolume id");
    c_sr->add_option("subvolid", sr.subvolid, "Subvolume id")->required();
    c_sr->add_option("devices", sr.devices, "Images or devices")->required();

    btk::ListSubvolumesOptions ls;
    std::string ls_format = "text";
    auto* c_ls = app.add_subcommand("list-subvolumes", "List subvolumes (like btrfs subvolume list)");
    c_ls->add_flag("-p", ls.print_parent, "Print the parent ID");
    c_ls->add_flag("-c", ls.print_ogen, "Print the creation generation (cgen)");
    c_ls->add_flag("-g", ls.print_gen, "Print the generation");
    c_ls->add_flag("-u", ls.print_uuid, "Print the UUID");
    c_ls->add_flag("-q", ls.print_parent_uuid, "Print the parent UUID");
    c_ls->add_flag("-R", ls.print_received_uuid, "Print the received UUID");
    c_ls->add_flag("-s", ls.snapshots_only, "Only snapshots");
    c_ls->add_flag("-r", ls.readonly_only, "Only read-only subvolumes");
    c_ls->add_flag("-d", ls.deleted_only, "Only deleted, not yet cleaned subvolumes");
    c_ls->add_flag("-t", ls.table, "Print as a table");
    c_ls->add_option("-G", ls.gen_filter, "Generation filter: N, +N (>=) or -N (<=)");
    c_ls->add_option("-C", ls.ogen_filter, "Creation generation filter: N, +N or -N");
    c_ls->add_option("--sort", ls.sort, "Sort keys: rootid,gen,ogen,path each with optional +/-");
    c_ls->add_option("--format", ls_format, "Output format")->check(CLI::IsMember({"text", "json"}));
    c_ls->add_option("devices", ls.devices, "Images or devices")->required();

    btk::TreeStatsOptions ts;
    auto* c_ts = app.add_subcommand("tree-stats", "Print statistics of the main trees");
    c_ts->add_flag("-b", ts.raw_bytes, "Raw byte counts");
    c_ts->add_option("devices", ts.devices, "Images or devices")->required();

    if (int rc = btk::cli::parse(app, argc, argv, "btk inspect"); rc >= 0) return rc;
    if (*c_ir) return btk::inode_resolve(ir, stdout, stderr);
    if (*c_lr) return btk::logical_resolve(lr, stdout, stderr);
    if (*c_sr) return btk::subvolid_resolve(sr, stdout, stderr);
    if (*c_ls) {
        ls.format = parse_format(ls_format);
        return btk::list_subvolumes(ls, stdout, stderr);
    }
    if (*c_ts) return btk::tree_stats(ts, stdout, stderr);
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
