#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "surge/actors/deadline.hpp" // system_now_ms
#include "surge/actors/hot_skus.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/payments.hpp"
#include "surge/actors/placement.hpp"
#include "surge/actors/sales.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/pools.hpp"
#include "surge/persistence/storage.hpp"

namespace surge::actors {

// The storage pools entity actors submit to (they live in persistence/pools.hpp).
using persistence::cart_write;
using persistence::cart_writer;
using persistence::order_pool;
using persistence::pg_pool;
using persistence::redis_conn;
using persistence::redis_pool;

/// Settings of entity actors, fixed at start-up. No defaults of their own: the node fills them
/// from its settings (runtime/wiring.hpp: entity_options_of), as tests do from the defaults.
struct entity_options {
  std::string node_id;
  std::chrono::milliseconds holds_ttl{}; ///< holds.ttl
  /// holds.max_lifetime: a hold's expiry never moves past its creation + max(this, holds_ttl).
  std::chrono::milliseconds holds_max_lifetime{};
  std::chrono::milliseconds carts_ttl{};       ///< carts.ttl
  std::chrono::milliseconds carts_empty_ttl{}; ///< carts.empty_ttl: a cart without lines
  /// How long a checkout's claim on its cart stands at most (config::derived_options).
  std::chrono::milliseconds cart_claim_lifetime{};
  /// Customers are verified (auth.*): a cart's customer id is a verified one, only that
  /// customer may use the cart and its orders, and a per-customer limit needs a customer.
  bool verify_customers = false;
  std::chrono::milliseconds idle_timeout{}; ///< entity.idle_timeout
  /// entity.call_timeout: an entity-to-entity call that no request waits for. A call made for
  /// a request gets what is left of the request's deadline instead (call_budget, entity.hpp).
  std::chrono::milliseconds call_timeout{};
  uint32_t snapshot_every = 0; ///< sku.snapshot_every (at least the snapshot's size applies)
  /// How much of its lease a node must have left to send a charge (config::derived_options).
  std::chrono::milliseconds payment_lease_margin{};
  /// sales.latency_budget: a sale with admission_rate auto admits faster only while its SKUs
  /// answer within this.
  std::chrono::milliseconds sales_latency_budget{};
  /// payments.capture=after_confirm: orders authorise, confirm their holds, then capture.
  bool capture_after_confirm = false;
  /// payments.action_ttl, at most holds_ttl: how long an order waits for 3-D Secure.
  std::chrono::milliseconds action_ttl{};
  /// payments.return_url ({order_id} replaced): where a gateway sends the shopper back.
  std::string return_url = {};
};

/// Hold events this node's SKU actors decided (replays not counted), for the node's metrics:
/// SKU actors add (relaxed atomics, never a lock), the runtime reads them at scrape time.
struct hold_counters {
  std::atomic<uint64_t> placed{0};    ///< a new hold taken by a cart
  std::atomic<uint64_t> expired{0};   ///< its TTL ran out
  std::atomic<uint64_t> confirmed{0}; ///< sold to an order
  std::atomic<uint64_t> released{0};  ///< given back by its cart
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
  /// Counts the holds SKU actors place (GET /admin/v1/hot-skus); nullptr: not counted.
  hot_sku_tracker* hot_skus = nullptr;
  /// Where SKU actors count hold events; nullptr: not counted. Outlives every entity.
  hold_counters* holds = nullptr;
  /// The node's sales (sales.hpp): SKU actors gate holds by them, sale actors read their
  /// definition there; nullptr: no sales (nothing gated).
  const sale_index* sales = nullptr;
  /// Where this node's sale actors publish their queue's summary; nullptr: not published.
  sale_board* sale_stats = nullptr;
  /// ids.secret's keys: carts open waiting-room passes, sale actors sign them and make tickets;
  /// nullptr: no passes (a sale with its queue on then refuses every hold: queue_required).
  std::shared_ptr<const id_keys> ids = nullptr;
};

/// The env of entities on `storage` (every pool, the cart writer and the commit queue),
/// paying through `payments`, placed by `cluster` (nullptr: no cluster), reading `now_ms`.
/// REQUIRES: `storage`, `payments` and `cluster` outlive every entity of the env.
inline entity_env make_entity_env(entity_options opts, persistence::entity_storage& storage,
                                  payment_service* payments, placement* cluster,
                                  std::function<int64_t()> now_ms) {
  entity_env env;
  env.opts = std::move(opts);
  env.journal = &storage.journal();
  env.pg = &storage.pg();
  env.redis = &storage.redis();
  env.cart_writes = &storage.cart_writes();
  env.orders = &storage.orders();
  env.payments = payments;
  env.cluster = cluster;
  env.now_ms = std::move(now_ms);
  return env;
}

} // namespace surge::actors
