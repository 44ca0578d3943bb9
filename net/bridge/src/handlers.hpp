#pragma once

// The route handlers of the storefront and admin APIs (private to the bridge), one file per
// resource; routes.cpp puts them on the routers. Each runs on an HTTP I/O thread and must not
// block: it validates, answers at once or hands the work on (to a caller actor, call.hpp, or
// the catalog pool), and calls the responder exactly once, from whichever thread finishes.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// What every handler is: `p` holds the route's {captures} in order. The handlers below are
/// declared as `endpoint`s, a file's at once; each file defines them with the full signature.
using endpoint = void(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                      responder r);
using handler_fn = endpoint*;

struct member_part;  // fanout.hpp
struct member_error; // fanout.hpp

// health.cpp — both ports.
endpoint healthz, readyz;
/// Ready: started, and (in a cluster) a member with a live lease and the shard map.
bool serving(const bridge_env& env);

// products.cpp — GET /api/v1/products/{sku}, GET /api/v1/products (the catalog, cached).
endpoint get_product, list_products;

// stock_stream.cpp — GET /api/v1/products/{sku}/stock/stream (Server-Sent Events).
endpoint stream_stock;

// search.cpp — GET /api/v1/search, GET /api/v1/categories (the catalog, cached).
endpoint search_products, list_categories;

// pages.cpp — GET /p/{sku} (HTML, ETag, cached).
endpoint get_page;
/// This node changed what the page of `sku` (and any listing) shows: render anew next time.
void drop_cached(bridge_env& env, const std::string& sku);

// carts.cpp — /api/v1/carts...
endpoint create_cart, get_cart, put_item, delete_item;

// orders.cpp — POST /api/v1/carts/{cart_id}/checkout, GET /api/v1/orders/{order_id},
// GET /api/v1/orders/{order_id}/return (back from 3-D Secure).
endpoint checkout, get_order, order_return;

// payment_webhooks.cpp — POST /api/v1/payments/{gateway}/webhook.
endpoint payment_webhook;

// admin.cpp — /admin/v1/... and /metrics, behind admin_only() (admin_guard.hpp).
endpoint put_product, post_stock, get_stock, get_cluster, get_shards, post_drain, post_undrain,
    get_metrics;
/// GET /admin/v1/metrics/history: this node's own history (503 when it keeps none), the
/// local part of the cluster-wide route.
http_response local_metrics_history(bridge_env& env, const http_request& req);

// hot_skus.cpp, payments.cpp — the cluster-wide GET /admin/v1/hot-skus and /admin/v1/payments
// (fanout.hpp's local_handler and merge_handler).
http_response local_hot_skus(bridge_env& env, const http_request& req);
void merge_hot_skus(std::shared_ptr<bridge_env> env, const http_request& req,
                    std::vector<member_part> parts, std::vector<member_error> errors, responder r);
http_response local_payments(bridge_env& env, const http_request& req);

// console.cpp — GET /console (the page) and GET /console/{file} (its assets), no token needed.
endpoint get_console, get_console_file;

// admin_orders.cpp — GET /admin/v1/orders, GET /admin/v1/orders/{order_id} (the order query
// pool), POST /admin/v1/orders/{order_id}/refunds (the order actor).
endpoint list_orders, get_admin_order, post_refund;

// admin_webhooks.cpp — the outgoing webhooks' delivery log: GET /admin/v1/webhooks,
// GET /admin/v1/webhooks/deliveries[/{id}], POST /admin/v1/webhooks/deliveries/{id}/redeliver.
endpoint list_webhook_endpoints, list_webhook_deliveries, get_webhook_delivery, redeliver_webhook;

// dev_login.cpp — POST /api/v1/dev/login (only with auth.dev_login, env.dev_login set).
endpoint dev_login;
/// How long a dev sign-in token lasts.
inline constexpr std::chrono::hours dev_login_ttl{12};

// catalog_import.cpp — POST /admin/v1/products:import (NDJSON, through the SKU actors).
endpoint import_products;

// sales.cpp — PUT, GET and DELETE /admin/v1/sales/{sale_id}, GET /admin/v1/sales (the sale
// store's pool; stats from the sale's queue).
endpoint put_sale, get_sale, list_sales, delete_sale;

// queue.cpp — POST /api/v1/sales/{sale_id}/queue (join), GET /api/v1/sales/{sale_id}/queue/
// {ticket} (the sale's actor).
endpoint join_queue, get_ticket;
/// The answer for a request to the queue of `sale_id` (and `ticket`, when not null) that cannot
/// reach it: 404 for a malformed id, a sale this node's index does not have, or a ticket whose
/// MAC does not verify; 503 without waiting rooms. nullopt: ask the queue.
std::optional<http_response> find_queue(const bridge_env& env, const std::string& sale_id,
                                        const std::string* ticket);

// queue_stream.cpp — GET /api/v1/sales/{sale_id}/queue/{ticket}/stream (Server-Sent Events).
endpoint stream_ticket;

} // namespace surge::net::bridge
