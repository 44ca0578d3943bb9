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
