#include "surge/net/rate_limiter.hpp"

#include <algorithm>
#include <cstring>
#include <random>

namespace surge::net {

namespace {

constexpr int64_t ns_per_s = 1'000'000'000;
constexpr std::size_t max_stripes = 256;

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t random_key() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

std::chrono::nanoseconds rate_limiter::steady_now() {
  return std::chrono::steady_clock::now().time_since_epoch();
}

rate_limiter::rate_limiter(options o, clock now)
    : interval_ns_(o.rate == 0 ? 0 : ns_per_s / static_cast<int64_t>(o.rate))
    , tolerance_ns_(static_cast<int64_t>(std::max<uint32_t>(o.burst, 1) - 1) * interval_ns_)
    , key0_(random_key())
    , key1_(random_key())
    , now_(std::move(now))
    , sets_(std::max<std::size_t>(1, (o.table + ways - 1) / ways))
    , stripe_count_(std::min(sets_, max_stripes))
    , entries_(sets_ * ways)
    , stripes_(std::make_unique<stripe[]>(stripe_count_)) {}

std::size_t rate_limiter::set_of(const ip_address& a) const {
  uint64_t lo = 0;
  uint64_t hi = 0;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  const uint64_t h = mix(mix(lo ^ key0_) ^ hi ^ key1_);
  // Maps h onto [0, sets_) without a division (Lemire's multiply-shift).
  return static_cast<std::size_t>((static_cast<unsigned __int128>(h) * sets_) >> 64);
}

rate_limiter::decision rate_limiter::acquire(const ip_address& client) {
  if (interval_ns_ == 0) {
    return {};
  }
  const int64_t now = now_().count();
  const std::size_t s = set_of(client);
  entry* const set = &entries_[s * ways];
  std::lock_guard lk(stripes_[s % stripe_count_].mu);

  entry* e = nullptr;
  entry* victim = set;
  for (std::size_t i = 0; i < ways; ++i) {
    if (set[i].full_at != empty && set[i].key == client.bytes) {
      e = &set[i];
      break;
    }
    if (set[i].full_at < victim->full_at) {
      victim = &set[i]; // a free entry (full_at == empty) first, else the fullest bucket
    }
  }
  if (e == nullptr) {
    e = victim;
    e->key = client.bytes;
    e->full_at = now; // a new (or forgotten) address starts with a full bucket
  }
  const int64_t base = std::max(e->full_at, now);
  if (base - now > tolerance_ns_) {
    const int64_t wait = base - now - tolerance_ns_;
    return {false, std::chrono::seconds{std::max<int64_t>(1, (wait + ns_per_s - 1) / ns_per_s)}};
  }
  e->full_at = base + interval_ns_;
  return {};
}

std::size_t rate_limiter::tracked() const {
  std::size_t n = 0;
  for (std::size_t s = 0; s < sets_; ++s) {
    std::lock_guard lk(stripes_[s % stripe_count_].mu);
    for (std::size_t i = 0; i < ways; ++i) {
      n += entries_[s * ways + i].full_at != empty ? 1 : 0;
    }
  }
  return n;
}

std::size_t rate_limiter::memory_bytes() const {
  return sizeof(*this) + entries_.capacity() * sizeof(entry) + stripe_count_ * sizeof(stripe);
}

} // namespace surge::net
