// The journal's behaviour, once, against every backend.

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "journal_helpers.hpp"

using namespace surge::persistence;
using surge::test::fake_backend;
using surge::test::pg_backend;
using namespace surge::test::journal_helpers;

namespace {

std::vector<uint64_t> seqs(const std::vector<journal_batch>& xs) {
  std::vector<uint64_t> out;
  for (const auto& x : xs) {
    out.push_back(x.seq);
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
  CHECK(require_value(backend.catalog()->list_products({})).empty());

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
  auto c = backend.catalog(); // reads the projection
  auto r = req("sku:S", 1);
  r.product = product("S", "Sock", "apparel", 500);
  r.stock = stock_record{"S", 10, 0, 0};
  require_ok(j->commit(std::vector<commit_request>{r}));
  auto page = require_value(c->list_products({}));
  REQUIRE(page.size() == 1);
  CHECK(page[0].available == 10);

  // Two changes of one SKU in one transaction: the later request wins.
  auto r1 = req("sku:S", 2);
  r1.stock = stock_record{"S", 10, 3, 0};
  auto r2 = req("sku:S", 3);
  r2.stock = stock_record{"S", 10, 2, 5};
  require_ok(j->commit(std::vector<commit_request>{r1, r2}));
  page = require_value(c->list_products({}));
  CHECK(page[0].available == 3);

  // A product without a stock row lists as 0 available.
  auto r3 = req("sku:T", 1);
  r3.product = product("T", "Tie", "apparel", 900);
  require_ok(j->commit(std::vector<commit_request>{r3}));
  page = require_value(c->list_products({}));
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
