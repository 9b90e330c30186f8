// mkfs targets: checks before anything is written (duplicates, mounted or
// busy devices, existing signatures, sizes) and the preparation of each
// device for writing (create, extend, discard, clear old signatures).
#include "mkfs_layout.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace btk {

using namespace format;

namespace {

constexpr uint64_t MiB = 1ULL << 20;

Error bad(std::string msg) { return Error{Errc::invalid_argument, std::move(msg)}; }

std::string read_first_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// (maj:min, source) of every mount.
std::vector<std::pair<std::string, std::string>> read_mounts() {
    std::vector<std::pair<std::string, std::string>> m;
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream is(line);
        std::string id, parent, majmin, tok;
        is >> id >> parent >> majmin;
        while (is >> tok && tok != "-") {
        }
        std::string fstype, source;
        is >> fstype >> source;
        m.push_back({majmin, source});
    }
    return m;
}

bool rdev_mounted(const std::vector<std::pair<std::string, std::string>>& m, dev_t rdev) {
    const std::string mm = fmt::format("{}:{}", major(rdev), minor(rdev));
    for (const auto& [majmin, source] : m) {
        struct stat st;
        if (majmin == mm ||
            (source.starts_with("/") && stat(source.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev))
            return true;
    }
    return false;
}

// A block device held exclusively by someone (a mounted multi-device
// filesystem holds all its devices, though only one shows in mountinfo).
bool busy(const std::string& blk) {
    int fd = open(blk.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    return errno == EBUSY;
}

Status check_not_mounted(const std::string& path, const struct stat& st) {
    const auto m = read_mounts();
    if (S_ISBLK(st.st_mode)) {
        if (rdev_mounted(m, st.st_rdev)) return bad(fmt::format("{} is mounted", path));
        return {};
    }
    // An image file: is a loop device backed by it mounted or in use?
    for (int i = 0; i < 1024; ++i) {
        const std::string sys = fmt::format("/sys/block/loop{}", i);
        if (access(sys.c_str(), F_OK) != 0) continue;
        std::string back = read_first_line(sys + "/loop/backing_file");
        if (back.empty()) continue;
        struct stat bs;
        if (stat(back.c_str(), &bs) != 0 || bs.st_dev != st.st_dev || bs.st_ino != st.st_ino) continue;
        unsigned maj = 0, min = 0;
        if (sscanf(read_first_line(sys + "/dev").c_str(), "%u:%u", &maj, &min) != 2) continue;
        if (rdev_mounted(m, makedev(maj, min)))
            return bad(fmt::format("{} is mounted through /dev/loop{}", path, i));
        if (busy(fmt::format("/dev/loop{}", i)))
            return bad(fmt::format("{} is in use through /dev/loop{}", path, i));
    }
    return {};
}

Status check_no_signature(const std::string& path) {
    blkid_probe pr = blkid_new_probe_from_filename(path.c_str());
    if (!pr) return make_error(Errc::io, "cannot probe {} for existing filesystems: {}", path, std::strerror(errno));
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
    blkid_probe_enable_partitions(pr, 1);
    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
    int rc = blkid_do_fullprobe(pr);
    std::string what;
    if (rc == 0) {
        const char* v = nullptr;
        if (blkid_probe_lookup_value(pr, "TYPE", &v, nullptr) == 0 && v)
            what = fmt::format("an existing filesystem ({})", v);
        else if (blkid_probe_lookup_value(pr, "PTTYPE", &v, nullptr) == 0 && v)
            what = fmt::format("a partition table ({})", v);
        else
            what = "an existing signature";
    } else if (rc == -2) {
        what = "several conflicting signatures";
    }
    blkid_free_probe(pr);
    if (rc == -1) return make_error(Errc::io, "cannot probe {} for existing filesystems", path);
    if (!what.empty()) return bad(fmt::format("{} appears to contain {}; use -f to overwrite", path, what));
    return {};
}

Status zero_range(Device& d, uint64_t off, uint64_t len) {
    if (len == 0) return {};
    if (!d.is_block_device() &&
        fallocate(d.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(off), off_t(len)) == 0)
        return {};
    std::vector<uint8_t> z(std::min<uint64_t>(len, 1 * MiB), 0);
    for (uint64_t done = 0; done < len;) {
        const uint64_t n = std::min<uint64_t>(z.size(), len - done);
        BTK_TRY(d.write(off + done, {z.data(), size_t(n)}));
        done += n;
    }
    return {};
}

}  // namespace

Status probe_devices(MkfsLayout& x, const std::vector<std::string>& paths, std::optional<uint64_t> byte_count,
                     bool force) {
    x.devices.clear();
    x.devices.reserve(paths.size());
    for (const auto& path : paths) {
        MkfsDevice d;
        d.devid = x.devices.size() + 1;
        d.path = path;
        d.exists = stat(path.c_str(), &d.st) == 0;
        if (!d.exists && errno != ENOENT)
            return make_error(Errc::io, "cannot stat {}: {}", path, std::strerror(errno));
        if (!d.exists && !byte_count)
            return bad(fmt::format("{} does not exist (use -b SIZE to create an image file)", path));
        if (d.exists && !S_ISREG(d.st.st_mode) && !S_ISBLK(d.st.st_mode))
            return bad(fmt::format("{} is not a regular file or block device", path));
        d.is_blk = d.exists && S_ISBLK(d.st.st_mode);
        for (const auto& o : x.devices) {
            const bool same = o.path == path ||
                              (d.exists && o.exists &&
                               (d.is_blk ? o.is_blk && o.st.st_rdev == d.st.st_rdev
                                         : !o.is_blk && o.st.st_dev == d.st.st_dev && o.st.st_ino == d.st.st_ino));
            if (same) return bad(fmt::format("{} is given more than once (as {})", path, o.path));
        }
        if (d.is_blk) {
            int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return make_error(Errc::io, "cannot open {}: {}", path, std::strerror(errno));
            int r = ioctl(fd, BLKGETSIZE64, &d.old_size);
            close(fd);
            if (r != 0) return make_error(Errc::io, "cannot get the size of {}", path);
        } else if (d.exists) {
            d.old_size = uint64_t(d.st.st_size);
        }
        uint64_t size = d.old_size;
        if (byte_count) {
            if (d.is_blk && *byte_count > d.old_size)
                return bad(fmt::format("-b {} is larger than {} ({} bytes)", *byte_count, path, d.old_size));
            size = *byte_count;
        }
        d.size = size / x.ss * x.ss;
        x.devices.push_back(std::move(d));
    }
    // Checks that look at the devices' contents, once the list is sane.
    for (auto& d : x.devices) {
        if (!d.exists) continue;
        BTK_TRY(check_not_mounted(d.path, d.st));
        if (d.is_blk) {
            // Held (as mount does) until the end, so that it cannot be
            // mounted while it is written.
            d.excl_fd = open(d.path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
            if (d.excl_fd < 0)
                return make_error(errno == EBUSY ? Errc::invalid_argument : Errc::io, "cannot open {} exclusively: {}",
                                  d.path,
                                  errno == EBUSY ? "it is in use (mounted or held by another program)"
                                                 : std::strerror(errno));
        }
        if (!force && d.old_size > 0) BTK_TRY(check_no_signature(d.path));
    }
    return {};
}

Status open_devices_for_write(MkfsLayout& x, bool nodiscard) {
    for (auto& d : x.devices) {
        const char* p = d.path.c_str();
        if (!d.exists) {
            int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) return make_error(Errc::io, "cannot create {}: {}", d.path, std::strerror(errno));
            int r = ftruncate(fd, off_t(d.size));
            int e = errno;
            close(fd);
            if (r != 0) {
                unlink(p);
                return make_error(Errc::io, "cannot size {} to {} bytes: {}", d.path, d.size, std::strerror(e));
            }
        } else if (!d.is_blk && d.size > d.old_size) {
            if (truncate(p, off_t(d.size)) != 0)
                return make_error(Errc::io, "cannot extend {} to {} bytes: {}", d.path, d.size, std::strerror(errno));
        }
        BTK_ASSIGN(d.dev, Device::open(d.path, true));
        Device& dev = *d.dev;
        if (!nodiscard) {
            if (dev.is_block_device()) {
                uint64_t range[2] = {0, d.size};
                (void)ioctl(dev.fd(), BLKDISCARD, &range);  // best effort; not all devices support it
            } else if (const uint64_t reused = std::min(d.old_size, d.size); reused > 0) {
                // An image file: drop the old contents of the part the new
                // filesystem covers (keeps the file sparse).
                (void)fallocate(dev.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, off_t(reused));
            }
        }
        // Old signatures: the reserved start, the end of the device, superblock
        // copies that the new filesystem does not cover.
        BTK_TRY(zero_range(dev, 0, MKFS_RESERVED));
        const uint64_t tail = std::min<uint64_t>(dev.size(), 1 * MiB);
        const uint64_t tail_start = std::max((dev.size() - tail) / x.ss * x.ss, d.alloc_end);
        if (tail_start < dev.size()) BTK_TRY(zero_range(dev, tail_start, dev.size() - tail_start));
        for (int m = 1; m < SUPER_MIRROR_MAX; ++m) {
            const uint64_t off = super_offset(m);
            if (off + SUPER_INFO_SIZE <= dev.size() && off + SUPER_INFO_SIZE >= d.size)
                BTK_TRY(zero_range(dev, off, SUPER_INFO_SIZE));
        }
    }
    return {};
}

void release_devices(MkfsLayout& x) {
    for (auto& d : x.devices) {
        d.dev.reset();
        if (d.excl_fd >= 0) close(d.excl_fd);
        d.excl_fd = -1;
    }
}

}  // namespace btk
