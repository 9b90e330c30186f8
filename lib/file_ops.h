// `btk file` write operations: parsing one operation (the same words on the
// command line and in a batch script), applying it through FsWriter, and
// running a list of them in one transaction (or one every N).
#pragma once

#include "fs_write.h"
#include "result.h"

#include <cstdio>
#include <string>
#include <vector>

namespace btk {

// One operation: its name and arguments, as typed after `btk file` minus
// the image, e.g. {"mkdir", {"-p", "/a/b"}}.
struct FileOp {
    std::string name;
    std::vector<std::string> args;
    std::string text;  // for error messages (batch line)
};

// Names of the write operations.
bool is_write_op(const std::string& name);
// Splits a batch script line into words (whitespace separated; double or
// single quotes group; backslash escapes). Empty and '#' lines give {}.
Result<std::vector<std::string>> split_op_line(const std::string& line);
// Checks an operation's arguments (count, options, numbers).
Status validate_op(const FileOp& op);
Status apply_op(FsWriter& w, const FileOp& op);

struct FileWriteOptions {
    std::string image;
    std::vector<std::string> extra_devices;  // other devices of a multi-device filesystem
    std::vector<FileOp> ops;
    uint64_t commit_every = 0;  // 0: everything in one transaction
    bool zero_log = false;
};

// Runs the operations; prints one error line (coreutils style) to `err` and
// returns 1 on failure (the image is unchanged, or holds the batches that
// committed before the failing one), 0 on success.
int file_write(const FileWriteOptions& opts, FILE* err);

}  // namespace btk
