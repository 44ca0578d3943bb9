#pragma once

// Membership options for the cluster tests: one node's id and shard count, and the times its
// rounds run on (every case picks its own, far enough apart for what it checks).

#include <chrono>
#include <cstdint>
#include <string>

#include "surge/cluster/membership_model.hpp"

namespace surge::test {

/// The times of membership's rounds.
struct membership_times {
  std::chrono::milliseconds heartbeat;
  std::chrono::milliseconds lease;
  std::chrono::milliseconds min_age;
  std::chrono::milliseconds handoff_timeout;
};

/// Options of node `id` over `shards` shards on `times`; at most 16 moves a round.
inline cluster::membership_options membership_options_of(const std::string& id, uint32_t shards,
                                                         const membership_times& times) {
  cluster::membership_options o;
  o.node_id = id;
  o.shards = shards;
  o.heartbeat = times.heartbeat;
  o.lease = times.lease;
  o.max_moves = 16;
  o.min_age = times.min_age;
  o.handoff_timeout = times.handoff_timeout;
  o.drain_handoff_timeout = times.handoff_timeout;
  o.cut_off_grace = std::chrono::seconds{1};
  return o;
}

} // namespace surge::test
