#include "mount_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace btk {

namespace {

std::string first_line(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// (major:minor, source) of every mount.
std::vector<std::pair<std::string, std::string>> mounts() {
    std::vector<std::pair<std::string, std::string>> out;
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream is(line);
        std::string id, parent, majmin, tok, fstype, source;
        is >> id >> parent >> majmin;
        while (is >> tok && tok != "-") {
        }
        is >> fstype >> source;
        out.push_back({majmin, source});
    }
    return out;
}

bool mounted(dev_t rdev, std::string* where) {
    const std::string mm = fmt::format("{}:{}", major(rdev), minor(rdev));
    for (const auto& [majmin, source] : mounts()) {
        struct stat st;
        if (majmin == mm ||
            (source.starts_with("/") && stat(source.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev)) {
            *where = source;
            return true;
        }
    }
    return false;
}

}  // namespace

Status check_not_in_use(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return make_error(Errc::io, "cannot stat {}: {}", path, std::strerror(errno));
    std::string where;
    if (S_ISBLK(st.st_mode)) {
        if (mounted(st.st_rdev, &where)) return make_error(Errc::invalid_argument, "{} is mounted", path);
        // O_EXCL on a block device fails while someone else holds it.
        int fd = ::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
        if (fd < 0 && errno == EBUSY) return make_error(Errc::invalid_argument, "{} is in use", path);
        if (fd >= 0) ::close(fd);
        return {};
    }
    for (int i = 0; i < 1024; ++i) {
        const std::string sys = fmt::format("/sys/block/loop{}", i);
        if (access(sys.c_str(), F_OK) != 0) continue;
        const std::string back = first_line(sys + "/loop/backing_file");
        if (back.empty()) continue;
        struct stat bs;
        if (stat(back.c_str(), &bs) != 0 || bs.st_dev != st.st_dev || bs.st_ino != st.st_ino) continue;
        unsigned maj = 0, min = 0;
        if (sscanf(first_line(sys + "/dev").c_str(), "%u:%u", &maj, &min) != 2) continue;
        if (mounted(makedev(maj, min), &where))
            return make_error(Errc::invalid_argument, "{} is mounted through /dev/loop{}", path, i);
    }
    return {};
}

}  // namespace btk
