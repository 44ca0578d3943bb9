#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>

#include "surge/actors/placement.hpp"

namespace surge::cluster {

/// FNV-1a (64 bit) of `key` mod `shards`: the shard of an entity key, the same on every node.
uint32_t shard_of(std::string_view key, uint32_t shards);

/// The same for the key `kind:id` given in its two parts.
uint32_t shard_of(std::string_view kind, std::string_view id, uint32_t shards);

/// This node's view of the shard map, as membership last read it from PostgreSQL, plus its own
/// lease deadline: the placement entity directories ask on every acquire().
///
/// Per shard one atomic word (state, owner slot, epoch), so resolve() takes no lock on the hot
/// path; peers (node id -> gateway) sit behind a mutex and change rarely. Written by the
/// membership thread only; read from any thread.
class shard_table final : public actors::placement {
 public:
  enum class state : uint8_t { none = 0, local = 1, remote = 2, leaving = 3 };

  shard_table(std::string node_id, uint32_t shards);

  // placement
  uint32_t shard_of(std::string_view kind, std::string_view id) const override;
  uint32_t shard_of(std::string_view key) const { return cluster::shard_of(key, shards_); }
  route resolve(uint32_t shard) const override;
  bool serving(uint32_t shard, uint64_t epoch) const override;
  bool serving_for(uint32_t shard, uint64_t epoch, std::chrono::milliseconds margin) const override;
  void refresh_soon() override;
  const std::string& node_id() const override { return node_id_; }

  uint32_t shards() const override { return shards_; }

  /// This node's gateway (the target of forwarded messages for local shards).
  void set_local_gateway(caf::actor gw);

  /// The gateway of peer `node` (an invalid handle while not connected).
  void set_peer(const std::string& node, caf::actor gateway);
  void drop_peer(const std::string& node);
  caf::actor peer(const std::string& node) const;

  /// The connection to peer `node` went down (the gateway saw it): membership asks the store
  /// whether its process died (membership_store::expire_if_gone) in its next rounds.
  void suspect(const std::string& node);

  /// The peers suspected since the last call (each once).
  std::vector<std::string> take_suspects();

  /// Sets shard `shard`: local (owned at `epoch`), remote (owned by `owner`), leaving (owned
  /// here but handing over: nobody serves it), none.
  void set(uint32_t shard, state s, uint64_t epoch, const std::string& owner = {});

  struct entry {
    state st = state::none;
    uint64_t epoch = 0;
    std::string owner; ///< node id for remote; this node for local/leaving; empty for none
  };
  entry get(uint32_t shard) const;

  /// Leases are renewed for all shards at once by the member heartbeat: this node may act for
  /// its local shards until `deadline` (steady clock), which is set a safety margin before
  /// PostgreSQL's expiry.
  void set_lease_deadline(std::chrono::steady_clock::time_point deadline);
  std::chrono::steady_clock::time_point lease_deadline() const;
  bool lease_live() const;

  /// Called by refresh_soon(): pokes the membership loop (set by membership).
  void on_refresh_request(std::function<void()> f);

 private:
  static uint64_t pack(state s, uint32_t slot, uint64_t epoch);
  uint32_t slot_of(const std::string& node); ///< under mtx_

  const std::string node_id_;
  const uint32_t shards_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
  std::atomic<int64_t> deadline_ns_{0};

  mutable std::mutex mtx_;
  std::vector<std::string> slots_; ///< slot -> node id (grows only)
  std::unordered_map<std::string, caf::actor> peers_;
  std::vector<std::string> suspects_;
  caf::actor local_gateway_;
  std::function<void()> refresh_;
};

} // namespace surge::cluster
