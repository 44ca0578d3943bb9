// /metrics through prometheus-cpp and GET /admin/v1/metrics/history on a real node.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <variant>

#include "api.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

/// The samples of GET /metrics: line name{labels} -> value.
std::map<std::string, double> scrape(api& a) {
  auto r = a.admin().get("/metrics");
  REQUIRE_MESSAGE(r.status == 200, describe(r));
  std::map<std::string, double> out;
  std::istringstream in{r.body};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

/// The sum of the samples named `name` whose labels contain every `needle`.
double sum_of(const std::map<std::string, double>& m, const std::string& name,
              std::initializer_list<std::string> needles) {
  double total = 0;
  for (const auto& [k, v] : m) {
    if (k.compare(0, name.size() + 1, name + "{") != 0) {
      continue;
    }
    bool all = true;
    for (const auto& n : needles) {
      all = all && k.find(n) != std::string::npos;
    }
    total += all ? v : 0;
  }
  return total;
}

} // namespace

TEST_SUITE("metrics") {

  TEST_CASE("request durations count storefront requests exactly, probes apart") {
    node_process node;
    api a{node};
    a.add_product({.sku = "met-1", .name = "Metric"}, 5);
    const std::string count = "surge_http_request_duration_seconds_count";
    const auto before = scrape(a);
    constexpr int n = 7;
    for (int i = 0; i < n; ++i) {
      REQUIRE(a.store().get("/api/v1/products/met-1").status == 200);
      REQUIRE(a.store().get("/healthz").status == 200);
      REQUIRE(a.admin().get("/readyz").status == 200);
    }
    REQUIRE(a.store().get("/api/v1/nowhere").status == 404);
    const auto after = scrape(a);

    auto moved = [&](std::initializer_list<std::string> needles) {
      return sum_of(after, count, needles) - sum_of(before, count, needles);
    };
    CHECK(moved({R"(kind="shopper")", R"(route="/api/v1/products/{sku}")", R"(method="GET")",
                 R"(code="200")"}) == n);
    CHECK(moved({R"(kind="shopper")"}) == n + 1); // the products and the unmatched one
    CHECK(moved({R"(kind="shopper")", R"(route="unmatched")", R"(code="404")"}) == 1);
    CHECK(moved({R"(kind="probe")", R"(route="/healthz")"}) == n);
    CHECK(moved({R"(kind="probe")", R"(route="/readyz")"}) == n);
    CHECK(moved({R"(kind="shopper")", R"(route="/healthz")"}) == 0);
    // The scrape itself is an admin request (counted when answered: the first one by now).
    CHECK(sum_of(after, count, {R"(kind="admin")", R"(route="/metrics")"}) >= 1);

    // The other families of the contract are there, with no id among their labels.
    CHECK(after.count(R"(surge_build_info{node=")" + node.node_id() + R"(",version="0.1.0"})") ==
          1);
    CHECK(after.count("surge_journal_commit_duration_seconds_count") == 1);
    CHECK(after.at("surge_journal_commit_duration_seconds_count") >= 2); // product and stock
    CHECK(after.count("surge_journal_batch_size_count") == 1);
    CHECK(after.count("surge_redis_batch_size_count") == 1);
    CHECK(after.count(R"(surge_pool_wait_seconds_count{pool="pg"})") == 1);
    CHECK(after.count(R"(surge_pool_wait_seconds_count{pool="catalog"})") == 1);
    CHECK(after.count(R"(surge_actors{kind="sku"})") == 1);
    CHECK(after.count(R"(surge_holds_total{event="placed"})") == 1);
    CHECK(after.at("surge_shards_owned") == 256);
    CHECK(after.count("surge_lease_renewal_duration_seconds_count") == 1);
    CHECK(after.count("surge_lease_renewal_failures_total") == 1);
    CHECK(after.count("surge_up") == 1);
    for (const auto& [k, v] : after) {
      CHECK_MESSAGE(k.find("met-1") == std::string::npos, k);
    }

    // A hold placed, then resized (not placed again), then given back.
    const auto cart = a.create_cart();
    REQUIRE(a.put_item(cart, "met-1", 1).status == 200);
    REQUIRE(a.put_item(cart, "met-1", 2).status == 200);
    REQUIRE(a.store().del("/api/v1/carts/" + cart + "/items/met-1").status == 200);
    const auto holds = scrape(a);
    CHECK(holds.at(R"(surge_holds_total{event="placed"})") == 1);
    CHECK(holds.at(R"(surge_holds_total{event="released"})") == 1);
    CHECK(holds.at(R"(surge_holds_total{event="expired"})") == 0);
    CHECK(holds.at(R"(surge_actors{kind="cart"})") >= 1);

    // Prometheus' own linter accepts the exposition (promtool is installed by scripts/deps.sh).
    if (std::filesystem::exists("/usr/bin/promtool")) {
      const auto file = std::filesystem::temp_directory_path() /
                        ("surge-metrics-" + std::to_string(::getpid()) + ".txt");
      {
        std::ofstream out{file};
        out << a.admin().get("/metrics").body;
      }
      const auto cmd = "/usr/bin/promtool check metrics < " + file.string() + " 2>&1";
      CHECK_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
      std::filesystem::remove(file);
    }
  }

  TEST_CASE("the history answers the contract's shape") {
    node_process node;
    api a{node};
    a.add_product({.sku = "met-2", .name = "History"}, 5);
    const auto cart = a.create_cart();
    REQUIRE(a.put_item(cart, "met-2", 1).status == 200);
    // The sampler takes a sample at start and every 5 s: wait (bounded) for two points.
    json::value body;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      auto r = a.admin().get("/admin/v1/metrics/history?scope=local");
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      body = parse_json(r.body);
      if (array_of(body, "t").size() >= 2 || std::chrono::steady_clock::now() > deadline) {
        break;
      }
      std::this_thread::sleep_for(250ms);
    }
    CHECK(keys_of(body) == std::vector<std::string>{"holds", "journal", "node_id", "redis",
                                                    "routes", "status", "step_s", "t"});
    CHECK(str_of(body, "node_id") == node.node_id());
    CHECK(int_of(body, "step_s") == 5);
    const auto n = array_of(body, "t").size();
    REQUIRE(n >= 2);
    REQUIRE(n <= 180);
    int64_t last = 0;
    for (const auto& t : array_of(body, "t")) {
      REQUIRE(t.is_int());
      const auto ms = std::get<int64_t>(t.get());
      CHECK(ms > last);
      last = ms;
    }
    bool products_route = false;
    for (const auto& r : array_of(body, "routes")) {
      CHECK(keys_of(r) == std::vector<std::string>{"method", "p50_ms", "p99_ms", "rate", "route"});
      CHECK(array_of(r, "rate").size() == n);
      CHECK(array_of(r, "p50_ms").size() == n);
      CHECK(array_of(r, "p99_ms").size() == n);
      CHECK(str_of(r, "route") != "/healthz"); // probes are not charted
      products_route = products_route || (str_of(r, "route") == "/api/v1/carts/{cart_id}/items/"
                                                                "{sku}" &&
                                          str_of(r, "method") == "PUT");
    }
    CHECK(products_route);
    for (auto [obj, keys] :
         {std::pair{"status", std::vector<std::string>{"4xx", "5xx"}},
          std::pair{"journal",
                    std::vector<std::string>{"batch_size", "commit_p50_ms", "commit_p99_ms"}},
          std::pair{"redis", std::vector<std::string>{"batch_size"}},
          std::pair{"holds", std::vector<std::string>{"confirmed", "expired", "placed"}}}) {
      CHECK(keys_of(member(body, obj)) == keys);
      for (const auto& k : keys) {
        CHECK(array_of(member(body, obj), k).size() == n);
      }
    }
    // A wrong token is refused like every admin route's.
    node_process locked{node_config{.admin_token = "secret"}};
    http_client anon{locked.admin_port()};
    check_error(anon.get("/admin/v1/metrics/history"), 401, "unauthorized");
  }
}

} // namespace surge::itest
