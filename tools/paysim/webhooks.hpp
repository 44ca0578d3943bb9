#pragma once

// surge-paysim's outgoing webhooks: the events a gateway posts to its --webhook-to URL, signed in
// the scheme of the wire style that made the charge (net/payments/webhook.hpp is what the shop
// checks). The simulator builds each event's body; this delivers it, off the servers' I/O
// threads, with bounded retries, and keeps a delivery log (GET /_webhooks).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "simulator.hpp"
#include "surge/net/json.hpp"

namespace surge::paysim {

/// One event to post.
struct outgoing_event {
  std::string gateway;   ///< whose --webhook-to it goes to
  bool form = true;      ///< form: signed per try (Stripe-Signature); json: `body` carries its MACs
  std::string type;      ///< charge.succeeded, AUTHORISATION, ... (for the delivery log)
  std::string charge_id; ///< for the delivery log
  std::string body;
};

/// Posts events to the gateways' URLs: one worker thread per URL, so a slow or dead endpoint
/// delays only its own gateway's events. Each event is tried at most `max_tries` times until an
/// answer is 2xx; between tries it waits 250 ms, 500 ms, 1 s, 2 s (no answer within
/// `try_timeout`, a refused connection and non-2xx answers are all retried). Events wait in a
/// queue of at most `max_queued` per URL; more are dropped (logged "failed: queue full"). Order
/// is kept per URL, except that an event waiting to retry does not hold the next ones back.
///
/// Thread-safe. Lifecycle: the constructor parses the targets (no I/O); start() starts the
/// workers; stop() ends them (an exchange under way finishes first: at most `try_timeout`) and
/// drops what is still queued. Not copyable.
class webhook_sender {
 public:
  static constexpr int max_tries = 5;
  static constexpr std::chrono::milliseconds first_backoff{250};
  static constexpr std::chrono::milliseconds try_timeout{3000};
  static constexpr std::size_t max_queued = 10000;
  static constexpr std::size_t max_log_rows = 10000; ///< the delivery log keeps the latest

  /// REQUIRES: every target's url is a valid http(s) URL with a path (main.cpp checks).
  explicit webhook_sender(const std::vector<webhook_target>& targets);
  ~webhook_sender();
  webhook_sender(const webhook_sender&) = delete;
  webhook_sender& operator=(const webhook_sender&) = delete;

  /// Starts the workers. Empty, or why not (an https URL's TLS context could not be made; then
  /// nothing started).
  std::string start();
  void stop();

  /// Whether `gateway` posts events at all (has a --webhook-to).
  bool enabled(const std::string& gateway) const;

  /// `gateway`'s json-style HMAC key (its secret hex-decoded), or nullopt when it has no target
  /// or its secret is not hex.
  std::optional<std::string> json_key(const std::string& gateway) const;

  /// Queues `e` for its gateway's URL (nothing when the gateway has none); never blocks on I/O.
  /// A json event of a gateway whose secret is not hex is logged "failed" and not sent.
  void post(outgoing_event e);

  /// The delivery log, oldest first: {"id","gateway","type","charge","url","status":
  /// "pending"|"delivered"|"failed","attempts","http_status","error"}.
  net::json::array rows() const;

 private:
  struct worker;
  struct job;
  struct row {
    uint64_t id = 0;
    std::string gateway;
    std::string type;
    std::string charge_id;
    std::string url;
    std::string status = "pending";
    int attempts = 0;
    int http_status = 0;
    std::string error;
  };

  void run(worker& w);
  row* row_of(uint64_t id); ///< REQUIRES: mu_ held; nullptr once dropped from the log
  void add_row(row r);      ///< REQUIRES: mu_ held

  std::vector<std::unique_ptr<worker>> workers_; // fixed at construction

  mutable std::mutex mu_;
  bool stopping_ = false;    // guarded by mu_
  bool started_ = false;     // guarded by mu_
  std::deque<row> log_;      // guarded by mu_
  uint64_t next_row_id_ = 1; // guarded by mu_
};

} // namespace surge::paysim
