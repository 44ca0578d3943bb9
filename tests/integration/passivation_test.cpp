// entity.idle_timeout: idle SKU and cart actors passivate, and come back with the same state.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// Polls /metrics until `sample` is `want` (bounded); returns the last value read.
double wait_for_metric(api& a, const std::string& sample, double want,
                       std::chrono::milliseconds patience) {
  const auto deadline = steady::now() + patience;
  double v = a.metric(sample);
  for (int i = 0; i < 10000 && v != want && steady::now() < deadline; ++i) {
    std::this_thread::sleep_for(50ms);
    v = a.metric(sample);
  }
  return v;
}

/// GET every target at once; REQUIREs 200 and returns the bodies.
std::vector<std::string> get_all(uint16_t port, const std::vector<std::string>& targets) {
  std::vector<request> reqs;
  for (const auto& t : targets) {
    reqs.push_back(request{"GET", t, {}, {}});
  }
  std::vector<std::string> out;
  for (const auto& r : send_all(port, reqs)) {
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    out.push_back(r.body);
  }
  return out;
}

} // namespace

TEST_SUITE("passivation") {

  TEST_CASE("200 idle SKUs passivate and come back unchanged") {
    constexpr int n = 200;
    const std::string skus_active = R"(surge_entities_active{kind="sku"})";
    const std::string carts_active = R"(surge_entities_active{kind="cart"})";
    node_process node{node_config{.holds_ttl = "2s", .idle_timeout = "1s"}};
    api a{node};

    std::vector<request> products;
    std::vector<request> stocks;
    std::vector<std::string> product_targets;
    std::vector<std::string> stock_targets;
    for (int i = 0; i < n; ++i) {
      const auto sku = "pas-" + std::to_string(i);
      products.push_back(json_request("PUT", "/admin/v1/products/" + sku,
                                      product_body({.sku = sku,
                                                    .name = "Passive " + std::to_string(i),
                                                    .category = "idle",
                                                    .price_cents = 100 + i})));
      stocks.push_back(json_request("POST", "/admin/v1/products/" + sku + "/stock",
                                    "{\"set\":" + std::to_string(i * 3) + "}"));
      product_targets.push_back("/api/v1/products/" + sku);
      stock_targets.push_back("/admin/v1/products/" + sku + "/stock");
    }
    for (const auto& r : send_all(node.admin_port(), products)) {
      REQUIRE_MESSAGE(r.status == 200, describe(r));
    }
    for (const auto& r : send_all(node.admin_port(), stocks)) {
      REQUIRE_MESSAGE(r.status == 200, describe(r));
    }
    // A cart with a customer and no lines (a line's hold keeps its SKU active).
    const auto cart = a.create_cart("idle-customer");
    const auto cart_before = json::serialize(a.cart(cart));

    const auto product_before = get_all(node.http_port(), product_targets);
    const auto stock_before = get_all(node.admin_port(), stock_targets);
    for (int i = 0; i < n; ++i) {
      check_stock(parse_json(stock_before[i]), i * 3, 0, 0);
    }

    // Everything goes idle.
    CHECK(wait_for_metric(a, skus_active, 0, 15s) == 0);
    CHECK(wait_for_metric(a, carts_active, 0, 15s) == 0);

    // Touch every SKU: they come back with what they had...
    CHECK(get_all(node.http_port(), product_targets) == product_before);
    const double touched = a.metric(skus_active);
    MESSAGE(touched << " SKU actors active right after touching " << n);
    CHECK(touched > 0);
    // ...and go idle again.
    CHECK(wait_for_metric(a, skus_active, 0, 15s) == 0);

    // The state is unchanged after passivation.
    CHECK(get_all(node.admin_port(), stock_targets) == stock_before);
    CHECK(get_all(node.http_port(), product_targets) == product_before);
    CHECK(json::serialize(a.cart(cart)) == cart_before);

    // Passivated SKUs still take holds, on top of their old stock.
    auto r = a.put_item(cart, "pas-7", 2);
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    check_stock(a.stock("pas-7"), 21, 2, 0);
    CHECK(int_of(a.product("pas-7"), "available") == 19);
    const auto with_line = json::serialize(a.cart(cart));

    // The hold expires (holds.ttl 2 s); then the SKU and the cart passivate too, and come back
    // with the hold gone from the stock and the line still in the cart.
    CHECK(wait_for_metric(a, skus_active, 0, 15s) == 0);
    CHECK(wait_for_metric(a, carts_active, 0, 15s) == 0);
    check_stock(a.stock("pas-7"), 21, 0, 0);
    CHECK(json::serialize(a.cart(cart)) == with_line);
  }

} // TEST_SUITE

} // namespace surge::itest
