#pragma once

// The journal backends every behaviour case runs against: the in-memory fake and real
// PostgreSQL (a fresh migrated database per case). Each backend makes connections (journals,
// and catalogs that read what the journals commit) to one shared "server" and can break the
// live connections.

#include <atomic>
#include <memory>
#include <string>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "memory_catalog.hpp"
#include "memory_journal.hpp"
#include "surge/persistence/catalog.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/pg.hpp"
#include "test_env.hpp"

namespace surge::test {

struct fake_backend {
  static constexpr const char* name = "memory";

  std::shared_ptr<fakes::memory_journal_state> state =
      std::make_shared<fakes::memory_journal_state>();

  std::unique_ptr<persistence::journal> connect() {
    return std::make_unique<fakes::memory_journal>(state);
  }

  std::unique_ptr<persistence::catalog> catalog() {
    return std::make_unique<fakes::memory_catalog>(state);
  }

  /// Makes batching likely in queue tests, as a real round trip + fsync does.
  void simulate_latency() { state->set_commit_delay(std::chrono::microseconds{300}); }

  /// The next commit on a live connection fails as a broken connection would.
  void break_connections() { state->fail_next(persistence::errc::unavailable); }
};

struct pg_backend {
  static constexpr const char* name = "postgresql";

  pg_test_db db;

  std::unique_ptr<persistence::journal> connect() {
    auto j = persistence::make_pg_journal(db.url());
    REQUIRE_MESSAGE(j, "cannot connect to " << db.url() << ": " << caf::to_string(j.error()));
    return std::move(*j);
  }

  std::unique_ptr<persistence::catalog> catalog() {
    auto c = persistence::make_pg_catalog(db.url());
    REQUIRE_MESSAGE(c, "cannot connect to " << db.url() << ": " << caf::to_string(c.error()));
    return std::move(*c);
  }

  void simulate_latency() {}

  /// Terminates every server process of the test database, as a PostgreSQL restart does.
  void break_connections() {
    pqxx::connection admin{test_pg_admin_url()};
    pqxx::nontransaction tx{admin};
    tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = $1 AND pid <> pg_backend_pid()",
                   db.name());
  }
};

} // namespace surge::test
