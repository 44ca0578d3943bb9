// The order store's contract on the in-memory fake (tests/fakes/memory_orders.hpp) AND on
// pg_order_store: every case runs on both, so the fake behind the order actor tests keeps
// PostgreSQL's semantics. (tests/persistence holds the PostgreSQL-only cases: SQL injection,
// migrations, connections killed by the server.)
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pqxx/pqxx>

#include "memory_orders.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "test_env.hpp"

using namespace surge::persistence;

namespace {

struct fake_orders {
  std::shared_ptr<surge::fakes::memory_order_state> state =
      std::make_shared<surge::fakes::memory_order_state>();

  std::unique_ptr<order_store> connect() {
    auto s = surge::fakes::memory_order_store::connect(state);
    REQUIRE(s);
    return std::move(*s);
  }

  /// Every order's last change moves `d` into the past.
  void age(std::chrono::minutes d) { state->advance(d); }
};

struct pg_orders {
  surge::test::pg_test_db db;

  std::unique_ptr<order_store> connect() {
    auto s = make_pg_order_store(db.url());
    REQUIRE_MESSAGE(s, caf::to_string(s.error()));
    return std::move(*s);
  }

  void age(std::chrono::minutes d) {
    pqxx::connection c{db.url()};
    pqxx::nontransaction tx{c};
    tx.exec_params("UPDATE orders SET updated_at = updated_at - $1::bigint * interval '1 minute'",
                   static_cast<int64_t>(d.count()));
    tx.exec_params(
        "UPDATE order_refunds SET updated_at = updated_at - $1::bigint * interval '1 minute'",
        static_cast<int64_t>(d.count()));
  }
};

/// An order of two lines for `key`, as the order actor creates one.
order_record sample_order(std::string id, std::string key) {
  return order_record{std::move(id),
                      std::move(key),
                      "fp-1",
                      "cart-1",
                      "cust-1",
                      "pending",
                      "",
                      4498,
                      "USD",
                      0,
                      {{"sku-b", 2, 1999, "hold-1"}, {"sku-a", 1, 500, "hold-2"}},
                      std::nullopt,
                      std::nullopt};
}

/// A connection to `be`'s store, which holds sample_order("o-1", "key-1").
template <class Backend>
std::unique_ptr<order_store> store_with_sample(Backend& be) {
  auto s = be.connect();
  REQUIRE(s->create(sample_order("o-1", "key-1"))->second);
  return s;
}

/// The lines of `o` in their order: (sku, qty, price, hold).
std::vector<std::tuple<std::string, int64_t, int64_t, std::string>>
lines_of(const order_record& o) {
  std::vector<std::tuple<std::string, int64_t, int64_t, std::string>> out;
  for (const auto& l : o.lines) {
    out.emplace_back(l.sku, l.qty, l.price_cents, l.hold_id);
  }
  return out;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

TEST_CASE_TEMPLATE("order store: create is pending with its lines; a known key returns the "
                   "existing order and false",
                   backend_t, fake_orders, pg_orders) {
  backend_t be;
  auto s = be.connect();
  CHECK(s->healthy());
  auto first = sample_order("o-1", "key-1");
  first.status = "confirmed"; // ignored: a new order is pending
  const auto before = wall_ms();
  auto created = s->create(first);
  REQUIRE_MESSAGE(created, caf::to_string(created.error()));
  CHECK(created->second);
  CHECK(created->first.status == "pending");
  CHECK(created->first.created_at_ms >= before - 5000);
  CHECK(created->first.created_at_ms <= wall_ms() + 5000);
  CHECK(!created->first.payment);
  auto loaded = s->load("o-1");
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->status == "pending");
  CHECK((*loaded)->fingerprint == "fp-1");
  CHECK((*loaded)->customer_id == "cust-1");
  CHECK((*loaded)->created_at_ms == created->first.created_at_ms);
  CHECK(lines_of(**loaded) == lines_of(first)); // in the order given
  CHECK(!*s->load("nope"));

  REQUIRE(!s->update("o-1", "paid", "",
                     payment_record{"key-1", "alpha", "ch_1", "approved", 4498, "USD"},
                     std::nullopt));
  auto second = sample_order("o-2", "key-1");
  second.fingerprint = "fp-2";
  second.lines = {{"sku-z", 9, 1, "hold-9"}};
  auto again = be.connect()->create(second);
  REQUIRE_MESSAGE(again, caf::to_string(again.error()));
  CHECK(!again->second);
  CHECK(again->first.order_id == "o-1");
  CHECK(again->first.fingerprint == "fp-1");
  CHECK(again->first.status == "paid");
  CHECK(lines_of(again->first) == lines_of(sample_order("o-1", "key-1")));
  REQUIRE(again->first.payment);
  CHECK(again->first.payment->charge_id == "ch_1");
  CHECK(!*s->load("o-2"));
  // Another key with a taken order id: a conflict, nothing written.
  auto clash = s->create(sample_order("o-1", "key-2"));
  REQUIRE(!clash);
  CHECK(is(clash.error(), errc::conflict));
  CHECK(s->healthy());
  CHECK(is(s->create(sample_order("", "k")).error(), errc::invalid));
  CHECK(is(s->create(sample_order("o-x", "")).error(), errc::invalid));
}

TEST_CASE_TEMPLATE("order store: concurrent creates of one key from 8 connections create it once",
                   backend_t, fake_orders, pg_orders) {
  backend_t be;
  constexpr std::size_t n = 8;
  std::vector<std::unique_ptr<order_store>> stores;
  for (std::size_t i = 0; i < n; ++i) {
    stores.push_back(be.connect());
  }
  std::vector<caf::expected<std::pair<order_record, bool>>> results(
      n, caf::expected<std::pair<order_record, bool>>{make_error(errc::unavailable)});
  std::atomic<std::size_t> ready{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto o = sample_order("o-" + std::to_string(i), "key-c");
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
  std::size_t made = 0;
  std::string winner;
  for (auto& r : results) {
    REQUIRE_MESSAGE(r, caf::to_string(r.error()));
    made += r->second ? 1 : 0;
    winner = r->second ? r->first.order_id : winner;
  }
  CHECK(made == 1);
  for (auto& r : results) {
    CHECK(r->first.order_id == winner);
    CHECK(r->first.lines.size() == 2);
  }
}

TEST_CASE_TEMPLATE("order store: update stores status, payment, refund and event in one step; "
                   "refused values and unknown orders change nothing",
                   backend_t, fake_orders, pg_orders) {
  backend_t be;
  auto s = store_with_sample(be);
  payment_record pay{"key-1", "alpha", "ch_1", "approved", 4498, "USD"};
  outbox_event ev{0, "orders", "o-1", R"({"order_id":"o-1","status":"confirmed"})"};
  REQUIRE(!s->update("o-1", "confirmed", "", pay, ev));
  auto o = **s->load("o-1");
  CHECK(o.status == "confirmed");
  REQUIRE(o.payment);
  CHECK(o.payment->gateway == "alpha");
  CHECK(o.payment->amount_cents == 4498);
  CHECK(!o.refund);
  auto events = s->pending_events(10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().id > 0);
  CHECK(events->front().key == "o-1");
  CHECK(events->front().payload == ev.payload);

  // The payment is upserted; a refund replaces the refund; an update without one keeps it.
  pay.charge_id = "ch_2";
  REQUIRE(!s->update("o-1",
                     order_store::order_update{"cancelled", "hold_expired", pay,
                                               refund_record{"pending", "", 4498}, std::nullopt}));
  o = **s->load("o-1");
  CHECK(o.status == "cancelled");
  CHECK(o.reason == "hold_expired");
  CHECK(o.payment->charge_id == "ch_2");
  REQUIRE(o.refund);
  CHECK(o.refund->status == "pending");
  REQUIRE(!s->update("o-1", order_store::order_update{"cancelled", "hold_expired", std::nullopt,
                                                      refund_record{"refunded", "re_1", 4498},
                                                      std::nullopt}));
  REQUIRE(!s->update("o-1", "cancelled", "hold_expired", std::nullopt, std::nullopt));
  o = **s->load("o-1");
  CHECK(o.refund->status == "refunded");
  CHECK(o.refund->refund_id == "re_1");
  CHECK(o.payment->charge_id == "ch_2");

  CHECK(is(s->update("nope", "paid", "", pay, ev), errc::invalid));
  REQUIRE(s->create(sample_order("o-2", "key-2"))->second);
  CHECK(is(s->update("o-2", "bogus", "", pay, ev), errc::invalid));
  CHECK(is(s->update("o-2", order_store::order_update{"cancelled", "", std::nullopt,
                                                      refund_record{"maybe", "", 1}, ev}),
           errc::invalid));
  CHECK(s->healthy());
  CHECK((**s->load("o-2")).status == "pending");
  CHECK(!(**s->load("o-2")).payment);
  CHECK(s->pending_events(10)->size() == 1);
}

TEST_CASE_TEMPLATE("order store: unsettled lists pending, paid and refund-pending orders older "
                   "than the age, oldest first",
                   backend_t, fake_orders, pg_orders) {
  backend_t be;
  auto s = be.connect();
  for (const char* id : {"touched-pending", "old-paid", "old-confirmed", "old-failed",
                         "old-refund-pending", "old-refunded"}) {
    REQUIRE(s->create(sample_order(id, std::string{"key-"} + id))->second);
  }
  REQUIRE(!s->update("old-paid", "paid", "", std::nullopt, std::nullopt));
  REQUIRE(!s->update("old-confirmed", "confirmed", "", std::nullopt, std::nullopt));
  REQUIRE(!s->update("old-failed", "failed", "x", std::nullopt, std::nullopt));
  REQUIRE(s->create(sample_order("old-action", "key-old-action"))->second);
  REQUIRE(!s->update("old-action", "requires_action", "https://gw.example/3ds/1", std::nullopt,
                     std::nullopt));
  REQUIRE(!s->update("old-refund-pending",
                     order_store::order_update{"cancelled", "hold_expired", std::nullopt,
                                               refund_record{"pending", "", 1}, std::nullopt}));
  REQUIRE(!s->update("old-refunded",
                     order_store::order_update{"cancelled", "hold_expired", std::nullopt,
                                               refund_record{"refunded", "re", 1}, std::nullopt}));
  be.age(std::chrono::minutes{20});
  REQUIRE(!s->update("touched-pending", "pending", "", std::nullopt, std::nullopt)); // touched
  be.age(std::chrono::minutes{10});
  REQUIRE(s->create(sample_order("new-pending", "key-new"))->second);

  // touched-pending changed 10 min ago, the other old ones 30 min ago (in the order changed).
  auto ids = s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 100);
  REQUIRE_MESSAGE(ids, caf::to_string(ids.error()));
  REQUIRE(ids->size() == 3);
  CHECK(ids->back() == "touched-pending");
  CHECK(std::vector<std::string>(ids->begin(), ids->end() - 1) ==
        std::vector<std::string>{"old-paid", "old-refund-pending"});
  CHECK(s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 1)->size() == 1);
  CHECK(*s->unsettled(std::chrono::minutes{15}, std::chrono::hours{24}, 100) ==
        std::vector<std::string>{"old-paid", "old-refund-pending"});
  CHECK(s->unsettled(std::chrono::hours{1}, std::chrono::hours{24}, 100)->empty());
  CHECK(s->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 100)->size() ==
        4); // new-pending too
  // An order waiting for 3-D Secure is unsettled only once it waited longer than action_age.
  auto with_action = s->unsettled(std::chrono::hours{1}, std::chrono::minutes{15}, 100);
  REQUIRE(with_action);
  CHECK(*with_action == std::vector<std::string>{"old-action"});
  CHECK(s->unsettled(std::chrono::hours{1}, std::chrono::hours{1}, 100)->empty());
}

TEST_CASE_TEMPLATE("order store: operators' refunds are a list upserted by refund id with the "
                   "status; a pending one keeps its order unsettled; claim and charge times stay",
                   backend_t, fake_orders, pg_orders) {
  backend_t be;
  auto s = be.connect();
  auto rec = sample_order("o-r", "key-r");
  rec.claimed_at_ms = 1'700'000'000'123;
  REQUIRE(s->create(rec)->second);
  payment_record pay{"key-r", "beta", "ch_1", "approved", 4498, "USD", 1'700'000'001'456};
  REQUIRE(!s->update("o-r", "confirmed", "", pay, std::nullopt));
  order_refund_record r1{"rf_1", "adm-1",        "fp", "refund-1", "pending", "",
                         1999,   {{"sku-b", 1}}, "",   0,          0};
  outbox_event ev{0, "refunds", "o-r", R"({"event":"order.refund_requested"})"};
  REQUIRE(!s->update(
      "o-r", order_store::order_update{"confirmed", "", std::nullopt, std::nullopt, ev, r1}));
  be.age(std::chrono::minutes{10});
  CHECK(*s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 10) ==
        std::vector<std::string>{"o-r"});
  auto r2 = r1;
  r2.refund_id = "rf_2";
  r2.idempotency_key = "adm-2";
  r2.lines = {{"sku-a", 1}, {"sku-b", 1}};
  r2.amount_cents = 2499;
  REQUIRE(!s->update("o-r", order_store::order_update{"confirmed", "", std::nullopt, std::nullopt,
                                                      std::nullopt, r2}));
  r1.status = "refunded";
  r1.gateway_refund_id = "re_1";
  r1.amount_cents = 1; // fixed at insert: not changed by an update
  REQUIRE(!s->update("o-r", order_store::order_update{"confirmed", "", std::nullopt, std::nullopt,
                                                      std::nullopt, r1}));
  auto o = **s->load("o-r");
  CHECK(o.status == "confirmed");
  CHECK(o.claimed_at_ms == 1'700'000'000'123);
  REQUIRE(o.payment);
  CHECK(o.payment->charged_at_ms == 1'700'000'001'456);
  REQUIRE(o.refunds.size() == 2);
  CHECK(o.refunds[0].refund_id == "rf_1");
  CHECK(o.refunds[0].status == "refunded");
  CHECK(o.refunds[0].gateway_refund_id == "re_1");
  CHECK(o.refunds[0].amount_cents == 1999);
  CHECK(o.refunds[0].settled_at_ms >= o.refunds[0].created_at_ms);
  CHECK(o.refunds[0].created_at_ms > 0);
  CHECK(o.refunds[1].status == "pending");
  CHECK(o.refunds[1].settled_at_ms == 0);
  REQUIRE(o.refunds[1].lines.size() == 2);
  CHECK(o.refunds[1].lines[0].sku == "sku-a");
  CHECK(o.refunds[1].lines[1].qty == 1);
  // rf_2 is still pending (and was just written): unsettled once it is older than the age.
  CHECK(s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 10)->empty());
  be.age(std::chrono::minutes{10});
  CHECK(*s->unsettled(std::chrono::minutes{5}, std::chrono::hours{24}, 10) ==
        std::vector<std::string>{"o-r"});
  auto bad = r2;
  bad.status = "maybe";
  CHECK(is(s->update("o-r", order_store::order_update{"confirmed", "", std::nullopt, std::nullopt,
                                                      std::nullopt, bad}),
           errc::invalid));
  auto events = s->pending_events(10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().topic == "refunds");
}

TEST_CASE_TEMPLATE("order store: the outbox in id order, delivered once; one relay lock holder, "
                   "released with its connection",
                   backend_t, fake_orders, pg_orders) {
  backend_t be;
  auto s = store_with_sample(be);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(!s->update("o-1", "pending", "", std::nullopt,
                       outbox_event{0, "orders", "o-1", "{\"n\":" + std::to_string(i) + "}"}));
  }
  auto events = s->pending_events(100);
  REQUIRE(events);
  REQUIRE(events->size() == 5);
  for (std::size_t i = 1; i < events->size(); ++i) {
    CHECK((*events)[i].id > (*events)[i - 1].id);
    CHECK((*events)[i].payload == "{\"n\":" + std::to_string(i) + "}");
  }
  CHECK(s->pending_events(2)->size() == 2);
  CHECK(!s->mark_delivered({}));
  REQUIRE(!s->mark_delivered({(*events)[0].id, (*events)[2].id, 999999}));
  auto rest = s->pending_events(100);
  REQUIRE(rest->size() == 3);
  CHECK((*rest)[0].id == (*events)[1].id);
  REQUIRE(!s->mark_delivered({(*events)[0].id})); // again: no change
  CHECK(s->pending_events(100)->size() == 3);

  auto a = be.connect();
  auto b = be.connect();
  REQUIRE(*a->try_relay_lock());
  CHECK(*a->try_relay_lock()); // the holder asking again
  CHECK(!*b->try_relay_lock());
  a.reset(); // the session ends
  bool taken = false;
  for (int i = 0; i < 250 && !taken; ++i) { // PostgreSQL notices the session's end soon after
    taken = *b->try_relay_lock();
    if (!taken) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
  }
  CHECK(taken);
  CHECK(!*be.connect()->try_relay_lock());
}

TEST_CASE("order store fake: a server that is down breaks its connections; injected faults") {
  fake_orders be;
  auto s = store_with_sample(be);
  be.state->fail_next(errc::conflict);
  CHECK(is(s->update("o-1", "paid", "", std::nullopt, std::nullopt), errc::conflict));
  CHECK(s->healthy());
  CHECK((**s->load("o-1")).status == "pending");
  be.state->fail_next(errc::unavailable, 1, true); // applied, then reported failed
  CHECK(is(s->update("o-1", "paid", "", std::nullopt, std::nullopt), errc::unavailable));
  CHECK(!s->healthy());
  CHECK(is(s->load("o-1").error(), errc::unavailable));
  auto t = be.connect();
  CHECK((**t->load("o-1")).status == "paid");
  REQUIRE(*t->try_relay_lock());
  be.state->set_down(true);
  CHECK(is(t->load("o-1").error(), errc::unavailable));
  CHECK(!t->healthy());
  CHECK(!surge::fakes::memory_order_store::connect(be.state));
  be.state->set_down(false);
  CHECK(*be.connect()->try_relay_lock()); // the broken session let go of the lock
}
