// Bad input of every kind gets its status and API.md's error shape, changes nothing, and leaves
// the node serving.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

struct bad_case {
  std::string name;
  bool admin = false; ///< the admin port (else the storefront)
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int status = 400;
  std::string code; ///< empty: any code (API.md names none for this status)
};

std::string padded_put_body(std::size_t total) {
  // {"qty":1,"pad":"aaa..."} of exactly `total` bytes.
  const std::string head = R"({"qty":1,"pad":")";
  const std::string tail = R"("})";
  return head + std::string(total - head.size() - tail.size(), 'a') + tail;
}

std::string nested(std::size_t depth) {
  return R"({"qty":1,"x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

/// What a raw connection saw: every byte the server sent until it closed (or `patience` ran out).
struct raw_session {
  std::string received;
  bool closed = false; ///< the server closed the connection (end of stream or reset)
};

/// Connects to 127.0.0.1:`port`, writes `bytes` and keeps the connection open without sending
/// more, reading until the server closes it; bounded by `patience` (every read times out).
raw_session send_and_wait(uint16_t port, const std::string& bytes,
                          std::chrono::milliseconds patience) {
  raw_session out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(patience.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((patience.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.received.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    out.closed = n == 0 || errno == ECONNRESET;
    break; // closed, reset, or the read timed out
  }
  ::close(fd);
  return out;
}

} // namespace

TEST_SUITE("bad_input") {

  TEST_CASE("a request that does not arrive in time is answered 408 timeout, then closed") {
    node_process node{node_config{.extra = {"--http.request_timeout=1s"}}};
    const std::string cut_short[] = {
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        "POST /api/v1/carts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 20\r\n\r\n{\"customer_id\"",
    };
    for (const auto& bytes : cut_short) {
      CAPTURE(bytes);
      // Far longer than the node's 1 s; only a node that never answers makes this wait it out.
      const auto s = send_and_wait(node.http_port(), bytes, std::chrono::seconds{20});
      CHECK(s.closed);
      REQUIRE_MESSAGE(s.received.rfind("HTTP/1.1 408 ", 0) == 0, "received: " << s.received);
      const auto head_end = s.received.find("\r\n\r\n");
      REQUIRE(head_end != std::string::npos);
      const std::string head = s.received.substr(0, head_end);
      CHECK(head.find("Connection: close") != std::string::npos);
      response r;
      r.status = 408;
      r.body = s.received.substr(head_end + 4);
      check_error(r, 408, "timeout");
    }
    // The node still serves.
    http_client c{node.http_port()};
    CHECK(c.get("/healthz").status == 200);
  }

  TEST_CASE("bad requests get their status and error shape; the node keeps serving") {
    const std::string token = "s3cret-token";
    node_process node{node_config{.admin_token = token}};
    api a{node};
    a.add_product({.sku = "bi-1", .name = "Bad Input", .price_cents = 250}, 10);
    const auto cart = a.create_cart("bob");
    const auto holder = a.create_cart();
    REQUIRE(a.put_item(holder, "bi-1", 3).status == 200);
    const auto cart_before = json::serialize(a.cart(cart));
    const auto stock_before = json::serialize(a.stock("bi-1"));

    const std::string item = "/api/v1/carts/" + cart + "/items/bi-1";
    const std::string stock = "/admin/v1/products/bi-1/stock";
    const std::string auth = "Bearer " + token;
    auto put = [&](std::string name, std::string body, int status = 400,
                   std::string code = "bad_request") {
      return bad_case{std::move(name), false, "PUT",  item,
                      std::move(body), {},    status, std::move(code)};
    };
    auto adm = [&](std::string name, std::string method, std::string target, std::string body,
                   int status, std::string code, bool with_token = true) {
      bad_case c{
          std::move(name), true, std::move(method), std::move(target), std::move(body), {}, status,
          std::move(code)};
      if (c.method == "POST" || c.method == "PUT") {
        c.headers.emplace_back("Content-Type", "application/json"); // else 415 before the body
      }
      if (with_token) {
        c.headers.emplace_back("Authorization", auth);
      }
      return c;
    };
    auto get = [&](std::string name, std::string target, int status, std::string code) {
      return bad_case{std::move(name), false,          "GET", std::move(target), {}, {},
                      status,          std::move(code)};
    };

    std::vector<bad_case> table{
        // The PUT body: JSON syntax.
        put("malformed JSON", R"({"qty":)"),
        put("not JSON", "qty=1"),
        put("empty body", ""),
        put("trailing garbage", R"({"qty":1} x)"),
        put("trailing comma", R"({"qty":1,})"),
        put("single quotes", R"({'qty':1})"),
        put("duplicate key", R"({"qty":1,"qty":2})"),
        put("array body", R"([{"qty":1}])"),
        put("string body", R"("qty")"),
        put("nesting too deep", nested(64)),
        put("invalid UTF-8 in a string", "{\"qty\":1,\"note\":\"\xff\xfe\"}"),
        put("invalid UTF-8 in a key", "{\"q\xc3\x28\":1}"),
        put("overlong UTF-8", "{\"qty\":1,\"note\":\"\xc0\xaf\"}"),
        put("lone surrogate escape", R"({"qty":1,"note":"\ud800"})"),
        // The PUT body: types and ranges of qty.
        put("qty missing", "{}"),
        put("qty string", R"({"qty":"1"})"),
        put("qty fraction", R"({"qty":1.5})"),
        put("qty true", R"({"qty":true})"),
        put("qty null", R"({"qty":null})"),
        put("qty array", R"({"qty":[1]})"),
        put("qty object", R"({"qty":{"n":1}})"),
        put("qty negative", R"({"qty":-1})"),
        put("qty 1e30", R"({"qty":1e30})"),
        put("qty beyond int64", R"({"qty":99999999999999999999})"),
        put("qty beyond int64, negative", R"({"qty":-99999999999999999999})"),
        put("qty 10001", R"({"qty":10001})"),
        put("qty int64 max", R"({"qty":9223372036854775807})"),
        put("body over 64 KiB", padded_put_body(64 * 1024 + 1), 413, "too_large"),
        put("body of 300 KiB", padded_put_body(300 * 1024), 413, "too_large"),
        // Unknown things.
        bad_case{"unknown SKU",
                 false,
                 "PUT",
                 "/api/v1/carts/" + cart + "/items/no-such-sku",
                 R"({"qty":1})",
                 {},
                 404,
                 "not_found"},
        bad_case{"unknown cart",
                 false,
                 "PUT",
                 "/api/v1/carts/c_ffffffffffffffff/items/bi-1",
                 R"({"qty":1})",
                 {},
                 404,
                 "not_found"},
        bad_case{"cart id with a space",
                 false,
                 "PUT",
                 "/api/v1/carts/c%20x/items/bi-1",
                 R"({"qty":1})",
                 {},
                 404,
                 "not_found"},
        bad_case{"empty SKU segment",
                 false,
                 "PUT",
                 "/api/v1/carts/" + cart + "/items/",
                 R"({"qty":1})",
                 {},
                 404,
                 "not_found"},
        bad_case{"customer_id a number",
                 false,
                 "POST",
                 "/api/v1/carts",
                 R"({"customer_id":5})",
                 {},
                 400,
                 "bad_request"},
        bad_case{"customer_id with a space",
                 false,
                 "POST",
                 "/api/v1/carts",
                 R"({"customer_id":"a b"})",
                 {},
                 400,
                 "bad_request"},
        bad_case{"cart body not an object",
                 false,
                 "POST",
                 "/api/v1/carts",
                 "[]",
                 {},
                 400,
                 "bad_request"},
        bad_case{
            "cart body malformed", false, "POST", "/api/v1/carts", "{", {}, 400, "bad_request"},
        // Odd paths.
        get("dot-dot segment", "/api/v1/carts/../x", 404, "not_found"),
        get("dot-dot to a real cart", "/api/v1/products/../carts/" + cart, 404, "not_found"),
        get("double slash", "//", 404, "not_found"),
        get("double slash inside", "/api/v1//carts/" + cart, 404, "not_found"),
        get("bad percent escape", "/api/v1/carts/%zz", 400, "bad_request"),
        get("truncated percent escape", "/api/v1/carts/%4", 400, "bad_request"),
        get("encoded NUL", "/api/v1/carts/%00", 400, "bad_request"),
        get("encoded invalid UTF-8", "/api/v1/products/%ff", 400, "bad_request"),
        get("encoded slash stays in its segment", "/api/v1/carts/a%2Fb", 404, "not_found"),
        get("no such resource", "/api/v1/nothing", 404, "not_found"),
        get("trailing slash", "/api/v1/products/bi-1/", 404, "not_found"),
        get("very long URL", "/api/v1/products/" + std::string(3000, 'a'), 414, "too_large"),
        get("URL beyond the header limit", "/api/v1/products/" + std::string(20000, 'a'), 414,
            "too_large"),
        // Wrong methods.
        bad_case{"PATCH a cart line", false, "PATCH", item, R"({"qty":1})", {}, 405, ""},
        bad_case{"POST the product list", false, "POST", "/api/v1/products", "{}", {}, 405, ""},
        bad_case{"DELETE a cart", false, "DELETE", "/api/v1/carts/" + cart, "", {}, 405, ""},
        // Headers.
        bad_case{"huge header",
                 false,
                 "GET",
                 "/api/v1/products/bi-1",
                 "",
                 {{"X-Big", std::string(16 * 1024, 'h')}},
                 431,
                 "too_large"},
        bad_case{"too many headers", false, "GET", "/api/v1/products/bi-1", "",
                 [] {
                   std::vector<std::pair<std::string, std::string>> h;
                   for (int i = 0; i < 600; ++i) {
                     h.emplace_back("X-H" + std::to_string(i), "value-value-value");
                   }
                   return h;
                 }(),
                 431, "too_large"},
        // Admin: token.
        adm("admin without token", "GET", stock, "", 401, "", false),
        adm("admin product without token", "PUT", "/admin/v1/products/bi-1",
            R"({"name":"X","price_cents":1})", 401, "", false),
        adm("admin stock change without token", "POST", stock, R"({"set":100})", 401, "", false),
        adm("metrics without token", "GET", "/metrics", "", 401, "", false),
        [&] {
          auto c = adm("admin with a wrong token", "POST", stock, R"({"set":100})", 401, "", false);
          c.headers.emplace_back("Authorization", "Bearer wrong");
          return c;
        }(),
        [&] {
          auto c = adm("admin with a token prefix", "GET", stock, "", 401, "", false);
          c.headers.emplace_back("Authorization", "Bearer " + token.substr(0, token.size() - 1));
          return c;
        }(),
        [&] {
          auto c = adm("admin with a longer token", "GET", stock, "", 401, "", false);
          c.headers.emplace_back("Authorization", auth + "x");
          return c;
        }(),
        [&] {
          auto c = adm("admin with Basic auth", "GET", stock, "", 401, "", false);
          c.headers.emplace_back("Authorization", "Basic " + token);
          return c;
        }(),
        // Admin: stock changes.
        adm("stock set and add", "POST", stock, R"({"set":1,"add":1})", 400, "bad_request"),
        adm("stock neither set nor add", "POST", stock, "{}", 400, "bad_request"),
        adm("stock set negative", "POST", stock, R"({"set":-1})", 400, "bad_request"),
        adm("stock set string", "POST", stock, R"({"set":"5"})", 400, "bad_request"),
        adm("stock set fraction", "POST", stock, R"({"set":1.5})", 400, "bad_request"),
        adm("stock set 1e30", "POST", stock, R"({"set":1e30})", 400, "bad_request"),
        adm("stock add to below zero", "POST", stock, R"({"add":-20})", 400, "bad_request"),
        // The bound on on_hand (10^12) holds for add as for set.
        adm("stock set past the bound", "POST", stock, R"({"set":1000000000001})", 400,
            "bad_request"),
        adm("stock add past the bound", "POST", stock, R"({"add":999999999991})", 400,
            "bad_request"),
        adm("stock malformed", "POST", stock, R"({"set":)", 400, "bad_request"),
        adm("stock set below held", "POST", stock, R"({"set":2})", 409, "conflict"),
        adm("stock add to below held", "POST", stock, R"({"add":-8})", 409, "conflict"),
        adm("stock of an unknown SKU", "GET", "/admin/v1/products/nope/stock", "", 404,
            "not_found"),
        adm("stock change of an unknown SKU", "POST", "/admin/v1/products/nope/stock",
            R"({"set":5})", 404, "not_found"),
        // Admin: products.
        adm("product without name", "PUT", "/admin/v1/products/bi-2", R"({"price_cents":1})", 400,
            "bad_request"),
        adm("product with empty name", "PUT", "/admin/v1/products/bi-2",
            R"({"name":"","price_cents":1})", 400, "bad_request"),
        adm("product with negative price", "PUT", "/admin/v1/products/bi-2",
            R"({"name":"X","price_cents":-1})", 400, "bad_request"),
        adm("product with price as string", "PUT", "/admin/v1/products/bi-2",
            R"({"name":"X","price_cents":"1"})", 400, "bad_request"),
        adm("product with lower-case currency", "PUT", "/admin/v1/products/bi-2",
            R"({"name":"X","price_cents":1,"currency":"usd"})", 400, "bad_request"),
        adm("product with a 4-letter currency", "PUT", "/admin/v1/products/bi-2",
            R"({"name":"X","price_cents":1,"currency":"USDX"})", 400, "bad_request"),
        adm("product with negative limit", "PUT", "/admin/v1/products/bi-2",
            R"({"name":"X","price_cents":1,"per_customer_limit":-1})", 400, "bad_request"),
        adm("product SKU with a space", "PUT", "/admin/v1/products/bi%202",
            R"({"name":"X","price_cents":1})", 400, "bad_request"),
        // SKUs that are dot segments (dots alone).
        adm("product SKU .", "PUT", "/admin/v1/products/.", R"({"name":"X","price_cents":1})", 400,
            "bad_request"),
        adm("product SKU ..", "PUT", "/admin/v1/products/..", R"({"name":"X","price_cents":1})",
            400, "bad_request"),
        adm("product SKU %2e", "PUT", "/admin/v1/products/%2e", R"({"name":"X","price_cents":1})",
            400, "bad_request"),
        adm("product SKU %2E%2e", "PUT", "/admin/v1/products/%2E%2e",
            R"({"name":"X","price_cents":1})", 400, "bad_request"),
        adm("product SKU ...", "PUT", "/admin/v1/products/...", R"({"name":"X","price_cents":1})",
            400, "bad_request"),
        adm("stock of SKU ..", "POST", "/admin/v1/products/../stock", R"({"set":5})", 404,
            "not_found"),
        adm("admin PATCH", "PATCH", stock, R"({"set":1})", 405, ""),
    };

    int failures = 0;
    for (const auto& c : table) {
      // A connection per case: an error may close it.
      http_client client{c.admin ? node.admin_port() : node.http_port()};
      const auto r = client.send(request{c.method, c.target, c.body, c.headers});
      const auto what = error_mismatch(r, c.status, c.code);
      if (!what.empty()) {
        ++failures;
        FAIL_CHECK(c.name << ": " << c.method << " " << c.target.substr(0, 80) << " -> " << what);
      }
      if (c.status == 405) {
        CHECK_MESSAGE(!r.header("allow").empty(), c.name << ": 405 without Allow");
      }
      if (c.status == 401) {
        CHECK_MESSAGE(r.header("www-authenticate").find("Bearer") == 0,
                      c.name << ": 401 without WWW-Authenticate: Bearer");
      }
    }
    CHECK(failures == 0);

    // Storefront paths with those SKUs: nothing was created, so nothing is there.
    for (const std::string sku : {".", "..", "%2e", "..."}) {
      for (const auto& target : {"/api/v1/products/" + sku, "/p/" + sku}) {
        const auto r = a.store().get(target);
        CHECK_MESSAGE(error_mismatch(r, 404, "not_found").empty(), target << ": " << describe(r));
      }
      const auto r = a.store().put("/api/v1/carts/" + cart + "/items/" + sku, R"({"qty":1})");
      CHECK_MESSAGE(error_mismatch(r, 404, "not_found").empty(), sku << ": " << describe(r));
    }
    // HTTP/1.0 needs no Host.
    {
      const auto r = raw_exchange(node.http_port(), "GET /healthz HTTP/1.0\r\n\r\n");
      CHECK_MESSAGE(r.status == 200, "HTTP/1.0 without Host: " << describe(r));
    }

    // Requests a well-behaved client does not send.
    const std::string host = "Host: 127.0.0.1\r\n";
    const std::vector<std::pair<std::string, std::string>> raw{
        {"garbage request line", "HELLO\r\n\r\n"},
        {"bad Content-Length",
         "PUT " + item + " HTTP/1.1\r\n" + host + "Content-Length: abc\r\n\r\n{\"qty\":1}"},
        {"space in header name", "GET /healthz HTTP/1.1\r\n" + host + "Bad Header: x\r\n\r\n"},
        {"bad chunk size", "PUT " + item + " HTTP/1.1\r\n" + host +
                               "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
        {"control character in the target", "GET /api/v1/\x01 HTTP/1.1\r\n" + host + "\r\n"},
        // HTTP hygiene (RFC 9112): exactly one Host in HTTP/1.1; no transfer coding but chunked.
        {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n"},
        {"two Host lines", "GET /healthz HTTP/1.1\r\n" + host + host + "\r\n"},
        {"Transfer-Encoding gzip",
         "GET /healthz HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n"},
        {"Transfer-Encoding identity",
         "GET /healthz HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n"},
        {"Transfer-Encoding xchunked",
         "GET /healthz HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding chunked, chunked",
         "GET /healthz HTTP/1.1\r\n" + host +
             "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding gzip, chunked",
         "GET /healthz HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding on two lines", "GET /healthz HTTP/1.1\r\n" + host +
                                               "Transfer-Encoding: chunked\r\n"
                                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
    };
    for (const auto& [name, bytes] : raw) {
      const auto r = raw_exchange(node.http_port(), bytes);
      const auto what = error_mismatch(r, 400, "bad_request");
      CHECK_MESSAGE(what.empty(), name << ": " << what);
    }

    // A chunked body is read like any other, and held to the same limit.
    {
      http_client chunked{node.http_port()};
      auto req = json_request("PUT", item, R"({"qty":1})");
      req.headers.emplace_back("Transfer-Encoding", "chunked");
      auto r = chunked.send(req);
      CHECK_MESSAGE(r.status == 200, "chunked PUT: " << describe(r));
      req.body = padded_put_body(200 * 1024);
      r = chunked.send(req);
      check_error(r, 413, "too_large");
      r = a.put_item(cart, "bi-1", 0);
      CHECK_MESSAGE(r.status == 200, describe(r));
    }

    // Setting qty 0 for a line the cart does not have: the line is (still) absent, nothing held.
    auto r = a.put_item(cart, "bi-1", 0);
    CHECK_MESSAGE(r.status == 200, describe(r));

    // A body of exactly the limit is not too large.
    r = a.store().send(json_request("PUT", item, padded_put_body(64 * 1024)));
    CHECK_MESSAGE(r.status == 200, "64 KiB body: " << describe(r));
    r = a.put_item(cart, "bi-1", 0);
    CHECK_MESSAGE(r.status == 200, describe(r));

    // Nothing changed, and the node still serves.
    CHECK(json::serialize(a.cart(cart)) == cart_before);
    CHECK(json::serialize(a.stock("bi-1")) == stock_before);
    check_stock(a.stock("bi-1"), 10, 3, 0);
    CHECK(a.admin().send(request{"GET", "/admin/v1/products/bi-2/stock", {}, {}}).status == 404);

    // Exactly held + sold is allowed.
    check_stock(a.set_stock("bi-1", 3), 3, 3, 0);
    check_error(a.put_item(cart, "bi-1", 1), 409, "sold_out");
    check_stock(a.set_stock("bi-1", 10), 10, 3, 0);

    http_client fresh{node.http_port()};
    auto health = fresh.get("/healthz");
    CHECK(health.status == 200);
    CHECK(json::serialize(parse_json(health.body)) == R"({"status":"ok"})");
    r = fresh.put(item, R"({"qty":2})");
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    CHECK(int_of(line_at(parse_json(r.body), "bi-1"), "qty") == 2);
    check_stock(a.stock("bi-1"), 10, 5, 0);
    CHECK(a.admin().get("/healthz").status == 200);
  }

} // TEST_SUITE

} // namespace surge::itest
