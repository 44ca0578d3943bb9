#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/webhooks.hpp"

namespace surge::persistence {

namespace {

/// A timestamptz column as Unix ms (0 when NULL).
#define SURGE_MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

/// The columns of a delivery row, in delivery_of()'s order.
constexpr const char*
    delivery_columns = "id, endpoint, event_id, event_type, order_id, body, status, "
                       "attempts, " SURGE_MS("next_attempt_at") ", " SURGE_MS(
                           "first_attempt_at") ", " SURGE_MS("last_attempt_at") ", "
                                                                                "coalesce(last_"
                                                                                "status, 0), "
                                                                                "last_error,"
                                                                                " " SURGE_MS("deliv"
                                                                                             "ered_"
                                                                                             "at") ", " SURGE_MS("created_at");

webhook_delivery delivery_of(const pqxx::row& row) {
  webhook_delivery d;
  detail::read_columns(row, d.id, d.endpoint, d.event_id, d.event_type, d.order_id, d.body,
                       d.status, d.attempts, d.next_attempt_at_ms, d.first_attempt_at_ms,
                       d.last_attempt_at_ms, d.last_status, d.last_error, d.delivered_at_ms,
                       d.created_at_ms);
  return d;
}

/// The statement claim() runs: the delivery due first whose order has nothing earlier still to
/// deliver to the same endpoint. $1: lease (ms), $2: missing_wait (ms).
constexpr const char* claim_sql =
    "UPDATE webhook_deliveries d SET"
    "   lease_until = now() + $1::bigint * interval '1 millisecond',"
    "   attempts = d.attempts + 1,"
    "   first_attempt_at = coalesce(d.first_attempt_at, now()),"
    "   last_attempt_at = now()"
    " WHERE d.id = ("
    "   SELECT w.id FROM webhook_deliveries w"
    "   WHERE w.status = 'pending' AND w.next_attempt_at <= now()"
    "     AND (w.lease_until IS NULL OR w.lease_until < now())"
    "     AND NOT EXISTS ("
    "       SELECT 1 FROM webhook_deliveries e"
    "       WHERE e.order_id = w.order_id AND e.endpoint = w.endpoint"
    "         AND e.event_id < w.event_id AND e.status = 'pending')"
    "     AND NOT EXISTS ("
    "       SELECT 1 FROM outbox ob"
    "       WHERE ob.key = w.order_id AND ob.id < w.event_id"
    "         AND ob.topic IN ('orders', 'refunds')"
    "         AND ob.created_at > now() - $2::bigint * interval '1 millisecond'"
    "         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x"
    "                         WHERE x.endpoint = w.endpoint AND x.event_id = ob.id))"
    "   ORDER BY w.next_attempt_at, w.id"
    "   LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING ";

class pg_webhook_store final : public webhook_store {
 public:
  explicit pg_webhook_store(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {}

  bool healthy() const override { return healthy_; }

  caf::expected<std::size_t> enqueue(const std::vector<webhook_delivery>& rows) override {
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::work tx{*conn_};
      std::size_t added = 0;
      for (const auto& r : rows) {
        auto res = tx.exec_params("INSERT INTO webhook_deliveries"
                                  " (endpoint, event_id, event_type, order_id, body)"
                                  " VALUES ($1, $2, $3, $4, $5)"
                                  " ON CONFLICT (endpoint, event_id) DO NOTHING",
                                  r.endpoint, r.event_id, r.event_type, r.order_id, r.body);
        added += static_cast<std::size_t>(res.affected_rows());
      }
      tx.commit();
      return added;
    } catch (...) {
      return translate({.during_commit = true});
    }
  }

  caf::expected<std::optional<webhook_delivery>>
  claim(std::chrono::milliseconds lease, std::chrono::milliseconds missing_wait) override {
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::work tx{*conn_};
      auto rows = tx.exec_params(std::string{claim_sql} + delivery_columns,
                                 static_cast<int64_t>(lease.count()),
                                 static_cast<int64_t>(missing_wait.count()));
      tx.commit();
      if (rows.empty()) {
        return std::optional<webhook_delivery>{};
      }
      return std::optional<webhook_delivery>{delivery_of(rows[0])};
    } catch (...) {
      return translate({.during_commit = true});
    }
  }

  caf::error record(int64_t id, int attempt, const outcome& o) override {
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::work tx{*conn_};
      const std::optional<int> status =
          o.status > 0 ? std::optional<int>{o.status} : std::optional<int>{};
      tx.exec_params("INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error,"
                     " duration_ms) VALUES ($1, $2, now(), $3, $4, $5)"
                     " ON CONFLICT DO NOTHING",
                     id, attempt, status, o.error, o.duration_ms);
      if (o.delivered) {
        tx.exec_params("UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(),"
                       " lease_until = NULL, last_status = $3, last_error = ''"
                       " WHERE id = $1 AND attempts = $2 AND status = 'pending'"
                       " AND lease_until IS NOT NULL",
                       id, attempt, status);
      } else if (o.retry_in) {
        tx.exec_params("UPDATE webhook_deliveries SET lease_until = NULL, last_status = $3,"
                       " last_error = $4,"
                       " next_attempt_at = now() + $5::bigint * interval '1 millisecond'"
                       " WHERE id = $1 AND attempts = $2 AND status = 'pending'"
                       " AND lease_until IS NOT NULL",
                       id, attempt, status, o.error, static_cast<int64_t>(o.retry_in->count()));
      } else {
        tx.exec_params("UPDATE webhook_deliveries SET status = 'dead', lease_until = NULL,"
                       " last_status = $3, last_error = $4"
                       " WHERE id = $1 AND attempts = $2 AND status = 'pending'"
                       " AND lease_until IS NOT NULL",
                       id, attempt, status, o.error);
      }
      tx.commit();
      return caf::none;
    } catch (...) {
      return translate({.during_commit = true});
    }
  }

  caf::expected<std::vector<webhook_delivery>> list(const filter& f) override {
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::nontransaction tx{*conn_};
      auto rows = tx.exec_params(std::string{"SELECT "} + delivery_columns +
                                     " FROM webhook_deliveries"
                                     " WHERE ($1 = '' OR endpoint = $1)"
                                     "   AND ($2 = '' OR order_id = $2)"
                                     "   AND ($3 = '' OR status = $3)"
                                     "   AND ($4::bigint <= 0 OR id < $4::bigint)"
                                     " ORDER BY id DESC LIMIT $5",
                                 f.endpoint, f.order_id, f.status, f.before_id,
                                 static_cast<int64_t>(f.limit));
      std::vector<webhook_delivery> out;
      out.reserve(rows.size());
      for (const auto& row : rows) {
        out.push_back(delivery_of(row));
      }
      return out;
    } catch (...) {
      return translate();
    }
  }

  caf::expected<std::optional<std::pair<webhook_delivery, std::vector<webhook_attempt>>>>
  get(int64_t id) override {
    using result = std::optional<std::pair<webhook_delivery, std::vector<webhook_attempt>>>;
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::work tx{*conn_};
      auto rows = tx.exec_params(
          std::string{"SELECT "} + delivery_columns + " FROM webhook_deliveries WHERE id = $1", id);
      if (rows.empty()) {
        return result{};
      }
      std::vector<webhook_attempt> attempts;
      for (const auto& row :
           tx.exec_params("SELECT attempt, " SURGE_MS(
                              "at") ", coalesce(status, 0), error,"
                                    " duration_ms FROM webhook_attempts WHERE delivery_id = $1"
                                    " ORDER BY at, attempt",
                          id)) {
        webhook_attempt a;
        detail::read_columns(row, a.attempt, a.at_ms, a.status, a.error, a.duration_ms);
        attempts.push_back(std::move(a));
      }
      tx.commit();
      return result{std::pair{delivery_of(rows[0]), std::move(attempts)}};
    } catch (...) {
      return translate();
    }
  }

  caf::expected<bool> redeliver(int64_t id) override {
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::work tx{*conn_};
      // The lease goes: an attempt still under way records nothing over it (record() needs
      // its lease), and the next claim counts on from `attempts`. first_attempt_at restarts
      // the retry clock.
      auto res = tx.exec_params("UPDATE webhook_deliveries SET status = 'pending',"
                                " next_attempt_at = now(), lease_until = NULL,"
                                " first_attempt_at = NULL, delivered_at = NULL"
                                " WHERE id = $1",
                                id);
      tx.commit();
      return res.affected_rows() > 0;
    } catch (...) {
      return translate({.during_commit = true});
    }
  }

  caf::expected<std::vector<webhook_endpoint_stats>> stats() override {
    if (!healthy_) {
      return broken();
    }
    try {
      pqxx::nontransaction tx{*conn_};
      std::vector<webhook_endpoint_stats> out;
      for (const auto& row : tx.exec(
               "SELECT endpoint, count(*) FILTER (WHERE status = 'pending'),"
               " count(*) FILTER (WHERE status = 'delivered'),"
               " count(*) FILTER (WHERE status = 'dead'),"
               " coalesce((extract(epoch FROM min(created_at) FILTER (WHERE status = 'pending'))"
               "   * 1000)::bigint, 0)"
               " FROM webhook_deliveries GROUP BY endpoint ORDER BY endpoint")) {
        webhook_endpoint_stats s;
        detail::read_columns(row, s.endpoint, s.pending, s.delivered, s.dead, s.oldest_pending_ms);
        out.push_back(std::move(s));
      }
      return out;
    } catch (...) {
      return translate();
    }
  }

 private:
  caf::error translate(detail::translate_options opts = {}) noexcept {
    return detail::translate_current(*conn_, healthy_, opts);
  }

  static caf::error broken() {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }

  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
};

#undef SURGE_MS

} // namespace

caf::expected<std::unique_ptr<webhook_store>> make_pg_webhook_store(const std::string& url) {
  return detail::open_adapter<webhook_store, pg_webhook_store>(url);
}

} // namespace surge::persistence
