// The SKU and cart actors on the in-memory fakes AND on real PostgreSQL + Redis: every case
// runs on both (TEST_CASE_TEMPLATE), so the fakes are never the only test of a behaviour.
#include <doctest/doctest.h>

#include <thread>

#include "actor_fixture.hpp"
#include "surge.pb.h"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"

using namespace surge;
using namespace surge::actors;
using namespace surge::test;

TEST_CASE_TEMPLATE("concurrent holds sell exactly the stock, in few journal batches", backend_t,
                   test::fake_backend, test::real_backend) {
  backend_t be;
  if (auto* fj = be.fake_journal()) {
    fj->set_commit_delay(std::chrono::milliseconds{5}); // like a round trip with fsync
  }
  entity_node n{be, default_opts()};
  create_sku(n, "HOT", 50);
  const auto before = n.journal().stats().requests;
  // 400 requests in flight together, each from its own cart.
  caf::scoped_actor self{n.sys()};
  const int total = 400;
  for (int i = 0; i < total; ++i) {
    self->send(n.skus->acquire("HOT"), hold_atom::value,
               hold_request{"cart" + std::to_string(i), "", 1});
  }
  int granted = 0;
  int sold_out = 0;
  int other = 0;
  int received = 0;
  self->receive_for(received, total)(
      [&](hold_view& v) {
        CHECK(v.qty == 1);
        CHECK_FALSE(v.hold_id.empty());
        ++granted;
      },
      [&](caf::error& e) {
        if (is(e, errc::sold_out)) {
          ++sold_out;
        } else {
          ++other;
        }
      });
  CHECK(granted == 50);
  CHECK(sold_out == total - 50);
  CHECK(other == 0);
  auto s = stock_of(n, "HOT");
  CHECK(s.held == 50);
  CHECK(s.available == 0);
  // Group commit: the 50 grants took far fewer than 50 journal batches.
  const auto batches = n.journal().stats().requests - before;
  INFO("journal batches for 50 grants: " << batches);
  CHECK(batches < 25);
}

TEST_CASE_TEMPLATE("acknowledged changes survive a restart; snapshots and replay agree", backend_t,
                   test::fake_backend, test::real_backend) {
  backend_t be;
  std::vector<std::string> hold_ids;
  {
    entity_node n{be, default_opts()};
    create_sku(n, "A", 30, 4);
    for (int i = 0; i < 11; ++i) { // one batch each: crosses several snapshots (every 4)
      auto v = n.ask_sku<hold_view>(
          "A", hold_atom::value,
          hold_request{"c" + std::to_string(i), "cust" + std::to_string(i % 3), 1});
      REQUIRE_MESSAGE(v, caf::to_string(v.error()));
      hold_ids.push_back(v->hold_id);
    }
  }
  entity_node n{be, default_opts()};
  auto s = stock_of(n, "A");
  CHECK(s.on_hand == 30);
  CHECK(s.held == 11);
  // Holds came back with their ids: resizing c2's hold keeps its id (cust2: 3 -> 4, the limit).
  auto v = n.ask_sku<hold_view>("A", hold_atom::value, hold_request{"c2", "cust2", 2});
  REQUIRE_MESSAGE(v, caf::to_string(v.error()));
  CHECK(v->hold_id == hold_ids[2]);
  CHECK(stock_of(n, "A").held == 12);
  // The per-customer counts came back too: cust1 holds 4 (c1, c4, c7, c10), the limit.
  auto lim = n.ask_sku<hold_view>("A", hold_atom::value, hold_request{"c99", "cust1", 1});
  REQUIRE_FALSE(lim);
  CHECK(is(lim.error(), errc::limit_exceeded));
}

TEST_CASE_TEMPLATE("a failed commit acknowledges nothing and the SKU reloads the truth", backend_t,
                   test::fake_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "F", 10);
  auto ok = n.ask_sku<hold_view>("F", hold_atom::value, hold_request{"c1", "", 2});
  REQUIRE(ok);
  be.fake_journal()->fail_next(persistence::errc::unavailable);
  auto failed = n.ask_sku<hold_view>("F", hold_atom::value, hold_request{"c2", "", 3});
  REQUIRE_FALSE(failed);
  CHECK(is(failed.error(), errc::unavailable));
  // The next incarnation knows only what was committed.
  CHECK(eventually([&] {
    auto s = n.ask_sku<stock_view>("F", stock_atom::value);
    return s && s->held == 2;
  }));
}

TEST_CASE_TEMPLATE("holds expire by timer and on activation", backend_t, test::fake_backend,
                   test::real_backend) {
  backend_t be;
  auto opts = opts_with([](auto& o) { o.holds_ttl = std::chrono::milliseconds{300}; });
  {
    entity_node n{be, opts};
    create_sku(n, "E", 5);
    REQUIRE(n.ask_sku<hold_view>("E", hold_atom::value, hold_request{"c1", "", 2}));
    CHECK(stock_of(n, "E").held == 2);
    // The timer gives the stock back.
    CHECK(eventually([&] { return stock_of(n, "E").held == 0; }));
    opts.holds_ttl = std::chrono::minutes{1};
  }
  {
    entity_node n{be, opts};
    REQUIRE(n.ask_sku<hold_view>("E", hold_atom::value, hold_request{"c2", "", 3}));
    CHECK(stock_of(n, "E").held == 3);
  }
  // Restart two minutes later: the hold is released as the SKU activates.
  entity_node n{be, opts, 2 * 60 * 1000};
  auto s = stock_of(n, "E");
  CHECK(s.held == 0);
  CHECK(s.available == 5);
}

TEST_CASE_TEMPLATE("a stale or foreign Redis snapshot is not trusted over PostgreSQL", backend_t,
                   test::fake_backend, test::real_backend) {
  backend_t be;
  {
    entity_node n{be, default_opts()};
    create_sku(n, "R", 7);
    for (int i = 0; i < 6; ++i) {
      REQUIRE(n.ask_sku<hold_view>("R", hold_atom::value,
                                   hold_request{"c" + std::to_string(i), "", 1}));
    }
  }
  // Plant a snapshot at a seq the journal does not have, claiming everything is sold.
  {
    auto conn = be.redis();
    REQUIRE(conn);
    proto::SkuSnapshot bogus;
    bogus.set_exists(true);
    bogus.set_on_hand(7);
    bogus.set_sold(7);
    REQUIRE_FALSE(
        conn->snapshots->put(persistence::snapshot{"sku:R", 999, bogus.SerializeAsString()}));
  }
  entity_node n{be, default_opts()};
  auto s = stock_of(n, "R");
  CHECK(s.held == 6);
  CHECK(s.sold == 0);
}

TEST_CASE_TEMPLATE("idle entities passivate and come back unchanged", backend_t, test::fake_backend,
                   test::real_backend) {
  backend_t be;
  entity_node n{be, opts_with([](auto& o) { o.idle_timeout = std::chrono::milliseconds{200}; })};
  for (int i = 0; i < 20; ++i) {
    create_sku(n, "P" + std::to_string(i), i);
  }
  auto cart = n.ask_cart<cart_view>("cart1", create_atom::value, std::string{"bob"});
  REQUIRE(cart);
  auto added =
      n.ask_cart<cart_view>("cart1", item_atom::value, std::string{"P3"}, int64_t{2}, false,
                            std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_MESSAGE(added, caf::to_string(added.error()));
  // SKUs without holds and the idle cart go; P3 keeps its hold, so it stays active.
  CHECK(eventually([&] { return n.skus->size() == 1 && n.carts->size() == 0; }));
  for (int i = 0; i < 20; ++i) {
    auto s = stock_of(n, "P" + std::to_string(i));
    CHECK(s.on_hand == i);
  }
  auto again = n.ask_cart<cart_view>("cart1", caf::get_atom::value, std::string{});
  REQUIRE(again);
  REQUIRE(again->items.size() == 1);
  CHECK(again->items[0].qty == 2);
  CHECK(again->customer_id == "bob");
}

TEST_CASE_TEMPLATE("a refused cart change leaves the cart exactly as it was", backend_t,
                   test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "X", 3, 2);
  REQUIRE(n.ask_cart<cart_view>("k1", create_atom::value, std::string{"carol"}));
  auto one = n.ask_cart<cart_view>("k1", item_atom::value, std::string{"X"}, int64_t{2}, false,
                                   std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE(one);
  auto over = n.ask_cart<cart_view>("k1", item_atom::value, std::string{"X"}, int64_t{3}, false,
                                    std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_FALSE(over);
  CHECK((is(over.error(), errc::limit_exceeded) || is(over.error(), errc::sold_out)));
  auto after = n.ask_cart<cart_view>("k1", caf::get_atom::value, std::string{});
  REQUIRE(after);
  REQUIRE(after->items.size() == 1);
  CHECK(after->items[0].qty == 2);
  CHECK(after->items[0].hold_id == one->items[0].hold_id);
  CHECK(stock_of(n, "X").held == 2);
  auto missing = n.ask_cart<cart_view>("k1", item_atom::value, std::string{"Y"}, int64_t{0}, true,
                                       std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_FALSE(missing);
  CHECK(is(missing.error(), errc::not_found));
  auto nocart = n.ask_cart<cart_view>("nope", caf::get_atom::value, std::string{});
  REQUIRE_FALSE(nocart);
  CHECK(is(nocart.error(), errc::not_found));
}

TEST_CASE("a reply that reports state never gets ahead of that state's commit") {
  test::fake_backend be;
  entity_node n{be, default_opts()};
  create_sku(n, "D", 10);
  be.fake_journal()->set_commit_delay(std::chrono::milliseconds{200});
  be.fake_journal()->fail_next(persistence::errc::unavailable);
  // The second request changes nothing (same qty) and a read follows; both reflect the first
  // request's hold, whose commit fails: neither may succeed.
  caf::scoped_actor self{n.sys()};
  auto sku = n.skus->acquire("D");
  self->send(sku, hold_atom::value, hold_request{"c1", "", 2});
  self->send(n.skus->acquire("D"), hold_atom::value, hold_request{"c1", "", 2});
  self->send(n.skus->acquire("D"), stock_atom::value);
  int errors = 0;
  int i = 0;
  self->receive_for(i, 3)([&](hold_view&) {}, [&](stock_view&) {},
                          [&](caf::error& e) {
                            CHECK(is(e, errc::unavailable));
                            ++errors;
                          });
  CHECK(errors == 3);
}

TEST_CASE_TEMPLATE("a checkout's claim freezes the cart's lines, survives passivation, and ends",
                   backend_t, test::fake_backend, test::real_backend) {
  // Issue 11, finding 1: PUT/DELETE during a checkout must change nothing.
  backend_t be;
  entity_node n{be, opts_with([](auto& o) { o.idle_timeout = std::chrono::milliseconds{200}; })};
  create_sku(n, "CL", 10);
  REQUIRE(n.ask_cart<cart_view>("c1", create_atom::value, std::string{}));
  auto held = n.ask_cart<cart_view>("c1", item_atom::value, std::string{"CL"}, int64_t{10}, false,
                                    std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE(held);
  auto claimed =
      n.ask_cart<cart_view>("c1", checkout_atom::value, std::string{"o_1"}, true, std::string{});
  REQUIRE(claimed);
  CHECK(claimed->items.at(0).qty == 10);
  for (int64_t qty : {int64_t{1}, int64_t{40}, int64_t{0}}) {
    auto edit = n.ask_cart<cart_view>("c1", item_atom::value, std::string{"CL"}, qty, qty == 0,
                                      std::string{}, int64_t{0}, std::string{}, std::string{});
    REQUIRE_FALSE(edit);
    CHECK(is(edit.error(), errc::checkout_in_progress));
  }
  // A second checkout (another order) is refused; the same order may claim again.
  auto other =
      n.ask_cart<cart_view>("c1", checkout_atom::value, std::string{"o_2"}, true, std::string{});
  REQUIRE_FALSE(other);
  CHECK_MESSAGE(is(other.error(), errc::conflict), caf::to_string(other.error()));
  CHECK(n.ask_cart<cart_view>("c1", checkout_atom::value, std::string{"o_1"}, true, std::string{}));
  CHECK(stock_of(n, "CL").held == 10);
  // The claim is stored with the cart: a new incarnation still refuses edits.
  REQUIRE(eventually([&] { return n.carts->size() == 0; }));
  auto after = n.ask_cart<cart_view>("c1", item_atom::value, std::string{"CL"}, int64_t{1}, false,
                                     std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_FALSE(after);
  CHECK(is(after.error(), errc::checkout_in_progress));
  // Only the claiming order gives it back; then the cart is the shopper's again.
  CHECK(
      n.ask_cart<cart_view>("c1", checkout_atom::value, std::string{"o_2"}, false, std::string{}));
  CHECK_FALSE(n.ask_cart<cart_view>("c1", item_atom::value, std::string{"CL"}, int64_t{1}, false,
                                    std::string{}, int64_t{0}, std::string{}, std::string{}));
  REQUIRE(
      n.ask_cart<cart_view>("c1", checkout_atom::value, std::string{"o_1"}, false, std::string{}));
  auto shrunk = n.ask_cart<cart_view>("c1", item_atom::value, std::string{"CL"}, int64_t{1}, false,
                                      std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_MESSAGE(shrunk, caf::to_string(shrunk.error()));
  CHECK(shrunk->items.at(0).qty == 1);
  CHECK(stock_of(n, "CL").held == 1);
}

TEST_CASE_TEMPLATE("a cart has one currency and a verified customer's cart is theirs alone",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, opts_with([](auto& o) { o.verify_customers = true; })};
  create_sku(n, "USD1", 10);
  persistence::product_record eur{"EUR1", "euro thing", "", "cat", 900, "EUR", 0};
  REQUIRE(n.ask_sku<product_view>("EUR1", product_atom::value, eur));
  REQUIRE(n.ask_sku<stock_view>("EUR1", stock_atom::value, stock_change{true, 10}));
  create_sku(n, "LIM", 10, 2);
  // Empty: no currency yet; the first line fixes it.
  auto empty = n.ask_cart<cart_view>("m1", create_atom::value, std::string{"alice"});
  REQUIRE(empty);
  CHECK(empty->currency.empty());
  REQUIRE(n.ask_cart<cart_view>("m1", item_atom::value, std::string{"EUR1"}, int64_t{1}, false,
                                std::string{"alice"}, int64_t{0}, std::string{}, std::string{}));
  auto mixed =
      n.ask_cart<cart_view>("m1", item_atom::value, std::string{"USD1"}, int64_t{1}, false,
                            std::string{"alice"}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_FALSE(mixed);
  CHECK(is(mixed.error(), errc::currency_mismatch));
  CHECK(stock_of(n, "USD1").held == 0);
  // Someone else (or nobody) cannot see or change alice's cart.
  for (const std::string who : {"bob", ""}) {
    auto seen = n.ask_cart<cart_view>("m1", caf::get_atom::value, who);
    REQUIRE_FALSE(seen);
    CHECK(is(seen.error(), errc::not_found));
    auto changed = n.ask_cart<cart_view>("m1", item_atom::value, std::string{"EUR1"}, int64_t{0},
                                         true, who, int64_t{0}, std::string{}, std::string{});
    REQUIRE_FALSE(changed);
    CHECK(is(changed.error(), errc::not_found));
  }
  CHECK(stock_of(n, "EUR1").held == 1);
  // An anonymous cart cannot take a SKU with a per-customer limit; alice's can.
  REQUIRE(n.ask_cart<cart_view>("anon", create_atom::value, std::string{}));
  auto anon = n.ask_cart<cart_view>("anon", item_atom::value, std::string{"LIM"}, int64_t{1}, false,
                                    std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_FALSE(anon);
  CHECK(is(anon.error(), errc::login_required));
  REQUIRE(n.ask_cart<cart_view>("m2", create_atom::value, std::string{"alice"}));
  CHECK(n.ask_cart<cart_view>("m2", item_atom::value, std::string{"LIM"}, int64_t{2}, false,
                              std::string{"alice"}, int64_t{0}, std::string{}, std::string{}));
}

TEST_CASE("a hold on a local SKU past its deadline is answered by the cart's tick, not lost") {
  // The SKU's commit takes longer than the request may wait: the cart answers request_timeout
  // when the deadline passes (one tick, no CAF timer per call), keeps its lines as they were,
  // drops the late reply, and takes the next change as usual. The commit delay exists only in
  // the in-memory journal, so this case runs on the fake backend.
  test::fake_backend be;
  entity_node n{be, default_opts()};
  create_sku(n, "SLOW", 10);
  REQUIRE(n.ask_cart<cart_view>("t1", create_atom::value, std::string{}));
  be.fake_journal()->set_commit_delay(std::chrono::milliseconds{1500});
  const auto started = std::chrono::steady_clock::now();
  auto late = n.ask_cart<cart_view>("t1", item_atom::value, std::string{"SLOW"}, int64_t{2}, false,
                                    std::string{}, deadline_after(std::chrono::milliseconds{200}),
                                    std::string{}, std::string{});
  REQUIRE_FALSE(late);
  CHECK(late.error() == caf::make_error(caf::sec::request_timeout));
  // Answered by the cart, not by this test's own 20 s limit on the call.
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds{15});
  // The commit lands meanwhile; the cart did not take the late hold.
  CHECK(eventually([&] { return stock_of(n, "SLOW").held == 2; }));
  auto cart = n.ask_cart<cart_view>("t1", caf::get_atom::value, std::string{});
  REQUIRE(cart);
  CHECK(cart->items.empty());
  // Nothing is left in flight: the next change goes through and takes over the same hold.
  be.fake_journal()->set_commit_delay(std::chrono::milliseconds{0});
  auto again = n.ask_cart<cart_view>("t1", item_atom::value, std::string{"SLOW"}, int64_t{2}, false,
                                     std::string{}, int64_t{0}, std::string{}, std::string{});
  REQUIRE_MESSAGE(again, caf::to_string(again.error()));
  REQUIRE(again->items.size() == 1);
  CHECK(again->items[0].qty == 2);
  CHECK(stock_of(n, "SLOW").held == 2);
}
