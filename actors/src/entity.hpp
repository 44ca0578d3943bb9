#pragma once

// The lifecycle every entity actor shares (SKU, cart, order), private to actors/src.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <caf/error.hpp>
#include <caf/none.hpp>
#include <caf/result.hpp>
#include <caf/skip.hpp>

#include "surge/actors/errors.hpp"
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

/// An entity's life on this node: activation (commands are held back until its state is
/// loaded), the commands it received through its directory (passivation compares them with what
/// the directory sent, so none is lost), idleness, and the handover of its shard.
///
/// Every command that arrives through the directory goes through admit(); the actor arms its tick
/// with arm_tick() and, on each tick, asks passivate() whether it may go. Owned by its actor.
struct entity_life {
  bool loaded = false;
  bool handing_off = false; ///< the shard leaves this node: passivate once quiet
  uint64_t received = 0;    ///< commands received through the directory
  int64_t last_active_ms = 0;
  tick_schedule tick;

  /// The state is loaded (at `now_ms`): commands held back are decided from now on.
  void activated(int64_t now_ms) {
    loaded = true;
    last_active_ms = now_ms;
  }

  /// A command that came through the directory: held back (skip) while loading; else counted,
  /// and nullopt (decide it now).
  template <class T>
  std::optional<caf::result<T>> admit(int64_t now_ms) {
    if (!loaded) {
      return caf::result<T>{caf::skip};
    }
    ++received;
    last_active_ms = now_ms;
    return std::nullopt;
  }

  /// The entity's shard leaves this node (handoff_atom). Graceful: the handover starts (the
  /// actor passivates once quiet) and the result is none. Not graceful (the shard was taken): the
  /// errc::unavailable naming `what` that the actor must end its work with.
  caf::error hand_off(bool graceful, const std::string& what) {
    if (!graceful) {
      return make_error(errc::unavailable, "the shard of " + what + " moved");
    }
    handing_off = true;
    return caf::none;
  }

  /// Arms the next tick: `idle_ms` after the last command, at `also_ms` when sooner (e.g. the next
  /// hold expiry), and soon while handing off.
  template <class Self>
  void arm_tick(Self* self, int64_t now_ms, int64_t idle_ms,
                std::optional<int64_t> also_ms = std::nullopt) {
    int64_t next = last_active_ms + idle_ms;
    if (also_ms) {
      next = std::min(next, *also_ms);
    }
    if (handing_off) {
      next = std::min(next, now_ms + handoff_poll_ms);
    }
    tick.arm(self, next, now_ms);
  }

  /// On a tick: an actor with nothing in flight (`quiet`) that hands over, or that `may_idle` and
  /// has been idle for `idle_ms`, asks `dir` to forget this incarnation of `id`; when no message
  /// is on its way to it, the actor quits (true) and must not touch storage again.
  template <class Self, class Directory>
  bool passivate(Self* self, Directory& dir, const std::string& id, bool quiet, bool may_idle,
                 int64_t now_ms, int64_t idle_ms) {
    const bool idle = may_idle && now_ms - last_active_ms >= idle_ms;
    if (quiet && (handing_off || idle) && dir.try_release(id, self->address(), received)) {
      self->quit();
      return true;
    }
    return false;
  }
};

} // namespace surge::actors::detail
