// btk-mkfs: create a btrfs filesystem on devices or image files.
#include "cli.h"
#include "mkfs.h"

int main(int argc, char** argv) {
    CLI::App app{"Create a btrfs filesystem on devices or image files", "btk mkfs"};
    btk::MkfsOptions o;
    std::string nodesize, sectorsize, byte_count;
    std::vector<std::string> runtime;
    app.add_option("--byte-count,-b", byte_count, "Size used on each device (creates missing image files of that size)");
    app.add_option("--nodesize,-n", nodesize, "Tree block size, 4k..64k (default 16k)");
    app.add_option("--sectorsize,-s", sectorsize, "Data block size (default 4k)");
    app.add_option("--metadata,-m", o.metadata_profile, "Metadata profile: single, dup (default on 1 device), raid0, raid1 (default on more), raid10, raid1c3, raid1c4, raid5, raid6");
    app.add_option("--data,-d", o.data_profile, "Data profile: single (default), dup, raid0, raid1, raid10, raid1c3, raid1c4, raid5, raid6");
    app.add_flag("--mixed,-M", o.mixed, "Mix data and metadata in the same block groups");
    app.add_option("--checksum,--csum,-c", o.csum, "Checksum: crc32c (default), xxhash, sha256, blake2");
    app.add_option("--label,-L", o.label, "Filesystem label");
    app.add_option("--uuid,-U", o.fsid, "Filesystem uuid (also fixes the derived uuids: reproducible output)");
    app.add_option("--device-uuid", o.device_uuid, "Device uuid");
    app.add_option("--features,-O", o.features, "Features: name, ^name (off), comma lists; list-all")->allow_extra_args(false);
    app.add_option("--runtime-features,-R", runtime, "Same as -O (quota, free-space-tree)")->allow_extra_args(false);
    app.add_flag("--force,-f", o.force, "Overwrite an existing filesystem or partition table");
    app.add_flag("--nodiscard,-K", o.nodiscard, "Do not discard the device before writing");
    app.add_flag("--quiet,-q", o.quiet, "Print nothing but errors");
    app.add_flag("--verbose,-v", o.verbose, "Also print the chunk layout");
    app.add_option("--rootdir,-r", o.rootdir, "Copy the files of this directory into the new filesystem");
    app.add_option("--compress", o.compress, "With --rootdir: compress data: zlib, lzo, zstd, optionally :LEVEL");
    app.add_option("--subvol,-u", o.subvols, "With --rootdir: make SUBDIR a subvolume; [rw|ro|default|default-ro:]SUBDIR")
        ->allow_extra_args(false);
    app.add_option("--inode-flags", o.inode_flags, "With --rootdir: nodatacow,nodatasum:PATH")->allow_extra_args(false);
    app.add_flag("--shrink", o.shrink, "With --rootdir: shrink chunks and the image file to the minimum");
    app.add_option("--root-owner", o.root_owner, "Owner UID:GID of the top directory");
    app.add_option("devices", o.devices, "DEVICE|IMAGE...");
    if (int rc = btk::cli::parse(app, argc, argv, "btk mkfs"); rc >= 0) return rc;
    o.features.insert(o.features.end(), runtime.begin(), runtime.end());
    auto size = [](const std::string& s, const char* what, auto& dst) -> bool {
        if (s.empty()) return true;
        auto r = btk::parse_size_arg(s);
        if (!r) {
            fmt::print(stderr, "btk mkfs: {}: {}\n", what, r.error().message);
            return false;
        }
        using T = std::remove_reference_t<decltype(dst)>;
        if constexpr (std::is_same_v<T, uint32_t>) {
            if (*r > 0xffffffffULL) {
                fmt::print(stderr, "btk mkfs: {}: {} is too large\n", what, s);
                return false;
            }
            dst = uint32_t(*r);
        } else {
            dst = *r;
        }
        return true;
    };
    uint64_t bc = 0;
    if (!size(nodesize, "--nodesize", o.nodesize) || !size(sectorsize, "--sectorsize", o.sectorsize) ||
        !size(byte_count, "--byte-count", bc))
        return 2;
    if (!byte_count.empty()) o.byte_count = bc;
    bool listing = false;
    for (const auto& f : o.features) listing |= f == "list-all" || f == "list";
    if (o.devices.empty() && !listing) {
        fmt::print(stderr, "btk mkfs: no device given\n");
        return 2;
    }
    return btk::mkfs(o, stdout, stderr);
}
