#pragma once

// The products table's row as the PostgreSQL adapters read it (private to persistence/src):
// pg_journal's load_product and pg_catalog's listings select the same seven columns first.

#include <cstdint>
#include <string>

#include <pqxx/pqxx>

#include "surge/persistence/records.hpp"

namespace surge::persistence::detail {

/// REQUIRES: `row` starts with sku, name, description, category, price_cents, currency,
/// per_customer_limit, in this order (none NULL).
inline product_record product_of(const pqxx::row& row) {
  product_record p;
  p.sku = row[0].as<std::string>();
  p.name = row[1].as<std::string>();
  p.description = row[2].as<std::string>();
  p.category = row[3].as<std::string>();
  p.price_cents = row[4].as<int64_t>();
  p.currency = row[5].as<std::string>();
  p.per_customer_limit = row[6].as<int64_t>();
  return p;
}

} // namespace surge::persistence::detail
