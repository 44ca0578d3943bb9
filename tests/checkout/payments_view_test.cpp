// GET /admin/v1/payments on three real nodes paying through a real surge-paysim: each node's
// gateways (breaker, outcome counts, failovers, latency), merged from any node.

#include <doctest/doctest.h>

#include <algorithm>

#include "checkout_support.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

/// Over every node of a merged GET /admin/v1/payments: the sum of `gateway`'s `field` (a number
/// directly in the gateway object, or in its "calls").
int64_t total(const json::value& merged, const std::string& gateway, const std::string& field) {
  int64_t sum = 0;
  for (const auto& n : array_of(merged, "nodes")) {
    for (const auto& g : array_of(n, "gateways")) {
      if (str_of(g, "name") != gateway) {
        continue;
      }
      sum += g.find(field) != nullptr ? int_of(g, field) : int_of(member(g, "calls"), field);
    }
  }
  return sum;
}

} // namespace

TEST_SUITE("payments_view") {

  TEST_CASE("a tok_down_first checkout shows as a failover from alpha and an approval on beta") {
    auto ps = start_paysim();
    node_process n1{paying_node(*ps)};
    node_process n2{joining_node(*ps, n1)};
    node_process n3{joining_node(*ps, n1)};
    // Every node's view of the cluster lists all three up (a view is refreshed each heartbeat).
    auto all_up = [&] {
      for (node_process* n : {&n1, &n2, &n3}) {
        http_client c{n->admin_port(), 5s};
        auto r = c.get("/admin/v1/cluster");
        if (r.status != 200) {
          return false;
        }
        const auto v = parse_json(r.body);
        const auto& rows = array_of(v, "nodes");
        if (rows.size() != 3 || std::any_of(rows.begin(), rows.end(), [](const auto& row) {
              return str_of(row, "status") != "up";
            })) {
          return false;
        }
      }
      return true;
    };
    REQUIRE(poll_until(30s, all_up));
    api a{n1};
    const auto [lines, cart] = stocked_cart(a, "pv-1", 1999, 3, 1);
    const auto r = checkout(a.store(), cart, "key-pv-down", "tok_down_first");
    REQUIRE_MESSAGE(r.status == 201, describe(r));

    for (node_process* n : {&n1, &n2, &n3}) {
      CAPTURE(n->node_id());
      http_client adm{n->admin_port(), 10s};
      auto all = adm.get("/admin/v1/payments");
      REQUIRE_MESSAGE(all.status == 200, describe(all));
      const auto v = parse_json(all.body);
      CHECK(array_of(v, "nodes").size() == 3);
      CHECK(array_of(v, "errors").empty());
      CHECK(total(v, "alpha", "failovers") == 1);
      CHECK(total(v, "alpha", "failed") >= 1); // payments.max_tries calls, all failed
      CHECK(total(v, "alpha", "approved") == 0);
      CHECK(total(v, "beta", "approved") == 1);
      CHECK(total(v, "beta", "failovers") == 0);
      for (const auto& node : array_of(v, "nodes")) {
        const auto& gws = array_of(node, "gateways");
        REQUIRE(gws.size() == 2);
        CHECK(str_of(gws[0], "name") == "alpha");
        CHECK(str_of(gws[1], "name") == "beta");
        for (const auto& g : gws) {
          const auto breaker = str_of(g, "breaker");
          CHECK((breaker == "closed" || breaker == "open" || breaker == "half_open"));
          CHECK(int_of(g, "refunds") == 0);
          const auto& latency = member(g, "latency_ms");
          CHECK(latency.find("p50") != nullptr);
          CHECK(latency.find("p99") != nullptr);
        }
      }
      // This node's part alone.
      auto local = adm.get("/admin/v1/payments?scope=local");
      REQUIRE_MESSAGE(local.status == 200, describe(local));
      const auto mine = parse_json(local.body);
      CHECK(str_of(mine, "node_id") == n->node_id());
      CHECK(array_of(mine, "gateways").size() == 2);
    }
  }
}

} // namespace surge::itest
