#pragma once

#include <functional>
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

namespace surge::persistence {

/// How to keep one secret that every node of a database must share (e.g. ids.secret).
struct shared_secret_spec {
  std::string name;       ///< e.g. "ids.secret"
  std::string configured; ///< the operator's value; empty: keep a generated one in the database
  std::function<std::string()> generate;                         ///< a fresh secret
  std::function<std::string(const std::string&)> fingerprint_of; ///< one-way; reveals nothing
};

/// The secret `spec.name` of `url`'s database, in one transaction (nodes starting together
/// agree). A configured secret is checked against the fingerprint the database recorded at its
/// first use (recorded now when there is none); without one, the database keeps a generated
/// secret (made now when there is none) and returns it. The configured value itself is never
/// stored. Errors: conflict when the configured secret is not the one the database was first
/// used with, or when none is configured but the database was used with a configured one (its
/// message says what to do; it never contains a secret); unavailable when PostgreSQL cannot be
/// reached. Blocks; call it at start-up.
caf::expected<std::string> shared_secret(const std::string& url, const shared_secret_spec& spec);

} // namespace surge::persistence
