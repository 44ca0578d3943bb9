#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/sales.hpp"

namespace surge::persistence {

namespace {

/// Key of the transaction-level advisory lock every sale put takes ("sales"): puts are
/// serialised, so that two puts naming the same SKU cannot both pass the overlap check.
constexpr long long sales_lock_key = 0x73616c6573;

/// The columns of a sale row, in sale_of()'s order.
constexpr const char* sale_columns =
    "sale_id, name, skus, (extract(epoch FROM starts_at) * 1000)::bigint,"
    " (extract(epoch FROM ends_at) * 1000)::bigint, per_customer_limit, queue_enabled,"
    " admission_rate, pass_ttl_ms, (extract(epoch FROM updated_at) * 1000)::bigint";

/// `skus` as a text[] literal: every element double-quoted, with `"` and `\` escaped.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) {
      out += ',';
    }
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

/// The elements of a one-dimensional text[] field.
std::vector<std::string> text_items(const pqxx::field& f) {
  std::vector<std::string> out;
  auto parser = f.as_array();
  for (auto next = parser.get_next(); next.first != pqxx::array_parser::done;
       next = parser.get_next()) {
    if (next.first == pqxx::array_parser::string_value) {
      out.push_back(std::move(next.second));
    }
  }
  return out;
}

sale_record sale_of(const pqxx::row& row) {
  sale_record s;
  s.sale_id = row[0].as<std::string>();
  s.name = row[1].as<std::string>();
  s.skus = text_items(row[2]);
  s.starts_at_ms = row[3].as<int64_t>();
  s.ends_at_ms = row[4].as<int64_t>();
  s.per_customer_limit = row[5].as<int64_t>();
  s.queue_enabled = row[6].as<bool>();
  s.admission_rate = row[7].as<double>();
  s.pass_ttl_ms = row[8].as<int64_t>();
  s.updated_at_ms = row[9].as<int64_t>();
  return s;
}

/// Sale definitions on one libpqxx connection (or none: every call answers unavailable). Owned
/// and used by one thread at a time.
class pg_sale_store final : public sale_store {
 public:
  explicit pg_sale_store(std::unique_ptr<pqxx::connection> conn, caf::error why_not = {})
      : conn_(std::move(conn))
      , why_not_(std::move(why_not))
      , healthy_(conn_ != nullptr) {}

  bool healthy() const override { return healthy_; }

  caf::expected<sale_record> put(const sale_record& s) override;
  caf::expected<std::optional<sale_record>> get(const std::string& sale_id) override;
  caf::expected<std::vector<sale_record>> list(int64_t ended_after_ms) override;
  caf::expected<bool> remove(const std::string& sale_id) override;

 private:
  caf::error translate(detail::translate_options opts = {}) noexcept {
    return detail::translate_current(*conn_, healthy_, opts);
  }

  caf::error broken() const {
    if (why_not_) {
      return why_not_;
    }
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }

  const std::unique_ptr<pqxx::connection> conn_;
  const caf::error why_not_; ///< why there is no connection (conn_ null)
  bool healthy_;
};

caf::expected<sale_record> pg_sale_store::put(const sale_record& s) {
  if (!healthy_) {
    return broken();
  }
  const auto skus = text_array(s.skus);
  try {
    pqxx::work tx{*conn_};
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", sales_lock_key);
    // Every SKU must be a product.
    auto unknown = tx.exec_params("SELECT u.sku FROM unnest($1::text[]) WITH ORDINALITY"
                                  " AS u(sku, i)"
                                  " WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = u.sku)"
                                  " ORDER BY u.i LIMIT 1",
                                  skus);
    if (!unknown.empty()) {
      return make_error(errc::invalid,
                        "unknown SKU " + unknown[0][0].as<std::string>() + " (no such product)");
    }
    // A started sale keeps its start and every SKU it had.
    auto old =
        tx.exec_params("SELECT (extract(epoch FROM starts_at) * 1000)::bigint, starts_at <= now(),"
                       " ARRAY(SELECT o FROM unnest(skus) AS o WHERE NOT (o = ANY($2::text[])))"
                       " FROM sales WHERE sale_id = $1 FOR UPDATE",
                       s.sale_id, skus);
    if (!old.empty() && old[0][1].as<bool>()) {
      if (old[0][0].as<int64_t>() != s.starts_at_ms) {
        return make_error(errc::conflict,
                          "the sale " + s.sale_id + " has started: its start cannot move");
      }
      if (auto dropped = text_items(old[0][2]); !dropped.empty()) {
        return make_error(errc::conflict, "the sale " + s.sale_id + " has started: SKU " +
                                              dropped.front() + " cannot be dropped from it");
      }
    }
    // No SKU in two sales whose windows [starts, ends) overlap.
    auto clash = tx.exec_params(
        "SELECT o.sale_id, u.sku FROM sales o, unnest(o.skus) AS u(sku)"
        " WHERE o.sale_id <> $1 AND o.skus && $2::text[] AND u.sku = ANY($2::text[])"
        "   AND o.starts_at < 'epoch'::timestamptz + $4::bigint * interval '1 millisecond'"
        "   AND o.ends_at > 'epoch'::timestamptz + $3::bigint * interval '1 millisecond'"
        " ORDER BY o.starts_at, o.sale_id, u.sku LIMIT 1",
        s.sale_id, skus, s.starts_at_ms, s.ends_at_ms);
    if (!clash.empty()) {
      return make_error(errc::conflict, "SKU " + clash[0][1].as<std::string>() +
                                            " is in the sale " + clash[0][0].as<std::string>() +
                                            ", whose window overlaps this one's");
    }
    auto row = tx.exec_params1(
        std::string{"INSERT INTO sales (sale_id, name, skus, starts_at, ends_at,"
                    " per_customer_limit, queue_enabled, admission_rate, pass_ttl_ms, updated_at)"
                    " VALUES ($1, $2, $3::text[],"
                    " 'epoch'::timestamptz + $4::bigint * interval '1 millisecond',"
                    " 'epoch'::timestamptz + $5::bigint * interval '1 millisecond',"
                    " $6, $7, $8, $9, now())"
                    " ON CONFLICT (sale_id) DO UPDATE SET name = excluded.name,"
                    " skus = excluded.skus, starts_at = excluded.starts_at,"
                    " ends_at = excluded.ends_at,"
                    " per_customer_limit = excluded.per_customer_limit,"
                    " queue_enabled = excluded.queue_enabled,"
                    " admission_rate = excluded.admission_rate,"
                    " pass_ttl_ms = excluded.pass_ttl_ms, updated_at = excluded.updated_at"
                    " RETURNING "} +
            sale_columns,
        s.sale_id, s.name, skus, s.starts_at_ms, s.ends_at_ms, s.per_customer_limit,
        s.queue_enabled, s.admission_rate, s.pass_ttl_ms);
    auto stored = sale_of(row);
    tx.commit();
    return stored;
  } catch (...) {
    return translate({.during_commit = true, .bad_input_invalid = true});
  }
}

caf::expected<std::optional<sale_record>> pg_sale_store::get(const std::string& sale_id) {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params(
        std::string{"SELECT "} + sale_columns + " FROM sales WHERE sale_id = $1", sale_id);
    if (rows.empty()) {
      return std::optional<sale_record>{};
    }
    return std::optional<sale_record>{sale_of(rows[0])};
  } catch (...) {
    return translate();
  }
}

caf::expected<std::vector<sale_record>> pg_sale_store::list(int64_t ended_after_ms) {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params(
        std::string{"SELECT "} + sale_columns +
            " FROM sales WHERE $1::bigint <= 0"
            "  OR ends_at > 'epoch'::timestamptz + $1::bigint * interval '1 millisecond'"
            " ORDER BY starts_at, sale_id",
        ended_after_ms);
    std::vector<sale_record> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(sale_of(row));
    }
    return out;
  } catch (...) {
    return translate();
  }
}

caf::expected<bool> pg_sale_store::remove(const std::string& sale_id) {
  if (!healthy_) {
    return broken();
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto r = tx.exec_params("DELETE FROM sales WHERE sale_id = $1", sale_id);
    return r.affected_rows() > 0;
  } catch (...) {
    return translate();
  }
}

} // namespace

std::unique_ptr<sale_store> make_pg_sale_store(const std::string& url) {
  auto conn = detail::connect(url);
  if (!conn) {
    return std::make_unique<pg_sale_store>(nullptr, std::move(conn.error()));
  }
  return std::make_unique<pg_sale_store>(std::move(*conn));
}

} // namespace surge::persistence
