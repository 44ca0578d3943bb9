#include "admin_guard.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "surge/net/text.hpp"

namespace surge::net::bridge {

namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

using text::to_lower;
using text::trim_space;

/// admin.allowed_origins (a comma list; config validates each entry) as lower-case origins.
std::vector<std::string> parse_origins(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (auto o = trim_space(list.substr(0, comma)); !o.empty()) {
      out.push_back(to_lower(o));
    }
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

/// True when `origin` may talk to the admin API: it is the console's own (scheme "http://" or
/// "https://" followed by the request's Host) or one of `allowed` (lower-case). Scheme and host
/// compare case-insensitively; "null" (sandboxed pages, file:// URLs) never passes.
bool origin_allowed(std::string_view origin, std::optional<std::string_view> host,
                    const std::vector<std::string>& allowed) {
  const auto o = to_lower(trim_space(origin));
  if (o.empty() || o == "null") {
    return false;
  }
  if (host && !host->empty()) {
    const auto h = to_lower(trim_space(*host));
    if (o == "http://" + h || o == "https://" + h) {
      return true;
    }
  }
  return std::find(allowed.begin(), allowed.end(), o) != allowed.end();
}

/// True when the media type of `content_type` (before any ";" parameters) is application/json,
/// or application/x-ndjson when `ndjson`, case-insensitively.
bool is_json_media_type(std::string_view content_type, bool ndjson) {
  const auto type = to_lower(trim_space(content_type.substr(0, content_type.find(';'))));
  return type == "application/json" || (ndjson && type == "application/x-ndjson");
}

} // namespace

router::route_handler admin_only(std::shared_ptr<bridge_env> env, std::function<endpoint> f,
                                 bool ndjson) {
  auto allowed =
      std::make_shared<const std::vector<std::string>>(parse_origins(env->admin_allowed_origins));
  return [env, f, allowed, ndjson](http_request&& req, path_params&& p, responder r) {
    if (!env->admin_token.empty()) {
      auto auth = req.header("authorization").value_or("");
      constexpr std::string_view prefix = "Bearer ";
      if (auth.substr(0, prefix.size()) != prefix ||
          !constant_time_equal(auth.substr(prefix.size()), env->admin_token)) {
        auto resp = error_response(401, "unauthorized", "a valid bearer token is required");
        resp.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r(std::move(resp));
      }
    }
    if (auto origin = req.header("origin");
        origin && !origin_allowed(*origin, req.header("host"), *allowed)) {
      return r(error_response(403, "forbidden",
                              "the Origin is neither the console's own nor in "
                              "admin.allowed_origins"));
    }
    if ((req.method == "POST" || req.method == "PUT") &&
        !is_json_media_type(req.header("content-type").value_or(""), ndjson)) {
      return r(error_response(415, "unsupported_media_type",
                              ndjson ? "this route needs Content-Type: application/x-ndjson or "
                                       "application/json"
                                     : "admin requests with a body need Content-Type: "
                                       "application/json"));
    }
    f(env, std::move(req), std::move(p), std::move(r));
  };
}

} // namespace surge::net::bridge
