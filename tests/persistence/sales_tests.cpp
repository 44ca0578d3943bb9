// The sale store (the `sales` table) against real PostgreSQL, a fresh migrated database per case:
// round trip, the overlap and started-sale conflicts, unknown SKUs, the list filter, remove, and
// puts racing for one SKU.

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "surge/persistence/errors.hpp"
#include "surge/persistence/sales.hpp"
#include "test_env.hpp"

using namespace surge::persistence;
using surge::test::pg_test_db;

namespace {

constexpr int64_t minute = 60'000;
constexpr int64_t hour = 60 * minute;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A migrated database with the products `skus`.
struct sales_db {
  pg_test_db db;

  explicit sales_db(const std::vector<std::string>& skus) {
    pqxx::connection c{db.url()};
    pqxx::work tx{c};
    for (const auto& sku : skus) {
      tx.exec_params("INSERT INTO products (sku, name) VALUES ($1, $1)", sku);
    }
    tx.commit();
  }

  std::unique_ptr<sale_store> open() const {
    auto s = make_pg_sale_store(db.url());
    REQUIRE(s != nullptr);
    REQUIRE(s->healthy());
    return s;
  }

  int64_t count(const std::string& sql) const {
    pqxx::connection c{db.url()};
    pqxx::nontransaction tx{c};
    return tx.exec1(sql)[0].as<int64_t>();
  }
};

sale_record sale(std::string id, std::vector<std::string> skus, int64_t starts, int64_t ends) {
  sale_record s;
  s.sale_id = std::move(id);
  s.name = "Sale " + s.sale_id;
  s.skus = std::move(skus);
  s.starts_at_ms = starts;
  s.ends_at_ms = ends;
  s.pass_ttl_ms = 300'000;
  return s;
}

template <class T>
T value(caf::expected<T> x) {
  REQUIRE_MESSAGE(x, caf::to_string(x.error()));
  return std::move(*x);
}

bool message_has(const caf::error& err, const std::string& part) {
  return caf::to_string(err).find(part) != std::string::npos;
}

std::vector<std::string> ids(const std::vector<sale_record>& sales) {
  std::vector<std::string> out;
  for (const auto& s : sales) {
    out.push_back(s.sale_id);
  }
  return out;
}

} // namespace

TEST_CASE("sales: put and get round trip every field; a put replaces") {
  const std::string odd = "odd,\"sku\"\\{x}"; // quoting of the text[] literal
  sales_db d{{"A", "B", odd}};
  auto st = d.open();
  const int64_t t0 = now_ms() + hour;
  auto s = sale("drop-1", {"B", "A", odd}, t0 + 123, t0 + hour + 456);
  s.name = "Black Friday";
  s.per_customer_limit = 2;
  s.queue_enabled = true;
  s.admission_rate = 12.5;
  s.pass_ttl_ms = 90'000;
  const int64_t before = now_ms();
  auto stored = value(st->put(s));
  CHECK(stored.sale_id == "drop-1");
  CHECK(stored.name == "Black Friday");
  CHECK(stored.skus == std::vector<std::string>{"B", "A", odd}); // the order given
  CHECK(stored.starts_at_ms == t0 + 123);
  CHECK(stored.ends_at_ms == t0 + hour + 456);
  CHECK(stored.per_customer_limit == 2);
  CHECK(stored.queue_enabled);
  CHECK(stored.admission_rate == 12.5);
  CHECK(stored.pass_ttl_ms == 90'000);
  CHECK(stored.updated_at_ms >= before - 5000); // the server's clock
  CHECK(stored.updated_at_ms <= now_ms() + 5000);

  auto got = value(st->get("drop-1"));
  REQUIRE(got.has_value());
  CHECK(got->skus == stored.skus);
  CHECK(got->starts_at_ms == stored.starts_at_ms);
  CHECK(got->updated_at_ms == stored.updated_at_ms);
  CHECK_FALSE(value(st->get("nope")).has_value());

  // Not started: anything may change, SKUs dropped included.
  s.skus = {"A"};
  s.starts_at_ms = t0 + 2 * hour;
  s.ends_at_ms = t0 + 3 * hour;
  s.queue_enabled = false;
  s.admission_rate = 0; // auto
  auto again = value(st->put(s));
  CHECK(again.skus == std::vector<std::string>{"A"});
  CHECK(again.starts_at_ms == t0 + 2 * hour);
  CHECK_FALSE(again.queue_enabled);
  CHECK(again.admission_rate == 0);
  CHECK(d.count("SELECT count(*) FROM sales") == 1);
}

TEST_CASE("sales: a SKU in two sales whose windows overlap is a conflict naming both") {
  sales_db d{{"X", "Y", "Z"}};
  auto st = d.open();
  const int64_t t0 = now_ms() + hour;
  value(st->put(sale("first", {"X", "Y"}, t0, t0 + hour)));
  auto clash = st->put(sale("second", {"Z", "Y"}, t0 + hour - 1, t0 + 2 * hour));
  REQUIRE_FALSE(clash);
  CHECK(is(clash.error(), errc::conflict));
  CHECK(message_has(clash.error(), "SKU Y"));
  CHECK(message_has(clash.error(), "first"));
  // Inside, around: the same.
  CHECK(is(st->put(sale("second", {"X"}, t0 + 10, t0 + 20)).error(), errc::conflict));
  CHECK(is(st->put(sale("second", {"X"}, t0 - hour, t0 + 2 * hour)).error(), errc::conflict));
  CHECK_FALSE(value(st->get("second")).has_value()); // nothing stored
  // Windows are [starts, ends): back to back is fine, and so are other SKUs at the same time.
  value(st->put(sale("second", {"Y"}, t0 + hour, t0 + 2 * hour)));
  value(st->put(sale("third", {"Y"}, t0 - hour, t0)));
  value(st->put(sale("fourth", {"Z"}, t0, t0 + hour)));
  // A sale never conflicts with itself.
  value(st->put(sale("first", {"X", "Y"}, t0 + 1, t0 + hour)));
  // Moving a sale onto another's window is a conflict too.
  CHECK(is(st->put(sale("fourth", {"Z", "X"}, t0, t0 + hour)).error(), errc::conflict));
}

TEST_CASE("sales: a started sale keeps its start and its SKUs") {
  sales_db d{{"A", "B", "C"}};
  auto st = d.open();
  const int64_t started = now_ms() - minute;
  const int64_t ends = now_ms() + hour;
  value(st->put(sale("live", {"A", "B"}, started, ends)));
  auto moved = st->put(sale("live", {"A", "B"}, started + 1000, ends));
  REQUIRE_FALSE(moved);
  CHECK(is(moved.error(), errc::conflict));
  CHECK(message_has(moved.error(), "start"));
  auto dropped = st->put(sale("live", {"A"}, started, ends));
  REQUIRE_FALSE(dropped);
  CHECK(is(dropped.error(), errc::conflict));
  CHECK(message_has(dropped.error(), "SKU B"));
  CHECK(value(st->get("live"))->skus == std::vector<std::string>{"A", "B"});
  // Adding a SKU, renaming, ending later or earlier, changing the queue: fine.
  auto changed = sale("live", {"B", "A", "C"}, started, ends + hour);
  changed.name = "renamed";
  changed.queue_enabled = true;
  auto ok = value(st->put(changed));
  CHECK(ok.skus == std::vector<std::string>{"B", "A", "C"});
  CHECK(ok.ends_at_ms == ends + hour);
  CHECK(ok.name == "renamed");
}

TEST_CASE("sales: an unknown SKU is invalid, naming it; nothing is stored") {
  sales_db d{{"A", "B"}};
  auto st = d.open();
  const int64_t t0 = now_ms() + hour;
  auto r = st->put(sale("s", {"A", "NOPE-1", "B", "NOPE-2"}, t0, t0 + hour));
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::invalid));
  CHECK(message_has(r.error(), "NOPE-1"));
  CHECK(d.count("SELECT count(*) FROM sales") == 0);
  // A bad window or pass_ttl is refused by the table's checks as invalid too.
  CHECK(is(st->put(sale("s", {"A"}, t0, t0)).error(), errc::invalid));
  auto no_ttl = sale("s", {"A"}, t0, t0 + hour);
  no_ttl.pass_ttl_ms = 0;
  CHECK(is(st->put(no_ttl).error(), errc::invalid));
  CHECK(st->healthy()); // bad input does not break the connection
  value(st->put(sale("s", {"A"}, t0, t0 + hour)));
}

TEST_CASE("sales: list by start then id, filtered by end; remove") {
  sales_db d{{"A", "B", "C", "D"}};
  auto st = d.open();
  const int64_t t0 = now_ms() + hour;
  value(st->put(sale("c", {"C"}, t0, t0 + 3 * hour)));
  value(st->put(sale("b", {"B"}, t0, t0 + 2 * hour)));
  value(st->put(sale("a", {"A"}, t0 + minute, t0 + hour)));
  value(st->put(sale("d", {"D"}, t0 - 2 * hour, t0 - hour)));
  CHECK(ids(value(st->list(0))) == std::vector<std::string>{"d", "b", "c", "a"});
  CHECK(ids(value(st->list(t0 - hour))) == std::vector<std::string>{"b", "c", "a"}); // ends after
  CHECK(ids(value(st->list(t0 + hour))) == std::vector<std::string>{"b", "c"});
  CHECK(ids(value(st->list(t0 + 3 * hour))).empty());

  CHECK(value(st->remove("b")));
  CHECK_FALSE(value(st->remove("b")));
  CHECK_FALSE(value(st->get("b")).has_value());
  CHECK(ids(value(st->list(0))) == std::vector<std::string>{"d", "c", "a"});
  // Its SKU is free again for the same window.
  value(st->put(sale("b2", {"B"}, t0, t0 + 2 * hour)));
}

TEST_CASE("sales: puts racing for one SKU in overlapping windows: exactly one wins") {
  sales_db d{{"HOT"}};
  const int64_t t0 = now_ms() + hour;
  for (int round = 0; round < 5; ++round) {
    const std::string tag = std::to_string(round);
    std::vector<caf::expected<sale_record>> results(4, caf::expected<sale_record>{sale_record{}});
    std::vector<std::unique_ptr<sale_store>> stores;
    for (std::size_t i = 0; i < results.size(); ++i) {
      stores.push_back(d.open());
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < results.size(); ++i) {
      threads.emplace_back([&, i] {
        results[i] = stores[i]->put(sale("r" + tag + "-" + std::to_string(i), {"HOT"},
                                         t0 + round * 10 * hour + static_cast<int64_t>(i),
                                         t0 + round * 10 * hour + hour));
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    int won = 0;
    for (const auto& r : results) {
      if (r) {
        ++won;
      } else {
        CHECK(is(r.error(), errc::conflict));
      }
    }
    CHECK(won == 1);
  }
  CHECK(d.count("SELECT count(*) FROM sales") == 5);
}

TEST_CASE("sales: an unreachable server answers unavailable and reports unhealthy") {
  auto st = make_pg_sale_store("postgresql://surge@127.0.0.1:1/postgres");
  REQUIRE(st != nullptr);
  CHECK_FALSE(st->healthy());
  CHECK(is(st->put(sale("s", {"A"}, 1, 2)).error(), errc::unavailable));
  CHECK(is(st->get("s").error(), errc::unavailable));
  CHECK(is(st->list(0).error(), errc::unavailable));
  CHECK(is(st->remove("s").error(), errc::unavailable));
}
