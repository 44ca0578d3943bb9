// The admin API (behind admin_only): products and stock on the SKU actors, the cluster, shards
// and drain from cluster_admin, /metrics and the metrics history.

#include <algorithm>
#include <optional>
#include <string>
#include <variant>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// The JSON object body of an admin write to the SKU `sku`. nullopt when the request is already
/// answered: with `bad_sku` for a malformed SKU (checked first), or the body's 400.
std::optional<json::value> sku_body(const std::string& sku, const http_request& req, responder& r,
                                    http_response bad_sku) {
  if (!valid_sku(sku)) {
    r(std::move(bad_sku));
    return std::nullopt;
  }
  return object_body(req, false, r);
}

} // namespace

void put_product(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                 responder r) {
  auto body =
      sku_body(p[0], req, r,
               bad_request("a SKU is 1 to 64 letters, digits, '.', '_' or '-', not dots alone"));
  if (!body) {
    return;
  }
  std::string err;
  auto rec = product_fields(*body, p[0], err);
  if (!rec) {
    return r(bad_request(err));
  }
  call<actors::product_view>(
      *env, env->skus->acquire_routed(p[0]), std::move(r),
      [env, sku = p[0]](actors::product_view& v) {
        drop_cached(*env, sku);
        return json_response(200, product_json(v));
      },
      actors::product_atom::value, *rec);
}

void post_stock(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  auto body = sku_body(p[0], req, r, not_found("no such product"));
  if (!body) {
    return;
  }
  const auto& obj = *body;
  bool has_set = obj.find("set") != nullptr;
  bool has_add = obj.find("add") != nullptr;
  if (has_set == has_add) {
    return r(bad_request("give exactly one of 'set' and 'add'"));
  }
  std::string err;
  auto value = has_set ? int_field(obj, "set", 0, max_money, true, 0, err)
                       : int_field(obj, "add", -max_money, max_money, true, 0, err);
  if (!value) {
    return r(bad_request(err));
  }
  call<actors::stock_view>(
      *env, env->skus->acquire_routed(p[0]), std::move(r),
      [env, sku = p[0]](actors::stock_view& s) {
        drop_cached(*env, sku);
        return json_response(200, stock_json(s));
      },
      actors::stock_atom::value, actors::stock_change{has_set, *value, req.request_id});
}

void get_stock(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  call<actors::stock_view>(*env, env->skus->acquire_routed(p[0]), std::move(r),
                           answer(200, stock_json), actors::stock_atom::value);
}

void get_cluster(std::shared_ptr<bridge_env> env, http_request&&, path_params&&, responder r) {
  auto nodes = env->cluster.nodes ? env->cluster.nodes() : std::vector<cluster_admin::node_row>{};
  r(json_response(200, cluster_json(nodes, env->shards, env->node_id)));
}

void get_shards(std::shared_ptr<bridge_env> env, http_request&&, path_params&&, responder r) {
  auto shards =
      env->cluster.shards ? env->cluster.shards() : std::vector<cluster_admin::shard_row>{};
  r(json_response(200, shards_json(shards)));
}

namespace {

/// POST /admin/v1/nodes/{node_id}/drain and /undrain: `ask` (cluster_admin::drain or undrain)
/// answers 202 with the node's new `status`, or the refusal.
void change_member(const cluster_admin::change_fn& ask, std::string node, std::string_view status,
                   responder r) {
  if (!ask) {
    return r(error_response(503, "unavailable", "this node is not a cluster member"));
  }
  ask(node, [r = std::move(r), node, status](cluster_admin::change c) {
    switch (c) {
    case cluster_admin::change::done:
      return r(json_response(202, member_status_json(node, status)));
    case cluster_admin::change::not_found:
      return r(error_response(404, "not_found", "no such node: " + node));
    case cluster_admin::change::refused:
      return r(error_response(409, "conflict",
                              "no other member would still serve: every other member is down, "
                              "left or draining"));
    case cluster_admin::change::unavailable:
      break;
    }
    r(error_response(503, "unavailable", "the membership store is out of reach; retry shortly"));
  });
}

} // namespace

void post_drain(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  change_member(env->cluster.drain, p[0], "draining", std::move(r));
}

void post_undrain(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  change_member(env->cluster.undrain, p[0], "up", std::move(r));
}

void get_metrics(std::shared_ptr<bridge_env> env, http_request&&, path_params&&, responder r) {
  legacy_figures legacy;
  legacy.up = serving(*env);
  legacy.by_status.resize(env->metrics.by_status.size());
  for (std::size_t s = 0; s < legacy.by_status.size(); ++s) {
    legacy.by_status[s] = env->metrics.by_status[s].load(std::memory_order_relaxed);
  }
  legacy.rate_limited = env->metrics.rate_limited.load(std::memory_order_relaxed);
  legacy.skus = env->skus->size();
  legacy.carts = env->carts->size();
  http_response resp;
  resp.content_type = "text/plain; version=0.0.4";
  resp.body = env->registry ? env->registry->render(legacy) : node_metrics::render_legacy(legacy);
  if (env->registry) {
    // The stock streams' figures (kept by the bridge, not the registry; absent with the legacy
    // families alone, as a bridge without a registry shows).
    resp.body += "# HELP surge_http_streams_open Event streams (stock and queue) open on the "
                 "storefront port.\n"
                 "# TYPE surge_http_streams_open gauge\nsurge_http_streams_open " +
                 std::to_string(env->metrics.streams_open.load(std::memory_order_relaxed)) +
                 "\n# HELP surge_http_stream_events_total Events sent on stock and queue streams.\n"
                 "# TYPE surge_http_stream_events_total counter\nsurge_http_stream_events_total " +
                 std::to_string(env->metrics.stream_events.load(std::memory_order_relaxed)) + "\n";
  }
  if (env->extra_metrics) {
    resp.body += env->extra_metrics();
  }
  r(std::move(resp));
}

http_response local_metrics_history(bridge_env& env, const http_request& req) {
  if (!req.query.empty()) {
    return bad_request("unknown parameter '" + req.query.begin()->first + "'");
  }
  if (!env.history) {
    return error_response(503, "unavailable", "this node keeps no metrics history");
  }
  return json_response(200, env.history->body(env.node_id));
}

} // namespace surge::net::bridge
