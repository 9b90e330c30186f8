// btk: front end that runs `btk-NAME ARGS...` for `btk NAME ARGS...`, looking
// first next to its own executable, then on PATH (git style).
#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

static void usage(FILE* f) {
    fmt::print(f,
               "usage: btk <command> [<args>]\n\n"
               "Commands:\n"
               "  inspect   dump superblocks and trees, resolve inodes and addresses\n"
               "  file      list and read files inside an image\n"
               "  restore   copy files out of an image, even a damaged one\n"
               "  check     verify a filesystem\n"
               "  mkfs      create a filesystem\n\n"
               "Run 'btk <command> --help' for the options of a command.\n");
}

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    std::string name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        usage(stdout);
        return 0;
    }
    if (name == "--version") {
        fmt::print("btk 0.1.0\n");
        return 0;
    }
    if (name.empty() || name[0] == '-' || name.find('/') != std::string::npos) {
        fmt::print(stderr, "btk: unknown option or command '{}'\n", name);
        return 2;
    }
    const std::string prog = "btk-" + name;
    std::vector<char*> args;
    args.push_back(const_cast<char*>(prog.c_str()));
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);

    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        std::string dir(self);
        dir.resize(dir.rfind('/') + 1);
        const std::string sibling = dir + prog;
        if (access(sibling.c_str(), X_OK) == 0) execv(sibling.c_str(), args.data());
    }
    execvp(prog.c_str(), args.data());
    if (errno == ENOENT)
        fmt::print(stderr, "btk: '{}' is not a btk command (no {} found)\n", name, prog);
    else
        fmt::print(stderr, "btk: cannot run {}: {}\n", prog, std::strerror(errno));
    return 127;
}
