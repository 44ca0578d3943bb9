#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/persistence/port.hpp"

namespace surge::persistence {

/// A member of the cluster as stored: one row per node id, the newest incarnation's.
struct member_record {
  std::string node_id;
  std::string address;       ///< host:port of its CAF middleman
  std::string http_address;  ///< host:port of its storefront
  std::string admin_address; ///< host:port of its admin API
  int64_t incarnation = 0;
  std::string status;           ///< up, draining, left
  bool live = false;            ///< its lease has not expired (the store's clock)
  uint64_t actors = 0;          ///< live entity actors, as its last heartbeat said
  int64_t age_ms = 0;           ///< since this incarnation registered
  int64_t heartbeat_age_ms = 0; ///< since its last heartbeat
  std::string version = {};     ///< its build version (PROJECT_VERSION); empty: not recorded
  /// Its cluster protocol, as this incarnation registered it; 0: none recorded (a release
  /// before protocol versions, whose registration leaves the column alone).
  uint32_t protocol = 0;
  /// Until its lease expires, by the store's clock when read (negative: expired that long ago).
  int64_t lease_left_ms = 0;
};

/// What a heartbeat did.
enum class heartbeat_outcome : uint8_t {
  renewed, ///< the lease runs until now + lease
  /// Most live members reported that they cannot reach this one (report_unreachable): the
  /// lease is not renewed and ends within the heartbeat's `cut_off_grace` at most, so that the
  /// others take its shards; the member should stop serving at once.
  cut_off,
  fenced, ///< the row belongs to another incarnation (or is gone): this one is fenced out
};

/// The lease of one shard. The epoch grows with every change of owner.
struct shard_lease_record {
  uint32_t shard = 0;
  std::string owner; ///< empty: unassigned
  uint64_t epoch = 0;
  std::string target; ///< a planned handover to this node; empty: none
};

/// One change of a shard's lease, for audits (G4).
struct shard_history_record {
  uint32_t shard = 0;
  uint64_t epoch = 0; ///< the epoch the change gave the lease
  std::string owner;
  std::string reason; ///< restart, unassigned, failover from <node>, handover from <node>
};

/// What a node registers as (see membership_store::register_member).
struct member_registration {
  std::string node_id;
  std::string address;
  std::string http_address;
  std::string admin_address;
  int64_t incarnation = 0; ///< larger for every start of the node id
  uint32_t shards = 0;     ///< cluster.shards: fixed for the life of a database
  std::chrono::milliseconds lease{0};
  std::string version = {}; ///< the node's build version, shown with the member
  uint32_t protocol = 0;    ///< the node's cluster protocol (cluster/protocol.hpp)
};

/// How a request to drain a member ended (membership_store::set_draining).
enum class drain_outcome : uint8_t {
  draining,     ///< the member is draining now (or was already)
  not_found,    ///< no such member, or it left
  last_serving, ///< refused: no other member would still serve (all down, left or draining)
};

/// One change an allocator round plans, guarded by the lease it was planned against: applied
/// only if the lease is still at `epoch` (and, as said per kind, owned by `from`).
struct lease_change {
  enum class kind : uint8_t {
    assign, ///< owner `from` (empty: none) -> `to`, epoch + 1, no target; at once
    move,   ///< owner `from` keeps the shard and hands it over to `to` (sets the target)
    cancel, ///< drops the planned target (`from` and `to` are not checked)
  };
  kind what = kind::assign;
  uint32_t shard = 0;
  uint64_t epoch = 0;
  std::string from;
  std::string to;
};

/// What an allocator round applied (changes whose guard failed are not counted).
struct allocation_result {
  std::size_t assigned = 0;
  std::size_t moved = 0;
  std::size_t cancelled = 0;
};

/// The cluster's membership, shard leases and their fencing epochs (DESIGN.md "Cluster"; G4,
/// G5): the port that cluster/membership runs its rounds against. PostgreSQL is the arbiter
/// (make_pg_membership_store); tests/fakes has an in-memory twin with a manual clock.
///
/// Time is the store's: a member is live while its lease (renewed by heartbeat) has not
/// expired by the store's clock.
///
/// Every change of a lease row happens under the row's lock, taken in shard order (so that it
/// waits for journal commits in flight, which check the epoch under a shared lock: fencing),
/// and is guarded by the epoch it was decided against: a guard that fails changes nothing.
/// Every change of owner bumps the epoch and is recorded in the shard history.
///
/// An instance is one connection: it is NOT thread-safe and its calls block. Use it from one
/// dedicated thread; never from a CAF scheduler thread. Errors: errc::unavailable when the
/// store cannot be reached, the connection broke, or a lock or statement took too long (the
/// caller tries again in its next round); healthy() is false once the connection is gone.
class membership_store : public connection_port {
 public:
  /// In one transaction: creates the lease rows 0 .. r.shards-1 that are missing (unassigned,
  /// epoch 0); registers the member (insert, or replace the node id's row: new incarnation,
  /// addresses and version, status up, started and renewed now, lease until now + r.lease); and
  /// gives every shard the node id still owns a new epoch (target dropped, history reason
  /// "restart"), which fences any older incarnation still running. Returns the number of shards the
  /// database then has; when it is not r.shards, nothing was written.
  virtual caf::expected<uint32_t> register_member(const member_registration& r) = 0;

  /// Renews the lease of (`node_id`, `incarnation`) until now + `lease` and records `actors`,
  /// and this connection as the member's heartbeat session (expire_if_gone); unless more than
  /// half of the live members (this one counted) reported within `lease` that they cannot reach
  /// it: then cut_off, and the lease ends at now + `cut_off_grace` if not sooner. fenced when the
  /// row belongs to another incarnation (or is gone).
  virtual caf::expected<heartbeat_outcome>
  heartbeat(const std::string& node_id, int64_t incarnation, std::chrono::milliseconds lease,
            uint64_t actors, std::chrono::milliseconds cut_off_grace) = 0;

  /// Member `by` cannot reach `nodes` over the cluster's connections (each went down and has
  /// not come back): replaces what `by` reported before; an empty list withdraws it all.
  virtual caf::error report_unreachable(const std::string& by,
                                        const std::vector<std::string>& nodes) = 0;

  /// Ends the lease of (`node_id`, `incarnation`) now, if it is live and the store no longer
  /// has the session its last heartbeat came through: the store saw that connection close,
  /// which is what happens when the member's process dies. True when it did. A member that
  /// recorded no session (before its first heartbeat, or a release before this one) or whose
  /// session is still open (alive, paused, or cut off without the connection closing) keeps
  /// its lease. Asked when a peer lost its connection to the member (DESIGN.md "Cluster").
  virtual caf::expected<bool> expire_if_gone(const std::string& node_id, int64_t incarnation) = 0;

  /// Marks `node_id` draining unless it left, and unless no other member would still serve:
  /// some other member must be up (status up and its lease live), checked and changed
  /// atomically (concurrent drains of the last two serving members cannot both pass).
  virtual caf::expected<drain_outcome> set_draining(const std::string& node_id) = 0;

  /// Marks a draining `node_id` up again (the allocator then gives it shards); a member that is
  /// up stays up. False when there is no such member (or it left).
  virtual caf::expected<bool> clear_draining(const std::string& node_id) = 0;

  /// Marks (`node_id`, `incarnation`) left with its lease expired now, so that its shards are
  /// reassigned at once. False when the row belongs to another incarnation.
  virtual caf::expected<bool> mark_left(const std::string& node_id, int64_t incarnation) = 0;

  /// Every member (left ones too), by node id.
  virtual caf::expected<std::vector<member_record>> members() = 0;

  /// Every shard lease, by shard.
  virtual caf::expected<std::vector<shard_lease_record>> leases() = 0;

  /// Decides an allocator round from the members (all, as members()) and the leases (as
  /// leases()) read in the round.
  using planner = std::function<std::vector<lease_change>(const std::vector<member_record>&,
                                                          const std::vector<shard_lease_record>&)>;

  /// One allocator round in one transaction, if this connection wins the allocator's advisory
  /// lock for it (held until the round ends; at most one round runs at a time cluster-wide):
  /// reads members and leases, asks `plan` (which must not throw), then locks the rows of the
  /// changed shards in shard order and applies each change under its guard. An assign records
  /// history ("unassigned", or "failover from <from>"). nullopt when another round holds the
  /// lock (nothing is read or changed).
  virtual caf::expected<std::optional<allocation_result>> allocation_round(const planner& plan) = 0;

  /// Completes the handover of `shard` from `owner` at `epoch` to `target`: owner := target,
  /// epoch + 1, no target, history "handover from <owner>"; guarded by owner, epoch and target.
  /// The new epoch, or nullopt when the guard failed (the lease changed meanwhile).
  virtual caf::expected<std::optional<uint64_t>> complete_handover(const std::string& owner,
                                                                   uint32_t shard, uint64_t epoch,
                                                                   const std::string& target) = 0;

  /// SKUs whose stock projection shows live holds (held > 0): the ones whose holds must expire
  /// on whichever node owns their shard now (G6).
  virtual caf::expected<std::vector<std::string>> skus_holding() = 0;

  /// The history of `shard`, oldest first (audits).
  virtual caf::expected<std::vector<shard_history_record>> history(uint32_t shard) = 0;
};

/// A PostgreSQL membership store on `url` (libpq URI) over the schema of migrations 3 and 6, on its
/// own connection. Its writes are not synchronous commits (a heartbeat lost in a crash of
/// PostgreSQL only shortens a lease; whoever acts on a lease change commits its journal
/// synchronously later, which flushes the change first); lock waits end after 1 s, statements
/// after 5 s, and a session idle inside a transaction for 3 s is closed by the server (a member
/// paused there must not hold lease rows for long). errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<membership_store>> make_pg_membership_store(const std::string& url);

} // namespace surge::persistence
