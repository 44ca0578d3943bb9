// surge-load's flag parsing: defaults, accepted forms and every error a user can make.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "options.hpp"

namespace surge::load {

namespace {

/// The usage_error message of parse_options(args), or "" when it parses.
std::string error_of(const std::vector<std::string>& args) {
  try {
    parse_options(args);
  } catch (const usage_error& e) {
    return e.what();
  }
  return {};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("load_unit") {
  TEST_CASE("defaults: the demo catalog, a closed mix, loopback 8080/9090") {
    const auto o = parse_options({});
    REQUIRE(o.targets.size() == 1);
    CHECK(o.targets[0].address == "127.0.0.1");
    CHECK(o.targets[0].port == 8080);
    CHECK(o.admin.port == 9090);
    CHECK(o.users == 100u);
    CHECK(!o.rate);
    CHECK(o.scenario_text == "mix");
    CHECK(o.weights[0] == 70);
    CHECK(o.weights[1] == 20);
    CHECK(o.weights[2] == 10);
    CHECK(o.duration == std::chrono::seconds{30});
    CHECK(o.think == std::chrono::seconds{1});
    CHECK(o.holds_ttl == std::chrono::seconds{600});
    const auto skus = catalog_skus(o);
    REQUIRE(skus.size() == 12);
    CHECK(skus[0] == "PS5-BF");
  }

  TEST_CASE("accepted forms") {
    const auto o = parse_options({"--target=http://localhost:18080,http://127.0.0.2:18081/",
                                  "--admin=http://127.0.0.1:19090",
                                  "--mix=browse:1,checkout:3",
                                  "--rate=250.5",
                                  "--duration=1500ms",
                                  "--think=0",
                                  "--connections=10",
                                  "--skus=1000",
                                  "--sku-prefix=LT-",
                                  "--hot-skus=5",
                                  "--zipf=0",
                                  "--seed=9",
                                  "--timeout=2s",
                                  "--threads=2",
                                  "--source-addrs=4",
                                  "--holds-ttl=10m",
                                  "--max-requests=5",
                                  "--no-check",
                                  "--quiet",
                                  "--json=r.json",
                                  "--plot=p"});
    REQUIRE(o.targets.size() == 2);
    CHECK(o.targets[0].address == "127.0.0.1");
    CHECK(o.targets[1].address == "127.0.0.2");
    CHECK(o.targets[1].port == 18081);
    CHECK(o.rate == doctest::Approx(250.5));
    CHECK(!o.users);
    CHECK(o.weights[0] == 1);
    CHECK(o.weights[1] == 0);
    CHECK(o.weights[2] == 3);
    CHECK(o.duration == std::chrono::milliseconds{1500});
    CHECK(o.think.count() == 0);
    CHECK(o.holds_ttl == std::chrono::minutes{10});
    CHECK(!o.check);
    CHECK(o.quiet);
    const auto skus = catalog_skus(o);
    REQUIRE(skus.size() == 1000);
    CHECK(skus[0] == "LT-1");
    CHECK(skus[999] == "LT-1000");
    CHECK(parse_options({"--scenario=hot-item"}).weights[1] == 1);
    CHECK(parse_options({"--help"}).help);
  }

  TEST_CASE("checkout alone, as benchmark row 14 runs it (scripts/benchmarks.sh, step capture)") {
    const auto o =
        parse_options({"--scenario=checkout", "--users=64", "--connections=64", "--think=0",
                       "--decline-rate=0", "--retry-rate=0", "--skus=50", "--sku-prefix=CAP",
                       "--zipf=0", "--seed=1", "--duration=10s", "--target=http://127.0.0.1:18080",
                       "--admin=http://127.0.0.1:19090", "--json=capture.json", "--plot=capture"});
    CHECK(o.scenario_text == "checkout");
    CHECK(!o.drop);
    // Every journey is a checkout: cart, 1-3 lines, checkout with tok_ok, never resubmitted.
    CHECK(o.weights[static_cast<int>(scenario::browse)] == 0);
    CHECK(o.weights[static_cast<int>(scenario::hot_item)] == 0);
    CHECK(o.weights[static_cast<int>(scenario::checkout)] == 1);
    CHECK(o.users == 64u);
    CHECK(!o.rate);
    CHECK(o.connections == 64u);
    CHECK(o.think.count() == 0);
    CHECK(o.decline_rate == 0);
    CHECK(o.retry_rate == 0);
    CHECK(o.zipf == 0);
    CHECK(o.seed == 1u);
    CHECK(o.check);
    const auto skus = catalog_skus(o);
    REQUIRE(skus.size() == 50);
    CHECK(skus.front() == "CAP1");
    CHECK(skus.back() == "CAP50");
    // A checkout run is not a mix and takes none of the drop's flags.
    CHECK(contains(error_of({"--scenario=checkout", "--mix=checkout:1"}), "--scenario=mix"));
    CHECK(contains(error_of({"--scenario=checkout", "--units=10"}), "--scenario=drop"));
  }

  TEST_CASE("only loopback targets") {
    CHECK(contains(error_of({"--target=http://10.0.0.1:8080"}), "only loopback"));
    CHECK(contains(error_of({"--target=http://example.com"}), "only loopback"));
    CHECK(contains(error_of({"--target=http://127.0.0.1:8080,http://192.168.1.2:80"}),
                   "only loopback"));
    CHECK(contains(error_of({"--admin=http://8.8.8.8:9090"}), "--admin"));
    CHECK(contains(error_of({"--target=https://127.0.0.1"}), "http://host"));
    CHECK(contains(error_of({"--target=http://127.0.0.1:0"}), "bad port"));
    CHECK(contains(error_of({"--target=http://127.0.0.1:8080/api"}), "without a path"));
    CHECK(contains(error_of({"--target=http://[::1]:8080"}), "--target"));
  }

  TEST_CASE("bad flags name the flag") {
    CHECK(contains(error_of({"--users=10", "--rate=5"}), "exclude each other"));
    CHECK(contains(error_of({"--users=0"}), "--users"));
    CHECK(contains(error_of({"--users=ten"}), "--users"));
    CHECK(contains(error_of({"--rate=-1"}), "--rate"));
    CHECK(contains(error_of({"--max-users=5"}), "open model"));
    CHECK(contains(error_of({"--duration=0"}), "--duration"));
    CHECK(contains(error_of({"--duration=5x"}), "--duration"));
    CHECK(contains(error_of({"--think=-1s"}), "--think"));
    CHECK(contains(error_of({"--timeout=0"}), "--timeout"));
    CHECK(contains(error_of({"--threads=3"}), "--threads"));
    CHECK(contains(error_of({"--connections=0"}), "--connections"));
    CHECK(contains(error_of({"--skus=13"}), "--sku-prefix"));
    CHECK(contains(error_of({"--hot-skus=20"}), "--hot-skus"));
    CHECK(contains(error_of({"--sku-prefix=a/b", "--skus=3"}), "--sku-prefix"));
    CHECK(contains(error_of({"--zipf=abc"}), "--zipf"));
    CHECK(contains(error_of({"--decline-rate=1.5"}), "--decline-rate"));
    CHECK(contains(error_of({"--source-addrs=300"}), "--source-addrs"));
    CHECK(contains(error_of({"--scenario=shop"}), "--scenario"));
    CHECK(contains(error_of({"--mix=browse:70,foo:30"}), "--mix"));
    CHECK(contains(error_of({"--mix=browse:0"}), "all be 0"));
    CHECK(contains(error_of({"--mix=browse:1,browse:2"}), "twice"));
    CHECK(contains(error_of({"--scenario=browse", "--mix=browse:1"}), "--scenario=mix"));
    CHECK(contains(error_of({"--bogus=1"}), "unknown flag --bogus"));
    CHECK(contains(error_of({"--users"}), "needs a value"));
    CHECK(contains(error_of({"--no-check=yes"}), "takes no value"));
    CHECK(contains(error_of({"--users=1", "--users=2"}), "given twice"));
    CHECK(contains(error_of({"extra"}), "unexpected argument"));
  }

  TEST_CASE("durations") {
    CHECK(parse_duration("d", "30s") == std::chrono::seconds{30});
    CHECK(parse_duration("d", "30") == std::chrono::seconds{30});
    CHECK(parse_duration("d", "1.5") == std::chrono::milliseconds{1500});
    CHECK(parse_duration("d", "250ms") == std::chrono::milliseconds{250});
    CHECK(parse_duration("d", "2m") == std::chrono::minutes{2});
    CHECK(parse_duration("d", "1h") == std::chrono::hours{1});
    CHECK_THROWS_AS(parse_duration("d", "25h"), usage_error);
    CHECK_THROWS_AS(parse_duration("d", ""), usage_error);
    CHECK_THROWS_AS(parse_duration("d", "ms"), usage_error);
  }
}

} // namespace surge::load
