#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace surge::actors {

/// Holds placed per SKU on this node over a sliding window of `window_s` seconds in 1 s buckets
/// (GET /admin/v1/hot-skus?scope=local). The SKU actors of the shards this node owns feed it
/// (record(), once per hold placed or grown, after its commit); the admin API reads the top.
///
/// Memory is bounded: a SKU with no hold placed for a whole window is forgotten (swept at most
/// once a second per stripe), and at most `max_skus` SKUs are tracked at once (a SKU seen while
/// its stripe is full is not counted until room frees up: see dropped()).
///
/// Time is the caller's (Unix milliseconds), so tests drive it by hand; a time older than what a
/// bucket holds is counted in the current bucket's second only if it is still in the window.
///
/// Thread-safe: 16 stripes, each a mutex over its SKUs' buckets; record() takes one stripe's
/// lock for a hash lookup and an increment. top() takes each stripe's lock in turn.
class hot_sku_tracker {
 public:
  static constexpr int64_t window_s = 10;

  struct entry {
    std::string sku;
    uint64_t reservations = 0; ///< holds placed in the window
    double rate = 0;           ///< reservations / window_s
  };

  explicit hot_sku_tracker(std::size_t max_skus = 65536);
  hot_sku_tracker(const hot_sku_tracker&) = delete;
  hot_sku_tracker& operator=(const hot_sku_tracker&) = delete;

  /// One hold placed on `sku` at `now_ms`.
  void record(const std::string& sku, int64_t now_ms);

  /// The `limit` SKUs with the most holds placed in the window that ends at `now_ms` (the
  /// seconds now_s - window_s + 1 .. now_s), most first, ties by SKU; SKUs with none are left
  /// out.
  std::vector<entry> top(std::size_t limit, int64_t now_ms);

  /// SKUs tracked right now (idle ones not yet swept included).
  std::size_t size();

  /// Holds not counted because their SKU found its stripe full.
  uint64_t dropped();

 private:
  static constexpr std::size_t stripe_count = 16;

  /// One SKU's buckets: bucket i counts the second `second[i]` (i = second mod window_s).
  struct counts {
    std::array<int64_t, window_s> second{};
    std::array<uint32_t, window_s> n{};
    int64_t last = 0; ///< the newest second counted
    /// Holds placed in the window ending at second `now_s`.
    uint64_t in_window(int64_t now_s) const;
  };

  struct stripe {
    std::mutex mtx;
    std::unordered_map<std::string, counts> skus; // guarded by mtx
    int64_t swept = 0;                            ///< the second of the last sweep
    uint64_t dropped = 0;
    /// Forgets SKUs idle for a whole window (at most once a second). REQUIRES: mtx held.
    void sweep(int64_t now_s);
  };

  stripe& stripe_of(const std::string& sku);

  const std::size_t per_stripe_;
  std::array<stripe, stripe_count> stripes_;
};

} // namespace surge::actors
