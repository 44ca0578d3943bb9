// GET /admin/v1/payments: each node's payment gateways (payment_router::stats()), cluster-wide
// through fanout.hpp's default merge.

#include "errors.hpp"
#include "fanout.hpp"
#include "handlers.hpp"

namespace surge::net::bridge {

http_response local_payments(bridge_env& env, const http_request& req) {
  if (!req.query.empty()) {
    return bad_request("unknown parameter '" + req.query.begin()->first + "'");
  }
  auto gateways = env.payment_stats ? env.payment_stats() : std::vector<payments::gateway_stats>{};
  json::writer w{64 + gateways.size() * 256};
  w.begin_object().member("node_id", env.node_id).key("gateways").begin_array();
  for (const auto& g : gateways) {
    w.begin_object().member("name", g.name).member("breaker", g.breaker).key("calls");
    w.begin_object().member("approved", g.approved).member("declined", g.declined);
    w.member("failed", g.failed).member("unknown", g.unknown).end_object();
    w.member("refunds", g.refunds).member("failovers", g.failovers).key("latency_ms");
    w.begin_object();
    for (const auto& [k, v] : {std::pair{"p50", g.p50_ms}, std::pair{"p99", g.p99_ms}}) {
      if (v) {
        w.key(k).number(*v);
      } else {
        w.member_null(k);
      }
    }
    w.end_object().end_object();
  }
  return json_response(200, w.end_array().end_object().take());
}

} // namespace surge::net::bridge
