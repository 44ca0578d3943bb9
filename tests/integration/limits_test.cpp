// Per-address limits on storefront writes, end to end (API.md "Customers, limits and request
// hygiene": limits.ip_rate / limits.ip_burst, http.trusted_proxies, 429 rate_limited).
//
// Time only ever helps a client here (buckets refill), so every assertion is one that waiting
// cannot break: a fresh bucket's burst always passes; "refused" is checked by writing until a
// refusal comes (bounded), and where one refusal must follow another at once, the pair is
// retried a few times in case a token came back in between.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

using headers_t = std::vector<std::pair<std::string, std::string>>;

headers_t from(const std::string& client) {
  return {{"X-Forwarded-For", client}};
}

/// POST /api/v1/carts (a storefront write) with `headers`.
response create_cart(http_client& c, const headers_t& headers = {}) {
  auto req = json_request("POST", "/api/v1/carts", "{}");
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  return c.send(req);
}

/// CHECKs that `r` is API.md's 429: code rate_limited and a Retry-After of whole seconds >= 1.
void check_limited(const response& r) {
  check_error(r, 429, "rate_limited");
  const std::string retry = r.header("retry-after");
  INFO("Retry-After: '" << retry << "'");
  REQUIRE_FALSE(retry.empty());
  CHECK(retry.find_first_not_of("0123456789") == std::string::npos);
  CHECK(std::atoi(retry.c_str()) >= 1);
}

struct exhausted {
  int allowed = 0;  ///< writes let through before the first 429
  response refused; ///< the first 429 (status 0 when none came within the bound)
};

/// Sends `write` until it is answered 429 (at most `cap` times).
template <class Write>
exhausted exhaust(Write write, int cap = 60) {
  exhausted out;
  for (int i = 0; i < cap; ++i) {
    auto r = write();
    if (r.status == 429) {
      out.refused = std::move(r);
      return out;
    }
    // Let through: the route answers (e.g. 404 for a DELETE of a line that is not there).
    REQUIRE_MESSAGE((r.status != 0 && r.status < 500), "write " << i << ": " << describe(r));
    ++out.allowed;
  }
  return out;
}

/// True when, within a few tries, `second()` is refused right after `exhaust(first)`: the two
/// share a bucket. (Retried only because a token may come back between the two.)
template <class First, class Second>
bool share_a_bucket(First first, Second second) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    const auto e = exhaust(first);
    REQUIRE(e.refused.status == 429);
    const auto r = second(attempt);
    if (r.status == 429) {
      check_limited(r);
      return true;
    }
    REQUIRE_MESSAGE((r.status != 0 && r.status < 500), describe(r));
  }
  return false;
}

} // namespace

TEST_SUITE("limits") {

  TEST_CASE("the burst passes, then 429 with Retry-After; reads and admin are not limited") {
    node_process node{
        node_config{.extra = {"--limits.ip_rate=1", "--limits.ip_burst=3"}, .limits = true}};
    api a{node};
    a.add_product({.sku = "lim-1", .name = "Limited", .price_cents = 100}, 1000);
    http_client store{node.http_port()};

    // A fresh bucket: the burst of 3 passes, then a write is refused (no X-Forwarded-For: the
    // client is the peer, 127.0.0.1).
    auto e = exhaust([&] { return create_cart(store); });
    CHECK(e.allowed >= 3);
    REQUIRE(e.refused.status == 429);
    check_limited(e.refused);

    // PUT and DELETE are writes too (on a cart made before, through another bucket).
    const std::string cart =
        str_of(parse_json(create_cart(store, from("198.18.7.7")).body), "cart_id");
    const std::string item = "/api/v1/carts/" + cart + "/items/lim-1";
    e = exhaust([&] { return store.put(item, R"({"qty":1})"); });
    REQUIRE(e.refused.status == 429);
    check_limited(e.refused);
    e = exhaust([&] { return store.del(item); });
    REQUIRE(e.refused.status == 429);
    check_limited(e.refused);

    // Reads are never limited, however many.
    for (int i = 0; i < 30; ++i) {
      for (const std::string& target :
           {std::string{"/api/v1/products/lim-1"}, std::string{"/p/lim-1"}, std::string{"/healthz"},
            "/api/v1/carts/" + cart}) {
        const auto r = store.get(target);
        CHECK_MESSAGE(r.status == 200, target << ": " << describe(r));
      }
    }
    // Nor is the admin port.
    for (int i = 0; i < 20; ++i) {
      const auto r = a.admin().post("/admin/v1/products/lim-1/stock", R"({"add":1})");
      CHECK_MESSAGE(r.status == 200, describe(r));
    }
    CHECK(a.metric("surge_http_rate_limited_total") >= 3);

    // A token comes back (1 per second): poll, bounded; refusals take no token.
    e = exhaust([&] { return create_cart(store); });
    REQUIRE(e.refused.status == 429);
    bool back = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
    while (!back && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{200});
      const auto r = create_cart(store);
      REQUIRE_MESSAGE((r.status == 201 || r.status == 429), describe(r));
      back = r.status == 201;
    }
    CHECK(back);
  }

  TEST_CASE("X-Forwarded-For from a trusted peer gives each client its own bucket") {
    // http.trusted_proxies keeps its default (127.0.0.1/32,::1/128): the test is the proxy.
    node_process node{
        node_config{.extra = {"--limits.ip_rate=1", "--limits.ip_burst=2"}, .limits = true}};
    http_client store{node.http_port()};

    const auto e = exhaust([&] { return create_cart(store, from("198.18.0.1")); });
    CHECK(e.allowed >= 2);
    REQUIRE(e.refused.status == 429);
    check_limited(e.refused);

    // Other clients behind the same proxy have full buckets of their own.
    for (const std::string other : {"198.18.0.2", "2001:db8::2"}) {
      for (int i = 0; i < 2; ++i) {
        const auto r = create_cart(store, from(other));
        CHECK_MESSAGE(r.status == 201, other << ": " << describe(r));
      }
    }
    // So does the proxy itself (no X-Forwarded-For).
    CHECK(create_cart(store).status == 201);

    // Repeated X-Forwarded-For lines read as one list, left to right.
    CHECK(share_a_bucket(
        [&] { return create_cart(store, from("198.18.0.3")); },
        [&](int attempt) {
          const auto left = "198.18.9." + std::to_string(attempt + 1);
          return create_cart(store, {{"X-Forwarded-For", left}, {"X-Forwarded-For", "198.18.0.3"}});
        }));
    // What a client writes to the left of the address the proxy saw does not change its bucket.
    CHECK(share_a_bucket([&] { return create_cart(store, from("198.18.0.4")); },
                         [&](int attempt) {
                           const auto spoof = "203.0.113." + std::to_string(attempt + 1);
                           return create_cart(store, from(spoof + ", 198.18.0.4"));
                         }));
  }

  TEST_CASE("with trusted proxies that exclude the peer, X-Forwarded-For is ignored") {
    for (const std::string proxies : {"10.0.0.0/8,fd00::/8", ""}) {
      CAPTURE(proxies);
      node_process node{node_config{.extra = {"--limits.ip_rate=1", "--limits.ip_burst=2",
                                              "--http.trusted_proxies=" + proxies},
                                    .limits = true}};
      http_client store{node.http_port()};
      // Every request is 127.0.0.1's, whatever it claims: one bucket.
      CHECK(share_a_bucket([&] { return create_cart(store, from("198.18.0.1")); },
                           [&](int attempt) {
                             return create_cart(store,
                                                from("198.18.1." + std::to_string(attempt + 1)));
                           }));
    }
  }

  TEST_CASE("an invalid http.trusted_proxies stops start-up, naming the setting") {
    std::string what;
    try {
      node_process node{node_config{.extra = {"--http.trusted_proxies=127.0.0.1/32,10.0.0.0/33"},
                                    .limits = true}};
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK_MESSAGE(what.find("http.trusted_proxies") != std::string::npos, what);
    CHECK_MESSAGE(what.find("10.0.0.0/33") != std::string::npos, what);
  }

} // TEST_SUITE

} // namespace surge::itest
