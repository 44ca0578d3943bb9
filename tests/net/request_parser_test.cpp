#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "listener_options.hpp"
#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"

using namespace surge::net;

TEST_CASE("decode_target") {
  struct row {
    const char* target;
    bool ok;
    const char* path;
    std::vector<std::string> segments;
  };
  const row rows[] = {
      {"/", true, "/", {}},
      {"/healthz", true, "/healthz", {"healthz"}},
      {"/api/v1/carts/", true, "/api/v1/carts/", {"api", "v1", "carts", ""}},
      {"/api/v1/products/a%20b", true, "/api/v1/products/a b", {"api", "v1", "products", "a b"}},
      {"/p/a%2Fb", true, "/p/a/b", {"p", "a/b"}},
      {"/p/a+b", true, "/p/a+b", {"p", "a+b"}},
      {"/p/caf%C3%A9", true, "/p/caf\xC3\xA9", {"p", "caf\xC3\xA9"}},
      {"/p/%e2%82%ac", true, "/p/\xE2\x82\xAC", {"p", "\xE2\x82\xAC"}},
      {"//x", true, "//x", {"", "x"}},
      {"", false, "", {}},
      {"healthz", false, "", {}},
      {"*", false, "", {}},
      {"http://host/x", false, "", {}},
      {"/p/%", false, "", {}},
      {"/p/%4", false, "", {}},
      {"/p/%zz", false, "", {}},
      {"/p/%00", false, "", {}},
      {"/p/%C0%AF", false, "", {}},    // overlong
      {"/p/%ED%A0%80", false, "", {}}, // surrogate
      {"/p/%FF", false, "", {}},
      {"/p?q=%", false, "", {}},
      {"/p?q=%00", false, "", {}},
      {"/p?%FF=1", false, "", {}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.target);
    http_request req;
    REQUIRE(decode_target(r.target, req) == r.ok);
    if (r.ok) {
      CHECK(req.path == r.path);
      CHECK(req.segments == r.segments);
    }
  }

  http_request req;
  REQUIRE(decode_target("/api/v1/products?q=red+shoes&category=a%26b&in_stock&&limit=10&q=%2B1&=e",
                        req));
  CHECK(req.path == "/api/v1/products");
  CHECK(req.query.count("q") == 2);
  CHECK(req.param("q") == "red shoes");
  CHECK(req.param("category") == "a&b");
  CHECK(req.param("in_stock") == "");
  CHECK(req.param("limit") == "10");
  CHECK(req.param("") == "e");
  CHECK_FALSE(req.param("cursor").has_value());
  auto range = req.query.equal_range("q");
  std::vector<std::string> qs;
  for (auto it = range.first; it != range.second; ++it) {
    qs.push_back(it->second);
  }
  CHECK(qs == std::vector<std::string>{"red shoes", "+1"});
  REQUIRE(decode_target("/x?a=1=2", req));
  CHECK(req.param("a") == "1=2");
  REQUIRE(decode_target("/x?", req));
  CHECK(req.query.empty());
}

namespace {

http_response expect_error(std::string_view raw,
                           const server_options& opts = surge::test::listener()) {
  auto r = parse_request(raw, opts);
  if (auto* resp = std::get_if<http_response>(&r)) {
    return *resp;
  }
  FAIL_CHECK("expected an error response for ", std::string(raw.substr(0, 80)));
  return {};
}

http_request expect_request(std::string_view raw,
                            const server_options& opts = surge::test::listener()) {
  auto r = parse_request(raw, opts);
  if (auto* resp = std::get_if<http_response>(&r)) {
    FAIL_CHECK("unexpected ", resp->status, " ", resp->body);
    return {};
  }
  return std::get<http_request>(std::move(r));
}

std::string error_code_of(const http_response& r) {
  auto v = json::parse(r.body);
  REQUIRE(std::holds_alternative<json::value>(v));
  const auto* err = std::get<json::value>(v).find("error");
  REQUIRE(err != nullptr);
  REQUIRE(err->find("code") != nullptr);
  REQUIRE(err->find("message") != nullptr);
  return std::get<std::string>(err->find("code")->get());
}

std::string chunked(const std::vector<std::size_t>& sizes) {
  std::string out;
  for (auto n : sizes) {
    char hex[32];
    std::snprintf(hex, sizeof(hex), "%zx\r\n", n);
    out += hex;
    out += std::string(n, 'x');
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

} // namespace

TEST_CASE("parse_request: good requests") {
  auto req = expect_request("PUT /api/v1/carts/c1/items/sku%201?x=1 HTTP/1.1\r\n"
                            "Host: a\r\nContent-Type: application/json\r\n"
                            "X-Multi: a\r\nx-multi: b\r\nContent-Length: 9\r\n\r\n{\"qty\":2}");
  CHECK(req.method == "PUT");
  CHECK(req.path == "/api/v1/carts/c1/items/sku 1");
  CHECK(req.segments.size() == 6);
  CHECK(req.header("content-type") == "application/json");
  CHECK(req.header("Content-Type") == "application/json");
  CHECK(req.header("x-multi") == "a, b");
  CHECK_FALSE(req.header("idempotency-key").has_value());
  CHECK(req.param("x") == "1");
  CHECK(req.body == "{\"qty\":2}");
  CHECK(req.keep_alive);

  req = expect_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  CHECK_FALSE(req.keep_alive);
  req = expect_request("GET / HTTP/1.0\r\n\r\n");
  CHECK_FALSE(req.keep_alive);
  req = expect_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(req.keep_alive);

  // Chunked body within the limit.
  auto opts = surge::test::listener();
  opts.body_limit = 100;
  req = expect_request("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                           chunked({40, 60}),
                       opts);
  CHECK(req.body == std::string(100, 'x'));
  // Coding names are case-insensitive.
  req = expect_request("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n" +
                       chunked({3}));
  CHECK(req.body == "xxx");
  // HTTP/1.0 needs no Host; an empty Host is a Host (RFC 9112 3.2).
  req = expect_request("GET /old HTTP/1.0\r\n\r\n");
  CHECK(req.path == "/old");
  req = expect_request("GET / HTTP/1.1\r\nHost:\r\n\r\n");
  CHECK(req.path == "/");
}

TEST_CASE("parse_request: Host and Transfer-Encoding hygiene") {
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const std::pair<std::string, std::string> bad[] = {
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n"},
      {"HTTP/1.1 PUT without Host", "PUT /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"},
      {"two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"two Host lines in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"},
      {"gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" + body},
      {"identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n" + body},
      {"xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n" + body},
      {"chunked, chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" + body},
      {"gzip, chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + body},
      {"chunked on two lines", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n" +
                                   body},
      {"gzip then chunked on two lines", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
                                         "Transfer-Encoding: chunked\r\n\r\n" +
                                             body},
      {"empty Transfer-Encoding",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nContent-Length: 2\r\n\r\n{}"},
      {"chunked with Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                      "Content-Length: 16\r\n\r\n" +
                                          body},
      {"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + body},
  };
  for (const auto& [name, raw] : bad) {
    CAPTURE(name);
    auto r = expect_error(raw);
    CHECK(r.status == 400);
    CHECK(error_code_of(r) == "bad_request");
  }
}

TEST_CASE("parse_request: limits and malformed input") {
  auto opts = surge::test::listener();
  opts.body_limit = 100;
  opts.header_limit = 1024;
  opts.target_limit = 256;

  auto r =
      expect_error("POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n" + std::string(101, 'x'), opts);
  CHECK(r.status == 413);
  CHECK(error_code_of(r) == "too_large");
  // The declared length alone is enough: no need to send the body.
  r = expect_error("POST /x HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", opts);
  CHECK(r.status == 413);
  r = expect_error("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked({60, 60}),
                   opts);
  CHECK(r.status == 413);
  CHECK(error_code_of(r) == "too_large");

  r = expect_error("GET /x HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n", opts);
  CHECK(r.status == 431);
  CHECK(error_code_of(r) == "too_large");
  r = expect_error("GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", opts);
  CHECK(r.status == 414);
  CHECK(error_code_of(r) == "too_large");
  // Longer than the whole header limit: still 414, the URL is the problem.
  r = expect_error("GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n", opts);
  CHECK(r.status == 414);
  r = expect_error("GET /" + std::string(5000, 'a'), opts);
  CHECK(r.status == 414);

  const std::string bad[] = {
      "garbage",
      "\r\n\r\n",
      "GET\r\n\r\n",
      "GET / HTTP/9\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n",                   // incomplete header
      "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", // incomplete body
      "GET /%zz HTTP/1.1\r\n\r\n",
      "GET /a%00b HTTP/1.1\r\n\r\n",
      "GET * HTTP/1.1\r\n\r\n",
      std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26),
      "",
  };
  for (const auto& raw : bad) {
    CAPTURE(raw);
    r = expect_error(raw, opts);
    CHECK(r.status == 400);
    CHECK(error_code_of(r) == "bad_request");
  }
}

TEST_CASE("error_response shape") {
  auto r = error_response(409, "sold_out", "sku \"x\" is sold out\n");
  CHECK(r.status == 409);
  CHECK(r.content_type == "application/json");
  CHECK(r.body ==
        "{\"error\":{\"code\":\"sold_out\",\"message\":\"sku \\\"x\\\" is sold out\\n\"}}");
}
