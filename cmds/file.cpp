// btk-file: list and read files inside an image.
#include "cli.h"
#include "restore.h"

int main(int argc, char** argv) {
    CLI::App app{"List and read files inside a btrfs image without mounting it", "btk file"};
    app.require_subcommand(1);

    btk::FileLsOptions ls;
    std::string ls_image;
    auto* c_ls = app.add_subcommand("ls", "List a directory (or show one file)");
    c_ls->add_flag("-l", ls.long_format, "Long format: mode, links, uid, gid, size, mtime (UTC), name");
    c_ls->add_flag("-R", ls.recursive, "List recursively, one relative path per line");
    c_ls->add_option("--subvol", ls.subvol, "Subvolume id or path (default: the default subvolume)");
    c_ls->add_option("image", ls_image, "Image file or device")->required();
    c_ls->add_option("path", ls.path, "Absolute path inside the image")->capture_default_str();

    btk::FileCatOptions cat;
    std::string cat_image;
    auto* c_cat = app.add_subcommand("cat", "Write a file's content to standard output");
    c_cat->add_option("--subvol", cat.subvol, "Subvolume id or path (default: the default subvolume)");
    c_cat->add_option("image", cat_image, "Image file or device")->required();
    c_cat->add_option("path", cat.path, "Absolute path inside the image")->required();

    if (int rc = btk::cli::parse(app, argc, argv, "btk file"); rc >= 0) return rc;
    if (*c_ls) {
        ls.devices = {ls_image};
        return btk::file_ls(ls, stdout, stderr);
    }
    cat.devices = {cat_image};
    return btk::file_cat(cat, stdout, stderr);
}
