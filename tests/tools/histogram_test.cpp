// The latency histogram of surge-load and surge-bench against exact order statistics of a sorted
// vector.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "surge/tools/histogram.hpp"

namespace surge::tools {

namespace {

/// The exact value at percentile p: the smallest x such that at least p% are <= x.
uint64_t exact(const std::vector<uint64_t>& sorted, double p) {
  const auto n = sorted.size();
  const auto rank = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(n))));
  return sorted[std::min(rank, n) - 1];
}

void check_against_reference(std::vector<uint64_t> values) {
  histogram h;
  for (auto v : values) {
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  CHECK(h.min() == values.front());
  CHECK(h.max() == values.back());
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const auto want = exact(values, p);
    const auto got = h.percentile(p);
    const double tolerance = static_cast<double>(want) * 0.01 + 1.0;
    CHECK_MESSAGE(std::abs(static_cast<double>(got) - static_cast<double>(want)) <= tolerance,
                  "p" << p << ": histogram " << got << ", exact " << want);
  }
}

} // namespace

TEST_SUITE("tools_unit") {
  TEST_CASE("bucket layout: exact below 256, then at most 1/128 wide, contiguous") {
    for (uint64_t v = 0; v < 256; ++v) {
      CHECK(histogram::index_of(v) == v);
    }
    std::mt19937_64 rng{7};
    for (int i = 0; i < 100000; ++i) {
      const uint64_t v = rng() >> (1 + rng() % 63); // below 2^63: not clamped
      const auto idx = histogram::index_of(v);
      REQUIRE(histogram::lowest_in(idx) <= v);
      REQUIRE(v <= histogram::highest_in(idx));
      const auto width = histogram::highest_in(idx) - histogram::lowest_in(idx) + 1;
      CHECK(static_cast<double>(width) <=
            static_cast<double>(histogram::lowest_in(idx)) / 128.0 + 1.0);
    }
    for (std::size_t i = 0; i + 1 < 4000; ++i) {
      CHECK(histogram::highest_in(i) + 1 == histogram::lowest_in(i + 1));
    }
    CHECK(histogram::relative_precision() < 0.01);
  }

  TEST_CASE("percentiles match a sorted vector on random data within 1%") {
    std::mt19937_64 rng{42};
    SUBCASE("uniform microseconds") {
      std::uniform_int_distribution<uint64_t> d{0, 2'000'000};
      std::vector<uint64_t> v(50000);
      for (auto& x : v) {
        x = d(rng);
      }
      check_against_reference(v);
    }
    SUBCASE("log-normal latencies with a long tail") {
      std::lognormal_distribution<double> d{7.0, 1.5}; // median ~1.1 ms in microseconds
      std::vector<uint64_t> v(100000);
      for (auto& x : v) {
        x = static_cast<uint64_t>(d(rng));
      }
      check_against_reference(v);
    }
    SUBCASE("few values, small values") {
      check_against_reference({5});
      check_against_reference({0, 0, 1, 3, 3, 3, 250, 255, 256, 257});
    }
    SUBCASE("bimodal: fast cache hits and slow misses") {
      std::vector<uint64_t> v;
      std::normal_distribution<double> fast{300, 30};
      std::normal_distribution<double> slow{80000, 5000};
      for (int i = 0; i < 20000; ++i) {
        v.push_back(static_cast<uint64_t>(std::max(0.0, i % 10 == 0 ? slow(rng) : fast(rng))));
      }
      check_against_reference(v);
    }
  }

  TEST_CASE("merge equals recording everything in one; reset empties") {
    std::mt19937_64 rng{3};
    histogram a;
    histogram b;
    histogram all;
    for (int i = 0; i < 10000; ++i) {
      const uint64_t v = rng() % 1'000'000;
      (i % 3 == 0 ? a : b).record(v);
      all.record(v);
    }
    a.merge(b);
    CHECK(a.count() == all.count());
    CHECK(a.min() == all.min());
    CHECK(a.max() == all.max());
    for (double p : {50.0, 90.0, 99.0, 99.9}) {
      CHECK(a.percentile(p) == all.percentile(p));
    }
    CHECK(a.mean() == doctest::Approx(all.mean()));
    a.reset();
    CHECK(a.count() == 0);
    CHECK(a.percentile(50) == 0);
    CHECK(a.max() == 0);
  }

  TEST_CASE("huge values are clamped, not lost") {
    histogram h;
    h.record(UINT64_MAX);
    h.record(1);
    CHECK(h.count() == 2);
    CHECK(h.percentile(100) == (uint64_t{1} << 63) - 1);
    CHECK(h.percentile(1) == 1);
  }
}

} // namespace surge::tools
