#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "surge/net/http.hpp"

namespace surge::net {

/// Path parameters captured by a route, in the order of the pattern's `{name}` segments.
using path_params = std::vector<std::string>;

/// Maps method + path pattern to a handler. Patterns are literal segments and `{name}`
/// captures (a capture matches one non-empty segment), e.g. "/api/v1/carts/{cart_id}/items/{sku}".
/// A path that matches no pattern is 404 not_found; a path that matches only with another method is
/// 405 with an `Allow` header. Built once at start-up, then read-only (safe to use from every I/O
/// thread).
class router {
 public:
  using route_handler = std::function<void(http_request&&, path_params&&, responder)>;
  /// Runs on the I/O thread before routing; a response it returns is the answer, and no route
  /// runs (e.g. 429 from a rate limit). Must not block.
  using guard = std::function<std::optional<http_response>(const http_request&)>;

  void add(std::string method, std::string pattern, route_handler h);

  /// Sets the guard every request of this router passes first (one per router; replaces any).
  void set_guard(guard g);

  /// The index (as added, 0-based) of the route dispatch() would run for `req`, or size() when
  /// none would (404, 405); the guard is not consulted. With size(), method_of() and
  /// pattern_of(index), what the metrics label a request with (net/metrics.hpp).
  std::size_t index_of(const http_request& req) const;
  std::size_t size() const { return routes_.size(); }
  const std::string& method_of(std::size_t index) const { return routes_[index].method; }
  const std::string& pattern_of(std::size_t index) const { return routes_[index].pattern; }

  /// Dispatches `req`; answers 404/405 itself.
  void dispatch(http_request&& req, responder r) const;

  /// The pattern of the route dispatch() would run for `req` as it was added (e.g.
  /// "/api/v1/carts/{cart_id}/items/{sku}"), or empty when none would (404, 405). The guard is
  /// not consulted. For logs and metrics: a bounded set of values, whatever the path.
  std::string_view pattern_of(const http_request& req) const;

 private:
  struct route {
    std::string method;
    std::vector<std::string> parts; ///< "{}" for a capture
    route_handler h;
    std::string pattern;
  };
  /// True when `rt`'s path matches `req`'s segments (whatever the method).
  static bool path_matches(const route& rt, const http_request& req);
  /// True when `rt` serves `req`'s method (HEAD is served by the GET route).
  static bool method_matches(const route& rt, const http_request& req);
  std::vector<route> routes_;
  guard guard_;
};

} // namespace surge::net
