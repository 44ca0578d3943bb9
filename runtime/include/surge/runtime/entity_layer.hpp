#pragma once

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "surge/actors/cart.hpp"
#include "surge/actors/env.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sku.hpp"
#include "surge/config/settings.hpp"
#include "surge/net/payments/payment_router.hpp"
#include "surge/persistence/commit_queue.hpp"

namespace surge::runtime {

/// A node's entities without HTTP: the storage pools (PostgreSQL, Redis, orders), the journal's
/// commit queue, the payment router, the CAF actor system and the entity directories — wired
/// from the node's settings alone, so that surge-node and surge-bench run the same thing.
///
/// Lifecycle: the constructor starts the parts in that order; stop() (also the destructor)
/// stops the entities, lets the commit queue finish what it holds, waits for every actor, then
/// closes the pools. Members are read-only for users, valid until stop(). Not copyable.
class entity_layer {
 public:
  /// Throws std::invalid_argument naming the setting when payments.gateways is malformed.
  explicit entity_layer(const config::node_options& opts);
  ~entity_layer();
  entity_layer(const entity_layer&) = delete;
  entity_layer& operator=(const entity_layer&) = delete;

  void stop();

  std::unique_ptr<actors::pg_pool> pg;
  std::unique_ptr<actors::redis_pool> redis;
  std::unique_ptr<actors::order_pool> orders_pool;
  std::unique_ptr<persistence::commit_queue> journal;
  std::unique_ptr<net::payments::payment_router> payments;
  std::shared_ptr<actors::entity_env> env;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<actors::sku_directory> skus;
  std::unique_ptr<actors::cart_directory> carts;
  std::unique_ptr<actors::order_directory> orders;
};

} // namespace surge::runtime
