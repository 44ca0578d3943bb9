// The journal's behaviour, once, against every backend.

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"

using namespace surge::persistence;
using surge::test::fake_backend;
using surge::test::pg_backend;

namespace {

commit_request req(std::string stream, uint64_t seq, std::string payload = "p") {
  commit_request r;
  r.batch = journal_batch{std::move(stream), seq, std::move(payload)};
  return r;
}

product_record product(std::string sku, std::string name, std::string category, int64_t price,
                       std::string description = {}) {
  product_record p;
  p.sku = std::move(sku);
  p.name = std::move(name);
  p.description = std::move(description);
  p.category = std::move(category);
  p.price_cents = price;
  return p;
}

void require_ok(const caf::error& err) {
  REQUIRE_MESSAGE(!err, caf::to_string(err));
}

template <class T>
T require_value(caf::expected<T> x) {
  REQUIRE_MESSAGE(x, caf::to_string(x.error()));
  return std::move(*x);
}

std::vector<uint64_t> seqs(const std::vector<journal_batch>& xs) {
  std::vector<uint64_t> out;
  for (const auto& x : xs) {
    out.push_back(x.seq);
  }
  return out;
}

std::vector<std::string> skus(const std::vector<product_listing>& xs) {
  std::vector<std::string> out;
  for (const auto& x : xs) {
    out.push_back(x.product.sku);
  }
  return out;
}

const std::string binary_payload = std::string{"a\0b\xff\x01'\\x--", 11};

} // namespace

#define BACKENDS fake_backend, pg_backend

TEST_CASE_TEMPLATE("journal: commit then read in seq order", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
  CHECK(j->healthy());
  require_ok(j->commit({}));
  std::vector<commit_request> batch{req("sku:a", 3, binary_payload), req("sku:a", 1),
                                    req("sku:b", 1), req("sku:a", 2)};
  require_ok(j->commit(batch));
  require_ok(j->commit(std::vector<commit_request>{req("sku:a", 4)}));
  auto all = require_value(j->read("sku:a", 0));
  CHECK(seqs(all) == std::vector<uint64_t>{1, 2, 3, 4});
  CHECK(all[2].payload == binary_payload);
  CHECK(all[2].stream == "sku:a");
  CHECK(seqs(require_value(j->read("sku:a", 2))) == std::vector<uint64_t>{3, 4});
  CHECK(require_value(j->read("sku:a", 4)).empty());
  CHECK(seqs(require_value(j->read("sku:b", 0))) == std::vector<uint64_t>{1});
  CHECK(require_value(j->read("sku:none", 0)).empty());
  // Another connection sees the same data.
  auto j2 = backend.connect();
  CHECK(seqs(require_value(j2->read("sku:a", 0))) == std::vector<uint64_t>{1, 2, 3, 4});
}

TEST_CASE_TEMPLATE("journal: a duplicate (stream, seq) fails the whole transaction", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
  require_ok(j->commit(std::vector<commit_request>{req("sku:a", 1, "first")}));

  auto fresh = req("sku:b", 1);
  fresh.stock = stock_record{"B", 10, 1, 2};
  fresh.product = product("B", "Bee", "toys", 100);
  fresh.snap = snapshot{"sku:b", 1, "snap"};
  std::vector<commit_request> batch{fresh, req("sku:a", 1, "second")};
  auto err = j->commit(batch);
  REQUIRE(err);
  CHECK_MESSAGE(is(err, errc::conflict), caf::to_string(err));
  CHECK(j->healthy());
  CHECK(require_value(j->read("sku:b", 0)).empty());
  CHECK(require_value(j->read("sku:a", 0))[0].payload == "first");
  CHECK(!require_value(j->load_snapshot("sku:b")));
  CHECK(!require_value(j->load_product("B")));
  CHECK(require_value(j->list_products({})).empty());

  // A duplicate inside one batch is a conflict too.
  err = j->commit(std::vector<commit_request>{req("sku:c", 1), req("sku:c", 1)});
  CHECK(is(err, errc::conflict));
  CHECK(require_value(j->read("sku:c", 0)).empty());
  // The connection stays usable.
  require_ok(j->commit(std::vector<commit_request>{req("sku:a", 2)}));
}

TEST_CASE_TEMPLATE("journal: snapshots are upserted, the newest seq kept", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
  CHECK(!require_value(j->load_snapshot("sku:a")));
  auto r = req("sku:a", 1);
  r.snap = snapshot{"sku:a", 3, binary_payload};
  require_ok(j->commit(std::vector<commit_request>{r}));
  auto s = require_value(j->load_snapshot("sku:a"));
  REQUIRE(s);
  CHECK(s->seq == 3);
  CHECK(s->payload == binary_payload);
  CHECK(s->stream == "sku:a");

  r = req("sku:a", 2);
  r.snap = snapshot{"sku:a", 5, "five"};
  require_ok(j->commit(std::vector<commit_request>{r}));
  CHECK(require_value(j->load_snapshot("sku:a"))->payload == "five");

  r = req("sku:a", 3);
  r.snap = snapshot{"sku:a", 4, "stale"};
  require_ok(j->commit(std::vector<commit_request>{r}));
  CHECK(require_value(j->load_snapshot("sku:a"))->seq == 5);

  // Two snapshots of one stream in one batch: the higher seq wins.
  auto r1 = req("sku:b", 1);
  r1.snap = snapshot{"sku:b", 7, "seven"};
  auto r2 = req("sku:b", 2);
  r2.snap = snapshot{"sku:b", 6, "six"};
  require_ok(j->commit(std::vector<commit_request>{r1, r2}));
  CHECK(require_value(j->load_snapshot("sku:b"))->payload == "seven");
}

TEST_CASE_TEMPLATE("journal: products are upserted and loaded", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
  CHECK(!require_value(j->load_product("X-1")));
  auto r = req("sku:X-1", 1);
  r.product = product("X-1", "Kettle", "kitchen", 2599, "it's 1.7 l; \"steel\"");
  r.product->currency = "EUR";
  r.product->per_customer_limit = 2;
  require_ok(j->commit(std::vector<commit_request>{r}));
  auto p = require_value(j->load_product("X-1"));
  REQUIRE(p);
  CHECK(p->name == "Kettle");
  CHECK(p->description == "it's 1.7 l; \"steel\"");
  CHECK(p->category == "kitchen");
  CHECK(p->price_cents == 2599);
  CHECK(p->currency == "EUR");
  CHECK(p->per_customer_limit == 2);

  r = req("sku:X-1", 2);
  r.product = product("X-1", "Kettle Pro", "kitchen", 2999);
  require_ok(j->commit(std::vector<commit_request>{r}));
  p = require_value(j->load_product("X-1"));
  CHECK(p->name == "Kettle Pro");
  CHECK(p->price_cents == 2999);
  CHECK(p->currency == "USD");
}

TEST_CASE_TEMPLATE("journal: the stock projection keeps the latest figures", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
  auto r = req("sku:S", 1);
  r.product = product("S", "Sock", "apparel", 500);
  r.stock = stock_record{"S", 10, 0, 0};
  require_ok(j->commit(std::vector<commit_request>{r}));
  auto page = require_value(j->list_products({}));
  REQUIRE(page.size() == 1);
  CHECK(page[0].available == 10);

  // Two changes of one SKU in one transaction: the later request wins.
  auto r1 = req("sku:S", 2);
  r1.stock = stock_record{"S", 10, 3, 0};
  auto r2 = req("sku:S", 3);
  r2.stock = stock_record{"S", 10, 2, 5};
  require_ok(j->commit(std::vector<commit_request>{r1, r2}));
  page = require_value(j->list_products({}));
  CHECK(page[0].available == 3);

  // A product without a stock row lists as 0 available.
  auto r3 = req("sku:T", 1);
  r3.product = product("T", "Tie", "apparel", 900);
  require_ok(j->commit(std::vector<commit_request>{r3}));
  page = require_value(j->list_products({}));
  REQUIRE(page.size() == 2);
  CHECK(page[1].product.sku == "T");
  CHECK(page[1].available == 0);

  // skus_holding: the SKUs with held > 0, by sku, bounded.
  CHECK(require_value(j->skus_holding(10)) == std::vector<std::string>{"S"});
  auto r4 = req("sku:T", 2);
  r4.stock = stock_record{"T", 4, 1, 0};
  auto r5 = req("sku:S", 4);
  r5.stock = stock_record{"S", 10, 0, 5};
  require_ok(j->commit(std::vector<commit_request>{r4, r5}));
  CHECK(require_value(j->skus_holding(10)) == std::vector<std::string>{"T"});
  CHECK(require_value(j->skus_holding(0)).empty());
}

TEST_CASE_TEMPLATE("journal: list_products filters and pages", B, BACKENDS) {
  B backend;
  auto j = backend.connect();
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
  CHECK(skus(require_value(j->list_products(q))) ==
        std::vector<std::string>{"A1", "A2", "A3", "A4", "A5", "B1"});

  q = {};
  q.text = "red";
  CHECK(skus(require_value(j->list_products(q))) == std::vector<std::string>{"A1", "A3", "A5"});
  q.text = "RED Wool";
  CHECK(skus(require_value(j->list_products(q))) == std::vector<std::string>{"A3", "A5"});
  q.text = "shoes"; // the category is searched too
  CHECK(skus(require_value(j->list_products(q))) == std::vector<std::string>{"A1", "A2"});
  q.text = "nothing-like-this";
  CHECK(require_value(j->list_products(q)).empty());
  q.text = "'; DROP TABLE products; --";
  CHECK(require_value(j->list_products(q)).empty());
  q.text = "!!!"; // no words: no text filter
  CHECK(require_value(j->list_products(q)).size() == 6);

  q = {};
  q.category = "hats";
  CHECK(skus(require_value(j->list_products(q))) == std::vector<std::string>{"A3", "A4"});
  q.category = "hats' OR '1'='1";
  CHECK(require_value(j->list_products(q)).empty());

  q = {};
  q.min_price = 2500;
  q.max_price = 5000;
  CHECK(skus(require_value(j->list_products(q))) ==
        std::vector<std::string>{"A1", "A4", "A5", "B1"});
  q.min_price.reset();
  CHECK(skus(require_value(j->list_products(q))) ==
        std::vector<std::string>{"A1", "A3", "A4", "A5", "B1"});

  q = {};
  q.in_stock_only = true;
  auto page = require_value(j->list_products(q));
  CHECK(skus(page) == std::vector<std::string>{"A1", "A3", "A5", "B1"});
  CHECK(page[0].available == 5);
  CHECK(page[3].available == 7);

  q = {};
  q.text = "red";
  q.category = "hats";
  q.in_stock_only = true;
  CHECK(skus(require_value(j->list_products(q))) == std::vector<std::string>{"A3"});

  // Cursor paging.
  q = {};
  q.limit = 4;
  page = require_value(j->list_products(q));
  CHECK(skus(page) == std::vector<std::string>{"A1", "A2", "A3", "A4"});
  q.after_sku = page.back().product.sku;
  page = require_value(j->list_products(q));
  CHECK(skus(page) == std::vector<std::string>{"A5", "B1"});
  q.after_sku = "B1";
  CHECK(require_value(j->list_products(q)).empty());
  q = {};
  q.in_stock_only = true;
  q.limit = 2;
  q.after_sku = "A1";
  CHECK(skus(require_value(j->list_products(q))) == std::vector<std::string>{"A3", "A5"});

  // Limit clamp 1..100.
  q = {};
  q.limit = 0;
  CHECK(require_value(j->list_products(q)).size() == 1);
  batch.clear();
  for (int i = 0; i < 120; ++i) {
    auto sku = "Z" + std::string(i < 100 ? (i < 10 ? "00" : "0") : "") + std::to_string(i);
    add(product(sku, "Bulk " + sku, "bulk", 100), 1);
  }
  require_ok(j->commit(batch));
  q.limit = 1000;
  page = require_value(j->list_products(q));
  CHECK(page.size() == 100);
  CHECK(std::is_sorted(page.begin(), page.end(),
                       [](const auto& x, const auto& y) { return x.product.sku < y.product.sku; }));
}
