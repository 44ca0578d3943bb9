// The catalog: product JSON as API.md has it, the cached product page, and the filtered,
// paged product listing.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

struct seeded {
  product_spec spec;
  int64_t stock = 0; ///< 0: stock never set
};

/// 23 products in three categories; "Zephyr" appears in two names and one description.
std::vector<seeded> catalog() {
  std::vector<seeded> out;
  const char* categories[] = {"hats", "shoes", "bags"};
  for (int i = 1; i <= 23; ++i) {
    seeded s;
    char sku[16];
    std::snprintf(sku, sizeof(sku), "cat-%02d", i);
    s.spec.sku = sku;
    s.spec.category = categories[i % 3];
    s.spec.name = "Item " + std::to_string(i);
    s.spec.description = "plain description " + std::to_string(i);
    s.spec.price_cents = 500 * i; // 500 .. 11500
    s.spec.per_customer_limit = i % 4;
    s.stock = i % 5 == 0 ? 0 : i; // every fifth has none
    out.push_back(s);
  }
  out[2].spec.name = "Zephyr Runner";
  out[10].spec.name = "Blue Zephyr Cap";
  out[17].spec.description = "light as a zephyr breeze";
  out[5].spec.currency = "EUR";
  return out;
}

/// Pages through GET `query` (without limit/cursor) with `limit`; REQUIREs that no product
/// comes twice and that it ends within a bounded number of pages. Returns the SKUs in order.
std::vector<std::string> list_all(api& a, const std::string& query, int limit,
                                  std::map<std::string, json::value>* items = nullptr) {
  std::vector<std::string> skus;
  std::set<std::string> seen;
  std::string cursor;
  for (int page = 0;; ++page) {
    REQUIRE_MESSAGE(page < 100, "paging does not end: " << query);
    std::string target =
        "/api/v1/products?" + query + (query.empty() ? "" : "&") + "limit=" + std::to_string(limit);
    if (!cursor.empty()) {
      target += "&cursor=" + cursor;
    }
    auto r = a.store().get(target);
    REQUIRE_MESSAGE(r.status == 200, target << ": " << describe(r));
    const auto body = parse_json(r.body);
    CHECK(keys_of(body) == std::vector<std::string>{"items", "next_cursor"});
    const auto& page_items = array_of(body, "items");
    CHECK(page_items.size() <= static_cast<std::size_t>(limit));
    for (const auto& it : page_items) {
      const auto sku = str_of(it, "sku");
      CHECK_MESSAGE(seen.insert(sku).second, sku << " listed twice for " << query);
      skus.push_back(sku);
      if (items != nullptr) {
        (*items)[sku] = it;
      }
    }
    const auto& next = member(body, "next_cursor");
    if (next.is_null()) {
      break;
    }
    REQUIRE_MESSAGE(next.is_string(), "next_cursor is neither null nor a string");
    REQUIRE_MESSAGE(!page_items.empty(), "an empty page with a next_cursor");
    cursor = std::get<std::string>(next.get());
  }
  return skus;
}

template <class Pred>
std::set<std::string> expected(const std::vector<seeded>& all, Pred p) {
  std::set<std::string> out;
  for (const auto& s : all) {
    if (p(s)) {
      out.insert(s.spec.sku);
    }
  }
  return out;
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

} // namespace

TEST_SUITE("catalog") {

  TEST_CASE("product JSON, product page with ETag, listing with filters and paging") {
    node_process node;
    api a{node};
    const auto all = catalog();
    for (const auto& s : all) {
      const auto p = a.put_product(s.spec);
      CHECK(str_of(p, "sku") == s.spec.sku);
      if (s.stock > 0) {
        a.set_stock(s.spec.sku, s.stock);
      }
    }

    SUBCASE("product JSON has exactly API.md's fields") {
      for (const auto& s : all) {
        const auto p = a.product(s.spec.sku);
        INFO(json::serialize(p));
        CHECK(keys_of(p) == std::vector<std::string>{"available", "category", "currency",
                                                     "description", "name", "per_customer_limit",
                                                     "price_cents", "sku"});
        CHECK(str_of(p, "sku") == s.spec.sku);
        CHECK(str_of(p, "name") == s.spec.name);
        CHECK(str_of(p, "description") == s.spec.description);
        CHECK(str_of(p, "category") == s.spec.category);
        CHECK(int_of(p, "price_cents") == s.spec.price_cents);
        CHECK(str_of(p, "currency") == s.spec.currency);
        CHECK(int_of(p, "available") == s.stock);
        CHECK(int_of(p, "per_customer_limit") == s.spec.per_customer_limit);
      }
      check_error(a.store().get("/api/v1/products/no-such-sku"), 404, "not_found");

      // Unicode survives the round trip.
      const std::string name = "Caf\xc3\xa9 \xe2\x98\x95 \"quoted\" \\ back";
      a.put_product(
          {.sku = "uni", .name = name, .description = "line\nbreak\ttab", .price_cents = 100});
      const auto p = a.product("uni");
      CHECK(str_of(p, "name") == name);
      CHECK(str_of(p, "description") == "line\nbreak\ttab");
    }

    SUBCASE("product page: ETag, Cache-Control, 304 on If-None-Match, escaped HTML") {
      a.add_product(
          {.sku = "page", .name = "Salt & <b>Pepper</b>", .category = "spice", .price_cents = 1999},
          3);
      auto r = a.store().get("/p/page");
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      CHECK(r.header("content-type").find("text/html") == 0);
      const auto etag = r.header("etag");
      CHECK(!etag.empty());
      CHECK(!r.header("cache-control").empty());
      CHECK(r.body.find("Pepper") != std::string::npos);
      CHECK_MESSAGE(r.body.find("<b>Pepper</b>") == std::string::npos, "name not escaped");

      // The same page again: same ETag.
      auto again = a.store().get("/p/page");
      CHECK(again.header("etag") == etag);
      CHECK(again.body == r.body);

      auto cond = a.store().send(request{"GET", "/p/page", {}, {{"If-None-Match", etag}}});
      CHECK(cond.status == 304);
      CHECK(cond.body.empty());
      CHECK(cond.header("etag") == etag);
      cond = a.store().send(request{"GET", "/p/page", {}, {{"If-None-Match", "W/" + etag}}});
      CHECK(cond.status == 304);
      cond =
          a.store().send(request{"GET", "/p/page", {}, {{"If-None-Match", "\"other\", " + etag}}});
      CHECK(cond.status == 304);
      cond = a.store().send(request{"GET", "/p/page", {}, {{"If-None-Match", "\"other\""}}});
      CHECK(cond.status == 200);
      CHECK(cond.body == r.body);

      // What the page shows changes (stock): a new ETag, the old one no longer matches.
      a.set_stock("page", 2);
      cond = a.store().send(request{"GET", "/p/page", {}, {{"If-None-Match", etag}}});
      CHECK(cond.status == 200);
      CHECK(!cond.body.empty());
      CHECK(cond.header("etag") != etag);

      CHECK(a.store().get("/p/no-such-sku").status == 404);
    }

    SUBCASE("listing: every product once, filters, paging") {
      std::map<std::string, json::value> items;
      const auto everything = list_all(a, "", 7, &items);
      CHECK(as_set(everything) == expected(all, [](const seeded&) { return true; }));
      CHECK(everything.size() == all.size());
      for (const auto& s : all) {
        REQUIRE(items.count(s.spec.sku) == 1);
        CHECK(json::serialize(items[s.spec.sku]) == json::serialize(a.product(s.spec.sku)));
      }
      // Other page sizes visit the same set.
      CHECK(as_set(list_all(a, "", 1)) == as_set(everything));
      CHECK(as_set(list_all(a, "", 23)) == as_set(everything));
      CHECK(as_set(list_all(a, "", 100)) == as_set(everything));
      CHECK(as_set(list_all(a, "in_stock=false", 5)) == as_set(everything));

      CHECK(as_set(list_all(a, "q=Zephyr", 2)) ==
            std::set<std::string>{"cat-03", "cat-11", "cat-18"});
      CHECK(as_set(list_all(a, "q=nothing-matches-this", 5)).empty());
      CHECK(as_set(list_all(a, "category=bags", 3)) ==
            expected(all, [](const seeded& s) { return s.spec.category == "bags"; }));
      CHECK(as_set(list_all(a, "category=none", 3)).empty());
      CHECK(as_set(list_all(a, "min_price=2000&max_price=5000", 4)) ==
            expected(all, [](const seeded& s) {
              return s.spec.price_cents >= 2000 && s.spec.price_cents <= 5000;
            }));
      CHECK(as_set(list_all(a, "min_price=10000", 4)) ==
            expected(all, [](const seeded& s) { return s.spec.price_cents >= 10000; }));
      CHECK(as_set(list_all(a, "max_price=1000", 4)) ==
            expected(all, [](const seeded& s) { return s.spec.price_cents <= 1000; }));
      CHECK(as_set(list_all(a, "in_stock=true", 4)) ==
            expected(all, [](const seeded& s) { return s.stock > 0; }));
      CHECK(as_set(list_all(a, "category=shoes&in_stock=true&min_price=3000", 2)) ==
            expected(all, [](const seeded& s) {
              return s.spec.category == "shoes" && s.stock > 0 && s.spec.price_cents >= 3000;
            }));

      // SKUs of every allowed character class page in a consistent order.
      std::set<std::string> tricky{"A-1",
                                   "a.1",
                                   "a_1",
                                   "B",
                                   "a",
                                   "Z9",
                                   "z-9",
                                   "0",
                                   "9.9",
                                   "_x",
                                   "-y",
                                   ".z",
                                   std::string(64, 'm')};
      for (const auto& sku : tricky) {
        a.put_product(
            {.sku = sku, .name = "Tricky " + sku, .category = "tricky", .price_cents = 100});
      }
      for (int limit : {1, 2, 5}) {
        CAPTURE(limit);
        CHECK(as_set(list_all(a, "category=tricky", limit)) == tricky);
      }
      CHECK(as_set(list_all(a, "", 3)).size() == all.size() + tricky.size());

      // A hold makes the listing's available go down; selling out drops it from in_stock=true.
      const auto cart = a.create_cart();
      REQUIRE(a.put_item(cart, "cat-01", 1).status == 200);
      std::map<std::string, json::value> after;
      const auto in_stock = list_all(a, "in_stock=true", 50, &after);
      CHECK(std::find(in_stock.begin(), in_stock.end(), "cat-01") == in_stock.end());
      CHECK(after.count("cat-01") == 0);
      CHECK(int_of(after["cat-02"], "available") == 2);
    }

    SUBCASE("bad listing parameters are 400") {
      for (const char* q :
           {"limit=0", "limit=101", "limit=abc", "limit=-1", "limit=1.5", "min_price=-1",
            "min_price=abc", "max_price=1.5", "max_price=1e3", "in_stock=maybe", "in_stock=yes",
            "cursor=%2F%2F", "cursor=a%20b", "limit=99999999999999999999", "min_price=%zz"}) {
        INFO(q);
        check_error(a.store().get(std::string{"/api/v1/products?"} + q), 400, "bad_request");
      }
    }
  }

} // TEST_SUITE

} // namespace surge::itest
