#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "surge/net/http.hpp"

namespace surge::net {

/// Rendered responses by key, each fresh for `ttl` after it was rendered: product pages
/// (`GET /p/{sku}`) and catalog listings, answered from memory on the I/O thread without a hop
/// to an actor or PostgreSQL — what a caching reverse proxy in front of the shop would do,
/// inside the node. Pages already tell browsers and CDNs `max-age=5`, so a server copy up to
/// `ttl` (http.page_cache, default 1 s) old promises nothing new. The bridge drops entries when
/// this node changes a product or its stock; other changes (holds, other nodes) show within
/// `ttl`.
///
/// Thread-safe (striped locks); at most `max_entries` pages (the oldest stripe entries are
/// dropped first when a stripe is full). A ttl of 0 disables it (get() finds nothing).
class page_cache {
 public:
  using clock = std::chrono::steady_clock;

  /// One rendered page, immutable once put: replacing it swaps the pointer, so a reader keeps
  /// the version it got.
  struct page {
    std::string body; ///< empty when `ok` holds the body (product pages and listings do)
    std::string etag;
    clock::time_point rendered;
    /// The response to a GET (or HEAD) as sent, made once when rendered; null when the owner
    /// keeps only the body.
    std::shared_ptr<const ready_response> ok = nullptr;
    /// The 304 to an If-None-Match naming `etag`, without a body; null as `ok`.
    std::shared_ptr<const ready_response> not_modified = nullptr;
  };

  explicit page_cache(std::chrono::milliseconds ttl, std::size_t max_entries = 65536)
      : ttl_(ttl)
      , per_stripe_(std::max<std::size_t>(1, max_entries / stripes)) {}

  bool enabled() const { return ttl_.count() > 0; }
  std::chrono::milliseconds ttl() const { return ttl_; }

  /// The page of `sku` if one younger than ttl is cached, else nullptr.
  std::shared_ptr<const page> get(const std::string& sku, clock::time_point now = clock::now()) {
    if (!enabled()) {
      return nullptr;
    }
    auto& s = stripe_of(sku);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.pages.find(sku);
    if (i == s.pages.end()) {
      return nullptr;
    }
    if (now - i->second->rendered >= ttl_) {
      s.pages.erase(i);
      return nullptr;
    }
    return i->second;
  }

  /// Taken before asking for the data of a page: put() with it stores nothing when this node
  /// dropped a page since (the data may predate that change).
  uint64_t generation() const { return drops_.load(std::memory_order_acquire); }

  void put(const std::string& sku, std::shared_ptr<const page> p, uint64_t generation) {
    if (!enabled()) {
      return;
    }
    auto& s = stripe_of(sku);
    std::lock_guard<std::mutex> guard{s.mtx};
    if (drops_.load(std::memory_order_acquire) != generation) {
      return;
    }
    if (s.pages.size() >= per_stripe_ && s.pages.count(sku) == 0) {
      // Full: drop what has gone stale, or else everything in this stripe (cheap, rare: only
      // with more distinct pages per ttl than max_entries).
      for (auto i = s.pages.begin(); i != s.pages.end();) {
        i = p->rendered - i->second->rendered >= ttl_ ? s.pages.erase(i) : std::next(i);
      }
      if (s.pages.size() >= per_stripe_) {
        s.pages.clear();
      }
    }
    s.pages[sku] = std::move(p);
  }

  void drop(const std::string& key) {
    auto& s = stripe_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    drops_.fetch_add(1, std::memory_order_acq_rel);
    s.pages.erase(key);
  }

  /// Drops every entry (and refuses what was rendered before).
  void clear() {
    drops_.fetch_add(1, std::memory_order_acq_rel);
    for (auto& s : stripes_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      s.pages.clear();
    }
  }

  std::size_t size() {
    std::size_t n = 0;
    for (auto& s : stripes_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      n += s.pages.size();
    }
    return n;
  }

  /// Told how a read that others waited on ended: the page made, or the error answered instead
  /// (exactly one of them is set).
  using waiter = std::function<void(std::shared_ptr<const page> made, const http_response* failed)>;

  /// Single flight for misses: the first caller that misses `key` at `generation` leads (true:
  /// it reads, puts, then calls finish() with both); a caller that misses it while that read is
  /// in flight is queued (false: finish() answers it). So a popular page missing from the cache
  /// costs one read, not one per request in the meantime. A waiter gets data read after the
  /// leader asked (at most as old as that read's duration when it is answered), and never data
  /// from before a drop: after one, misses lead a read of the new generation. An empty `w`
  /// only asks whether a read is in flight (and leads one if not).
  bool lead(const std::string& key, uint64_t generation, waiter w) {
    auto& s = stripe_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto [it, first] = s.in_flight.try_emplace(flight_key(key, generation));
    if (!first && w) {
      it->second.push_back(std::move(w));
    }
    return first;
  }

  /// Ends the read the leader of `key` at `generation` made: its waiters, to be answered by the
  /// caller (outside any lock of this cache).
  std::vector<waiter> finish(const std::string& key, uint64_t generation) {
    auto& s = stripe_of(key);
    std::vector<waiter> out;
    std::lock_guard<std::mutex> guard{s.mtx};
    if (auto it = s.in_flight.find(flight_key(key, generation)); it != s.in_flight.end()) {
      out = std::move(it->second);
      s.in_flight.erase(it);
    }
    return out;
  }

 private:
  static constexpr std::size_t stripes = 16;

  struct stripe {
    std::mutex mtx;
    std::unordered_map<std::string, std::shared_ptr<const page>> pages;
    std::unordered_map<std::string, std::vector<waiter>> in_flight; ///< lead() / finish()
  };

  static std::string flight_key(const std::string& key, uint64_t generation) {
    return key + '\x1e' + std::to_string(generation);
  }

  stripe& stripe_of(const std::string& sku) {
    return stripes_[std::hash<std::string>{}(sku) % stripes];
  }

  const std::chrono::milliseconds ttl_;
  const std::size_t per_stripe_;
  std::atomic<uint64_t> drops_{0};
  std::array<stripe, stripes> stripes_;
};

} // namespace surge::net
