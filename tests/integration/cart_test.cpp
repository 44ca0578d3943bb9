// Cart semantics of API.md: PUT sets a line to exactly qty (growing or shrinking its hold),
// 0 removes it, a 409 leaves the cart as it was, per-customer limits span carts.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>

#include "api.hpp"

namespace surge::itest {

namespace {

int64_t total_of_prices(const std::map<std::string, int64_t>& price) {
  int64_t sum = 0;
  for (const auto& [sku, cents] : price) {
    sum += cents;
  }
  return sum;
}

} // namespace

TEST_SUITE("cart") {

  TEST_CASE("cart lines: grow, shrink, remove, delete, 409 leaves the cart as it was") {
    node_process node;
    api a{node};
    a.add_product({.sku = "mug", .name = "Mug", .category = "kitchen", .price_cents = 1250}, 10);
    a.add_product({.sku = "rare", .name = "Rare", .price_cents = 99900}, 1);

    // A new cart: 201 with exactly the fields of API.md and no items.
    auto created = a.store().post("/api/v1/carts", R"({"customer_id":"alice"})");
    REQUIRE_MESSAGE(created.status == 201, describe(created));
    auto cart0 = parse_json(created.body);
    CHECK(keys_of(cart0) ==
          std::vector<std::string>{"cart_id", "currency", "customer_id", "items", "total_cents"});
    const auto cart = str_of(cart0, "cart_id");
    CHECK(str_of(cart0, "customer_id") == "alice");
    CHECK(array_of(cart0, "items").empty());
    CHECK(int_of(cart0, "total_cents") == 0);
    CHECK(json::serialize(a.cart(cart)) == json::serialize(cart0));

    SUBCASE("qty 3 then qty 1 shrinks the hold; qty 0 removes the line") {
      auto r = a.put_item(cart, "mug", 3);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      auto c = parse_json(r.body);
      const auto* line = line_of(c, "mug");
      REQUIRE(line != nullptr);
      CHECK(keys_of(*line) ==
            std::vector<std::string>{"hold_expires_at", "hold_id", "price_cents", "qty", "sku"});
      CHECK(int_of(*line, "qty") == 3);
      CHECK(int_of(*line, "price_cents") == 1250);
      CHECK(!str_of(*line, "hold_id").empty());
      // The hold ends holds.ttl (default 600 s) after it was taken.
      const auto expires = parse_rfc3339_ms(str_of(*line, "hold_expires_at"));
      REQUIRE_MESSAGE(expires.has_value(), str_of(*line, "hold_expires_at"));
      CHECK(*expires > wall_ms() + 590'000);
      CHECK(*expires < wall_ms() + 610'000);
      CHECK(int_of(c, "total_cents") == 3 * 1250);
      CHECK(str_of(c, "currency") == "USD");
      check_stock(a.stock("mug"), 10, 3, 0);
      CHECK(int_of(a.product("mug"), "available") == 7);

      r = a.put_item(cart, "mug", 1);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      c = parse_json(r.body);
      REQUIRE(line_of(c, "mug") != nullptr);
      CHECK(int_of(line_at(c, "mug"), "qty") == 1);
      CHECK(int_of(c, "total_cents") == 1250);
      check_stock(a.stock("mug"), 10, 1, 0); // held went down by 2
      CHECK(json::serialize(a.cart(cart)) == json::serialize(c));

      // Setting the same qty again changes nothing.
      r = a.put_item(cart, "mug", 1);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      check_stock(a.stock("mug"), 10, 1, 0);

      r = a.put_item(cart, "mug", 0);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      c = parse_json(r.body);
      CHECK(line_of(c, "mug") == nullptr);
      CHECK(array_of(c, "items").empty());
      CHECK(int_of(c, "total_cents") == 0);
      check_stock(a.stock("mug"), 10, 0, 0);
      CHECK(line_of(a.cart(cart), "mug") == nullptr);
    }

    SUBCASE("DELETE removes a line and releases its hold; DELETE of a missing line is 404") {
      check_error(a.store().del("/api/v1/carts/" + cart + "/items/mug"), 404, "not_found");
      auto r = a.put_item(cart, "mug", 4);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      check_stock(a.stock("mug"), 10, 4, 0);
      r = a.store().del("/api/v1/carts/" + cart + "/items/mug");
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      CHECK(line_of(parse_json(r.body), "mug") == nullptr);
      CHECK(line_of(a.cart(cart), "mug") == nullptr);
      check_stock(a.stock("mug"), 10, 0, 0);
      check_error(a.store().del("/api/v1/carts/" + cart + "/items/mug"), 404, "not_found");
      check_error(a.store().del("/api/v1/carts/" + cart + "/items/no-such-sku"), 404, "not_found");
      check_error(a.store().del("/api/v1/carts/c_nonexistent/items/mug"), 404, "not_found");
    }

    SUBCASE("a 409 leaves the cart exactly as it was") {
      auto r = a.put_item(cart, "mug", 2);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      const auto before = json::serialize(a.cart(cart));

      // Someone else takes the only unit of "rare".
      const auto other = a.create_cart();
      r = a.put_item(other, "rare", 1);
      REQUIRE_MESSAGE(r.status == 200, describe(r));

      check_error(a.put_item(cart, "rare", 1), 409, "sold_out");
      CHECK(json::serialize(a.cart(cart)) == before);
      // Growing an existing line beyond the stock: the line keeps its qty and its hold.
      check_error(a.put_item(cart, "mug", 11), 409, "sold_out");
      CHECK(json::serialize(a.cart(cart)) == before);
      check_stock(a.stock("mug"), 10, 2, 0);
      check_stock(a.stock("rare"), 1, 1, 0);
      // Exactly the rest of the stock still fits.
      r = a.put_item(cart, "mug", 10);
      CHECK_MESSAGE(r.status == 200, describe(r));
      check_stock(a.stock("mug"), 10, 10, 0);
    }

    SUBCASE("lines of several SKUs add up") {
      REQUIRE(a.put_item(cart, "mug", 2).status == 200);
      REQUIRE(a.put_item(cart, "rare", 1).status == 200);
      auto c = a.cart(cart);
      CHECK(array_of(c, "items").size() == 2);
      CHECK(int_of(c, "total_cents") == 2 * 1250 + 99900);
      CHECK(str_of(line_at(c, "mug"), "hold_id") != str_of(line_at(c, "rare"), "hold_id"));
    }

    SUBCASE("unknown SKU and unknown cart are 404") {
      check_error(a.put_item(cart, "no-such-sku", 1), 404, "not_found");
      CHECK(array_of(a.cart(cart), "items").empty());
      check_error(a.put_item("c_0123456789abcdef", "mug", 1), 404, "not_found");
      check_error(a.store().get("/api/v1/carts/c_0123456789abcdef"), 404, "not_found");
      check_error(a.store().get("/api/v1/carts/no-such-cart"), 404, "not_found");
      check_stock(a.stock("mug"), 10, 0, 0);
    }
  }

  TEST_CASE("per_customer_limit spans every cart of one customer_id") {
    node_process node;
    api a{node};
    a.add_product({.sku = "lim", .name = "Limited", .price_cents = 500, .per_customer_limit = 2},
                  100);
    CHECK(int_of(a.product("lim"), "per_customer_limit") == 2);

    const auto c1 = a.create_cart("cust-7");
    const auto c2 = a.create_cart("cust-7");
    const auto c3 = a.create_cart("cust-8");

    check_error(a.put_item(c1, "lim", 3), 409, "limit_exceeded");
    CHECK(array_of(a.cart(c1), "items").empty());

    auto r = a.put_item(c1, "lim", 2);
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    const auto before = json::serialize(a.cart(c2));
    check_error(a.put_item(c2, "lim", 1), 409, "limit_exceeded");
    CHECK(json::serialize(a.cart(c2)) == before);
    check_stock(a.stock("lim"), 100, 2, 0);

    // Another customer has their own allowance.
    r = a.put_item(c3, "lim", 2);
    CHECK_MESSAGE(r.status == 200, describe(r));

    // Shrinking one cart frees allowance for the other.
    r = a.put_item(c1, "lim", 1);
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    r = a.put_item(c2, "lim", 1);
    CHECK_MESSAGE(r.status == 200, describe(r));
    check_error(a.put_item(c2, "lim", 2), 409, "limit_exceeded");
    CHECK(int_of(line_at(a.cart(c2), "lim"), "qty") == 1);
    check_stock(a.stock("lim"), 100, 4, 0);
  }

  TEST_CASE("concurrent PUTs on one cart: every line ends equal to its SKU's hold") {
    constexpr int skus = 20;
    constexpr int puts_per_sku = 12;
    node_process node;
    api a{node};
    std::map<std::string, int64_t> price;
    for (int i = 0; i < skus; ++i) {
      const auto sku = "cc-" + std::to_string(i);
      price[sku] = 100 + i;
      a.add_product({.sku = sku, .name = sku, .price_cents = price[sku]}, 1000);
    }
    const auto cart = a.create_cart("racer");

    // Many PUTs of each SKU with assorted quantities (0 included), all in flight at once.
    std::mt19937 rng{12345};
    std::vector<request> puts;
    for (int k = 0; k < puts_per_sku; ++k) {
      for (int i = 0; i < skus; ++i) {
        const auto qty = std::uniform_int_distribution<int>{0, 6}(rng);
        puts.push_back(json_request("PUT",
                                    "/api/v1/carts/" + cart + "/items/cc-" + std::to_string(i),
                                    "{\"qty\":" + std::to_string(qty) + "}"));
      }
    }
    for (const auto& r : send_all(a.store_port(), puts)) {
      CHECK_MESSAGE(r.status == 200, describe(r));
    }

    const auto c = a.cart(cart);
    int64_t total = 0;
    for (const auto& [sku, cents] : price) {
      INFO(sku << " in " << json::serialize(c));
      const auto held = int_of(a.stock(sku), "held");
      const auto* line = line_of(c, sku);
      const int64_t qty = line != nullptr ? int_of(*line, "qty") : 0;
      CHECK(qty == held);
      CHECK(qty <= 6);
      total += qty * cents;
    }
    CHECK(int_of(c, "total_cents") == total);

    // And each line can still be set exactly afterwards.
    for (const auto& [sku, cents] : price) {
      REQUIRE(a.put_item(cart, sku, 2).status == 200);
      CHECK(int_of(a.stock(sku), "held") == 2);
    }
    CHECK(int_of(a.cart(cart), "total_cents") == 2 * total_of_prices(price));
  }

} // TEST_SUITE

} // namespace surge::itest
