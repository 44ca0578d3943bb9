// The node's storefront additions of issue 16 (API.md "Storefront additions"), end to end over
// real sockets: CORS (http.cors_origins) and its preflights, never rate limited; dev sign-in
// (auth.dev_login); catalog events on the Redis stream <redis.prefix>catalog.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "api.hpp"
#include "surge/persistence/orders.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

constexpr const char* shop = "https://shop.example";

request with(request r, std::vector<std::pair<std::string, std::string>> headers) {
  r.headers.insert(r.headers.end(), headers.begin(), headers.end());
  return r;
}

request preflight(std::string target, std::string method, std::string origin = shop) {
  return with(request{"OPTIONS", std::move(target), {}, {}},
              {{"Origin", std::move(origin)},
               {"Access-Control-Request-Method", std::move(method)},
               {"Access-Control-Request-Headers", "authorization, content-type, idempotency-key"}});
}

/// CHECKs the headers every response to an allowed Origin carries.
void check_cors(const response& r) {
  INFO(describe(r));
  CHECK(r.header("access-control-allow-origin") == shop);
  CHECK(r.header("vary") == "Origin");
  CHECK(r.header("access-control-expose-headers") == "ETag, Retry-After, X-Request-Id");
}

const std::string secret(40, 'k');

node_config dev_login_node() {
  node_config c;
  c.extra = {"--auth.dev_login=true", "--auth.jwt_secret=" + secret, "--auth.jwt_issuer=surge-dev"};
  return c;
}

} // namespace

TEST_SUITE("storefront") {
  TEST_CASE("CORS: preflights for every storefront route, never rate limited; headers on answers") {
    node_config c;
    c.limits = true; // one write per address, then 429
    c.extra = {"--http.cors_origins=" + std::string{shop} + ",http://localhost:3000",
               "--limits.ip_rate=1", "--limits.ip_burst=1"};
    node_process node{c};
    api a{node};
    a.add_product({.sku = "CORS-1", .name = "Cors", .price_cents = 100}, 5);
    auto& s = a.store();

    // A preflight of each storefront route (captures filled), with the route's methods.
    const std::vector<std::pair<std::string, std::string>> routes{
        {"/api/v1/products", "GET, HEAD"},
        {"/api/v1/products/CORS-1", "GET, HEAD"},
        {"/api/v1/search", "GET, HEAD"},
        {"/api/v1/categories", "GET, HEAD"},
        {"/api/v1/carts", "POST"},
        {"/api/v1/carts/c_1", "GET, HEAD"},
        {"/api/v1/carts/c_1/items/CORS-1", "PUT, DELETE"},
        {"/api/v1/carts/c_1/checkout", "POST"},
        {"/api/v1/orders/o_1", "GET, HEAD"},
        {"/p/CORS-1", "GET, HEAD"}};
    // Many more preflights than the write budget: none is limited.
    for (int round = 0; round < 3; ++round) {
      for (const auto& [target, methods] : routes) {
        CAPTURE(target);
        const std::string first = methods.substr(0, methods.find(','));
        auto r = s.send(preflight(target, first));
        REQUIRE_MESSAGE(r.status == 204, describe(r));
        CHECK(r.body.empty());
        CHECK(r.header("access-control-allow-origin") == shop);
        CHECK(r.header("access-control-allow-methods") == methods);
        CHECK(r.header("access-control-allow-headers") ==
              "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, "
              "X-Request-Id");
        CHECK(r.header("access-control-max-age") == "600");
        CHECK(r.header("vary") == "Origin");
      }
    }
    // Other origins, no Origin, unknown paths.
    auto r = s.send(preflight("/api/v1/carts", "POST", "https://evil.example"));
    check_error(r, 403, "forbidden");
    CHECK(r.header("access-control-allow-origin").empty());
    r = s.send(request{"OPTIONS", "/api/v1/carts/c_1", {}, {}});
    CHECK(r.status == 204);
    CHECK(r.header("allow") == "GET, HEAD, OPTIONS");
    CHECK(r.header("access-control-allow-origin").empty());
    r = s.send(preflight("/api/v1/nothing-here", "GET"));
    check_error(r, 404, "not_found");

    // Answers to an allowed Origin, success and error alike (the second localhost origin too).
    const std::pair<std::string, std::string> origin{"Origin", shop};
    r = s.send(with(request{"GET", "/api/v1/products/CORS-1", {}, {}}, {origin}));
    CHECK(r.status == 200);
    check_cors(r);
    r = s.send(with(request{"GET", "/p/CORS-1", {}, {}}, {origin})); // a cached page, with ETag
    CHECK(r.status == 200);
    CHECK_FALSE(r.header("etag").empty());
    check_cors(r);
    r = s.send(with(request{"GET", "/api/v1/products", {}, {}}, {origin})); // a cached listing
    CHECK(r.status == 200);
    check_cors(r);
    r = s.send(with(request{"GET", "/api/v1/products/NOPE-9", {}, {}}, {origin}));
    check_error(r, 404, "not_found");
    check_cors(r);
    r = s.send(
        with(request{"GET", "/api/v1/products", {}, {}}, {{"Origin", "http://localhost:3000"}}));
    CHECK(r.header("access-control-allow-origin") == "http://localhost:3000");
    // Writes spend the budget; the 429 carries the CORS headers, so a page can read Retry-After.
    response limited;
    for (int i = 0; i < 20 && limited.status != 429; ++i) {
      limited = s.send(with(json_request("POST", "/api/v1/carts", "{}"), {origin}));
    }
    check_error(limited, 429, "rate_limited");
    check_cors(limited);
    // ... and preflights still pass.
    r = s.send(preflight("/api/v1/carts", "POST"));
    CHECK(r.status == 204);
    // No Origin, or another one: no CORS headers.
    r = s.get("/api/v1/products/CORS-1");
    CHECK(r.header("access-control-allow-origin").empty());
    CHECK(r.header("vary").empty());
    r = s.send(with(request{"GET", "/api/v1/products/CORS-1", {}, {}},
                    {{"Origin", "https://evil.example"}}));
    CHECK(r.status == 200);
    CHECK(r.header("access-control-allow-origin").empty());
  }

  TEST_CASE("CORS: a bad http.cors_origins entry stops the start, naming the setting") {
    node_config c;
    c.extra = {"--http.cors_origins=https://shop.example/path"};
    const auto failure = start_failure(c);
    REQUIRE(failure.has_value());
    CHECK(failure->find("http.cors_origins") != std::string::npos);
  }

  TEST_CASE("dev sign-in: a token of the named customer, whose carts are theirs alone") {
    node_process node{dev_login_node()};
    api a{node};
    auto& s = a.store();
    const auto before = wall_ms();
    auto r = s.post("/api/v1/dev/login", R"({"customer_id":"alice"})");
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    const auto after = wall_ms();
    const auto alice = parse_json(r.body);
    CHECK(keys_of(alice) == std::vector<std::string>{"customer_id", "expires_at", "token"});
    CHECK(str_of(alice, "customer_id") == "alice");
    const auto expires = parse_rfc3339_ms(str_of(alice, "expires_at"));
    REQUIRE(expires.has_value());
    CHECK(*expires >= before / 1000 * 1000 + 12 * 3600 * 1000);
    CHECK(*expires <= after + 12 * 3600 * 1000);
    const auto alice_token = str_of(alice, "token");
    r = s.post("/api/v1/dev/login", R"({"customer_id":"bob"})");
    REQUIRE(r.status == 200);
    const auto bob_token = str_of(parse_json(r.body), "token");

    // Alice's token makes Alice's cart; Bob's token does not see it; no token is 401.
    auto create = json_request("POST", "/api/v1/carts", "{}");
    create.headers.emplace_back("Authorization", "Bearer " + alice_token);
    r = s.send(create);
    REQUIRE_MESSAGE(r.status == 201, describe(r));
    const auto cart = parse_json(r.body);
    CHECK(str_of(cart, "customer_id") == "alice");
    const auto id = str_of(cart, "cart_id");
    auto get = request{"GET", "/api/v1/carts/" + id, {}, {}};
    r = s.send(with(get, {{"Authorization", "Bearer " + alice_token}}));
    CHECK(r.status == 200);
    r = s.send(with(get, {{"Authorization", "Bearer " + bob_token}}));
    check_error(r, 404, "not_found");

    // Bad ids: 400 bad_request.
    for (const char* body : {R"({"customer_id":"al ice"})", R"({"customer_id":""})", R"({})",
                             R"({"customer_id":7})", R"(not json)"}) {
      CAPTURE(body);
      check_error(s.post("/api/v1/dev/login", body), 400, "bad_request");
    }
    check_error(
        s.post("/api/v1/dev/login", R"({"customer_id":")" + std::string(129, 'a') + R"("})"), 400,
        "bad_request");
    // The node said so at start.
    CHECK(node.log_tail(400).find("auth.dev_login=true") != std::string::npos);
  }

  TEST_CASE("dev sign-in: absent by default; on without auth.jwt_secret stops the start") {
    {
      node_process node;
      api a{node};
      check_error(a.store().post("/api/v1/dev/login", R"({"customer_id":"alice"})"), 404,
                  "not_found");
    }
    node_config c;
    c.extra = {"--auth.dev_login=true"};
    const auto failure = start_failure(c);
    REQUIRE(failure.has_value());
    CHECK(failure->find("auth.dev_login") != std::string::npos);
    CHECK(failure->find("auth.jwt_secret") != std::string::npos);
  }

  TEST_CASE("catalog events: a product PUT reaches the Redis stream <prefix>catalog") {
    node_process node;
    api a{node};
    a.put_product({.sku = "EV-1",
                   .name = "Event kettle",
                   .category = "kitchen",
                   .price_cents = 2599,
                   .currency = "EUR"});
    auto stream = persistence::make_redis_event_stream(
        surge::test::redis_test_options(surge::test::test_redis_url(), node.redis_prefix()));
    REQUIRE(stream);
    // Blocking reads (XREAD BLOCK) until the relay's entry arrives, 30 s at most.
    std::vector<persistence::event_stream::entry> got;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.empty() && std::chrono::steady_clock::now() < deadline) {
      auto r = (*stream)->read("catalog", "0", 10, 1500ms);
      REQUIRE_MESSAGE(r, caf::to_string(r.error()));
      got = std::move(*r);
    }
    REQUIRE_MESSAGE(got.size() == 1, "catalog entries: " << got.size());
    std::map<std::string, std::string> fields(got[0].fields.begin(), got[0].fields.end());
    CHECK(fields.size() == 3);
    CHECK_FALSE(fields["event_id"].empty());
    CHECK(fields["key"] == "EV-1");
    const auto payload = parse_json(fields["payload"]);
    CHECK(keys_of(payload) ==
          std::vector<std::string>{"category", "currency", "name", "price_cents", "sku"});
    CHECK(str_of(payload, "sku") == "EV-1");
    CHECK(str_of(payload, "name") == "Event kettle");
    CHECK(str_of(payload, "category") == "kitchen");
    CHECK(int_of(payload, "price_cents") == 2599);
    CHECK(str_of(payload, "currency") == "EUR");
  }
}

} // namespace surge::itest
