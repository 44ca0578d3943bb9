#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "paysim_process.hpp"
#include "surge/net/json.hpp"

using surge::ptest::http_call;
using surge::ptest::logged_refund;
using surge::ptest::paysim_process;
using surge::ptest::run_paysim_to_exit;

namespace {

const std::vector<std::pair<std::string, std::string>> form_headers(const std::string& key) {
  std::vector<std::pair<std::string, std::string>> h{
      {"Content-Type", "application/x-www-form-urlencoded"}};
  if (!key.empty()) {
    h.emplace_back("Idempotency-Key", key);
  }
  return h;
}

/// The string member `key` of the JSON object `body`, or of its member object `in` ("" when
/// missing).
/// Calls `call()` on `n` threads at once (each starts when all are ready); returns how many
/// answered 200.
template <class Call>
int together_ok(int n, Call call) {
  std::atomic<int> ready{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < n) {
        std::this_thread::yield();
      }
      if (call().status == 200) {
        ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return ok.load();
}

std::string member(const std::string& body, const char* key, const char* in = nullptr) {
  auto parsed = surge::net::json::parse(body);
  const auto* v = std::get_if<surge::net::json::value>(&parsed);
  if (v != nullptr && in != nullptr) {
    v = v->is_object() ? v->find(in) : nullptr;
  }
  const auto* m = v != nullptr && v->is_object() ? v->find(key) : nullptr;
  return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
}

} // namespace

TEST_SUITE("payments") {

  TEST_CASE("paysim: flags") {
    const auto help = surge::ptest::run_paysim({"--help"});
    CHECK(help.status == 0);
    for (const char* said : {"POST /v1/refunds", "POST /refunds", "GET /_refunds", "refunds answer",
                             "GET /_charges"}) {
      CAPTURE(said);
      CHECK(help.output.find(said) != std::string::npos);
    }
    CHECK(run_paysim_to_exit({"--bogus=1"}) == 2);
    CHECK(run_paysim_to_exit({}) == 2);
    CHECK(run_paysim_to_exit({"--gateways=alpha"}) == 2);
    CHECK(run_paysim_to_exit({"--gateways=a=127.0.0.1:0", "--decline-rate=2"}) == 2);
    CHECK(run_paysim_to_exit({"--gateways=a=127.0.0.1:0", "--latency-ms=x"}) == 2);
  }

  TEST_CASE("paysim: form style on the wire") {
    paysim_process sim{{"alpha"}};
    const uint16_t p = sim.port(0);
    const std::string body = "amount=1999&currency=usd&source=tok_ok&description=ORDER+1";
    CHECK(http_call(p, "POST", "/v1/charges", body, form_headers("")).status == 400);
    auto r = http_call(p, "POST", "/v1/charges", body, form_headers("K1"));
    CHECK(r.status == 200);
    CHECK(r.body.find(R"("object":"charge","status":"succeeded","amount":1999,"currency":"usd")") !=
          std::string::npos);
    CHECK(http_call(p, "POST", "/v1/charges", body, form_headers("K1")).body == r.body);
    CHECK(http_call(p, "POST", "/v1/charges", "amount=5&currency=usd&source=tok_ok",
                    form_headers("K1"))
              .status == 422);
    const auto d = http_call(p, "POST", "/v1/charges", "amount=1&currency=usd&source=tok_decline",
                             form_headers("K2"));
    CHECK(d.status == 402);
    CHECK(d.body.find(R"("type":"card_error","code":"card_declined")") != std::string::npos);
    CHECK(
        http_call(p, "GET", "/v1/charges?idempotency_key=K1").body.find(R"("data":[{"id":"ch_)") !=
        std::string::npos);
    CHECK(http_call(p, "GET", "/v1/charges?idempotency_key=K9").body.find(R"("data":[])") !=
          std::string::npos);

    sim.set_down(0, true);
    CHECK(http_call(p, "GET", "/v1/charges?idempotency_key=K1").status == 503);
    CHECK(http_call(p, "POST", "/v1/charges", body, form_headers("K3")).status == 503);
    CHECK(http_call(p, "GET", "/healthz").status == 200);
    sim.set_down(0, false);
    CHECK(http_call(p, "GET", "/v1/charges?idempotency_key=K1").status == 200);
    const auto log = sim.charges();
    REQUIRE(log.size() == 3);
    CHECK(log[0].status == "approved");
    CHECK(log[1].status == "declined");
    CHECK(log[2].status == "failed");
  }

  TEST_CASE("paysim: JSON style on the wire") {
    paysim_process sim{{"alpha"}};
    const uint16_t p = sim.port(0);
    const std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    const std::string ok =
        R"({"reference":"R1","amount":{"value":1999,"currency":"USD"},"paymentMethod":{"token":"tok_ok"}})";
    auto r = http_call(p, "POST", "/payments", ok, h);
    CHECK(r.status == 200);
    CHECK(r.body.find(R"("resultCode":"Authorised")") != std::string::npos);
    CHECK(http_call(p, "GET", "/payments/R1").body == r.body);
    CHECK(http_call(p, "GET", "/payments/R2").status == 404);
    const auto d = http_call(
        p, "POST", "/payments",
        R"({"reference":"R2","amount":{"value":5,"currency":"USD"},"paymentMethod":{"token":"tok_decline"}})",
        h);
    CHECK(d.status == 200);
    CHECK(d.body.find(R"("resultCode":"Refused")") != std::string::npos);
    CHECK(d.body.find("refusalReason") != std::string::npos);
    CHECK(http_call(p, "POST", "/payments", R"({"reference":"R3"})", h).status == 400);
  }

  TEST_CASE("paysim: form-style refunds on the wire") {
    paysim_process sim{{"alpha", "beta"}};
    const uint16_t p = sim.port(0);
    const auto charged = http_call(p, "POST", "/v1/charges",
                                   "amount=1999&currency=usd&source=tok_ok", form_headers("K1"));
    REQUIRE(charged.status == 200);
    const std::string id = member(charged.body, "id");
    REQUIRE_FALSE(id.empty());
    const std::string part = "charge=" + id + "&amount=500&currency=usd";

    CHECK(http_call(p, "POST", "/v1/refunds", part, form_headers("")).status == 400);
    CHECK(http_call(p, "POST", "/v1/refunds", "amount=5", form_headers("RX")).status == 400);
    const auto r1 = http_call(p, "POST", "/v1/refunds", part, form_headers("R1"));
    CHECK(r1.status == 200);
    CHECK(r1.body.find(R"("object":"refund","amount":500,"charge":")" + id +
                       R"(","currency":"usd","status":"succeeded")") != std::string::npos);
    CHECK(member(r1.body, "id").rfind("re_alpha_", 0) == 0);
    // The same key again: the same refund, not a second one.
    CHECK(http_call(p, "POST", "/v1/refunds", part, form_headers("R1")).body == r1.body);
    // The same key for another amount: 422, nothing refunded.
    CHECK(http_call(p, "POST", "/v1/refunds", "charge=" + id + "&amount=600", form_headers("R1"))
              .status == 422);
    // What is left (1499) may be refunded, not one cent more.
    const auto over =
        http_call(p, "POST", "/v1/refunds", "charge=" + id + "&amount=1500", form_headers("R2"));
    CHECK(over.status == 400);
    CHECK(over.body.find(R"("code":"amount_too_large")") != std::string::npos);
    CHECK(http_call(p, "POST", "/v1/refunds", "charge=" + id + "&amount=1499", form_headers("R3"))
              .status == 200);
    CHECK(http_call(p, "POST", "/v1/refunds", "charge=" + id + "&amount=1", form_headers("R4"))
              .status == 400);
    // Unknown charges, and a charge of another gateway, are 404.
    CHECK(
        http_call(p, "POST", "/v1/refunds", "charge=ch_nope&amount=1", form_headers("R5")).status ==
        404);
    CHECK(http_call(sim.port(1), "POST", "/v1/refunds", "charge=" + id + "&amount=1",
                    form_headers("R6"))
              .status == 404);
    // A declined charge has nothing to give back; another currency is refused.
    const auto declined = http_call(
        p, "POST", "/v1/charges", "amount=300&currency=usd&source=tok_decline", form_headers("K2"));
    REQUIRE(declined.status == 402);
    const std::string declined_id = member(declined.body, "charge", "error");
    REQUIRE_FALSE(declined_id.empty());
    const auto nr = http_call(p, "POST", "/v1/refunds", "charge=" + declined_id + "&amount=300",
                              form_headers("R7"));
    CHECK(nr.status == 400);
    CHECK(nr.body.find(R"("code":"charge_not_refundable")") != std::string::npos);
    const auto small = http_call(p, "POST", "/v1/charges", "amount=100&currency=usd&source=tok_ok",
                                 form_headers("K3"));
    const std::string k3 = "charge=" + member(small.body, "id");
    CHECK(http_call(p, "POST", "/v1/refunds", k3 + "&amount=100&currency=eur", form_headers("R8"))
              .status == 400);
    // An outage refuses refunds retryably (503) and logs them failed.
    sim.set_down(0, true);
    CHECK(http_call(p, "POST", "/v1/refunds", k3 + "&amount=100", form_headers("R9")).status ==
          503);
    sim.set_down(0, false);
    CHECK(http_call(p, "POST", "/v1/refunds", k3 + "&amount=100", form_headers("R9")).status ==
          200);

    const auto charges = sim.charges();
    REQUIRE(charges.size() == 3);
    CHECK(charges[0].key == "K1");
    CHECK(charges[0].status == "approved");
    CHECK(charges[0].refunded_cents == 1999);
    CHECK(charges[1].status == "declined");
    CHECK(charges[1].refunded_cents == 0);
    CHECK(charges[2].key == "K3");
    CHECK(charges[2].refunded_cents == 100);

    const auto log = sim.refunds();
    std::vector<std::string> seen;
    for (const auto& e : log) {
      seen.push_back(e.gateway + " " + e.key + " " + e.charge_key + " " +
                     std::to_string(e.amount_cents) + " " + e.currency + " " + e.status);
    }
    CHECK(seen == std::vector<std::string>{
                      "alpha R1 K1 500 usd refunded",
                      "alpha R2 K1 1500 usd rejected",
                      "alpha R3 K1 1499 usd refunded",
                      "alpha R4 K1 1 usd rejected",
                      "alpha R5  1  rejected",
                      "beta R6  1  rejected",
                      "alpha R7 K2 300 usd rejected",
                      "alpha R8 K3 100 eur rejected",
                      "alpha R9 K3 100 usd failed",
                      "alpha R9 K3 100 usd refunded",
                  });
  }

  TEST_CASE("paysim: JSON-style refunds on the wire") {
    paysim_process sim{{"alpha"}};
    const uint16_t p = sim.port(0);
    const std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    const auto charged = http_call(
        p, "POST", "/payments",
        R"({"reference":"P1","amount":{"value":1000,"currency":"EUR"},"paymentMethod":{"token":"tok_ok"}})",
        h);
    REQUIRE(charged.status == 200);
    const std::string psp = member(charged.body, "pspReference");
    auto refund = [&](const std::string& ref, const std::string& names, int64_t value,
                      const std::string& currency = "EUR") {
      return http_call(p, "POST", "/refunds",
                       R"({"reference":")" + ref + R"(",)" + names + R"(,"amount":{"value":)" +
                           std::to_string(value) + R"(,"currency":")" + currency + R"("}})",
                       h);
    };
    const auto r1 = refund("F1", R"("paymentReference":"P1")", 400);
    CHECK(r1.status == 200);
    CHECK(member(r1.body, "status") == "refunded");
    CHECK(member(r1.body, "paymentPspReference") == psp);
    CHECK(member(r1.body, "paymentReference") == "P1");
    CHECK(member(r1.body, "reference") == "F1");
    CHECK(r1.body.find(R"("amount":{"value":400,"currency":"EUR"})") != std::string::npos);
    CHECK(refund("F1", R"("paymentReference":"P1")", 400).body == r1.body); // replayed
    CHECK(refund("F1", R"("paymentReference":"P1")", 401).status == 422);   // key conflict
    // By the gateway's reference, or both (which must agree).
    CHECK(refund("F2", R"("paymentPspReference":")" + psp + R"(")", 100).status == 200);
    CHECK(refund("F3", R"("paymentPspReference":")" + psp + R"(","paymentReference":"P1")", 100)
              .status == 200);
    CHECK(refund("F4", R"("paymentPspReference":")" + psp + R"(","paymentReference":"P9")", 1)
              .status == 404);
    CHECK(refund("F5", R"("paymentReference":"P9")", 1).status == 404);
    const auto over = refund("F6", R"("paymentReference":"P1")", 401);
    CHECK(over.status == 422);
    CHECK(member(over.body, "errorCode") == "refund_exceeds_balance");
    CHECK(refund("F7", R"("paymentReference":"P1")", 400, "USD").status == 422);
    CHECK(refund("", R"("paymentReference":"P1")", 1).status == 400);
    CHECK(refund("F8", R"("other":"P1")", 1).status == 400);
    CHECK(http_call(p, "POST", "/refunds", R"({"reference":"F9","paymentReference":"P1"})", h)
              .status == 400);
    sim.set_down(0, true);
    CHECK(refund("F10", R"("paymentReference":"P1")", 400).status == 503);
    sim.set_down(0, false);
    CHECK(refund("F10", R"("paymentReference":"P1")", 400).status == 200);

    const auto charges = sim.charges();
    REQUIRE(charges.size() == 1);
    CHECK(charges[0].refunded_cents == 1000);
    const auto log = sim.refunds();
    std::vector<std::string> seen;
    for (const logged_refund& e : log) {
      seen.push_back(e.key + " " + e.charge_key + " " + std::to_string(e.amount_cents) + " " +
                     e.currency + " " + e.status);
    }
    CHECK(seen == std::vector<std::string>{"F1 P1 400 eur refunded", "F2 P1 100 eur refunded",
                                           "F3 P1 100 eur refunded", "F4 P9 1 eur rejected",
                                           "F5 P9 1 eur rejected", "F6 P1 401 eur rejected",
                                           "F7 P1 400 usd rejected", "F10 P1 400 eur failed",
                                           "F10 P1 400 eur refunded"});
  }

  TEST_CASE("paysim: one refund key from 8 connections at once is refunded once") {
    paysim_process sim{{"alpha"}};
    const auto charged = http_call(sim.port(0), "POST", "/v1/charges",
                                   "amount=700&currency=usd&source=tok_ok", form_headers("KC"));
    REQUIRE(charged.status == 200);
    const std::string body = "charge=" + member(charged.body, "id") + "&amount=700";
    CHECK(together_ok(8, [&] {
            return http_call(sim.port(0), "POST", "/v1/refunds", body, form_headers("KR"));
          }) == 8);
    CHECK(sim.refunds().size() == 1);
    CHECK(sim.charges().at(0).refunded_cents == 700);
  }

  TEST_CASE("paysim: one key from 8 connections at once is charged once") {
    paysim_process sim{{"alpha"}};
    CHECK(together_ok(8, [&] {
            return http_call(sim.port(0), "POST", "/v1/charges",
                             "amount=700&currency=usd&source=tok_ok", form_headers("KR"));
          }) == 8);
    CHECK(sim.charges().size() == 1);
  }

  TEST_CASE("paysim: PUT /_faults delays every capture's answer; the capture happens once") {
    using namespace std::chrono_literals;
    using clock = std::chrono::steady_clock;
    CHECK(run_paysim_to_exit({"--gateways=a=127.0.0.1:0", "--capture-delay-ms=60001"}) == 2);
    paysim_process sim{{"alpha"}};
    const uint16_t p = sim.port(0);
    const std::vector<std::pair<std::string, std::string>> json_h{
        {"Content-Type", "application/json"}};
    CHECK(http_call(p, "GET", "/_faults").body == R"({"capture_delay_ms":0})");
    for (const char* bad : {"[]", R"({"capture_delay_ms":-1})", R"({"capture_delay_ms":60001})",
                            R"({"capture_delay_ms":"5"})", R"({"latency_ms":5})"}) {
      CAPTURE(bad);
      CHECK(http_call(p, "PUT", "/_faults", bad, json_h).status == 400);
    }
    const auto set = http_call(p, "PUT", "/_faults", R"({"capture_delay_ms":1000})", json_h);
    CHECK(set.status == 200);
    CHECK(set.body == R"({"capture_delay_ms":1000})");
    CHECK(http_call(p, "GET", "/_faults").body == set.body);

    // Form style: the capture is made at once but answered after 1 s. A caller that waits
    // 300 ms has no answer (an unknown outcome); the key's retry is the same capture, late too.
    const auto authorise = [&](const std::string& key) {
      const auto a =
          http_call(p, "POST", "/v1/charges", "amount=700&currency=eur&source=tok_ok&capture=false",
                    form_headers(key));
      REQUIRE(a.status == 200);
      return member(a.body, "id");
    };
    const std::string f1 = authorise("F1");
    const auto form_capture = [&](const std::string& id, std::chrono::milliseconds timeout) {
      return http_call(p, "POST", "/v1/charges/" + id + "/capture", "",
                       form_headers("capture-" + id), timeout);
    };
    CHECK(form_capture(f1, 300ms).status == 0);
    CHECK(sim.charges().at(0).status == "approved"); // captured, though nobody heard it
    auto t0 = clock::now();
    const auto again = form_capture(f1, 5s);
    CHECK(again.status == 200);
    CHECK(again.body.find(R"("captured":true)") != std::string::npos);
    CHECK(clock::now() - t0 >= 1000ms);
    // A void is not delayed.
    const std::string f2 = authorise("F2");
    CHECK(http_call(p, "POST", "/v1/charges/" + f2 + "/cancel", "", form_headers("void-F2"), 900ms)
              .status == 200);

    // JSON style, the same.
    const auto j = http_call(
        p, "POST", "/payments",
        R"({"reference":"J1","amount":{"value":900,"currency":"EUR"},"paymentMethod":{"token":"tok_ok"},"additionalData":{"manualCapture":"true"}})",
        json_h);
    REQUIRE(j.status == 200);
    const std::string target = "/payments/" + member(j.body, "pspReference") + "/captures";
    const std::string body = R"({"reference":"capture-J1"})";
    CHECK(http_call(p, "POST", target, body, json_h, 300ms).status == 0);
    t0 = clock::now();
    CHECK(http_call(p, "POST", target, body, json_h, 5s).status == 201);
    CHECK(clock::now() - t0 >= 1000ms);

    // Back to 0: answered at once.
    CHECK(http_call(p, "PUT", "/_faults", R"({"capture_delay_ms":0})", json_h).status == 200);
    const std::string f3 = authorise("F3");
    CHECK(form_capture(f3, 900ms).status == 200);
    const auto log = sim.charges();
    REQUIRE(log.size() == 4);
    CHECK(log[0].status == "approved");
    CHECK(log[1].status == "voided");
    CHECK(log[2].status == "approved");
    CHECK(log[3].status == "approved");
  }

  TEST_CASE("paysim: --decline-rate=1 declines tok_ok") {
    paysim_process sim{{"alpha"}, {"--decline-rate=1", "--seed=7"}};
    CHECK(http_call(sim.port(0), "POST", "/v1/charges", "amount=7&currency=usd&source=tok_ok",
                    form_headers("KD"))
              .status == 402);
  }

} // TEST_SUITE
