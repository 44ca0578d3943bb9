#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/router.hpp"

using namespace surge::net;

namespace {

http_request make(std::string method, std::string target) {
  http_request req;
  req.method = std::move(method);
  REQUIRE(decode_target(target, req));
  return req;
}

struct outcome {
  std::optional<http_response> response;
  std::string route;
  path_params params;
};

outcome run(const router& r, http_request req) {
  outcome out;
  r.dispatch(std::move(req), [&out](http_response resp) { out.response = std::move(resp); });
  if (out.response && out.response->status == 200) {
    out.route = out.response->body;
  }
  return out;
}

router storefront(path_params& captured) {
  router r;
  auto h = [&captured](std::string name) {
    return [&captured, name](http_request&&, path_params&& p, responder resp) {
      captured = std::move(p);
      http_response ok;
      ok.body = name;
      resp(std::move(ok));
    };
  };
  r.add("GET", "/healthz", h("healthz"));
  r.add("POST", "/api/v1/carts", h("create_cart"));
  r.add("GET", "/api/v1/carts/{cart_id}", h("get_cart"));
  r.add("PUT", "/api/v1/carts/{cart_id}/items/{sku}", h("put_item"));
  r.add("DELETE", "/api/v1/carts/{cart_id}/items/{sku}", h("delete_item"));
  r.add("POST", "/api/v1/carts/{cart_id}/checkout", h("checkout"));
  r.add("GET", "/", h("root"));
  return r;
}

std::string code_of(const http_response& r) {
  auto v = json::parse(r.body);
  REQUIRE(std::holds_alternative<json::value>(v));
  const auto* e = std::get<json::value>(v).find("error");
  REQUIRE(e != nullptr);
  return std::get<std::string>(e->find("code")->get());
}

} // namespace

TEST_CASE("router: matches and captures") {
  path_params captured;
  const router r = storefront(captured);

  auto o = run(r, make("GET", "/healthz"));
  CHECK(o.route == "healthz");
  CHECK(captured.empty());

  o = run(r, make("PUT", "/api/v1/carts/c%201/items/sku-9?x=1"));
  CHECK(o.route == "put_item");
  CHECK(captured == path_params{"c 1", "sku-9"});

  o = run(r, make("GET", "/api/v1/carts/a%2Fb"));
  CHECK(o.route == "get_cart");
  CHECK(captured == path_params{"a/b"});

  o = run(r, make("POST", "/api/v1/carts"));
  CHECK(o.route == "create_cart");
  o = run(r, make("GET", "/"));
  CHECK(o.route == "root");
}

TEST_CASE("router: 404 and 405") {
  path_params captured;
  const router r = storefront(captured);

  for (std::string target : {"/nope", "/api/v1/carts/", "/api/v1/carts/c1/items", "/healthz/x",
                             "/api/v1/carts/c1/items/s/x", "//healthz"}) {
    CAPTURE(target);
    auto o = run(r, make("GET", target));
    REQUIRE(o.response);
    CHECK(o.response->status == 404);
    CHECK(code_of(*o.response) == "not_found");
  }

  auto o = run(r, make("GET", "/api/v1/carts/c1/items/s1"));
  REQUIRE(o.response);
  CHECK(o.response->status == 405);
  CHECK(code_of(*o.response) == "method_not_allowed");
  REQUIRE(o.response->headers.size() == 1);
  CHECK(o.response->headers[0].first == "Allow");
  CHECK(o.response->headers[0].second == "PUT, DELETE");

  o = run(r, make("DELETE", "/api/v1/carts"));
  REQUIRE(o.response);
  CHECK(o.response->status == 405);
  CHECK(o.response->headers[0].second == "POST");

  o = run(r, make("get", "/healthz")); // methods are case-sensitive
  REQUIRE(o.response);
  CHECK(o.response->status == 405);
}

TEST_CASE("router: a guard answers before any route, or lets the request through") {
  path_params captured;
  router r = storefront(captured);
  int seen = 0;
  r.set_guard([&seen](const http_request& req) -> std::optional<http_response> {
    ++seen;
    if (req.method == "GET") {
      return std::nullopt;
    }
    return error_response(429, "rate_limited", "slow down");
  });
  auto o = run(r, make("GET", "/healthz"));
  REQUIRE(o.response);
  CHECK(o.route == "healthz");
  // Refused whether or not a route would match: no route runs.
  for (std::string target : {"/api/v1/carts", "/nope"}) {
    captured = {"untouched"};
    o = run(r, make("POST", target));
    REQUIRE(o.response);
    CHECK(o.response->status == 429);
    CHECK(code_of(*o.response) == "rate_limited");
    CHECK(captured == path_params{"untouched"});
  }
  CHECK(seen == 3);
}

TEST_CASE("router: pattern_of names the route dispatch would run, empty for 404 and 405") {
  path_params captured;
  const router r = storefront(captured);
  CHECK(r.pattern_of(make("PUT", "/api/v1/carts/c%201/items/sku-9?x=1")) ==
        "/api/v1/carts/{cart_id}/items/{sku}");
  CHECK(r.pattern_of(make("DELETE", "/api/v1/carts/c1/items/s")) ==
        "/api/v1/carts/{cart_id}/items/{sku}");
  CHECK(r.pattern_of(make("HEAD", "/api/v1/carts/c1")) == "/api/v1/carts/{cart_id}");
  CHECK(r.pattern_of(make("GET", "/")) == "/");
  CHECK(r.pattern_of(make("GET", "/healthz")) == "/healthz");
  CHECK(r.pattern_of(make("GET", "/nope")).empty());
  CHECK(r.pattern_of(make("GET", "/api/v1/carts/c1/items/s1")).empty()); // 405
  CHECK(captured.empty());                                               // nothing ran
}

namespace {

http_request with_headers(http_request req,
                          std::initializer_list<std::pair<std::string, std::string>> headers) {
  for (const auto& [k, v] : headers) {
    req.headers[k] = v;
  }
  return req;
}

/// The value of response header `name`, or "" when absent; counts how often it appears.
std::string header_of(const http_response& r, std::string_view name, int* count = nullptr) {
  std::string out;
  int n = 0;
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      out = v;
      ++n;
    }
  }
  if (count != nullptr) {
    *count = n;
  }
  return out;
}

router cors_storefront(path_params& captured, std::string_view origins) {
  router r = storefront(captured);
  r.answer_options(cors_origins::parse(origins));
  return r;
}

} // namespace

TEST_CASE("cors_origins: exact origins compare case-insensitively, '*' allows any but null") {
  auto c = cors_origins::parse(" https://Shop.example , http://localhost:3000,,");
  CHECK_FALSE(c.any);
  CHECK(c.exact == std::vector<std::string>{"https://shop.example", "http://localhost:3000"});
  CHECK(c.allows("https://shop.example"));
  CHECK(c.allows("HTTPS://SHOP.EXAMPLE"));
  CHECK(c.allows("http://localhost:3000"));
  CHECK_FALSE(c.allows("http://localhost:3001"));
  CHECK_FALSE(c.allows("https://shop.example.evil"));
  CHECK_FALSE(c.allows("null"));
  CHECK_FALSE(c.allows(""));
  auto any = cors_origins::parse("*");
  CHECK(any.any);
  CHECK(any.allows("https://anything.example"));
  CHECK_FALSE(any.allows("null"));
  CHECK(cors_origins::parse("").empty());
}

TEST_CASE("router: OPTIONS answers a preflight for every route from the router's own methods") {
  path_params captured;
  const router r = cors_storefront(captured, "https://shop.example");

  auto o = run(r, with_headers(make("OPTIONS", "/api/v1/carts/c1/items/s1"),
                               {{"origin", "https://shop.example"},
                                {"access-control-request-method", "PUT"},
                                {"access-control-request-headers", "content-type,authorization"}}));
  REQUIRE(o.response);
  CHECK(o.response->status == 204);
  CHECK(o.response->body.empty());
  CHECK(header_of(*o.response, "Access-Control-Allow-Origin") == "https://shop.example");
  CHECK(header_of(*o.response, "Access-Control-Allow-Methods") == "PUT, DELETE");
  CHECK(header_of(*o.response, "Access-Control-Allow-Headers") ==
        "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, "
        "X-Request-Id");
  CHECK(header_of(*o.response, "Access-Control-Max-Age") == "600");
  CHECK(header_of(*o.response, "Vary") == "Origin");
  CHECK(captured.empty()); // no route ran

  // A route added later is covered the same way; GET brings HEAD.
  router later = cors_storefront(captured, "https://shop.example");
  later.add("GET", "/api/v1/products/{sku}/stock/stream",
            [](http_request&&, path_params&&, responder resp) { resp(http_response{}); });
  o = run(later, with_headers(make("OPTIONS", "/api/v1/products/A1/stock/stream"),
                              {{"origin", "https://shop.example"},
                               {"access-control-request-method", "GET"}}));
  REQUIRE(o.response);
  CHECK(o.response->status == 204);
  CHECK(header_of(*o.response, "Access-Control-Allow-Methods") == "GET, HEAD");

  // A method the path does not serve: 405 with Allow (and the CORS headers, so the page sees it).
  o = run(r, with_headers(make("OPTIONS", "/api/v1/carts"),
                          {{"origin", "https://shop.example"},
                           {"access-control-request-method", "DELETE"}}));
  REQUIRE(o.response);
  CHECK(o.response->status == 405);
  CHECK(code_of(*o.response) == "method_not_allowed");
  CHECK(header_of(*o.response, "Allow") == "POST");
  CHECK(header_of(*o.response, "Access-Control-Allow-Origin") == "https://shop.example");

  // Origin not allowed: 403 forbidden, no CORS headers.
  o = run(r, with_headers(
                 make("OPTIONS", "/api/v1/carts"),
                 {{"origin", "https://evil.example"}, {"access-control-request-method", "POST"}}));
  REQUIRE(o.response);
  CHECK(o.response->status == 403);
  CHECK(code_of(*o.response) == "forbidden");
  CHECK(header_of(*o.response, "Access-Control-Allow-Origin").empty());

  // No Origin: 204 with Allow.
  o = run(r, make("OPTIONS", "/api/v1/carts/c1"));
  REQUIRE(o.response);
  CHECK(o.response->status == 204);
  CHECK(header_of(*o.response, "Allow") == "GET, HEAD, OPTIONS");
  CHECK(header_of(*o.response, "Access-Control-Allow-Origin").empty());

  // Unknown path: 404, with or without Origin.
  for (bool with_origin : {false, true}) {
    auto req = make("OPTIONS", "/api/v1/nope");
    if (with_origin) {
      req = with_headers(std::move(req), {{"origin", "https://shop.example"},
                                          {"access-control-request-method", "GET"}});
    }
    o = run(r, std::move(req));
    REQUIRE(o.response);
    CHECK(o.response->status == 404);
    CHECK(code_of(*o.response) == "not_found");
  }
}

TEST_CASE("router: OPTIONS passes no guard; without answer_options it stays 405") {
  path_params captured;
  router r = cors_storefront(captured, "*");
  int seen = 0;
  r.set_guard([&seen](const http_request&) -> std::optional<http_response> {
    ++seen;
    return error_response(429, "rate_limited", "slow down");
  });
  auto o = run(r, with_headers(make("OPTIONS", "/api/v1/carts"),
                               {{"origin", "https://any.example"},
                                {"access-control-request-method", "POST"}}));
  REQUIRE(o.response);
  CHECK(o.response->status == 204);
  CHECK(header_of(*o.response, "Access-Control-Allow-Origin") == "https://any.example");
  CHECK(seen == 0);
  // The guard's own refusal carries the CORS headers for an allowed origin (Retry-After readable).
  o = run(r, with_headers(make("POST", "/api/v1/carts"), {{"origin", "https://any.example"}}));
  REQUIRE(o.response);
  CHECK(o.response->status == 429);
  CHECK(header_of(*o.response, "Access-Control-Allow-Origin") == "https://any.example");
  CHECK(seen == 1);

  const router plain_router = storefront(captured);
  o = run(plain_router, make("OPTIONS", "/api/v1/carts"));
  REQUIRE(o.response);
  CHECK(o.response->status == 405);
}

TEST_CASE(
    "router: responses to an allowed Origin carry the CORS headers, errors and ready ones too") {
  path_params captured;
  router r = cors_storefront(captured, "https://shop.example");
  r.add("GET", "/ready", [](http_request&&, path_params&&, responder resp) {
    http_response page;
    page.body = "cached";
    page.headers.emplace_back("ETag", "\"1\"");
    resp(with_ready(make_ready(std::move(page))));
  });
  r.add("GET", "/fails", [](http_request&&, path_params&&, responder resp) {
    resp(error_response(503, "unavailable", "down"));
  });
  const auto expect_cors = [](const http_response& resp) {
    int vary = 0;
    CHECK(header_of(resp, "Access-Control-Allow-Origin") == "https://shop.example");
    CHECK(header_of(resp, "Vary", &vary) == "Origin");
    CHECK(vary == 1);
    CHECK(header_of(resp, "Access-Control-Expose-Headers") == "ETag, Retry-After, X-Request-Id");
  };
  const auto origin = std::pair<std::string, std::string>{"origin", "https://shop.example"};
  for (std::string target : {"/healthz", "/fails", "/nope"}) {
    CAPTURE(target);
    auto o = run(r, with_headers(make("GET", target), {origin}));
    REQUIRE(o.response);
    expect_cors(*o.response);
  }
  auto o = run(r, with_headers(make("DELETE", "/api/v1/carts"), {origin})); // 405
  REQUIRE(o.response);
  CHECK(o.response->status == 405);
  expect_cors(*o.response);

  o = run(r, with_headers(make("GET", "/ready"), {origin}));
  REQUIRE(o.response);
  CHECK_FALSE(o.response->ready); // sent plain, with the ready one's fields
  CHECK(o.response->body == "cached");
  CHECK(header_of(*o.response, "ETag") == "\"1\"");
  expect_cors(*o.response);

  // Another origin, or none: no CORS headers, a ready response stays ready.
  for (bool other : {false, true}) {
    auto req = make("GET", "/ready");
    if (other) {
      req = with_headers(std::move(req), {{"origin", "https://evil.example"}});
    }
    o = run(r, std::move(req));
    REQUIRE(o.response);
    CHECK(o.response->ready);
    CHECK(header_of(plain(*o.response), "Access-Control-Allow-Origin").empty());
    CHECK(header_of(plain(*o.response), "Vary").empty());
  }
}
