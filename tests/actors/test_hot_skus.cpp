// hot_sku_tracker: holds placed per SKU over a 10 s window of 1 s buckets, its top-K, idle SKUs
// forgotten and the memory bound. Time is passed by hand (Unix ms); no sleeps.

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "surge/actors/hot_skus.hpp"

using surge::actors::hot_sku_tracker;

namespace {

constexpr int64_t t0 = 1'800'000'000'000; // a whole second, in Unix ms

void place(hot_sku_tracker& t, const std::string& sku, int n, int64_t at_ms) {
  for (int i = 0; i < n; ++i) {
    t.record(sku, at_ms);
  }
}

} // namespace

TEST_CASE("hot skus: the top by holds placed in the window, most first, ties by SKU") {
  hot_sku_tracker t;
  CHECK(t.top(10, t0).empty());
  place(t, "b", 5, t0);
  place(t, "a", 5, t0 + 300);
  place(t, "c", 20, t0 + 999);
  place(t, "d", 1, t0 + 1000);
  const auto top = t.top(3, t0 + 1500);
  REQUIRE(top.size() == 3);
  CHECK(top[0].sku == "c");
  CHECK(top[0].reservations == 20);
  CHECK(top[0].rate == doctest::Approx(2.0)); // 20 holds over the 10 s window
  CHECK(top[1].sku == "a");                   // a tie with b: by SKU
  CHECK(top[1].reservations == 5);
  CHECK(top[2].sku == "b");
  CHECK(t.top(100, t0 + 1500).size() == 4);
  CHECK(t.top(0, t0 + 1500).empty());
}

TEST_CASE("hot skus: buckets slide out of the window one second at a time") {
  hot_sku_tracker t;
  for (int s = 0; s < 10; ++s) {
    place(t, "x", s + 1, t0 + s * 1000); // 1, 2, ..., 10 holds in seconds 0..9
  }
  CHECK(t.top(1, t0 + 9999)[0].reservations == 55);
  CHECK(t.top(1, t0 + 10'000)[0].reservations == 54);             // second 0 left the window
  CHECK(t.top(1, t0 + 15'000)[0].reservations == 7 + 8 + 9 + 10); // seconds 6..15
  // Second 5's bucket is reused for second 15: its old count does not add up.
  place(t, "x", 3, t0 + 15'500);
  CHECK(t.top(1, t0 + 15'500)[0].reservations == 7 + 8 + 9 + 10 + 3);
  CHECK(t.top(1, t0 + 18'999)[0].reservations == 10 + 3); // seconds 9..18
  // A time from before what its bucket holds now (second 5, after second 15) is not counted.
  place(t, "x", 100, t0 + 5000);
  CHECK(t.top(1, t0 + 18'999)[0].reservations == 13);
}

TEST_CASE("hot skus: a SKU idle for a whole window is forgotten") {
  hot_sku_tracker t;
  place(t, "idle", 4, t0);
  place(t, "busy", 1, t0 + 9000);
  CHECK(t.size() == 2);
  CHECK(t.top(10, t0 + 9500).size() == 2);
  const auto later = t.top(10, t0 + 10'000); // idle's only second left the window
  REQUIRE(later.size() == 1);
  CHECK(later[0].sku == "busy");
  CHECK(t.size() == 1); // swept, not just hidden
  CHECK(t.top(10, t0 + 19'000).empty());
  CHECK(t.size() == 0);
}

TEST_CASE("hot skus: at most max_skus SKUs are tracked; room frees up as SKUs go idle") {
  hot_sku_tracker t{16}; // one SKU per stripe
  for (int i = 0; i < 200; ++i) {
    t.record("sku-" + std::to_string(i), t0);
  }
  CHECK(t.size() <= 16);
  CHECK(t.dropped() == 200 - t.size());
  const auto before = t.size();
  // Ten seconds on, every one of them is idle: a new SKU finds room in its stripe.
  t.record("late", t0 + 10'000);
  CHECK(t.dropped() == 200 - before);
  const auto top = t.top(10, t0 + 10'000);
  REQUIRE(top.size() == 1);
  CHECK(top[0].sku == "late");
}

TEST_CASE("hot skus: records from many threads all count") {
  hot_sku_tracker t;
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&t, k] {
      for (int i = 0; i < 1000; ++i) {
        t.record("s" + std::to_string(i % 7), t0 + k * 100);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  uint64_t sum = 0;
  for (const auto& e : t.top(100, t0 + 500)) {
    sum += e.reservations;
  }
  CHECK(sum == 4000);
}
