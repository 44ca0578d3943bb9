#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "surge/persistence/orders.hpp"
#include "surge/persistence/port.hpp"
#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// Where a page of orders ends: the next page starts after this order (newest first).
struct order_cursor {
  int64_t created_us = 0; ///< the order's created_at in Unix microseconds
  std::string order_id;
};

/// A search of the orders for the admin API. Empty strings and nullopt filter nothing.
struct order_search {
  std::string id_prefix;           ///< the order id starts with it (an exact id is its own prefix)
  std::string status;              ///< exactly this status
  std::string customer_id;         ///< exactly this customer
  std::optional<int64_t> since_ms; ///< created at or after (Unix ms)
  std::optional<int64_t> until_ms; ///< created before (Unix ms)
  std::size_t limit = 20;          ///< clamped to 1..100
  std::optional<order_cursor> after;
};

/// One order of a search page.
struct order_summary {
  std::string order_id;
  std::string cart_id;
  std::string customer_id;
  std::string status;
  int64_t total_cents = 0;
  std::string currency;
  int64_t created_at_ms = 0;
  int64_t created_us = 0;
  std::string gateway;        ///< the gateway of its payment; empty: none recorded
  int64_t refunded_cents = 0; ///< refunds that went through (the cancellation's and operators')
};

struct order_search_page {
  std::vector<order_summary> items; ///< newest first (created_at, then order id, descending)
  std::optional<order_cursor> next; ///< set when the page is full
};

/// An outbox event of an order, as stored.
struct order_outbox_row {
  int64_t id = 0;
  std::string topic;
  std::string payload;
  int64_t created_at_ms = 0;
  int64_t delivered_at_ms = 0; ///< 0: not delivered yet
};

/// An order with everything stored about it, for its timeline. Times are Unix ms, 0 when not
/// stored (orders written before the column existed).
struct order_detail {
  order_record order; ///< with lines, payment, the cancellation's refund and operators' refunds
  int64_t status_at_ms = 0;             ///< when the order last changed status
  int64_t charged_at_ms = 0;            ///< when its payment's answer arrived (or was first stored)
  std::vector<order_outbox_row> outbox; ///< by id
};

/// The orders as the admin API reads them: a read port only (nothing that decides an order
/// reads through it; order actors are the single writers). One connection (connection_port),
/// used from an order_query_pool's threads. errc::unavailable when the server is unreachable or
/// the connection broke (healthy() is then false).
class order_query : public connection_port {
 public:
  /// One page of the orders that pass every filter of `q`, newest first, after `q.after`.
  virtual caf::expected<order_search_page> search(const order_search& q) = 0;

  /// The order `order_id` with all that is stored about it; nullopt when there is none.
  virtual caf::expected<std::optional<order_detail>> detail(const std::string& order_id) = 0;
};

/// Threads that each own one order_query connection: admin searches never wait behind the
/// order actors' pool, and never run on an I/O or actor thread.
using order_query_pool = worker_pool<order_query>;

/// Opens the PostgreSQL order query on `url` (libpq URI). errc::unavailable when it cannot
/// connect.
caf::expected<std::unique_ptr<order_query>> make_pg_order_query(const std::string& url);

} // namespace surge::persistence
