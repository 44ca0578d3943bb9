// The catalog read port's behaviour, once, against every backend: it lists what journal
// commits wrote (products and the stock projection).

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "journal_helpers.hpp"

using namespace surge::persistence;
using surge::test::fake_backend;
using surge::test::pg_backend;
using namespace surge::test::journal_helpers;

#define BACKENDS fake_backend, pg_backend

TEST_CASE_TEMPLATE("catalog: list_products filters and pages", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
  auto c = backend.catalog();
  std::vector<commit_request> batch;
  auto add = [&](product_record p, std::optional<int64_t> available) {
    auto r = req("sku:" + p.sku, 1);
    if (available) {
      r.stock = stock_record{p.sku, *available + 3, 2, 1};
    }
    r.product = std::move(p);
    batch.push_back(std::move(r));
  };
  add(product("A1", "Red running shoe", "shoes", 5000, "light and fast"), 5);
  add(product("A2", "Blue running shoe", "shoes", 6000), 0);
  add(product("A3", "Red hat", "hats", 1500, "wool"), 2);
  add(product("A4", "Green hat", "hats", 2500), std::nullopt);
  add(product("A5", "Red scarf", "scarves", 3500, "soft red wool"), 1);
  add(product("B1", "Kettle", "kitchen", 2599, "o'brien's steel"), 7);
  require_ok(j->commit(batch));

  product_query q;
  CHECK(skus(require_value(c->list_products(q))) ==
        std::vector<std::string>{"A1", "A2", "A3", "A4", "A5", "B1"});

  q = {};
  q.text = "red";
  CHECK(skus(require_value(c->list_products(q))) == std::vector<std::string>{"A1", "A3", "A5"});
  q.text = "RED Wool";
  CHECK(skus(require_value(c->list_products(q))) == std::vector<std::string>{"A3", "A5"});
  q.text = "shoes"; // the category is searched too
  CHECK(skus(require_value(c->list_products(q))) == std::vector<std::string>{"A1", "A2"});
  q.text = "nothing-like-this";
  CHECK(require_value(c->list_products(q)).empty());
  q.text = "'; DROP TABLE products; --";
  CHECK(require_value(c->list_products(q)).empty());
  q.text = "!!!"; // no words: no text filter
  CHECK(require_value(c->list_products(q)).size() == 6);

  q = {};
  q.category = "hats";
  CHECK(skus(require_value(c->list_products(q))) == std::vector<std::string>{"A3", "A4"});
  q.category = "hats' OR '1'='1";
  CHECK(require_value(c->list_products(q)).empty());

  q = {};
  q.min_price = 2500;
  q.max_price = 5000;
  CHECK(skus(require_value(c->list_products(q))) ==
        std::vector<std::string>{"A1", "A4", "A5", "B1"});
  q.min_price.reset();
  CHECK(skus(require_value(c->list_products(q))) ==
        std::vector<std::string>{"A1", "A3", "A4", "A5", "B1"});

  q = {};
  q.in_stock_only = true;
  auto page = require_value(c->list_products(q));
  CHECK(skus(page) == std::vector<std::string>{"A1", "A3", "A5", "B1"});
  CHECK(page[0].available == 5);
  CHECK(page[3].available == 7);

  q = {};
  q.text = "red";
  q.category = "hats";
  q.in_stock_only = true;
  CHECK(skus(require_value(c->list_products(q))) == std::vector<std::string>{"A3"});

  // Cursor paging.
  q = {};
  q.limit = 4;
  page = require_value(c->list_products(q));
  CHECK(skus(page) == std::vector<std::string>{"A1", "A2", "A3", "A4"});
  q.after_sku = page.back().product.sku;
  page = require_value(c->list_products(q));
  CHECK(skus(page) == std::vector<std::string>{"A5", "B1"});
  q.after_sku = "B1";
  CHECK(require_value(c->list_products(q)).empty());
  q = {};
  q.in_stock_only = true;
  q.limit = 2;
  q.after_sku = "A1";
  CHECK(skus(require_value(c->list_products(q))) == std::vector<std::string>{"A3", "A5"});

  // Limit clamp 1..100.
  q = {};
  q.limit = 0;
  CHECK(require_value(c->list_products(q)).size() == 1);
  batch.clear();
  for (int i = 0; i < 120; ++i) {
    auto sku = "Z" + std::string(i < 100 ? (i < 10 ? "00" : "0") : "") + std::to_string(i);
    add(product(sku, "Bulk " + sku, "bulk", 100), 1);
  }
  require_ok(j->commit(batch));
  q.limit = 1000;
  page = require_value(c->list_products(q));
  CHECK(page.size() == 100);
  CHECK(std::is_sorted(page.begin(), page.end(),
                       [](const auto& x, const auto& y) { return x.product.sku < y.product.sku; }));
}

TEST_CASE("catalog (memory): a server that is down is unavailable and breaks the connection") {
  fake_backend backend;
  auto c = backend.catalog();
  backend.state->set_down(true);
  auto listed = c->list_products({});
  REQUIRE(!listed);
  CHECK(is(listed.error(), errc::unavailable));
  CHECK(!c->healthy());
  backend.state->set_down(false);
  CHECK(is(c->list_products({}).error(), errc::unavailable)); // broken stays broken
  CHECK(backend.catalog()->list_products({}));                // a new connection works
}
