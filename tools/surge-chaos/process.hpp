#pragma once

// Child processes of surge-chaos: long-running ones (nodes, paysim, redis-server) with their
// output in a log file, and short commands (initdb, pg_ctl, ip) run to completion with a time
// limit. Children die with surge-chaos (PR_SET_PDEATHSIG) unless they daemonize themselves
// (PostgreSQL under pg_ctl: stopped explicitly).

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace surge::chaos {

/// A port on 127.0.0.1 that was free a moment ago, outside the ephemeral range when possible.
uint16_t pick_free_port();

struct command_result {
  int exit_code = -1; ///< -1: did not finish in time (killed) or could not start
  std::string output; ///< stdout and stderr, truncated to 64 KiB
};

/// Runs `argv` (argv[0] an absolute path or found in PATH) to completion, at most `limit`.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds limit = std::chrono::seconds{60});

class child {
 public:
  child() = default;
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Starts `argv` with stdout/stderr appended to `log_path`. Throws std::runtime_error.
  void start(const std::vector<std::string>& argv, const std::string& log_path);
  bool running() const { return pid_.load() > 0; }
  pid_t pid() const { return pid_.load(); }
  /// True when the process has exited but is not reaped yet (a zombie): safe from any thread,
  /// reaps nothing.
  bool dead() const;
  /// How the (dead, unreaped) process ended: "signal SIGPIPE", "exit status 1", or "".
  std::string how_it_ended() const;
  void signal(int sig) const;
  /// True (and reaped) when the process has exited.
  bool exited();
  /// SIGTERM, then SIGKILL after `patience`; reaps. Returns the wait status (or -1).
  int stop(std::chrono::milliseconds patience = std::chrono::seconds{10});
  /// SIGKILL and reap.
  void kill9();

 private:
  std::atomic<pid_t> pid_{-1};
};

/// The last `lines` lines of a file.
std::string tail_of(const std::string& path, std::size_t lines = 30);

/// Unix epoch milliseconds.
int64_t now_ms();

} // namespace surge::chaos
