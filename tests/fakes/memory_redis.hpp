#pragma once

// In-memory twins of the Redis snapshot cache and cart store, for unit tests. Header-only.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "fake_server.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/journal.hpp"

namespace surge::fakes {

/// The "Redis server" that the memory cache and cart store instances share. Thread-safe.
/// Time is steady_clock plus an offset that tests move with advance(), so that expiry is
/// tested without sleeping.
class memory_redis_state {
 public:
  using clock = std::chrono::steady_clock;

  /// While down, every call fails with errc::unavailable and breaks the instance.
  void set_down(bool down) {
    std::lock_guard<std::mutex> guard{mtx_};
    down_ = down;
  }

  /// Moves this server's clock forward by `d`.
  void advance(clock::duration d) {
    std::lock_guard<std::mutex> guard{mtx_};
    offset_ += d;
  }

  /// Forgets everything, like a Redis restart without persistence.
  void flush() {
    std::lock_guard<std::mutex> guard{mtx_};
    values_.clear();
  }

 private:
  friend class memory_redis_connection;

  struct value {
    std::string bytes;
    std::optional<clock::time_point> expires;
  };

  /// REQUIRES: mtx_ held.
  clock::time_point now_locked() const { return clock::now() + offset_; }

  /// REQUIRES: mtx_ held. The live value of `key`, or nullptr.
  const value* find_locked(const std::string& key) {
    auto i = values_.find(key);
    if (i == values_.end()) {
      return nullptr;
    }
    if (i->second.expires && *i->second.expires <= now_locked()) {
      values_.erase(i);
      return nullptr;
    }
    return &i->second;
  }

  std::mutex mtx_;
  std::map<std::string, value> values_;
  clock::duration offset_{0};
  bool down_ = false;
};

/// Base of the two stores: one "connection" to a memory_redis_state. Not thread-safe.
class memory_redis_connection {
 public:
  memory_redis_connection(std::shared_ptr<memory_redis_state> state, std::string prefix)
      : state_(std::move(state))
      , prefix_(std::move(prefix)) {}

 protected:
  /// REQUIRES: state mutex held.
  caf::error check_locked(bool down) {
    return check_connection(healthy_, down, "memory redis is down");
  }

  /// SET prefix_ + `key` to `bytes`, expiring `ttl` from now on the state's clock (never without
  /// one).
  caf::error write(const std::string& key, std::string bytes,
                   std::optional<std::chrono::seconds> ttl) {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked(state_->down_)) {
      return err;
    }
    std::optional<memory_redis_state::clock::time_point> expires;
    if (ttl) {
      expires = state_->now_locked() + *ttl;
    }
    state_->values_[prefix_ + key] = {std::move(bytes), expires};
    return caf::none;
  }

  /// GET prefix_ + `key`: its bytes, or nothing when it is absent or expired.
  caf::expected<std::optional<std::string>> read(const std::string& key) {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked(state_->down_)) {
      return err;
    }
    const auto* v = state_->find_locked(prefix_ + key);
    if (v == nullptr) {
      return std::optional<std::string>{};
    }
    return std::optional<std::string>{v->bytes};
  }

  const std::shared_ptr<memory_redis_state> state_;
  const std::string prefix_;
  bool healthy_ = true;
};

/// Twin of the Redis snapshot cache: last write wins, no expiry.
class memory_snapshot_cache final : public persistence::snapshot_cache,
                                    private memory_redis_connection {
 public:
  explicit memory_snapshot_cache(std::shared_ptr<memory_redis_state> state,
                                 std::string prefix = "surge:")
      : memory_redis_connection(std::move(state), std::move(prefix)) {}

  bool healthy() const override { return healthy_; }

  caf::error put(const persistence::snapshot& snap) override {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) {
      bytes[i] = static_cast<char>((snap.seq >> (8 * (7 - i))) & 0xff);
    }
    bytes += snap.payload;
    return write("snap:" + snap.stream, std::move(bytes), std::nullopt);
  }

  caf::expected<std::optional<persistence::snapshot>> get(const std::string& stream) override {
    auto stored = read("snap:" + stream);
    if (!stored) {
      return stored.error();
    }
    if (!*stored) {
      return std::optional<persistence::snapshot>{};
    }
    const auto& bytes = **stored;
    uint64_t seq = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      seq = (seq << 8) | static_cast<unsigned char>(bytes[i]);
    }
    return std::optional<persistence::snapshot>{
        persistence::snapshot{stream, seq, bytes.substr(8)}};
  }
};

/// Twin of the Redis cart store: values expire after their TTL on the state's clock.
class memory_cart_store final : public persistence::cart_store, private memory_redis_connection {
 public:
  explicit memory_cart_store(std::shared_ptr<memory_redis_state> state,
                             std::string prefix = "surge:")
      : memory_redis_connection(std::move(state), std::move(prefix)) {}

  bool healthy() const override { return healthy_; }

  caf::error put(const std::string& cart_id, const std::string& payload,
                 std::chrono::seconds ttl) override {
    if (ttl.count() <= 0) {
      return persistence::make_error(persistence::errc::invalid, "cart TTL must be positive");
    }
    return write("cart:" + cart_id, payload, ttl);
  }

  caf::expected<std::optional<std::string>> get(const std::string& cart_id) override {
    return read("cart:" + cart_id);
  }
};

} // namespace surge::fakes
