#include <optional>

#include "access_log.hpp"
#include "admin_guard.hpp"
#include "fanout.hpp"
#include "handlers.hpp"
#include "queue_stream.hpp"
#include "stock_stream.hpp"
#include "surge/net/bridge.hpp"

namespace surge::net {

namespace {

/// A route that calls `f` with the node's bridge_env.
router::route_handler route_of(std::shared_ptr<bridge_env> env, bridge::handler_fn f) {
  return [env, f](http_request&& req, path_params&& p, responder r) {
    f(env, std::move(req), std::move(p), std::move(r));
  };
}

/// Storefront writes (every method but GET, HEAD and OPTIONS, so POST, PUT, DELETE and any other)
/// take a token from the client address's bucket before any route runs; over the limit: 429
/// `rate_limited` with Retry-After. Reads and CORS preflights are never limited, nor are the
/// payment gateways' webhooks: a few gateway addresses send one per order, and each is checked
/// by its signature instead.
std::optional<http_response> limit_writes(bridge_env& env, const http_request& req) {
  if (!env.limiter || req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS" ||
      req.path.starts_with("/api/v1/payments/")) {
    return std::nullopt;
  }
  const auto client = client_address(req.peer, req.header("x-forwarded-for"), env.trusted_proxies);
  const auto d = env.limiter->acquire(client);
  if (d.allowed) {
    return std::nullopt;
  }
  env.metrics.rate_limited.fetch_add(1, std::memory_order_relaxed);
  const auto secs = std::to_string(d.retry_after.count());
  auto resp =
      error_response(429, "rate_limited",
                     "too many writes from " + client.to_string() + "; retry in " + secs + " s");
  resp.headers.emplace_back("Retry-After", secs);
  return resp;
}

} // namespace

// The one place where the routes of both ports are put on their routers.

router make_storefront_router(std::shared_ptr<bridge_env> env) {
  if (!env->stock) {
    // One read of a watched SKU per 250 ms for all its streams; a comment every 15 s.
    env->stock = std::make_shared<bridge::stock_watcher>(*env, std::chrono::milliseconds(250),
                                                         std::chrono::seconds(15));
  }
  if (!env->queues) {
    // One summary call per watched sale per 250 ms for all its streams; a comment every 15 s.
    env->queues = std::make_shared<bridge::queue_watcher>(*env, std::chrono::milliseconds(250),
                                                          std::chrono::seconds(15));
  }
  router rt;
  rt.set_guard([env](const http_request& req) { return limit_writes(*env, req); });
  rt.answer_options(cors_origins::parse(env->cors_origins)); // OPTIONS and CORS on every route
  rt.add("GET", "/healthz", route_of(env, bridge::healthz));
  rt.add("GET", "/readyz", route_of(env, bridge::readyz));
  rt.add("GET", "/api/v1/products", route_of(env, bridge::list_products));
  rt.add("GET", "/api/v1/products/{sku}", route_of(env, bridge::get_product));
  rt.add("GET", "/api/v1/products/{sku}/stock/stream", route_of(env, bridge::stream_stock));
  rt.add("GET", "/api/v1/search", route_of(env, bridge::search_products));
  rt.add("GET", "/api/v1/categories", route_of(env, bridge::list_categories));
  rt.add("POST", "/api/v1/carts", route_of(env, bridge::create_cart));
  rt.add("GET", "/api/v1/carts/{cart_id}", route_of(env, bridge::get_cart));
  rt.add("PUT", "/api/v1/carts/{cart_id}/items/{sku}", route_of(env, bridge::put_item));
  rt.add("DELETE", "/api/v1/carts/{cart_id}/items/{sku}", route_of(env, bridge::delete_item));
  rt.add("POST", "/api/v1/carts/{cart_id}/checkout", route_of(env, bridge::checkout));
  rt.add("GET", "/api/v1/orders/{order_id}", route_of(env, bridge::get_order));
  rt.add("GET", "/api/v1/orders/{order_id}/return", route_of(env, bridge::order_return));
  rt.add("POST", "/api/v1/payments/{gateway}/webhook", route_of(env, bridge::payment_webhook));
  rt.add("GET", "/p/{sku}", route_of(env, bridge::get_page));
  rt.add("POST", "/api/v1/sales/{sale_id}/queue", route_of(env, bridge::join_queue));
  rt.add("GET", "/api/v1/sales/{sale_id}/queue/{ticket}", route_of(env, bridge::get_ticket));
  rt.add("GET", "/api/v1/sales/{sale_id}/queue/{ticket}/stream",
         route_of(env, bridge::stream_ticket));
  if (env->dev_login) {
    rt.add("POST", "/api/v1/dev/login", route_of(env, bridge::dev_login));
  }
  return rt;
}

router make_admin_router(std::shared_ptr<bridge_env> env) {
  if (!env->peers) {
    env->peers = std::make_shared<bridge::peer_client>();
  }
  router rt;
  rt.add("GET", "/healthz", route_of(env, bridge::healthz));
  rt.add("GET", "/readyz", route_of(env, bridge::readyz));
  rt.add("PUT", "/admin/v1/products/{sku}", bridge::admin_only(env, bridge::put_product));
  rt.add("POST", "/admin/v1/products/{sku}/stock", bridge::admin_only(env, bridge::post_stock));
  rt.add("GET", "/admin/v1/products/{sku}/stock", bridge::admin_only(env, bridge::get_stock));
  rt.add("GET", "/admin/v1/metrics/history",
         bridge::admin_only(env, bridge::cluster_wide(bridge::local_metrics_history)));
  rt.add("GET", "/admin/v1/cluster", bridge::admin_only(env, bridge::get_cluster));
  rt.add("GET", "/admin/v1/shards", bridge::admin_only(env, bridge::get_shards));
  rt.add("POST", "/admin/v1/nodes/{node_id}/drain", bridge::admin_only(env, bridge::post_drain));
  rt.add("POST", "/admin/v1/nodes/{node_id}/undrain",
         bridge::admin_only(env, bridge::post_undrain));
  rt.add("GET", "/admin/v1/hot-skus",
         bridge::admin_only(env,
                            bridge::cluster_wide(bridge::local_hot_skus, bridge::merge_hot_skus)));
  rt.add("GET", "/admin/v1/payments",
         bridge::admin_only(env, bridge::cluster_wide(bridge::local_payments)));
  rt.add("GET", "/metrics", bridge::admin_only(env, bridge::get_metrics));
  rt.add("GET", "/console", route_of(env, bridge::get_console));
  rt.add("GET", "/console/{file}", route_of(env, bridge::get_console_file));
  // Orders and catalog of the console (issue 13).
  rt.add("GET", "/admin/v1/orders", bridge::admin_only(env, bridge::list_orders));
  rt.add("GET", "/admin/v1/orders/{order_id}", bridge::admin_only(env, bridge::get_admin_order));
  rt.add("POST", "/admin/v1/orders/{order_id}/refunds",
         bridge::admin_only(env, bridge::post_refund));
  rt.add("GET", "/admin/v1/products", bridge::admin_only(env, bridge::list_products));
  rt.add("POST", "/admin/v1/products:import",
         bridge::admin_only(env, bridge::import_products, true));
  // Sales (issue 17).
  rt.add("GET", "/admin/v1/sales", bridge::admin_only(env, bridge::list_sales));
  rt.add("PUT", "/admin/v1/sales/{sale_id}", bridge::admin_only(env, bridge::put_sale));
  rt.add("GET", "/admin/v1/sales/{sale_id}", bridge::admin_only(env, bridge::get_sale));
  rt.add("DELETE", "/admin/v1/sales/{sale_id}", bridge::admin_only(env, bridge::delete_sale));
  // Outgoing webhooks' delivery log (issue 19).
  rt.add("GET", "/admin/v1/webhooks", bridge::admin_only(env, bridge::list_webhook_endpoints));
  rt.add("GET", "/admin/v1/webhooks/deliveries",
         bridge::admin_only(env, bridge::list_webhook_deliveries));
  rt.add("GET", "/admin/v1/webhooks/deliveries/{id}",
         bridge::admin_only(env, bridge::get_webhook_delivery));
  rt.add("POST", "/admin/v1/webhooks/deliveries/{id}/redeliver",
         bridge::admin_only(env, bridge::redeliver_webhook));
  return rt;
}

void stop_peers(bridge_env& env) {
  if (env.peers) {
    env.peers->stop();
  }
}

handler make_handler(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r) {
  return bridge::with_access_log(env, r, [env, r](http_request&& req, responder resp) {
    r->dispatch(std::move(req), [env, resp = std::move(resp)](http_response out) {
      env->metrics.count(out.status);
      resp(std::move(out));
    });
  });
}

} // namespace surge::net
