#pragma once

// A Zipf sampler over ranks 0..n-1: P(rank k) is proportional to 1 / (k+1)^s, so rank 0 is the
// most popular; s = 0 is uniform. The cumulative distribution is computed once (n doubles);
// a draw is one uniform number and a binary search. Immutable after construction: share it
// between threads freely; each caller brings its own random engine.

#include <cstddef>
#include <random>
#include <vector>

namespace surge::load {

class zipf_sampler {
 public:
  /// REQUIRES: n >= 1, s >= 0.
  zipf_sampler(std::size_t n, double s);

  template <class Engine>
  std::size_t operator()(Engine& rng) const {
    return sample(std::uniform_real_distribution<double>{0.0, 1.0}(rng));
  }

  /// The rank for a uniform `u` in [0, 1).
  std::size_t sample(double u) const;

  /// P(rank k).
  double probability(std::size_t k) const;

  std::size_t size() const { return cdf_.size(); }
  double exponent() const { return s_; }

 private:
  double s_;
  std::vector<double> cdf_; ///< cdf_[k] = P(rank <= k); the last is exactly 1
};

} // namespace surge::load
