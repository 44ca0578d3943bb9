// surge-load --scenario=drop end to end: the real binary against a real surge-node child process
// that verifies customers (auth.jwt_secret; surge-load signs each shopper's token with the same
// secret) and pays through a real surge-paysim. A small drop (200 shoppers, a fifth of them
// bots, 50 units) must sell out without oversell, every shopper must end knowing its outcome,
// and the JSON report must agree with the admin API's stock and the sale's stats.

#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "api.hpp"
#include "paysim_process.hpp"
#include "run_program.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;

const std::string drop_secret = "surge-load-drop-test-secret-0123456789abcdef";

std::string temp_path(const std::string& what) {
  return (std::filesystem::temp_directory_path() /
          ("surge_drop_test_" + std::to_string(::getpid()) + what))
      .string();
}

node_config drop_node(const ptest::paysim_process& ps) {
  node_config cfg;
  cfg.limits = true; // each shopper has its own X-Forwarded-For address
  cfg.extra.push_back("--http.trusted_proxies=127.0.0.0/8");
  cfg.extra.push_back("--auth.jwt_secret=" + drop_secret);
  cfg.extra.push_back(
      "--payments.gateways=alpha=form+http://127.0.0.1:" + std::to_string(ps.port(0)) +
      ",beta=json+http://127.0.0.1:" + std::to_string(ps.port(1)));
  return cfg;
}

bool bool_of(const json::value& obj, std::string_view key) {
  const auto& m = member(obj, key);
  REQUIRE(m.is_bool());
  return std::get<bool>(m.get());
}

} // namespace

TEST_SUITE("load_drop") {
  TEST_CASE("a small drop sells out exactly, tells every shopper, and bots gain nothing") {
    ptest::paysim_process ps{{"alpha", "beta"}};
    node_process node{drop_node(ps)};
    api a{node};

    const auto secret_file = temp_path(".secret");
    {
      std::ofstream f{secret_file};
      f << drop_secret << "\n";
    }
    const auto json_path = temp_path(".json");
    const auto plot = temp_path("-plot");
    // Bounded: the run ends at the start + 4 s + 16 s at the latest (about 23 s after set-up),
    // or once every shopper knows; then at most --timeout for requests in flight.
    const std::vector<std::string> argv{
        SURGE_LOAD_BINARY,
        "--scenario=drop",
        "--target=http://127.0.0.1:" + std::to_string(node.http_port()),
        "--admin=http://127.0.0.1:" + std::to_string(node.admin_port()),
        "--customer-secret-file=" + secret_file,
        "--users=200",
        "--units=50",
        "--bots=0.2",
        "--lead=3s",
        "--arrive-before=3s",
        "--arrive-after=4s",
        "--drain=16s",
        "--pass-ttl=60s",
        "--connections=32",
        "--timeout=5s",
        "--seed=7",
        "--quiet",
        "--json=" + json_path,
        "--plot=" + plot};
    const auto r = surge::test::run_program(argv, std::nullopt, 90s);
    const auto shown =
        "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
    REQUIRE_MESSAGE(!r.timed_out, shown);
    MESSAGE(r.out); // the drop's report, for the log
    CHECK_MESSAGE(r.code == 0, shown);
    CHECK_MESSAGE(r.out.find("PASS  drop") != std::string::npos, shown);

    const auto text = surge::test::read_file(json_path);
    REQUIRE_MESSAGE(!text.empty(), shown);
    const auto report = parse_json(text);
    CHECK(str_of(report, "scenario") == "drop");
    CHECK(bool_of(report, "passed"));
    const auto& d = member(report, "drop");
    CHECK(str_of(d, "error").empty());
    CHECK(int_of(d, "users") == 200);
    CHECK(int_of(d, "bots") == 40);
    CHECK(int_of(d, "oversell") == 0);

    // Every shopper ended knowing; 200 shoppers for 50 units: every unit sold.
    const auto& s = member(d, "shoppers");
    CHECK(int_of(s, "joined") == 200);
    CHECK(int_of(s, "undecided") == 0);
    CHECK(int_of(s, "failed") == 0);
    CHECK(int_of(s, "bought") + int_of(s, "sold_out") + int_of(s, "expired") == 200);
    CHECK(int_of(s, "bought") == 50);
    CHECK(int_of(s, "sold_out") > 0);
    CHECK(int_of(s, "admitted") >= 50);
    CHECK(int_of(s, "checkouts_unanswered") == 0);
    CHECK(int_of(s, "pass_refused") == 0);

    // Bots without a pass: refused, never held.
    const auto& b = member(d, "bots_without_pass");
    CHECK(int_of(b, "holds") == 0);
    CHECK(int_of(b, "refused") + int_of(b, "not_started") > 0);

    // The report's stock is the admin API's, read again here; sold == units sold to shoppers.
    int64_t sold = 0;
    for (const auto& sku : array_of(d, "skus")) {
      const auto name = str_of(sku, "sku");
      CAPTURE(name);
      const auto st = a.stock(name);
      CHECK(int_of(st, "on_hand") == int_of(sku, "stock"));
      CHECK(int_of(st, "held") + int_of(st, "sold") <= int_of(st, "on_hand"));
      CHECK(int_of(st, "sold") == int_of(sku, "sold"));
      CHECK(int_of(st, "sold") == int_of(sku, "confirmed_units"));
      sold += int_of(st, "sold");
    }
    CHECK(sold == 50);
    const auto sale = a.admin().get("/admin/v1/sales/" + str_of(d, "sale_id"));
    REQUIRE(sale.status == 200);
    CHECK(int_of(member(parse_json(sale.body), "stats"), "sold") == 50);

    // Sold out was noticed and told to everyone waiting then.
    CHECK(!member(d, "last_sold_s").is_null());
    CHECK(int_of(d, "notify_missed") == 0);
    CHECK(!member(d, "notify_s").is_null());
    CHECK(!member(member(d, "queue"), "sold_out_at").is_null());
    CHECK(!str_of(member(d, "queue"), "lottery_seed").empty());
    CHECK(int_of(member(member(d, "latency"), "checkout"), "count") >= 50);

    CHECK(std::filesystem::exists(plot + ".tsv"));
    CHECK(std::filesystem::exists(plot + "-skus.tsv"));
    for (const auto& f : {secret_file, json_path, plot + ".tsv", plot + "-skus.tsv", plot + ".gp",
                          plot + "-queue.svg"}) {
      std::filesystem::remove(f);
    }
  }
}

} // namespace surge::itest
