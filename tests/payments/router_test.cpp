#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "paysim_process.hpp"
#include "router_test_support.hpp"
#include "surge/net/payments/payment_router.hpp"

using namespace surge::ptest::router_names;
using surge::ptest::logged_charge;
using surge::ptest::logged_refund;
using surge::ptest::make_router;
using surge::ptest::paysim_process;
using surge::ptest::refund;
using steady = std::chrono::steady_clock;

namespace {

/// paysim_router_options() with `max_tries` charge calls per gateway and a breaker that opens after
/// `threshold` failures for `cooldown`.
router_options breaker_options(int max_tries, int threshold, std::chrono::milliseconds cooldown) {
  auto o = surge::ptest::paysim_router_options();
  o.max_tries = max_tries;
  o.breaker_threshold = threshold;
  o.breaker_cooldown = cooldown;
  return o;
}

charge_request request(std::string key, std::string token, int64_t amount = 1999) {
  return {std::move(key), "order-" + std::to_string(amount), amount, "USD", std::move(token), {}};
}

/// charge() and wait (bounded) for the callback.
charge_result charge(payment_router& r, charge_request req) {
  auto p = std::make_shared<std::promise<charge_result>>();
  auto f = p->get_future();
  r.charge(std::move(req), [p](charge_result x) { p->set_value(std::move(x)); });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

charge_result lookup(payment_router& r, std::string key) {
  auto p = std::make_shared<std::promise<charge_result>>();
  auto f = p->get_future();
  r.lookup(std::move(key), [p](charge_result x) { p->set_value(std::move(x)); });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

/// A refund of `amount` of the approved charge `c` (of key `charge_key`) under `key`.
refund_request refund_of(const charge_result& c, const std::string& charge_key, std::string key,
                         int64_t amount) {
  return {std::move(key), charge_key, c.gateway, c.charge_id, amount, "USD"};
}

/// Refund log entries of `gateway` with `status` (and `key` when not empty).
std::size_t count_refunds(const std::vector<logged_refund>& log, const std::string& gateway,
                          const std::string& status, const std::string& key = {}) {
  return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const auto& e) {
    return e.gateway == gateway && e.status == status && (key.empty() || e.key == key);
  }));
}

std::size_t count(const std::vector<logged_charge>& log, const std::string& gateway,
                  const std::string& status, const std::string& key = {}) {
  return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [&](const auto& e) {
    return e.gateway == gateway && e.status == status && (key.empty() || e.key == key);
  }));
}

} // namespace

TEST_SUITE("payments") {

  TEST_CASE("tok_ok is approved once, both wire styles") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind), surge::ptest::paysim_router_options());
      const auto res = charge(*r, request("k-ok", "tok_ok"));
      CHECK(res.status == charge_status::approved);
      CHECK(res.gateway == "alpha");
      CHECK_FALSE(res.charge_id.empty());
      const auto log = sim.charges();
      REQUIRE(log.size() == 1);
      CHECK(log[0].gateway == "alpha");
      CHECK(log[0].key == "k-ok");
      CHECK(log[0].amount_cents == 1999);
      CHECK(log[0].currency == "usd");
      CHECK(log[0].status == "approved");

      // The same key again: the first result, no second charge.
      const auto again = charge(*r, request("k-ok", "tok_ok"));
      CHECK(again.status == charge_status::approved);
      CHECK(again.charge_id == res.charge_id);
      CHECK(sim.charges().size() == 1);

      // lookup() finds it; an unknown key is failed (nobody has it).
      const auto found = lookup(*r, "k-ok");
      CHECK(found.status == charge_status::approved);
      CHECK(found.charge_id == res.charge_id);
      CHECK(lookup(*r, "k-none").status == charge_status::failed);
      CHECK(sim.stop() == 0);
    }
  }

  TEST_CASE("may_send false: nothing goes out, the outcome is unknown (no failover either)") {
    paysim_process sim{{"alpha", "beta"}};
    auto r = make_router(sim.setting("form"), surge::ptest::paysim_router_options());
    std::atomic<int> asked{0};
    auto req = request("k-fenced", "tok_ok");
    req.may_send = [&asked] {
      ++asked;
      return false;
    };
    const auto res = charge(*r, req);
    CHECK(res.status == charge_status::unknown);
    CHECK(asked == 1);
    CHECK(sim.charges().empty());
    // The next owner (may_send true) charges it, once.
    req.may_send = [] { return true; };
    CHECK(charge(*r, req).status == charge_status::approved);
    CHECK(sim.charges().size() == 1);
    CHECK(sim.stop() == 0);
  }

  TEST_CASE("tok_decline is declined without failover") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind), surge::ptest::paysim_router_options());
      const auto res = charge(*r, request("k-dec", "tok_decline"));
      CHECK(res.status == charge_status::declined);
      CHECK(res.gateway == "alpha");
      const auto log = sim.charges();
      REQUIRE(log.size() == 1);
      CHECK(log[0].gateway == "alpha");
      CHECK(log[0].status == "declined");
      CHECK(lookup(*r, "k-dec").status == charge_status::declined);

      // An unknown token is a decline too.
      CHECK(charge(*r, request("k-bogus", "tok_bogus")).status == charge_status::declined);
    }
  }

  TEST_CASE("tok_slow: a timeout is resolved by looking the key up, one charge") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}, {"--slow-ms=1500"}};
      auto o = surge::ptest::paysim_router_options();
      o.timeout = 300ms;
      auto r = make_router(sim.setting(kind), o);
      const auto start = steady::now();
      const auto res = charge(*r, request("k-slow", "tok_slow"));
      CHECK(res.status == charge_status::approved);
      CHECK(res.gateway == "alpha");
      CHECK(res.message.find("lookup") != std::string::npos);
      CHECK(steady::now() - start < 1500ms); // learned before the slow answer came
      const auto log = sim.charges();
      REQUIRE(log.size() == 1);
      CHECK(log[0].gateway == "alpha");
      CHECK(log[0].status == "approved");
    }
  }

  TEST_CASE("tok_down_first: the first gateway fails, the second approves") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind), surge::ptest::paysim_router_options());
      const auto res = charge(*r, request("k-down", "tok_down_first"));
      CHECK(res.status == charge_status::approved);
      CHECK(res.gateway == "beta");
      const auto log = sim.charges();
      CHECK(count(log, "alpha", "failed") == 3); // max_tries, same key every time
      CHECK(count(log, "alpha", "approved") == 0);
      CHECK(count(log, "beta", "approved", "k-down") == 1);
      CHECK(log.size() == 4);
    }
  }

  TEST_CASE("stats(): outcomes, failovers, refunds, breaker state and latency per gateway") {
    paysim_process sim{{"alpha", "beta"}};
    auto r = make_router(sim.setting("form"), surge::ptest::paysim_router_options());
    auto before = r->stats();
    REQUIRE(before.size() == 2);
    CHECK(before[0].name == "alpha");
    CHECK(before[0].breaker == "closed");
    CHECK_FALSE(before[0].p50_ms.has_value()); // no call yet
    const auto moved = charge(*r, request("k-st-down", "tok_down_first"));
    REQUIRE(moved.status == charge_status::approved);
    CHECK(charge(*r, request("k-st-decl", "tok_decline")).status == charge_status::declined);
    const auto back = refund(*r, refund_of(moved, "k-st-down", "rf-st", 500));
    CHECK(back.status == refund_status::refunded);
    const auto st = r->stats();
    REQUIRE(st.size() == 2);
    CHECK(st[0].failed == 3); // max_tries
    CHECK(st[0].declined == 1);
    CHECK(st[0].approved == 0);
    CHECK(st[0].failovers == 1);
    CHECK(st[1].approved == 1);
    CHECK(st[1].failovers == 0);
    CHECK(st[1].refunds == 1);
    CHECK(st[0].refunds == 0);
    for (const auto& g : st) {
      CHECK(g.breaker == "closed");
      REQUIRE(g.p50_ms.has_value());
      REQUIRE(g.p99_ms.has_value());
      CHECK(*g.p50_ms > 0);
      CHECK(*g.p99_ms >= *g.p50_ms);
    }

    auto opened = make_router(sim.setting("form"), breaker_options(1, 1, 60s));
    sim.set_down(0, true);
    CHECK(charge(*opened, request("k-st-open", "tok_ok")).gateway == "beta");
    const auto after = opened->stats();
    CHECK(after[0].breaker == "open");
    CHECK(after[0].failovers == 1);
    CHECK(after[1].breaker == "closed");
  }

  TEST_CASE("outage of the first gateway: failover; all down: failed") {
    paysim_process sim{{"alpha", "beta"}};
    auto r = make_router(sim.setting("form"), surge::ptest::paysim_router_options());
    sim.set_down(0, true);
    const auto res = charge(*r, request("k-out", "tok_ok"));
    CHECK(res.status == charge_status::approved);
    CHECK(res.gateway == "beta");
    auto log = sim.charges();
    CHECK(count(log, "alpha", "failed", "k-out") == 3);
    CHECK(count(log, "beta", "approved", "k-out") == 1);

    // lookup(): alpha cannot answer, but beta has the key.
    CHECK(lookup(*r, "k-out").status == charge_status::approved);
    // A key nobody has, while alpha cannot answer: unknown, not failed.
    CHECK(lookup(*r, "k-nobody").status == charge_status::unknown);

    sim.set_down(1, true);
    const auto none = charge(*r, request("k-all", "tok_ok"));
    CHECK(none.status == charge_status::failed);
    log = sim.charges();
    CHECK(count(log, "alpha", "approved", "k-all") == 0);
    CHECK(count(log, "beta", "approved", "k-all") == 0);
    CHECK(count(log, "alpha", "failed", "k-all") == 3);
    CHECK(count(log, "beta", "failed", "k-all") == 3);

    // Back up: the same key can now be charged.
    sim.set_down(0, false);
    const auto back = charge(*r, request("k-all", "tok_ok"));
    CHECK(back.status == charge_status::approved);
    CHECK(back.gateway == "alpha");
  }

  TEST_CASE("an idempotency conflict (same key, other amount) fails without a second charge") {
    paysim_process sim{{"alpha", "beta"}};
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      auto r = make_router(sim.setting(kind), surge::ptest::paysim_router_options());
      const std::string key = "k-conf-" + kind;
      CHECK(charge(*r, request(key, "tok_ok", 1000)).status == charge_status::approved);
      const auto res = charge(*r, request(key, "tok_ok", 2000));
      CHECK(res.status == charge_status::failed);
      const auto log = sim.charges();
      CHECK(count(log, "alpha", "approved", key) == 1);
      CHECK(count(log, "beta", "approved", key) == 0);
    }
  }

  TEST_CASE("circuit breaker: a down gateway stops being called, then a probe closes it") {
    paysim_process sim{{"alpha", "beta"}};
    auto r = make_router(sim.setting("form"), breaker_options(1, 3, 400ms));
    sim.set_down(0, true);
    for (int i = 0; i < 8; ++i) {
      const auto res = charge(*r, request("k-br-" + std::to_string(i), "tok_ok"));
      CHECK(res.status == charge_status::approved);
      CHECK(res.gateway == "beta");
    }
    auto log = sim.charges();
    const std::size_t alpha_calls = count(log, "alpha", "failed");
    // Three failures open it; at most the cool-down's probes (400 ms each) come on top.
    CHECK(alpha_calls >= 3);
    CHECK(alpha_calls < 8);
    CHECK(count(log, "beta", "approved") == 8);

    // Alpha comes back: after the cool-down one probe goes through and closes the breaker.
    sim.set_down(0, false);
    const auto deadline = steady::now() + 10s;
    std::string gw;
    for (int i = 0; gw != "alpha" && steady::now() < deadline; ++i) {
      gw = charge(*r, request("k-probe-" + std::to_string(i), "tok_ok")).gateway;
      if (gw != "alpha") {
        std::this_thread::sleep_for(50ms); // polling interval while the cool-down runs
      }
    }
    CHECK(gw == "alpha");
  }

  TEST_CASE("circuit breaker: no calls while open (long cool-down)") {
    paysim_process sim{{"alpha", "beta"}};
    auto r = make_router(sim.setting("json"), breaker_options(2, 3, 60s));
    sim.set_down(0, true);
    for (int i = 0; i < 6; ++i) {
      CHECK(charge(*r, request("k-open-" + std::to_string(i), "tok_ok")).gateway == "beta");
    }
    const auto log = sim.charges();
    CHECK(count(log, "alpha", "failed") == 3); // 2 tries, then 1: open; never called again
    CHECK(count(log, "beta", "approved") == 6);
  }

  TEST_CASE("concurrent double submit of one key from 8 threads: one charge") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto o = surge::ptest::paysim_router_options();
      o.threads = 8; // all eight calls in flight at once
      auto r = make_router(sim.setting(kind), o);
      std::vector<std::future<charge_result>> results;
      std::vector<std::shared_ptr<std::promise<charge_result>>> promises;
      for (int i = 0; i < 8; ++i) {
        promises.push_back(std::make_shared<std::promise<charge_result>>());
        results.push_back(promises.back()->get_future());
      }
      std::atomic<int> ready{0};
      std::vector<std::thread> threads;
      for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i] {
          ready.fetch_add(1);
          while (ready.load() < 8) {
            std::this_thread::yield();
          }
          auto p = promises[i];
          r->charge(request("k-race", "tok_ok"),
                    [p](charge_result x) { p->set_value(std::move(x)); });
        });
      }
      for (auto& t : threads) {
        t.join();
      }
      std::string id;
      for (auto& f : results) {
        REQUIRE(f.wait_for(30s) == std::future_status::ready);
        const auto res = f.get();
        CHECK(res.status == charge_status::approved);
        CHECK(res.gateway == "alpha");
        if (id.empty()) {
          id = res.charge_id;
        }
        CHECK(res.charge_id == id);
      }
      const auto log = sim.charges();
      CHECK(log.size() == 1);
      CHECK(count(log, "alpha", "approved", "k-race") == 1);
    }
  }

  TEST_CASE("refunds: whole, partial, replayed, too much and unknown, both wire styles") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind), surge::ptest::paysim_router_options());
      const auto c = charge(*r, request("k-r", "tok_ok", 1999));
      REQUIRE(c.status == charge_status::approved);

      const auto first = refund(*r, refund_of(c, "k-r", "k-r/refund-1", 500));
      CHECK(first.status == refund_status::refunded);
      CHECK(first.refund_id.rfind("re_alpha_", 0) == 0);
      // The same key again (a retry, another node): the same refund, not a second.
      const auto again = refund(*r, refund_of(c, "k-r", "k-r/refund-1", 500));
      CHECK(again.status == refund_status::refunded);
      CHECK(again.refund_id == first.refund_id);
      CHECK(refund(*r, refund_of(c, "k-r", "k-r/refund-2", 1499)).status ==
            refund_status::refunded);
      const auto over = refund(*r, refund_of(c, "k-r", "k-r/refund-3", 1));
      CHECK(over.status == refund_status::rejected);
      CHECK(over.message.find("alpha rejected the refund") != std::string::npos);
      // A charge the gateway does not know.
      charge_result ghost{charge_status::approved, "alpha", "ch_nope", {}};
      CHECK(refund(*r, refund_of(ghost, "k-ghost", "k-ghost/refund", 1)).status ==
            refund_status::rejected);

      const auto refunds = sim.refunds();
      REQUIRE(refunds.size() == 4);
      CHECK(refunds[0].key == "k-r/refund-1");
      CHECK(refunds[0].charge_key == "k-r");
      CHECK(refunds[0].amount_cents == 500);
      CHECK(refunds[0].currency == "usd");
      CHECK(refunds[0].status == "refunded");
      CHECK(refunds[1].status == "refunded");
      CHECK(refunds[2].status == "rejected");
      CHECK(refunds[3].status == "rejected");
      const auto charges = sim.charges();
      REQUIRE(charges.size() == 1);
      CHECK(charges[0].status == "approved");
      CHECK(charges[0].refunded_cents == 1999);
      CHECK(sim.stop() == 0);
    }
  }

  TEST_CASE("refunds go to the gateway that took the charge, and only there") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto r = make_router(sim.setting(kind), surge::ptest::paysim_router_options());
      const auto c = charge(*r, request("k-b", "tok_down_first", 800));
      REQUIRE(c.status == charge_status::approved);
      REQUIRE(c.gateway == "beta");
      sim.set_down(0, true); // alpha's outage does not matter to beta's refund
      const auto res = refund(*r, refund_of(c, "k-b", "k-b/refund", 800));
      CHECK(res.status == refund_status::refunded);
      CHECK(res.refund_id.rfind("re_beta_", 0) == 0);
      const auto log = sim.refunds();
      REQUIRE(log.size() == 1);
      CHECK(log[0].gateway == "beta");
      CHECK(log[0].charge_key == "k-b");
      CHECK(count(sim.charges(), "beta", "approved", "k-b") == 1);
    }
  }

  TEST_CASE("refunds during an outage: unknown, nothing refunded; the same key later: once") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}};
      auto o = surge::ptest::paysim_router_options();
      o.refund_tries = 3;
      auto r = make_router(sim.setting(kind), o);
      const auto c = charge(*r, request("k-o", "tok_ok", 1200));
      REQUIRE(c.status == charge_status::approved);
      sim.set_down(0, true);
      const auto down = refund(*r, refund_of(c, "k-o", "k-o/refund", 1200));
      CHECK(down.status == refund_status::unknown);
      CHECK(down.message.rfind("not refunded", 0) == 0);
      auto log = sim.refunds();
      CHECK(count_refunds(log, "alpha", "failed", "k-o/refund") == 3); // same key every time
      CHECK(count_refunds(log, "beta", "failed") == 0);                // no failover
      CHECK(log.size() == 3);
      CHECK(sim.charges().at(0).refunded_cents == 0);

      sim.set_down(0, false);
      CHECK(refund(*r, refund_of(c, "k-o", "k-o/refund", 1200)).status == refund_status::refunded);
      CHECK(refund(*r, refund_of(c, "k-o", "k-o/refund", 1200)).status == refund_status::refunded);
      log = sim.refunds();
      CHECK(count_refunds(log, "alpha", "refunded", "k-o/refund") == 1);
      CHECK(sim.charges().at(0).refunded_cents == 1200);
    }
  }

  TEST_CASE("refunds of a tok_slow charge: a timeout is unknown, a retry refunds once") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha", "beta"}, {"--slow-ms=1500"}};
      auto o = surge::ptest::paysim_router_options();
      o.timeout = 300ms;
      o.refund_tries = 1;
      auto once = make_router(sim.setting(kind), o);
      const auto c = charge(*once, request("k-s", "tok_slow", 1000));
      REQUIRE(c.status == charge_status::approved);

      // One call only: it times out (the refund is made, its answer comes late): unknown.
      const auto lost = refund(*once, refund_of(c, "k-s", "k-s/refund-1", 400));
      CHECK(lost.status == refund_status::unknown);
      CHECK(lost.message.rfind("outcome unknown", 0) == 0);
      CHECK(count_refunds(sim.refunds(), "alpha", "refunded", "k-s/refund-1") == 1);
      // Asked again with the same key: the gateway replays it at once; still one refund.
      const auto later = refund(*once, refund_of(c, "k-s", "k-s/refund-1", 400));
      CHECK(later.status == refund_status::refunded);

      // With retries, the router resolves a timeout itself: the second call replays the first.
      o.refund_tries = 5;
      auto retrying = make_router(sim.setting(kind), o);
      const auto res = refund(*retrying, refund_of(c, "k-s", "k-s/refund-2", 600));
      CHECK(res.status == refund_status::refunded);
      CHECK(res.message == "refunded on try 2");

      const auto log = sim.refunds();
      CHECK(log.size() == 2);
      CHECK(count_refunds(log, "alpha", "refunded", "k-s/refund-1") == 1);
      CHECK(count_refunds(log, "alpha", "refunded", "k-s/refund-2") == 1);
      CHECK(sim.charges().at(0).refunded_cents == 1000);
    }
  }

  TEST_CASE("concurrent refunds of one key from 8 threads: one refund") {
    for (const std::string kind : {"form", "json"}) {
      CAPTURE(kind);
      paysim_process sim{{"alpha"}};
      auto o = surge::ptest::paysim_router_options();
      o.threads = 8;
      auto r = make_router(sim.setting(kind), o);
      const auto c = charge(*r, request("k-cr", "tok_ok", 900));
      REQUIRE(c.status == charge_status::approved);
      std::vector<std::shared_ptr<std::promise<refund_result>>> promises;
      std::vector<std::future<refund_result>> results;
      for (int i = 0; i < 8; ++i) {
        promises.push_back(std::make_shared<std::promise<refund_result>>());
        results.push_back(promises.back()->get_future());
      }
      for (int i = 0; i < 8; ++i) {
        auto p = promises[i];
        r->refund(refund_of(c, "k-cr", "k-cr/refund", 900),
                  [p](refund_result x) { p->set_value(std::move(x)); });
      }
      std::string id;
      for (auto& f : results) {
        REQUIRE(f.wait_for(30s) == std::future_status::ready);
        const auto res = f.get();
        CHECK(res.status == refund_status::refunded);
        if (id.empty()) {
          id = res.refund_id;
        }
        CHECK(res.refund_id == id);
      }
      CHECK(sim.refunds().size() == 1);
      CHECK(sim.charges().at(0).refunded_cents == 900);
    }
  }

} // TEST_SUITE
