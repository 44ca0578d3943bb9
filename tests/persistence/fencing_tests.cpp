// Fencing (G4) in the journal commit: a commit names the shard lease it holds; PostgreSQL
// refuses it, in the same transaction, unless the committer still owns the shard at that epoch.

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "backends.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/pg.hpp"

using namespace surge::persistence;
using surge::test::pg_test_db;

namespace {

void set_lease(const std::string& url, int shard, const std::string& owner, long epoch) {
  pqxx::connection c{url};
  pqxx::work tx{c};
  tx.exec_params("INSERT INTO shard_leases(shard, owner, epoch) VALUES ($1, $2, $3) "
                 "ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch",
                 shard, owner, epoch);
  tx.commit();
}

commit_request fenced_request(const std::string& stream, uint64_t seq, int shard, uint64_t epoch,
                              const std::string& node) {
  commit_request r;
  r.batch = journal_batch{stream, seq, "payload"};
  r.shard = shard;
  r.epoch = epoch;
  r.node = node;
  return r;
}

long journal_rows(const std::string& url, const std::string& stream) {
  pqxx::connection c{url};
  pqxx::nontransaction tx{c};
  return tx.exec_params1("SELECT count(*) FROM sku_journal WHERE stream = $1", stream)[0]
      .as<long>();
}

} // namespace

TEST_CASE("fencing: a commit at the owner's current epoch lands and records shard, epoch, node") {
  pg_test_db db;
  set_lease(db.url(), 7, "n1", 3);
  auto j = make_pg_journal(db.url());
  REQUIRE(j);
  auto req = fenced_request("sku:a", 1, 7, 3, "n1");
  auto err = (*j)->commit(std::span<const commit_request>{&req, 1});
  CHECK_MESSAGE(!err, caf::to_string(err));
  pqxx::connection c{db.url()};
  pqxx::nontransaction tx{c};
  auto row = tx.exec1("SELECT shard, epoch, node_id FROM sku_journal WHERE stream = 'sku:a'");
  CHECK(row[0].as<int>() == 7);
  CHECK(row[1].as<long>() == 3);
  CHECK(row[2].as<std::string>() == "n1");
}

TEST_CASE("fencing: a stale epoch or another owner fails the commit with errc::fenced") {
  pg_test_db db;
  set_lease(db.url(), 7, "n1", 4);
  auto j = make_pg_journal(db.url());
  REQUIRE(j);
  SUBCASE("stale epoch") {
    auto req = fenced_request("sku:a", 1, 7, 3, "n1");
    auto err = (*j)->commit(std::span<const commit_request>{&req, 1});
    CHECK(is(err, errc::fenced));
  }
  SUBCASE("other owner") {
    auto req = fenced_request("sku:a", 1, 7, 4, "n2");
    auto err = (*j)->commit(std::span<const commit_request>{&req, 1});
    CHECK(is(err, errc::fenced));
  }
  SUBCASE("unknown shard") {
    auto req = fenced_request("sku:a", 1, 99, 0, "n1");
    auto err = (*j)->commit(std::span<const commit_request>{&req, 1});
    CHECK(is(err, errc::fenced));
  }
  CHECK(journal_rows(db.url(), "sku:a") == 0);
  CHECK((*j)->healthy()); // fencing is an answer, not a broken connection
}

TEST_CASE("fencing: in a group commit only the fenced requests fail") {
  pg_test_db db;
  set_lease(db.url(), 1, "n1", 1);
  set_lease(db.url(), 2, "n2", 1); // shard 2 moved away from n1
  commit_queue q{[url = db.url()]() -> std::unique_ptr<journal> {
                   auto j = make_pg_journal(url);
                   return j ? std::move(*j) : nullptr;
                 },
                 commit_queue::options{1, 64}};
  std::promise<caf::error> ok_p;
  std::promise<caf::error> bad_p;
  q.submit(fenced_request("sku:ok", 1, 1, 1, "n1"),
           [&](const caf::error& e) { ok_p.set_value(e); });
  q.submit(fenced_request("sku:bad", 1, 2, 1, "n1"),
           [&](const caf::error& e) { bad_p.set_value(e); });
  auto ok = ok_p.get_future().get();
  auto bad = bad_p.get_future().get();
  CHECK_MESSAGE(!ok, caf::to_string(ok));
  CHECK(is(bad, errc::fenced));
  CHECK(journal_rows(db.url(), "sku:ok") == 1);
  CHECK(journal_rows(db.url(), "sku:bad") == 0);
}

TEST_CASE("fencing: a lease change waits for a commit in flight, then fences the next one") {
  pg_test_db db;
  set_lease(db.url(), 5, "n1", 1);
  auto j = make_pg_journal(db.url());
  REQUIRE(j);
  // A transaction holding the lease row FOR SHARE (as a commit does) delays the owner change.
  pqxx::connection holder{db.url()};
  pqxx::work hold{holder};
  hold.exec("SELECT 1 FROM shard_leases WHERE shard = 5 FOR SHARE");
  std::atomic<bool> moved{false};
  std::thread mover([&] {
    pqxx::connection c{db.url()};
    pqxx::work tx{c};
    tx.exec("UPDATE shard_leases SET owner = 'n2', epoch = epoch + 1 WHERE shard = 5");
    tx.commit();
    moved = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  CHECK_FALSE(moved.load()); // blocked behind the share lock
  hold.commit();
  mover.join();
  CHECK(moved.load());
  auto req = fenced_request("sku:a", 1, 5, 1, "n1");
  CHECK(is((*j)->commit(std::span<const commit_request>{&req, 1}), errc::fenced));
}
