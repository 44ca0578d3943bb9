// Outgoing webhooks' persistence against the real servers: the order streams' consumer groups
// (Redis: XGROUP, XREADGROUP, XACK, XAUTOCLAIM, XPENDING) and the delivery log (PostgreSQL:
// de-duplication, per-order ordering, leases, retries, dead deliveries, redelivery).

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/redis.hpp"
#include "surge/persistence/webhooks.hpp"
#include "test_env.hpp"

using namespace surge::persistence;
using namespace std::chrono_literals;
using surge::test::pg_test_db;

namespace {

std::unique_ptr<event_stream> open_stream(const surge::test::redis_test_keys& keys) {
  auto x = make_redis_event_stream(keys.options());
  REQUIRE_MESSAGE(x, caf::to_string(x.error()));
  return std::move(*x);
}

std::unique_ptr<webhook_store> open_log(const pg_test_db& db) {
  auto x = make_pg_webhook_store(db.url());
  REQUIRE_MESSAGE(x, caf::to_string(x.error()));
  return std::move(*x);
}

void exec(const pg_test_db& db, const std::string& sql) {
  pqxx::connection c{db.url()};
  pqxx::nontransaction tx{c};
  tx.exec(sql);
}

/// An outbox row of order `key` (its id), as the order actor writes one.
int64_t outbox_row(const pg_test_db& db, const std::string& key, const std::string& age = "0") {
  pqxx::connection c{db.url()};
  pqxx::work tx{c};
  auto id = tx.exec_params1("INSERT INTO outbox(topic, key, payload, created_at)"
                            " VALUES ('orders', $1, '{}', now() - $2::interval) RETURNING id",
                            key, age + " seconds")[0]
                .as<int64_t>();
  tx.commit();
  return id;
}

webhook_delivery row(const std::string& endpoint, int64_t event_id, const std::string& order) {
  webhook_delivery d;
  d.endpoint = endpoint;
  d.event_id = event_id;
  d.event_type = "order.confirmed";
  d.order_id = order;
  d.body = "{\"id\":\"evt_" + std::to_string(event_id) + "\"}";
  return d;
}

/// claim() with a 30 s lease and a missing-event wait of `wait`; REQUIREs it to succeed.
std::optional<webhook_delivery> claim(webhook_store& s, std::chrono::milliseconds wait = 300s) {
  auto d = s.claim(30s, wait);
  REQUIRE_MESSAGE(d, caf::to_string(d.error()));
  return *d;
}

webhook_store::outcome delivered() {
  return webhook_store::outcome{.delivered = true, .status = 200, .duration_ms = 3};
}

} // namespace

TEST_SUITE("webhooks") {

  TEST_CASE("stream groups: each entry to one consumer, pending until acked, claimed when idle") {
    surge::test::redis_test_keys keys;
    auto s = open_stream(keys);
    REQUIRE_FALSE(s->create_group("orders", "g")); // makes the stream
    REQUIRE_FALSE(s->create_group("orders", "g")); // already there: fine
    auto a = s->append("orders", {{"event_id", "1"}, {"key", "o-1"}, {"payload", "{}"}});
    auto b = s->append("orders", {{"event_id", "2"}, {"key", "o-2"}, {"payload", "{}"}});
    REQUIRE(a);
    REQUIRE(b);

    auto first = s->read_group("orders", "g", "c1", 1, 0ms);
    REQUIRE_MESSAGE(first, caf::to_string(first.error()));
    REQUIRE(first->size() == 1);
    CHECK(first->front().id == *a);
    auto second = s->read_group("orders", "g", "c2", 10, 100ms);
    REQUIRE(second);
    REQUIRE(second->size() == 1);
    CHECK(second->front().id == *b); // never the entry c1 has
    auto none = s->read_group("orders", "g", "c2", 10, 50ms);
    REQUIRE(none);
    CHECK(none->empty());

    auto p1 = s->pending("orders", "g", "c1", 10);
    REQUIRE(p1);
    REQUIRE(p1->size() == 1);
    CHECK(p1->front().id == *a);
    CHECK(p1->front().deliveries == 1);

    // c1 "dies" with its entry: after the idle time c2 claims it, handed out a second time.
    std::this_thread::sleep_for(60ms);
    auto got = s->autoclaim("orders", "g", "c2", 50ms, "0-0", 10);
    REQUIRE_MESSAGE(got, caf::to_string(got.error()));
    // c2's own entry b is idle too and is claimed (by itself) as well.
    REQUIRE(got->entries.size() == 2);
    CHECK(got->entries[0].id == *a);
    CHECK(got->next == "0-0");
    auto p2 = s->pending("orders", "g", "c2", 10);
    REQUIRE(p2);
    REQUIRE(p2->size() == 2);
    CHECK(p2->at(0).deliveries == 2);
    CHECK(s->pending("orders", "g", "c1", 10)->empty());

    // Not idle long enough: nothing moves.
    auto early = s->autoclaim("orders", "g", "c1", 10s, "0-0", 10);
    REQUIRE(early);
    CHECK(early->entries.empty());

    auto acked = s->ack("orders", "g", {*a, *b});
    REQUIRE(acked);
    CHECK(*acked == 2);
    CHECK(s->pending("orders", "g", "c2", 10)->empty());
    CHECK(*s->ack("orders", "g", {*a}) == 0); // twice: nothing more
  }

  TEST_CASE("stream groups: a deleted stream reads as NOGROUP, and bad arguments are refused") {
    surge::test::redis_test_keys keys;
    auto s = open_stream(keys);
    auto missing = s->read_group("nothing", "g", "c", 1, 0ms);
    REQUIRE_FALSE(missing);
    CHECK(caf::to_string(missing.error()).find("NOGROUP") != std::string::npos);
    CHECK(s->healthy()); // a server error, not a broken connection
    CHECK_FALSE(s->read_group("orders", "g", "c", 0, 0ms));
    CHECK_FALSE(s->autoclaim("orders", "g", "c", 0ms, "$", 1));
    CHECK_FALSE(s->autoclaim("orders", "g", "c", 0ms, "0-0", 0));
    CHECK_FALSE(s->pending("orders", "g", "c", 0));
    CHECK(*s->ack("orders", "g", {}) == 0);
  }

  TEST_CASE("delivery log: de-duplicated by endpoint and event, claimed once under a lease") {
    pg_test_db db;
    auto s = open_log(db);
    const auto e1 = outbox_row(db, "o-1");
    auto added = s->enqueue({row("shop", e1, "o-1"), row("erp", e1, "o-1")});
    REQUIRE_MESSAGE(added, caf::to_string(added.error()));
    CHECK(*added == 2);
    CHECK(*s->enqueue({row("shop", e1, "o-1")}) == 0); // the stream said it twice

    auto other = open_log(db);
    auto d1 = claim(*s);
    auto d2 = claim(*other);
    REQUIRE(d1);
    REQUIRE(d2);
    CHECK(d1->endpoint != d2->endpoint); // one each, never the same
    CHECK(d1->attempts == 1);
    CHECK(d1->first_attempt_at_ms > 0);
    CHECK_FALSE(claim(*s)); // both leased

    REQUIRE_FALSE(s->record(d1->id, 1, delivered()));
    auto got = s->get(d1->id);
    REQUIRE(got);
    REQUIRE(*got);
    CHECK((*got)->first.status == "delivered");
    CHECK((*got)->first.delivered_at_ms > 0);
    REQUIRE((*got)->second.size() == 1);
    CHECK((*got)->second[0].status == 200);

    // The lease of d2 runs out (its dispatcher died): due again, as attempt 2.
    exec(db, "UPDATE webhook_deliveries SET lease_until = now() - interval '1 second'");
    auto again = claim(*s);
    REQUIRE(again);
    CHECK(again->id == d2->id);
    CHECK(again->attempts == 2);
    // The dead dispatcher's late record does nothing to the delivery (logged only).
    REQUIRE_FALSE(other->record(d2->id, 1, delivered()));
    CHECK(s->get(d2->id)->value().first.status == "pending");
  }

  TEST_CASE("delivery log: an order's events go out in event order, per endpoint") {
    pg_test_db db;
    auto s = open_log(db);
    const auto e1 = outbox_row(db, "o-1");
    const auto e2 = outbox_row(db, "o-1");
    const auto f1 = outbox_row(db, "o-2");
    // e2 arrives first (another node's consumer was faster): it waits for e1's row.
    REQUIRE(s->enqueue({row("shop", e2, "o-1"), row("shop", f1, "o-2")}));
    auto d = claim(*s);
    REQUIRE(d);
    CHECK(d->event_id == f1); // another order is free to go
    REQUIRE_FALSE(s->record(d->id, 1, delivered()));
    CHECK_FALSE(claim(*s));
    // ... unless e1 was written long ago (lost on the way): then e2 does not wait for it.
    CHECK(claim(*s, 0ms));
    exec(db, "UPDATE webhook_deliveries SET lease_until = NULL, attempts = 0");

    REQUIRE(s->enqueue({row("shop", e1, "o-1")}));
    auto first = claim(*s);
    REQUIRE(first);
    CHECK(first->event_id == e1);
    CHECK_FALSE(claim(*s)); // e2 waits while e1 is pending
    // e1 fails: retried later, and e2 still waits behind it.
    REQUIRE_FALSE(s->record(
        first->id, 1,
        webhook_store::outcome{
            .status = 503, .error = "answered HTTP 503", .duration_ms = 5, .retry_in = 200ms}));
    CHECK_FALSE(claim(*s));
    std::this_thread::sleep_for(300ms);
    auto retry = claim(*s);
    REQUIRE(retry);
    CHECK(retry->event_id == e1);
    CHECK(retry->attempts == 2);
    CHECK(retry->last_status == 503);
    CHECK(retry->last_error == "answered HTTP 503");
    // Given up on: dead, and the order's next event goes on.
    REQUIRE_FALSE(s->record(retry->id, 2,
                            webhook_store::outcome{.error = "no answer: timeout",
                                                   .duration_ms = 10'000,
                                                   .retry_in = std::nullopt}));
    CHECK(s->get(retry->id)->value().first.status == "dead");
    auto next = claim(*s);
    REQUIRE(next);
    CHECK(next->event_id == e2);
  }

  TEST_CASE("delivery log: list, stats and redelivery") {
    pg_test_db db;
    auto s = open_log(db);
    const auto e1 = outbox_row(db, "o-1");
    const auto e2 = outbox_row(db, "o-2");
    REQUIRE(s->enqueue({row("shop", e1, "o-1"), row("shop", e2, "o-2"), row("erp", e1, "o-1")}));
    auto d = claim(*s);
    REQUIRE(d);
    REQUIRE_FALSE(
        s->record(d->id, 1, webhook_store::outcome{.error = "x", .retry_in = std::nullopt}));

    auto all = s->list({});
    REQUIRE(all);
    CHECK(all->size() == 3);
    CHECK(all->front().id > all->back().id); // newest first
    auto shop = s->list({.endpoint = "shop"});
    REQUIRE(shop);
    CHECK(shop->size() == 2);
    auto dead = s->list({.status = "dead"});
    REQUIRE(dead);
    REQUIRE(dead->size() == 1);
    CHECK(dead->front().id == d->id);
    CHECK(s->list({.order_id = "o-2"})->size() == 1);
    auto page = s->list({.before_id = all->front().id, .limit = 1});
    REQUIRE(page);
    REQUIRE(page->size() == 1);
    CHECK(page->front().id == all->at(1).id);

    auto stats = s->stats();
    REQUIRE(stats);
    REQUIRE(stats->size() == 2);
    int64_t pending = 0;
    int64_t dead_n = 0;
    for (const auto& x : *stats) {
      pending += x.pending;
      dead_n += x.dead;
    }
    CHECK(pending == 2);
    CHECK(dead_n == 1);

    auto again = s->redeliver(d->id);
    REQUIRE(again);
    CHECK(*again);
    auto back = s->get(d->id);
    REQUIRE(back);
    CHECK((*back)->first.status == "pending");
    CHECK((*back)->first.first_attempt_at_ms == 0); // the retry clock starts again
    CHECK((*back)->second.size() == 1);             // the log keeps the old attempt
    CHECK_FALSE(*s->redeliver(999'999));
    CHECK_FALSE(s->get(999'999)->has_value());
  }

} // TEST_SUITE
