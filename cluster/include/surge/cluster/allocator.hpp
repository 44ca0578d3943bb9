#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace surge::cluster {

/// A member as the allocator sees it (read from PostgreSQL).
struct member_state {
  std::string node_id;
  bool alive = false;    ///< its lease (heartbeat) has not expired
  bool draining = false; ///< asked to give every shard away
  int64_t age_ms = 0;    ///< since this incarnation joined
  /// Its lease expired, but less long ago than the allocator's own heartbeats took lately: the
  /// database (or the whole machine) may have been slow for everyone, so it keeps its shards
  /// (nothing of it is taken) and takes none, until it renews or the patience runs out.
  bool overdue = false;
};

/// A shard lease as the allocator sees it.
struct lease_state {
  uint32_t shard = 0;
  std::string owner; ///< empty: unassigned
  uint64_t epoch = 0;
  std::string target; ///< planned move, empty: none
};

/// No defaults of their own: membership_model fills them from membership_options.
struct allocator_options {
  /// Planned moves (handovers) under way at once, cluster-wide: the rebalancing rate.
  std::size_t max_moves = 0;
  /// A member joined this recently takes orphans but no rebalanced shards yet, so that a node
  /// that flaps does not pull shards to and fro.
  int64_t min_age_ms = 0;
};

/// What one allocator round changes. Every change names the epoch it was planned against, so
/// that applying a stale plan changes nothing (guarded UPDATEs).
struct allocation_plan {
  struct assign {
    uint32_t shard;
    std::string from; ///< previous owner (empty or dead)
    uint64_t epoch;   ///< planned against; the new lease gets epoch + 1
    std::string to;
  };
  struct move {
    uint32_t shard;
    std::string from;
    uint64_t epoch;
    std::string to;
  };
  struct cancel {
    uint32_t shard;
    uint64_t epoch;
  };
  std::vector<assign> assigns; ///< orphans: owner dead or none -> a live member (at once)
  std::vector<move> moves;     ///< planned handovers: the owner passes the shard to `to`
  std::vector<cancel> cancels; ///< planned moves whose target is gone or draining
  bool empty() const { return assigns.empty() && moves.empty() && cancels.empty(); }
};

/// One round of least-shard allocation:
/// - every shard whose owner is not alive (or none) goes at once to the eligible member (alive,
///   not draining) with the fewest shards;
/// - a planned move whose target is not eligible any more is cancelled;
/// - then, while fewer than `max_moves` moves are under way: shards of draining members move to
///   the least loaded eligible member; then, if the most and least loaded eligible members
///   (counting moves under way, and only members older than `min_age_ms` as receivers) differ by
///   more than one shard, one shard moves from the first to the second.
/// Deterministic: ties go to the smaller node id and the smaller shard.
allocation_plan allocate(const std::vector<member_state>& members,
                         const std::vector<lease_state>& leases, const allocator_options& opts);

} // namespace surge::cluster
