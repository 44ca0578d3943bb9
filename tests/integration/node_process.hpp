#pragma once

// One surge-node child process for the end-to-end tests: its own PostgreSQL database and Redis
// key prefix (tests/support), free loopback ports picked at run time, stdout/stderr in a log
// file under the build directory whose tail is printed when the test that owns it fails.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "surge/tools/process.hpp"
#include "test_env.hpp"

namespace surge::itest {

/// What a test sets beyond what the harness picks itself (database, prefix, ports, log level).
struct node_config {
  std::string holds_ttl = "600s";
  std::string idle_timeout = "120s";
  std::string admin_token;        ///< empty: the admin API is open (it listens on loopback)
  std::vector<std::string> extra; ///< more "--name=value" arguments
  /// Servers of read replicas (libpq URIs; their database is replaced by the node's): the
  /// node's pg.read_urls. Empty: none.
  std::vector<std::string> read_replicas;
  /// Join the cluster of this node: share its database and Redis prefix (it must outlive this
  /// one). nullptr: a database and prefix of its own.
  const class node_process* cluster_with = nullptr;
  std::string node_id; ///< empty: "it-<database>"
  /// false: the node runs with --limits.ip_rate=0, since tests drive many writes from one
  /// address (127.0.0.1); true: limits.* as the node's defaults and `extra` make them.
  bool limits = false;
  /// The surge-node to run (e.g. a previous release's, tests/upgrade); empty: this build's.
  std::string binary = {};
};

/// A surge-node child process. The constructor starts it and waits until /readyz answers 200;
/// the destructor kills it (SIGKILL) if it still runs, then drops the database and the keys.
/// Ports, database and prefix stay the same across stop()/kill9() and start().
class node_process {
 public:
  explicit node_process(node_config cfg = {});
  ~node_process();
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  /// Starts the process and waits (bounded) until GET /readyz is 200. Throws
  /// std::runtime_error with the log's tail when it exits or does not get ready in time.
  void start();

  /// SIGTERM, then waits up to `patience` for the exit; a node that does not stop in time is
  /// killed and the test fails. Checks that a graceful stop exits with status 0.
  void stop(std::chrono::milliseconds patience = std::chrono::seconds{20});

  /// SIGKILL and reap.
  void kill9();

  /// Sends SIGKILL and returns at once, from any thread (async-signal-safe); a later kill9(),
  /// stop() or start() reaps the process.
  void signal_kill() noexcept;

  /// Sends SIGTERM and returns at once, from any thread; stop() then waits for the exit.
  void signal_term() noexcept;

  /// Sends `sig` (e.g. SIGSTOP, SIGCONT) to the running process.
  void signal(int sig) noexcept;

  void restart() {
    stop();
    start();
  }

  bool running() const { return proc_.running(); }
  /// The pid of the process this object started (-1 when none runs): a test that has something
  /// else restart the node (scripts/restart-node.sh) reads it.
  pid_t pid() const { return proc_.pid(); }
  uint16_t http_port() const { return http_port_; }
  uint16_t admin_port() const { return admin_port_; }
  uint16_t cluster_port() const { return cluster_port_; }
  /// The node.id it runs with.
  std::string node_id() const;
  /// The Redis key prefix it runs with.
  std::string redis_prefix() const;
  const std::string& admin_token() const { return cfg_.admin_token; }
  const std::string& log_path() const { return log_path_; }
  const std::string& database() const { return db_.name(); }
  /// The node's database (for fault injection: locks, checks).
  const std::string& database_url() const {
    return cfg_.cluster_with != nullptr ? cfg_.cluster_with->database_url() : db_.url();
  }

  /// The last `lines` lines of the log file (all starts of this node).
  std::string log_tail(std::size_t lines = 60) const;

 private:
  void pick_ports();
  /// Starts the process (tools/common's process.hpp: it dies with the test process).
  void spawn();
  /// Waits for readiness; false when the process exited first (`status` is its wait status) or
  /// did not get ready in time (`status` is -1).
  bool wait_ready(std::chrono::milliseconds patience, int& status);

  node_config cfg_;
  // Declared before the process state: destroyed after the process is gone.
  surge::test::pg_test_db db_{false}; // the node applies its migrations itself
  surge::test::redis_test_keys redis_;
  uint16_t http_port_ = 0;
  uint16_t admin_port_ = 0;
  uint16_t cluster_port_ = 0;
  std::string log_path_;
  int starts_ = 0;
  surge::tools::child proc_; // last: killed and reaped before the database is dropped
};

/// A port on 127.0.0.1 that was free a moment ago (outside the ephemeral range when possible).
using surge::tools::pick_free_port;

/// Starts a node on `cfg` that is meant to refuse to start: what node_process's constructor
/// threw (the log's tail), or nullopt when it started after all (it is stopped again).
std::optional<std::string> start_failure(node_config cfg);

/// True once an assertion of the running test case has failed (a doctest listener keeps it).
bool current_test_failed();

} // namespace surge::itest
