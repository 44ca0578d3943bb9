#pragma once

#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/persistence/journal.hpp"

namespace surge::persistence {

/// Opens a PostgreSQL journal on `url` (libpq URI, e.g. postgresql://surge@127.0.0.1:5432/surge).
/// errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<journal>> make_pg_journal(const std::string& url);

/// Applies the schema migrations that `url`'s database lacks, in order, each in its own
/// transaction, while holding a PostgreSQL advisory lock so that nodes starting together apply
/// them one at a time. Idempotent. errc::unavailable when it cannot connect.
caf::error migrate(const std::string& url);

} // namespace surge::persistence
