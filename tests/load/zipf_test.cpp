// The Zipf sampler's distribution shape.

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "zipf.hpp"

namespace surge::load {

TEST_SUITE("load_unit") {
  TEST_CASE("probabilities follow 1/k^s and sum to 1") {
    const zipf_sampler z{100, 1.2};
    double sum = 0;
    for (std::size_t k = 0; k < z.size(); ++k) {
      sum += z.probability(k);
    }
    CHECK(sum == doctest::Approx(1.0));
    for (std::size_t k = 1; k < 10; ++k) {
      CHECK(z.probability(0) / z.probability(k) ==
            doctest::Approx(std::pow(static_cast<double>(k + 1), 1.2)));
    }
    CHECK(z.probability(100) == 0.0);
  }

  TEST_CASE("samples: frequencies within a few standard deviations of the expectation") {
    for (double s : {0.0, 0.8, 1.1, 2.0}) {
      CAPTURE(s);
      const zipf_sampler z{20, s};
      std::mt19937_64 rng{11};
      constexpr int n = 200000;
      std::vector<int> counts(20, 0);
      for (int i = 0; i < n; ++i) {
        const auto k = z(rng);
        REQUIRE(k < 20);
        ++counts[k];
      }
      double chi2 = 0;
      for (std::size_t k = 0; k < 20; ++k) {
        const double p = z.probability(k);
        const double expected = p * n;
        const double sd = std::sqrt(n * p * (1 - p));
        CHECK_MESSAGE(std::abs(counts[k] - expected) <= 5 * sd + 1,
                      "rank " << k << ": " << counts[k] << " vs " << expected);
        chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
      }
      CHECK(chi2 < 60); // 19 degrees of freedom: p < 1e-5 of exceeding this by chance
      if (s > 0) {
        for (std::size_t k = 0; k + 1 < 5; ++k) {
          CHECK(counts[k] > counts[k + 1]); // the head is strictly ordered
        }
        // The head share: rank 0 over rank 1 is about 2^s.
        CHECK(static_cast<double>(counts[0]) / counts[1] ==
              doctest::Approx(std::pow(2.0, s)).epsilon(0.05));
      }
    }
  }

  TEST_CASE("edge cases: one item, u at the ends") {
    const zipf_sampler one{1, 1.1};
    std::mt19937_64 rng{1};
    CHECK(one(rng) == 0);
    const zipf_sampler z{10, 1.0};
    CHECK(z.sample(0.0) == 0);
    CHECK(z.sample(0.999999999) == 9);
    CHECK(z.sample(1.0) == 9);
  }
}

} // namespace surge::load
