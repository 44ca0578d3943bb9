#pragma once

// Runs one of the project's binaries as a child process, the way a user or a script would, and
// captures what it printed (for the CLI tests of surgectl, surge-load, ...).

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "surge/tools/process.hpp"

namespace surge::test {

struct program_result {
  int code = -1; ///< exit status; -1 when it did not exit normally
  std::string out;
  std::string err;
  bool timed_out = false; ///< killed (SIGKILL) after the patience ran out
};

/// Runs `argv[0]` with `argv`, in environment `env` (nullopt: this process's) and directory `cwd`
/// (empty: this process's), stdout and stderr captured apart; waits up to `patience`, then kills
/// it. Returns its status and output. Throws std::runtime_error when it cannot start (tools/
/// common's process.hpp: tools::run; tools::environment() helps build `env`).
program_result run_program(const std::vector<std::string>& argv,
                           const std::optional<std::vector<std::string>>& env,
                           std::chrono::milliseconds patience, const std::string& cwd = {});

/// The whole content of the file at `path` ("" when it cannot be read).
using tools::read_file;

} // namespace surge::test
