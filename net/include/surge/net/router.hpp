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

/// Which web origins may call a router's routes from a browser (CORS, the setting
/// http.cors_origins): exact origins ("https://shop.example", compared case-insensitively) or
/// "*" for any. An allowed origin is echoed back (never "*"), so credentials would work too; the
/// Origin "null" (sandboxed pages, file:// URLs) is never allowed.
struct cors_origins {
  bool any = false;               ///< "*" was listed
  std::vector<std::string> exact; ///< lower-case
  /// A comma list (config validates each entry; empty entries are skipped).
  static cors_origins parse(std::string_view list);
  bool empty() const { return !any && exact.empty(); }
  /// True when a request with this Origin header value may read the responses.
  bool allows(std::string_view origin) const;
};

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

  /// Makes this router answer OPTIONS itself, before the guard (so never rate limited), on every
  /// path a route serves (unless a route was added for OPTIONS there), and serve cross-origin
  /// browsers from `origins` (API.md "Storefront additions"):
  /// - OPTIONS with no Origin: 204 with `Allow` (the path's methods, HEAD with GET, OPTIONS);
  /// - OPTIONS with an Origin not in `origins` (every Origin when it is empty): 403 `forbidden`;
  /// - OPTIONS with an allowed Origin and an `Access-Control-Request-Method` the path serves (a
  ///   preflight): 204 with Access-Control-Allow-Origin (that origin), -Allow-Methods (the
  ///   path's), -Allow-Headers (`cors_allow_headers`), -Max-Age 600 and `Vary: Origin`; with
  ///   another method 405 `method_not_allowed`; with none (not a preflight) 204 with `Allow`;
  /// - a path no route serves: 404 `not_found`, whatever the method.
  /// Every other response to a request whose Origin is allowed (those of handlers, of the guard
  /// and the router's own 404/405 alike) gets Access-Control-Allow-Origin (that origin),
  /// `Vary: Origin` and Access-Control-Expose-Headers (`cors_expose_headers`); a ready response
  /// is then sent as a plain one (its body copied once). Call before the router is shared.
  void answer_options(cors_origins origins);
  static constexpr std::string_view cors_allow_headers =
      "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, X-Request-Id";
  static constexpr std::string_view cors_expose_headers = "ETag, Retry-After, X-Request-Id";

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
  /// The methods of the routes whose path matches `req` in the order added, HEAD after GET;
  /// empty when none does.
  std::vector<std::string> methods_of(const http_request& req) const;
  /// The router's answer to an OPTIONS request no route serves (see answer_options).
  http_response options_response(const http_request& req) const;
  std::vector<route> routes_;
  guard guard_;
  bool answer_options_ = false;
  cors_origins cors_;
};

} // namespace surge::net
