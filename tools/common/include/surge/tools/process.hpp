#pragma once

// Child processes of the tools and the test harnesses (surge-chaos's servers and nodes,
// surge-bench's and the tests' surge-paysim, the tests' surge-node and CLI runs, surge-load's
// gnuplot): one fork/exec set-up, one way to wait, stop and describe them.
//
// Every child starts the same way: stdin from /dev/null, stdout and stderr where the spec says,
// no other descriptor of this process, an empty signal mask, and it gets SIGKILL when this process
// ends, even when it crashes (PR_SET_PDEATHSIG; every child is forked on one thread that lives
// as long as the process, since the signal follows the *thread* that forked). A child that must
// outlive this process cannot be started here; one that daemonizes itself (pg_ctl) escapes it.
//
// Every call here blocks the calling thread (fork, waiting): never call it on a CAF scheduler
// thread or an HTTP I/O thread.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace surge::tools {

/// How a child process starts.
struct child_spec {
  /// argv[0] is a path (with a '/') or a name looked up in PATH.
  std::vector<std::string> argv;
  /// "NAME=value" entries; nullopt: this process's environment (see environment()).
  std::optional<std::vector<std::string>> env;
  /// Its working directory; empty: this process's. When it cannot change there, it exits with
  /// status 127 after saying so on its stderr.
  std::string cwd;
  /// When not empty: its stdout and stderr go to this file (created 0644 when missing), appended,
  /// or from empty with `truncate_log`; out_fd and err_fd are then not used.
  std::string log_path;
  bool truncate_log = false;
  /// Its stdout (not closed here); -1: this process's.
  int out_fd = -1;
  /// Its stderr (not closed here); -1: the same as its stdout.
  int err_fd = -1;
  /// Its own process group: a terminal's Ctrl-C reaches this process only (which then stops it).
  bool own_process_group = false;
};

/// Starts `spec` and returns the pid; the caller reaps it (wait_exit(), or a child object).
/// Throws std::runtime_error when it cannot open the log or fork. When the exec fails, the child
/// writes "exec ARGV0 failed, errno N" on its stderr and exits with status 127.
pid_t spawn(const child_spec& spec);

/// This process's environment ("NAME=value" entries), those for which `keep` is true (all when
/// `keep` is empty): the start of a child's environment.
std::vector<std::string> environment(const std::function<bool(std::string_view entry)>& keep = {});

/// Waits up to `patience` for child `pid` to exit and reaps it. Returns its wait status, -1 when
/// `pid` is not (or no longer) a child of this process, nullopt while it still runs. Wakes on the
/// exit itself (pidfd), not by polling.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds patience);

/// "exit status 3", "signal Killed" or "wait status N".
std::string describe_status(int wait_status);

/// The exit status as a shell shows it: the status, or 128 + the signal that ended it.
int exit_code(int wait_status);

/// A child process this object owns. start() starts it; wait(), stop() and kill9() reap it; the
/// destructor kills (SIGKILL) and reaps it when it still runs. pid(), running() and signal() are
/// safe from any thread; the rest are called by one thread at a time.
class child {
 public:
  child() = default;
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  /// Starts `spec`. Throws std::logic_error when a process is running already, else like spawn().
  void start(const child_spec& spec);
  pid_t pid() const { return pid_.load(); }
  /// True from start() until it is reaped.
  bool running() const { return pid_.load() > 0; }
  /// Sends `sig` while it runs (SIGSTOP, SIGCONT, SIGKILL, ...): async-signal-safe.
  void signal(int sig) const noexcept;
  /// Waits up to `patience` for it to exit. Its wait status once it has (-1 when it was not
  /// running or was reaped elsewhere); nullopt while it still runs.
  std::optional<int> wait(std::chrono::milliseconds patience);
  /// SIGCONT (a stopped process cannot take the next), SIGTERM, then up to `patience` for it to
  /// exit; then SIGKILL. Its wait status, or nullopt when it had to be killed.
  std::optional<int> stop(std::chrono::milliseconds patience);
  /// SIGKILL and reap; its wait status (-1 when it was not running).
  int kill9();

 private:
  std::atomic<pid_t> pid_{-1};
};

/// What a command printed and how it ended.
struct command_output {
  int status = -1;        ///< wait status; -1 when it timed out
  bool timed_out = false; ///< killed (SIGKILL) when the limit ran out
  std::string out;        ///< stdout (and stderr when merged), at most max_output bytes
  std::string err;        ///< stderr when not merged
};

/// Runs `spec` (its out_fd and err_fd are replaced) to completion, at most `limit`, with stdout
/// and stderr captured in anonymous files: separately, or in one (interleaved as written) when
/// `merge`. A daemon it leaves behind holding them is not waited for. Throws std::runtime_error
/// when it cannot start.
command_output run(child_spec spec, std::chrono::milliseconds limit, bool merge = false,
                   std::size_t max_output = std::size_t{16} << 20);

/// A port on 127.0.0.1 that was free a moment ago (bound, then closed): outside the ephemeral
/// range when there is room, so that a client socket is unlikely to take it before the child
/// binds it. Throws std::runtime_error when none can be bound.
uint16_t pick_free_port();

/// The whole file at `path` ("" when it cannot be read): a child's log.
std::string read_file(const std::string& path);

/// The last `lines` lines of the file at `path`, each cut to `max_line` characters (then "...").
std::string tail_of(const std::string& path, std::size_t lines = 30, std::size_t max_line = 1000);

} // namespace surge::tools
