#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "surge/net/address.hpp"

namespace surge::net {

/// Token buckets per client address (limits.ip_rate, limits.ip_burst, limits.ip_table), in a
/// fixed-size table: O(1) per request and the same memory whatever the number of addresses.
///
/// Each address has a bucket of `burst` tokens that refills at `rate` tokens per second; a
/// request takes one token or is refused with the time until one is there. A bucket is kept as
/// its "theoretical arrival time" (GCRA): the moment it will be full again, so one integer per
/// address and no refill loop.
///
/// The table is set-associative: an address hashes (with a per-process random key, so nobody
/// can aim addresses at one set) to a set of `ways` entries. A new address takes a free entry
/// of its set, or else replaces the entry whose bucket is fullest (earliest full-again time). A
/// forgotten address comes back with a full bucket, which is what an idle address would have
/// anyway; an address that has just spent tokens is forgotten only after every other address of
/// its set has spent more, so flooding the table with fresh addresses cannot reset a busy
/// address's bucket or take its entry.
///
/// Thread safety: acquire() may run on every I/O thread at once. One table is shared by all
/// threads (per-thread tables would give an address a bucket per thread, and connections are
/// spread over threads); its sets are guarded by striped mutexes, so two threads only wait for
/// each other when their addresses fall into the same stripe, for a few dozen instructions. A
/// mutex rather than a spin lock: I/O threads may be preempted on a busy machine.
class rate_limiter {
 public:
  /// Monotonic time since any fixed origin (injected by tests).
  using clock = std::function<std::chrono::nanoseconds()>;

  /// limits.ip_rate, limits.ip_burst, limits.ip_table (no defaults of their own).
  struct options {
    uint32_t rate = 0;     ///< tokens per second; 0: every request is allowed
    uint32_t burst = 0;    ///< bucket size, >= 1
    std::size_t table = 0; ///< entries (rounded up to a multiple of `ways`)
  };

  /// Entries per set.
  static constexpr std::size_t ways = 8;

  explicit rate_limiter(options o, clock now = steady_now);
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  struct decision {
    bool allowed = true;
    /// When refused: whole seconds until a token is there, at least 1.
    std::chrono::seconds retry_after{0};
  };

  /// Takes a token from `client`'s bucket, or says when to retry. O(ways).
  decision acquire(const ip_address& client);

  /// Entries of the table (fixed at construction).
  std::size_t capacity() const { return entries_.size(); }
  /// Entries in use right now (a scan of the table: for tests and diagnostics).
  std::size_t tracked() const;
  /// Bytes the table and its locks take (fixed at construction).
  std::size_t memory_bytes() const;

  static std::chrono::nanoseconds steady_now();

 private:
  struct entry {
    std::array<uint8_t, 16> key{};
    int64_t full_at = empty; ///< ns: when the bucket is full again; `empty`: unused entry
  };
  static constexpr int64_t empty = INT64_MIN;
  struct alignas(64) stripe {
    std::mutex mu;
  };

  std::size_t set_of(const ip_address& a) const;

  // Set at construction, read-only afterwards.
  const int64_t interval_ns_;  ///< time per token; 0 when limits are off
  const int64_t tolerance_ns_; ///< (burst - 1) * interval: how far full_at may run ahead of now
  const uint64_t key0_;
  const uint64_t key1_;
  const clock now_;
  const std::size_t sets_;
  const std::size_t stripe_count_; ///< set s is guarded by stripes_[s % stripe_count_]

  // The table: each set guarded by its stripe's mutex.
  std::vector<entry> entries_; ///< sets_ * ways; set s is [s * ways, (s + 1) * ways)
  std::unique_ptr<stripe[]> stripes_;
};

} // namespace surge::net
