#include "device.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace btk {

namespace {
// Writes left before the simulated crash; -1: no limit. Starts from
// BTK_FAIL_AFTER_WRITES so command-line runs can be cut too.
std::atomic<int64_t> g_write_budget{[] {
    const char* e = std::getenv("BTK_FAIL_AFTER_WRITES");
    return e && *e ? std::strtoll(e, nullptr, 10) : int64_t(-1);
}()};
}  // namespace

void set_write_budget(int64_t writes) noexcept { g_write_budget = writes; }
int64_t write_budget() noexcept { return g_write_budget; }

Result<std::unique_ptr<Device>> Device::open(const std::string& path, bool writable) {
    int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "cannot open {}: {}", path, std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return make_error(Errc::io, "cannot stat {}: {}", path, std::strerror(e));
    }
    uint64_t size = 0;
    bool bdev = S_ISBLK(st.st_mode);
    if (bdev) {
        if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
            int e = errno;
            ::close(fd);
            return make_error(Errc::io, "cannot get size of {}: {}", path, std::strerror(e));
        }
    } else if (S_ISREG(st.st_mode)) {
        size = uint64_t(st.st_size);
    } else {
        ::close(fd);
        return make_error(Errc::invalid_argument, "{} is not a regular file or block device", path);
    }
    return std::unique_ptr<Device>(new Device(path, fd, size, bdev));
}

Device::~Device() {
    if (fd_ >= 0) ::close(fd_);
}

Result<size_t> Device::read_some(uint64_t offset, std::span<uint8_t> out) const {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(Errc::io, "read of {} bytes at {} on {} failed: {}", out.size(), offset,
                              path_, std::strerror(errno));
        }
        if (n == 0) break;
        done += size_t(n);
    }
    return done;
}

Status Device::read(uint64_t offset, std::span<uint8_t> out) const {
    if (offset > size_ || out.size() > size_ - offset)
        return make_error(Errc::io, "read of {} bytes at {} is beyond the end of {} ({} bytes)",
                          out.size(), offset, path_, size_);
    BTK_ASSIGN(size_t got, read_some(offset, out));
    if (got != out.size())
        return make_error(Errc::io, "short read at {} on {}: {} of {} bytes", offset, path_, got,
                          out.size());
    return {};
}

Status Device::write(uint64_t offset, std::span<const uint8_t> data) {
    if (int64_t b = g_write_budget.load(); b >= 0) {
        if (b == 0)
            return make_error(Errc::io, "write of {} bytes at {} on {} cut (simulated crash)", data.size(),
                              offset, path_);
        g_write_budget = b - 1;
    }
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(Errc::io, "write of {} bytes at {} on {} failed: {}", data.size(),
                              offset, path_, std::strerror(errno));
        }
        done += size_t(n);
    }
    if (offset + data.size() > size_ && !is_bdev_) size_ = offset + data.size();
    return {};
}

Status Device::sync() {
    if (::fsync(fd_) != 0) return make_error(Errc::io, "fsync of {} failed: {}", path_, std::strerror(errno));
    return {};
}

}  // namespace btk
