#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "surge/actors/cart.hpp"
#include "surge/actors/hot_skus.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sale.hpp"
#include "surge/actors/sales.hpp"
#include "surge/actors/sku.hpp"
#include "surge/cluster/node_info.hpp"
#include "surge/net/customer_auth.hpp"
#include "surge/net/metrics.hpp"
#include "surge/net/metrics_history.hpp"
#include "surge/net/page_cache.hpp"
#include "surge/net/payments/payment_router.hpp"
#include "surge/net/payments/webhook.hpp"
#include "surge/net/rate_limiter.hpp"
#include "surge/net/router.hpp"
#include "surge/persistence/catalog.hpp"
#include "surge/persistence/order_query.hpp"
#include "surge/persistence/sales.hpp"
#include "surge/persistence/webhooks.hpp"

namespace spdlog {
class logger;
}

namespace surge::net {

namespace bridge {
class peer_client;   // fanout.hpp
class stock_watcher; // stock_stream.hpp
class queue_watcher; // queue_stream.hpp
} // namespace bridge

/// Counters the bridge keeps for /metrics. Thread-safe (relaxed atomics).
struct http_metrics {
  std::array<std::atomic<uint64_t>, 600> by_status{};
  std::atomic<uint64_t> rate_limited{0}; ///< storefront writes refused 429 rate_limited
  /// Stock streams open (or being opened: their first read is on its way), and the stock
  /// events sent on them (surge_http_streams_open, surge_http_stream_events_total).
  std::atomic<std::size_t> streams_open{0};
  std::atomic<uint64_t> stream_events{0};
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
  /// How a drain or an undrain request ended.
  enum class change : uint8_t {
    done,        ///< draining now (drain), or up (undrain)
    not_found,   ///< no such member, or it left
    refused,     ///< drain: no other member would still serve
    unavailable, ///< the membership store could not be asked
  };
  using change_done = std::function<void(change)>;
  using change_fn = std::function<void(const std::string& node, change_done done)>;
  /// Asks that `node` hand every shard over; `done` may run on any thread.
  change_fn drain;
  /// Asks that a draining `node` be up again (it gets shards back); `done` may run on any thread.
  change_fn undrain;
};

/// What the HTTP handlers use of the node. Owned by the runtime; outlives both servers.
struct bridge_env {
  actors::sku_directory* skus = nullptr;
  actors::cart_directory* carts = nullptr;
  actors::order_directory* orders = nullptr;
  /// The sales' waiting rooms (sale.hpp); nullptr: the queue routes answer 503.
  actors::sale_directory* sale_queues = nullptr;
  /// The node's sales (refreshed by the runtime): product JSON shows a SKU's sale, the queue
  /// routes find theirs. nullptr: no sales.
  std::shared_ptr<actors::sale_index> sales;
  /// Sale definitions are read and written on these threads (admin sale routes); nullptr: 503.
  persistence::sale_pool* sale_store = nullptr;
  /// Called after this node stored or deleted a sale (the runtime refreshes its index and
  /// schedules the prewarm at once); may be empty.
  std::function<void()> sales_changed;
  /// Listings (GET /api/v1/products) read the catalog on these threads, never an I/O thread's.
  persistence::catalog_pool* catalog = nullptr;
  /// Catalog reads queued or running on `catalog` now, and the most that may be (catalog.
  /// max_queued): a read past it is answered 503 `unavailable` with Retry-After at once, so that a
  /// flood of distinct uncached searches cannot queue without bound.
  std::atomic<std::size_t> catalog_queued{0};
  std::size_t catalog_max_queued = 256;
  /// The admin's order search and order timelines read on these threads (never an I/O or actor
  /// thread); nullptr: those routes answer 503.
  persistence::order_query_pool* order_queries = nullptr;
  /// The outgoing webhooks' delivery log (GET /admin/v1/webhooks...); nullptr: those routes
  /// answer 503. `webhook_endpoints`: (name, url) of webhooks.endpoints, no secrets.
  persistence::webhook_pool* webhook_log = nullptr;
  std::vector<std::pair<std::string, std::string>> webhook_endpoints;
  /// The node's actor system: calls to local entities are sent from reply sinks made in it
  /// (net/bridge/src/call.hpp). nullptr: every call goes through `callers`.
  caf::actor_system* system = nullptr;
  /// Actors that issue requests with a timeout on behalf of I/O threads, for calls to entities
  /// on other nodes (see spawn_callers).
  std::vector<caf::actor> callers;
  /// How long a request waits for its entity (config::derived_options::bridge_call_timeout);
  /// the entity calls made for it travel with the deadline it sets (actors/deadline.hpp).
  std::chrono::milliseconds call_timeout{};
  /// Rendered product pages (http.page_cache); nullptr: rendered every time.
  std::shared_ptr<page_cache> pages;
  /// Listing, search and category answers (config::derived_options::catalog_cache_ttl);
  /// nullptr: read every time.
  std::shared_ptr<page_cache> listings;
  /// Cache-Control of listing, search and category answers (config::derived_options::
  /// catalog_max_age): what browsers and CDNs may add to their age.
  std::string catalog_cache_control = "public, max-age=1";
  /// Storefront writes per client address (limits.ip_*); nullptr: no limits (ip_rate 0).
  std::shared_ptr<rate_limiter> limiter;
  /// Peers whose X-Forwarded-For names the client (http.trusted_proxies, see client_address()).
  /// Set before the servers start, read-only afterwards.
  cidr_set trusted_proxies;
  std::string admin_token; ///< empty: the admin API is open (loopback only, checked at load)
  /// Verifies customer tokens (auth.*); null or disabled: customers are not verified.
  std::shared_ptr<const customer_verifier> customers;
  /// auth.dev_login: the secret, issuer and audience POST /api/v1/dev/login signs customer
  /// tokens with (the other fields unused); null: that route does not exist (404). Read when the
  /// storefront router is made.
  std::shared_ptr<const customer_auth_options> dev_login;
  /// Derives order ids from Idempotency-Keys (ids.secret). Required.
  std::shared_ptr<const actors::id_keys> ids;
  /// admin.allowed_origins: comma list of Origins the admin API accepts besides the console's
  /// own. Read when the admin router is made.
  std::string admin_allowed_origins;
  /// http.cors_origins: comma list of Origins (or "*") whose browsers may call the storefront
  /// API (router::answer_options). Read when the storefront router is made.
  std::string cors_origins;
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
  /// The access log (log.access_file, see config::log::make_access_logger) and the share of
  /// requests it gets (log.access_sample, 0..1); null: none. Set before the servers start.
  std::shared_ptr<spdlog::logger> access_log;
  double access_sample = 1.0;
  /// Holds placed per SKU on this node (GET /admin/v1/hot-skus); nullptr: none counted.
  actors::hot_sku_tracker* hot_skus = nullptr;
  /// The gateways whose webhooks are taken (payments.webhook_secrets), by name: POST
  /// /api/v1/payments/{gateway}/webhook; any other gateway there is 404. Set before the servers
  /// start.
  std::map<std::string, payments::webhook_endpoint> webhooks;
  /// payments.webhook_tolerance: how far a signature's timestamp may be from now.
  std::chrono::seconds webhook_tolerance{300};
  /// Each payment gateway's figures (GET /admin/v1/payments); empty: no gateways.
  std::function<std::vector<payments::gateway_stats>()> payment_stats;
  /// Asks other members for their parts of cluster-wide routes: made by make_admin_router,
  /// ended by stop_peers().
  std::shared_ptr<bridge::peer_client> peers;
  /// Event streams (stock and queue) open at once on this node at most (http.max_streams);
  /// more: 503.
  std::size_t max_streams = 20000;
  /// Watches the SKUs of open stock streams: made by make_storefront_router, ended by
  /// stop_streams().
  std::shared_ptr<bridge::stock_watcher> stock;
  /// Watches the tickets of open queue streams (GET /api/v1/sales/{id}/queue/{ticket}/stream):
  /// made by make_storefront_router, ended by stop_streams(); they count in max_streams too.
  std::shared_ptr<bridge::queue_watcher> queues;
};

/// Spawns `n` caller actors. An I/O thread never waits on an actor: it hands a request to a
/// caller with a plain send, and the caller's response handler calls the HTTP responder.
std::vector<caf::actor> spawn_callers(caf::actor_system& sys, std::size_t n);

/// The storefront API of API.md on `http.port`.
router make_storefront_router(std::shared_ptr<bridge_env> env);

/// The admin API of API.md on `admin.port` (bearer token when one is set), and /metrics.
router make_admin_router(std::shared_ptr<bridge_env> env);

/// Ends the cluster-wide requests to other members (those in flight within their 2 s timeout)
/// and joins their thread. Call once the admin server stopped. Idempotent.
void stop_peers(bridge_env& env);

/// Ends the stock and queue watchers and closes the streams still open (their clients retry).
/// Call once the storefront server stopped. Idempotent.
void stop_streams(bridge_env& env);

/// Renders the product pages of `skus` into this node's page cache (the prewarm of a sale,
/// sales.prewarm before its start), reading each through its SKU actor; `done(rendered)` runs
/// once every page is in (or failed), on whichever thread finished last. Does not block.
void warm_pages(std::shared_ptr<bridge_env> env, const std::vector<std::string>& skus,
                std::function<void(std::size_t rendered)> done);

/// Wraps a router into a server handler that counts statuses and writes the access log (and
/// gives each request its id when the server has not).
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
