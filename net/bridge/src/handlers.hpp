#pragma once

// The route handlers of the storefront and admin APIs (private to the bridge), one file per
// resource; routes.cpp puts them on the routers. Each runs on an HTTP I/O thread and must not
// block: it validates, answers at once or hands the work on (to a caller actor, call.hpp, or
// the catalog pool), and calls the responder exactly once, from whichever thread finishes.

#include <memory>
#include <string>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// What every handler is: `p` holds the route's {captures} in order.
using handler_fn = void (*)(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                            responder r);

// health.cpp — both ports.
void healthz(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void readyz(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
/// Ready: started, and (in a cluster) a member with a live lease and the shard map.
bool serving(const bridge_env& env);

// products.cpp — GET /api/v1/products/{sku}, GET /api/v1/products (the catalog, cached).
void get_product(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void list_products(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);

// pages.cpp — GET /p/{sku} (HTML, ETag, cached).
void get_page(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
/// This node changed what the page of `sku` (and any listing) shows: render anew next time.
void drop_cached(bridge_env& env, const std::string& sku);

// carts.cpp — /api/v1/carts...
void create_cart(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void get_cart(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void put_item(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void delete_item(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);

// orders.cpp — POST /api/v1/carts/{cart_id}/checkout, GET /api/v1/orders/{order_id}.
void checkout(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void get_order(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);

// admin.cpp — /admin/v1/... and /metrics, behind admin_only() (admin_guard.hpp).
void put_product(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void post_stock(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void get_stock(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void get_cluster(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void get_shards(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void post_drain(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);
void get_metrics(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder);

} // namespace surge::net::bridge
