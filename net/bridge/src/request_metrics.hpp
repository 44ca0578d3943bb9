#pragma once

// How make_handler times requests into surge_http_request_duration_seconds (net/metrics.hpp):
// each request is labelled by its server's kind, its route's template and method, and its
// status, never by its path. Private to the bridge.

#include <array>
#include <chrono>
#include <cstddef>
#include <string_view>
#include <vector>

#include "surge/net/http.hpp"
#include "surge/net/metrics.hpp"
#include "surge/net/router.hpp"

namespace surge::net::bridge {

/// One request's time, for its series (nothing recorded without a registry).
struct request_timer {
  node_metrics* metrics = nullptr;
  std::size_t slot = 0;
  std::chrono::steady_clock::time_point start;

  /// Records the request as answered with `status` now. Any thread.
  void done(int status) const;
};

/// The series slots of a router's requests under one kind: per route (its template and
/// method; /healthz and /readyz as probes), and per method for requests no route takes
/// ("unmatched"; methods outside a fixed list as "other", so that labels stay bounded).
/// Made once per handler (registering its slots); read-only and thread-safe afterwards.
class http_series {
 public:
  /// `m` nullptr: nothing is recorded.
  http_series(node_metrics* m, const router& r, http_kind kind);

  /// Starts timing `req` on `r` (before dispatch: the guard's answer is its route's too).
  request_timer start(const router& r, const http_request& req) const;

 private:
  static constexpr std::array<std::string_view, 8> unmatched_methods{
      "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
  node_metrics* const metrics_;
  std::vector<std::size_t> routes_;    ///< by route index
  std::vector<std::size_t> unmatched_; ///< by unmatched_methods
};

} // namespace surge::net::bridge
