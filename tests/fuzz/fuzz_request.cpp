// libFuzzer target: one HTTP request through parse_request (default limits) and, when it parses,
// through a router with API.md's storefront and admin routes whose handlers parse the JSON body
// and check that its serialization parses back to the same text. Any crash, sanitizer report or
// failed check (abort) is a bug.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/router.hpp"

namespace net = surge::net;
namespace json = surge::net::json;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_request: check failed: %s\n", what);
    std::abort();
  }
}

/// An error body must be API.md's error shape.
void check_error_body(const net::http_response& r) {
  auto v = json::parse(r.body);
  check(std::holds_alternative<json::value>(v), "error body is JSON");
  const auto* e = std::get<json::value>(v).find("error");
  check(e != nullptr && e->find("code") != nullptr && e->find("message") != nullptr,
        "error body has error.code and error.message");
}

void json_round_trip(const std::string& body) {
  auto parsed = json::parse(body);
  if (auto* err = std::get_if<json::parse_error>(&parsed)) {
    check(err->offset <= body.size(), "error offset inside the input");
    check_error_body(net::error_response(400, "bad_request", err->message));
    return;
  }
  const std::string once = json::serialize(std::get<json::value>(parsed));
  check(json::valid_utf8(once), "serialization is valid UTF-8");
  auto again = json::parse(once);
  check(std::holds_alternative<json::value>(again), "serialization parses");
  check(json::serialize(std::get<json::value>(again)) == once, "round trip is stable");
}

net::router make_router() {
  net::router r;
  auto h = [](net::http_request&& req, net::path_params&& params, net::responder respond) {
    for (const auto& p : params) {
      check(!p.empty() && json::valid_utf8(p), "captures are non-empty UTF-8");
    }
    if (!req.body.empty()) {
      json_round_trip(req.body);
    }
    net::http_response ok;
    ok.body = "{}";
    respond(std::move(ok));
  };
  const char* routes[][2] = {
      {"GET", "/healthz"},
      {"GET", "/readyz"},
      {"GET", "/api/v1/products"},
      {"GET", "/api/v1/products/{sku}"},
      {"POST", "/api/v1/carts"},
      {"GET", "/api/v1/carts/{cart_id}"},
      {"PUT", "/api/v1/carts/{cart_id}/items/{sku}"},
      {"DELETE", "/api/v1/carts/{cart_id}/items/{sku}"},
      {"POST", "/api/v1/carts/{cart_id}/checkout"},
      {"GET", "/api/v1/orders/{order_id}"},
      {"GET", "/p/{sku}"},
      {"PUT", "/admin/v1/products/{sku}"},
      {"POST", "/admin/v1/products/{sku}/stock"},
      {"GET", "/admin/v1/products/{sku}/stock"},
      {"GET", "/admin/v1/cluster"},
      {"POST", "/admin/v1/nodes/{node_id}/drain"},
      {"GET", "/metrics"},
      {"GET", "/console"},
  };
  for (const auto& rt : routes) {
    r.add(rt[0], rt[1], h);
  }
  return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const net::router router = make_router();
  static const net::server_options limits;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);

  auto result = net::parse_request(raw, limits);
  if (auto* err = std::get_if<net::http_response>(&result)) {
    check(err->status == 400 || err->status == 413 || err->status == 414 || err->status == 431,
          "parse errors are 400, 413, 414 or 431");
    check_error_body(*err);
    return 0;
  }
  auto& req = std::get<net::http_request>(result);
  check(!req.path.empty() && req.path.front() == '/', "path starts with '/'");
  check(json::valid_utf8(req.path), "path is UTF-8");
  check(req.body.size() <= limits.body_limit, "body within the limit");
  for (const auto& [k, v] : req.query) {
    check(json::valid_utf8(k) && json::valid_utf8(v), "query is UTF-8");
  }
  // Also the raw body as JSON, whatever the route.
  json_round_trip(req.body);

  bool answered = false;
  router.dispatch(std::move(req), [&answered](net::http_response r) {
    answered = true;
    if (r.status != 200) {
      check(r.status == 404 || r.status == 405, "router answers 404 or 405");
      check_error_body(r);
    }
  });
  check(answered, "every request is answered");
  return 0;
}
