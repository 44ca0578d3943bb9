#include "request_metrics.hpp"

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

void request_timer::done(int status) const {
  if (metrics != nullptr) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics->observe_http(slot, status, took.count());
  }
}

http_series::http_series(node_metrics* m, const router& r, http_kind kind)
    : metrics_(m) {
  if (m == nullptr) {
    return;
  }
  for (std::size_t i = 0; i < r.size(); ++i) {
    const auto& pattern = r.pattern_of(i);
    const bool probe = pattern == "/healthz" || pattern == "/readyz";
    routes_.push_back(m->http_route(probe ? http_kind::probe : kind, pattern, r.method_of(i)));
  }
  for (auto method : unmatched_methods) {
    unmatched_.push_back(m->http_route(kind, "unmatched", method));
  }
}

request_timer http_series::start(const router& r, const http_request& req) const {
  if (metrics_ == nullptr) {
    return {};
  }
  const std::size_t route = r.index_of(req);
  std::size_t m = 0;
  while (m + 1 < unmatched_methods.size() && unmatched_methods[m] != req.method) {
    ++m;
  }
  return {metrics_, route < routes_.size() ? routes_[route] : unmatched_[m],
          std::chrono::steady_clock::now()};
}

} // namespace surge::net::bridge

namespace surge::net {

handler make_handler(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r,
                     http_kind kind) {
  auto inner = make_handler(env, r);
  if (!env->registry) {
    return inner;
  }
  auto series = std::make_shared<const bridge::http_series>(env->registry.get(), *r, kind);
  return [inner = std::move(inner), r, series](http_request&& req, responder resp) {
    const auto timer = series->start(*r, req);
    inner(std::move(req), [timer, resp = std::move(resp)](http_response out) {
      timer.done(out.status);
      resp(std::move(out));
    });
  };
}

} // namespace surge::net
