// Shared command-line helpers for the btk binaries (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace btk::cli {

// Parses argv; on a usage error prints one line naming the problem and
// returns 2; on --help prints the help and returns 0; else returns -1.
inline int parse(CLI::App& app, int argc, char** argv, const std::string& prog) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "{}: {}\n", prog, e.what());
        return 2;
    }
    return -1;
}

}  // namespace btk::cli
