// net::node_metrics (the prometheus-cpp registry behind /metrics) and net::metrics_history (the
// maths of GET /admin/v1/metrics/history) on synthetic figures: no node, no sleeps.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "surge/net/json.hpp"
#include "surge/net/metrics.hpp"
#include "surge/net/metrics_history.hpp"

using namespace surge;

namespace {

/// The families of `text` (from its # TYPE lines): name -> type.
std::map<std::string, std::string> families_of(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const auto rest = line.substr(7);
      const auto sp = rest.find(' ');
      out[rest.substr(0, sp)] = rest.substr(sp + 1);
    }
  }
  return out;
}

/// Every label name used by a sample of `text`.
std::set<std::string> label_names_of(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    auto open = line.find('{');
    if (open == std::string::npos) {
      continue;
    }
    const auto close = line.rfind('}');
    auto labels = line.substr(open + 1, close - open - 1);
    std::size_t pos = 0;
    while (pos < labels.size()) {
      const auto eq = labels.find('=', pos);
      out.insert(labels.substr(pos, eq - pos));
      const auto end = labels.find('"', labels.find('"', eq) + 1); // closing quote
      pos = end + 2;                                               // past `",`
    }
  }
  return out;
}

net::histogram_figures figures(std::vector<double> bounds, std::vector<uint64_t> buckets,
                               uint64_t count, double sum = 0) {
  return net::histogram_figures{std::move(bounds), std::move(buckets), count, sum};
}

} // namespace

TEST_CASE("metrics: every family of the contract, and no label but the fixed ones") {
  net::node_metrics m{"node-1", "0.1.0"};
  const auto shop = m.http_route(net::http_kind::shopper, "/api/v1/carts/{cart_id}", "GET");
  const auto probe = m.http_route(net::http_kind::probe, "/healthz", "GET");
  CHECK(m.http_route(net::http_kind::shopper, "/api/v1/carts/{cart_id}", "GET") == shop);
  m.observe_http(shop, 200, 0.003);
  m.observe_http(shop, 404, 0.001);
  m.observe_http(probe, 200, 0.0001);
  m.observe_http(shop, 99, 1);  // not a status: not recorded
  m.observe_http(shop, 600, 1); // nor this
  m.journal_commit(0.004, 12);
  m.redis_batch(0.001, 30);
  m.pool_wait("pg")(0.0002);
  m.payment_call("psp-a", "charge", "approved", 0.2);
  m.payment_call("psp-a", "refund", "refunded", 0.1);
  m.payment_call("psp-a", "charge", "sideways", 0.1); // not an outcome: not recorded
  m.payment_failover("psp-a");
  m.lease_renewal(0.01, true);
  m.lease_renewal(0, false);
  m.on_collect([](net::node_metrics& into) {
    into.set_breaker("psp-a", 2);
    into.set_shards_owned(17);
    into.set_actors("sku", 3);
    into.set_holds(5, 1, 2, 1);
  });
  net::legacy_figures legacy;
  legacy.up = true;
  legacy.by_status.assign(600, 0);
  legacy.by_status[200] = 2;
  const auto text = m.render(legacy);

  const auto fams = families_of(text);
  const std::map<std::string, std::string> want{
      {"surge_up", "gauge"},
      {"surge_http_responses_total", "counter"},
      {"surge_http_rate_limited_total", "counter"},
      {"surge_entities_active", "gauge"},
      {"surge_http_request_duration_seconds", "histogram"},
      {"surge_journal_commit_duration_seconds", "histogram"},
      {"surge_journal_batch_size", "histogram"},
      {"surge_redis_batch_duration_seconds", "histogram"},
      {"surge_redis_batch_size", "histogram"},
      {"surge_pool_wait_seconds", "histogram"},
      {"surge_payment_call_duration_seconds", "histogram"},
      {"surge_payment_breaker_state", "gauge"},
      {"surge_payment_failovers_total", "counter"},
      {"surge_holds_total", "counter"},
      {"surge_shards_owned", "gauge"},
      {"surge_lease_renewal_duration_seconds", "histogram"},
      {"surge_lease_renewal_failures_total", "counter"},
      {"surge_actors", "gauge"},
      {"surge_build_info", "gauge"},
  };
  CHECK(fams == want);
  const std::set<std::string> allowed{"code", "kind",    "route", "method",  "pool", "gateway",
                                      "op",   "outcome", "event", "version", "node", "le"};
  for (const auto& l : label_names_of(text)) {
    CHECK_MESSAGE(allowed.count(l) == 1, l);
  }
  // The legacy families come first, as they always did.
  CHECK(text.rfind("# HELP surge_up 1 while the node serves.\n# TYPE surge_up gauge\nsurge_up 1\n",
                   0) == 0);
  for (
      const auto* line : {
          R"(surge_http_request_duration_seconds_count{code="200",kind="shopper",method="GET",route="/api/v1/carts/{cart_id}"} 1)",
          R"(surge_http_request_duration_seconds_count{code="404",kind="shopper",method="GET",route="/api/v1/carts/{cart_id}"} 1)",
          R"(surge_http_request_duration_seconds_count{code="200",kind="probe",method="GET",route="/healthz"} 1)",
          R"(surge_journal_batch_size_sum 12)",
          R"(surge_redis_batch_size_sum 30)",
          R"(surge_pool_wait_seconds_count{pool="pg"} 1)",
          R"(surge_pool_wait_seconds_count{pool="orders"} 0)",
          R"(surge_payment_call_duration_seconds_count{gateway="psp-a",op="charge",outcome="approved"} 1)",
          R"(surge_payment_call_duration_seconds_count{gateway="psp-a",op="refund",outcome="refunded"} 1)",
          R"(surge_payment_breaker_state{gateway="psp-a"} 2)",
          R"(surge_payment_failovers_total{gateway="psp-a"} 1)",
          R"(surge_holds_total{event="placed"} 5)",
          R"(surge_holds_total{event="released"} 1)",
          R"(surge_shards_owned 17)",
          R"(surge_lease_renewal_duration_seconds_count 1)",
          R"(surge_lease_renewal_failures_total 1)",
          R"(surge_actors{kind="sku"} 3)",
          R"(surge_actors{kind="order"} 0)",
          R"(surge_build_info{node="node-1",version="0.1.0"} 1)",
      }) {
    CHECK_MESSAGE(text.find(std::string{line} + "\n") != std::string::npos, line);
  }
  CHECK(text.find("sideways") == std::string::npos);
  CHECK(text.find("code=\"99\"") == std::string::npos);
  CHECK(text.find("code=\"600\"") == std::string::npos);

  // Totals kept below net move the counters by the difference, never back.
  m.on_collect([](net::node_metrics& into) { into.set_holds(7, 1, 2, 1); });
  CHECK(m.render(legacy).find("surge_holds_total{event=\"placed\"} 7\n") != std::string::npos);
}

TEST_CASE("metrics: read replicas (pg.read_urls) show only when configured") {
  net::node_metrics m{"node-1", "0.1.0"};
  net::legacy_figures legacy;
  legacy.by_status.assign(600, 0);
  CHECK(families_of(m.render(legacy)).count("surge_pg_replica_up") == 0);
  m.replica_probe(1, true, 0.25);
  m.replica_probe(2, false, -1);
  m.catalog_read(0);
  m.catalog_read(1);
  m.catalog_read(1);
  const auto text = m.render(legacy);
  const auto fams = families_of(text);
  CHECK(fams.at("surge_pg_replica_up") == "gauge");
  CHECK(fams.at("surge_pg_replica_lag_seconds") == "gauge");
  CHECK(fams.at("surge_catalog_reads_total") == "counter");
  for (const auto* line :
       {R"(surge_pg_replica_up{replica="1"} 1)", R"(surge_pg_replica_up{replica="2"} 0)",
        R"(surge_pg_replica_lag_seconds{replica="1"} 0.25)",
        R"(surge_catalog_reads_total{target="primary"} 1)",
        R"(surge_catalog_reads_total{target="replica1"} 2)"}) {
    CHECK_MESSAGE(text.find(std::string{line} + "\n") != std::string::npos, line);
  }
  CHECK(text.find(R"(surge_pg_replica_lag_seconds{replica="2"})") == std::string::npos);
}

TEST_CASE("metrics: a sample sums a route's codes, leaves probes out and counts 4xx and 5xx") {
  net::node_metrics m{"node-1", "0.1.0"};
  const auto a = m.http_route(net::http_kind::shopper, "/a", "GET");
  const auto adm = m.http_route(net::http_kind::admin, "/metrics", "GET");
  const auto probe = m.http_route(net::http_kind::probe, "/readyz", "GET");
  m.observe_http(a, 200, 0.002);
  m.observe_http(a, 409, 0.002);
  m.observe_http(a, 503, 0.02);
  m.observe_http(adm, 200, 0.001);
  m.observe_http(probe, 503, 0.001);
  m.journal_commit(0.003, 4);
  m.on_collect([](net::node_metrics& into) { into.set_holds(3, 2, 1, 0); });
  const auto s = m.sample(1234);
  CHECK(s.t_ms == 1234);
  REQUIRE(s.routes.size() == 2);
  CHECK(s.routes[0].route == "/a");
  CHECK(s.routes[0].duration.count == 3);
  CHECK(s.routes[1].route == "/metrics");
  CHECK(s.routes[1].duration.count == 1);
  CHECK(s.status_4xx == 1);
  CHECK(s.status_5xx == 1); // the probe's 503 is not the shoppers'
  CHECK(s.journal_batch.count == 1);
  CHECK(s.journal_batch.sum == 4);
  CHECK(s.journal_commit.buckets.size() == s.journal_commit.bounds.size());
  CHECK(s.holds_placed == 3);
  CHECK(s.holds_expired == 2);
  CHECK(s.holds_confirmed == 1);
}

TEST_CASE("history: quantiles from bucket deltas, as histogram_quantile") {
  const std::vector<double> b{1, 2, 4};
  const auto empty = figures(b, {0, 0, 0}, 0);
  // 10 in (0,1], 10 in (1,2].
  const auto twenty = figures(b, {10, 20, 20}, 20);
  CHECK(*net::quantile_between(0.5, empty, twenty) == doctest::Approx(1.0));
  CHECK(*net::quantile_between(0.99, empty, twenty) == doctest::Approx(1.98));
  // Only what happened in between counts: 10 more, all in (1,2].
  const auto later = figures(b, {10, 30, 30}, 30);
  CHECK(*net::quantile_between(0.5, twenty, later) == doctest::Approx(1.5));
  // Beyond the last finite bound: that bound.
  const auto inf = figures(b, {10, 20, 20}, 40);
  CHECK(*net::quantile_between(0.99, twenty, inf) == doctest::Approx(4.0));
  // Nothing in between: no value.
  CHECK_FALSE(net::quantile_between(0.5, twenty, twenty).has_value());
  CHECK_FALSE(net::quantile_between(0.5, empty, empty).has_value());
}

TEST_CASE("history: the local body, rates per second, null without data") {
  net::metrics_history h{180, 5};
  const std::vector<double> secs{0.001, 0.01, 0.1};
  auto sample = [&](int64_t t, uint64_t route_count, uint64_t s4, uint64_t batches,
                    double batch_sum, uint64_t placed) {
    net::metrics_sample s;
    s.t_ms = t;
    s.routes.push_back({"/x", "GET", figures(secs, {0, route_count, route_count}, route_count, 0)});
    s.status_4xx = s4;
    s.journal_batch = figures({1, 2, 4}, {0, 0, batches}, batches, batch_sum);
    s.journal_commit = figures(secs, {0, 0, 0}, 0);
    s.redis_batch = figures({1, 2}, {0, 0}, 0);
    s.holds_placed = placed;
    return s;
  };
  CHECK(h.body("n1") ==
        R"({"node_id":"n1","step_s":5,"t":[],"routes":[],"status":{"4xx":[],"5xx":[]},)"
        R"("journal":{"batch_size":[],"commit_p50_ms":[],"commit_p99_ms":[]},)"
        R"("redis":{"batch_size":[]},"holds":{"placed":[],"expired":[],"confirmed":[]}})");
  h.add(sample(1000, 0, 0, 0, 0, 0));
  h.add(sample(6000, 10, 5, 2, 6, 10));
  h.add(sample(11000, 10, 5, 2, 6, 25));
  CHECK(h.body("n1") ==
        R"({"node_id":"n1","step_s":5,"t":[6000,11000],)"
        R"("routes":[{"route":"/x","method":"GET","rate":[2.0,0.0],"p50_ms":[5.5,null],)"
        R"("p99_ms":[9.91,null]}],"status":{"4xx":[1.0,0.0],"5xx":[0.0,0.0]},)"
        R"("journal":{"batch_size":[3.0,null],"commit_p50_ms":[null,null],)"
        R"("commit_p99_ms":[null,null]},"redis":{"batch_size":[null,null]},)"
        R"("holds":{"placed":[2.0,3.0],"expired":[0.0,0.0],"confirmed":[0.0,0.0]}})");
  CHECK(std::holds_alternative<net::json::value>(net::json::parse(h.body("n\"1"))));
}

TEST_CASE("history: keeps the last points, and a route that appears later starts at zero") {
  net::metrics_history h{2, 5};
  for (int64_t i = 0; i < 5; ++i) {
    net::metrics_sample s;
    s.t_ms = i * 5000;
    if (i >= 3) {
      s.routes.push_back(
          {"/late", "POST", figures({0.1}, {static_cast<uint64_t>(i)}, static_cast<uint64_t>(i))});
    }
    h.add(s);
  }
  const auto body = h.body("n1");
  CHECK(body.find(R"("t":[15000,20000])") != std::string::npos);
  // 2..3: 3 new of nothing before (0.6/s); 3..4: 1 more (0.2/s).
  CHECK(body.find(R"("route":"/late","method":"POST","rate":[0.6,0.2])") != std::string::npos);
}
