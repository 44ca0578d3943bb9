#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace surge::actors {

/// A request's deadline travels with the entity calls made for it: the bridge stamps each call
/// with the Unix time (system clock, milliseconds) by which its answer is due, and an entity that
/// calls another on the request's behalf gives that call what is left, not a fixed timeout. The
/// system clock, not a test's business clock (entity_env::now_ms), because it bounds real waits;
/// it is shared by every node of a cluster on one host and kept in step across hosts by NTP.
/// 0 means no request waits (background work), and the caller's own limit applies.

/// Wall clock in Unix milliseconds (system clock); entity_env::now_ms defaults to it.
int64_t system_now_ms();

/// The deadline of a request answered within `budget` from now.
inline int64_t deadline_after(std::chrono::milliseconds budget) {
  return system_now_ms() + budget.count();
}

/// How long a call made for a request with `deadline_ms` may wait: what is left of it, or
/// `fallback` when no request waits. nullopt once the deadline has passed: nobody waits for the
/// answer any more, so the caller answers caf::sec::request_timeout at once and calls nobody.
inline std::optional<std::chrono::milliseconds> call_budget(int64_t deadline_ms,
                                                            std::chrono::milliseconds fallback) {
  if (deadline_ms <= 0) {
    return fallback;
  }
  const int64_t now = system_now_ms();
  if (deadline_ms <= now) {
    return std::nullopt;
  }
  return std::chrono::milliseconds{deadline_ms - now};
}

} // namespace surge::actors
