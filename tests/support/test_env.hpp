#pragma once

// Fixtures for integration tests against real PostgreSQL and Redis. A server that cannot be
// reached makes the fixture throw std::runtime_error with a message naming the URL and the
// environment variable: the test FAILS, it never skips.

#include <cstddef>
#include <string>

#include "surge/persistence/redis.hpp"

namespace surge::test {

/// SURGE_TEST_PG_URL, default postgresql://surge@127.0.0.1:5432/postgres: an admin URL from
/// which tests create their own databases.
std::string test_pg_admin_url();

/// SURGE_TEST_PG_REPLICA_URL: a streaming replica of SURGE_TEST_PG_URL's server (same form;
/// scripts/services.sh starts one), or "" when unset (the replica tests then skip, saying so).
std::string test_pg_replica_url();

/// SURGE_TEST_REDIS_URL, default redis://127.0.0.1:6379/0.
std::string test_redis_url();

/// `url` (a libpq URI) naming database `db` instead of its own.
std::string pg_url_with_database(const std::string& url, const std::string& db);

/// A fresh database for one test, migrated unless `migrated` is false, dropped (WITH (FORCE))
/// on destruction. Throws std::runtime_error when PostgreSQL cannot be reached or migrate()
/// fails.
class pg_test_db {
 public:
  explicit pg_test_db(bool migrated = true);
  ~pg_test_db();
  pg_test_db(const pg_test_db&) = delete;
  pg_test_db& operator=(const pg_test_db&) = delete;

  /// URL of the test database.
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  const std::string admin_url_;
  const std::string name_;
  const std::string url_;
};

/// A key prefix no other test (process or thread) uses: "surge_t:<pid>:<n>:<random>:".
std::string redis_test_prefix();

/// Options for persistence's Redis adapters at `url` with key prefix `prefix`, a 2 s timeout.
persistence::redis_options redis_test_options(const std::string& url,
                                              const std::string& prefix = {});

/// Deletes every key starting with `prefix` (SCAN + DEL). Returns the number deleted; throws
/// std::runtime_error when Redis cannot be reached.
std::size_t delete_redis_keys(const std::string& redis_url, const std::string& prefix);

/// A unique prefix whose keys are deleted on destruction. The constructor checks that Redis
/// answers (throws std::runtime_error otherwise).
class redis_test_keys {
 public:
  redis_test_keys();
  ~redis_test_keys();
  redis_test_keys(const redis_test_keys&) = delete;
  redis_test_keys& operator=(const redis_test_keys&) = delete;

  const std::string& url() const { return url_; }
  const std::string& prefix() const { return prefix_; }
  /// Options for persistence's Redis adapters on these keys: url(), prefix(), a 2 s timeout.
  persistence::redis_options options() const;

 private:
  const std::string url_;
  const std::string prefix_;
};

} // namespace surge::test
