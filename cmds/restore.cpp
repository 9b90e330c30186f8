// btk-restore: copy files out of an image, even a damaged one.
#include "cli.h"
#include "restore.h"

int main(int argc, char** argv) {
    CLI::App app{"Restore files from a btrfs image or device into a directory", "btk restore"};
    btk::RestoreOptions o;
    std::vector<std::string> args;
    app.add_option("--subvol,-r", o.subvol, "Subvolume id or path to restore (default: the default subvolume)");
    app.add_option("--path-regex", o.path_regex, "Restore only paths matching this POSIX extended regex (\"/dir/file\")");
    app.add_flag("--dry-run,-D", o.dry_run, "Only list what would be restored");
    app.add_flag("--snapshots,-s", o.snapshots, "Also restore nested subvolumes and snapshots at their paths");
    app.add_flag("--xattr,-x", o.xattr, "Restore extended attributes");
    app.add_flag("--metadata,-m", o.metadata, "Restore owners, modes and times");
    app.add_flag("--symlinks,-S", o.symlinks, "Restore symbolic links");
    app.add_flag("--overwrite,-o", o.overwrite, "Overwrite existing files");
    app.add_flag("--verbose,-v", o.verbose, "Print each path restored");
    app.add_option("--super,-u", o.super_mirror, "Use this superblock copy (0, 1, 2)")->check(CLI::Range(0, 2));
    app.add_option("args", args, "DEVICE... TARGETDIR")->required()->expected(2, -1);
    if (int rc = btk::cli::parse(app, argc, argv, "btk restore"); rc >= 0) return rc;
    o.target = args.back();
    args.pop_back();
    o.devices = args;
    return btk::restore(o, stdout, stderr);
}
