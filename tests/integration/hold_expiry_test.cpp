// holds.ttl: a hold gives its stock back once its TTL has passed, also when the TTL passes while
// the node is down.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "api.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr int64_t ttl_ms = 2000;

/// Polls the admin stock until held == `want` (bounded); returns the last stock read and, in
/// `at_ms`, the wall-clock time of that read.
json::value wait_for_held(api& a, const std::string& sku, int64_t want,
                          std::chrono::milliseconds patience, int64_t& at_ms) {
  const auto deadline = steady::now() + patience;
  json::value st = a.stock(sku);
  at_ms = wall_ms();
  for (int i = 0; i < 10000 && int_of(st, "held") != want && steady::now() < deadline; ++i) {
    std::this_thread::sleep_for(25ms);
    st = a.stock(sku);
    at_ms = wall_ms();
  }
  return st;
}

/// PUTs the line and returns its hold_expires_at (ms), CHECKing that it is holds.ttl after the
/// request.
int64_t hold(api& a, const std::string& cart, const std::string& sku, int64_t qty) {
  const auto before = wall_ms();
  auto r = a.put_item(cart, sku, qty);
  const auto after = wall_ms();
  REQUIRE_MESSAGE(r.status == 200, describe(r));
  const auto cart_json = parse_json(r.body);
  const auto& line = line_at(cart_json, sku);
  const auto expires = parse_rfc3339_ms(str_of(line, "hold_expires_at"));
  REQUIRE_MESSAGE(expires.has_value(), str_of(line, "hold_expires_at"));
  CHECK(*expires >= before + ttl_ms - 5);
  CHECK(*expires <= after + ttl_ms + 5);
  return *expires;
}

} // namespace

TEST_SUITE("hold_expiry") {

  TEST_CASE("a hold returns its stock after holds.ttl") {
    node_process node{node_config{.holds_ttl = "2s"}};
    api a{node};
    a.add_product({.sku = "exp-1", .name = "Expiring", .price_cents = 300}, 5);
    const auto cart = a.create_cart();

    const auto expires = hold(a, cart, "exp-1", 2);
    check_stock(a.stock("exp-1"), 5, 2, 0);
    CHECK(int_of(a.product("exp-1"), "available") == 3);

    int64_t seen_at = 0;
    const auto st = wait_for_held(a, "exp-1", 0, 10s, seen_at);
    check_stock(st, 5, 0, 0);
    // Not before its time (the read that saw it gone came after hold_expires_at), and promptly.
    CHECK(seen_at >= expires);
    CHECK(seen_at <= expires + 3000);
    CHECK(int_of(a.product("exp-1"), "available") == 5);

    // The cart can hold again (a new hold) and the stock follows.
    hold(a, cart, "exp-1", 1);
    check_stock(a.stock("exp-1"), 5, 1, 0);
  }

  TEST_CASE("a hold whose TTL passes while the node is down is gone right after activation") {
    node_process node{node_config{.holds_ttl = "2s"}};
    api a{node};
    a.add_product({.sku = "exp-2", .name = "Expiring 2", .price_cents = 300}, 5);
    a.add_product({.sku = "exp-3", .name = "Expiring 3", .price_cents = 300}, 5);
    const auto cart = a.create_cart();

    const auto expires = hold(a, cart, "exp-2", 3);
    check_stock(a.stock("exp-2"), 5, 3, 0);

    SUBCASE("graceful stop") {
      node.stop();
    }
    SUBCASE("kill -9") {
      node.kill9();
    }

    // Waiting out the TTL is the point here, not synchronisation.
    for (int i = 0; i < 1000 && wall_ms() <= expires + 100; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    node.start();
    // The first read activates the SKU: the hold must already be gone.
    check_stock(a.stock("exp-2"), 5, 0, 0);
    CHECK(int_of(a.product("exp-2"), "available") == 5);

    // A hold taken after the restart expires too (the node's timers run after a restart).
    const auto expires3 = hold(a, cart, "exp-3", 4);
    int64_t seen_at = 0;
    check_stock(wait_for_held(a, "exp-3", 0, 10s, seen_at), 5, 0, 0);
    CHECK(seen_at >= expires3);
  }

  TEST_CASE("a hold on a SKU nobody asks for after a restart is released anyway (sweeper)") {
    node_process node{node_config{.holds_ttl = "2s"}};
    api a{node};
    a.add_product({.sku = "exp-4", .name = "Expiring 4", .category = "sweep", .price_cents = 300},
                  5);
    const auto cart = a.create_cart();
    const auto expires = hold(a, cart, "exp-4", 2);
    node.kill9(); // the SKU actor is gone with its timer; its hold is in the journal
    node.start();
    // Nothing asks the SKU actor: only the listing (PostgreSQL's stock projection) is read.
    auto listed_available = [&]() -> int64_t {
      auto r = a.store().get("/api/v1/products?category=sweep");
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      const auto body = parse_json(r.body);
      for (const auto& item : array_of(body, "items")) {
        if (str_of(item, "sku") == "exp-4") {
          return int_of(item, "available");
        }
      }
      return -1;
    };
    CHECK(listed_available() == 3);
    int64_t seen_at = 0;
    int64_t available = 3;
    for (int i = 0; i < 400 && available != 5; ++i) {
      std::this_thread::sleep_for(25ms);
      available = listed_available();
      seen_at = wall_ms();
    }
    CHECK_MESSAGE(available == 5, "the expired hold was never released");
    CHECK(seen_at >= expires);
  }

} // TEST_SUITE

} // namespace surge::itest
