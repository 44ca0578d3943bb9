#include <array>
#include <chrono>
#include <optional>
#include <string_view>

#include "admin_guard.hpp"
#include "handlers.hpp"
#include "surge/net/bridge.hpp"

namespace surge::net {

namespace {

/// A route that calls `f` with the node's bridge_env.
router::route_handler route_of(std::shared_ptr<bridge_env> env, bridge::handler_fn f) {
  return [env, f](http_request&& req, path_params&& p, responder r) {
    f(env, std::move(req), std::move(p), std::move(r));
  };
}

/// Storefront writes (every method but GET and HEAD, so POST, PUT, DELETE and any other) take a
/// token from the client address's bucket before any route runs; over the limit: 429
/// `rate_limited` with Retry-After. Reads are never limited.
std::optional<http_response> limit_writes(bridge_env& env, const http_request& req) {
  if (!env.limiter || req.method == "GET" || req.method == "HEAD") {
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

/// Methods that label unmatched requests; any other is "other" (the label set stays bounded).
constexpr std::array<std::string_view, 8> unmatched_methods{"GET",    "HEAD",  "POST",    "PUT",
                                                            "DELETE", "PATCH", "OPTIONS", "other"};

/// The registry slots of `r`'s routes (by index), then of unmatched requests by method.
std::vector<std::size_t> http_slots(node_metrics& m, const router& r, http_kind kind) {
  std::vector<std::size_t> slots;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const auto& pattern = r.pattern_of(i);
    const bool probe = pattern == "/healthz" || pattern == "/readyz";
    slots.push_back(m.http_route(probe ? http_kind::probe : kind, pattern, r.method_of(i)));
  }
  for (auto method : unmatched_methods) {
    slots.push_back(m.http_route(kind, "unmatched", method));
  }
  return slots;
}

/// The slot of an unmatched `method` among http_slots' last ones.
std::size_t unmatched_slot(const std::vector<std::size_t>& slots, std::string_view method) {
  std::size_t i = 0;
  while (i + 1 < unmatched_methods.size() && unmatched_methods[i] != method) {
    ++i;
  }
  return slots[slots.size() - unmatched_methods.size() + i];
}

} // namespace

// The one place where the routes of both ports are put on their routers.

router make_storefront_router(std::shared_ptr<bridge_env> env) {
  router rt;
  rt.set_guard([env](const http_request& req) { return limit_writes(*env, req); });
  rt.add("GET", "/healthz", route_of(env, bridge::healthz));
  rt.add("GET", "/readyz", route_of(env, bridge::readyz));
  rt.add("GET", "/api/v1/products", route_of(env, bridge::list_products));
  rt.add("GET", "/api/v1/products/{sku}", route_of(env, bridge::get_product));
  rt.add("POST", "/api/v1/carts", route_of(env, bridge::create_cart));
  rt.add("GET", "/api/v1/carts/{cart_id}", route_of(env, bridge::get_cart));
  rt.add("PUT", "/api/v1/carts/{cart_id}/items/{sku}", route_of(env, bridge::put_item));
  rt.add("DELETE", "/api/v1/carts/{cart_id}/items/{sku}", route_of(env, bridge::delete_item));
  rt.add("POST", "/api/v1/carts/{cart_id}/checkout", route_of(env, bridge::checkout));
  rt.add("GET", "/api/v1/orders/{order_id}", route_of(env, bridge::get_order));
  rt.add("GET", "/p/{sku}", route_of(env, bridge::get_page));
  return rt;
}

router make_admin_router(std::shared_ptr<bridge_env> env) {
  router rt;
  rt.add("GET", "/healthz", route_of(env, bridge::healthz));
  rt.add("GET", "/readyz", route_of(env, bridge::readyz));
  rt.add("PUT", "/admin/v1/products/{sku}", bridge::admin_only(env, bridge::put_product));
  rt.add("POST", "/admin/v1/products/{sku}/stock", bridge::admin_only(env, bridge::post_stock));
  rt.add("GET", "/admin/v1/products/{sku}/stock", bridge::admin_only(env, bridge::get_stock));
  rt.add("GET", "/admin/v1/cluster", bridge::admin_only(env, bridge::get_cluster));
  rt.add("GET", "/admin/v1/shards", bridge::admin_only(env, bridge::get_shards));
  rt.add("POST", "/admin/v1/nodes/{node_id}/drain", bridge::admin_only(env, bridge::post_drain));
  rt.add("GET", "/metrics", bridge::admin_only(env, bridge::get_metrics));
  // This node's history only; the cluster-wide view is the fan-out's (net/bridge/src/fanout.*).
  rt.add("GET", "/admin/v1/metrics/history", bridge::admin_only(env, bridge::get_metrics_history));
  return rt;
}

handler make_handler(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r,
                     http_kind kind) {
  if (!env->registry) {
    return [env, r](http_request&& req, responder resp) {
      r->dispatch(std::move(req), [env, resp = std::move(resp)](http_response out) {
        env->metrics.count(out.status);
        resp(std::move(out));
      });
    };
  }
  auto slots =
      std::make_shared<const std::vector<std::size_t>>(http_slots(*env->registry, *r, kind));
  return [env, r, slots](http_request&& req, responder resp) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t unmatched = unmatched_slot(*slots, req.method);
    r->dispatch_routed(std::move(req), [env, slots, start, unmatched, resp = std::move(resp)](
                                           http_response out, std::size_t route) {
      env->metrics.count(out.status);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      env->registry->observe_http(route < slots->size() - unmatched_methods.size() ? (*slots)[route]
                                                                                   : unmatched,
                                  out.status, took.count());
      resp(std::move(out));
    });
  };
}

} // namespace surge::net
