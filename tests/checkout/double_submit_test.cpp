// The same checkout submitted several times at the same moment (a double click, a retrying
// proxy): one order, one charge, every request answered with that order (G3).
#include <doctest/doctest.h>

#include <set>

#include "checkout_support.hpp"

namespace surge::itest {

TEST_SUITE("double_submit") {

  TEST_CASE("8 concurrent submits of one key: the same order for all, one charge, sold == qty") {
    // Every gateway answer takes 300 ms, so the later submits arrive while the charge is in flight.
    auto [ps, node, a] = paying_store{{"--latency-ms=300"}};
    const auto [lines, cart] = stocked_cart(a, "ds-1", 450, 10, 3);

    constexpr std::size_t n = 8;
    const std::vector<request> reqs(n, checkout_request(cart, "key-double", "tok_ok"));
    const auto before = wall_ms();
    const auto res = send_all(a.store_port(), reqs, {}, {.threads = 4});
    REQUIRE(res.size() == n);

    std::set<std::string> ids;
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      const auto o = check_order(res[i], 201, cart, "confirmed", lines, before);
      ids.insert(str_of(o, "order_id"));
      CHECK_MESSAGE(same_json(res[i].body, res[0].body), res[i].body << " vs " << res[0].body);
    }
    CHECK(ids.size() == 1);

    const auto log = charges_for(*ps, "key-double");
    INFO("charges: " << describe(log));
    CHECK(log.size() == 1);
    CHECK(count_status(log, "approved") == 1);
    CHECK(ps->charges().size() == log.size());
    check_stock(a.stock("ds-1"), 10, 0, 3);
    CHECK(array_of(a.cart(cart), "items").empty());

    const auto got = a.store().get("/api/v1/orders/" + *ids.begin());
    CHECK_MESSAGE(got.status == 200, describe(got));
    CHECK(same_json(got.body, res[0].body));
  }

  TEST_CASE("two keys for one cart at once: one confirmed order, one charge, stock sold once") {
    // A client that makes a new key per click: the cart is claimed by the first checkout, so
    // the second is refused before anything is charged.
    auto [ps, node, a] = paying_store{{"--latency-ms=300"}};
    const auto [lines, cart] = stocked_cart(a, "ds-2", 900, 4, 2);

    const std::vector<request> reqs{checkout_request(cart, "key-click-1", "tok_ok"),
                                    checkout_request(cart, "key-click-2", "tok_ok")};
    const auto before = wall_ms();
    const auto res = send_all(a.store_port(), reqs, {}, {.threads = 2});
    REQUIRE(res.size() == 2);
    INFO("answers: " << describe(res[0]) << " | " << describe(res[1]));
    const std::size_t won = res[0].status == 201 ? 0 : 1;
    check_order(res[won], 201, cart, "confirmed", lines, before);
    // The other one: refused while the first was under way, or the cart was emptied by then.
    const auto& lost = res[1 - won];
    CHECK_MESSAGE((error_mismatch(lost, 409, "conflict").empty() ||
                   error_mismatch(lost, 409, "empty_cart").empty()),
                  describe(lost));
    check_stock(a.stock("ds-2"), 4, 0, 2);
    CHECK(array_of(a.cart(cart), "items").empty());
    const auto winner_key = won == 0 ? "key-click-1" : "key-click-2";
    const auto loser_key = won == 0 ? "key-click-2" : "key-click-1";
    CHECK(count_status(charges_for(*ps, winner_key), "approved") == 1);
    CHECK(count_status(charges_for(*ps, loser_key), "approved") == 0);
  }

} // TEST_SUITE

} // namespace surge::itest
