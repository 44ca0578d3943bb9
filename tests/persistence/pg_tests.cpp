// What only the PostgreSQL adapter has: migrations, connection failures, latency.

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "backends.hpp"
#include "journal_helpers.hpp"

using namespace surge::persistence;
using surge::test::pg_backend;
using surge::test::pg_test_db;

namespace {

/// The catalog events in the outbox, in id order: "key payload-as-jsonb-text" (jsonb's text is
/// canonical, so payloads compare whatever their spacing).
std::vector<std::string> catalog_events(const std::string& url) {
  pqxx::connection c{url};
  pqxx::nontransaction tx{c};
  std::vector<std::string> out;
  for (const auto& row : tx.exec("SELECT key || ' ' || payload::jsonb::text FROM outbox"
                                 " WHERE topic = 'catalog' ORDER BY id")) {
    out.push_back(row[0].as<std::string>());
  }
  return out;
}

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

TEST_CASE("pg: a committed product change writes one catalog event; no change writes none") {
  using namespace surge::test::journal_helpers;
  pg_backend backend;
  auto j = backend.connect();
  const std::string kettle =
      R"(X-1 {"sku": "X-1", "name": "Kettle \"Pro\"", "category": "kitchen", "currency": "EUR", )"
      R"("price_cents": 2599})";

  auto r = req("sku:X-1", 1);
  r.product = product("X-1", "Kettle \"Pro\"", "kitchen", 2599, "it's 1.7 l");
  r.product->currency = "EUR";
  r.stock = stock_record{"X-1", 10, 0, 0};
  require_ok(j->commit(std::vector<commit_request>{r}));
  CHECK(catalog_events(backend.db.url()) == std::vector<std::string>{kettle});

  // The same product again, and a stock-only batch: nothing new.
  r.batch.seq = 2;
  require_ok(j->commit(std::vector<commit_request>{r}));
  auto stock_only = req("sku:X-1", 3);
  stock_only.stock = stock_record{"X-1", 10, 1, 0};
  require_ok(j->commit(std::vector<commit_request>{stock_only}));
  CHECK(catalog_events(backend.db.url()).size() == 1);

  // A failed transaction (seq 3 again) writes no event, though the product changed.
  auto dup = req("sku:X-1", 3);
  dup.product = product("X-1", "Kettle", "kitchen", 1999);
  CHECK(j->commit(std::vector<commit_request>{dup}));
  CHECK(catalog_events(backend.db.url()).size() == 1);

  // Any stored field counts (here the description alone); two requests of one batch for the
  // same sku make one event, of the later product; another new sku its own.
  auto a = req("sku:X-1", 4);
  a.product = product("X-1", "Kettle \"Pro\"", "kitchen", 2599, "now 1.8 l");
  a.product->currency = "EUR";
  auto b = req("sku:X-1", 5);
  b.product = a.product;
  auto c = req("sku:Y-2", 1);
  c.product = product("Y-2", "Yak wool", "apparel", 12000);
  require_ok(j->commit(std::vector<commit_request>{a, b, c}));
  CHECK(catalog_events(backend.db.url()) ==
        std::vector<std::string>{
            kettle, kettle,
            R"(Y-2 {"sku": "Y-2", "name": "Yak wool", "category": "apparel", "currency": "USD", )"
            R"("price_cents": 12000})"});
}
