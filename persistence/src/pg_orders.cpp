#include <exception>
#include <limits>
#include <string>

#include <pqxx/pqxx>

#include "pg_order_rows.hpp"
#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"

namespace surge::persistence {

namespace {

/// Key of the session-level advisory lock that elects the outbox relay ("SurgeOB").
constexpr long long relay_lock_key = 0x53757267654f42;

int64_t clamp_limit(std::size_t limit) {
  return limit > static_cast<std::size_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(limit);
}

/// Orders, payments and the outbox on one libpqxx connection. Owned and used by one thread at a
/// time.
class pg_order_store final : public order_store {
 public:
  explicit pg_order_store(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {
    // The relay lock lives in this session: a silent reconnect would lose it unnoticed.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn_->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  }

  bool healthy() const override {
    return healthy_;
  }

  caf::expected<std::pair<order_record, bool>> create(const order_record& order) override;
  caf::expected<std::optional<order_record>> load(const std::string& order_id) override;
  caf::error update(const std::string& order_id, const order_update& change) override;
  caf::expected<std::vector<std::string>> unsettled(std::chrono::milliseconds age,
                                                    std::chrono::milliseconds action_age,
                                                    std::size_t limit) override;
  caf::expected<bool> try_relay_lock() override;
  caf::expected<std::vector<outbox_event>> pending_events(std::size_t limit) override;
  caf::error mark_delivered(const std::vector<int64_t>& ids) override;

 private:
  /// Translates the exception in flight into an error; marks the store unhealthy when the
  /// connection is gone.
  caf::error translate() noexcept;

  caf::error broken() const {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }

  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
};

caf::error pg_order_store::translate() noexcept {
  return detail::translate_current(*conn_, healthy_, {false, true});
}

caf::expected<std::pair<order_record, bool>> pg_order_store::create(const order_record& order) {
  if (!healthy_) {
    return broken();
  }
  if (order.order_id.empty() || order.idempotency_key.empty()) {
    return make_error(errc::invalid, "an order needs an order id and an idempotency key");
  }
  try {
    // READ COMMITTED: an insert that meets a concurrent uncommitted one with the same key waits
    // for it; once that commits, DO NOTHING applies and the next statement sees the winner.
    pqxx::work tx{*conn_};
    auto ins = tx.exec_params(
        "INSERT INTO orders(order_id, idempotency_key, fingerprint, cart_id, customer_id,"
        " status, reason, total_cents, currency, claimed_at)"
        " VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8,"
        "  CASE WHEN $9::bigint > 0 THEN to_timestamp($9::bigint / 1000.0) END)"
        " ON CONFLICT (idempotency_key) DO NOTHING"
        " RETURNING (extract(epoch FROM created_at) * 1000)::bigint",
        order.order_id, order.idempotency_key, order.fingerprint, order.cart_id, order.customer_id,
        order.reason, order.total_cents, order.currency, order.claimed_at_ms);
    if (ins.empty()) {
      auto existing = detail::load_order_in(tx, "idempotency_key = $1", order.idempotency_key);
      tx.commit();
      if (!existing) {
        // The winner's row vanished between the two statements (deleted concurrently).
        return make_error(errc::conflict, "order with idempotency key " + order.idempotency_key +
                                              " changed concurrently; retry");
      }
      return std::make_pair(std::move(*existing), false);
    }
    int line = 1;
    for (const auto& l : order.lines) {
      tx.exec_params("INSERT INTO order_lines(order_id, line, sku, qty, price_cents, hold_id)"
                     " VALUES ($1, $2, $3, $4, $5, $6)",
                     order.order_id, line++, l.sku, l.qty, l.price_cents, l.hold_id);
    }
    order_record stored = order;
    stored.status = "pending";
    stored.created_at_ms = ins[0][0].as<int64_t>();
    stored.payment.reset();
    stored.refunds.clear();
    tx.commit();
    return std::make_pair(std::move(stored), true);
  } catch (const pqxx::unique_violation&) {
    // Not the key but another unique column (the order id) met a concurrent insert of the same
    // order: when that was the same key, its winner is the answer.
  } catch (...) {
    return translate();
  }
  try {
    pqxx::work tx{*conn_};
    auto existing = detail::load_order_in(tx, "idempotency_key = $1", order.idempotency_key);
    tx.commit();
    if (!existing) {
      return make_error(errc::conflict, "order " + order.order_id + " exists with another key");
    }
    return std::make_pair(std::move(*existing), false);
  } catch (...) {
    return translate();
  }
}

caf::expected<std::optional<order_record>> pg_order_store::load(const std::string& order_id) {
  if (!healthy_) {
    return broken();
  }
  try {
    // One snapshot for the order, its lines and its payment.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx{*conn_};
    auto o = detail::load_order_in(tx, "order_id = $1", order_id);
    tx.commit();
    return o;
  } catch (...) {
    return translate();
  }
}

caf::error pg_order_store::update(const std::string& order_id, const order_update& change) {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::work tx{*conn_};
    auto rows =
        change.refund
            ? tx.exec_params("UPDATE orders SET status = $2, reason = $3, refund_status = $4,"
                             " refund_id = $5, refunded_cents = $6, updated_at = now(),"
                             " status_at = CASE WHEN status = $2 THEN status_at ELSE now() END"
                             " WHERE order_id = $1 RETURNING 1",
                             order_id, change.status, change.reason, change.refund->status,
                             change.refund->refund_id, change.refund->amount_cents)
            : tx.exec_params("UPDATE orders SET status = $2, reason = $3, updated_at = now(),"
                             " status_at = CASE WHEN status = $2 THEN status_at ELSE now() END"
                             " WHERE order_id = $1 RETURNING 1",
                             order_id, change.status, change.reason);
    if (rows.empty()) {
      tx.abort();
      return make_error(errc::invalid, "no order " + order_id);
    }
    const auto& payment = change.payment;
    const auto& event = change.event;
    if (payment) {
      tx.exec_params("INSERT INTO payments(order_id, idempotency_key, gateway, charge_id, status,"
                     " amount_cents, currency, charged_at) VALUES ($1, $2, $3, $4, $5, $6, $7,"
                     "  CASE WHEN $8::bigint > 0 THEN to_timestamp($8::bigint / 1000.0)"
                     "  ELSE now() END)"
                     " ON CONFLICT (order_id) DO UPDATE SET"
                     " idempotency_key = excluded.idempotency_key, gateway = excluded.gateway,"
                     " charge_id = excluded.charge_id, status = excluded.status,"
                     " amount_cents = excluded.amount_cents, currency = excluded.currency,"
                     " charged_at = coalesce(payments.charged_at, excluded.charged_at),"
                     " updated_at = now()",
                     order_id, payment->idempotency_key, payment->gateway, payment->charge_id,
                     payment->status, payment->amount_cents, payment->currency,
                     payment->charged_at_ms);
    }
    if (const auto& r = change.refund_entry) {
      tx.exec_params(
          "INSERT INTO order_refunds(order_id, refund_id, idempotency_key, fingerprint,"
          " gateway_key, status, gateway_refund_id, amount_cents, lines, message, settled_at)"
          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
          "  CASE WHEN $6 = 'pending' THEN NULL ELSE now() END)"
          " ON CONFLICT (order_id, refund_id) DO UPDATE SET status = excluded.status,"
          " gateway_refund_id = excluded.gateway_refund_id, message = excluded.message,"
          " settled_at = excluded.settled_at, updated_at = now()",
          order_id, r->refund_id, r->idempotency_key, r->fingerprint, r->gateway_key, r->status,
          r->gateway_refund_id, r->amount_cents, detail::lines_text(r->lines), r->message);
    }
    if (event) {
      tx.exec_params("INSERT INTO outbox(topic, key, payload) VALUES ($1, $2, $3)", event->topic,
                     event->key, event->payload);
    }
    tx.commit();
    return caf::none;
  } catch (...) {
    return translate();
  }
}

caf::expected<std::vector<std::string>>
pg_order_store::unsettled(std::chrono::milliseconds age, std::chrono::milliseconds action_age,
                          std::size_t limit) {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::nontransaction tx{*conn_};
    // The predicates repeat the partial indexes' so that the planner can use them.
    auto rows = tx.exec_params("SELECT order_id FROM ("
                               " SELECT order_id, updated_at FROM orders"
                               " WHERE (status IN ('pending', 'paid') OR refund_status = 'pending')"
                               "   AND updated_at < now() - $1::bigint * interval '1 millisecond'"
                               " UNION ALL"
                               " SELECT order_id, updated_at FROM orders"
                               " WHERE status = 'requires_action'"
                               "   AND updated_at < now() - $3::bigint * interval '1 millisecond'"
                               " UNION ALL"
                               " SELECT order_id, updated_at FROM order_refunds"
                               " WHERE status = 'pending'"
                               "   AND updated_at < now() - $1::bigint * interval '1 millisecond'"
                               ") u GROUP BY order_id"
                               " ORDER BY min(updated_at), order_id LIMIT $2::bigint",
                               static_cast<int64_t>(age.count()), clamp_limit(limit),
                               static_cast<int64_t>(action_age.count()));
    return detail::first_column(rows);
  } catch (...) {
    return translate();
  }
}

caf::expected<bool> pg_order_store::try_relay_lock() {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::nontransaction tx{*conn_};
    // Session-level and re-entrant: a holder asking again gets true; held until disconnect.
    return tx.exec_params1("SELECT pg_try_advisory_lock($1)", relay_lock_key)[0].as<bool>();
  } catch (...) {
    return translate();
  }
}

caf::expected<std::vector<outbox_event>> pg_order_store::pending_events(std::size_t limit) {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params("SELECT id, topic, key, payload FROM outbox"
                               " WHERE delivered_at IS NULL ORDER BY id LIMIT $1::bigint",
                               clamp_limit(limit));
    std::vector<outbox_event> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(outbox_event{row[0].as<int64_t>(), row[1].as<std::string>(),
                                 row[2].as<std::string>(), row[3].as<std::string>()});
    }
    return out;
  } catch (...) {
    return translate();
  }
}

caf::error pg_order_store::mark_delivered(const std::vector<int64_t>& ids) {
  if (ids.empty()) {
    return caf::none;
  }
  if (!healthy_) {
    return broken();
  }
  // An array literal of integers, passed as one parameter.
  std::string array = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) {
      array += ',';
    }
    array += std::to_string(ids[i]);
  }
  array += '}';
  try {
    pqxx::nontransaction tx{*conn_};
    tx.exec_params("UPDATE outbox SET delivered_at = now()"
                   " WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL",
                   array);
    return caf::none;
  } catch (...) {
    return translate();
  }
}

} // namespace

caf::expected<std::unique_ptr<order_store>> make_pg_order_store(const std::string& url) {
  auto conn = detail::connect(url);
  if (!conn) {
    return std::move(conn.error());
  }
  return std::unique_ptr<order_store>{new pg_order_store(std::move(*conn))};
}

} // namespace surge::persistence
