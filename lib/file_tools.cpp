// btk file ls / cat.
#include "file.h"
#include "fs.h"
#include "restore.h"

#include <fmt/format.h>

#include <ctime>
#include <optional>
#include <sys/stat.h>

namespace btk {

using namespace format;

namespace {

Result<std::pair<std::unique_ptr<Filesystem>, uint64_t>> open_for_files(
    const std::vector<std::string>& devices, const std::optional<std::string>& subvol_arg) {
    OpenOptions oo;
    oo.tolerate_chunk_errors = true;
    BTK_ASSIGN(auto fs, Filesystem::open(devices, oo));
    FileSystemView v(*fs);
    uint64_t subvol;
    if (subvol_arg) {
        BTK_ASSIGN(subvol, v.resolve_subvol_arg(*subvol_arg));
    } else {
        BTK_ASSIGN(subvol, v.default_subvol());
    }
    return std::make_pair(std::move(fs), subvol);
}

std::string mode_string(uint32_t mode) {
    std::string s = "?---------";
    switch (mode & S_IFMT) {
        case S_IFREG: s[0] = '-'; break;
        case S_IFDIR: s[0] = 'd'; break;
        case S_IFLNK: s[0] = 'l'; break;
        case S_IFCHR: s[0] = 'c'; break;
        case S_IFBLK: s[0] = 'b'; break;
        case S_IFIFO: s[0] = 'p'; break;
        case S_IFSOCK: s[0] = 's'; break;
    }
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i)
        if (mode & (1u << (8 - i))) s[1 + i] = rwx[i];
    if (mode & S_ISUID) s[3] = (mode & S_IXUSR) ? 's' : 'S';
    if (mode & S_ISGID) s[6] = (mode & S_IXGRP) ? 's' : 'S';
    if (mode & S_ISVTX) s[9] = (mode & S_IXOTH) ? 't' : 'T';
    return s;
}

std::string escape_name(std::string_view n) {
    std::string out;
    for (unsigned char c : n) {
        if (c < 0x20 || c == 0x7f || c == '\\')
            out += fmt::format("\\{:03o}", c);
        else
            out += char(c);
    }
    return out;
}

void print_entry(std::FILE* out, FileSystemView& v, uint64_t subvol, uint64_t ino, const std::string& shown,
                 bool long_format, std::FILE* err, int& rc) {
    if (!long_format) {
        fmt::print(out, "{}\n", escape_name(shown));
        return;
    }
    auto in = v.inode(subvol, ino);
    if (!in) {
        fmt::print(err, "ls: {}: {}\n", shown, in.error().message);
        rc = 1;
        return;
    }
    const auto& it = in->item;
    std::time_t t = std::time_t(it.mtime.sec.get());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[32];
    std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
    std::string size = fmt::format("{}", it.size.get());
    if (S_ISCHR(in->mode()) || S_ISBLK(in->mode()))
        size = fmt::format("{}, {}", it.rdev.get() >> 20, it.rdev.get() & 0xfffff);
    std::string line = fmt::format("{} {} {} {} {} {} {}", mode_string(in->mode()), it.nlink.get(), it.uid.get(),
                                   it.gid.get(), size, date, escape_name(shown));
    if (in->is_symlink()) {
        auto target = v.read_symlink(subvol, ino);
        line += " -> " + (target ? escape_name(*target) : std::string("?"));
    }
    fmt::print(out, "{}\n", line);
}

// The line for an unlinked subvolume's placeholder directory.
void print_placeholder(std::FILE* out, const std::string& shown, bool long_format) {
    if (long_format)
        fmt::print(out, "drwxr-xr-x 1 0 0 0 1970-01-01 00:00 {}\n", escape_name(shown));
    else
        fmt::print(out, "{}\n", escape_name(shown));
}

// Where a directory entry leads: the subvolume and inode to show, or nothing
// when it was printed as an unlinked subvolume placeholder or could not be
// resolved (reported, rc set).
std::optional<std::pair<uint64_t, uint64_t>> entry_target(std::FILE* out, std::FILE* err, FileSystemView& v,
                                                          uint64_t subvol, uint64_t dir, const DirEntry& e,
                                                          const std::string& shown, bool long_format, int& rc) {
    if (!e.is_subvol()) return std::make_pair(subvol, e.location.objectid);
    if (!v.subvol_entry_live(subvol, dir, e)) {
        print_placeholder(out, shown, long_format);
        return std::nullopt;
    }
    auto rd = v.subvol_root_dir(e.location.objectid);
    if (!rd) {
        fmt::print(err, "ls: {}: {}\n", shown, rd.error().message);
        rc = 1;
        return std::nullopt;
    }
    return std::make_pair(e.location.objectid, *rd);
}

void list_recursive(std::FILE* out, std::FILE* err, FileSystemView& v, uint64_t subvol, uint64_t dir,
                    const std::string& prefix, bool long_format, int depth, int& rc) {
    auto ents = v.list_dir(subvol, dir);
    if (!ents) {
        fmt::print(err, "ls: {}: {}\n", prefix.empty() ? "." : prefix, ents.error().message);
        rc = 1;
        return;
    }
    for (const auto& e : *ents) {
        const std::string shown = prefix.empty() ? e.name : prefix + "/" + e.name;
        auto target = entry_target(out, err, v, subvol, dir, e, shown, long_format, rc);
        if (!target) continue;
        const auto [sv, ino] = *target;
        print_entry(out, v, sv, ino, shown, long_format, err, rc);
        if (e.type == FT_DIR && depth < 4096 && e.name != "." && e.name != "..")
            list_recursive(out, err, v, sv, ino, shown, long_format, depth + 1, rc);
    }
}

}  // namespace

int file_ls(const FileLsOptions& o, std::FILE* out, std::FILE* err) {
    auto opened = open_for_files(o.devices, o.subvol);
    if (!opened) {
        fmt::print(err, "ls: {}\n", opened.error().message);
        return 2;
    }
    auto& [fs, subvol] = *opened;
    FileSystemView v(*fs);
    auto loc = v.resolve_path(subvol, o.path);
    if (!loc) {
        fmt::print(err, "ls: cannot access '{}': {}\n", o.path, loc.error().message);
        return 2;
    }
    if (loc->placeholder) {
        if (!o.recursive) print_placeholder(out, o.path, o.long_format);
        return 0;
    }
    auto in = v.inode(loc->subvol, loc->ino);
    if (!in) {
        fmt::print(err, "ls: {}: {}\n", o.path, in.error().message);
        return 2;
    }
    int rc = 0;
    if (!in->is_dir()) {
        print_entry(out, v, loc->subvol, loc->ino, o.path, o.long_format, err, rc);
        return rc;
    }
    if (o.recursive) {
        list_recursive(out, err, v, loc->subvol, loc->ino, "", o.long_format, 0, rc);
        return rc;
    }
    auto ents = v.list_dir(loc->subvol, loc->ino);
    if (!ents) {
        fmt::print(err, "ls: {}: {}\n", o.path, ents.error().message);
        return 1;
    }
    for (const auto& e : *ents) {
        auto target = entry_target(out, err, v, loc->subvol, loc->ino, e, e.name, o.long_format, rc);
        if (!target) continue;
        print_entry(out, v, target->first, target->second, e.name, o.long_format, err, rc);
    }
    return rc;
}

int file_cat(const FileCatOptions& o, std::FILE* out, std::FILE* err) {
    auto opened = open_for_files(o.devices, o.subvol);
    if (!opened) {
        fmt::print(err, "cat: {}\n", opened.error().message);
        return 2;
    }
    auto& [fs, subvol] = *opened;
    FileSystemView v(*fs);
    auto loc = v.resolve_path(subvol, o.path);
    if (!loc) {
        fmt::print(err, "cat: {}: {}\n", o.path, loc.error().message);
        return 1;
    }
    if (loc->placeholder) {
        fmt::print(err, "cat: {}: Is a directory\n", o.path);
        return 1;
    }
    auto in = v.inode(loc->subvol, loc->ino);
    if (!in) {
        fmt::print(err, "cat: {}: {}\n", o.path, in.error().message);
        return 1;
    }
    if (in->is_dir()) {
        fmt::print(err, "cat: {}: Is a directory\n", o.path);
        return 1;
    }
    if (!in->is_reg() && !in->is_symlink()) {
        fmt::print(err, "cat: {}: not a regular file\n", o.path);
        return 1;
    }
    std::vector<uint8_t> buf;
    const uint64_t size = in->size();
    for (uint64_t pos = 0; pos < size;) {
        const uint64_t n = std::min<uint64_t>(size - pos, 4u << 20);
        buf.resize(n);
        if (auto s = v.read(*in, pos, buf); !s) {
            std::fflush(out);
            fmt::print(err, "cat: {}: {}\n", o.path, s.error().message);
            return 1;
        }
        if (std::fwrite(buf.data(), 1, n, out) != n) {
            fmt::print(err, "cat: write error\n");
            return 1;
        }
        pos += n;
    }
    return 0;
}

}  // namespace btk
