// GET /healthz and GET /readyz (storefront and admin ports).

#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"

namespace surge::net::bridge {

bool serving(const bridge_env& env) {
  return env.ready.load() && (!env.cluster.serving || env.cluster.serving());
}

void healthz(std::shared_ptr<bridge_env>, http_request&&, path_params&&, responder r) {
  r(json_response(200, status_json("ok")));
}

void readyz(std::shared_ptr<bridge_env> env, http_request&&, path_params&&, responder r) {
  if (serving(*env)) {
    return r(json_response(200, status_json("ready")));
  }
  auto resp = error_response(503, "unavailable", "this node is not serving");
  resp.headers.emplace_back("Retry-After", "1");
  r(std::move(resp));
}

} // namespace surge::net::bridge
