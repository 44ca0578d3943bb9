#pragma once

// The latency histogram of surge-load and surge-bench, in the manner of HdrHistogram:
// log-linear buckets over non-negative integers (surge-load records microseconds, surge-bench
// nanoseconds). Values below 2^precision_bits are exact; above, each power of two is split into
// 2^(precision_bits-1) equal buckets, so a bucket is at most 1/2^(precision_bits-1) of its values
// wide (0.78% with the default 8 bits) and a reported percentile is the bucket's midpoint: within
// 0.4% of a value in the bucket. About 57 KiB of counts, allocated once; record() is O(1).
//
// Not thread-safe: the owner serializes access (one per thread, shard or driver actor, merged at
// the end).

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace surge::tools {

class histogram {
 public:
  /// Values up to 2^63 - 1 are recorded; larger ones are clamped.
  histogram();

  void record(uint64_t value, uint64_t count = 1) {
    if (count == 0) {
      return;
    }
    value = std::min(value, max_value_);
    counts_[index_of(value)] += count;
    min_ = count_ == 0 ? value : std::min(min_, value);
    max_ = std::max(max_, value);
    count_ += count;
    sum_ += static_cast<long double>(value) * count;
  }
  /// Adds every count of `other` (same layout: every histogram has it).
  void merge(const histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;

  /// The value at percentile `p` in [0, 100]: the smallest recorded value (to the bucket's
  /// precision) that at least p% of the recorded values are at most; 0 when empty. p=100 is
  /// the exact maximum, and no result is outside [min(), max()].
  uint64_t percentile(double p) const;

  /// Largest relative error of percentile() against the exact order statistic.
  static constexpr double relative_precision() { return 1.0 / sub_buckets_half_; }

  /// Bucket index of `value`, and the range [lowest, highest] of values in bucket `index`.
  static std::size_t index_of(uint64_t value) {
    value = std::min(value, max_value_);
    if (value < sub_buckets_) {
      return static_cast<std::size_t>(value);
    }
    const unsigned msb = static_cast<unsigned>(std::bit_width(value)) - 1; // >= precision_bits_
    const unsigned shift = msb - (precision_bits_ - 1);                    // >= 1
    const uint64_t mantissa = value >> shift; // in [sub_buckets_half_, sub_buckets_)
    return static_cast<std::size_t>(sub_buckets_ + (shift - 1) * sub_buckets_half_ +
                                    (mantissa - sub_buckets_half_));
  }
  static uint64_t lowest_in(std::size_t index);
  static uint64_t highest_in(std::size_t index);

 private:
  static constexpr uint64_t max_value_ = (uint64_t{1} << 63) - 1;
  static constexpr unsigned precision_bits_ = 8;
  static constexpr uint64_t sub_buckets_ = uint64_t{1} << precision_bits_; // 256: exact below
  static constexpr uint64_t sub_buckets_half_ = sub_buckets_ / 2;          // 128 per octave
  static constexpr std::size_t bucket_count_ =
      sub_buckets_ + (63 - precision_bits_) * sub_buckets_half_;

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

} // namespace surge::tools
