// GET /console and GET /console/{file}: the admin console's embedded files (web/, see
// surge/web/console_assets.hpp). No token is needed to load them: the page asks for the admin
// token and sends it on every API call itself.

#include <string>
#include <string_view>

#include "etag.hpp"
#include "handlers.hpp"
#include "surge/web/console_assets.hpp"

namespace surge::net::bridge {

namespace {

/// The page may load and call only its own origin; no framing, no sniffing, no Referer.
void add_security_headers(http_response& resp) {
  resp.headers.emplace_back("Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self' "
                            "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                            "frame-ancestors 'none'");
  resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
  resp.headers.emplace_back("Referrer-Policy", "no-referrer");
}

/// The file `name` with its type, ETag and Cache-Control: no-cache (revalidated on every use);
/// 304 without a body when `req`'s If-None-Match names it; 404 not_found when there is none.
http_response console_file(const http_request& req, std::string_view name) {
  const auto* asset = web::find_console_asset(name);
  http_response resp;
  if (asset == nullptr) {
    resp = error_response(404, "not_found", "no such console file");
  } else {
    resp.content_type = std::string{asset->content_type};
    resp.headers.emplace_back("ETag", std::string{asset->etag});
    resp.headers.emplace_back("Cache-Control", "no-cache");
    if (auto inm = req.header("if-none-match"); inm && etag_matches(*inm, asset->etag)) {
      resp.status = 304;
    } else {
      resp.body = std::string{asset->body};
    }
  }
  add_security_headers(resp);
  return resp;
}

} // namespace

void get_console(std::shared_ptr<bridge_env>, http_request&& req, path_params&&, responder r) {
  r(console_file(req, "index.html"));
}

void get_console_file(std::shared_ptr<bridge_env>, http_request&& req, path_params&& p,
                      responder r) {
  r(console_file(req, p[0]));
}

} // namespace surge::net::bridge
