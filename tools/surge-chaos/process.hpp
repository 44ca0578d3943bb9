#pragma once

// Child processes of surge-chaos, on tools/common's process.hpp: long-running ones (nodes,
// paysim, redis-server) with their output appended to a log file, in their own process group (a
// terminal's Ctrl-C reaches surge-chaos only, which stops them), and short commands (initdb,
// pg_ctl, ip) run to completion with a time limit. Children die with surge-chaos unless they
// daemonize themselves (PostgreSQL under pg_ctl: stopped explicitly).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "surge/tools/process.hpp"

namespace surge::chaos {

using tools::pick_free_port;
using tools::tail_of;

struct command_result {
  int exit_code = -1; ///< -1: did not finish in time (killed) or could not start
  std::string output; ///< stdout and stderr, truncated to 64 KiB
};

/// Runs `argv` (argv[0] an absolute path or found in PATH) to completion, at most `limit`.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds limit = std::chrono::seconds{60});

/// A long-running child (tools::child: signal, wait, stop, kill9) with its log.
class child : public tools::child {
 public:
  using tools::child::start;
  /// Starts `argv` with stdout/stderr appended to `log_path` (after a line naming the command).
  /// Throws std::runtime_error.
  void start(const std::vector<std::string>& argv, const std::string& log_path);
  /// True when the process has exited but is not reaped yet (a zombie): safe from any thread,
  /// reaps nothing.
  bool dead() const;
  /// How the (dead, unreaped) process ended: "signal SIGPIPE", "exit status 1", or "".
  std::string how_it_ended() const;
  /// True (and reaped) when the process has exited, or was never started.
  bool exited() { return wait(std::chrono::milliseconds{0}).has_value(); }
};

/// Unix epoch milliseconds.
int64_t now_ms();

} // namespace surge::chaos
