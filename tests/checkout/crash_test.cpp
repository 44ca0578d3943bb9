// kill -9 of the node while a checkout is inside the gateway call (the order row exists, the
// charge reached the gateway, no answer yet). After a restart the order is settled by looking
// the charge up by its key: confirmed with exactly one charge and the stock sold, or failed with
// nothing charged and nothing sold; a retry with the same key returns that outcome and never
// charges again (G1-G3).
#include <doctest/doctest.h>

#include <thread>

#include "checkout_support.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

TEST_SUITE("crash") {

  TEST_CASE("kill -9 mid-checkout: the restarted node settles the order, one charge at most") {
    // The gateway answers tok_slow after 3 s, well within payments.timeout: the node is inside
    // the call when it dies.
    auto [ps, node, a] = paying_store{{"--slow-ms=3000"},
                                      {"--payments.timeout=5s", "--orders.reconcile_interval=500ms",
                                       "--orders.settle_after=500ms"}};
    constexpr int64_t on_hand = 5;
    constexpr int64_t qty = 2;
    const auto [lines, cart] = stocked_cart(a, "cr-1", 1500, on_hand, qty);
    const std::string key = "key-crash";

    response in_flight;
    std::thread client{[&] {
      http_client c{node.http_port(), 20s};
      in_flight = checkout(c, cart, key, "tok_slow");
    }};
    // The charge is in paysim's log as soon as the request reaches the gateway.
    const bool reached = poll_until(
        10s, [&] { return !charges_for(*ps, key).empty(); }, 10ms);
    node.kill9();
    client.join();
    REQUIRE_MESSAGE(reached,
                    "the charge never reached the gateway; checkout: " << describe(in_flight));
    CHECK_MESSAGE(in_flight.status == 0,
                  "the checkout answered before the kill: " << describe(in_flight));

    node.start();
    const auto before_restart_checks = wall_ms();

    // Settled by the node itself (the reconciler), before any client retries: the stock shows it.
    int64_t sold = -1;
    int64_t held = -1;
    const bool settled = poll_until(
        20s,
        [&] {
          const auto st = a.stock("cr-1");
          sold = int_of(st, "sold");
          held = int_of(st, "held");
          CHECK(held + sold <= on_hand); // G1 at every read
          return sold == qty && held == 0;
        },
        100ms);
    MESSAGE("after restart: settled by the node = " << settled << " (sold " << sold << ", held "
                                                    << held << ")");

    // The client retries with the same key: it gets the outcome.
    const auto retry = checkout(a.store(), cart, key, "tok_slow");
    const auto log = charges_for(*ps, key);
    INFO("charges for " << key << ": " << describe(log));
    INFO("retry: " << describe(retry));
    if (retry.status == 201) {
      const auto o =
          check_order(retry, 201, cart, "confirmed", lines, before_restart_checks - 30000);
      CHECK_MESSAGE(settled, "the reconciler did not confirm the paid order within 20 s; only "
                             "the client's retry did");
      CHECK(count_status(log, "approved") == 1);
      CHECK(log.size() == 1);
      check_stock(a.stock("cr-1"), on_hand, 0, qty);
      const auto got = a.store().get("/api/v1/orders/" + str_of(o, "order_id"));
      CHECK_MESSAGE(got.status == 200, describe(got));
      CHECK(same_json(got.body, retry.body));
      CHECK(array_of(a.cart(cart), "items").empty());
    } else {
      // Failed: then nothing may have been charged or sold. (Here the gateway approved the
      // charge, so a failed order means the shopper paid for nothing.)
      CHECK_MESSAGE(retry.status >= 400, describe(retry));
      CHECK(count_status(log, "approved") == 0);
      CHECK(int_of(a.stock("cr-1"), "sold") == 0);
    }

    // Retried again: the same outcome, still no second charge.
    const auto again = checkout(a.store(), cart, key, "tok_slow");
    CHECK(again.status == retry.status);
    CHECK(same_json(again.body, retry.body));
    const auto log2 = charges_for(*ps, key);
    CHECK_MESSAGE(count_status(log2, "approved") == count_status(log, "approved"), describe(log2));
    CHECK(count_status(ps->charges(), "approved") <= 1);
  }

} // TEST_SUITE

} // namespace surge::itest
