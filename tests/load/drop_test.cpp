// The drop scenario's pure pieces: Kendall's tau-b against the O(n^2) definition, RFC 3339
// times, and its flags.

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "drop.hpp"
#include "options.hpp"

namespace surge::load {

namespace {

/// tau-b straight from its definition, pair by pair.
std::optional<double> tau_b_slow(const std::vector<std::pair<double, double>>& xy) {
  int64_t nc = 0;
  int64_t nd = 0;
  int64_t tx = 0; // pairs tied in x (those tied in both included)
  int64_t ty = 0; // pairs tied in y
  const auto n = xy.size();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const double dx = xy[i].first - xy[j].first;
      const double dy = xy[i].second - xy[j].second;
      if (dx == 0) {
        ++tx;
      }
      if (dy == 0) {
        ++ty;
      }
      if (dx != 0 && dy != 0) {
        (dx * dy > 0 ? nc : nd) += 1;
      }
    }
  }
  const double n0 = static_cast<double>(n) * static_cast<double>(n - 1) / 2;
  if (n < 2 || tx == static_cast<int64_t>(n0) || ty == static_cast<int64_t>(n0)) {
    return std::nullopt;
  }
  return static_cast<double>(nc - nd) /
         std::sqrt((n0 - static_cast<double>(tx)) * (n0 - static_cast<double>(ty)));
}

std::string error_of(const std::vector<std::string>& args) {
  try {
    parse_options(args);
  } catch (const usage_error& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_SUITE("load_unit") {
  TEST_CASE("Kendall tau-b: known values") {
    CHECK(!kendall_tau_b({}));
    CHECK(!kendall_tau_b({{1, 2}}));
    CHECK(!kendall_tau_b({{1, 2}, {1, 3}})); // x constant
    CHECK(*kendall_tau_b({{1, 1}, {2, 2}, {3, 3}, {4, 4}}) == doctest::Approx(1.0));
    CHECK(*kendall_tau_b({{1, 4}, {2, 3}, {3, 2}, {4, 1}}) == doctest::Approx(-1.0));
    // One swapped neighbour pair among 4: (5 - 1) / 6.
    CHECK(*kendall_tau_b({{1, 1}, {2, 3}, {3, 2}, {4, 4}}) == doctest::Approx(4.0 / 6.0));
    // Ties in y only (a batch admitted at once): every other pair concordant.
    // n0 = 6, n2 = 1: (6 - 1) / sqrt(6 * 5).
    CHECK(*kendall_tau_b({{1, 1}, {2, 2}, {3, 2}, {4, 3}}) ==
          doctest::Approx(5.0 / std::sqrt(30.0)));
  }

  TEST_CASE("Kendall tau-b: Knight's algorithm equals the definition on random data with ties") {
    std::mt19937_64 rng{42};
    for (int round = 0; round < 200; ++round) {
      const int n = 2 + static_cast<int>(rng() % 60);
      const int spread = 1 + static_cast<int>(rng() % 12); // small: many ties
      std::vector<std::pair<double, double>> xy;
      for (int i = 0; i < n; ++i) {
        xy.emplace_back(static_cast<double>(rng() % spread), static_cast<double>(rng() % spread));
      }
      CAPTURE(round);
      const auto slow = tau_b_slow(xy);
      const auto fast = kendall_tau_b(xy);
      REQUIRE(slow.has_value() == fast.has_value());
      if (slow) {
        CHECK(*fast == doctest::Approx(*slow).epsilon(1e-12));
      }
    }
  }

  TEST_CASE("RFC 3339 times with and without milliseconds") {
    CHECK(parse_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_rfc3339_ms("2026-11-28T08:30:00.123Z") == int64_t{1795854600123});
    CHECK(parse_rfc3339_ms("2026-11-28T08:30:00.1Z") == int64_t{1795854600100});
    CHECK(!parse_rfc3339_ms(""));
    CHECK(!parse_rfc3339_ms("2026-11-28T08:30:00"));
    CHECK(!parse_rfc3339_ms("2026-11-28T08:30:00.Z"));
    CHECK(!parse_rfc3339_ms("2026-11-28T08:30:00+01:00"));
  }

  TEST_CASE("drop flags: defaults, forms and what belongs to whom") {
    const auto o = parse_options({"--scenario=drop"});
    CHECK(o.drop);
    CHECK(o.scenario_text == "drop");
    CHECK(o.users == 2000u);
    CHECK(o.units == 1000u);
    CHECK(!o.admission_rate);
    CHECK(o.pass_ttl == std::chrono::seconds{60});
    CHECK(o.lead == std::chrono::seconds{10});
    CHECK(o.arrive_before == std::chrono::seconds{10});
    CHECK(o.arrive_after == std::chrono::seconds{20});
    CHECK(o.poll == std::chrono::seconds{1});
    CHECK(o.bots == doctest::Approx(0.2));
    CHECK(o.capacity.empty());

    const auto c =
        parse_options({"--scenario=drop", "--users=200", "--units=50", "--admission-rate=25",
                       "--pass-ttl=90s", "--lead=3s", "--arrive-before=2s", "--arrive-after=0",
                       "--bots=0", "--capacity=10000,30000", "--capacity-p99=250ms"});
    CHECK(c.users == 200u);
    CHECK(c.units == 50u);
    CHECK(c.admission_rate == doctest::Approx(25.0));
    CHECK(c.pass_ttl == std::chrono::seconds{90});
    CHECK(c.arrive_after.count() == 0);
    CHECK(c.capacity == std::vector<uint64_t>{10000, 30000});
    CHECK(c.capacity_p99_ms == doctest::Approx(250.0));
    CHECK(!parse_options({"--scenario=drop", "--admission-rate=auto"}).admission_rate);

    CHECK(error_of({"--units=5"}).find("--units belongs to --scenario=drop") != std::string::npos);
    CHECK(error_of({"--scenario=checkout", "--capacity=10"}).find("belongs to --scenario=drop") !=
          std::string::npos);
    CHECK(error_of({"--scenario=drop", "--rate=5"}).find("does not apply") != std::string::npos);
    CHECK(error_of({"--scenario=drop", "--duration=5s"}).find("does not apply") !=
          std::string::npos);
    CHECK(error_of({"--scenario=drop", "--lead=5s", "--arrive-before=6s"})
              .find("--arrive-before must not exceed --lead") != std::string::npos);
    CHECK(error_of({"--scenario=drop", "--admission-rate=fast"}).find("--admission-rate") !=
          std::string::npos);
    CHECK(error_of({"--scenario=drop", "--bots=1.5"}).find("--bots") != std::string::npos);
    CHECK(error_of({"--scenario=drop", "--capacity-p99=300ms"}).find("goes with --capacity") !=
          std::string::npos);
    CHECK(error_of({"--scenario=drop", "--capacity=0"}).find("--capacity") != std::string::npos);
  }
}

} // namespace surge::load
