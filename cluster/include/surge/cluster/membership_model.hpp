#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "surge/cluster/allocator.hpp"
#include "surge/cluster/node_info.hpp"
#include "surge/cluster/shard_table.hpp"
#include "surge/persistence/membership_store.hpp"

namespace surge::cluster {

/// A member's settings. No defaults of their own: the node fills them from its settings
/// (runtime/wiring.hpp: membership_options_of), as tests do from the defaults.
struct membership_options {
  std::string node_id;
  std::string pg_url;
  std::string address;                   ///< host:port of this node's middleman (cluster.host/port)
  std::string http_address;              ///< host:port of the storefront
  std::string admin_address;             ///< host:port of the admin API
  uint32_t shards = 0;                   ///< cluster.shards
  std::chrono::milliseconds heartbeat{}; ///< cluster.heartbeat: heartbeat and shard map refresh
  std::chrono::milliseconds lease{};     ///< cluster.lease: a member's lease on all its shards
  std::size_t max_moves = 0;             ///< cluster.max_moves: handovers under way cluster-wide
  /// Before a new member receives rebalanced shards (config::derived_options).
  std::chrono::milliseconds min_age{};
  /// A planned handover whose entities are not gone by then stops them and completes
  /// (config::derived_options)...
  std::chrono::milliseconds handoff_timeout{};
  /// ... or by this, while this member drains (a planned stop: in-flight work may take its time).
  std::chrono::milliseconds drain_handoff_timeout{};
  /// How long a member most others cannot reach keeps its lease after it heard so: what a charge
  /// sent just before needs to land (config::derived_options::payment_lease_margin).
  std::chrono::milliseconds cut_off_grace{};
  std::string version = {}; ///< this node's build version (PROJECT_VERSION), stored with the member
  uint32_t protocol = 0;    ///< this node's cluster protocol (protocol.hpp), stored with the member
};

/// One thing the model asks of the node, executed in the order given.
struct membership_step {
  enum class kind : uint8_t {
    set_shard, ///< shard_table::set(shard, state, epoch, node)
    release,   ///< membership_hooks::release(shard, graceful)
    connect,   ///< membership_hooks::connect(node, host, port)
  };
  /// Why a shard is released (for the log).
  enum class cause : uint8_t {
    handover,  ///< graceful: a planned move to `node`
    new_epoch, ///< ours still, at a new epoch (a restart of this node id)
    lost,      ///< another owner (`node`, empty: none) at `epoch`
    fenced,    ///< another incarnation registered this node id
  };
  kind what = kind::set_shard;
  uint32_t shard = 0;
  shard_table::state state = shard_table::state::none;
  uint64_t epoch = 0;
  std::string node; ///< set_shard: owner; release: the new owner; connect: the peer
  bool graceful = false;
  cause why = cause::lost;
  std::string host;
  uint16_t port = 0;
};

/// One member's view of the cluster as a pure model (DESIGN.md "Cluster"): its inputs are the
/// time, the membership store's answers and the node's answers (entities left in a shard,
/// peers connected); its outputs are decisions — the lease deadline, the allocator's changes,
/// and the steps that keep the shard table and the entity directories in line with the map.
/// It does no I/O and reads no clock; membership_driver executes it against a store.
///
/// The lease: this node may act for its shards until the lease deadline, a heartbeat before
/// the store's expiry of the lease it last renewed. A renewal that comes back after the
/// deadline passed (the node was paused or cut off) does not extend it: the lease "lapsed", and
/// only applying the map read afterwards revives it (from when that renewal was sent), so that
/// shards lost meanwhile are dropped before anything is served. A renewal refused (another
/// incarnation of this node id registered) fences this node out for good: it drops every shard.
///
/// Not thread-safe: its owner serialises the calls.
class membership_model {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit membership_model(membership_options opts);

  const membership_options& options() const { return opts_; }

  // -- The lease ---------------------------------------------------------------------------

  /// The member registered; the answer came at `now`. Returns the lease deadline.
  time_point registered(time_point now);

  struct beat_outcome {
    std::optional<time_point> deadline; ///< the new lease deadline, if it changed
    bool lapsed = false;                ///< the lease lapsed just now (poke the map round)
    bool fenced = false;                ///< fenced out just now (poke the map round)
  };

  /// A heartbeat sent at `sent` was answered at `now`: renewed (`ours`) or refused.
  beat_outcome heartbeat_answered(bool ours, time_point sent, time_point now);

  /// A heartbeat answered at `now` that most members cannot reach this one (the store did not
  /// renew the lease and ends it soon): stop serving now. The next renewal finds the lease
  /// lapsed, as after a pause.
  void cut_off(time_point now) { deadline_ = std::min(deadline_, now); }

  bool fenced_out() const { return fenced_out_; }
  bool lapsed() const { return lapsed_; }
  time_point lease_deadline() const { return deadline_; }
  bool lease_live(time_point now) const { return now < deadline_; }

  /// True once a map was applied (map_applied()), the lease is live and this node is not
  /// fenced out.
  bool ready(time_point now) const { return have_map_ && lease_live(now) && !fenced_out_; }

  /// The member stopped: no lease any more. Returns the deadline (long past).
  time_point stopped();

  // -- The round ---------------------------------------------------------------------------

  /// Once fenced out, once: the steps that release every shard this node holds (its
  /// handovers are forgotten). nullopt when not fenced out or already dropped.
  std::optional<std::vector<membership_step>> drop_if_fenced();

  /// Whether this round runs the allocator: only while the lease is live.
  bool allocates(time_point now) const { return lease_live(now); }

  /// One allocator round over what the store read (members that left are not members), as
  /// allocate() plans it. A member whose lease expired less than `patience` ago is overdue (keeps
  /// its shards): how long this node's own heartbeats and rounds took lately, so that a database
  /// or machine slow for everyone does not move shards. Reads only the options: safe to call from
  /// any thread.
  allocation_plan plan(const std::vector<persistence::member_record>& members,
                       const std::vector<persistence::shard_lease_record>& leases,
                       std::chrono::milliseconds patience = {}) const;

  /// The plan as guarded store changes, in the plan's order.
  static std::vector<persistence::lease_change> changes_of(const allocation_plan& plan);

  struct map_outcome {
    std::vector<membership_step> steps;
    std::vector<uint32_t> taken; ///< shards this node took just now (their holds wake up)
  };

  /// Applies the map read at `now`: takes shards that are ours (a new epoch of one we held
  /// releases its entities first), starts the handover of ours with a target (leaving), drops
  /// shards lost, points at the owners of the others (remote while the owner is up or
  /// draining, none otherwise); connects to live members with a larger node id that
  /// `connected` says are not connected (at most once a second each).
  map_outcome apply_map(const std::vector<persistence::member_record>& members,
                        const std::vector<persistence::shard_lease_record>& leases, time_point now,
                        const std::function<bool(const std::string&)>& connected);

  /// When the next round should run, as the map applied last says: soon (every
  /// `failover_poll`) while a shard has no owner that is up, for up to `failover_poll_for`
  /// (another member may be assigning it right now, and this node should route to the new owner
  /// as soon as it is written), else just after the earliest expiry of another member's lease
  /// (its shards are taken over when PostgreSQL lets them go, not at the next tick), at most a
  /// heartbeat from `now`.
  time_point next_round(time_point now) const;

  static constexpr std::chrono::milliseconds failover_poll{20};
  static constexpr std::chrono::milliseconds failover_poll_for{3000};

  /// The steps of apply_map() were executed: the node has a map.
  void map_applied() { have_map_ = true; }

  /// After the map was applied at `now`: a lapsed lease counts again from the last renewal.
  /// Returns the new deadline if it changed; sets `revived` when the lease is live again.
  std::optional<time_point> after_map(time_point now, bool& revived);

  /// Shards handing over, by shard.
  std::vector<uint32_t> handovers() const;
  bool handovers_pending() const { return !handoffs_.empty(); }

  struct handover_decision {
    bool complete = false; ///< ask the store to complete it now
    bool overdue = false;  ///< its entities took longer than handoff_timeout: stop them first
    uint64_t epoch = 0;
    std::string target;
  };

  /// Whether the handover of `shard` completes now, with `local_count` entities of it left.
  handover_decision decide_handover(uint32_t shard, std::size_t local_count, time_point now) const;

  /// The store answered the completion of `shard`'s handover: owned by the target at
  /// `new_epoch`, or (nullopt) the lease changed meanwhile. The handover ends either way.
  std::vector<membership_step> handover_done(uint32_t shard, std::optional<uint64_t> new_epoch);

  /// Of `holding` (SKUs with live holds), those whose shard is among `taken`.
  std::vector<std::string> skus_to_wake(const std::vector<uint32_t>& taken,
                                        const std::vector<std::string>& holding) const;

  /// The members and shards as last applied.
  const std::vector<node_info>& nodes() const { return nodes_; }
  const std::vector<shard_info>& shards() const { return shards_; }

 private:
  /// Sets the view of `shard` and returns the step that tells the table.
  membership_step set(uint32_t shard, shard_table::state st, uint64_t epoch,
                      const std::string& owner = {});

  struct handoff {
    uint64_t epoch;
    std::string target;
    time_point started;
  };

  const membership_options opts_;

  time_point deadline_{};   ///< the lease deadline
  time_point renewed_at_{}; ///< when the last renewal that succeeded was sent
  bool lapsed_ = false;
  bool fenced_out_ = false;
  bool dropped_ = false; ///< drop_if_fenced() ran after fenced_out_

  std::vector<shard_table::entry> views_; ///< per shard: what the shard table was told
  std::map<uint32_t, handoff> handoffs_;
  std::map<std::string, time_point> last_connect_;
  std::optional<time_point> next_expiry_; ///< the earliest lease expiry of another live member
  bool draining_ = false;                 ///< this member is draining (as the map last said)
  std::optional<time_point> orphaned_;    ///< since when some shard has no owner that is up
  bool have_map_ = false;
  std::vector<node_info> nodes_;
  std::vector<shard_info> shards_;
};

} // namespace surge::cluster
