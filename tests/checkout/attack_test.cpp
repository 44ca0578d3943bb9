// Issue 11: shoppers who attack the sale through the public API, each finding as a regression
// test against real nodes, PostgreSQL, Redis and surge-paysim.
// - finding 1: a checkout owns its cart: edits and a second checkout during a running checkout
//   change nothing, from any node, and a decline gives the cart back;
// - finding 6: a cart has one currency (an empty one none);
// - finding 8: a hold is not renewed past holds.max_lifetime; an empty cart expires quickly.
#include <doctest/doctest.h>

#include <hiredis/hiredis.h>

#include <future>

#include "checkout_support.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

/// PTTL of `key` on the test Redis (SURGE_TEST_REDIS_URL), in milliseconds: -2 missing, -1 no
/// expiry.
int64_t redis_pttl(const std::string& key) {
  const auto url = surge::test::test_redis_url();
  // redis://host:port/db, as the test set-up gives it.
  auto rest = url.substr(url.find("://") + 3);
  auto host = rest.substr(0, rest.find(':'));
  auto port = std::stoi(rest.substr(rest.find(':') + 1));
  redisContext* c = redisConnect(host.c_str(), port);
  REQUIRE((c != nullptr && c->err == 0));
  auto db =
      rest.find('/') == std::string::npos ? std::string{"0"} : rest.substr(rest.find('/') + 1);
  freeReplyObject(redisCommand(c, "SELECT %s", db.c_str()));
  auto* r = static_cast<redisReply*>(redisCommand(c, "PTTL %s", key.c_str()));
  REQUIRE(r != nullptr);
  const int64_t ttl = r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
  freeReplyObject(r);
  redisFree(c);
  return ttl;
}

/// A product in `currency`.
void add_product_in(api& a, const std::string& sku, int64_t price, const std::string& currency,
                    int64_t on_hand) {
  product_spec p;
  p.sku = sku;
  p.name = "product " + sku;
  p.price_cents = price;
  p.currency = currency;
  a.put_product(p);
  a.set_stock(sku, on_hand);
}

} // namespace

TEST_SUITE("attacks") {

  TEST_CASE("finding 1: a running checkout owns its cart, on every node") {
    // Hold 10 of 10, start a checkout that the gateway answers after 3 s (tok_slow under a
    // 10 s payments.timeout), and meanwhile try every edit and a second checkout through the
    // OTHER node: each is refused and changes nothing. The order is for 10, 10 are sold, and no
    // unit goes back on sale.
    auto ps = start_paysim({"--slow-ms=3000"});
    node_process n1{paying_node(*ps, {"--payments.timeout=10s"})};
    node_process n2{joining_node(*ps, n1, {"--payments.timeout=10s"})};
    api a{n1};
    api b{n2};
    add_product(a, "atk-1", 1000, 10);
    const auto cart = filled_cart(a, {{"atk-1", 10, 1000}});
    check_stock(a.stock("atk-1"), 10, 10, 0);

    const auto before = wall_ms();
    auto running = std::async(std::launch::async, [&] {
      http_client c{n1.http_port(), 30s};
      return checkout(c, cart, "atk-key-1", "tok_slow");
    });
    // The claim is in place once the charge has reached the gateway (paysim logs it at once).
    REQUIRE_MESSAGE(poll_until(5s, [&] { return !charges_for(*ps, "atk-key-1").empty(); }),
                    "the checkout never reached the gateway");

    for (int64_t qty : {int64_t{1}, int64_t{40}, int64_t{10}}) {
      check_error(b.put_item(cart, "atk-1", qty), 409, "checkout_in_progress");
    }
    check_error(b.store().del("/api/v1/carts/" + cart + "/items/atk-1"), 409,
                "checkout_in_progress");
    check_error(checkout(b.store(), cart, "atk-key-2", "tok_ok"), 409, "conflict");
    CHECK(charges_for(*ps, "atk-key-2").empty());
    check_stock(b.stock("atk-1"), 10, 10, 0);

    const auto done = running.get();
    check_order(done, 201, cart, "confirmed", {{"atk-1", 10, 1000}}, before);
    check_stock(a.stock("atk-1"), 10, 0, 10);
    CHECK(count_status(charges_for(*ps, "atk-key-1"), "approved") == 1);
    const auto paid = charges_for(*ps, "atk-key-1");
    REQUIRE(!paid.empty());
    CHECK(paid.back().amount_cents == 10 * 1000);
    CHECK(ps->refunds().empty());
    // Nothing is left to sell to anyone else.
    const auto other = a.create_cart();
    check_error(a.put_item(other, "atk-1", 1), 409, "sold_out");
    // The sold line left the cart and the cart is the shopper's again.
    const auto after = b.cart(cart);
    CHECK(array_of(after, "items").empty());
  }

  TEST_CASE("finding 1: a declined checkout gives the cart back; a retry pays only for it") {
    auto [ps, node, a] = paying_store{};
    add_product(a, "atk-d", 500, 10);
    const auto cart = filled_cart(a, {{"atk-d", 2, 500}});
    check_error(checkout(a.store(), cart, "atk-decl", "tok_decline"), 402, "payment_declined");
    // Editable again at once.
    auto r = a.put_item(cart, "atk-d", 3);
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    check_stock(a.stock("atk-d"), 10, 3, 0);
    // The declined key stays declined; a new key pays for the cart as it is now.
    check_error(checkout(a.store(), cart, "atk-decl", "tok_decline"), 402, "payment_declined");
    const auto before = wall_ms();
    check_order(checkout(a.store(), cart, "atk-ok", "tok_ok"), 201, cart, "confirmed",
                {{"atk-d", 3, 500}}, before);
    check_stock(a.stock("atk-d"), 10, 0, 3);
  }

  TEST_CASE("finding 1: the gateways down gives the cart back; the key's retry needs the same "
            "lines") {
    auto [ps, node, a] = paying_store{};
    add_product(a, "atk-u", 500, 10);
    const auto cart = filled_cart(a, {{"atk-u", 2, 500}});
    ps->set_down(0, true);
    ps->set_down(1, true);
    check_error(checkout(a.store(), cart, "atk-down", "tok_ok"), 503, "unavailable");
    ps->set_down(0, false);
    ps->set_down(1, false);
    // Nothing was charged, so the cart is the shopper's again...
    auto r = a.put_item(cart, "atk-u", 4);
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    // ... and the old key, made for 2, does not pay for 4.
    check_error(checkout(a.store(), cart, "atk-down", "tok_ok"), 422, "idempotency_conflict");
    CHECK(count_status(charges_for(*ps, "atk-down"), "approved") == 0);
    check_stock(a.stock("atk-u"), 10, 4, 0);
    const auto before = wall_ms();
    check_order(checkout(a.store(), cart, "atk-down-2", "tok_ok"), 201, cart, "confirmed",
                {{"atk-u", 4, 500}}, before);
    check_stock(a.stock("atk-u"), 10, 0, 4);
  }

  TEST_CASE("finding 6: a cart has one currency, fixed by its first line; empty, none") {
    auto [ps, node, a] = paying_store{};
    add_product_in(a, "atk-eur", 1000, "EUR", 5);
    add_product_in(a, "atk-usd", 500, "USD", 5);
    const auto cart = a.create_cart();
    const auto empty = a.cart(cart);
    CHECK(member(empty, "currency").is_null());
    REQUIRE(a.put_item(cart, "atk-eur", 1).status == 200);
    const auto mixed = a.put_item(cart, "atk-usd", 1);
    check_error(mixed, 409, "currency_mismatch");
    check_stock(a.stock("atk-usd"), 5, 0, 0);
    const auto now = a.cart(cart);
    CHECK(str_of(now, "currency") == "EUR");
    CHECK(int_of(now, "total_cents") == 1000);
    CHECK(array_of(now, "items").size() == 1);
    // Emptied, the cart takes any currency again.
    REQUIRE(a.store().del("/api/v1/carts/" + cart + "/items/atk-eur").status == 200);
    CHECK(member(a.cart(cart), "currency").is_null());
    REQUIRE(a.put_item(cart, "atk-usd", 2).status == 200);
    CHECK(str_of(a.cart(cart), "currency") == "USD");
  }

  TEST_CASE("finding 8: re-PUT of the same qty does not renew a hold past holds.max_lifetime") {
    node_config cfg;
    cfg.holds_ttl = "2s";
    cfg.extra = {"--holds.max_lifetime=4s"};
    node_process node{cfg};
    api a{node};
    add_product(a, "atk-life", 100, 5);
    const auto cart = a.create_cart();
    const auto first = parse_json(a.put_item(cart, "atk-life", 1).body);
    const auto hold = str_of(line_at(first, "atk-life"), "hold_id");
    const auto created = wall_ms();
    int64_t last_expiry = 0;
    // Renew every 300 ms: the expiry moves on, but never past created + 4 s (+ clock slack).
    while (wall_ms() < created + 3500) {
      const auto r = a.put_item(cart, "atk-life", 1);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      const auto line = line_at(parse_json(r.body), "atk-life");
      CHECK(str_of(line, "hold_id") == hold);
      const auto exp = parse_rfc3339_ms(str_of(line, "hold_expires_at"));
      REQUIRE(exp.has_value());
      CHECK(*exp <= created + 4000 + 250);
      last_expiry = *exp;
      std::this_thread::sleep_for(300ms); // the shopper's pace, not synchronisation
    }
    CHECK(last_expiry >= created + 3000); // it was renewed meanwhile
    // At its limit it runs out, renewals or not.
    REQUIRE_MESSAGE(poll_until(
                        8s,
                        [&] {
                          a.put_item(cart, "atk-life", 1); // keeps trying to renew
                          return int_of(a.stock("atk-life"), "held") == 0 ||
                                 str_of(line_at(a.cart(cart), "atk-life"), "hold_id") != hold;
                        },
                        200ms),
                    "the hold outlived holds.max_lifetime");
  }

  TEST_CASE("finding 4: an empty cart expires after carts.empty_ttl, one with lines after "
            "carts.ttl") {
    node_config cfg;
    cfg.extra = {"--carts.empty_ttl=90s", "--carts.ttl=3d"};
    node_process node{cfg};
    api a{node};
    add_product(a, "atk-ttl", 100, 5);
    const auto cart = a.create_cart();
    const auto key = node.redis_prefix() + "cart:" + cart;
    auto ttl = redis_pttl(key);
    CHECK(ttl > 0);
    CHECK(ttl <= 90'000);
    REQUIRE(a.put_item(cart, "atk-ttl", 1).status == 200);
    ttl = redis_pttl(key);
    CHECK(ttl > 90'000);
    CHECK(ttl <= 3 * 86'400'000LL);
    REQUIRE(a.store().del("/api/v1/carts/" + cart + "/items/atk-ttl").status == 200);
    ttl = redis_pttl(key);
    CHECK(ttl > 0);
    CHECK(ttl <= 90'000);
  }

} // TEST_SUITE

} // namespace surge::itest
