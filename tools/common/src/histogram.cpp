#include "surge/tools/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace surge::tools {

histogram::histogram()
    : counts_(bucket_count_, 0) {}

uint64_t histogram::lowest_in(std::size_t index) {
  if (index < sub_buckets_) {
    return index;
  }
  const uint64_t j = index - sub_buckets_;
  const unsigned shift = static_cast<unsigned>(j / sub_buckets_half_) + 1;
  const uint64_t mantissa = sub_buckets_half_ + j % sub_buckets_half_;
  return mantissa << shift;
}

uint64_t histogram::highest_in(std::size_t index) {
  if (index < sub_buckets_) {
    return index;
  }
  const unsigned shift = static_cast<unsigned>((index - sub_buckets_) / sub_buckets_half_) + 1;
  return lowest_in(index) + ((uint64_t{1} << shift) - 1);
}

void histogram::merge(const histogram& other) {
  if (other.count_ == 0) {
    return;
  }
  for (std::size_t i = 0; i < bucket_count_; ++i) {
    counts_[i] += other.counts_[i];
  }
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

double histogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

uint64_t histogram::percentile(double p) const {
  if (count_ == 0) {
    return 0;
  }
  if (!(p < 100.0)) {
    return max_;
  }
  p = std::max(p, 0.0);
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count_; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t lo = lowest_in(i);
      const uint64_t mid = lo + (highest_in(i) - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

} // namespace surge::tools
