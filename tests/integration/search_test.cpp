// Product search and categories (API.md "Search and catalog"): the response shape, the
// relevance rules of issue 15 on a small hand-made catalog, sorts, filters, facets and totals,
// paging while the catalog changes, caching headers and every bad parameter.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "api.hpp"

namespace surge::itest {

namespace {

struct seeded {
  product_spec spec;
  int64_t stock = 0;
};

std::vector<seeded> shop() {
  auto p = [](const char* sku, const char* name, const char* description, const char* category,
              int64_t price, int64_t stock) {
    return seeded{product_spec{.sku = sku,
                               .name = name,
                               .description = description,
                               .category = category,
                               .price_cents = price},
                  stock};
  };
  return {
      p("PS5-BF", "PlayStation 5 Console", "Sony PlayStation 5 with a DualSense controller.",
        "consoles", 49999, 10),
      p("XBX-SX", "Xbox Series X", "Microsoft's console with a 1 TB drive.", "consoles", 47999, 5),
      p("NSW-OLED", "Nintendo Switch OLED", "Handheld and docked play on a 7 inch screen.",
        "consoles", 34999, 0),
      p("RUN-01", "Trail Runner Shoes", "Lightweight running shoes with grippy soles for trails.",
        "shoes", 8999, 4),
      p("RUN-02", "Road Running Shoe", "Cushioned shoe for running on asphalt.", "shoes", 12999, 3),
      p("CAP-01", "Baseball Cap", "A cotton cap, good for running in the sun.", "hats", 1999, 9),
      p("HP-01", "Wireless Headphones", "Noise cancelling over-ear headphones, 30 h battery.",
        "audio", 19999, 7),
      p("HP-02", "Wired Earbuds", "Compact earbuds with a microphone.", "audio", 1499, 2),
      p("BK-01", "Playing the Long Game", "A book about patience in business.", "books", 2499, 6),
      p("SALT-1", "Salt & <b>Shaker</b>", "A <script>shaker</script> for the table.", "kitchen",
        999, 1),
  };
}

json::value get_json(api& a, const std::string& target, int status = 200) {
  auto r = a.store().get(target);
  REQUIRE_MESSAGE(r.status == status, target << ": " << describe(r));
  return parse_json(r.body);
}

std::vector<std::string> skus_of(const json::value& body) {
  std::vector<std::string> out;
  for (const auto& it : array_of(body, "items")) {
    out.push_back(str_of(it, "sku"));
  }
  return out;
}

std::vector<std::string> search(api& a, const std::string& query) {
  return skus_of(get_json(a, "/api/v1/search?" + query));
}

bool in_top(const std::vector<std::string>& skus, const std::string& sku, std::size_t n) {
  auto i = std::find(skus.begin(), skus.end(), sku);
  return i != skus.end() && static_cast<std::size_t>(i - skus.begin()) < n;
}

double score_of(const json::value& item) {
  const auto& s = member(item, "score");
  REQUIRE(s.is_number());
  return s.is_int() ? static_cast<double>(std::get<int64_t>(s.get())) : std::get<double>(s.get());
}

/// Pages through GET /api/v1/search?`query`&limit=`limit`; REQUIREs bounded paging. `between`
/// runs after each page (to change the catalog while paging).
template <class F>
std::vector<std::string> search_all(api& a, const std::string& query, int limit, F between) {
  std::vector<std::string> out;
  std::string cursor;
  for (int page = 0;; ++page) {
    REQUIRE_MESSAGE(page < 100, "paging does not end: " << query);
    auto target = "/api/v1/search?" + query + "&limit=" + std::to_string(limit);
    if (!cursor.empty()) {
      target += "&cursor=" + cursor;
    }
    const auto body = get_json(a, target);
    for (const auto& sku : skus_of(body)) {
      out.push_back(sku);
    }
    between(page);
    const auto& next = member(body, "next_cursor");
    if (next.is_null()) {
      break;
    }
    REQUIRE(next.is_string());
    cursor = std::get<std::string>(next.get());
  }
  return out;
}

} // namespace

TEST_SUITE("search") {

  TEST_CASE("search: shape, relevance, sorts, filters, facets, paging, caching, bad input") {
    node_process node;
    api a{node};
    const auto all = shop();
    for (const auto& s : all) {
      a.put_product(s.spec);
      if (s.stock > 0) {
        a.set_stock(s.spec.sku, s.stock);
      }
    }

    SUBCASE("the response has API.md's members; items are products with a score") {
      const auto body = get_json(a, "/api/v1/search?q=console&facets=category,price");
      CHECK(keys_of(body) == std::vector<std::string>{"facets", "items", "next_cursor", "total"});
      const auto& items = array_of(body, "items");
      REQUIRE(!items.empty());
      for (const auto& it : items) {
        auto keys = keys_of(it);
        keys.erase(std::remove(keys.begin(), keys.end(), "highlight"), keys.end());
        CHECK(keys == std::vector<std::string>{"available", "category", "currency", "description",
                                               "name", "per_customer_limit", "price_cents", "score",
                                               "sku"});
        const auto product = a.product(str_of(it, "sku"));
        CHECK(int_of(it, "available") == int_of(product, "available"));
        CHECK(int_of(it, "price_cents") == int_of(product, "price_cents"));
      }
      for (std::size_t i = 1; i < items.size(); ++i) {
        CHECK(score_of(items[i - 1]) >= score_of(items[i]));
      }
      CHECK(keys_of(member(body, "facets")) == std::vector<std::string>{"category", "price"});
      CHECK(int_of(body, "total") >= static_cast<int64_t>(items.size()));

      const auto none = get_json(a, "/api/v1/search?q=console");
      CHECK(keys_of(member(none, "facets")).empty());
    }

    SUBCASE("relevance: sku, name over description, stemming, prefix, typos, phrases, -word") {
      CHECK(search(a, "q=PS5-BF").front() == "PS5-BF");
      CHECK(search(a, "q=ps5-bf").front() == "PS5-BF");
      CHECK(in_top(search(a, "q=ps5"), "PS5-BF", 1));
      CHECK(search(a, "q=playstation").front() == "PS5-BF");
      CHECK(in_top(search(a, "q=play"), "PS5-BF", 3));
      CHECK(in_top(search(a, "q=plays"), "PS5-BF", 1));
      CHECK(search(a, "q=playstaton").front() == "PS5-BF");
      CHECK(in_top(search(a, "q=headphnes"), "HP-01", 1));
      // Running in two names and one description: the names first.
      auto running = search(a, "q=running");
      REQUIRE(running.size() >= 3);
      CHECK(std::set<std::string>{running[0], running[1]} ==
            std::set<std::string>{"RUN-01", "RUN-02"});
      CHECK(in_top(running, "CAP-01", 3));
      // Stemming: "shoes" finds "Shoe", "runs" finds "Running".
      CHECK(in_top(search(a, "q=shoes"), "RUN-02", 2));
      CHECK(in_top(search(a, "q=runs"), "RUN-02", 3));
      // Several words: all of them.
      CHECK(search(a, "q=wireless%20headphones").front() == "HP-01");
      // A phrase, and an excluded word.
      CHECK(search(a, "q=%22trail%20runner%22").front() == "RUN-01");
      auto no_trail = search(a, "q=running%20shoes%20-trail");
      CHECK(std::find(no_trail.begin(), no_trail.end(), "RUN-01") == no_trail.end());
      CHECK(in_top(no_trail, "RUN-02", 1));
      CHECK(search(a, "q=qqqzzzxxx").empty());
    }

    SUBCASE("highlight marks the match and never lets product HTML through") {
      const auto body = get_json(a, "/api/v1/search?q=shaker");
      const auto& items = array_of(body, "items");
      REQUIRE(!items.empty());
      CHECK(str_of(items[0], "sku") == "SALT-1");
      const auto h = str_of(items[0], "highlight");
      CHECK(h.find("<em>") != std::string::npos);
      CHECK(h.find("<b>") == std::string::npos);
      CHECK(h.find("<script>") == std::string::npos);
    }

    SUBCASE("sorts") {
      auto prices = [&](const std::string& q) {
        std::vector<int64_t> out;
        const auto body = get_json(a, "/api/v1/search?limit=100&" + q);
        for (const auto& it : array_of(body, "items")) {
          out.push_back(int_of(it, "price_cents"));
        }
        return out;
      };
      auto up = prices("sort=price_asc");
      CHECK(up.size() == all.size());
      CHECK(std::is_sorted(up.begin(), up.end()));
      auto down = prices("sort=price_desc");
      CHECK(std::is_sorted(down.rbegin(), down.rend()));
      std::vector<std::string> names;
      const auto by_name = get_json(a, "/api/v1/search?limit=100");
      for (const auto& it : array_of(by_name, "items")) {
        names.push_back(str_of(it, "name"));
        CHECK(score_of(it) == 0);
      }
      CHECK(std::is_sorted(names.begin(), names.end()));
      a.put_product({.sku = "NEW-1", .name = "Zebra Plush", .category = "toys", .price_cents = 5});
      CHECK(search(a, "sort=newest").front() == "NEW-1");
      CHECK(search(a, "q=console&sort=price_asc").front() == "NSW-OLED");
    }

    SUBCASE("filters, facets and total") {
      CHECK(search(a, "q=console&category=consoles&max_price=40000") ==
            std::vector<std::string>{"NSW-OLED"});
      auto in_stock = search(a, "category=consoles&in_stock=true");
      CHECK(std::set<std::string>(in_stock.begin(), in_stock.end()) ==
            std::set<std::string>{"PS5-BF", "XBX-SX"});
      const auto body = get_json(a, "/api/v1/search?facets=category,price&limit=1");
      CHECK(int_of(body, "total") == static_cast<int64_t>(all.size()));
      std::map<std::string, int64_t> cats;
      for (const auto& c : array_of(member(body, "facets"), "category")) {
        cats[str_of(c, "value")] = int_of(c, "count");
      }
      CHECK(cats == std::map<std::string, int64_t>{{"audio", 2},
                                                   {"books", 1},
                                                   {"consoles", 3},
                                                   {"hats", 1},
                                                   {"kitchen", 1},
                                                   {"shoes", 2}});
      int64_t priced = 0;
      for (const auto& b : array_of(member(body, "facets"), "price")) {
        CHECK(int_of(b, "count") > 0);
        const auto lo = int_of(b, "min");
        const auto& hi = member(b, "max");
        int64_t n = 0;
        for (const auto& s : all) {
          n += s.spec.price_cents >= lo &&
               (hi.is_null() || s.spec.price_cents < std::get<int64_t>(hi.get()));
        }
        CHECK(n == int_of(b, "count"));
        priced += n;
      }
      CHECK(priced == static_cast<int64_t>(all.size()));
      // Facets count what matches, not what the page shows.
      const auto shoes = get_json(a, "/api/v1/search?q=running&facets=category&limit=1");
      std::map<std::string, int64_t> shoe_cats;
      for (const auto& c : array_of(member(shoes, "facets"), "category")) {
        shoe_cats[str_of(c, "value")] = int_of(c, "count");
      }
      CHECK(shoe_cats["shoes"] == 2);
      CHECK(shoe_cats["hats"] == 1);
    }

    SUBCASE("paging visits every product once while the catalog changes") {
      std::set<std::string> before;
      for (const auto& s : all) {
        before.insert(s.spec.sku);
      }
      for (const char* sort : {"name", "price_asc", "price_desc", "newest"}) {
        CAPTURE(sort);
        int added = 0;
        auto seen = search_all(a, std::string{"sort="} + sort, 3, [&](int page) {
          // New products everywhere in the order, and one old product's price changed.
          a.put_product({.sku = std::string{"ADD-"} + sort + std::to_string(page),
                         .name = page % 2 ? "Aardvark" : "Zz top",
                         .category = "new",
                         .price_cents = page % 2 ? 1 : 99999999});
          ++added;
        });
        std::map<std::string, int> count;
        for (const auto& sku : seen) {
          ++count[sku];
        }
        for (const auto& [sku, n] : count) {
          CHECK_MESSAGE(n == 1, sku << " came " << n << " times");
        }
        for (const auto& sku : before) {
          CHECK_MESSAGE(count.count(sku) == 1, sku << " was skipped");
        }
      }
      // A cursor of one query is refused by another.
      const auto first = get_json(a, "/api/v1/search?q=running&limit=1");
      const auto cursor = std::get<std::string>(member(first, "next_cursor").get());
      check_error(a.store().get("/api/v1/search?q=shoes&limit=1&cursor=" + cursor), 400,
                  "bad_request");
      CHECK(get_json(a, "/api/v1/search?q=running&limit=1&cursor=" + cursor).is_object());
    }

    SUBCASE("categories with counts") {
      const auto body = get_json(a, "/api/v1/categories");
      CHECK(keys_of(body) == std::vector<std::string>{"items"});
      std::vector<std::string> names;
      for (const auto& c : array_of(body, "items")) {
        CHECK(keys_of(c) == std::vector<std::string>{"category", "count"});
        names.push_back(str_of(c, "category"));
        int64_t n = 0;
        for (const auto& s : all) {
          n += s.spec.category == str_of(c, "category");
        }
        CHECK(n == int_of(c, "count"));
      }
      CHECK(names.size() == 6);
      CHECK(std::is_sorted(names.begin(), names.end()));
      check_error(a.store().get("/api/v1/categories?x=1"), 400, "bad_request");
    }

    SUBCASE("listing, search and categories carry ETag and Cache-Control; 304 on a match") {
      for (const char* target :
           {"/api/v1/search?q=console", "/api/v1/products?category=shoes", "/api/v1/categories"}) {
        CAPTURE(target);
        auto r = a.store().get(target);
        REQUIRE(r.status == 200);
        const auto etag = r.header("etag");
        CHECK(!etag.empty());
        CHECK(r.header("cache-control").find("max-age=1") != std::string::npos);
        auto cond = a.store().send(request{"GET", target, {}, {{"If-None-Match", etag}}});
        CHECK(cond.status == 304);
        CHECK(cond.body.empty());
        CHECK(cond.header("etag") == etag);
        cond = a.store().send(request{"GET", target, {}, {{"If-None-Match", "\"nope\""}}});
        CHECK(cond.status == 200);
        CHECK(cond.body == r.body);
      }
      // A stock change by the admin shows at once (the node drops what it cached).
      const auto before = get_json(a, "/api/v1/search?q=xbox");
      CHECK(int_of(array_of(before, "items")[0], "available") == 5);
      a.set_stock("XBX-SX", 0);
      const auto after = get_json(a, "/api/v1/search?q=xbox");
      CHECK(int_of(array_of(after, "items")[0], "available") == 0);
      CHECK(search(a, "q=xbox&in_stock=true").empty());
    }

    SUBCASE("bad parameters are 400 naming them") {
      const std::vector<std::pair<std::string, std::string>> bad{
          {"sort=price", "sort"},
          {"facets=brand", "facets"},
          {"facets=category,colour", "facets"},
          {"limit=0", "limit"},
          {"limit=101", "limit"},
          {"limit=x", "limit"},
          {"min_price=-1", "min_price"},
          {"max_price=abc", "max_price"},
          {"min_price=500&max_price=100", "min_price"},
          {"in_stock=maybe", "in_stock"},
          {"cursor=not%20a%20cursor", "cursor"},
          {"cursor=AAAA", "cursor"},
          {"colour=red", "colour"},
          {"q=a&q=b", "q"},
          {"q=" + std::string(201, 'a'), "q"},
      };
      for (const auto& [query, name] : bad) {
        CAPTURE(query);
        auto r = a.store().get("/api/v1/search?" + query);
        check_error(r, 400, "bad_request");
        CHECK(r.body.find(name) != std::string::npos);
      }
      for (const char* query : {"sort=price", "facets=category", "colour=red", "q=a&q=b"}) {
        CAPTURE(query);
        check_error(a.store().get(std::string{"/api/v1/products?"} + query), 400, "bad_request");
      }
      // Odd but valid text is fine.
      for (const char* q : {"%22", "-", "%22unclosed", "a%20%7C%20b", "!!!", "(x", "%26", "'",
                            "%5C", "::*", "%20"}) {
        CAPTURE(q);
        auto r = a.store().get(std::string{"/api/v1/search?q="} + q);
        CHECK_MESSAGE(r.status == 200, describe(r));
      }
    }
  }

  TEST_CASE("search.stock_lag=0: no cache, and holds show in search at once") {
    node_process node{node_config{.extra = {"--search.stock_lag=0s"}}};
    api a{node};
    a.add_product({.sku = "LAG-1", .name = "Lag Lamp", .category = "lamps", .price_cents = 100}, 2);
    auto r = a.store().get("/api/v1/search?q=lamp");
    REQUIRE(r.status == 200);
    CHECK(r.header("cache-control").find("no-cache") != std::string::npos);
    CHECK(int_of(array_of(parse_json(r.body), "items")[0], "available") == 2);
    const auto cart = a.create_cart();
    REQUIRE(a.put_item(cart, "LAG-1", 2).status == 200);
    auto after = parse_json(a.store().get("/api/v1/search?q=lamp").body);
    CHECK(int_of(array_of(after, "items")[0], "available") == 0);
    CHECK(search(a, "q=lamp&in_stock=true").empty());
  }

  TEST_CASE("catalog.max_queued: reads past the queue's bound are 503 with Retry-After at once") {
    // One catalog thread, one read allowed in the queue, no cache (each search reads).
    node_process node{node_config{
        .extra = {"--storage.threads=1", "--catalog.max_queued=1", "--search.stock_lag=0s"}}};
    api a{node};
    a.add_product({.sku = "Q-1", .name = "Queue Quilt", .category = "q", .price_cents = 100}, 1);
    REQUIRE(a.store().get("/api/v1/search?q=quilt").status == 200);

    // The products table locked: the next catalog read waits in PostgreSQL, holding the one slot.
    pqxx::connection pg{node.database_url()};
    pqxx::work lock{pg};
    lock.exec("LOCK TABLE products IN ACCESS EXCLUSIVE MODE");
    response first;
    std::thread t{[&] {
      http_client c{node.http_port(), std::chrono::seconds{15}};
      first = c.get("/api/v1/search?q=first");
    }};
    REQUIRE_MESSAGE(wait_for_lock_waiter(node.database_url()),
                    "the node's catalog read never waited for the test's lock");

    // Distinct searches (a flood of them would be the same): refused at once, not queued.
    for (const char* q : {"second", "third", "fourth"}) {
      CAPTURE(q);
      auto r = a.store().get(std::string{"/api/v1/search?q="} + q);
      check_error(r, 503, "unavailable");
      CHECK(r.header("retry-after") == "1");
      CHECK(a.store().get("/api/v1/categories").status == 503);
    }
    lock.abort();
    t.join();
    CHECK_MESSAGE(first.status == 200, describe(first));
    // The slot is free again.
    CHECK(a.store().get("/api/v1/search?q=quilt").status == 200);
    CHECK(a.store().get("/api/v1/products?category=q").status == 200);
  }

} // TEST_SUITE

} // namespace surge::itest
