#pragma once

// The route handlers of the storefront and admin APIs (private to the bridge), one file per
// resource; routes.cpp puts them on the routers. Each runs on an HTTP I/O thread and must not
// block: it validates, answers at once or hands the work on (to a caller actor, call.hpp, or
// the catalog pool), and calls the responder exactly once, from whichever thread finishes.

#include <memory>
#include <string>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// What every handler is: `p` holds the route's {captures} in order. The handlers below are
/// declared as `endpoint`s, a file's at once; each file defines them with the full signature.
using endpoint = void(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                      responder r);
using handler_fn = endpoint*;

// health.cpp — both ports.
endpoint healthz, readyz;
/// Ready: started, and (in a cluster) a member with a live lease and the shard map.
bool serving(const bridge_env& env);

// products.cpp — GET /api/v1/products/{sku}, GET /api/v1/products (the catalog, cached).
endpoint get_product, list_products;

// pages.cpp — GET /p/{sku} (HTML, ETag, cached).
endpoint get_page;
/// This node changed what the page of `sku` (and any listing) shows: render anew next time.
void drop_cached(bridge_env& env, const std::string& sku);

// carts.cpp — /api/v1/carts...
endpoint create_cart, get_cart, put_item, delete_item;

// orders.cpp — POST /api/v1/carts/{cart_id}/checkout, GET /api/v1/orders/{order_id}.
endpoint checkout, get_order;

// admin.cpp — /admin/v1/... and /metrics, behind admin_only() (admin_guard.hpp).
endpoint put_product, post_stock, get_stock, get_cluster, get_shards, post_drain, get_metrics;
/// GET /admin/v1/metrics/history: this node's own history (503 when it keeps none).
endpoint get_metrics_history;

} // namespace surge::net::bridge
