// Authorise first, then capture or void, against the real surge-paysim through payment_router:
// both wire styles, the states the gateway's log shows, idempotency by key, a slow capture
// resolved by a retry of its key, and an outage.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "paysim_process.hpp"
#include "router_test_support.hpp"
#include "surge/net/payments/payment_router.hpp"

using namespace surge::ptest::router_names;
using surge::actors::funds;
using surge::ptest::make_router;
using surge::ptest::paysim_process;
using surge::ptest::refund;

namespace {

/// An authorisation (capture false) of `amount` EUR under `key`.
charge_request authorisation(std::string key, std::string token, int64_t amount = 4200) {
  charge_request r{std::move(key), "order-auth", amount, "EUR", std::move(token), {}};
  r.capture = false;
  return r;
}

/// `start(callback)` and wait (bounded) for the callback's Result.
template <class Result, class Start>
Result wait_for(Start start) {
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  start([p](Result x) { p->set_value(std::move(x)); });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

charge_result charge(payment_router& r, charge_request req) {
  return wait_for<charge_result>([&](auto done) { r.charge(std::move(req), done); });
}

charge_result lookup(payment_router& r, const std::string& key) {
  return wait_for<charge_result>([&](auto done) { r.lookup(key, done); });
}

/// The capture (or void) of the approved authorisation `a` of `charge_key` under `key`.
settle_request settle_of(const charge_result& a, const std::string& charge_key, std::string key,
                         int64_t amount = 4200) {
  return {std::move(key), charge_key, a.gateway, a.charge_id, amount, "EUR", {}};
}

settle_result capture(payment_router& r, settle_request req) {
  return wait_for<settle_result>([&](auto done) { r.capture(std::move(req), done); });
}

settle_result void_it(payment_router& r, settle_request req) {
  return wait_for<settle_result>([&](auto done) { r.void_authorization(std::move(req), done); });
}

/// The status the gateways' log shows for `key` ("" when it has none).
std::string logged(const paysim_process& sim, const std::string& key) {
  std::string out;
  for (const auto& c : sim.charges()) {
    if (c.key == key && c.status != "failed") {
      CHECK_MESSAGE(out.empty(), "two records of " << key);
      out = c.status;
    }
  }
  return out;
}

} // namespace

TEST_SUITE("payments") {

  TEST_CASE(
      "authorise, then capture: the money is taken once; a captured charge cannot be voided") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind));

      const auto a = charge(*r, authorisation("k-auth", "tok_ok"));
      REQUIRE(a.status == charge_status::approved);
      CHECK(a.money == funds::authorized);
      CHECK(a.gateway == "alpha");
      CHECK(logged(sim, "k-auth") == "authorized");
      CHECK(lookup(*r, "k-auth").money == funds::authorized);
      // Nothing to refund before the capture.
      CHECK(refund(*r, {"k-auth:rf", "k-auth", a.gateway, a.charge_id, 100, "EUR"}).status ==
            refund_status::rejected);

      // Only the whole authorised amount is captured.
      const auto partial = capture(*r, settle_of(a, "k-auth", "k-auth:capture-part", 4000));
      CHECK(partial.status == settle_status::rejected);
      CHECK(logged(sim, "k-auth") == "authorized");

      const auto c = capture(*r, settle_of(a, "k-auth", "k-auth:capture"));
      CHECK_MESSAGE(c.status == settle_status::done, c.message);
      CHECK(logged(sim, "k-auth") == "approved");
      CHECK(lookup(*r, "k-auth").money == funds::captured);
      // The same key again: done again, nothing more taken. Another key: refused.
      CHECK(capture(*r, settle_of(a, "k-auth", "k-auth:capture")).status == settle_status::done);
      CHECK(capture(*r, settle_of(a, "k-auth", "k-auth:capture-2")).status ==
            settle_status::rejected);
      // A captured charge is not voided; it is refunded.
      const auto v = void_it(*r, settle_of(a, "k-auth", "k-auth:void"));
      CHECK(v.status == settle_status::rejected);
      CHECK(v.message.find("captured") != std::string::npos);
      CHECK(refund(*r, {"k-auth:rf2", "k-auth", a.gateway, a.charge_id, 4200, "EUR"}).status ==
            refund_status::refunded);

      // A charge taken at once (capture true) is no authorisation either.
      charge_request at_once{"k-now", "order-now", 1000, "EUR", "tok_ok", {}};
      const auto now = charge(*r, at_once);
      CHECK(now.money == funds::captured);
      CHECK(capture(*r, settle_of(now, "k-now", "k-now:capture", 1000)).status ==
            settle_status::rejected);
      CHECK(logged(sim, "k-now") == "approved");
    }
  }

  TEST_CASE("authorise, then void: nothing is taken, and a voided authorisation is never "
            "captured") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind));
      // Through the second gateway: settling goes to the one that approved.
      const auto a = charge(*r, authorisation("k-void", "tok_down_first"));
      REQUIRE(a.status == charge_status::approved);
      CHECK(a.gateway == "beta");
      CHECK(a.money == funds::authorized);

      const auto v = void_it(*r, settle_of(a, "k-void", "k-void:void"));
      CHECK_MESSAGE(v.status == settle_status::done, v.message);
      CHECK(logged(sim, "k-void") == "voided");
      CHECK(lookup(*r, "k-void").money == funds::voided);
      // Voiding again (any key) is done again; capturing is refused; so is a refund.
      CHECK(void_it(*r, settle_of(a, "k-void", "k-void:void")).status == settle_status::done);
      CHECK(void_it(*r, settle_of(a, "k-void", "k-void:void-2")).status == settle_status::done);
      CHECK(capture(*r, settle_of(a, "k-void", "k-void:capture")).status ==
            settle_status::rejected);
      CHECK(refund(*r, {"k-void:rf", "k-void", a.gateway, a.charge_id, 100, "EUR"}).status ==
            refund_status::rejected);
      CHECK(logged(sim, "k-void") == "voided");

      // An unknown authorisation, or a gateway that is not configured.
      auto ghost = settle_of(a, "k-none", "k-none:capture");
      ghost.charge_id = "ch_beta_999999";
      CHECK(capture(*r, ghost).status == settle_status::rejected);
      ghost.gateway = "gamma";
      CHECK(capture(*r, ghost).status == settle_status::unknown);
    }
  }

  TEST_CASE("a slow capture: the timeout is unknown, the key's retry captures once") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      // tok_slow: the authorisation and its first capture are answered after 1.5 s.
      paysim_process sim{{"alpha", "beta"}, {"--slow-ms=1500"}};
      auto o = surge::ptest::paysim_router_options();
      o.timeout = 300ms;
      auto r = make_router(sim.setting(kind), o);
      const auto a = charge(*r, authorisation("k-slow", "tok_slow"));
      REQUIRE(a.status == charge_status::approved);
      CHECK(a.money == funds::authorized); // found by lookup
      const auto c = capture(*r, settle_of(a, "k-slow", "k-slow:capture"));
      CHECK_MESSAGE(c.status == settle_status::done, c.message);
      CHECK(c.message.find("on try") != std::string::npos); // not on the first call
      CHECK(logged(sim, "k-slow") == "approved");
    }
  }

  TEST_CASE("capture while the gateway is down: unknown, then done once it is back") {
    paysim_process sim{{"alpha", "beta"}};
    auto o = surge::ptest::paysim_router_options();
    o.refund_tries = 3;
    auto r = make_router(sim.setting("form"), o);
    const auto a = charge(*r, authorisation("k-down", "tok_ok"));
    REQUIRE(a.money == funds::authorized);
    sim.set_down(0, true);
    const auto during = capture(*r, settle_of(a, "k-down", "k-down:capture"));
    CHECK(during.status == settle_status::unknown);
    CHECK_MESSAGE(during.message.find("not captured") != std::string::npos, during.message);
    CHECK(logged(sim, "k-down") == "authorized");
    sim.set_down(0, false);
    CHECK(capture(*r, settle_of(a, "k-down", "k-down:capture")).status == settle_status::done);
    CHECK(logged(sim, "k-down") == "approved");
  }

} // TEST_SUITE
