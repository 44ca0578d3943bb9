#pragma once

// Reads what PostgreSQL holds after a run into the checker's model: the SKU journal (decoded),
// shard_history, orders with their lines, payment and refunds (the cancellation's, the
// operators'). Blocking (libpqxx); throws std::runtime_error.

#include <string>

#include "model.hpp"

namespace surge::chaos {

/// Fills d.journal, d.shard_history and d.orders from the database at `pg_url`.
void collect_database(const std::string& pg_url, run_data& d);

/// Orders still pending or paid, or with a refund pending (the reconciler settles them).
int64_t unsettled_orders(const std::string& pg_url);

} // namespace surge::chaos
