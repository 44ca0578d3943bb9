#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "surge/cluster/membership_driver.hpp"
#include "surge/cluster/membership_model.hpp"
#include "surge/cluster/shard_table.hpp"

namespace surge::cluster {

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
/// The decisions are membership_model's; membership_driver executes them against the store
/// (membership_store: PostgreSQL, or any other behind the factory). This class adds the
/// threads: the map round's (every `heartbeat`, every 10 ms while a handover is under way, or
/// when poked) and the heartbeat's (every `heartbeat`), each with its own store connection.
///
/// Threads: two of their own (blocking store calls). Public calls are thread-safe.
class membership {
 public:
  /// A member on PostgreSQL at `opts.pg_url`.
  membership(membership_options opts, shard_table& table, membership_hooks hooks);
  /// A member on the stores `connect` opens (one per thread, again after one broke).
  membership(membership_options opts, shard_table& table, membership_hooks hooks,
             membership_store_factory connect);
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

  /// Stops the threads and marks the member left (its lease ends now, so that its shards are
  /// reassigned at once), unless another incarnation fenced it out. Idempotent.
  void stop();

  /// Asks that `node` be drained; `done(found)` runs on the membership thread.
  void request_drain(const std::string& node, std::function<void(bool found)> done);
  /// As request_drain(), with the store's whole answer (refused when no other member would
  /// still serve: membership_store::set_draining).
  void ask_drain(const std::string& node, drain_done done);
  /// Asks that a draining `node` be up again (it then gets shards back); `done(found)` runs on
  /// the membership thread.
  void ask_undrain(const std::string& node, undrain_done done);

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
