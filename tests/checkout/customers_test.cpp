// Issue 11, finding 3: per-customer limits and carts trusted whatever the client said. With
// auth.jwt_secret set, the customer is the verified `sub` of the request's bearer token:
// - a customer's cart and orders answer 404 to anyone else (another token, or none);
// - a body customer_id needs that customer's token (401 login_required, or 403 when another);
// - a SKU with a per-customer limit needs a customer (401 login_required), and the limit counts
//   every cart of that customer;
// - forged tokens (another key, expired, alg none, a changed payload, a wrong issuer) are 401.
#include <doctest/doctest.h>

#include <chrono>

#include "base64url.hpp"
#include "checkout_support.hpp"
#include "surge/net/customer_auth.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

const std::string secret = "customers-test-secret-0123456789-abcdefghij";
const std::string issuer = "https://id.shop.example";

/// A token for `customer` minted `age` ago, valid for an hour from then.
std::string token_for(const std::string& customer, std::chrono::seconds age = 0s,
                      const std::string& key = secret, const std::string& iss = issuer) {
  net::token_claims claims;
  claims.subject = customer;
  claims.ttl = 1h;
  claims.issuer = iss;
  auto t = net::mint_hs256_token(key, claims, std::chrono::system_clock::now() - age);
  REQUIRE(std::holds_alternative<std::string>(t));
  return std::get<std::string>(t);
}

request with_token(request r, const std::string& token) {
  r.headers.emplace_back("Authorization", "Bearer " + token);
  return r;
}

response as(http_client& c, const std::string& token, request r) {
  return c.send(token.empty() ? std::move(r) : with_token(std::move(r), token));
}

/// The node flags that make it verify customer tokens.
std::vector<std::string> customers_flags() {
  return {"--auth.jwt_secret=" + secret, "--auth.jwt_issuer=" + issuer};
}

} // namespace

TEST_SUITE("customers") {

  TEST_CASE("a customer's cart and orders are theirs alone") {
    auto [ps, node, a] = paying_store{{}, customers_flags()};
    auto& c = a.store();
    add_product(a, "cu-1", 700, 10);
    const auto alice = token_for("alice");
    const auto bob = token_for("bob");

    auto made = as(c, alice, json_request("POST", "/api/v1/carts", "{}"));
    REQUIRE_MESSAGE(made.status == 201, describe(made));
    const auto cart = str_of(parse_json(made.body), "cart_id");
    CHECK(str_of(parse_json(made.body), "customer_id") == "alice");
    const auto path = "/api/v1/carts/" + cart;
    REQUIRE(as(c, alice, json_request("PUT", path + "/items/cu-1", R"({"qty":2})")).status == 200);

    for (const std::string& who : {bob, std::string{}}) {
      check_error(as(c, who, request{"GET", path, {}, {}}), 404, "not_found");
      check_error(as(c, who, json_request("PUT", path + "/items/cu-1", R"({"qty":5})")), 404,
                  "not_found");
      check_error(as(c, who, request{"DELETE", path + "/items/cu-1", {}, {}}), 404, "not_found");
      check_error(as(c, who, checkout_request(cart, "cu-key-" + who.substr(0, 4), "tok_ok")), 404,
                  "not_found");
    }
    check_stock(a.stock("cu-1"), 10, 2, 0);
    CHECK(ps->charges().empty());

    const auto paid = as(c, alice, checkout_request(cart, "cu-key-alice", "tok_ok"));
    REQUIRE_MESSAGE(paid.status == 201, describe(paid));
    const auto order = str_of(parse_json(paid.body), "order_id");
    CHECK(as(c, alice, request{"GET", "/api/v1/orders/" + order, {}, {}}).status == 200);
    check_error(as(c, bob, request{"GET", "/api/v1/orders/" + order, {}, {}}), 404, "not_found");
    check_error(as(c, "", request{"GET", "/api/v1/orders/" + order, {}, {}}), 404, "not_found");
  }

  TEST_CASE("a body customer_id needs that customer's token") {
    auto [ps, node, a] = paying_store{{}, customers_flags()};
    auto& c = a.store();
    check_error(c.post("/api/v1/carts", R"({"customer_id":"alice"})"), 401, "login_required");
    check_error(as(c, token_for("bob"),
                   json_request("POST", "/api/v1/carts", R"({"customer_id":"alice"})")),
                403, "forbidden");
    const auto same = as(c, token_for("alice"),
                         json_request("POST", "/api/v1/carts", R"({"customer_id":"alice"})"));
    REQUIRE_MESSAGE(same.status == 201, describe(same));
    // Anonymous carts still work.
    const auto anon = c.post("/api/v1/carts", "{}");
    REQUIRE_MESSAGE(anon.status == 201, describe(anon));
    CHECK(str_of(parse_json(anon.body), "customer_id").empty());
  }

  TEST_CASE("a per-customer limit needs a verified customer and counts all their carts") {
    auto [ps, node, a] = paying_store{{}, customers_flags()};
    auto& c = a.store();
    product_spec p;
    p.sku = "cu-lim";
    p.name = "one per customer";
    p.price_cents = 50000;
    p.per_customer_limit = 2;
    a.put_product(p);
    a.set_stock("cu-lim", 100);
    const auto anon = a.create_cart();
    check_error(a.put_item(anon, "cu-lim", 1), 401, "login_required");
    check_stock(a.stock("cu-lim"), 100, 0, 0);

    const auto alice = token_for("alice");
    std::vector<std::string> carts;
    for (int i = 0; i < 3; ++i) {
      auto r = as(c, alice, json_request("POST", "/api/v1/carts", "{}"));
      REQUIRE(r.status == 201);
      carts.push_back(str_of(parse_json(r.body), "cart_id"));
    }
    auto put = [&](const std::string& cart, int qty) {
      return as(c, alice,
                json_request("PUT", "/api/v1/carts/" + cart + "/items/cu-lim",
                             R"({"qty":)" + std::to_string(qty) + "}"));
    };
    CHECK(put(carts[0], 1).status == 200);
    CHECK(put(carts[1], 1).status == 200);
    check_error(put(carts[2], 1), 409, "limit_exceeded"); // a new cart is not a new customer
    check_stock(a.stock("cu-lim"), 100, 2, 0);
    // Another customer has a limit of their own.
    const auto bob = token_for("bob");
    auto rb = as(c, bob, json_request("POST", "/api/v1/carts", "{}"));
    REQUIRE(rb.status == 201);
    CHECK(as(c, bob,
             json_request(
                 "PUT", "/api/v1/carts/" + str_of(parse_json(rb.body), "cart_id") + "/items/cu-lim",
                 R"({"qty":2})"))
              .status == 200);
  }

  TEST_CASE("forged, expired and foreign tokens are 401 unauthorized") {
    auto [ps, node, a] = paying_store{{}, customers_flags()};
    auto& c = a.store();
    const auto good = token_for("alice");
    auto made = as(c, good, json_request("POST", "/api/v1/carts", "{}"));
    REQUIRE(made.status == 201);
    const auto cart = str_of(parse_json(made.body), "cart_id");

    const auto dot1 = good.find('.');
    const auto dot2 = good.find('.', dot1 + 1);
    const auto header = good.substr(0, dot1);
    const auto signature = good.substr(dot2 + 1);
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    const auto claims =
        R"({"sub":"mallory","iss":")" + issuer + R"(","exp":)" + std::to_string(now_s + 3600) + "}";
    const std::vector<std::pair<std::string, std::string>> forged = {
        {"signed with another key",
         token_for("alice", 0s, "another-secret-0123456789-abcdefghijkl")},
        {"expired", token_for("alice", 3h)},
        {"wrong issuer", token_for("alice", 0s, secret, "https://evil.example")},
        {"alg none",
         test::base64url(R"({"alg":"none","typ":"JWT"})") + "." + test::base64url(claims) + "."},
        {"changed payload", header + "." + test::base64url(claims) + "." + signature},
        {"garbage", "not-a-token"},
    };
    for (const auto& [what, token] : forged) {
      CAPTURE(what);
      check_error(as(c, token, json_request("POST", "/api/v1/carts", "{}")), 401, "unauthorized");
      check_error(as(c, token, request{"GET", "/api/v1/carts/" + cart, {}, {}}), 401,
                  "unauthorized");
    }
    check_error(
        c.send(request{"GET", "/api/v1/carts/" + cart, {}, {{"Authorization", "Basic eDp5"}}}), 401,
        "unauthorized");
    // The real one still works.
    CHECK(as(c, good, request{"GET", "/api/v1/carts/" + cart, {}, {}}).status == 200);
  }

  TEST_CASE("a public key file that is not one stops the node at start") {
    node_config cfg;
    cfg.extra = {"--auth.jwt_public_key=/etc/hostname"};
    const auto failure = start_failure(cfg);
    CHECK(failure.has_value());
    const auto log = failure.value_or("");
    CHECK_MESSAGE(log.find("auth.jwt_public_key") != std::string::npos, log);
  }

} // TEST_SUITE

} // namespace surge::itest
