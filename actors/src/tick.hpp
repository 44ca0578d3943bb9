#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

#include "surge/actors/messages.hpp"

namespace surge::actors::detail {

/// Interval of an entity's tick while it hands over: how soon a quiet actor notices it may go.
constexpr int64_t handoff_poll_ms = 5;

/// When an entity actor next gets its `tick` (idle check, hold expiry): one delayed message for
/// the earliest deadline, not one per change. Owned by its actor.
struct tick_schedule {
  int64_t at_ms = std::numeric_limits<int64_t>::max(); ///< the tick in flight, if any

  /// Sends `self` a tick at `next_ms` (wall clock) unless one comes at or before it already.
  template <class Self>
  void arm(Self* self, int64_t next_ms, int64_t now_ms) {
    if (next_ms >= at_ms) {
      return;
    }
    at_ms = next_ms;
    const int64_t delay = std::max<int64_t>(next_ms - now_ms, 0) + 1;
    self->delayed_send(self, std::chrono::milliseconds{delay}, tick_atom::value);
  }

  /// Called when the tick arrives.
  void fired() { at_ms = std::numeric_limits<int64_t>::max(); }
};

} // namespace surge::actors::detail
