#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "surge/actors/cart.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sku.hpp"
#include "surge/cluster/node_info.hpp"
#include "surge/net/customer_auth.hpp"
#include "surge/net/metrics.hpp"
#include "surge/net/metrics_history.hpp"
#include "surge/net/page_cache.hpp"
#include "surge/net/rate_limiter.hpp"
#include "surge/net/router.hpp"
#include "surge/persistence/catalog.hpp"

namespace surge::net {

/// Counters the bridge keeps for /metrics. Thread-safe (relaxed atomics).
struct http_metrics {
  std::array<std::atomic<uint64_t>, 600> by_status{};
  std::atomic<uint64_t> rate_limited{0}; ///< storefront writes refused 429 rate_limited
  void count(int status) {
    if (status >= 100 && status < 600) {
      by_status[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
    }
  }
};

/// The cluster as the admin API shows and steers it (filled by the runtime from membership).
struct cluster_admin {
  using node_row = cluster::node_info;
  using shard_row = cluster::shard_info;
  /// True while this node is a member with a live lease and the shard map.
  std::function<bool()> serving;
  std::function<std::vector<node_row>()> nodes;
  std::function<std::vector<shard_row>()> shards;
  /// Asks that `node` hand every shard over; `done(found)` may run on any thread.
  std::function<void(const std::string& node, std::function<void(bool found)> done)> drain;
};

/// What the HTTP handlers use of the node. Owned by the runtime; outlives both servers.
struct bridge_env {
  actors::sku_directory* skus = nullptr;
  actors::cart_directory* carts = nullptr;
  actors::order_directory* orders = nullptr;
  /// Listings (GET /api/v1/products) read the catalog on these threads, never an I/O thread's.
  persistence::catalog_pool* catalog = nullptr;
  /// Actors that issue requests to entities on behalf of I/O threads (see spawn_callers).
  std::vector<caf::actor> callers;
  /// How long a request waits for its entity (config::derived_options::bridge_call_timeout);
  /// the entity calls made for it travel with the deadline it sets (actors/deadline.hpp).
  std::chrono::milliseconds call_timeout{};
  /// Rendered product pages and listings (http.page_cache); nullptr: rendered every time.
  std::shared_ptr<page_cache> pages;
  std::shared_ptr<page_cache> listings;
  /// Storefront writes per client address (limits.ip_*); nullptr: no limits (ip_rate 0).
  std::shared_ptr<rate_limiter> limiter;
  /// Peers whose X-Forwarded-For names the client (http.trusted_proxies, see client_address()).
  /// Set before the servers start, read-only afterwards.
  cidr_set trusted_proxies;
  std::string admin_token; ///< empty: the admin API is open (loopback only, checked at load)
  /// Verifies customer tokens (auth.*); null or disabled: customers are not verified.
  std::shared_ptr<const customer_verifier> customers;
  /// Derives order ids from Idempotency-Keys (ids.secret). Required.
  std::shared_ptr<const actors::id_keys> ids;
  /// admin.allowed_origins: comma list of Origins the admin API accepts besides the console's
  /// own. Read when the admin router is made.
  std::string admin_allowed_origins;
  std::string node_id;
  std::string cluster_address;
  uint32_t shards = 256;
  std::atomic<bool> ready{false};
  cluster_admin cluster;
  /// The node's registry (net/metrics.hpp): /metrics renders it, make_handler records every
  /// request in it. nullptr: /metrics shows the legacy families only and nothing is recorded.
  /// Set before the servers start.
  std::shared_ptr<node_metrics> registry;
  /// This node's metrics history (GET /admin/v1/metrics/history); nullptr: 503 there.
  std::shared_ptr<const metrics_history> history;
  http_metrics metrics;
  /// More Prometheus text for /metrics (journal and pool figures), produced by the runtime.
  std::function<std::string()> extra_metrics;
};

/// Spawns `n` caller actors. An I/O thread never waits on an actor: it hands a request to a
/// caller with a plain send, and the caller's response handler calls the HTTP responder.
std::vector<caf::actor> spawn_callers(caf::actor_system& sys, std::size_t n);

/// The storefront API of API.md on `http.port`.
router make_storefront_router(std::shared_ptr<bridge_env> env);

/// The admin API of API.md on `admin.port` (bearer token when one is set), and /metrics.
router make_admin_router(std::shared_ptr<bridge_env> env);

/// Wraps a router into a server handler that counts statuses.
handler make_handler(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r);

/// Maps an error from an entity or storage to API.md's status and code.
http_response to_http_error(const caf::error& err);

/// RFC 3339 UTC with milliseconds, e.g. "2026-11-28T08:30:00.123Z".
std::string rfc3339_ms(int64_t unix_ms);

/// make_handler(env, r), and, when the env has a registry, each request timed into
/// surge_http_request_duration_seconds under `kind` (routes /healthz and /readyz as probe), its
/// route's template ("unmatched" when none), the route's method and the status
/// (request_metrics.hpp). What the node's servers run.
handler make_handler(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r,
                     http_kind kind);

} // namespace surge::net
