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

  /// Dispatches `req`; answers 404/405 itself.
  void dispatch(http_request&& req, responder r) const;

  /// Gets the answer and the index of the route that matched `req` (as added, 0-based), or
  /// size() when none did (404, 405). The guard's answer carries the route too.
  using routed_responder = std::function<void(http_response, std::size_t route)>;
  /// dispatch() that also tells which route answered (the metrics' route label).
  void dispatch_routed(http_request&& req, routed_responder r) const;

  /// The routes in the order added: their method and template ("/api/v1/carts/{cart_id}").
  std::size_t size() const { return routes_.size(); }
  const std::string& method_of(std::size_t i) const { return routes_[i].method; }
  const std::string& pattern_of(std::size_t i) const { return routes_[i].pattern; }

 private:
  struct route {
    std::string method;
    std::string pattern;
    std::vector<std::string> parts; ///< "{}" for a capture
    route_handler h;
  };
  /// The index of the route for `req` (size() when none), and the methods the path allows.
  std::size_t match(const http_request& req, std::vector<std::string>& allowed) const;
  /// 404 or 405 (with Allow) for a request no route took.
  static http_response unrouted(const http_request& req, const std::vector<std::string>& allowed);
  /// Calls route `i`'s handler with `req`'s captures.
  void run(std::size_t i, http_request&& req, responder r) const;
  std::vector<route> routes_;
  guard guard_;
};

} // namespace surge::net
