// sale_index: which sale governs a SKU at a time, the gate it gives, change detection; and the
// sale_board. No actors, no storage.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "surge/actors/sales.hpp"

using surge::actors::queue_summary;
using surge::actors::sale_board;
using surge::actors::sale_index;
using surge::actors::sale_record;

namespace {

sale_record sale(std::string id, std::vector<std::string> skus, int64_t starts, int64_t ends) {
  sale_record s;
  s.sale_id = std::move(id);
  s.name = "sale " + s.sale_id;
  s.skus = std::move(skus);
  s.starts_at_ms = starts;
  s.ends_at_ms = ends;
  s.pass_ttl_ms = 300'000;
  return s;
}

std::string id_of(const sale_index::sale_ptr& s) {
  return s ? s->sale_id : std::string{"(none)"};
}

} // namespace

TEST_CASE("of_sku: the not-ended sale with the earliest start, else the one that ended last") {
  sale_index idx;
  CHECK(idx.of_sku("A", 0) == nullptr);
  idx.replace({sale("late", {"A", "B"}, 5000, 6000), sale("early", {"A"}, 1000, 2000),
               sale("middle", {"A", "C"}, 3000, 4000)});
  CHECK(id_of(idx.of_sku("A", 0)) == "early");
  CHECK(id_of(idx.of_sku("A", 1999)) == "early");
  CHECK(id_of(idx.of_sku("A", 2000)) == "middle"); // early ended at 2000 (exclusive)
  CHECK(id_of(idx.of_sku("A", 4500)) == "late");
  CHECK(id_of(idx.of_sku("A", 6000)) == "late"); // every one ended: the last to end
  CHECK(id_of(idx.of_sku("A", 99999)) == "late");
  CHECK(id_of(idx.of_sku("B", 0)) == "late");
  CHECK(id_of(idx.of_sku("C", 5000)) == "middle");
  CHECK(idx.of_sku("D", 0) == nullptr);
  // Ended sales: the one that ended last, whatever their starts.
  idx.replace({sale("long", {"X"}, 100, 9000), sale("short", {"X"}, 200, 300)});
  CHECK(id_of(idx.of_sku("X", 150)) == "long");
  CHECK(id_of(idx.of_sku("X", 9500)) == "long");
}

TEST_CASE("gate_of: the governing sale as a SKU checks it; empty when none") {
  sale_index idx;
  auto s = sale("drop", {"A"}, 1000, 2000);
  s.queue_enabled = true;
  s.per_customer_limit = 2;
  idx.put(s);
  auto g = idx.gate_of("A", 0);
  CHECK(g.sale_id == "drop");
  CHECK(g.starts_at_ms == 1000);
  CHECK(g.ends_at_ms == 2000);
  CHECK(g.queue);
  CHECK(g.limit == 2);
  CHECK(idx.gate_of("B", 0).sale_id.empty());
  idx.remove("drop");
  CHECK(idx.gate_of("A", 0).sale_id.empty());
}

TEST_CASE("put, remove, find, all; the version moves on changes only") {
  sale_index idx;
  const auto v0 = idx.version();
  idx.replace({});
  CHECK(idx.version() == v0); // nothing changed
  idx.put(sale("b", {"A"}, 2000, 3000));
  idx.put(sale("a", {"B"}, 2000, 3000));
  idx.put(sale("c", {"C"}, 1000, 3000));
  const auto v1 = idx.version();
  CHECK(v1 > v0);
  std::vector<std::string> order;
  for (const auto& s : idx.all()) {
    order.push_back(s->sale_id);
  }
  CHECK(order == std::vector<std::string>{"c", "a", "b"});
  REQUIRE(idx.find("a") != nullptr);
  CHECK(idx.find("a")->skus == std::vector<std::string>{"B"});
  CHECK(idx.find("z") == nullptr);

  idx.put(sale("b", {"A"}, 2000, 3000)); // the same again
  CHECK(idx.version() == v1);
  idx.replace(
      {sale("c", {"C"}, 1000, 3000), sale("a", {"B"}, 2000, 3000), sale("b", {"A"}, 2000, 3000)});
  CHECK(idx.version() == v1); // the same table, in another order
  auto moved = sale("b", {"A", "D"}, 2000, 3000);
  idx.put(moved); // b now names D too
  CHECK(idx.version() > v1);
  CHECK(id_of(idx.of_sku("D", 0)) == "b");
  const auto v2 = idx.version();
  idx.remove("nope");
  CHECK(idx.version() == v2);
  idx.remove("b");
  CHECK(idx.version() > v2);
  CHECK(idx.of_sku("D", 0) == nullptr);
  CHECK(idx.of_sku("A", 0) == nullptr);
  // replace() drops what the table no longer has.
  idx.replace({sale("a", {"B"}, 2000, 3000)});
  CHECK(idx.find("c") == nullptr);
  CHECK(idx.all().size() == 1);
  // A record read earlier stays valid after the index changed.
  auto kept = idx.find("a");
  idx.replace({});
  CHECK(kept->sale_id == "a");
  CHECK(idx.find("a") == nullptr);
}

TEST_CASE("readers and a writer at once (shared lock): every lookup sees a whole table") {
  sale_index idx;
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    for (int i = 0; i < 200000 && !stop.load(); ++i) {
      auto g = idx.gate_of("A", 1500);
      // Both tables name A in one sale with the same window: a gate is that or none.
      if (!g.sale_id.empty() && (g.starts_at_ms != 1000 || g.ends_at_ms != 2000)) {
        torn.fetch_add(1);
      }
    }
  });
  for (int i = 0; i < 2000; ++i) {
    idx.replace({sale("s" + std::to_string(i % 2), {"A", "B"}, 1000, 2000)});
    idx.replace({});
  }
  stop.store(true);
  reader.join();
  CHECK(torn.load() == 0);
}

TEST_CASE("sale_board: the last summary of each sale, by sale id; erase drops it") {
  sale_board b;
  CHECK(b.all().empty());
  queue_summary s;
  s.sale_id = "b";
  s.waiting = 5;
  b.publish(s);
  s.waiting = 3;
  b.publish(s);
  s.sale_id = "a";
  s.waiting = 7;
  b.publish(s);
  auto all = b.all();
  REQUIRE(all.size() == 2);
  CHECK(all[0].sale_id == "a");
  CHECK(all[1].sale_id == "b");
  CHECK(all[1].waiting == 3);
  b.erase("a");
  b.erase("nope");
  REQUIRE(b.all().size() == 1);
  CHECK(b.all()[0].sale_id == "b");
}
