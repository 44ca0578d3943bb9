#pragma once

// The access log of both ports (log.access_sample, log.access_file): one JSON line per sampled
// request through the node's "access" logger (bridge_env::access_log), written when the
// response is handed to the server. Private to the bridge; routes.cpp's make_handler puts the
// wrapper around every request.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// One request as the access log shows it.
struct access_entry {
  int64_t time_ms = 0; ///< when the request was handed over (Unix ms)
  std::string_view request_id;
  std::string_view method;
  std::string_view route; ///< the router's pattern, or "unmatched"
  std::string_view path;
  int status = 0;
  double duration_ms = 0;  ///< handed over -> answered
  std::string_view client; ///< client_address() (X-Forwarded-For from trusted proxies)
  std::string_view node;
  std::size_t bytes = 0; ///< response body size
};

/// The entry as one JSON object, without a line end:
/// {"time","request_id","method","route","path","status","duration_ms","client","node","bytes"}
/// (`time` RFC 3339 UTC with ms, `duration_ms` to the microsecond).
std::string access_line(const access_entry& e);

/// Whether a request is sampled, decided when it arrives: every one at `sample` >= 1, none at
/// 0, else each with probability `sample` (a per-thread PRNG; not for anything secret).
bool draw_sample(double sample);

/// Whether the line of a request is written: sampled, or answered 5xx while `sample` > 0.
bool access_written(double sample, bool sampled, int status);

/// `next`, and for each request: sets http_request::request_id when the server did not
/// (request_id.hpp), runs `next` inside a log::request_scope of that id, and writes the access
/// line per `env->access_sample` when the response comes (from any thread). Without an access
/// logger (env->access_log null) or at sample 0 it only does the first two. `r` names routes.
handler with_access_log(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r,
                        handler next);

} // namespace surge::net::bridge
