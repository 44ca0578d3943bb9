#pragma once

// Orders reach the shop: the fulfilment consumer group on the order streams and the signed
// outgoing webhooks it feeds.
//
//   outbox (PostgreSQL) --relay--> Redis streams <prefix>orders, <prefix>refunds
//     --consumer group "surge-fulfil", one consumer per node (XREADGROUP, XACK)-->
//   webhook_deliveries (PostgreSQL; one row per endpoint and event, de-duplicated by event id)
//     --dispatchers (every node, webhooks.concurrency each; FOR UPDATE SKIP LOCKED leases)-->
//   POST to each shop endpoint, signed, retried with exponential backoff for webhooks.retry_for.
//
// A stream entry is acknowledged once its deliveries are stored: the stream is the hand-over,
// PostgreSQL the delivery log. An entry a dead node's consumer left pending for
// webhooks.claim_idle is claimed (XAUTOCLAIM) by another; one handed out webhooks.max_attempts
// times without being stored (it cannot be read) goes to the dead-letter stream <stream>:dead.
// While PostgreSQL is unreachable nothing is claimed, so an outage does not exhaust entries.
//
// The wire (what a shop verifies, as Stripe's webhooks):
//   POST <endpoint url>, Content-Type: application/json,
//   body {"id":"evt_<outbox id>","type":"order.<status>"|<a refund's event>,"order_id":...,
//         "data":<the event's payload>}
//   Surge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//   Surge-Event-Id, Surge-Event-Type, Surge-Delivery-Attempt (1, 2, ...)
// Any 2xx within webhooks.timeout is delivered; anything else is retried. Events of one order
// reach one endpoint in event order (a later one waits for the earlier ones; see
// persistence/webhooks.hpp); a receiver de-duplicates by event id (an answer lost on the way
// means the same event again).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "background.hpp"
#include "surge/net/payments/gateway.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/redis.hpp"
#include "surge/persistence/webhooks.hpp"

namespace surge::net::payments::detail {
class http_client;
}

namespace surge::runtime {

/// One shop endpoint.
struct webhook_target {
  std::string name;
  net::payments::http_url url;
  std::string secret;
};

/// Parses `webhooks.endpoints` (`name=url,...`, url http(s)://host[:port]/path) and
/// `webhooks.secrets` (`name=secret,...`: one secret of at least 16 characters for every endpoint,
/// none for another name). Blank endpoints: none (then secrets must be blank too). The targets in
/// the order given, or a message naming the setting and the entry (never a secret).
std::variant<std::vector<webhook_target>, std::string>
parse_webhook_targets(std::string_view endpoints, std::string_view secrets);

/// The webhook event of one order-stream entry.
struct order_event {
  int64_t event_id = 0;
  std::string order_id;
  std::string type; ///< order.<status>, or a refund's own event name (order.refunded, ...)
  std::string body; ///< what is POSTed
};

/// The event of an entry of stream `topic` ("orders" or "refunds") with the relay's fields
/// (event_id, key, payload), or why it cannot be one.
std::variant<order_event, std::string>
event_of_entry(std::string_view topic,
               const std::vector<std::pair<std::string, std::string>>& fields);

/// When a failed delivery is tried again.
struct retry_policy {
  std::chrono::milliseconds base{10'000}; ///< after the first failure; doubles each time
  std::chrono::milliseconds max{3'600'000};
  std::chrono::milliseconds give_up_after{86'400'000}; ///< from the first attempt
};

/// The wait after failed attempt `attempt` (1, 2, ...) of a delivery first tried at
/// `first_attempt_ms`, at `now_ms`: base * 2^(attempt-1), at most `max`, shortened so the last
/// try lands at the end of the window; nullopt once the window is over (the delivery is dead).
/// `jitter` in [0, 1) spreads retries of many deliveries (up to -10%).
std::optional<std::chrono::milliseconds> retry_after(const retry_policy& p, int attempt,
                                                     int64_t first_attempt_ms, int64_t now_ms,
                                                     double jitter);

/// Runs the node's fulfilment consumer and its delivery dispatchers; nothing when `targets` is
/// empty (the node then starts neither).
class fulfilment {
 public:
  struct options {
    std::string pg_url;
    persistence::redis_options redis;
    std::string consumer; ///< this node's consumer name in the group (node.id)
    std::vector<webhook_target> targets;
    std::string ca_file;
    std::chrono::milliseconds timeout{10'000};
    retry_policy retry;
    std::size_t concurrency = 4;
    std::chrono::milliseconds claim_idle{30'000};
    std::size_t max_attempts = 5;
  };

  /// What the node's metrics show.
  struct counters {
    std::atomic<uint64_t> stored{0};        ///< stream entries stored as deliveries
    std::atomic<uint64_t> dead_lettered{0}; ///< stream entries moved to <stream>:dead
    std::atomic<uint64_t> delivered{0};     ///< attempts a shop answered 2xx
    std::atomic<uint64_t> failed{0};        ///< attempts that failed (to be retried)
    std::atomic<uint64_t> dead{0};          ///< deliveries given up on
  };

  /// The consumer group's name on every order stream.
  static constexpr const char* group = "surge-fulfil";
  /// The streams it consumes (the relay's topics that concern orders).
  static constexpr std::array<const char*, 2> topics = {"orders", "refunds"};

  /// Throws std::runtime_error when an https endpoint's CA file cannot be used.
  explicit fulfilment(options opts);
  ~fulfilment(); ///< stop()
  fulfilment(const fulfilment&) = delete;
  fulfilment& operator=(const fulfilment&) = delete;

  /// Stops consuming and dispatching; an attempt under way finishes first (webhooks.timeout).
  void stop();

  /// The surge_webhook_* families (Prometheus text).
  std::string metrics_text() const;

 private:
  struct target_client;
  class dispatcher;

  void consume();
  bool claim_stale(persistence::event_stream& s, const std::string& topic);
  bool store_entries(persistence::event_stream& s, const std::string& topic,
                     const std::vector<persistence::event_stream::entry>& entries,
                     const std::map<std::string, int64_t>& deliveries);

  const options opts_;
  std::vector<std::unique_ptr<target_client>> clients_;
  counters counters_;
  std::unique_ptr<persistence::webhook_store> store_; ///< the consumer thread's
  std::unique_ptr<persistence::event_stream> stream_; ///< the consumer thread's
  std::map<std::string, bool> groups_ready_;          ///< the consumer thread's, by topic
  std::map<std::string, std::string> claim_cursor_;   ///< the consumer thread's, by topic
  std::vector<std::unique_ptr<dispatcher>> dispatchers_;
  std::unique_ptr<periodic> consumer_; ///< last: starts the thread
};

} // namespace surge::runtime
