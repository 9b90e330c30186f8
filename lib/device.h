// One image file or block device, read (and later written) with positioned I/O.
#pragma once

#include "result.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace btk {

class Device {
public:
    // Opens `path` read-only (or read-write). Block devices report their size
    // from the kernel; regular files from stat.
    static Result<std::unique_ptr<Device>> open(const std::string& path, bool writable = false);
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    // Reads exactly out.size() bytes at `offset`; a short read is an I/O error
    // naming the device and the range.
    Status read(uint64_t offset, std::span<uint8_t> out) const;
    // Reads up to out.size() bytes; returns how many were read (short at EOF).
    Result<size_t> read_some(uint64_t offset, std::span<uint8_t> out) const;
    Status write(uint64_t offset, std::span<const uint8_t> data);
    Status sync();

    uint64_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }
    bool is_block_device() const noexcept { return is_bdev_; }
    int fd() const noexcept { return fd_; }

private:
    Device(std::string p, int fd, uint64_t size, bool bdev)
        : path_(std::move(p)), fd_(fd), size_(size), is_bdev_(bdev) {}
    std::string path_;
    int fd_;
    uint64_t size_;
    bool is_bdev_;
};

// Fault injection for crash tests: after `writes` more Device::write calls
// every write fails as if the machine had stopped (-1: no limit). The
// environment variable BTK_FAIL_AFTER_WRITES sets the initial value.
void set_write_budget(int64_t writes) noexcept;
int64_t write_budget() noexcept;

}  // namespace btk
