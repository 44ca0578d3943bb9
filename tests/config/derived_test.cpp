#include "surge/config/derived.hpp"

#include <string>
#include <variant>
#include <vector>

#include <doctest/doctest.h>

#include "surge/config/settings.hpp"

using namespace surge::config;
using namespace std::chrono_literals;

namespace {

node_options with(const std::vector<std::string>& args) {
  auto loaded = load(args, {});
  REQUIRE_MESSAGE(std::holds_alternative<invocation>(loaded), std::get<load_error>(loaded).message);
  return std::get<invocation>(loaded).options;
}

} // namespace

TEST_CASE("defaults(): the table's defaults, as load() gives them without any source") {
  const auto d = defaults();
  const auto l = with({});
  CHECK(d.http_request_timeout == l.http_request_timeout);
  CHECK(d.payments_timeout == l.payments_timeout);
  CHECK(d.node_id == l.node_id);
  // The tunables that were constants in the components keep their old values.
  const std::pair<std::chrono::milliseconds, std::chrono::milliseconds> durations[] = {
      {d.http_idle_timeout, 60s},       {d.redis_timeout, 2s},
      {d.pg_startup_wait, 30s},         {d.entity_call_timeout, 5s},
      {d.carts_claim_grace, 60s},       {d.payments_backoff, 50ms},
      {d.payments_backoff_cap, 1s},     {d.payments_breaker_cooldown, 5s},
      {d.payments_refund_deadline, 8s}, {d.orders_relay_interval, 200ms},
      {d.auth_jwt_leeway, 30s},         {d.cluster_leave_timeout, 15s},
      {d.http_drain_grace, 3s},         {d.sales_prewarm, 60s},
      {d.sales_latency_budget, 250ms},  {d.sales_refresh, 1s},
  };
  for (const auto& [got, want] : durations) {
    CHECK(got == want);
  }
  const std::pair<int64_t, int64_t> counts[] = {
      {d.http_header_limit, 8192},  {d.http_target_limit, 2048},  {d.http_max_connections, 100000},
      {d.payments_tries, 3},        {d.payments_lookup_tries, 4}, {d.payments_breaker_threshold, 5},
      {d.payments_refund_tries, 5}, {d.auth_token_cache, 16384},  {d.http_max_streams, 20000},
  };
  for (const auto& [got, want] : counts) {
    CHECK(got == want);
  }
}

TEST_CASE("the new settings are bounded and read like any other") {
  auto o =
      with({"--payments.tries=7", "--http.idle_timeout=5s", "--auth.token_cache=0",
            "--entity.call_timeout=250ms", "--carts.claim_grace=2m", "--sales.prewarm=5m",
            "--sales.latency_budget=100ms", "--sales.refresh=500ms", "--http.drain_grace=750ms"});
  CHECK(o.payments_tries == 7);
  CHECK(o.http_idle_timeout == 5s);
  CHECK(o.auth_token_cache == 0);
  CHECK(o.entity_call_timeout == 250ms);
  CHECK(o.carts_claim_grace == 120s);
  CHECK(o.sales_prewarm == 300s);
  CHECK(o.http_drain_grace == 750ms);
  CHECK(o.sales_latency_budget == 100ms);
  CHECK(o.sales_refresh == 500ms);
  for (const char* bad :
       {"--payments.tries=0", "--payments.tries=21", "--http.header_limit=10",
        "--redis.timeout=1ms", "--entity.call_timeout=50ms", "--payments.backoff=0ms",
        "--http.max_connections=0", "--sales.refresh=10ms", "--sales.latency_budget=0ms",
        "--sales.prewarm=2d"}) {
    CAPTURE(bad);
    auto loaded = load({bad}, {});
    REQUIRE(std::holds_alternative<load_error>(loaded));
    const auto name = std::string{bad}.substr(2, std::string{bad}.find('=') - 2);
    CHECK(std::get<load_error>(loaded).message.find("'" + name + "'") != std::string::npos);
  }
}

TEST_CASE("derive: the defaults") {
  const auto d = derive(defaults());
  CHECK(d.bridge_call_timeout == 9500ms);
  CHECK(d.bridge_callers == 2);
  CHECK(d.http_read_timeout == 10s);
  CHECK(d.payment_lease_margin == 875ms); // (2 s - 250 ms) / 2
  CHECK(d.stub_idle == 120s);
  CHECK(d.rebalance_min_age == 2s);
  CHECK(d.handoff_timeout == 1s); // max(min(4 s, 2 s / 2), 1 s)
  CHECK(d.drain_handoff_timeout == 4s);
  CHECK(d.hold_sweep_interval == 30s);
  CHECK(d.cart_claim_lifetime == 31min);       // max(30 min, 10 min) + 60 s
  CHECK(d.middleman_connection_timeout == 1s); // max(4 x 250 ms, 2 s / 2)
  CHECK(d.catalog_max_age == 1s);
  CHECK(d.catalog_fresh_for == 1s); // search.stock_lag 2 s, less what a CDN may keep
  CHECK(d.catalog_cache_ttl == 1s);
  CHECK_FALSE(d.verify_customers);
}

TEST_CASE("derive: floors, caps and the rules between settings") {
  SUBCASE("a short request timeout keeps 500 ms for the entity") {
    auto d = derive(with({"--http.request_timeout=200ms"}));
    CHECK(d.bridge_call_timeout == 500ms);
    CHECK(d.http_read_timeout == 200ms);
  }
  SUBCASE("search.stock_lag bounds what browsers, CDNs and the node keep") {
    auto d = derive(with({"--search.stock_lag=1500ms"}));
    CHECK(d.catalog_max_age == 0s);
    CHECK(d.catalog_fresh_for == 1500ms);
    CHECK(d.catalog_cache_ttl == 1s); // http.page_cache
    d = derive(with({"--search.stock_lag=10s", "--http.page_cache=5s"}));
    CHECK(d.catalog_max_age == 1s);
    CHECK(d.catalog_fresh_for == 9s);
    CHECK(d.catalog_cache_ttl == 5s);
    d = derive(with({"--search.stock_lag=0s"}));
    CHECK(d.catalog_cache_ttl == 0s);
    CHECK(d.catalog_fresh_for == 0s);
  }
  SUBCASE("more I/O threads, more callers") {
    CHECK(derive(with({"--http.io_threads=8"})).bridge_callers == 8);
    CHECK(derive(with({"--http.io_threads=1"})).bridge_callers == 2);
  }
  SUBCASE("a long lease caps the payment margin at 1 s") {
    auto d = derive(with({"--cluster.lease=60s", "--cluster.heartbeat=1s"}));
    CHECK(d.payment_lease_margin == 1s);
    CHECK(d.rebalance_min_age == 60s);
    CHECK(d.middleman_connection_timeout == 30s);
    CHECK(d.handoff_timeout == 4s); // cluster.handoff_wait
  }
  SUBCASE("short settings meet the floors") {
    auto d = derive(
        with({"--entity.idle_timeout=1s", "--cluster.lease=300ms", "--cluster.heartbeat=100ms",
              "--cluster.handoff_wait=200ms", "--holds.ttl=1s"}));
    CHECK(d.stub_idle == 30s);
    CHECK(d.rebalance_min_age == 1s);
    CHECK(d.handoff_timeout == 1s);
    CHECK(d.hold_sweep_interval == 1s);
    CHECK(d.payment_lease_margin == 100ms);
  }
  SUBCASE("the claim outlives the longer of holds.ttl and holds.max_lifetime") {
    auto d = derive(with({"--holds.ttl=2h", "--holds.max_lifetime=1h", "--carts.claim_grace=5s"}));
    CHECK(d.cart_claim_lifetime == 2h + 5s);
    CHECK(d.hold_sweep_interval == 30s);
  }
  SUBCASE("a token key turns customer verification on") {
    CHECK(derive(with({"--auth.jwt_secret=0123456789abcdef0123456789abcdef"})).verify_customers);
    CHECK(derive(with({"--auth.jwt_public_key=/etc/key.pem"})).verify_customers);
  }
}
