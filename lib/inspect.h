// The inspect tools as library functions: each takes its options, writes its
// report to `out` and its diagnostics to `err`, and returns the exit status
// (0 success, 1 failure). cmds/inspect.cpp is only the command line over these.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace btk {

enum class OutputFormat { text, json };

struct DumpSuperOptions {
    std::vector<std::string> devices;
    bool full = false;                    // -f: also sys_chunk_array and backup roots
    bool all = false;                     // -a: every superblock copy
    int mirror = 0;                       // -s N: which copy (0, 1, 2)
    std::optional<uint64_t> bytenr;       // --bytenr: superblock at this offset
    bool force = false;                   // -F: print even with a bad magic
    OutputFormat format = OutputFormat::text;
};
int dump_super(const DumpSuperOptions& opts, std::FILE* out, std::FILE* err);

enum class Traversal { default_order, bfs, dfs };

struct DumpTreeOptions {
    std::vector<std::string> devices;
    std::vector<std::string> trees;       // -t: tree ids or names
    std::vector<uint64_t> blocks;         // -b: print these blocks only
    bool follow = false;                  // --follow: with -b, also print children
    bool extents = false;                 // -e: extent tree only
    bool device = false;                  // -d: device trees only (chunk, dev)
    bool roots = false;                   // -r: list roots only
    bool backups = false;                 // -R: with -r, backup roots too
    bool uuid = false;                    // -u: uuid tree only
    Traversal traversal = Traversal::default_order;
    bool hide_names = false;
    bool csum_headers = false;
    bool csum_items = false;
    std::optional<uint64_t> tree_root;    // alternative root tree bytenr (-t with bytenr)
    int super_mirror = -1;                // use this superblock copy (-1: best)
    OutputFormat format = OutputFormat::text;
};
int dump_tree(const DumpTreeOptions& opts, std::FILE* out, std::FILE* err);

}  // namespace btk
