#pragma once

// The products table's row as the PostgreSQL adapters read it (private to persistence/src):
// pg_journal's load_product and pg_catalog's listings select the same seven columns first.

#include <cstdint>
#include <string>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/records.hpp"

namespace surge::persistence::detail {

/// REQUIRES: `row` starts with sku, name, description, category, price_cents, currency,
/// per_customer_limit, in this order (none NULL).
inline product_record product_of(const pqxx::row& row) {
  product_record p;
  read_columns(row, p.sku, p.name, p.description, p.category, p.price_cents, p.currency,
               p.per_customer_limit);
  return p;
}

} // namespace surge::persistence::detail
