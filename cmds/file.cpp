// btk-file: list, read and change files inside an image.
#include "cli.h"
#include "file_ops.h"
#include "restore.h"

#include <fstream>

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

    // Write operations: `btk file OP [-flags] IMAGE ARGS...`, one transaction
    // each; `batch [--commit-every N] IMAGE SCRIPT` runs a script of them.
    std::vector<std::pair<CLI::App*, std::string>> write_cmds;
    std::vector<std::string> op_args;
    static const char* const OPS[][2] = {
        {"put", "Copy host files (-r: directories) into the image"}, {"mkdir", "Make a directory (-p: parents)"},
        {"rm", "Remove a file or (-r) a directory tree"}, {"mv", "Rename or move"},
        {"ln", "Make a hard link"}, {"symlink", "Make a symbolic link"},
        {"mknod", "Make a device node"}, {"mkfifo", "Make a FIFO"},
        {"setxattr", "Set an extended attribute"}, {"rmxattr", "Remove an extended attribute"},
        {"truncate", "Set a file's size"}, {"fallocate", "Preallocate space for a file"},
        {"chmod", "Change permission bits (octal)"}, {"chown", "Change owner UID:GID"},
        {"touch", "Update times, or create an empty file"}, {"chattr", "Set or clear +C (nodatacow), +c (compress)"}};
    bool zero_log = false;
    for (const auto& [name, desc] : OPS) {
        auto* c = app.add_subcommand(name, desc);
        c->allow_extras();
        c->prefix_command();
        write_cmds.push_back({c, name});
    }
    std::string batch_image, batch_script;
    uint64_t commit_every = 0;
    auto* c_batch = app.add_subcommand("batch", "Run a script of operations (one per line) in one transaction");
    c_batch->add_option("--commit-every", commit_every, "Commit after every N operations");
    c_batch->add_flag("--zero-log", zero_log, "Zero a present log tree (its changes are lost)");
    std::vector<std::string> batch_devices;
    c_batch->add_option("--device", batch_devices, "Another device of a multi-device filesystem (repeatable)");
    c_batch->add_option("image", batch_image, "Image file or device")->required();
    c_batch->add_option("script", batch_script, "Script file ('-': standard input)")->required();

    if (int rc = btk::cli::parse(app, argc, argv, "btk file"); rc >= 0) return rc;
    for (const auto& [c, name] : write_cmds) {
        if (!*c) continue;
        // Flags (before the image) stay with the operation's arguments.
        std::vector<std::string> rest = c->remaining();
        btk::FileWriteOptions o;
        btk::FileOp op{name, {}, {}};
        size_t i = 0;
        for (; i < rest.size() && rest[i].size() > 1 && rest[i][0] == '-'; ++i) {
            if (rest[i] == "--zero-log") {
                o.zero_log = true;
                continue;
            }
            if (rest[i] == "--device" || rest[i].starts_with("--device=")) {
                if (rest[i] == "--device") {
                    if (i + 1 >= rest.size()) {
                        fmt::print(stderr, "btk file {}: --device needs a path\n", name);
                        return 2;
                    }
                    o.extra_devices.push_back(rest[++i]);
                } else {
                    o.extra_devices.push_back(rest[i].substr(9));
                }
                continue;
            }
            op.args.push_back(rest[i]);
        }
        if (i >= rest.size()) {
            fmt::print(stderr, "btk file {}: no image given\n", name);
            return 2;
        }
        o.image = rest[i++];
        op.args.insert(op.args.end(), rest.begin() + ptrdiff_t(i), rest.end());
        if (auto s = btk::validate_op(op); !s) {
            fmt::print(stderr, "btk file: {}\n", s.error().message);
            return 2;
        }
        o.ops.push_back(std::move(op));
        return btk::file_write(o, stderr);
    }
    if (*c_batch) {
        btk::FileWriteOptions o;
        o.image = batch_image;
        o.extra_devices = batch_devices;
        o.commit_every = commit_every;
        o.zero_log = zero_log;
        std::ifstream f;
        std::istream* in = &std::cin;
        if (batch_script != "-") {
            f.open(batch_script);
            if (!f) {
                fmt::print(stderr, "btk file: cannot read script {}\n", batch_script);
                return 2;
            }
            in = &f;
        }
        std::string line;
        for (int n = 1; std::getline(*in, line); ++n) {
            auto words = btk::split_op_line(line);
            if (!words) {
                fmt::print(stderr, "btk file: {} line {}: {}\n", batch_script, n, words.error().message);
                return 2;
            }
            if (words->empty()) continue;
            btk::FileOp op{(*words)[0], std::vector<std::string>(words->begin() + 1, words->end()),
                           fmt::format("{} line {}", batch_script, n)};
            if (auto s = btk::validate_op(op); !s) {
                fmt::print(stderr, "btk file: {} line {}: {}\n", batch_script, n, s.error().message);
                return 2;
            }
            o.ops.push_back(std::move(op));
        }
        return btk::file_write(o, stderr);
    }
    if (*c_ls) {
        ls.devices = {ls_image};
        return btk::file_ls(ls, stdout, stderr);
    }
    cat.devices = {cat_image};
    return btk::file_cat(cat, stdout, stderr);
}
