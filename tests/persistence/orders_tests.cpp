// Orders, payments and the outbox against real PostgreSQL (a fresh migrated database per case),
// and the event stream against real Redis (own key prefix per case).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"
#include "test_env.hpp"

using namespace surge::persistence;
using surge::test::pg_test_db;

namespace {

std::unique_ptr<order_store> open_store(const pg_test_db& db) {
  auto s = make_pg_order_store(db.url());
  REQUIRE_MESSAGE(s, "cannot connect to " << db.url() << ": " << caf::to_string(s.error()));
  return std::move(*s);
}

order_record sample_order(const std::string& id, const std::string& key) {
  order_record o;
  o.order_id = id;
  o.idempotency_key = key;
  o.fingerprint = "cart-1|card";
  o.cart_id = "cart-1";
  o.customer_id = "cust-1";
  o.total_cents = 2 * 1999 + 500;
  o.currency = "USD";
  o.lines = {{"sku-b", 2, 1999, "hold-1"}, {"sku-a", 1, 500, "hold-2"}};
  return o;
}

void check_same_lines(const order_record& a, const order_record& b) {
  REQUIRE(a.lines.size() == b.lines.size());
  for (std::size_t i = 0; i < a.lines.size(); ++i) {
    CHECK(a.lines[i].sku == b.lines[i].sku);
    CHECK(a.lines[i].qty == b.lines[i].qty);
    CHECK(a.lines[i].price_cents == b.lines[i].price_cents);
    CHECK(a.lines[i].hold_id == b.lines[i].hold_id);
  }
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t count_rows(const pg_test_db& db, const std::string& sql) {
  pqxx::connection c{db.url()};
  pqxx::nontransaction tx{c};
  return tx.exec1(sql)[0].as<int64_t>();
}

void exec_sql(const pg_test_db& db, const std::string& sql) {
  pqxx::connection c{db.url()};
  pqxx::nontransaction tx{c};
  tx.exec(sql);
}

} // namespace

TEST_CASE("orders: create and load round trip with lines") {
  pg_test_db db;
  auto s = open_store(db);
  CHECK(s->healthy());
  auto order = sample_order("o-1", "key-1");
  order.status = "confirmed"; // ignored: a new order is pending
  const auto before = now_ms();
  auto created = s->create(order);
  REQUIRE_MESSAGE(created, caf::to_string(created.error()));
  CHECK(created->second);
  CHECK(created->first.status == "pending");
  CHECK(created->first.created_at_ms >= before - 5000);
  CHECK(created->first.created_at_ms <= now_ms() + 5000);
  CHECK(!created->first.payment);

  auto loaded = s->load("o-1");
  REQUIRE(loaded);
  REQUIRE(*loaded);
  const auto& o = **loaded;
  CHECK(o.order_id == "o-1");
  CHECK(o.idempotency_key == "key-1");
  CHECK(o.fingerprint == order.fingerprint);
  CHECK(o.cart_id == "cart-1");
  CHECK(o.customer_id == "cust-1");
  CHECK(o.status == "pending");
  CHECK(o.reason.empty());
  CHECK(o.total_cents == order.total_cents);
  CHECK(o.currency == "USD");
  CHECK(o.created_at_ms == created->first.created_at_ms);
  CHECK(!o.payment);
  check_same_lines(o, order); // in the order given, not by sku

  auto none = s->load("nope");
  REQUIRE(none);
  CHECK(!*none);

  // Values are parameters, not SQL.
  auto odd = sample_order("o-'; DROP TABLE orders; --", "key-'\"\\");
  odd.lines.clear();
  auto odd_created = s->create(odd);
  REQUIRE(odd_created);
  CHECK(odd_created->second);
  CHECK((*s->load(odd.order_id))->idempotency_key == odd.idempotency_key);
  CHECK((*s->load(odd.order_id))->lines.empty());

  CHECK(is(s->create(sample_order("", "k")).error(), errc::invalid));
  CHECK(is(s->create(sample_order("o-x", "")).error(), errc::invalid));
}

TEST_CASE("orders: create with an existing key returns the existing order and false") {
  pg_test_db db;
  auto s = open_store(db);
  auto first = sample_order("o-1", "key-1");
  REQUIRE(s->create(first)->second);
  REQUIRE(!s->update("o-1", "paid", "",
                     payment_record{"pay-key-1", "stripe", "ch_1", "approved", 4498, "USD"},
                     std::nullopt));

  auto second = sample_order("o-2", "key-1");
  second.fingerprint = "cart-2|card";
  second.lines = {{"sku-z", 9, 1, "hold-9"}};
  auto again = open_store(db)->create(second);
  REQUIRE_MESSAGE(again, caf::to_string(again.error()));
  CHECK(!again->second);
  const auto& o = again->first;
  CHECK(o.order_id == "o-1");
  CHECK(o.fingerprint == "cart-1|card"); // the caller compares it with its own
  CHECK(o.status == "paid");
  CHECK(o.created_at_ms > 0);
  check_same_lines(o, first);
  REQUIRE(o.payment);
  CHECK(o.payment->charge_id == "ch_1");
  CHECK(o.payment->amount_cents == 4498);
  CHECK(!*s->load("o-2"));
  CHECK(count_rows(db, "SELECT count(*) FROM order_lines WHERE order_id = 'o-2'") == 0);

  // Another key with an order id that is taken: a conflict, nothing written.
  auto clash = s->create(sample_order("o-1", "key-2"));
  REQUIRE(!clash);
  CHECK_MESSAGE(is(clash.error(), errc::conflict), caf::to_string(clash.error()));
  CHECK(s->healthy());
  CHECK(count_rows(db, "SELECT count(*) FROM orders") == 1);
}

TEST_CASE("orders: concurrent creates of one key from 8 connections create it once") {
  pg_test_db db;
  constexpr std::size_t n = 8;
  std::vector<std::unique_ptr<order_store>> stores;
  for (std::size_t i = 0; i < n; ++i) {
    stores.push_back(open_store(db));
  }
  for (int round = 0; round < 10; ++round) {
    // Even rounds: every request has its own order id; odd rounds: all retry one order id.
    const bool same_id = round % 2 == 1;
    const auto key = "key-" + std::to_string(round);
    std::vector<caf::expected<std::pair<order_record, bool>>> results(
        n, caf::expected<std::pair<order_record, bool>>{make_error(errc::unavailable)});
    std::atomic<std::size_t> ready{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        auto o = sample_order(same_id ? "o-" + key : "o-" + key + "-" + std::to_string(i), key);
        ready.fetch_add(1);
        while (ready.load() < n) {
          std::this_thread::yield();
        }
        results[i] = stores[i]->create(o);
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    std::size_t created = 0;
    std::string winner;
    for (auto& r : results) {
      REQUIRE_MESSAGE(r, caf::to_string(r.error()));
      if (r->second) {
        ++created;
        winner = r->first.order_id;
      }
    }
    CHECK(created == 1);
    for (auto& r : results) {
      CHECK(r->first.order_id == winner);
      CHECK(r->first.lines.size() == 2);
      CHECK(r->first.created_at_ms > 0);
    }
    CHECK(count_rows(db, "SELECT count(*) FROM orders WHERE idempotency_key = '" + key + "'") == 1);
  }
  CHECK(count_rows(db, "SELECT count(*) FROM order_lines") == 20);
}

TEST_CASE("orders: update writes status, payment and outbox event in one transaction") {
  pg_test_db db;
  auto s = open_store(db);
  REQUIRE(s->create(sample_order("o-1", "key-1"))->second);
  exec_sql(db, "UPDATE orders SET updated_at = now() - interval '1 hour'");

  payment_record pay{"pay-key-1", "stripe", "ch_1", "approved", 4498, "USD"};
  outbox_event ev{0, "orders", "o-1", R"({"order_id":"o-1","status":"paid"})"};
  auto err = s->update("o-1", "paid", "", pay, ev);
  REQUIRE_MESSAGE(!err, caf::to_string(err));
  auto o = **s->load("o-1");
  CHECK(o.status == "paid");
  REQUIRE(o.payment);
  CHECK(o.payment->idempotency_key == "pay-key-1");
  CHECK(o.payment->gateway == "stripe");
  CHECK(o.payment->charge_id == "ch_1");
  CHECK(o.payment->status == "approved");
  CHECK(o.payment->amount_cents == 4498);
  CHECK(o.payment->currency == "USD");
  CHECK(count_rows(db, "SELECT count(*) FROM orders"
                       " WHERE updated_at > now() - interval '1 minute'") == 1);
  auto events = s->pending_events(10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK((*events)[0].id > 0);
  CHECK((*events)[0].topic == "orders");
  CHECK((*events)[0].key == "o-1");
  CHECK((*events)[0].payload == ev.payload);

  // The payment row is upserted; no event is fine too.
  pay.status = "refunded";
  pay.charge_id = "ch_2";
  REQUIRE(!s->update("o-1", "failed", "payment_declined", pay, std::nullopt));
  o = **s->load("o-1");
  CHECK(o.status == "failed");
  CHECK(o.reason == "payment_declined");
  CHECK(o.payment->status == "refunded");
  CHECK(o.payment->charge_id == "ch_2");
  CHECK(count_rows(db, "SELECT count(*) FROM payments") == 1);
  CHECK(s->pending_events(10)->size() == 1);

  // Status only.
  REQUIRE(!s->update("o-1", "cancelled", "", std::nullopt, std::nullopt));
  CHECK((*s->load("o-1"))->status == "cancelled");
  CHECK((*s->load("o-1"))->payment->charge_id == "ch_2");

  // An unknown order: errc::invalid and nothing written.
  err = s->update("nope", "paid", "", pay, ev);
  CHECK_MESSAGE(is(err, errc::invalid), caf::to_string(err));
  CHECK(s->healthy());
  CHECK(count_rows(db, "SELECT count(*) FROM payments") == 1);
  CHECK(s->pending_events(10)->size() == 1);

  // A status the table refuses fails after the payment and event would be written: all or
  // nothing.
  REQUIRE(s->create(sample_order("o-2", "key-2"))->second);
  err = s->update("o-2", "bogus", "", pay, ev);
  CHECK_MESSAGE(is(err, errc::invalid), caf::to_string(err));
  CHECK(s->healthy());
  CHECK((*s->load("o-2"))->status == "pending");
  CHECK(!(*s->load("o-2"))->payment);
  CHECK(s->pending_events(10)->size() == 1);
}

TEST_CASE("orders: unsettled picks pending and paid orders older than the age only") {
  pg_test_db db;
  auto s = open_store(db);
  for (const char* id : {"old-pending", "old-paid", "old-confirmed", "old-failed", "old-cancelled",
                         "new-pending", "older-pending"}) {
    REQUIRE(s->create(sample_order(id, std::string{"key-"} + id))->second);
  }
  REQUIRE(!s->update("old-paid", "paid", "", std::nullopt, std::nullopt));
  REQUIRE(!s->update("old-confirmed", "confirmed", "", std::nullopt, std::nullopt));
  REQUIRE(!s->update("old-failed", "failed", "x", std::nullopt, std::nullopt));
  REQUIRE(!s->update("old-cancelled", "cancelled", "x", std::nullopt, std::nullopt));
  exec_sql(db, "UPDATE orders SET updated_at = now() - interval '10 minutes'"
               " WHERE order_id LIKE 'old-%'");
  exec_sql(db, "UPDATE orders SET updated_at = now() - interval '20 minutes'"
               " WHERE order_id = 'old-paid'");
  exec_sql(db, "UPDATE orders SET updated_at = now() - interval '30 minutes'"
               " WHERE order_id = 'older-pending'");

  auto ids = s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 100);
  REQUIRE_MESSAGE(ids, caf::to_string(ids.error()));
  CHECK(*ids == std::vector<std::string>{"older-pending", "old-paid", "old-pending"});
  ids = s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 2);
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"older-pending", "old-paid"});
  ids = s->unsettled(std::chrono::minutes{25}, std::chrono::hours{24}, 100);
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"older-pending"});
  ids = s->unsettled(std::chrono::hours{1}, std::chrono::hours{24}, 100);
  REQUIRE(ids);
  CHECK(ids->empty());
  ids = s->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 100);
  REQUIRE(ids);
  CHECK(ids->size() == 4); // new-pending too
}

TEST_CASE("orders: a refund is stored with the status, and a pending one stays unsettled") {
  pg_test_db db;
  auto s = open_store(db);
  REQUIRE(s->create(sample_order("r-1", "key-r1"))->second);
  payment_record pay{"key-r1", "alpha", "ch_1", "approved", 1234, "USD"};
  order_store::order_update cancel{"cancelled", "hold_expired", pay,
                                   refund_record{"pending", "", 1234}, std::nullopt};
  REQUIRE(!s->update("r-1", cancel));
  auto o = s->load("r-1");
  REQUIRE(o);
  REQUIRE(*o);
  CHECK((*o)->status == "cancelled");
  REQUIRE((*o)->refund.has_value());
  CHECK((*o)->refund->status == "pending");
  CHECK((*o)->refund->amount_cents == 1234);
  // A pending refund keeps the order on the reconciler's list, whatever its status.
  auto ids = s->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 10);
  REQUIRE(ids);
  CHECK(*ids == std::vector<std::string>{"r-1"});
  order_store::order_update done{"cancelled", "hold_expired", std::nullopt,
                                 refund_record{"refunded", "rf_9", 1234}, std::nullopt};
  REQUIRE(!s->update("r-1", done));
  o = s->load("r-1");
  REQUIRE((*o)->refund.has_value());
  CHECK((*o)->refund->status == "refunded");
  CHECK((*o)->refund->refund_id == "rf_9");
  CHECK((*o)->payment.has_value()); // kept from the earlier update
  ids = s->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 10);
  REQUIRE(ids);
  CHECK(ids->empty());
  // An update without a refund leaves it as it is; an unknown refund status is refused.
  REQUIRE(!s->update("r-1", "cancelled", "hold_expired", std::nullopt, std::nullopt));
  CHECK((*s->load("r-1"))->refund->status == "refunded");
  order_store::order_update bogus{"cancelled", "", std::nullopt, refund_record{"maybe", "", 1},
                                  std::nullopt};
  CHECK(is(s->update("r-1", bogus), errc::invalid));
}

TEST_CASE("shared_secret: one secret per database; a configured one must match its fingerprint") {
  pg_test_db db;
  int generated = 0;
  auto spec = [&](std::string configured) {
    return shared_secret_spec{"ids.secret", std::move(configured),
                              [&] { return "generated-" + std::to_string(++generated); },
                              [](const std::string& v) { return "fp(" + v + ")"; }};
  };
  // Nothing configured: one generated secret is kept and every later caller gets it.
  auto first = shared_secret(db.url(), spec(""));
  REQUIRE_MESSAGE(first, caf::to_string(first.error()));
  CHECK(*first == "generated-1");
  auto again = shared_secret(db.url(), spec(""));
  REQUIRE(again);
  CHECK(*again == "generated-1");
  // Configuring that same secret is fine; another one is refused, and not echoed.
  auto same = shared_secret(db.url(), spec("generated-1"));
  REQUIRE(same);
  CHECK(*same == "generated-1");
  auto other = shared_secret(db.url(), spec("something-else"));
  REQUIRE_FALSE(other);
  CHECK(is(other.error(), errc::conflict));
  CHECK(caf::to_string(other.error()).find("something-else") == std::string::npos);

  // A database first used with a configured secret keeps only its fingerprint...
  pg_test_db db2;
  auto configured = shared_secret(db2.url(), spec("operator-secret"));
  REQUIRE(configured);
  CHECK(*configured == "operator-secret");
  CHECK(count_rows(db2, "SELECT count(*) FROM shared_secrets WHERE value = 'operator-secret'") ==
        0);
  CHECK(shared_secret(db2.url(), spec("operator-secret")));
  // ... and refuses a node without it rather than making up another one.
  auto missing = shared_secret(db2.url(), spec(""));
  REQUIRE_FALSE(missing);
  CHECK(is(missing.error(), errc::conflict));
  CHECK(is(shared_secret("postgresql://surge@127.0.0.1:1/postgres", spec("")).error(),
           errc::unavailable));
}

TEST_CASE("orders: outbox pending events and mark_delivered") {
  pg_test_db db;
  auto s = open_store(db);
  REQUIRE(s->create(sample_order("o-1", "key-1"))->second);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(!s->update("o-1", "pending", "", std::nullopt,
                       outbox_event{0, "orders", "o-1", "{\"n\":" + std::to_string(i) + "}"}));
  }
  auto events = s->pending_events(100);
  REQUIRE(events);
  REQUIRE(events->size() == 5);
  for (std::size_t i = 0; i < events->size(); ++i) {
    CHECK((*events)[i].payload == "{\"n\":" + std::to_string(i) + "}");
    if (i > 0) {
      CHECK((*events)[i].id > (*events)[i - 1].id);
    }
  }
  auto first_two = s->pending_events(2);
  REQUIRE(first_two);
  REQUIRE(first_two->size() == 2);
  CHECK((*first_two)[0].id == (*events)[0].id);

  CHECK(!s->mark_delivered({}));
  REQUIRE(!s->mark_delivered({(*events)[0].id, (*events)[2].id, 999999}));
  auto rest = s->pending_events(100);
  REQUIRE(rest);
  REQUIRE(rest->size() == 3);
  CHECK((*rest)[0].id == (*events)[1].id);
  CHECK((*rest)[1].id == (*events)[3].id);
  CHECK((*rest)[2].id == (*events)[4].id);
  // Delivering twice keeps the first time.
  REQUIRE(!s->mark_delivered({(*events)[0].id}));
  CHECK(count_rows(db, "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL") == 2);
  std::vector<int64_t> all;
  for (const auto& e : *rest) {
    all.push_back(e.id);
  }
  REQUIRE(!s->mark_delivered(all));
  CHECK(s->pending_events(100)->empty());
}

TEST_CASE("orders: one relay lock holder at a time, released when its session ends") {
  pg_test_db db;
  auto a = open_store(db);
  auto b = open_store(db);
  auto got = a->try_relay_lock();
  REQUIRE_MESSAGE(got, caf::to_string(got.error()));
  CHECK(*got);
  CHECK(*a->try_relay_lock()); // the holder asking again
  got = b->try_relay_lock();
  REQUIRE(got);
  CHECK(!*got);
  a.reset(); // disconnects; the server releases the lock when the session ends
  bool taken = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (!taken && std::chrono::steady_clock::now() < deadline) {
    got = b->try_relay_lock();
    REQUIRE(got);
    taken = *got;
    if (!taken) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
  }
  CHECK(taken);
  CHECK(!*open_store(db)->try_relay_lock());
}

TEST_CASE("orders: a connection killed by the server reports unavailable and unhealthy") {
  pg_test_db db;
  auto s = open_store(db);
  REQUIRE(s->create(sample_order("o-1", "key-1"))->second);
  {
    pqxx::connection admin{surge::test::test_pg_admin_url()};
    pqxx::nontransaction tx{admin};
    tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = $1 AND pid <> pg_backend_pid()",
                   db.name());
  }
  auto r = s->load("o-1");
  REQUIRE(!r);
  CHECK_MESSAGE(is(r.error(), errc::unavailable), caf::to_string(r.error()));
  CHECK(!s->healthy());
  CHECK(is(s->create(sample_order("o-2", "key-2")).error(), errc::unavailable));
  CHECK(is(s->update("o-1", "paid", "", std::nullopt, std::nullopt), errc::unavailable));
  CHECK(is(s->unsettled(std::chrono::seconds{1}, std::chrono::hours{24}, 10).error(),
           errc::unavailable));
  CHECK(is(s->try_relay_lock().error(), errc::unavailable));
  CHECK(is(s->pending_events(10).error(), errc::unavailable));
  CHECK(is(s->mark_delivered({1}), errc::unavailable));
  CHECK(open_store(db)->load("o-1")); // a new connection works

  auto bad = make_pg_order_store("postgresql://surge@127.0.0.1:1/postgres");
  REQUIRE(!bad);
  CHECK(is(bad.error(), errc::unavailable));
}

TEST_CASE("orders: migrations 2 to 14 on top of version 1, and migrate twice is a no-op") {
  pg_test_db db; // at the newest version
  auto version = [&] { return count_rows(db, "SELECT max(version) FROM schema_migrations"); };
  auto tables = [&] {
    return count_rows(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND"
                          " tablename IN ('orders','order_lines','payments','outbox')");
  };
  auto storage = [&] {
    pqxx::connection c{db.url()};
    pqxx::nontransaction tx{c};
    return tx
        .exec1("SELECT attstorage FROM pg_attribute"
               " WHERE attrelid = 'snapshots'::regclass AND attname = 'payload'")[0]
        .as<std::string>();
  };
  CHECK(version() == 14);
  CHECK(tables() == 4);
  CHECK(storage() == "e");
  auto err = migrate(db.url());
  CHECK_MESSAGE(!err, caf::to_string(err));
  CHECK(version() == 14);
  CHECK(count_rows(db, "SELECT count(*) FROM schema_migrations") == 14);

  // Back to exactly version 1 (with data in it), then forward again.
  exec_sql(db, "DROP TABLE members, shard_leases, shard_history;"
               " DROP FUNCTION surge_fence(text, integer[], bigint[]);"
               " ALTER TABLE sku_journal DROP COLUMN shard, DROP COLUMN epoch, DROP COLUMN node_id;"
               " DROP TABLE order_refunds, outbox, payments, order_lines, orders;"
               " ALTER TABLE snapshots ALTER COLUMN payload SET STORAGE EXTENDED;"
               " DROP INDEX stock_holding;"
               " DROP TABLE shared_secrets;"
               " DROP TABLE sales;"
               " DROP TABLE webhook_attempts, webhook_deliveries;"
               " DELETE FROM schema_migrations WHERE version IN (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "
               "12, 13, 14);"
               " INSERT INTO snapshots(stream, seq, payload) VALUES ('sku:a', 7, '\\x0102');");
  CHECK(version() == 1);
  CHECK(tables() == 0);
  CHECK(storage() == "x");
  err = migrate(db.url());
  CHECK_MESSAGE(!err, caf::to_string(err));
  CHECK(version() == 14);
  CHECK(tables() == 4);
  CHECK(storage() == "e");
  CHECK(count_rows(db, "SELECT seq FROM snapshots WHERE stream = 'sku:a'") == 7);
  CHECK(count_rows(db,
                   "SELECT count(*) FROM pg_indexes WHERE indexname IN"
                   " ('orders_unsettled_idx', 'outbox_undelivered_idx', 'stock_holding')") == 3);
  CHECK(count_rows(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                       " 'orders' AND column_name IN ('refund_status', 'refund_id',"
                       " 'refunded_cents')") == 3);
  // Migration 6: operators' refunds, the timeline's times, the admin search's indexes.
  CHECK(count_rows(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'order_refunds'") == 1);
  CHECK(count_rows(db, "SELECT count(*) FROM pg_indexes WHERE indexname IN"
                       " ('orders_created_idx', 'orders_status_created_idx',"
                       " 'orders_customer_created_idx', 'orders_id_prefix_idx')") == 4);
  // Migration 11: a cancelled order's authorisation may end voided.
  CHECK(count_rows(db, "SELECT count(*) FROM pg_constraint WHERE conname ="
                       " 'orders_refund_status_check' AND"
                       " pg_get_constraintdef(oid) LIKE '%voided%'") == 1);
  // Migration 7: each member's build version.
  CHECK(count_rows(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                       " 'members' AND column_name = 'version'") == 1);
  // Migration 8 (idempotent, so it runs again here): search columns.
  CHECK(count_rows(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                       " 'products' AND column_name IN ('created_at', 'search_en')") == 2);
  // Migration 9: sales.
  CHECK(count_rows(db, "SELECT count(*) FROM pg_indexes WHERE indexname IN"
                       " ('sales_pkey', 'sales_ends_idx', 'sales_skus_idx')") == 3);
  // Migration 10: each member's cluster protocol (nullable: older releases leave it alone).
  CHECK(count_rows(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                       " 'members' AND column_name IN ('protocol', 'protocol_incarnation')"
                       " AND is_nullable = 'YES'") == 2);
  // Migration 13: orders may wait in requires_action (3-D Secure), indexed for the reconciler.
  CHECK(count_rows(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_action_idx'") ==
        1);
  // Migration 12: the outgoing webhooks' deliveries and attempts.
  CHECK(count_rows(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND"
                       " tablename IN ('webhook_deliveries', 'webhook_attempts')") == 2);
  auto s = open_store(db);
  CHECK(s->create(sample_order("o-1", "key-1"))->second);
}

// ---------------------------------------------------------------------------------------------
// Event stream (Redis Streams)

namespace {

struct stream_env {
  surge::test::redis_test_keys keys;
  redis_options opts() const { return keys.options(); }
  std::unique_ptr<event_stream> open(std::chrono::milliseconds timeout = {}) {
    auto o = opts();
    if (timeout.count() > 0) {
      o.timeout = timeout;
    }
    auto x = make_redis_event_stream(o);
    REQUIRE_MESSAGE(x, caf::to_string(x.error()));
    return std::move(*x);
  }
};

const std::string binary = std::string{"\0\x01zero\0\xff\r\n%b end", 16};

using fields_t = std::vector<std::pair<std::string, std::string>>;

} // namespace

TEST_CASE("stream: append and read round trip, binary-safe") {
  stream_env env;
  auto s = env.open();
  CHECK(s->healthy());
  auto empty = s->read("orders", "0", 10, std::chrono::milliseconds{0});
  REQUIRE_MESSAGE(empty, caf::to_string(empty.error()));
  CHECK(empty->empty());

  const fields_t f1{{"type", "order.paid"}, {"order_id", "o-1"}, {binary, binary}};
  const fields_t f2{{"type", "order.confirmed"}, {"payload", ""}};
  auto id1 = s->append("orders", f1);
  REQUIRE_MESSAGE(id1, caf::to_string(id1.error()));
  auto id2 = s->append("orders", f2);
  REQUIRE(id2);
  CHECK(id1->find('-') != std::string::npos);
  CHECK(*id1 != *id2);

  auto all = env.open()->read("orders", "0", 10, std::chrono::milliseconds{0});
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].id == *id1);
  CHECK((*all)[0].fields == f1);
  CHECK((*all)[1].id == *id2);
  CHECK((*all)[1].fields == f2);

  auto after = s->read("orders", *id1, 10, std::chrono::milliseconds{0});
  REQUIRE(after);
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].id == *id2);
  CHECK(s->read("orders", *id2, 10, std::chrono::milliseconds{0})->empty());

  auto one = s->read("orders", "0", 1, std::chrono::milliseconds{0});
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].id == *id1);

  // The prefix is applied: the stream is the test's own.
  auto other = s->read("other", "0", 10, std::chrono::milliseconds{0});
  REQUIRE(other);
  CHECK(other->empty());
}

TEST_CASE("stream: a blocking read times out empty within bounds, or wakes on an append") {
  stream_env env;
  auto s = env.open(std::chrono::milliseconds{300});
  auto start = std::chrono::steady_clock::now();
  auto r = s->read("events", "$", 10, std::chrono::milliseconds{200});
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_MESSAGE(r, caf::to_string(r.error()));
  CHECK(r->empty());
  CHECK(took >= std::chrono::milliseconds{150});
  CHECK(took < std::chrono::seconds{2});
  CHECK(s->healthy());

  // Blocking longer than the command timeout keeps the connection.
  start = std::chrono::steady_clock::now();
  r = s->read("events", "$", 10, std::chrono::milliseconds{700});
  took = std::chrono::steady_clock::now() - start;
  REQUIRE_MESSAGE(r, caf::to_string(r.error()));
  CHECK(r->empty());
  CHECK(took >= std::chrono::milliseconds{600});
  CHECK(took < std::chrono::seconds{3});
  CHECK(s->healthy());
  // Nothing new and no wait: empty at once.
  r = s->read("events", "$", 10, std::chrono::milliseconds{0});
  REQUIRE(r);
  CHECK(r->empty());

  // An append from another connection wakes the reader.
  auto w = env.open();
  bool appended = false;
  std::thread writer{[&] {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    appended = static_cast<bool>(w->append("events", {{"k", "v"}}));
  }};
  start = std::chrono::steady_clock::now();
  r = s->read("events", "$", 10, std::chrono::milliseconds{5000});
  took = std::chrono::steady_clock::now() - start;
  writer.join();
  CHECK(appended);
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].fields == fields_t{{"k", "v"}});
  CHECK(took < std::chrono::seconds{3});
  CHECK(s->healthy());
}

TEST_CASE("stream: bad arguments and URLs") {
  stream_env env;
  auto s = env.open();
  CHECK(is(s->append("x", {}).error(), errc::invalid));
  CHECK(is(s->read("x", "0", 0, std::chrono::milliseconds{0}).error(), errc::invalid));
  CHECK(is(s->read("x", "", 1, std::chrono::milliseconds{0}).error(), errc::invalid));
  CHECK(is(s->read("x", "abc", 1, std::chrono::milliseconds{0}).error(), errc::invalid));
  CHECK(is(s->read("x", "1-", 1, std::chrono::milliseconds{0}).error(), errc::invalid));
  CHECK(is(s->read("x", "0", 1, std::chrono::milliseconds{-1}).error(), errc::invalid));
  CHECK(s->read("x", "1700000000000-3", 1, std::chrono::milliseconds{0}));
  CHECK(s->healthy());

  for (const char* url : {"", "http://127.0.0.1:6379", "redis://", "redis://host:port",
                          "redis://host:6379/x", "garbage"}) {
    auto x = make_redis_event_stream(surge::test::redis_test_options(url));
    REQUIRE_MESSAGE(!x, url);
    CHECK_MESSAGE(is(x.error(), errc::invalid), url << ": " << caf::to_string(x.error()));
  }
  auto o = surge::test::redis_test_options("redis://127.0.0.1:1/0");
  o.timeout = std::chrono::milliseconds{500};
  auto x = make_redis_event_stream(o);
  REQUIRE(!x);
  CHECK(is(x.error(), errc::unavailable));
}
