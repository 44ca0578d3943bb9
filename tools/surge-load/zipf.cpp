#include "zipf.hpp"

#include <algorithm>
#include <cmath>

namespace surge::load {

zipf_sampler::zipf_sampler(std::size_t n, double s)
    : s_(s)
    , cdf_(std::max<std::size_t>(n, 1)) {
  double sum = 0;
  for (std::size_t k = 0; k < cdf_.size(); ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k + 1), s_);
    cdf_[k] = sum;
  }
  for (auto& c : cdf_) {
    c /= sum;
  }
  cdf_.back() = 1.0;
}

std::size_t zipf_sampler::sample(double u) const {
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return it == cdf_.end() ? cdf_.size() - 1 : static_cast<std::size_t>(it - cdf_.begin());
}

double zipf_sampler::probability(std::size_t k) const {
  if (k >= cdf_.size()) {
    return 0.0;
  }
  return k == 0 ? cdf_[0] : cdf_[k] - cdf_[k - 1];
}

} // namespace surge::load
