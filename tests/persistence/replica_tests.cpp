// The replica router (replicas.hpp) against a real streaming replica of the test server
// (SURGE_TEST_PG_REPLICA_URL): which target serves a read, and the fallback to the primary.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "journal_helpers.hpp"
#include "surge/persistence/replicas.hpp"
#include "test_env.hpp"

using namespace surge::persistence;
using namespace std::chrono_literals;
using namespace surge::test::journal_helpers;

namespace {

constexpr auto primary_target = replica_health::primary;

/// A migrated test database on the primary with two products, and its URL on the replica.
struct replica_fixture {
  surge::test::pg_test_db db;
  std::string replica_url;
  std::mutex mtx;
  std::map<std::size_t, int> reads; ///< target -> reads served

  replica_fixture() {
    replica_url = surge::test::pg_url_with_database(surge::test::test_pg_replica_url(), db.name());
    pqxx::connection c{db.url()};
    pqxx::nontransaction tx{c};
    tx.exec("INSERT INTO products (sku, name, category, price_cents) VALUES"
            " ('R1', 'Replica kettle', 'kitchen', 1000), ('R2', 'Replica mug', 'kitchen', 500)");
  }

  std::shared_ptr<replica_health> health(std::vector<std::string> urls,
                                         std::chrono::milliseconds max_lag) {
    replica_health::observers obs;
    obs.read = [this](std::size_t target) {
      std::lock_guard<std::mutex> guard{mtx};
      ++reads[target];
    };
    return std::make_shared<replica_health>(db.url(), std::move(urls), max_lag, 0ms, obs);
  }

  int reads_of(std::size_t target) {
    std::lock_guard<std::mutex> guard{mtx};
    return reads[target];
  }

  /// Probes until replica `i` holds everything the primary committed before the probe
  /// (replication has no event to wait on: bounded polling).
  static void await_caught_up(replica_health& h, std::size_t i) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      h.probe_once();
      if (h.state_of(i).caught_up) {
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    FAIL("replica " << i << " did not catch up with the primary");
  }
};

std::unique_ptr<catalog> routed(std::shared_ptr<replica_health> h) {
  return make_routed_catalog(std::move(h),
                             [](const std::string& url) { return make_pg_catalog(url); });
}

const std::vector<std::string> both{"R1", "R2"};

bool have_replica() {
  if (surge::test::test_pg_replica_url().empty()) {
    MESSAGE("SURGE_TEST_PG_REPLICA_URL is not set: replica router tests skipped "
            "(scripts/test.sh sets it; scripts/services.sh starts the replica)");
    return false;
  }
  return true;
}

} // namespace

TEST_CASE("replicas: a fresh replica serves reads, one over the bound is skipped") {
  if (!have_replica()) {
    return;
  }
  replica_fixture f;
  {
    auto h = f.health({f.replica_url}, 1h);
    replica_fixture::await_caught_up(*h, 0);
    CHECK(h->usable(0));
    auto c = routed(h);
    CHECK(skus(require_value(c->list_products({}))) == both);
    CHECK(f.reads_of(0) == 1);
    CHECK(f.reads_of(primary_target) == 0);
  }
  {
    auto h = f.health({f.replica_url}, 0ms); // nothing is fresh enough
    h->probe_once();
    CHECK(h->state_of(0).reachable);
    CHECK_FALSE(h->usable(0));
    auto c = routed(h);
    CHECK(skus(require_value(c->list_products({}))) == both);
    CHECK(f.reads_of(primary_target) == 1);
  }
  {
    auto h = f.health({f.replica_url}, 1h); // not probed yet: unknown, so not used
    auto c = routed(h);
    CHECK(skus(require_value(c->list_products({}))) == both);
    CHECK(f.reads_of(primary_target) == 2);
  }
}

TEST_CASE("replicas: round robin across two targets") {
  if (!have_replica()) {
    return;
  }
  replica_fixture f;
  auto h = f.health({f.replica_url, f.replica_url}, 1h);
  replica_fixture::await_caught_up(*h, 0);
  replica_fixture::await_caught_up(*h, 1);
  auto c = routed(h);
  for (int i = 0; i < 6; ++i) {
    CHECK(skus(require_value(c->list_products({}))) == both);
  }
  CHECK(f.reads_of(0) == 3);
  CHECK(f.reads_of(1) == 3);
  CHECK(f.reads_of(primary_target) == 0);
}

TEST_CASE("replicas: a replica that breaks mid-call or cannot be reached falls back to the "
          "primary") {
  if (!have_replica()) {
    return;
  }
  replica_fixture f;
  const std::string app = "surge_rr_" + f.db.name();
  const std::string tagged = f.replica_url + "?application_name=" + app;
  // Replica 1 listens nowhere (port 1).
  auto h = f.health({tagged, "postgresql://surge@127.0.0.1:1/" + f.db.name()}, 1h);
  replica_fixture::await_caught_up(*h, 0);
  CHECK_FALSE(h->state_of(1).reachable);
  auto c = routed(h);
  for (int i = 0; i < 2; ++i) {
    CHECK(skus(require_value(c->list_products({}))) == both);
  }
  CHECK(f.reads_of(0) == 2);
  CHECK(f.reads_of(1) == 0);

  // The replica drops the router's connection: the same call answers from the primary.
  {
    pqxx::connection r{f.replica_url};
    pqxx::nontransaction tx{r};
    auto killed = tx.exec_params1("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE application_name = $1",
                                  app)[0]
                      .as<int>();
    REQUIRE(killed >= 1); // the router's, and the probe's
  }
  CHECK(skus(require_value(c->list_products({}))) == both);
  CHECK(f.reads_of(primary_target) == 1);
  CHECK(h->state_of(0).down);
  CHECK(skus(require_value(c->list_products({}))) == both); // down until the next probe
  CHECK(f.reads_of(primary_target) == 2);

  h->probe_once(); // up again: the router reconnects
  CHECK(skus(require_value(c->list_products({}))) == both);
  CHECK(f.reads_of(0) == 3);
}

TEST_CASE("replicas: a replica whose replay is paused is fresh only as of its last commit") {
  if (!have_replica()) {
    return;
  }
  replica_fixture f;
  auto h = f.health({f.replica_url}, 1h);
  replica_fixture::await_caught_up(*h, 0);
  pqxx::connection r{f.replica_url};
  struct resume_guard {
    pqxx::connection& r;
    ~resume_guard() {
      try {
        pqxx::nontransaction tx{r};
        tx.exec("SELECT pg_wal_replay_resume()");
      } catch (...) {
      }
    }
  } guard{r};
  {
    pqxx::nontransaction tx{r};
    tx.exec("SELECT pg_wal_replay_pause()");
  }
  {
    pqxx::connection p{f.db.url()};
    pqxx::nontransaction tx{p};
    tx.exec("INSERT INTO products (sku, name) VALUES ('R3', 'Written while paused')");
  }
  const auto before = replica_health::clock::now();
  h->probe_once();
  const auto s = h->state_of(0);
  CHECK(s.reachable);
  CHECK_FALSE(s.caught_up);
  CHECK(s.fresh_as_of < before);
  {
    pqxx::nontransaction tx{r};
    tx.exec("SELECT pg_wal_replay_resume()");
  }
  replica_fixture::await_caught_up(*h, 0);
  CHECK(skus(require_value(routed(h)->list_products({}))) ==
        std::vector<std::string>{"R1", "R2", "R3"});
}
