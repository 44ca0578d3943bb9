#pragma once

// What every in-memory "server" of tests/fakes offers its tests: faults injected into the calls
// of its connections. Header-only.

#include <cstddef>
#include <mutex>
#include <optional>

#include <caf/error.hpp>

#include "surge/persistence/errors.hpp"

namespace surge::fakes {

/// What a call on a connection whose health is `healthy` meets when its server is `down`:
/// errc::unavailable when it is broken, or when the server is down (which breaks it; the error
/// says `down_message`); nothing otherwise.
inline caf::error check_connection(bool& healthy, bool down, const char* down_message) {
  if (!healthy) {
    return persistence::make_error(persistence::errc::unavailable, "connection is broken");
  }
  if (down) {
    healthy = false;
    return persistence::make_error(persistence::errc::unavailable, down_message);
  }
  return caf::none;
}

/// Base of a fake server's shared state: the mutex that guards that state, whether the server is
/// down, and the faults its next writes meet. Thread-safe.
class fake_server {
 public:
  /// The next `count` writes fail with `code`. With `applied`, they are applied first and then
  /// fail (a write whose outcome is unknown to the caller). errc::unavailable also breaks the
  /// writing connection (healthy() turns false).
  void fail_next(persistence::errc code, std::size_t count = 1, bool applied = false) {
    std::lock_guard<std::mutex> guard{mtx_};
    fail_code_ = code;
    fail_count_ = count;
    fail_applied_ = applied;
  }

  /// While down, every call fails with errc::unavailable and breaks its connection, and
  /// connecting fails.
  void set_down(bool down) {
    std::lock_guard<std::mutex> guard{mtx_};
    down_ = down;
  }

  /// A fault a write meets.
  struct fault {
    persistence::errc code = persistence::errc::unavailable;
    bool applied = false; ///< the write is applied, then reported failed
  };

 protected:
  /// REQUIRES: mtx_ held. The fault the next write meets (and uses up), if any.
  std::optional<fault> take_fault_locked() {
    if (fail_count_ == 0) {
      return std::nullopt;
    }
    --fail_count_;
    return fault{fail_code_, fail_applied_};
  }

  /// REQUIRES: mtx_ held.
  bool down_locked() const { return down_; }

  /// What a call on a connection whose health is `healthy` meets: errc::unavailable when it is
  /// broken, or when the server is down (which breaks it). REQUIRES: mtx_ held.
  caf::error check_connection_locked(bool& healthy) const {
    return check_connection(healthy, down_, "the server is down");
  }

  mutable std::mutex mtx_;

 private:
  bool down_ = false;
  persistence::errc fail_code_ = persistence::errc::unavailable;
  std::size_t fail_count_ = 0;
  bool fail_applied_ = false;
};

} // namespace surge::fakes
