#include <algorithm>
#include <optional>
#include <string>

#include <pqxx/pqxx>

#include "pg_products.hpp"
#include "pg_util.hpp"
#include "surge/persistence/catalog.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::persistence {

namespace {

/// The catalog on one libpqxx connection. Owned and used by one thread at a time.
class pg_catalog final : public catalog {
 public:
  explicit pg_catalog(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {}

  bool healthy() const override { return healthy_; }

  caf::expected<std::vector<product_listing>> list_products(const product_query& q) override;

  // Search lands with migration 8 (issue 15); until then it is unavailable.
  caf::expected<search_page> search(const search_query&) override {
    return make_error(errc::unavailable, "search is not built yet");
  }
  caf::expected<std::vector<category_count>> categories() override {
    return make_error(errc::unavailable, "categories are not built yet");
  }

 private:
  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
};

caf::expected<std::vector<product_listing>> pg_catalog::list_products(const product_query& q) {
  if (!healthy_) {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }
  const auto limit = static_cast<int64_t>(std::clamp<std::size_t>(q.limit, 1, 100));
  // Every filter is a parameter; an unset filter is a NULL (or empty) parameter that the
  // statement skips. A text without any word filters nothing.
  std::optional<std::string> text;
  if (!q.text.empty()) {
    text = q.text;
  }
  std::optional<std::string> category;
  if (!q.category.empty()) {
    category = q.category;
  }
  try {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params(
        "SELECT p.sku, p.name, p.description, p.category, p.price_cents, p.currency,"
        " p.per_customer_limit, coalesce(s.on_hand - s.held - s.sold, 0) AS available"
        " FROM products p LEFT JOIN stock s ON s.sku = p.sku"
        " WHERE ($1::text IS NULL OR numnode(plainto_tsquery('simple', $1::text)) = 0"
        "        OR p.search @@ plainto_tsquery('simple', $1::text))"
        "   AND ($2::text IS NULL OR p.category = $2::text)"
        "   AND ($3::bigint IS NULL OR p.price_cents >= $3::bigint)"
        "   AND ($4::bigint IS NULL OR p.price_cents <= $4::bigint)"
        "   AND (NOT $5::boolean OR coalesce(s.on_hand - s.held - s.sold, 0) > 0)"
        "   AND p.sku > $6::text"
        " ORDER BY p.sku LIMIT $7::bigint",
        text, category, q.min_price, q.max_price, q.in_stock_only, q.after_sku, limit);
    std::vector<product_listing> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      out.push_back(product_listing{detail::product_of(row), row[7].as<int64_t>()});
    }
    return out;
  } catch (...) {
    return detail::translate_current(*conn_, healthy_);
  }
}

} // namespace

caf::expected<std::unique_ptr<catalog>> make_pg_catalog(const std::string& url) {
  return detail::open_adapter<catalog, pg_catalog>(url);
}

} // namespace surge::persistence
