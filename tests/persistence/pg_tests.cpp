// What only the PostgreSQL adapter has: migrations, connection failures, latency.

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "backends.hpp"

using namespace surge::persistence;
using surge::test::pg_backend;
using surge::test::pg_test_db;

namespace {

int migrations_applied(const std::string& url) {
  pqxx::connection c{url};
  pqxx::nontransaction tx{c};
  return tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<int>();
}

} // namespace

TEST_CASE("pg: migrate twice is a no-op") {
  pg_test_db db; // migrated once
  const auto applied = migrations_applied(db.url());
  CHECK(applied >= 1);
  auto err = migrate(db.url());
  CHECK_MESSAGE(!err, caf::to_string(err));
  CHECK(migrations_applied(db.url()) == applied);
  pqxx::connection c{db.url()};
  pqxx::nontransaction tx{c};
  CHECK(tx.exec1("SELECT count(*) FROM pg_tables WHERE tablename IN"
                 " ('sku_journal','snapshots','products','stock')")[0]
            .as<int>() == 4);
}

TEST_CASE("pg: nodes migrating together apply each migration once") {
  pg_test_db db{false};
  std::vector<caf::error> errs(4);
  std::vector<std::thread> nodes;
  for (std::size_t i = 0; i < errs.size(); ++i) {
    nodes.emplace_back([&, i] { errs[i] = migrate(db.url()); });
  }
  for (auto& t : nodes) {
    t.join();
  }
  for (const auto& err : errs) {
    CHECK_MESSAGE(!err, caf::to_string(err));
  }
  CHECK(migrations_applied(db.url()) >= 1);
  auto j = make_pg_journal(db.url());
  REQUIRE(j);
  CHECK((*j)->read("sku:a", 0));
}

TEST_CASE("pg: an unreachable server is errc::unavailable, not an exception") {
  const std::string bad = "postgresql://surge@127.0.0.1:1/postgres";
  auto j = make_pg_journal(bad);
  REQUIRE(!j);
  CHECK_MESSAGE(is(j.error(), errc::unavailable), caf::to_string(j.error()));
  auto c = make_pg_catalog(bad);
  REQUIRE(!c);
  CHECK_MESSAGE(is(c.error(), errc::unavailable), caf::to_string(c.error()));
  auto err = migrate(bad);
  CHECK(is(err, errc::unavailable));
}

TEST_CASE("pg: a connection killed by the server reports unavailable and unhealthy") {
  pg_backend backend;
  auto j = backend.connect();
  auto c = backend.catalog();
  REQUIRE(j->read("sku:a", 0));
  REQUIRE(c->list_products({}));
  backend.break_connections();
  auto r = j->read("sku:a", 0);
  REQUIRE(!r);
  CHECK_MESSAGE(is(r.error(), errc::unavailable), caf::to_string(r.error()));
  CHECK(!j->healthy());
  commit_request commit;
  commit.batch = journal_batch{"sku:a", 1, "x"};
  CHECK(is(j->commit(std::vector<commit_request>{commit}), errc::unavailable));
  auto listed = c->list_products({});
  REQUIRE(!listed);
  CHECK_MESSAGE(is(listed.error(), errc::unavailable), caf::to_string(listed.error()));
  CHECK(!c->healthy());
  CHECK(is(c->list_products({}).error(), errc::unavailable));
  // New connections work.
  auto j2 = backend.connect();
  CHECK(!j2->commit(std::vector<commit_request>{commit}));
  CHECK(backend.catalog()->list_products({}));
}

TEST_CASE("pg: commit latency (informational)") {
  pg_backend backend;
  auto j = backend.connect();
  auto measure = [&](std::size_t batch, int rounds, uint64_t& seq) {
    std::vector<commit_request> reqs(batch);
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r) {
      ++seq;
      for (std::size_t i = 0; i < batch; ++i) {
        reqs[i].batch = journal_batch{"sku:" + std::to_string(i), seq, std::string(64, 'x')};
        reqs[i].stock = stock_record{std::to_string(i), 100, static_cast<int64_t>(seq), 0};
      }
      REQUIRE(!j->commit(reqs));
    }
    const auto d = std::chrono::steady_clock::now() - start;
    return std::chrono::duration<double, std::micro>(d).count() / rounds;
  };
  uint64_t seq = 0;
  measure(1, 20, seq); // warm-up
  const auto one = measure(1, 200, seq);
  const auto hundred = measure(100, 50, seq);
  std::printf("[persistence] commit latency: 1 request %.0f us, 100 requests %.0f us"
              " (journal row + stock upsert each)\n",
              one, hundred);
  CHECK(one > 0);
}
