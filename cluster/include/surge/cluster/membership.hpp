#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "surge/cluster/allocator.hpp"
#include "surge/cluster/shard_table.hpp"

namespace surge::cluster {

struct membership_options {
  std::string node_id;
  std::string pg_url;
  std::string address;       ///< host:port of this node's middleman (cluster.host/port)
  std::string http_address;  ///< host:port of the storefront
  std::string admin_address; ///< host:port of the admin API
  uint32_t shards = 256;
  std::chrono::milliseconds heartbeat{250}; ///< member heartbeat and shard map refresh
  std::chrono::milliseconds lease{2000};    ///< a member's lease on all its shards
  std::size_t max_moves = 16;               ///< planned handovers under way cluster-wide
  std::chrono::milliseconds min_age{2000};  ///< before a new member receives rebalanced shards
  std::chrono::milliseconds handoff_timeout{5000};
};

/// What membership asks of the node (the entity directories, the gateway).
struct membership_hooks {
  /// The shard leaves: graceful (handover) or not (lease lost). See directory::release_shard.
  std::function<void(uint32_t shard, bool graceful)> release;
  /// Local entities of the shard still alive (a handover completes at 0).
  std::function<std::size_t(uint32_t shard)> local_count;
  /// Activates a SKU that has live holds in a shard this node just took, so that their expiry
  /// runs (G6) even if nobody asks for the SKU.
  std::function<void(const std::string& sku)> wake_sku;
  /// Live entity actors on this node (reported in the members row).
  std::function<uint64_t()> actors;
  /// Connect to the gateway of `node` (asynchronously).
  std::function<void(const std::string& node, const std::string& host, uint16_t port)> connect;
};

/// One row of GET /admin/v1/cluster.
struct node_info {
  std::string node_id;
  std::string address;
  std::string http_address;
  std::string admin_address;
  std::string status; ///< up, draining, left, down (lease expired)
  uint32_t shards = 0;
  uint64_t actors = 0;
  int64_t heartbeat_age_ms = 0;
};

struct shard_info {
  uint32_t shard = 0;
  std::string owner;
  uint64_t epoch = 0;
  std::string target;
};

/// This node's membership of the cluster, PostgreSQL being the arbiter (DESIGN.md "Cluster"):
///
/// - start() registers the member (a new incarnation; the shards this node id still owns get
///   a new epoch, fencing any older incarnation), creates the shard rows on first use, checks
///   that `shards` matches the database, and runs one round.
/// - Every `heartbeat` (sooner when poked) a round: renew the member lease (one row: all
///   shards at once) and set this node's lease deadline a heartbeat before PostgreSQL's expiry;
///   run the allocator if this node wins the advisory lock for the round; read the shard map
///   and apply it (take shards, hand over planned moves, drop shards lost); finish handovers
///   whose entities are gone (owner := target, epoch + 1, in one guarded UPDATE); connect to
///   new peers.
/// - A round that cannot reach PostgreSQL renews nothing: the lease deadline passes and the
///   node stops serving its shards before PostgreSQL gives them away.
///
/// Thread: one of its own (blocking libpqxx calls). Public calls are thread-safe.
class membership {
 public:
  membership(membership_options opts, shard_table& table, membership_hooks hooks);
  ~membership(); ///< stop()
  membership(const membership&) = delete;
  membership& operator=(const membership&) = delete;

  /// Registers and runs the first round; empty string on success, else why not.
  std::string start();

  /// True once this node has a live lease and has read the shard map.
  bool ready() const;

  /// Graceful leave: mark this member draining, wait (up to `patience`) until other members
  /// took every shard, then mark it left. Returns at once when no other member could take them.
  void leave(std::chrono::milliseconds patience);

  /// Stops the thread (without leaving: the lease simply runs out). Idempotent.
  void stop();

  /// Asks that `node` be drained; `done(found)` runs on the membership thread.
  void request_drain(const std::string& node, std::function<void(bool found)> done);

  /// Wakes the loop for a round now (rate-limited to one per 20 ms).
  void poke();

  /// The members and shards as last read.
  std::vector<node_info> nodes() const;
  std::vector<shard_info> shard_map() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace surge::cluster
