#pragma once

// surge-chaos's in-memory data model: what the clients saw (the history), what PostgreSQL holds
// after the run (journal, orders with their payment and refunds, shard history), what the payment
// gateways logged (charges, refunds), and which faults ran when. The checker (checker.hpp) works on
// this model only, so unit tests build it by hand. All times are Unix epoch milliseconds (wall
// clock), so that the history and the journal's own timestamps (`at_ms`, hold expiries) compare.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace surge::chaos {

/// One cart line as a response showed it.
struct seen_line {
  std::string sku;
  int64_t qty = 0;
  std::string hold_id;
};

/// One request of the history and its response.
struct operation {
  enum class kind_t {
    create_cart,
    put_item,
    delete_item,
    checkout,
    get_order,
    stock,
    probe, ///< GET stock of a SKU whose put/delete just failed, until it answers (G5 recovery)
    other
  };
  uint64_t id = 0;
  kind_t kind = kind_t::other;
  int client = 0;
  int node = 0; ///< index of the node whose HTTP port got the request
  std::string cart_id;
  std::string sku;             ///< put_item, delete_item, stock, probe
  int64_t qty = 0;             ///< put_item: requested qty; stock: the value set or added
  bool stock_set = false;      ///< stock: {"set":N} rather than {"add":N}
  std::string idempotency_key; ///< checkout
  std::string token;           ///< checkout: the payment token
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  int status = 0;         ///< 0: no response (transport error or timeout)
  std::string error_code; ///< the body's error.code, or the transport error
  std::string cause;      ///< header Surge-Error-Cause: "payment" when the gateways failed
  // Fields of a successful answer that the checker needs.
  std::vector<seen_line> lines; ///< cart answers: the lines; checkout: the order lines
  std::string order_id;
  std::string order_status;

  bool ok() const { return status >= 200 && status < 300; }
};

const char* to_string(operation::kind_t k);

/// One decoded SkuEvent (proto/surge.proto).
struct journal_event {
  enum class kind_t {
    product_set,
    stock_set,
    stock_added,
    hold_set,
    hold_released,
    hold_confirmed,
    sale_returned,
    none
  };
  kind_t kind = kind_t::none;
  int64_t at_ms = 0;
  int64_t value = 0; ///< stock_set, stock_added
  std::string hold_id;
  std::string cart_id;
  int64_t qty = 0;           ///< hold_set
  int64_t expires_at_ms = 0; ///< hold_set
  int reason = 0;            ///< hold_released/confirmed: HoldEnded::Reason
  std::string order_id;      ///< hold_confirmed, sale_returned
};

const char* to_string(journal_event::kind_t k);

/// One sku_journal row.
struct journal_batch {
  std::string stream; ///< "sku:<sku>"
  int64_t seq = 0;
  int shard = -1; ///< -1: NULL (committed without a shard, before the cluster)
  int64_t epoch = -1;
  std::string node_id;
  int64_t committed_at_ms = 0;
  std::vector<journal_event> events;
};

/// One shard_history row.
struct shard_change {
  int shard = 0;
  int64_t epoch = 0;
  std::string owner;
  std::string reason;
  int64_t at_ms = 0;
};

/// One order_refunds row: a refund an operator asked for (besides a cancellation's refund).
struct operator_refund {
  std::string refund_id;
  std::string gateway_key; ///< the refund's idempotency key at the gateway
  std::string status;      ///< pending, refunded, failed
  int64_t amount_cents = 0;
};

struct order_row {
  std::string order_id;
  std::string idempotency_key;
  std::string status; ///< pending, paid, confirmed, failed, cancelled, requires_action
  std::string cart_id;
  std::vector<seen_line> lines;
  int64_t total_cents = 0;
  /// The refund of an order cancelled after its payment: "" (none), pending, refunded, failed,
  /// or voided (an authorisation released: payments.capture=after_confirm).
  std::string refund_status{};
  int64_t refund_cents = 0;      ///< orders.refunded_cents: what that refund gives back
  std::string payment_status{};  ///< payments.status ("" no row): approved, authorized, ...
  std::string payment_gateway{}; ///< payments.gateway
  std::vector<operator_refund> refunds{}; ///< order_refunds
};

/// One line of paysim's GET /_charges.
struct charge_row {
  std::string gateway;
  std::string idempotency_key;
  int64_t amount_cents = 0;
  /// approved (taken at once, or an authorisation captured since), declined, failed, or for an
  /// authorisation not captured: authorized (still open) or voided (released).
  std::string status;
  int64_t refunded_cents = 0; ///< given back since (a cancelled order, an operator's refund)
};

/// One line of paysim's GET /_refunds.
struct refund_row {
  std::string gateway;
  std::string idempotency_key; ///< the refund's key: refund-<checkout key>, or an operator's
  std::string charge_key;      ///< the refunded charge's key (the checkout's)
  int64_t amount_cents = 0;
  std::string status; ///< refunded (money given back), rejected, failed
};

/// One injected fault, as it happened.
struct fault_record {
  std::string kind;
  std::string target; ///< node id, "postgres", "redis", gateway name
  std::string detail;
  int64_t start_ms = 0;
  int64_t end_ms = 0; ///< healed
  bool skipped = false;
  std::string note;
};

/// Everything the checker looks at.
struct run_data {
  std::vector<operation> history;
  std::vector<journal_batch> journal; ///< ordered by stream, seq
  std::vector<shard_change> shard_history;
  std::vector<order_row> orders;
  std::vector<charge_row> charges;
  std::vector<refund_row> refunds; ///< paysim's refund log
  std::vector<fault_record> faults;
  std::vector<std::string> node_ids; ///< index = operation::node
  int64_t checked_at_ms = 0;         ///< when the journal was read (G6: holds must be gone by then)
  int64_t hold_ttl_ms = 5000;
};

} // namespace surge::chaos
