#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "paysim_process.hpp"

using surge::ptest::http_call;
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

} // namespace

TEST_SUITE("payments") {

  TEST_CASE("paysim: flags") {
    CHECK(run_paysim_to_exit({"--help"}) == 0);
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

  TEST_CASE("paysim: one key from 8 connections at once is charged once") {
    paysim_process sim{{"alpha"}};
    std::atomic<int> ready{0};
    std::atomic<int> approved{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&] {
        ready.fetch_add(1);
        while (ready.load() < 8) {
          std::this_thread::yield();
        }
        const auto r = http_call(sim.port(0), "POST", "/v1/charges",
                                 "amount=700&currency=usd&source=tok_ok", form_headers("KR"));
        if (r.status == 200) {
          approved.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    CHECK(approved.load() == 8);
    CHECK(sim.charges().size() == 1);
  }

  TEST_CASE("paysim: --decline-rate=1 declines tok_ok") {
    paysim_process sim{{"alpha"}, {"--decline-rate=1", "--seed=7"}};
    CHECK(http_call(sim.port(0), "POST", "/v1/charges", "amount=7&currency=usd&source=tok_ok",
                    form_headers("KD"))
              .status == 402);
  }

} // TEST_SUITE
