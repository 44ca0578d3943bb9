// payment_router::refund() over fake gateways (suite payments_unit: no processes, no sockets).

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router_test_support.hpp"
#include "surge/net/payments/payment_router.hpp"

using namespace surge::ptest::router_names;
using surge::ptest::refund;

namespace {

/// A gateway in memory. refund() follows a script, one step per call; once the script is used
/// up every call is `step::normal`. A normal call refunds like a real gateway: idempotent by key
/// (the same key again answers with the first refund's id, never a second refund). charge() and
/// lookup() answer `charge_answer` (retryable by default: "down").
class fake_gateway final : public gateway {
 public:
  enum class step {
    normal,    ///< refund (or replay) and say so
    retryable, ///< 503: nothing done
    rejected,  ///< 404 no such charge: nothing done
    lost,      ///< refund (or replay), but the answer is lost: unknown
    hang,      ///< no answer within the call's timeout: nothing done, unknown (sleeps `timeout`)
    conflict,  ///< 409, a request with this key is in progress: nothing done
  };

  explicit fake_gateway(std::string name, std::deque<step> script = {})
      : name_(std::move(name))
      , script_(std::move(script)) {}

  /// A gateway whose first `n` refund calls are all `s`.
  fake_gateway(std::string name, std::size_t n, step s)
      : fake_gateway(std::move(name), std::deque<step>(n, s)) {}

  const std::string& name() const override { return name_; }

  attempt charge(const charge_request&, std::chrono::milliseconds) override {
    std::lock_guard lock{mu_};
    ++charge_calls_;
    return charge_answer_;
  }

  attempt lookup(const std::string&, std::chrono::milliseconds) override {
    return {attempt_kind::not_found, {}, {}, 200, false, {}};
  }

  attempt refund(const refund_request& req, std::chrono::milliseconds timeout) override {
    return scripted(req.idempotency_key, req.charge_id, timeout);
  }

  /// Captures and voids follow the same script as refunds (one step per call of either).
  attempt capture(const settle_request& req, std::chrono::milliseconds timeout) override {
    return scripted(req.idempotency_key, req.charge_id, timeout);
  }

  attempt void_authorization(const settle_request& req,
                             std::chrono::milliseconds timeout) override {
    return scripted(req.idempotency_key, req.charge_id, timeout);
  }

  /// One refund, capture or void call of `key` against charge `charge_id`: the script's next
  /// step; a normal call performs it once per key and says so.
  attempt scripted(const std::string& key, const std::string& charge_id,
                   std::chrono::milliseconds timeout) {
    step s = step::normal;
    {
      std::lock_guard lock{mu_};
      calls_.push_back({key, timeout});
      if (!script_.empty()) {
        s = script_.front();
        script_.pop_front();
      }
    }
    switch (s) {
    case step::retryable:
      return {attempt_kind::retryable, {}, "HTTP 503", 503, false, {}};
    case step::rejected:
      return {attempt_kind::rejected, {}, "HTTP 404 no such charge", 404, false, {}};
    case step::conflict:
      return {attempt_kind::retryable, {}, "HTTP 409", 409, true, {}};
    case step::hang:
      std::this_thread::sleep_for(timeout); // the simulated timeout itself
      return {attempt_kind::unknown, {}, "timed out", 0, false, {}};
    case step::lost:
      perform(key);
      return {attempt_kind::unknown, {}, "connection reset", 0, false, {}};
    case step::normal:
      break;
    }
    return {attempt_kind::approved, charge_id, {}, 200, false, perform(key)};
  }

  struct call {
    std::string key;
    std::chrono::milliseconds timeout;
  };

  std::vector<call> calls() const {
    std::lock_guard lock{mu_};
    return calls_;
  }

  /// Refunds (captures, voids) made (not replays).
  std::size_t refunds_made() const {
    std::lock_guard lock{mu_};
    return refunds_.size();
  }

  int charge_calls() const {
    std::lock_guard lock{mu_};
    return charge_calls_;
  }

 private:
  /// Performs the call of `key` once per key; the refund's (capture's, void's) id.
  std::string perform(const std::string& key) {
    std::lock_guard lock{mu_};
    auto [it, fresh] = refunds_.emplace(key, "re_" + name_ + "_" + std::to_string(next_++));
    return it->second;
  }

  const std::string name_;
  const attempt charge_answer_{attempt_kind::retryable, {}, "HTTP 503", 503, false, {}};
  mutable std::mutex mu_;
  std::deque<step> script_;                    // guarded by mu_
  std::vector<call> calls_;                    // guarded by mu_
  std::map<std::string, std::string> refunds_; // guarded by mu_: key -> refund id
  int next_ = 1;                               // guarded by mu_
  int charge_calls_ = 0;                       // guarded by mu_
};

using step = fake_gateway::step;

router_options fast_options() {
  return surge::ptest::fast_router_options();
}

/// A router over `gws`; the raw pointers stay valid while the router lives.
struct fixture {
  explicit fixture(std::vector<fake_gateway*> gws, router_options o = fast_options()) {
    std::vector<std::unique_ptr<gateway>> owned;
    for (auto* g : gws) {
      owned.emplace_back(g);
    }
    router = std::make_unique<payment_router>(std::move(owned), o);
  }
  std::unique_ptr<payment_router> router;
};

refund_request request(std::string key = "k-1/refund", std::string gw = "alpha") {
  return {std::move(key), "k-1", std::move(gw), "ch_1", 1999, "USD"};
}

bool same_key_everywhere(const std::vector<fake_gateway::call>& calls, const std::string& key) {
  for (const auto& c : calls) {
    if (c.key != key) {
      return false;
    }
  }
  return true;
}

} // namespace

TEST_SUITE("payments_unit") {

  TEST_CASE("refund: to_string") {
    CHECK(std::string{to_string(refund_status::refunded)} == "refunded");
    CHECK(std::string{to_string(refund_status::rejected)} == "rejected");
    CHECK(std::string{to_string(refund_status::unknown)} == "unknown");
  }

  TEST_CASE("capture and void: to_string, and the refund rules (same key, retries, final "
            "answers)") {
    CHECK(std::string{to_string(settle_status::done)} == "done");
    CHECK(std::string{to_string(settle_status::rejected)} == "rejected");
    CHECK(std::string{to_string(settle_status::unknown)} == "unknown");
    CHECK(std::string{to_string(surge::actors::funds::authorized)} == "authorized");

    auto settle = [](payment_router& r, settle_request req, bool voiding) {
      auto p = std::make_shared<std::promise<settle_result>>();
      auto f = p->get_future();
      auto done = [p](settle_result x) { p->set_value(std::move(x)); };
      voiding ? r.void_authorization(std::move(req), done) : r.capture(std::move(req), done);
      REQUIRE(f.wait_for(30s) == std::future_status::ready);
      return f.get();
    };
    const settle_request req{"k-1/capture", "k-1", "alpha", "ch_1", 1999, "USD", {}};
    for (const bool voiding : {false, true}) {
      CAPTURE(voiding);
      // A 503, a lost answer, then done: three calls, one key, performed once.
      auto* g = new fake_gateway{"alpha", {step::retryable, step::lost}};
      fixture f{{g}};
      const auto res = settle(*f.router, req, voiding);
      CHECK(res.status == settle_status::done);
      CHECK(res.message == std::string{voiding ? "voided" : "captured"} + " on try 3");
      CHECK(g->calls().size() == 3);
      CHECK(same_key_everywhere(g->calls(), "k-1/capture"));
      CHECK(g->refunds_made() == 1);

      auto* no = new fake_gateway{"alpha", {step::rejected}};
      fixture rejected{{no}};
      CHECK(settle(*rejected.router, req, voiding).status == settle_status::rejected);
      CHECK(no->calls().size() == 1);

      auto o = fast_options();
      o.refund_tries = 2;
      auto* down = new fake_gateway{"alpha", 5, step::retryable};
      fixture unknown{{down}, o};
      const auto open = settle(*unknown.router, req, voiding);
      CHECK(open.status == settle_status::unknown);
      CHECK(open.message.find(voiding ? "not voided" : "not captured") != std::string::npos);

      // Fenced: nothing is sent once the caller no longer holds the order's lease.
      auto* fenced_gw = new fake_gateway{"alpha"};
      fixture fenced{{fenced_gw}};
      auto lost_lease = req;
      lost_lease.may_send = [] { return false; };
      const auto not_sent = settle(*fenced.router, lost_lease, voiding);
      CHECK(not_sent.status == settle_status::unknown);
      CHECK(not_sent.message.find("lease") != std::string::npos);
      CHECK(fenced_gw->calls().empty());

      fixture unkeyed{{new fake_gateway{"alpha"}}};
      auto no_key = req;
      no_key.idempotency_key.clear();
      CHECK(settle(*unkeyed.router, no_key, voiding).status == settle_status::rejected);
    }
  }

  TEST_CASE("refund: refunded on the first call") {
    auto* g = new fake_gateway{"alpha"};
    fixture f{{g}};
    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::refunded);
    CHECK(res.refund_id == "re_alpha_1");
    CHECK(g->calls().size() == 1);
    CHECK(g->refunds_made() == 1);
  }

  TEST_CASE("refund: rejected is definitive, not retried") {
    auto* g = new fake_gateway{"alpha", {step::rejected}};
    fixture f{{g}};
    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::rejected);
    CHECK(res.message.find("no such charge") != std::string::npos);
    CHECK(res.refund_id.empty());
    CHECK(g->calls().size() == 1);
    CHECK(g->refunds_made() == 0);
  }

  TEST_CASE("refund: retryable failures are retried with the same key, then refunded") {
    auto* g = new fake_gateway{"alpha", {step::retryable, step::conflict, step::retryable}};
    fixture f{{g}};
    const auto res = refund(*f.router, request("k-1/refund"));
    CHECK(res.status == refund_status::refunded);
    CHECK(res.message == "refunded on try 4");
    const auto calls = g->calls();
    CHECK(calls.size() == 4);
    CHECK(same_key_everywhere(calls, "k-1/refund"));
    CHECK(g->refunds_made() == 1);
  }

  TEST_CASE("refund: an answer lost after the refund is resolved by the retry, one refund") {
    auto* g = new fake_gateway{"alpha", {step::lost, step::lost}};
    fixture f{{g}};
    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::refunded);
    CHECK(res.refund_id == "re_alpha_1"); // the replay names the first (and only) refund
    CHECK(g->calls().size() == 3);
    CHECK(g->refunds_made() == 1);
  }

  TEST_CASE("refund: the same key twice is one refund") {
    auto* g = new fake_gateway{"alpha"};
    fixture f{{g}};
    const auto first = refund(*f.router, request("k-1/refund"));
    const auto second = refund(*f.router, request("k-1/refund"));
    CHECK(first.status == refund_status::refunded);
    CHECK(second.status == refund_status::refunded);
    CHECK(second.refund_id == first.refund_id);
    CHECK(g->refunds_made() == 1);
    // Another key is another refund.
    CHECK(refund(*f.router, request("k-1/refund-2")).refund_id != first.refund_id);
    CHECK(g->refunds_made() == 2);
  }

  TEST_CASE("refund: retryable until the tries run out is unknown, nothing refunded") {
    auto o = fast_options();
    o.refund_tries = 3;
    auto* g = new fake_gateway{
        "alpha",
        {step::retryable, step::retryable, step::retryable, step::retryable, step::retryable}};
    fixture f{{g}, o};
    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::unknown);
    CHECK(res.message.rfind("not refunded: alpha: HTTP 503", 0) == 0);
    CHECK(g->calls().size() == 3);
    CHECK(g->refunds_made() == 0);
  }

  TEST_CASE("refund: a gateway that never answers is unknown within the deadline") {
    auto o = fast_options();
    o.timeout = 100ms;
    o.refund_tries = 50;
    o.refund_deadline = 350ms;
    auto* g = new fake_gateway{"alpha", 50, step::hang};
    fixture f{{g}, o};
    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::unknown);
    CHECK(res.message.find("outcome unknown") != std::string::npos);
    const auto calls = g->calls();
    // Each call waits at most its timeout, and the deadline ends the tries: a handful of calls,
    // far fewer than refund_tries (on a slow machine fewer still).
    CHECK(calls.size() >= 1);
    CHECK(calls.size() <= 4);
    for (const auto& c : calls) {
      CHECK(c.timeout <= 100ms);
      CHECK(c.timeout > 0ms);
    }
  }

  TEST_CASE("refund: a timeout then the same key later is one refund") {
    auto o = fast_options();
    o.refund_tries = 1;
    auto* g = new fake_gateway{"alpha", {step::lost}};
    fixture f{{g}, o};
    const auto first = refund(*f.router, request("k-9/refund"));
    CHECK(first.status == refund_status::unknown);
    CHECK(g->refunds_made() == 1); // it did happen; the router could not learn it
    const auto later = refund(*f.router, request("k-9/refund"));
    CHECK(later.status == refund_status::refunded);
    CHECK(g->refunds_made() == 1);
  }

  TEST_CASE("refund: an open breaker (opened by charges) stops refunds being sent") {
    auto o = fast_options();
    o.breaker_threshold = 3;
    o.breaker_cooldown = 60s;
    o.max_tries = 3;
    auto* g = new fake_gateway{"alpha"};
    fixture f{{g}, o};
    auto p = std::make_shared<std::promise<charge_result>>();
    auto fut = p->get_future();
    f.router->charge({"k-1", "o-1", 1999, "USD", "tok_ok", {}},
                     [p](charge_result x) { p->set_value(std::move(x)); });
    REQUIRE(fut.wait_for(30s) == std::future_status::ready);
    CHECK(fut.get().status == charge_status::failed);
    CHECK(g->charge_calls() == 3); // three failures: open

    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::unknown);
    CHECK(res.message.find("circuit open") != std::string::npos);
    CHECK(res.message.rfind("not refunded", 0) == 0);
    CHECK(g->calls().empty());
  }

  TEST_CASE("refund: failed refunds open the breaker too, and then stop") {
    auto o = fast_options();
    o.breaker_threshold = 2;
    o.breaker_cooldown = 60s;
    o.refund_tries = 5;
    auto* g = new fake_gateway{"alpha", 10, step::retryable};
    fixture f{{g}, o};
    const auto res = refund(*f.router, request());
    CHECK(res.status == refund_status::unknown);
    CHECK(res.message.find("circuit open") != std::string::npos);
    CHECK(g->calls().size() == 2);
    CHECK(refund(*f.router, request("k-2/refund")).status == refund_status::unknown);
    CHECK(g->calls().size() == 2); // nothing sent while open
  }

  TEST_CASE("refund: only the charging gateway is asked, never another") {
    auto* a = new fake_gateway{"alpha"};
    auto* b = new fake_gateway{"beta", 10, step::retryable};
    auto o = fast_options();
    o.refund_tries = 3;
    fixture f{{a, b}, o};
    const auto res = refund(*f.router, request("k-1/refund", "beta"));
    CHECK(res.status == refund_status::unknown);
    CHECK(b->calls().size() == 3);
    CHECK(a->calls().empty());
    CHECK(refund(*f.router, request("k-1/refund", "alpha")).status == refund_status::refunded);
    CHECK(a->calls().size() == 1);
  }

  TEST_CASE("refund: an unconfigured gateway is unknown, an empty key rejected; nothing sent") {
    auto* g = new fake_gateway{"alpha"};
    fixture f{{g}};
    const auto gone = refund(*f.router, request("k-1/refund", "gamma"));
    CHECK(gone.status == refund_status::unknown);
    CHECK(gone.message.find("'gamma' is not configured") != std::string::npos);
    CHECK(refund(*f.router, request("", "alpha")).status == refund_status::rejected);
    CHECK(g->calls().empty());
  }

  TEST_CASE("refund: the destructor ends a refund waiting to retry; its callback runs once") {
    auto o = fast_options();
    o.backoff_base = 60s;
    o.backoff_cap = 60s;
    o.refund_deadline = 600s;
    auto* g = new fake_gateway{"alpha", 10, step::retryable};
    fixture f{{g}, o};
    auto p = std::make_shared<std::promise<refund_result>>();
    auto fut = p->get_future();
    std::atomic<int> calls{0};
    f.router->refund(request(), [p, &calls](refund_result x) {
      ++calls;
      p->set_value(std::move(x));
    });
    // Wait (bounded) for the first call, so that the refund is in its backoff.
    for (int i = 0; i < 3000 && g->calls().empty(); ++i) {
      std::this_thread::sleep_for(1ms); // polling interval, not synchronisation
    }
    REQUIRE(g->calls().size() == 1);
    f.router.reset();
    REQUIRE(fut.wait_for(0s) == std::future_status::ready);
    const auto res = fut.get();
    CHECK(res.status == refund_status::unknown);
    CHECK(res.message.find("payment service stopped") != std::string::npos);
    CHECK(calls == 1);
  }

} // TEST_SUITE
