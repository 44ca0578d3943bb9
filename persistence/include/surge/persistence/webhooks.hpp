#pragma once

// Outgoing webhooks' durable state (tables webhook_deliveries and webhook_attempts): one
// delivery per shop endpoint and order event, filled by the fulfilment consumers and worked off
// by the dispatchers of every node. A dispatcher claims one due delivery at a time under a lease
// (FOR UPDATE SKIP LOCKED: two nodes never send the same attempt), sends it, and records the
// outcome; a dispatcher that dies leaves its lease to run out, and the delivery is due again.
//
// Per-order ordering: a delivery is due only when every earlier event of its order (by outbox
// id, topics "orders" and "refunds") is delivered or dead for the same endpoint. An earlier event
// with no delivery row yet (its stream entry not consumed yet) holds the later ones back for up
// to `missing_wait` after it was written, so that a consumer's lag cannot reorder an order's
// events, and an event lost on the way (or older than the endpoint) cannot stop them for good.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "surge/persistence/port.hpp"
#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// One event for one endpoint, and where its delivery stands.
struct webhook_delivery {
  int64_t id = 0; ///< assigned by the store
  std::string endpoint;
  int64_t event_id = 0; ///< the outbox event id (evt_<id> on the wire)
  std::string event_type;
  std::string order_id;
  std::string body;                ///< the JSON sent, the same on every attempt
  std::string status = "pending";  ///< pending, delivered or dead
  int attempts = 0;                ///< attempts made (the one under way included)
  int64_t next_attempt_at_ms = 0;  ///< when it is due (pending)
  int64_t first_attempt_at_ms = 0; ///< 0: never tried
  int64_t last_attempt_at_ms = 0;  ///< 0: never tried
  int last_status = 0;             ///< HTTP status of the last answer; 0: none (no answer)
  std::string last_error;          ///< why the last attempt failed; empty after success
  int64_t delivered_at_ms = 0;     ///< 0: not delivered
  int64_t created_at_ms = 0;
};

/// One attempt of a delivery, as the log shows it.
struct webhook_attempt {
  int attempt = 0;
  int64_t at_ms = 0;
  int status = 0; ///< HTTP status; 0: no answer
  std::string error;
  int64_t duration_ms = 0;
};

/// Per endpoint: how many deliveries stand where, and how long the oldest pending one waits.
struct webhook_endpoint_stats {
  std::string endpoint;
  int64_t pending = 0;
  int64_t delivered = 0;
  int64_t dead = 0;
  int64_t oldest_pending_ms = 0; ///< created_at of the oldest pending delivery; 0: none
};

/// One connection (connection_port): not thread-safe, blocking.
class webhook_store : public connection_port {
 public:
  /// Inserts `rows` (endpoint, event_id, event_type, order_id, body) as pending and due now, in
  /// one transaction; a row whose (endpoint, event_id) exists is skipped (the stream delivers at
  /// least once). Returns how many were new.
  virtual caf::expected<std::size_t> enqueue(const std::vector<webhook_delivery>& rows) = 0;

  /// Claims the delivery due first (see above for ordering), leases it for `lease` and counts the
  /// attempt (attempts + 1; first_attempt_at set on the first). nullopt: nothing is due.
  virtual caf::expected<std::optional<webhook_delivery>>
  claim(std::chrono::milliseconds lease, std::chrono::milliseconds missing_wait) = 0;

  /// What one attempt came to.
  struct outcome {
    bool delivered = false;
    int status = 0; ///< 0: no answer
    std::string error = {};
    int64_t duration_ms = 0;
    /// Not delivered: wait this long before the next attempt; nullopt: give up (dead).
    std::optional<std::chrono::milliseconds> retry_in = std::nullopt;
  };
  /// Records attempt `attempt` of delivery `id` (logged) and moves the delivery on: delivered,
  /// due again after `retry_in`, or dead. Does nothing to the delivery (the attempt is still
  /// logged) when that attempt no longer holds it (redelivered meanwhile).
  virtual caf::error record(int64_t id, int attempt, const outcome& o) = 0;

  /// Which deliveries list() returns: every field that is set must match. Newest first; ids
  /// below `before_id` when it is > 0 (paging).
  struct filter {
    std::string endpoint = {};
    std::string order_id = {};
    std::string status = {};
    int64_t before_id = 0;
    std::size_t limit = 50;
  };
  virtual caf::expected<std::vector<webhook_delivery>> list(const filter& f) = 0;

  /// Delivery `id` with its attempts (oldest first), or nullopt.
  virtual caf::expected<std::optional<std::pair<webhook_delivery, std::vector<webhook_attempt>>>>
  get(int64_t id) = 0;

  /// Makes delivery `id` pending and due now with its retry clock reset (an operator's
  /// "deliver again", for a dead one or one the shop lost). false: no such delivery.
  virtual caf::expected<bool> redeliver(int64_t id) = 0;

  /// Counts per endpoint, by name.
  virtual caf::expected<std::vector<webhook_endpoint_stats>> stats() = 0;
};

/// Threads that each own one webhook_store: the admin's delivery log reads (never on an I/O
/// thread).
using webhook_pool = worker_pool<webhook_store>;

/// errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<webhook_store>> make_pg_webhook_store(const std::string& url);

} // namespace surge::persistence
