#pragma once

#include <functional>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "surge/actors/cart.hpp"
#include "surge/actors/env.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sale.hpp"
#include "surge/actors/sales.hpp"
#include "surge/actors/sku.hpp"
#include "surge/cluster/membership.hpp"
#include "surge/cluster/shard_table.hpp"
#include "surge/config/settings.hpp"
#include "surge/net/payments/payment_router.hpp"
#include "surge/persistence/storage.hpp"

namespace surge::runtime {

/// A node's entities without HTTP: the storage (persistence::entity_storage: the PostgreSQL,
/// Redis and order pools, the cart writer, the journal's commit queue), the payment router, the CAF
/// actor system with its middleman, the entity directories placed by the cluster's shard map, the
/// gateway and the membership, the node's sale index and sale board — wired from the node's
/// settings alone, so that surge-node and surge-bench run the same thing.
///
/// Lifecycle: the constructor starts the parts in that order up to the directories;
/// join_cluster() publishes the gateway on cluster.port and registers the member (shards are
/// then assigned to it); leave_cluster() hands every shard to other members; stop() (also the
/// destructor) stops the membership, the entities, lets the commit queue finish what it holds,
/// waits for every actor, then closes the pools. Members are read-only for users, valid until
/// stop(). Not copyable.
class entity_layer {
 public:
  /// Hooks for the node's metrics on the parts below net (each optional; the node connects
  /// them to net::node_metrics, surge-bench leaves them empty).
  struct observers {
    persistence::storage_observer storage;
    net::payments::payment_observer payments;
    std::function<void(double seconds, bool ok)> lease_renewed; ///< membership heartbeats
  };

  /// Throws std::invalid_argument naming the setting when payments.gateways is malformed, or
  /// when ids.secret is not the secret of the database's other nodes.
  explicit entity_layer(const config::node_options& opts, observers obs = {});
  ~entity_layer();
  entity_layer(const entity_layer&) = delete;
  entity_layer& operator=(const entity_layer&) = delete;

  /// Empty string on success, else what failed.
  std::string join_cluster(const config::node_options& opts);
  /// Graceful leave: hands every shard over to other members (bounded by `patience`).
  void leave_cluster(std::chrono::milliseconds patience);
  void stop();

  /// True once the member has a live lease and the shard map.
  bool serving() const { return members && members->ready(); }

  /// The pools, the cart writer and the commit queue (storage.hpp); after stop() its parts
  /// still answer (errc::unavailable), and the commit queue's stats() stay readable.
  std::unique_ptr<persistence::entity_storage> storage;
  std::unique_ptr<net::payments::payment_router> payments;
  std::shared_ptr<const actors::id_keys> ids; ///< shared by every node of the database
  /// Holds placed per SKU on this node (env->hot_skus; GET /admin/v1/hot-skus).
  std::unique_ptr<actors::hot_sku_tracker> hot_skus = std::make_unique<actors::hot_sku_tracker>();
  /// The node's view of the sales table (env->sales; the bridge shares it), refreshed by the
  /// node's sale scheduler (runtime/src/background.hpp) every sales.refresh.
  std::shared_ptr<actors::sale_index> sales = std::make_shared<actors::sale_index>();
  /// The queues of the sale actors living here (env->sale_stats), for metrics and the console.
  std::unique_ptr<actors::sale_board> sale_stats = std::make_unique<actors::sale_board>();
  std::shared_ptr<actors::entity_env> env;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<actors::sku_directory> skus;
  std::unique_ptr<actors::cart_directory> carts;
  std::unique_ptr<actors::order_directory> orders;
  std::unique_ptr<actors::sale_directory> sale_queues; ///< the waiting rooms, kind "sale"
  std::unique_ptr<cluster::shard_table> table;
  caf::actor gateway;
  std::unique_ptr<cluster::membership> members;
  /// Hold events of this node's SKU actors (env->holds points here).
  actors::hold_counters holds;

 private:
  std::function<void(double, bool)> lease_renewed_; ///< for the membership, made by join_cluster
};

} // namespace surge::runtime
