#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <caf/actor.hpp>

namespace surge::actors {

/// Where entities live in the cluster: entity key ("sku:ABC-1") -> shard -> owning node.
/// Implemented by cluster/ (shard_table); actors/ only asks. A directory without a placement
/// runs every entity locally and unfenced (a node without a cluster, unit tests).
///
/// Thread-safe and cheap (atomic reads): asked on every acquire().
class placement {
 public:
  enum class where : uint8_t {
    local,  ///< this node owns the shard at `epoch` and its lease is live
    remote, ///< `gateway` (on node `node`) owns it as far as this node knows
    none,   ///< nobody serves it right now (unassigned, handing over, lease lost): wait
  };

  struct route {
    where at = where::none;
    uint64_t epoch = 0;
    caf::actor gateway; ///< local: this node's gateway; remote: the owner's
    std::string node;
  };

  virtual ~placement() = default;

  /// The shard of entity `kind:id`: FNV-1a of the key mod the number of shards; the same on
  /// every node and build. Takes the key in two parts so that callers build no string.
  virtual uint32_t shard_of(std::string_view kind, std::string_view id) const = 0;

  /// The number of shards (fixed for the life of a database).
  virtual uint32_t shards() const = 0;

  virtual route resolve(uint32_t shard) const = 0;

  /// True while this node may still act for `shard` at `epoch`: it owns it at that epoch and
  /// its lease has not run out by this node's own clock (it stops before PostgreSQL would give
  /// the shard away).
  virtual bool serving(uint32_t shard, uint64_t epoch) const = 0;

  /// serving(), with at least `margin` left before this node's lease runs out: for calls whose
  /// effect outlives them (a payment sent now may land later than it was sent).
  virtual bool serving_for(uint32_t shard, uint64_t epoch,
                           std::chrono::milliseconds margin) const = 0;

  /// Someone was told "moved" or found no owner: read the shard map again soon.
  virtual void refresh_soon() = 0;

  /// This node's id.
  virtual const std::string& node_id() const = 0;
};

} // namespace surge::actors

namespace surge::actors {

/// The lease an entity incarnation acts under: its shard and the epoch at which this node owned
/// it when the incarnation was spawned. shard < 0: unfenced (no cluster).
struct entity_fence {
  int32_t shard = -1;
  uint64_t epoch = 0;
};

} // namespace surge::actors
