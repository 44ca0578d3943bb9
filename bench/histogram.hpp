#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace surge::bench {

/// A log-bucketed latency histogram in the spirit of HdrHistogram: values below 2^k are counted
/// exactly, every power of two above is split into 2^k equal sub-buckets. With k = 7 (128
/// sub-buckets) a reported value is within 1/256 (0.4 %) of the recorded one. Fixed size (about
/// 58 KiB), no allocation, O(1) record; not thread-safe (one per thread, merge() at the end).
class histogram {
 public:
  static constexpr unsigned sub_bits = 7;
  static constexpr uint64_t sub_count = uint64_t{1} << sub_bits;
  static constexpr std::size_t bucket_count = sub_count + (64 - sub_bits) * sub_count;

  void record(uint64_t v) {
    ++counts_[index_of(v)];
    ++total_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void merge(const histogram& other) {
    for (std::size_t i = 0; i < bucket_count; ++i) {
      counts_[i] += other.counts_[i];
    }
    total_ += other.total_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return total_; }
  uint64_t min() const { return total_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_); }

  /// The value at percentile `p` (0..100): the representative (midpoint) of the bucket holding
  /// the round(p% * count)-th smallest value, clamped to [min, max]; the exact max for the
  /// last one. 0 when empty.
  uint64_t percentile(double p) const {
    if (total_ == 0) {
      return 0;
    }
    p = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(total_) + 0.5);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    if (rank == total_) {
      return max_;
    }
    uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        return std::clamp(midpoint_of(i), min(), max_);
      }
    }
    return max_;
  }

  static std::size_t index_of(uint64_t v) {
    if (v < sub_count) {
      return static_cast<std::size_t>(v);
    }
    const unsigned msb = static_cast<unsigned>(std::bit_width(v)) - 1; // >= sub_bits
    const unsigned shift = msb - sub_bits;
    const uint64_t mantissa = v >> shift; // in [sub_count, 2 * sub_count)
    return static_cast<std::size_t>(sub_count + (msb - sub_bits) * sub_count +
                                    (mantissa - sub_count));
  }

  /// Smallest value counted in bucket `i`.
  static uint64_t lower_of(std::size_t i) {
    if (i < sub_count) {
      return i;
    }
    const uint64_t shift = (i - sub_count) / sub_count;
    const uint64_t mantissa = sub_count + (i - sub_count) % sub_count;
    return mantissa << shift;
  }

  /// Number of distinct values counted in bucket `i`.
  static uint64_t width_of(std::size_t i) {
    return i < sub_count ? 1 : uint64_t{1} << ((i - sub_count) / sub_count);
  }

  static uint64_t midpoint_of(std::size_t i) { return lower_of(i) + (width_of(i) - 1) / 2; }

 private:
  std::array<uint64_t, bucket_count> counts_{};
  uint64_t total_ = 0;
  double sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

} // namespace surge::bench
