#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "surge/actors/payments.hpp"
#include "surge/actors/placement.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/pools.hpp"

namespace surge::actors {

// The storage pools entity actors submit to (they live in persistence/pools.hpp).
using persistence::cart_write;
using persistence::cart_writer;
using persistence::order_pool;
using persistence::pg_pool;
using persistence::redis_conn;
using persistence::redis_pool;

/// Settings of entity actors, fixed at start-up.
struct entity_options {
  std::string node_id;
  std::chrono::milliseconds holds_ttl{600000};
  /// A hold's expiry never moves past its creation + max(holds_max_lifetime, holds_ttl).
  std::chrono::milliseconds holds_max_lifetime{1800000};
  std::chrono::milliseconds carts_ttl{7 * 24 * 3600 * 1000LL};
  std::chrono::milliseconds carts_empty_ttl{3600000}; ///< a cart without lines
  /// Customers are verified (auth.*): a cart's customer id is a verified one, only that
  /// customer may use the cart and its orders, and a per-customer limit needs a customer.
  bool verify_customers = false;
  std::chrono::milliseconds idle_timeout{120000};
  std::chrono::milliseconds call_timeout{5000}; ///< entity-to-entity requests
  uint32_t snapshot_every = 100; ///< journal events between snapshots (at least the snapshot size)
  /// How much of its lease a node must have left to send a charge: more than a request takes
  /// to reach a gateway, so that no charge lands once another node may own the order.
  std::chrono::milliseconds payment_lease_margin{1000};
};

/// What entity actors use of the node. Owned by the runtime, which outlives every entity.
/// The pools and the commit queue run blocking calls on their own threads; actors only submit.
struct entity_env {
  entity_options opts;
  persistence::commit_queue* journal = nullptr;
  pg_pool* pg = nullptr;
  redis_pool* redis = nullptr;
  /// Every cart write goes through it (batched on `redis`); required when carts are spawned.
  cart_writer* cart_writes = nullptr;
  order_pool* orders = nullptr;
  payment_service* payments = nullptr;
  /// The cluster's shard map; nullptr: no cluster (everything local, unfenced).
  placement* cluster = nullptr;
  /// Wall clock in Unix milliseconds (tests may substitute their own).
  std::function<int64_t()> now_ms;
};

int64_t system_now_ms();

} // namespace surge::actors
