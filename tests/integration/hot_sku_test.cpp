// A flash sale on one SKU: far more concurrent buyers than stock, all requests in flight at once.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "api.hpp"

namespace surge::itest {

TEST_SUITE("hot_sku") {

  TEST_CASE("1,200 concurrent buyers of 100 units: exactly 100 holds, the rest sold_out") {
    constexpr std::size_t buyers = 1200;
    constexpr int64_t units = 100;
    node_process node;
    api a{node};
    a.put_product({.sku = "hot-1", .name = "Hot One", .price_cents = 4999});
    check_stock(a.set_stock("hot-1", units), units, 0, 0);

    const auto carts = a.create_carts(buyers);

    std::vector<request> puts;
    for (const auto& id : carts) {
      puts.push_back(json_request("PUT", "/api/v1/carts/" + id + "/items/hot-1", R"({"qty":1})"));
    }
    const auto res = send_all(a.store_port(), puts);
    REQUIRE(res.size() == buyers);

    std::vector<std::size_t> won;
    std::vector<std::size_t> lost;
    std::size_t other = 0;
    for (std::size_t i = 0; i < res.size(); ++i) {
      if (res[i].status == 200) {
        won.push_back(i);
      } else if (error_mismatch(res[i], 409, "sold_out").empty()) {
        lost.push_back(i);
      } else {
        if (++other <= 5) {
          FAIL_CHECK("PUT #" << i << " is neither 200 nor 409 sold_out: " << describe(res[i]));
        }
      }
    }
    CHECK(won.size() == units);
    CHECK(lost.size() == buyers - units);
    CHECK(other == 0);

    check_stock(a.stock("hot-1"), units, units, 0);
    CHECK(int_of(a.product("hot-1"), "available") == 0);

    // Each 200 carried the cart with the line, and the cart keeps it; hold ids are distinct.
    std::set<std::string> holds;
    for (auto i : won) {
      const auto answered = parse_json(res[i].body);
      const auto* line = line_of(answered, "hot-1");
      REQUIRE_MESSAGE(line != nullptr, "200 without the line: " << res[i].body);
      CHECK(int_of(*line, "qty") == 1);
      const auto hold = str_of(*line, "hold_id");
      CHECK(!hold.empty());
      holds.insert(hold);
    }
    CHECK(holds.size() == won.size());

    // Read every cart back (concurrently): winners have exactly their line, losers none.
    const auto back = a.get_carts(carts);
    std::size_t with_line = 0;
    std::size_t mismatched = 0;
    for (std::size_t i = 0; i < back.size(); ++i) {
      REQUIRE_MESSAGE(back[i].status == 200, "GET cart: " << describe(back[i]));
      const auto cart = parse_json(back[i].body);
      const auto* line = line_of(cart, "hot-1");
      const bool winner = res[i].status == 200;
      if (line != nullptr) {
        ++with_line;
      }
      bool ok = winner ? line != nullptr && array_of(cart, "items").size() == 1
                       : array_of(cart, "items").empty();
      if (ok && winner) {
        const auto acked = parse_json(res[i].body);
        ok = str_of(*line, "hold_id") == str_of(line_at(acked, "hot-1"), "hold_id") &&
             int_of(cart, "total_cents") == 4999;
      }
      if (!ok && ++mismatched <= 5) {
        FAIL_CHECK("cart " << carts[i] << " (PUT answered " << res[i].status << ") reads back as "
                           << back[i].body);
      }
    }
    CHECK(with_line == units);
    CHECK(mismatched == 0);
  }

  TEST_CASE("concurrent stock changes and hot SKUs side by side lose nothing") {
    node_process node;
    api a{node};
    a.put_product({.sku = "hot-a", .name = "Hot A", .price_cents = 100});
    a.put_product({.sku = "hot-b", .name = "Hot B", .price_cents = 100, .per_customer_limit = 1});
    a.set_stock("hot-a", 0);
    a.set_stock("hot-b", 50);

    // 300 concurrent {"add":1} on one SKU: every one counts.
    std::vector<request> adds(
        300, json_request("POST", "/admin/v1/products/hot-a/stock", R"({"add":1})"));
    for (const auto& r : send_all(node.admin_port(), adds)) {
      CHECK_MESSAGE(r.status == 200, describe(r));
    }
    check_stock(a.stock("hot-a"), 300, 0, 0);

    // 400 buyers split over two SKUs at once; "hot-b" allows one per customer and every two carts
    // share a customer: per SKU the stock is never oversold and no customer exceeds the limit.
    std::vector<std::string> carts;
    std::vector<request> creates;
    for (int i = 0; i < 400; ++i) {
      creates.push_back(json_request("POST", "/api/v1/carts",
                                     R"({"customer_id":"cust-)" + std::to_string(i / 2) + "\"}"));
    }
    for (const auto& r : send_all(a.store_port(), creates)) {
      REQUIRE_MESSAGE(r.status == 201, describe(r));
      carts.push_back(str_of(parse_json(r.body), "cart_id"));
    }
    std::vector<request> puts;
    for (std::size_t i = 0; i < carts.size(); ++i) {
      const std::string sku = i % 4 < 2 ? "hot-b" : "hot-a";
      puts.push_back(
          json_request("PUT", "/api/v1/carts/" + carts[i] + "/items/" + sku, R"({"qty":1})"));
    }
    const auto res = send_all(a.store_port(), puts);
    int ok_a = 0;
    int ok_b = 0;
    for (std::size_t i = 0; i < res.size(); ++i) {
      const bool b = i % 4 < 2;
      if (res[i].status == 200) {
        (b ? ok_b : ok_a) += 1;
        continue;
      }
      // hot-a has stock for everyone; hot-b runs out, or the customer's other cart has it.
      CHECK_MESSAGE(b, describe(res[i]));
      const bool expected = error_mismatch(res[i], 409, "sold_out").empty() ||
                            error_mismatch(res[i], 409, "limit_exceeded").empty();
      CHECK_MESSAGE(expected, describe(res[i]));
    }
    CHECK(ok_a == 200);
    // Carts i and i+1 (i even) share a customer and both want hot-b: 100 customers, 50 units.
    CHECK(ok_b == 50);
    check_stock(a.stock("hot-a"), 300, 200, 0);
    check_stock(a.stock("hot-b"), 50, 50, 0);
  }

} // TEST_SUITE

} // namespace surge::itest
