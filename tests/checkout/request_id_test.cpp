// A checkout's request id on real processes (issue 13): two members paying through surge-paysim;
// a checkout sent to n1 whose order lives on n2 has the order actor's and the payment calls'
// log lines on n2 carry the X-Request-Id it was sent with (log.format=json, every line parsed).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "checkout_support.hpp"

namespace surge::itest {

namespace {

/// The loggers ("order", "payments", ...) of the JSON lines of `path` whose request_id is `rid`.
std::vector<std::string> loggers_with(const std::string& path, const std::string& rid) {
  std::vector<std::string> out;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() != '{') {
      continue;
    }
    const auto v = parse_json(line);
    const auto* id = v.find("request_id");
    const auto* text = id != nullptr ? std::get_if<std::string>(&id->get()) : nullptr;
    if (text != nullptr && *text == rid && v.find("logger") != nullptr) { // not an access line
      out.push_back(str_of(v, "logger"));
    }
  }
  return out;
}

bool has(const std::vector<std::string>& all, const std::string& x) {
  return std::find(all.begin(), all.end(), x) != all.end();
}

} // namespace

TEST_SUITE("request_id") {
  TEST_CASE("a checkout's id is in the order's and the payment's log lines on the order's node") {
    auto ps = start_paysim();
    const std::vector<std::string> logs{"--log.format=json", "--log.level=debug"};
    node_config c1 = paying_node(*ps, logs);
    c1.node_id = "n1";
    node_process n1{c1};
    node_config c2 = joining_node(*ps, n1, logs);
    c2.node_id = "n2";
    node_process n2{c2};
    api a1{n1};
    add_product(a1, "RIDC", 500, 1000);

    // Checkouts through n1 until one's order lives on n2 (its lines are written there); n2
    // takes shards over as it joins.
    bool crossed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    for (int i = 0; i < 400 && !crossed && std::chrono::steady_clock::now() < deadline; ++i) {
      const auto cart = filled_cart(a1, {{"RIDC", 1, 500}});
      const auto rid = "co-" + std::to_string(i);
      auto r = a1.store().send(with_headers(
          checkout_request(cart, "key-rid-" + std::to_string(i), "tok_ok"), "X-Request-Id", {rid}));
      REQUIRE_MESSAGE(r.status == 201, describe(r));
      CHECK(r.header("x-request-id") == rid);
      const auto on_n2 = loggers_with(n2.log_path(), rid);
      if (has(on_n2, "payments")) {
        CHECK(has(on_n2, "order"));
        CHECK_FALSE(has(loggers_with(n1.log_path(), rid), "payments"));
        crossed = true;
      } else {
        // The order is n1's: its lines are there.
        CHECK(has(loggers_with(n1.log_path(), rid), "payments"));
      }
    }
    CHECK_MESSAGE(crossed, "no checkout's order landed on n2");
  }
}

} // namespace surge::itest
