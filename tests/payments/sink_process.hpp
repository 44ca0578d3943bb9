#pragma once

// The real surge-webhook-sink binary as a child process for the webhook tests: it plays the
// shop's endpoint that Surge delivers order events to. It listens on port 0 of 127.0.0.1; the
// port is read from its start line. Its control API is called with paysim_process.hpp's
// http_call.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "surge/tools/process.hpp"

namespace surge::ptest {

/// One delivery the sink recorded (answered 200): a line of GET /_events.
struct sink_event {
  int64_t seq = 0;
  std::string event_id;       ///< Surge-Event-Id
  std::string type;           ///< Surge-Event-Type
  std::string order_id;       ///< the body's "order_id"
  int64_t attempt = 0;        ///< Surge-Delivery-Attempt (0: absent)
  int64_t received_at_ms = 0; ///< unix milliseconds
  std::string body;           ///< the raw body
};

/// GET /_stats: webhook POSTs by outcome.
struct sink_stats {
  int64_t received = 0;
  int64_t rejected = 0;
  int64_t failed = 0;
  int64_t timed_out = 0;
  int64_t dropped = 0;
};

/// A surge-webhook-sink child: started by the constructor (which returns once it listens),
/// SIGTERMed by stop() or the destructor. Output goes to a log file, printed when the start
/// fails. `extra_args` follow --listen=127.0.0.1:0 (--secret=..., --mode=..., ...). The control
/// calls throw std::runtime_error on an unexpected answer. One thread at a time.
class sink_process {
 public:
  explicit sink_process(std::vector<std::string> extra_args = {});
  ~sink_process();
  sink_process(const sink_process&) = delete;
  sink_process& operator=(const sink_process&) = delete;

  uint16_t port() const { return port_; }
  /// "http://127.0.0.1:<port><path>": where Surge is told to deliver.
  std::string url(const std::string& path = "/") const;

  /// PUT /_mode: "ok", "fail", "timeout", "slow" or "down"; the delay of slow and timeout stays
  /// as it is when not given.
  void set_mode(const std::string& mode,
                std::optional<std::chrono::milliseconds> delay = std::nullopt) const;

  /// GET /_events: every recorded delivery in arrival order, duplicates included.
  std::vector<sink_event> events() const;

  /// DELETE /_events.
  void clear_events() const;

  /// GET /_stats.
  sink_stats stats() const;

  /// The sink's output so far (its start line and one line per webhook).
  std::string log() const;

  /// SIGTERM and wait (bounded); returns the exit status (or -1 when it had to be killed or was
  /// not running).
  int stop();

 private:
  uint16_t port_ = 0;
  std::string log_path_;
  tools::child proc_;
};

struct sink_run {
  int status = -1;    ///< the exit status, or -1 when it did not exit in time
  std::string output; ///< stdout and stderr
};

/// Runs surge-webhook-sink with `args` (and nothing else) and waits (bounded) for its exit.
sink_run run_sink(const std::vector<std::string>& args);

} // namespace surge::ptest
