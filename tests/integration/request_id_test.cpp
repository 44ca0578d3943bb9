// X-Request-Id and the access log on real nodes (issue 13): two members sharing one database;
// a request sent to n1 for an SKU that lives on n2 gets its id echoed, is written to n1's
// access log (log.access_file) with that id, and the SKU's log lines on n2 carry the same id
// (log.format=json: every line is parsed).
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "api.hpp"
#include "temp_path.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

/// The JSON objects among the lines of `path` (other lines, e.g. the harness's "==== start",
/// are skipped; a line that starts with '{' must parse).
std::vector<json::value> json_lines(const std::string& path) {
  std::vector<json::value> out;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() == '{') {
      out.push_back(parse_json(line));
    }
  }
  return out;
}

/// The string member `key` of `v`, or "" when it has none.
std::string text_of(const json::value& v, std::string_view key) {
  const auto* m = v.find(key);
  const auto* s = m != nullptr ? std::get_if<std::string>(&m->get()) : nullptr;
  return s != nullptr ? *s : std::string{};
}

/// The lines of `path` that are JSON objects with "request_id" equal to `rid` and, when
/// `logger` is given, that "logger".
std::vector<json::value> lines_with(const std::string& path, const std::string& rid,
                                    std::optional<std::string> logger = std::nullopt) {
  std::vector<json::value> out;
  for (auto& v : json_lines(path)) {
    if (text_of(v, "request_id") == rid && (!logger || text_of(v, "logger") == *logger)) {
      out.push_back(std::move(v));
    }
  }
  return out;
}

/// POST /admin/v1/products/{sku}/stock {"set":n} with X-Request-Id `rid`.
response set_stock_as(api& a, const std::string& sku, int64_t n, const std::string& rid) {
  auto req = json_request("POST", "/admin/v1/products/" + sku + "/stock",
                          "{\"set\":" + std::to_string(n) + "}");
  return a.admin().send(with_headers(std::move(req), "X-Request-Id", {rid}));
}

} // namespace

TEST_SUITE("request_id") {
  TEST_CASE("a request id crosses from the receiving node to the SKU's owner and its logs") {
    surge::test::temp_path access{"surge-access", ".log"};
    const std::vector<std::string> json_logs{"--log.format=json", "--log.level=debug"};
    node_config c1;
    c1.node_id = "n1";
    c1.extra = json_logs;
    c1.extra.push_back("--log.access_file=" + access.path());
    node_process n1{c1};
    node_config c2;
    c2.node_id = "n2";
    c2.cluster_with = &n1;
    c2.extra = json_logs; // access lines go to its own log stream
    node_process n2{c2};
    api a1{n1};

    // Stock changes through n1 until one lands on an SKU that n2 owns (the stock says who
    // answered); n2 takes shards over as it joins.
    std::string sku;
    std::string rid;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (int i = 0; sku.empty() && std::chrono::steady_clock::now() < deadline; ++i) {
      const auto candidate = "RID-" + std::to_string(i % 400);
      a1.put_product({.sku = candidate, .name = "rid", .price_cents = 100, .currency = "EUR"});
      const auto id = "it:rid-" + std::to_string(i) + "_A.b";
      auto r = set_stock_as(a1, candidate, 10 + i, id);
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      CHECK(r.header("x-request-id") == id); // echoed as sent
      if (str_of(parse_json(r.body), "owner_node") == "n2") {
        sku = candidate;
        rid = id;
      }
    }
    REQUIRE_MESSAGE(!sku.empty(), "no SKU owned by n2 in time");

    // n1's access log: one line for that request, the contract's fields.
    const auto mine = lines_with(access.path(), rid);
    REQUIRE(mine.size() == 1);
    const auto& line = mine.front();
    CHECK(keys_of(line) == std::vector<std::string>{"bytes", "client", "duration_ms", "method",
                                                    "node", "path", "request_id", "route", "status",
                                                    "time"}); // sorted
    CHECK(str_of(line, "method") == "POST");
    CHECK(str_of(line, "route") == "/admin/v1/products/{sku}/stock");
    CHECK(str_of(line, "path") == "/admin/v1/products/" + sku + "/stock");
    CHECK(int_of(line, "status") == 200);
    CHECK(str_of(line, "node") == "n1");
    CHECK(str_of(line, "client") == "127.0.0.1");
    CHECK(int_of(line, "bytes") > 0);
    CHECK(parse_rfc3339_ms(str_of(line, "time")).has_value());
    CHECK(member(line, "duration_ms").is_number());

    // n2: the SKU actor's line about the change carries the id; n1 wrote none of the SKU's.
    CHECK_MESSAGE(!lines_with(n2.log_path(), rid, "sku").empty(), n2.log_tail());
    CHECK(lines_with(n1.log_path(), rid, "sku").empty());

    // A cart item change through n1's storefront: the hold on n2 logs under its id.
    const auto cart = a1.create_cart();
    const std::string item_rid = "item-" + rid;
    auto put = a1.store().send(
        with_headers(json_request("PUT", "/api/v1/carts/" + cart + "/items/" + sku, "{\"qty\":1}"),
                     "X-Request-Id", {item_rid}));
    REQUIRE_MESSAGE(put.status == 200, describe(put));
    CHECK(put.header("x-request-id") == item_rid);
    if (str_of(a1.stock(sku), "owner_node") == "n2") { // not moved meanwhile
      CHECK_MESSAGE(!lines_with(n2.log_path(), item_rid, "sku").empty(), n2.log_tail());
    } else {
      MESSAGE("the SKU moved off n2 meanwhile: its hold's log line is not looked for");
    }

    // An id that breaks the rules is replaced by a new one (32 hex digits), also in the log.
    auto bad = a1.store().send(with_headers(request{"GET", "/api/v1/products/" + sku, {}, {}},
                                            "X-Request-Id", {"has space"}));
    REQUIRE(bad.status == 200);
    const auto made = bad.header("x-request-id");
    CHECK(made.size() == 32);
    CHECK(made.find_first_not_of("0123456789abcdef") == std::string::npos);
    const auto logged = lines_with(access.path(), made);
    REQUIRE(logged.size() == 1);
    CHECK(str_of(logged.front(), "route") == "/api/v1/products/{sku}");

    // Errors carry it too: a 404 from the router, and none sent: a new one.
    auto missing = a1.store().get("/no/such/thing");
    CHECK(missing.status == 404);
    CHECK(missing.header("x-request-id").size() == 32);
    const auto unmatched = lines_with(access.path(), missing.header("x-request-id"));
    REQUIRE(unmatched.size() == 1);
    CHECK(str_of(unmatched.front(), "route") == "unmatched");
    CHECK(int_of(unmatched.front(), "status") == 404);
  }

  TEST_CASE("an access file that cannot be written stops the start, naming the setting") {
    node_config c;
    c.extra = {"--log.access_file=/dev/null/access.log"};
    const auto failure = start_failure(c);
    REQUIRE(failure.has_value());
    CHECK(failure->find("log.access_file") != std::string::npos);
  }
}

} // namespace surge::itest
