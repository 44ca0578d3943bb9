#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "surge/cluster/membership_model.hpp"
#include "surge/cluster/shard_table.hpp"
#include "surge/persistence/membership_store.hpp"

namespace surge::cluster {

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
  /// Optional, for the node's metrics: each lease renewal (heartbeat) with its time in seconds
  /// and whether it renewed (false: no connection or the store call failed). On the heartbeat
  /// thread; must not block.
  std::function<void(double seconds, bool ok)> lease_renewed;
};

/// Opens a connection to the membership store (called again after one breaks).
using membership_store_factory =
    std::function<caf::expected<std::unique_ptr<persistence::membership_store>>()>;

/// The answer to a drain request (membership_store::set_draining), or the store's error.
using drain_done = std::function<void(caf::expected<persistence::drain_outcome>)>;
/// The answer to an undrain request: found (membership_store::clear_draining), or the error.
using undrain_done = std::function<void(caf::expected<bool>)>;

/// The time membership runs on: std::chrono::steady_clock::now in a node.
using membership_clock = std::function<std::chrono::steady_clock::time_point()>;

/// One member's rounds: executes membership_model against a membership store, the shard table
/// and the hooks, one step per call, on the caller's thread (blocking store calls; never call
/// it from a CAF scheduler thread). membership runs it on its threads; tests run it with a
/// manual clock and the in-memory store.
///
/// Two connections: one for the map (start, round, stop) and one for the heartbeat (beat), so
/// that a round waiting for a lease row never delays a renewal. A store call that fails ends
/// the step (logged); a broken connection is made anew by the next step that needs it.
///
/// Threads: start(), round() and stop() on one thread (the map's), beat() on one thread (the
/// heartbeat's, possibly the same); the rest from any thread.
class membership_driver {
 public:
  membership_driver(membership_options opts, shard_table& table, membership_hooks hooks,
                    membership_store_factory connect, membership_clock clock);
  membership_driver(const membership_driver&) = delete;
  membership_driver& operator=(const membership_driver&) = delete;

  const membership_options& options() const { return opts_; }
  const membership_hooks& hooks() const { return hooks_; }
  int64_t incarnation() const { return incarnation_; }

  /// Registers a new incarnation (larger than any earlier one of this process) and sets the
  /// lease deadline; empty string on success, else why not (nothing registered).
  std::string start();

  /// The heartbeat: renews the member lease, reporting `actors`, and moves the lease deadline
  /// (see membership_model). Returns true when the map round should run now (the lease lapsed,
  /// or this node was fenced out). Does nothing once fenced out or while the store is out of
  /// reach: the deadline passes by itself.
  bool beat(uint64_t actors);

  /// One map round: drop everything once fenced out; run the drain and undrain requests; run the
  /// allocator if the lease is live and this member wins the round's lock; read the map and apply
  /// it; revive a lapsed lease; finish handovers whose entities are gone (or overdue); wake the
  /// SKUs with holds in shards taken. A round that takes over half a lease is logged.
  void round();

  /// Asks that `node` be drained in the next round; `done` runs on the map thread with the
  /// store's answer (refused when no other member would still serve).
  void ask_drain(const std::string& node, drain_done done);
  /// As ask_drain(); `done(found)` is true when the node is draining now.
  void request_drain(const std::string& node, std::function<void(bool found)> done);
  /// Asks that a draining `node` be up again in the next round (the allocator then gives it
  /// shards back); `done` runs on the map thread.
  void ask_undrain(const std::string& node, undrain_done done);

  /// Marks the member left (unless fenced out or never connected) and ends the lease here.
  void stop();

  /// See membership_model::ready.
  bool ready() const;
  bool handovers_pending() const;

  /// When the loop should run the next round (by the driver's clock): in 10 ms during a
  /// handover, soon (membership_model::failover_poll) while a peer is suspected, else
  /// membership_model::next_round().
  std::chrono::steady_clock::time_point next_round() const;
  std::vector<node_info> nodes() const;
  std::vector<shard_info> shard_map() const;

 private:
  /// A healthy connection in `store`, made anew if needed; false when the store is out of reach.
  bool ensure(std::unique_ptr<persistence::membership_store>& store);

  /// Executes `steps` on the table and the hooks, in order.
  void execute(const std::vector<membership_step>& steps);

  /// Sets the table's lease deadline. REQUIRES: mtx_ held (so that it follows the model).
  void set_deadline_locked(std::chrono::steady_clock::time_point t);

  // Each step of round(); false: a store call failed and the round ends.
  void run_drain_requests();
  void end_dead_suspects();
  void report_unreachable_peers();
  bool allocate_round();
  bool read_and_apply(std::vector<uint32_t>& taken);
  bool finish_handovers();
  void round_steps();
  /// The longest this node's heartbeat or map round took within the last five leases, or the
  /// ones in flight have taken so far, at most two leases: when the database or the machine is
  /// slow for this node, it probably is for every member, and a member whose lease expired less
  /// than this ago is not taken for dead yet.
  std::chrono::milliseconds patience() const;
  /// A heartbeat or round that began at `began_ms` ended now: remembered for patience().
  void took(int64_t began_ms);
  int64_t now_ms() const;
  bool wake_holds(const std::vector<uint32_t>& taken);

  const membership_options opts_;
  shard_table& table_;
  const membership_hooks hooks_;
  const membership_store_factory connect_;
  const membership_clock clock_;

  int64_t incarnation_ = 0;                             ///< set by start()
  std::unique_ptr<persistence::membership_store> map_;  ///< the map thread's
  std::unique_ptr<persistence::membership_store> beat_; ///< the heartbeat thread's
  /// When the previous heartbeat ended (the heartbeat thread's): a late start is logged.
  std::chrono::steady_clock::time_point last_beat_end_{};
  /// How long this node's own heartbeats and rounds take lately (clock_ milliseconds): the
  /// allocator's patience with members whose lease just expired (see patience()).
  std::atomic<int64_t> beat_began_ms_{0};  ///< the heartbeat in flight, 0: none
  std::atomic<int64_t> round_began_ms_{0}; ///< the round in flight, 0: none
  std::atomic<int64_t> slow_ms_{0};        ///< the longest of either since slow_at_ms_
  std::atomic<int64_t> slow_at_ms_{0};

  mutable std::mutex mtx_; ///< guards model_, drains_, suspects_ and the unreachable peers
  membership_model model_;
  /// Peers whose connection to this node went down, since when: asked about (expire_if_gone)
  /// every round for up to a lease, or until they are not live members any more.
  std::map<std::string, std::chrono::steady_clock::time_point> suspects_;
  /// Peers whose connection went down and has not come back (while they are up), as last
  /// reported to the store and when (report_unreachable).
  std::set<std::string> unreachable_;
  std::vector<std::string> reported_;
  std::chrono::steady_clock::time_point reported_at_{};
  bool cut_off_ = false; ///< the last heartbeat said most members cannot reach this one
  /// A drain (`drained` set) or undrain (`undrained` set) waiting for the next round.
  struct status_request {
    std::string node;
    drain_done drained;
    undrain_done undrained;
  };
  std::vector<status_request> drains_;
};

} // namespace surge::cluster
