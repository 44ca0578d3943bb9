#pragma once

// An order as the PostgreSQL adapters read it (private to persistence/src): the order store
// (pg_orders.cpp) and the admin's order query (pg_order_query.cpp) read the same rows.

#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/orders.hpp"

namespace surge::persistence::detail {

/// The columns to_order() reads, in its order.
inline constexpr const char* order_columns =
    "order_id, idempotency_key, fingerprint, cart_id, customer_id, status, reason, total_cents,"
    " currency, (extract(epoch FROM created_at) * 1000)::bigint, refund_status, refund_id,"
    " refunded_cents, coalesce((extract(epoch FROM claimed_at) * 1000)::bigint, 0)";

/// REQUIRES: `row` has order_columns.
inline order_record to_order(const pqxx::row& row) {
  order_record o;
  read_columns(row, o.order_id, o.idempotency_key, o.fingerprint, o.cart_id, o.customer_id,
               o.status, o.reason, o.total_cents, o.currency, o.created_at_ms);
  if (!row[10].is_null()) {
    o.refund = refund_record{row[10].as<std::string>(),
                             row[11].is_null() ? std::string{} : row[11].as<std::string>(),
                             row[12].as<int64_t>()};
  }
  o.claimed_at_ms = row[13].as<int64_t>();
  return o;
}

/// "sku:qty,sku:qty" of `lines` (SKUs never hold ':' or ',').
inline std::string lines_text(const std::vector<refund_line>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += (out.empty() ? "" : ",") + l.sku + ":" + std::to_string(l.qty);
  }
  return out;
}

/// The lines of lines_text(); malformed parts are skipped.
inline std::vector<refund_line> lines_of(const std::string& text) {
  std::vector<refund_line> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find(',', pos);
    if (end == std::string::npos) {
      end = text.size();
    }
    const auto part = text.substr(pos, end - pos);
    if (const auto colon = part.rfind(':'); colon != std::string::npos && colon > 0) {
      try {
        out.push_back(refund_line{part.substr(0, colon), std::stoll(part.substr(colon + 1))});
      } catch (const std::exception&) { // not written by lines_text(): skipped
      }
    }
    pos = end + 1;
  }
  return out;
}

/// The operators' refunds of `order_id`, oldest first, read in `tx`.
inline std::vector<order_refund_record> refunds_in(pqxx::transaction_base& tx,
                                                   const std::string& order_id) {
  auto rows = tx.exec_params(
      "SELECT refund_id, idempotency_key, fingerprint, gateway_key, status, gateway_refund_id,"
      " amount_cents, lines, message, (extract(epoch FROM created_at) * 1000)::bigint,"
      " coalesce((extract(epoch FROM settled_at) * 1000)::bigint, 0)"
      " FROM order_refunds WHERE order_id = $1 ORDER BY created_at, refund_id",
      order_id);
  std::vector<order_refund_record> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    order_refund_record x;
    std::string lines;
    read_columns(r, x.refund_id, x.idempotency_key, x.fingerprint, x.gateway_key, x.status,
                 x.gateway_refund_id, x.amount_cents, lines, x.message, x.created_at_ms,
                 x.settled_at_ms);
    x.lines = lines_of(lines);
    out.push_back(std::move(x));
  }
  return out;
}

/// The order selected by `where` ("order_id = $1" or "idempotency_key = $1") with its lines,
/// payment and refunds, read in `tx`.
inline std::optional<order_record> load_order_in(pqxx::transaction_base& tx, const char* where,
                                                 const std::string& value) {
  auto rows =
      tx.exec_params(std::string{"SELECT "} + order_columns + " FROM orders WHERE " + where, value);
  if (rows.empty()) {
    return std::nullopt;
  }
  auto o = to_order(rows[0]);
  auto lines = tx.exec_params("SELECT sku, qty, price_cents, hold_id FROM order_lines"
                              " WHERE order_id = $1 ORDER BY line",
                              o.order_id);
  o.lines.reserve(lines.size());
  for (const auto& l : lines) {
    o.lines.push_back(order_line_record{l[0].as<std::string>(), l[1].as<int64_t>(),
                                        l[2].as<int64_t>(), l[3].as<std::string>()});
  }
  auto pay =
      tx.exec_params("SELECT idempotency_key, gateway, charge_id, status, amount_cents,"
                     " currency, coalesce((extract(epoch FROM charged_at) * 1000)::bigint, 0)"
                     " FROM payments WHERE order_id = $1",
                     o.order_id);
  if (!pay.empty()) {
    payment_record p;
    read_columns(pay[0], p.idempotency_key, p.gateway, p.charge_id, p.status, p.amount_cents,
                 p.currency, p.charged_at_ms);
    o.payment = std::move(p);
  }
  o.refunds = refunds_in(tx, o.order_id);
  return o;
}

} // namespace surge::persistence::detail
