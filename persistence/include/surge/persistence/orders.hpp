#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/persistence/port.hpp"

namespace surge::persistence {

struct order_line_record {
  std::string sku;
  int64_t qty = 0;
  int64_t price_cents = 0;
  std::string hold_id; ///< the cart's hold that this line turns into a sale
};

struct payment_record {
  std::string idempotency_key;
  std::string gateway;
  std::string charge_id;
  std::string status; ///< approved, declined, failed
  int64_t amount_cents = 0;
  std::string currency;
  /// When the gateway's answer arrived (Unix ms; 0: not known, the store then uses its own time).
  /// Kept from the first time the payment is stored.
  int64_t charged_at_ms = 0;
};

/// The refund of an order cancelled after its charge.
struct refund_record {
  std::string status;    ///< pending (asked for, outcome not known yet), refunded, failed
  std::string refund_id; ///< the gateway's id of the refund, once known
  int64_t amount_cents = 0;
};

/// One line of an operator's refund: `qty` units of the order's line of `sku`.
struct refund_line {
  std::string sku; ///< a SKU (letters, digits, '.', '_', '-': never ':' or ',')
  int64_t qty = 0;
};

/// A refund an operator asked for (the admin API), of the whole order or of some of its lines.
/// An order has any number of them (order_record::refunds), besides the single refund of an
/// order cancelled after its charge (order_record::refund, kept as it was stored before).
struct order_refund_record {
  std::string refund_id;         ///< derived from the order id and `idempotency_key`
  std::string idempotency_key;   ///< the operator's Idempotency-Key
  std::string fingerprint;       ///< what the key was first used for (the requested lines)
  std::string gateway_key;       ///< the refund's idempotency key at the gateway
  std::string status;            ///< pending (asked for, outcome not known yet), refunded, failed
  std::string gateway_refund_id; ///< the gateway's id of the refund, once refunded
  int64_t amount_cents = 0;
  std::vector<refund_line> lines; ///< what it gives back (every unit not yet given back, for all)
  std::string message;            ///< why it failed; empty otherwise
  int64_t created_at_ms = 0;      ///< set by the store when first stored
  int64_t settled_at_ms = 0;      ///< set by the store when stored refunded or failed; 0: pending
};

/// An order row with its lines and (once there is one) its payment.
/// status: pending -> paid -> confirmed, or -> failed / cancelled (API.md's order statuses).
struct order_record {
  std::string order_id;
  std::string idempotency_key;
  std::string fingerprint; ///< what the key was first used for (cart and payment method)
  std::string cart_id;
  std::string customer_id;
  std::string status = "pending";
  std::string reason; ///< why it failed or was cancelled, e.g. "payment_declined"
  int64_t total_cents = 0;
  std::string currency;
  int64_t created_at_ms = 0; ///< set by the store on create
  std::vector<order_line_record> lines;
  std::optional<payment_record> payment;
  std::optional<refund_record> refund;
  /// The operator's refunds, in the order they were asked for.
  std::vector<order_refund_record> refunds = {};
  /// When the checkout claimed the cart (Unix ms, the order actor's clock; 0: not known). Stored
  /// by create.
  int64_t claimed_at_ms = 0;
};

/// An event for other systems, written in the same transaction as the change it reports.
struct outbox_event {
  int64_t id = 0;      ///< assigned by the store, ascending
  std::string topic;   ///< e.g. "orders"
  std::string key;     ///< e.g. the order id (consumers de-duplicate by it)
  std::string payload; ///< JSON
};

/// Orders, their lines, payments and the outbox (PostgreSQL), over one connection
/// (connection_port).
class order_store : public connection_port {
 public:
  /// Inserts `order` (status pending) with its lines in one transaction, unless an order with
  /// the same idempotency key exists. Returns the stored order and true when this call created
  /// it, or the existing order (with lines and payment) and false.
  virtual caf::expected<std::pair<order_record, bool>> create(const order_record& order) = 0;

  virtual caf::expected<std::optional<order_record>> load(const std::string& order_id) = 0;

  /// A change of an order's status, with what is stored together with it.
  struct order_update {
    std::string status;
    std::string reason;
    std::optional<payment_record> payment; ///< upserted when given
    std::optional<refund_record> refund;   ///< replaces the refund when given
    std::optional<outbox_event> event;     ///< appended to the outbox when given
    /// An operator's refund, inserted or (same refund_id) updated when given: its status,
    /// gateway_refund_id and message change; the rest is fixed at insert.
    std::optional<order_refund_record> refund_entry = std::nullopt;
  };

  /// In ONE transaction: sets the order's status and reason, and stores what `change` brings.
  /// errc::invalid when no such order. The time of the last status change is kept (for the
  /// order's timeline): it moves only when the status changes.
  virtual caf::error update(const std::string& order_id, const order_update& change) = 0;

  caf::error update(const std::string& order_id, const std::string& status,
                    const std::string& reason, const std::optional<payment_record>& payment,
                    const std::optional<outbox_event>& event) {
    return update(order_id, order_update{status, reason, payment, std::nullopt, event});
  }

  /// Ids of orders still pending or paid, or with a refund pending (the cancellation's or an
  /// operator's), whose last change is older than `age`, and of orders waiting for the shopper's
  /// authentication (requires_action) for longer than `action_age`, oldest first.
  virtual caf::expected<std::vector<std::string>> unsettled(std::chrono::milliseconds age,
                                                            std::chrono::milliseconds action_age,
                                                            std::size_t limit) = 0;

  /// Outbox relay. Only the holder of the relay lock (a PostgreSQL advisory lock held by this
  /// connection's session) may relay: try_relay_lock() takes it if free (true) or reports that
  /// another session has it (false). pending_events: undelivered events, by id.
  virtual caf::expected<bool> try_relay_lock() = 0;
  virtual caf::expected<std::vector<outbox_event>> pending_events(std::size_t limit) = 0;
  virtual caf::error mark_delivered(const std::vector<int64_t>& ids) = 0;
};

/// errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<order_store>> make_pg_order_store(const std::string& url);

/// An append-only event stream (Redis Streams). One instance is one connection: not
/// thread-safe, blocking.
class event_stream : public connection_port {
 public:
  struct entry {
    std::string id; ///< the stream's entry id, e.g. "1700000000000-0"
    std::vector<std::pair<std::string, std::string>> fields;
  };

  /// XADD to `stream` (the store's key prefix is prepended); returns the entry id.
  virtual caf::expected<std::string>
  append(const std::string& stream,
         const std::vector<std::pair<std::string, std::string>>& fields) = 0;

  /// Entries after `after_id` ("0" for all, "$" for only new ones), at most `count`, waiting up
  /// to `block` for the first one (0: do not wait).
  virtual caf::expected<std::vector<entry>> read(const std::string& stream,
                                                 const std::string& after_id, std::size_t count,
                                                 std::chrono::milliseconds block) = 0;

  // Consumer groups (XGROUP, XREADGROUP, XACK, XAUTOCLAIM, XPENDING): each entry is handed to one
  // consumer of a group and stays pending with it until acknowledged; an entry a consumer left
  // pending (it died) can be claimed by another.

  /// Creates `group` on `stream` (and the stream when missing) reading from the start: entries
  /// already in the stream are handed out too. An existing group is left as it is.
  virtual caf::error create_group(const std::string& stream, const std::string& group) = 0;

  /// Entries never handed to `group` before (XREADGROUP ... >), at most `count`, waiting up to
  /// `block` for the first one (0: do not wait); they are pending with `consumer` until acked.
  virtual caf::expected<std::vector<entry>>
  read_group(const std::string& stream, const std::string& group, const std::string& consumer,
             std::size_t count, std::chrono::milliseconds block) = 0;

  /// Acknowledges `ids` (no longer pending); returns how many were pending.
  virtual caf::expected<std::size_t> ack(const std::string& stream, const std::string& group,
                                         const std::vector<std::string>& ids) = 0;

  /// One XAUTOCLAIM step: entries pending with any consumer of `group` for at least `min_idle`
  /// move to `consumer` (their delivery count grows by one), scanning from `cursor` ("0-0" at
  /// first). `next` is where the next step goes on; "0-0" when the scan went round.
  struct claimed {
    std::vector<entry> entries;
    std::string next;
  };
  virtual caf::expected<claimed> autoclaim(const std::string& stream, const std::string& group,
                                           const std::string& consumer,
                                           std::chrono::milliseconds min_idle,
                                           const std::string& cursor, std::size_t count) = 0;

  /// An entry pending with a consumer: how often it was handed out and for how long it has been
  /// with its consumer.
  struct pending_entry {
    std::string id;
    std::string consumer;
    int64_t idle_ms = 0;
    int64_t deliveries = 0;
  };
  /// The first `count` entries pending with `consumer` of `group`, by id.
  virtual caf::expected<std::vector<pending_entry>> pending(const std::string& stream,
                                                            const std::string& group,
                                                            const std::string& consumer,
                                                            std::size_t count) = 0;
};

struct redis_options;

caf::expected<std::unique_ptr<event_stream>> make_redis_event_stream(const redis_options& opts);

} // namespace surge::persistence
