// Gateways over TLS: the real surge-paysim behind its TLS front, certificates from a private CA
// made here (test_certs: scripts/cluster-certs.sh, the openssl CLI), spoken to through
// payment_router exactly as a node does (make_gateway with payments.ca_file).

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "paysim_process.hpp"
#include "router_test_support.hpp"
#include "surge/net/payments/payment_router.hpp"

using namespace surge::ptest::router_names;
using surge::ptest::paysim_process;
using surge::ptest::refund;
using surge::ptest::test_certs;

namespace {

std::unique_ptr<payment_router>
make_router(const std::string& setting, const std::string& ca_file,
            router_options o = surge::ptest::paysim_router_options()) {
  auto parsed = parse_gateways(setting);
  REQUIRE(std::holds_alternative<std::vector<gateway_spec>>(parsed));
  std::vector<std::unique_ptr<gateway>> gws;
  for (const auto& spec : std::get<std::vector<gateway_spec>>(parsed)) {
    REQUIRE(spec.tls);
    gws.push_back(make_gateway(spec, {ca_file}));
  }
  return std::make_unique<payment_router>(std::move(gws), o);
}

charge_request request(std::string key, std::string token, int64_t amount = 2500) {
  return {std::move(key), "order-tls", amount, "EUR", std::move(token), {}};
}

charge_result charge(payment_router& r, charge_request req) {
  auto p = std::make_shared<std::promise<charge_result>>();
  auto f = p->get_future();
  r.charge(std::move(req), [p](charge_result x) { p->set_value(std::move(x)); });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

std::size_t approved(const std::vector<surge::ptest::logged_charge>& log, const std::string& key) {
  return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const auto& e) {
    return e.key == key && e.status == "approved";
  }));
}

} // namespace

TEST_SUITE("payments") {

  TEST_CASE("https gateways: charge, timeout + lookup, failover and refund over verified TLS") {
    test_certs certs;
    certs.make("paysim");
    for (const std::string kind : {"form", "json"}) {
      for (const std::string host : {"127.0.0.1", "localhost"}) { // IP and DNS subjectAltName
        CAPTURE(kind);
        CAPTURE(host);
        auto flags = certs.paysim_flags("paysim");
        flags.push_back("--slow-ms=1500");
        paysim_process sim{{"alpha", "beta"}, flags};
        REQUIRE(sim.tls());
        auto o = surge::ptest::paysim_router_options();
        o.timeout = 400ms;
        auto r = make_router(sim.setting(kind, host), certs.ca(), o);

        // Approved on the first gateway; a repeat of the key (on a kept-alive connection) is
        // the same charge.
        const auto ok = charge(*r, request("k-tls-ok", "tok_ok"));
        CHECK(ok.status == charge_status::approved);
        CHECK(ok.gateway == "alpha");
        CHECK(charge(*r, request("k-tls-ok", "tok_ok")).charge_id == ok.charge_id);

        // A timeout is resolved by a lookup over TLS: one charge.
        const auto slow = charge(*r, request("k-tls-slow", "tok_slow"));
        CHECK(slow.status == charge_status::approved);
        CHECK(slow.message.find("lookup") != std::string::npos);

        // The first gateway down: the second approves.
        const auto moved = charge(*r, request("k-tls-down", "tok_down_first"));
        CHECK(moved.status == charge_status::approved);
        CHECK(moved.gateway == "beta");

        // A declined card is a definitive no over TLS too.
        CHECK(charge(*r, request("k-tls-no", "tok_decline")).status == charge_status::declined);

        // A refund of the first charge, to the gateway that took it.
        const auto back =
            refund(*r, {"k-tls-ok:refund:1", "k-tls-ok", ok.gateway, ok.charge_id, 1000, "EUR"});
        CHECK_MESSAGE(back.status == refund_status::refunded, back.message);
        CHECK_FALSE(back.refund_id.empty());

        const auto log = sim.charges();
        CHECK(approved(log, "k-tls-ok") == 1);
        CHECK(approved(log, "k-tls-slow") == 1);
        CHECK(approved(log, "k-tls-down") == 1);
        const auto refunds = sim.refunds();
        REQUIRE(refunds.size() == 1);
        CHECK(refunds[0].status == "refunded");
        CHECK(refunds[0].amount_cents == 1000);

        // 3-D Secure over TLS: the shopper's page is https, at the address the client used.
        const auto specs =
            std::get<std::vector<gateway_spec>>(parse_gateways(sim.setting(kind, host)));
        const auto gw = make_gateway(specs.at(0), {certs.ca()});
        const auto sca = gw->charge({"k-tls-3ds", "order-tls", 1000, "EUR", "tok_3ds", {}}, 2s);
        CHECK_MESSAGE(sca.kind == attempt_kind::requires_action, sca.message);
        CHECK(sca.action_url ==
              "https://" + host + ":" + std::to_string(sim.port(0)) + "/3ds/" + sca.charge_id);
      }
    }
  }

  TEST_CASE("https gateways: a certificate of another CA, or for another name, is refused") {
    test_certs good;
    test_certs rogue;
    good.make("paysim");
    good.make("elsewhere", "10.9.9.9,pay.example"); // the right CA, the wrong names
    rogue.make("paysim");                           // the right names, another CA

    struct row {
      const char* name;
      const test_certs* served_from; ///< whose certificate paysim shows
      std::string cert;
      std::string why; ///< in the charge's message
    };
    for (const row& c :
         {row{"another CA", &rogue, "paysim", "unable to get local issuer certificate"},
          row{"another name", &good, "elsewhere", "the certificate is not for 127.0.0.1"}}) {
      CAPTURE(c.name);
      paysim_process sim{{"alpha", "beta"}, c.served_from->paysim_flags(c.cert)};
      auto r = make_router(sim.setting("form"), good.ca());
      const auto res = charge(*r, request("k-refused", "tok_ok"));
      // Nothing was sent to either gateway: the charge failed, it is not unknown.
      CHECK(res.status == charge_status::failed);
      CHECK_MESSAGE(res.message.find(c.why) != std::string::npos, res.message);
      CHECK(sim.charges().empty());
    }

    // Plain HTTP spoken to a TLS gateway, or TLS to a plain one, charges nothing either.
    paysim_process plain{{"alpha"}};
    auto to_plain =
        make_router("alpha=https://127.0.0.1:" + std::to_string(plain.port(0)), good.ca());
    CHECK(charge(*to_plain, request("k-plain", "tok_ok")).status == charge_status::failed);
    CHECK(plain.charges().empty());
  }

  TEST_CASE("payments.ca_file: check_tls names what is wrong") {
    test_certs dir;
    dir.make("paysim");
    CHECK(check_tls({dir.ca()}).empty());
    CHECK(check_tls({}).empty()); // the system's trust store (may be empty: still usable)

    const auto missing = check_tls({dir.dir() + "/nope.pem"});
    CHECK(missing.find("nope.pem") != std::string::npos);
    CHECK(missing.find("not a readable file") != std::string::npos);

    const std::string junk = dir.dir() + "/junk.pem";
    std::ofstream{junk} << "not a certificate\n";
    const auto bad = check_tls({junk});
    CHECK(bad.find("junk.pem") != std::string::npos);
    CHECK(bad.find("no usable PEM certificate") != std::string::npos);

    CHECK_FALSE(check_tls({dir.dir()}).empty()); // a directory
    CHECK_THROWS_AS(
        make_gateway(gateway_spec{"a", gateway_kind::form, "127.0.0.1", 1, true}, {junk}),
        std::runtime_error);
  }

  TEST_CASE("paysim: --tls-cert and --tls-key go together and must be usable") {
    test_certs dir;
    dir.make("paysim");
    const auto flags = dir.paysim_flags("paysim");
    const auto one = surge::ptest::run_paysim({"--gateways=a=127.0.0.1:0", flags[0]});
    CHECK(one.status == 2);
    CHECK(one.output.find("go together") != std::string::npos);
    const auto wrong = surge::ptest::run_paysim(
        {"--gateways=a=127.0.0.1:0", "--tls-cert=" + dir.dir() + "/missing.pem", flags[1]});
    CHECK(wrong.status == 1);
    CHECK(wrong.output.find("missing.pem") != std::string::npos);
  }

} // TEST_SUITE
