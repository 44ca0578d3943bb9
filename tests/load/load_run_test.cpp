// surge-load end to end: the real binary (SURGE_LOAD_BINARY) for a few seconds against a real
// surge-node child process (tests/integration's harness: own database, Redis prefix and free
// ports) paying through a real surge-paysim (tests/payments' harness). Checks the exit code,
// the JSON report and its cross-check, and the report's counts against the admin stock.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"
#include "paysim_process.hpp"
#include "run_program.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

using load_result = surge::test::program_result;
using surge::test::read_file;

std::string temp_path(const std::string& what) {
  static int n = 0;
  return (std::filesystem::temp_directory_path() /
          ("surge_load_test_" + std::to_string(::getpid()) + "_" + std::to_string(++n) + what))
      .string();
}

/// Runs surge-load with `args`, waits up to `patience`, returns its exit status and output.
/// The default is above surge-load's own bounds for these runs: the duration, then at most
/// --timeout (10 s) + 2 s for requests in flight, the admin cross-check, and up to 30 s per
/// gnuplot call for --plot; a shared CI machine can use much of that.
load_result run_load(const std::vector<std::string>& args,
                     std::chrono::milliseconds patience = 100s) {
  std::vector<std::string> argv{SURGE_LOAD_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = surge::test::run_program(argv, std::nullopt, patience);
  if (r.timed_out) {
    // What it printed so far says where it stopped (load, cross-check or plots).
    FAIL("surge-load did not exit within the patience\nstdout:\n" << r.out << "stderr:\n" << r.err);
  }
  return r;
}

std::string show(const load_result& r) {
  return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

node_config paying_node(const ptest::paysim_process& ps, std::vector<std::string> extra = {}) {
  node_config cfg;
  // Limits on: surge-load names a client address per shopper (X-Forwarded-For), which the node
  // believes from its peers, 127.0.0.1..3 with --source-addrs=3.
  cfg.limits = true;
  cfg.extra.push_back("--http.trusted_proxies=127.0.0.0/8");
  cfg.extra.push_back(
      "--payments.gateways=alpha=form+http://127.0.0.1:" + std::to_string(ps.port(0)) +
      ",beta=json+http://127.0.0.1:" + std::to_string(ps.port(1)));
  cfg.extra.insert(cfg.extra.end(), extra.begin(), extra.end());
  return cfg;
}

void load_catalog(api& a, int n, int64_t stock) {
  for (int i = 1; i <= n; ++i) {
    const auto sku = "LT-" + std::to_string(i);
    a.add_product({.sku = sku, .name = "Load test " + sku, .category = "load", .price_cents = 1000},
                  stock);
  }
}

/// A surge-paysim and a node paying through it (paying_node) with `skus` products of `stock`
/// units each (load_catalog), and its API client; `paysim_args` and `node_args` are added to
/// their command lines.
struct load_target {
  load_target(int skus, int64_t stock, std::vector<std::string> paysim_args = {},
              std::vector<std::string> node_args = {})
      : ps{{"alpha", "beta"}, std::move(paysim_args)}
      , node{paying_node(ps, std::move(node_args))}
      , a{node} {
    load_catalog(a, skus, stock);
  }

  ptest::paysim_process ps;
  node_process node;
  api a;
};

std::vector<std::string> common_flags(const node_process& node, int skus, int hot) {
  return {"--target=http://127.0.0.1:" + std::to_string(node.http_port()),
          "--admin=http://127.0.0.1:" + std::to_string(node.admin_port()),
          "--sku-prefix=LT-",
          "--skus=" + std::to_string(skus),
          "--hot-skus=" + std::to_string(hot),
          "--quiet"};
}

/// The JSON report at `path` (REQUIREs that it parses).
json::value read_report(const std::string& path) {
  const auto text = read_file(path);
  REQUIRE_MESSAGE(!text.empty(), "no JSON report at " << path);
  return parse_json(text);
}

/// The report's per-SKU counts agree with the admin stock read here, after the run; when no
/// outcome was uncertain they are exact: held == live holds, sold == confirmed units.
void check_skus_against_admin(api& a, const json::value& report) {
  for (const auto& s : array_of(report, "skus")) {
    const auto sku = str_of(s, "sku");
    CAPTURE(sku);
    const auto stock = a.stock(sku);
    const auto on_hand = int_of(stock, "on_hand");
    const auto held = int_of(stock, "held");
    const auto sold = int_of(stock, "sold");
    CHECK(held + sold <= on_hand);
    CHECK(int_of(s, "held") == held);
    CHECK(int_of(s, "sold") == sold);
    CHECK(held >= int_of(s, "live_holds"));
    CHECK(sold >= int_of(s, "confirmed_units"));
    if (int_of(s, "uncertain") == 0) {
      CHECK(held == int_of(s, "live_holds"));
      CHECK(sold == int_of(s, "confirmed_units"));
    }
  }
}

} // namespace

TEST_SUITE("load_integration") {
  TEST_CASE("a mixed run completes, reports JSON, and passes its cross-check") {
    load_target target{6, 1000};
    auto& [ps, node, a] = target;

    const auto json_path = temp_path(".json");
    const auto plot = temp_path("-plot");
    auto args = common_flags(node, 6, 2);
    args.insert(args.end(), {"--mix=browse:50,hot-item:25,checkout:25", "--users=150",
                             "--think=50ms", "--duration=5s", "--connections=24", "--threads=2",
                             "--source-addrs=3", "--retry-rate=0.5", "--decline-rate=0.2",
                             "--json=" + json_path, "--plot=" + plot});
    const auto r = run_load(args);
    REQUIRE_MESSAGE(r.code == 0, show(r));
    // Every shopper had its own bucket: nothing was refused for the rate.
    CHECK(a.metric("surge_http_rate_limited_total") == 0);
    CHECK_MESSAGE(r.out.find("PASS  cross-check") != std::string::npos, show(r));
    CHECK(r.out.find("FAIL") == std::string::npos);
    CHECK(r.out.find("p99.9") != std::string::npos);
    CHECK(r.err.find("file descriptors: soft limit") != std::string::npos);

    const auto report = read_report(json_path);
    CHECK(int_of(report, "requests") > 100);
    CHECK(int_of(report, "answered") == int_of(report, "requests"));
    const auto& check = member(report, "check");
    CHECK(std::get<bool>(member(check, "performed").get()));
    CHECK(std::get<bool>(member(check, "passed").get()));
    CHECK(std::get<bool>(member(check, "live_holds_checked").get()));
    const auto& out = member(report, "outcomes");
    CHECK(int_of(out, "held") > 0);
    CHECK(int_of(out, "orders") > 0);
    CHECK(int_of(out, "declines") > 0);
    CHECK(int_of(out, "idempotent_replays") > 0);
    CHECK(int_of(out, "replay_mismatch") == 0);
    CHECK(int_of(out, "pages") + int_of(out, "not_modified") > 0);
    const auto& latency = member(report, "latency");
    for (const char* kind : {"listing", "page", "product", "cart", "add_item", "checkout"}) {
      CAPTURE(kind);
      CHECK(int_of(member(latency, kind), "count") > 0);
    }
    CHECK(array_of(report, "series").size() >= 4);
    check_skus_against_admin(a, report);

    CHECK(std::filesystem::exists(plot + ".tsv"));
    CHECK(std::filesystem::exists(plot + ".gp"));
    for (const auto& f : {json_path, plot + ".tsv", plot + ".gp", plot + "-latency.svg",
                          plot + "-throughput.svg"}) {
      std::filesystem::remove(f);
    }
  }

  TEST_CASE("tiny stock: sold out happens and the counts stay consistent") {
    load_target target{2, 5};
    auto& [ps, node, a] = target;

    const auto json_path = temp_path(".json");
    auto args = common_flags(node, 2, 2);
    args.insert(args.end(),
                {"--mix=hot-item:50,checkout:50", "--rate=150", "--think=20ms", "--duration=3s",
                 "--connections=16", "--decline-rate=0", "--json=" + json_path});
    const auto r = run_load(args);
    REQUIRE_MESSAGE(r.code == 0, show(r));
    const auto report = read_report(json_path);
    const auto& out = member(report, "outcomes");
    CHECK(int_of(out, "sold_out") > 0);
    CHECK(int_of(out, "held") <= 10);
    CHECK(std::get<bool>(member(member(report, "check"), "passed").get()));
    int64_t units = 0;
    for (const auto& s : array_of(report, "skus")) {
      units += int_of(s, "live_holds") + int_of(s, "confirmed_units");
      CHECK(int_of(s, "on_hand") == 5);
    }
    CHECK(units <= 10);
    check_skus_against_admin(a, report);
    std::filesystem::remove(json_path);

    // A cross-check that cannot reach the admin API fails the run (exit 1).
    auto bad = common_flags(node, 2, 2);
    bad[1] = "--admin=http://127.0.0.1:" + std::to_string(pick_free_port());
    bad.insert(bad.end(), {"--scenario=hot-item", "--users=5", "--think=50ms", "--duration=1s"});
    const auto f = run_load(bad);
    CHECK_MESSAGE(f.code == 1, show(f));
    CHECK(f.out.find("FAIL  cross-check could not run") != std::string::npos);
  }

  TEST_CASE("no node at the target: exit 3; a remote target: exit 2") {
    const auto port = std::to_string(pick_free_port());
    const auto r = run_load({"--target=http://127.0.0.1:" + port, "--no-check", "--users=3",
                             "--think=100ms", "--duration=1s", "--quiet"});
    CHECK_MESSAGE(r.code == 3, show(r));
    CHECK(r.err.find("no request got an answer") != std::string::npos);
    const auto u = run_load({"--target=http://192.0.2.1:8080"});
    CHECK_MESSAGE(u.code == 2, show(u));
    CHECK(u.err.find("only loopback targets are allowed") != std::string::npos);
  }
}

// Benchmark row 14's load (scripts/benchmarks.sh, step capture), small: checkout alone against a
// node that authorises, confirms the holds, then captures, with surge-paysim's 20 ms per call.
// A few seconds (a paysim, a node, a 2 s run); ctest load_capture, 60 s at most.
TEST_SUITE("load_capture") {
  TEST_CASE("checkout alone against payments.capture=after_confirm: every order confirmed and "
            "captured") {
    // Limits off, as in the benchmark: eight shoppers with no think time write faster than
    // limits.ip_rate allows one address, and a 429 here would measure the machine, not capture.
    load_target target{
        6, 100000, {"--latency-ms=20"}, {"--payments.capture=after_confirm", "--limits.ip_rate=0"}};
    auto& [ps, node, a] = target;

    const auto json_path = temp_path(".json");
    auto args = common_flags(node, 6, 3);
    args.insert(args.end(), {"--scenario=checkout", "--users=8", "--connections=8", "--think=0",
                             "--decline-rate=0", "--retry-rate=0", "--zipf=0", "--seed=1",
                             "--duration=2s", "--json=" + json_path});
    const auto r = run_load(args, 45s);
    REQUIRE_MESSAGE(r.code == 0, show(r));
    const auto report = read_report(json_path);
    CHECK(str_of(report, "scenario") == "checkout");
    CHECK(int_of(report, "errors") == 0);
    CHECK(int_of(report, "unsent") == 0);
    CHECK(std::get<bool>(member(member(report, "check"), "passed").get()));
    const auto& latency = member(report, "latency");
    for (const char* kind : {"listing", "page", "product", "checkout_retry"}) {
      CAPTURE(kind);
      CHECK(latency.find(kind) == nullptr);
    }
    const auto& checkout = member(latency, "checkout");
    const auto& out = member(report, "outcomes");
    const auto orders = int_of(out, "orders");
    CHECK(orders > 0);
    CHECK(int_of(checkout, "count") == orders); // every checkout a 201
    CHECK(int_of(checkout, "errors") == 0);
    CHECK(int_of(out, "declines") == 0);
    CHECK(int_of(out, "idempotent_replays") == 0);
    CHECK(int_of(out, "checkout_unknown") == 0);
    // Two gateway calls of 20 ms each on the checkout's path.
    const auto& p50 = member(checkout, "p50_ms");
    REQUIRE(p50.is_number());
    CHECK((p50.is_int() ? static_cast<double>(std::get<int64_t>(p50.get()))
                        : std::get<double>(p50.get())) >= 40.0);
    check_skus_against_admin(a, report);

    // One approved (captured) charge per order; no authorisation left open.
    int64_t approved = 0;
    for (const auto& c : ps.charges()) {
      CAPTURE(c.key);
      CHECK(c.status == "approved");
      approved += c.status == "approved" ? 1 : 0;
    }
    CHECK(approved == orders);
    std::filesystem::remove(json_path);
  }
}

} // namespace surge::itest
