#include <algorithm>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "pg_order_rows.hpp"
#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/order_query.hpp"

namespace surge::persistence {

namespace {

/// `prefix` as a LIKE pattern that matches exactly the strings starting with it.
std::string like_prefix(const std::string& prefix) {
  std::string out;
  for (char c : prefix) {
    if (c == '\\' || c == '%' || c == '_') {
      out += '\\';
    }
    out += c;
  }
  return out + '%';
}

std::optional<std::string> non_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

/// The admin's order reads on one libpqxx connection. Owned and used by one thread at a time.
class pg_order_query final : public order_query {
 public:
  explicit pg_order_query(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {}

  bool healthy() const override { return healthy_; }

  caf::expected<order_search_page> search(const order_search& q) override;
  caf::expected<std::optional<order_detail>> detail(const std::string& order_id) override;

 private:
  caf::error translate() noexcept { return detail::translate_current(*conn_, healthy_); }

  caf::error broken() const {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }

  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
};

caf::expected<order_search_page> pg_order_query::search(const order_search& q) {
  if (!healthy_) {
    return broken();
  }
  const auto limit = static_cast<int64_t>(std::clamp<std::size_t>(q.limit, 1, 100));
  std::optional<std::string> prefix;
  if (!q.id_prefix.empty()) {
    prefix = like_prefix(q.id_prefix);
  }
  std::optional<int64_t> after_us;
  std::string after_id;
  if (q.after) {
    after_us = q.after->created_us;
    after_id = q.after->order_id;
  }
  try {
    pqxx::nontransaction tx{*conn_};
    // Every filter is a parameter; an unset one is NULL and the statement skips it. Newest
    // first, keyset-paged on (created_at, order_id): the indexes of migration 6 serve each
    // filter in this order.
    auto rows = tx.exec_params(
        "SELECT o.order_id, o.cart_id, o.customer_id, o.status, o.total_cents, o.currency,"
        " (extract(epoch FROM o.created_at) * 1000)::bigint,"
        " (extract(epoch FROM o.created_at) * 1000000)::bigint, coalesce(p.gateway, ''),"
        " (CASE WHEN o.refund_status = 'refunded' THEN o.refunded_cents ELSE 0 END)"
        "  + coalesce((SELECT sum(r.amount_cents) FROM order_refunds r"
        "              WHERE r.order_id = o.order_id AND r.status = 'refunded'), 0)::bigint"
        " FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id"
        " WHERE ($1::text IS NULL OR o.order_id LIKE $1::text)"
        "   AND ($2::text IS NULL OR o.status = $2::text)"
        "   AND ($3::text IS NULL OR o.customer_id = $3::text)"
        "   AND ($4::bigint IS NULL OR"
        "        o.created_at >= 'epoch'::timestamptz + $4::bigint * interval '1 millisecond')"
        "   AND ($5::bigint IS NULL OR"
        "        o.created_at < 'epoch'::timestamptz + $5::bigint * interval '1 millisecond')"
        "   AND ($6::bigint IS NULL OR (o.created_at, o.order_id) <"
        "        ('epoch'::timestamptz + $6::bigint * interval '1 microsecond', $7::text))"
        " ORDER BY o.created_at DESC, o.order_id DESC LIMIT $8::bigint",
        prefix, non_empty(q.status), non_empty(q.customer_id), q.since_ms, q.until_ms, after_us,
        after_id, limit);
    order_search_page page;
    page.items.reserve(rows.size());
    for (const auto& row : rows) {
      order_summary s;
      detail::read_columns(row, s.order_id, s.cart_id, s.customer_id, s.status, s.total_cents,
                           s.currency, s.created_at_ms, s.created_us, s.gateway, s.refunded_cents);
      page.items.push_back(std::move(s));
    }
    if (static_cast<int64_t>(page.items.size()) == limit) {
      const auto& last = page.items.back();
      page.next = order_cursor{last.created_us, last.order_id};
    }
    return page;
  } catch (...) {
    return translate();
  }
}

caf::expected<std::optional<order_detail>> pg_order_query::detail(const std::string& order_id) {
  if (!healthy_) {
    return broken();
  }
  try {
    // One snapshot for the order and everything about it.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx{*conn_};
    auto o = detail::load_order_in(tx, "order_id = $1", order_id);
    if (!o) {
      tx.commit();
      return std::optional<order_detail>{};
    }
    order_detail d;
    d.order = std::move(*o);
    d.status_at_ms = tx.exec_params1("SELECT coalesce((extract(epoch FROM status_at) * 1000)"
                                     "::bigint, 0) FROM orders WHERE order_id = $1",
                                     order_id)[0]
                         .as<int64_t>();
    if (d.order.payment) {
      d.charged_at_ms = d.order.payment->charged_at_ms;
    }
    auto events = tx.exec_params("SELECT id, topic, payload,"
                                 " (extract(epoch FROM created_at) * 1000)::bigint,"
                                 " coalesce((extract(epoch FROM delivered_at) * 1000)::bigint, 0)"
                                 " FROM outbox WHERE key = $1 ORDER BY id",
                                 order_id);
    for (const auto& row : events) {
      order_outbox_row e;
      detail::read_columns(row, e.id, e.topic, e.payload, e.created_at_ms, e.delivered_at_ms);
      d.outbox.push_back(std::move(e));
    }
    tx.commit();
    return std::optional<order_detail>{std::move(d)};
  } catch (...) {
    return translate();
  }
}

} // namespace

caf::expected<std::unique_ptr<order_query>> make_pg_order_query(const std::string& url) {
  auto conn = detail::connect(url);
  if (!conn) {
    return std::move(conn.error());
  }
  return std::unique_ptr<order_query>{new pg_order_query(std::move(*conn))};
}

} // namespace surge::persistence
