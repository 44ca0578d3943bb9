// GET /console and GET /console/{file} on the admin router: the embedded page with the
// console's security headers, an asset with its content type and ETag (304 when asked with it),
// an unknown file 404 — and no admin token needed for any of them.

#include <future>
#include <memory>
#include <string>
#include <variant>

#include <doctest/doctest.h>

#include "listener_options.hpp"
#include "surge/net/bridge.hpp"
#include "surge/net/request_parser.hpp"

namespace net = surge::net;

namespace {

/// GET `path` with `headers` on `r`, answered at once (the console routes never wait).
net::http_response get_on(const net::router& r, const std::string& path,
                          const std::string& headers = "") {
  auto parsed = net::parse_request("GET " + path + " HTTP/1.1\r\nHost: shop\r\n" + headers + "\r\n",
                                   surge::test::listener());
  REQUIRE(std::holds_alternative<net::http_request>(parsed));
  std::promise<net::http_response> answer;
  r.dispatch(std::move(std::get<net::http_request>(parsed)),
             [&answer](net::http_response resp) { answer.set_value(std::move(resp)); });
  auto done = answer.get_future();
  REQUIRE(done.wait_for(std::chrono::seconds{5}) == std::future_status::ready);
  return done.get();
}

std::string header_of(const net::http_response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return "(none)";
}

void check_security_headers(const net::http_response& r) {
  CHECK(header_of(r, "Content-Security-Policy") ==
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
        "data:; connect-src 'self'; frame-ancestors 'none'");
  CHECK(header_of(r, "X-Content-Type-Options") == "nosniff");
  CHECK(header_of(r, "Referrer-Policy") == "no-referrer");
}

} // namespace

TEST_CASE("console: the page and its assets are served from the binary without a token") {
  auto env = std::make_shared<net::bridge_env>();
  env->admin_token = "t0ken"; // the API needs it; the console's files do not
  const auto admin = net::make_admin_router(env);

  auto page = get_on(admin, "/console");
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body.find("<title>Surge console</title>") != std::string::npos);
  CHECK(page.body.find("/console/app.js") != std::string::npos);
  CHECK(header_of(page, "Cache-Control") == "no-cache");
  check_security_headers(page);

  auto js = get_on(admin, "/console/app.js");
  CHECK(js.status == 200);
  CHECK(js.content_type == "text/javascript; charset=utf-8");
  CHECK(!js.body.empty());
  const auto etag = header_of(js, "ETag");
  CHECK(etag.size() == 18);
  CHECK(etag.front() == '"');
  check_security_headers(js);
  auto again = get_on(admin, "/console/app.js", "If-None-Match: W/\"x\", " + etag + "\r\n");
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(header_of(again, "ETag") == etag);

  CHECK(get_on(admin, "/console/console.css").content_type == "text/css; charset=utf-8");
  auto uplot = get_on(admin, "/console/uPlot.iife.min.js");
  CHECK(uplot.status == 200);
  CHECK(uplot.body.size() > 10000);
  CHECK(get_on(admin, "/console/index.html").body == page.body);

  auto missing = get_on(admin, "/console/nope.js");
  CHECK(missing.status == 404);
  CHECK(missing.body == R"({"error":{"code":"not_found","message":"no such console file"}})");
  CHECK(get_on(admin, "/console/..%2Fapp.js").status == 404);
  // The API beside it still needs the token.
  CHECK(get_on(admin, "/admin/v1/cluster").status == 401);
}
