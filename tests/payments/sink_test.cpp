// surge-webhook-sink (tools/webhook-sink), the shop's endpoint of Surge's outgoing webhooks in
// tests: the real binary as a child process (sink_process.hpp). Signatures are made here with
// OpenSSL directly, not with the sink's code.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "paysim_process.hpp"
#include "sink_process.hpp"

namespace surge::ptest {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using headers = std::vector<std::pair<std::string, std::string>>;

const std::string secret = "whsec_sink_test_0123456789abcdef";

const std::string body_42 =
    R"({"id":"evt_42","type":"order.confirmed","created_at":"2026-12-07T10:00:00.000Z",)"
    R"("order_id":"o-abc","data":{"total_cents":2500,"note":"caf\u00e9 \"quoted\""}})";

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Lowercase hex HMAC-SHA256 of `msg` under `key`.
std::string hmac_hex(std::string_view key, std::string_view msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", out[i]);
    hex += buf;
  }
  return hex;
}

/// Surge-Signature for `body` at `t` under `key`.
std::string signature(std::string_view key, int64_t t, std::string_view body) {
  const std::string ts = std::to_string(t);
  return "t=" + ts + ",v1=" + hmac_hex(key, ts + "." + std::string{body});
}

/// The headers Surge sends with a delivery; no Surge-Signature when `sig` is empty.
headers surge_headers(const std::string& sig, const std::string& event_id = "evt_42",
                      int attempt = 1) {
  headers h{{"Content-Type", "application/json"},
            {"Surge-Event-Id", event_id},
            {"Surge-Event-Type", "order.confirmed"},
            {"Surge-Delivery-Attempt", std::to_string(attempt)}};
  if (!sig.empty()) {
    h.emplace_back("Surge-Signature", sig);
  }
  return h;
}

/// One webhook POST to `path`, timed.
struct timed_result {
  http_result r;
  steady::duration took{};
};

timed_result post(const sink_process& s, const std::string& body, headers h,
                  std::chrono::milliseconds timeout = 5s, const std::string& path = "/hooks") {
  const auto start = steady::now();
  http_result r = http_call(s.port(), "POST", path, body, std::move(h), timeout);
  return {std::move(r), steady::now() - start};
}

/// GET /_stats until `done` holds for it (the sink counts a request it holds when it has read
/// it, which the client does not see), at most 10 s; the last answer.
template <class Pred>
sink_stats stats_when(const sink_process& s, Pred done) {
  const auto deadline = steady::now() + 10s;
  sink_stats st = s.stats();
  while (!done(st) && steady::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    st = s.stats();
  }
  return st;
}

} // namespace

TEST_SUITE("webhook_sink") {

  TEST_CASE("webhook_sink: flags") {
    const auto bogus = run_sink({"--listen=127.0.0.1:0", "--bogus=1"});
    CHECK(bogus.status == 2);
    CHECK(bogus.output.find("unknown flag --bogus") != std::string::npos);
    CHECK(run_sink({}).status == 2); // --listen is required
    CHECK(run_sink({"--listen=127.0.0.1"}).status == 2);
    CHECK(run_sink({"--listen=nowhere:0"}).status == 2);
    CHECK(run_sink({"--listen=127.0.0.1:0", "--mode=sideways"}).status == 2);
    CHECK(run_sink({"--listen=127.0.0.1:0", "--delay-ms=-1"}).status == 2);
    CHECK(run_sink({"--listen=127.0.0.1:0", "--secret="}).status == 2);
    const auto help = run_sink({"--help"});
    CHECK(help.status == 0);
    CHECK(help.output.find("usage: surge-webhook-sink") != std::string::npos);

    sink_process s;
    CHECK(s.port() != 0);
    CHECK(s.url("/hooks") == "http://127.0.0.1:" + std::to_string(s.port()) + "/hooks");
    CHECK(s.stop() == 0); // SIGTERM: exit 0
  }

  TEST_CASE("webhook_sink: a correctly signed POST is recorded, duplicates too") {
    sink_process s{{"--secret=" + secret}};
    const int64_t t = unix_now();
    const int64_t before_ms = t * 1000;
    auto a = post(s, body_42, surge_headers(signature(secret, t, body_42)));
    CHECK(a.r.status == 200);
    CHECK(a.r.body == R"({"received":true})");
    // The same event again (a retry): recorded again, the test de-duplicates.
    auto b = post(s, body_42, surge_headers(signature(secret, t, body_42), "evt_42", 2));
    CHECK(b.r.status == 200);
    // Several v1 entries (a secret being rotated): any one that matches will do.
    const std::string rotated = "t=" + std::to_string(t) +
                                ",v1=" + hmac_hex("old-secret", std::to_string(t) + "." + body_42) +
                                ", v1=" + hmac_hex(secret, std::to_string(t) + "." + body_42);
    auto c = post(s, body_42, surge_headers(rotated, "evt_42", 3), 5s, "/other/path?x=1");
    CHECK(c.r.status == 200);

    const auto events = s.events();
    REQUIRE(events.size() == 3);
    for (std::size_t i = 0; i < events.size(); ++i) {
      CHECK(events[i].seq == static_cast<int64_t>(i) + 1);
      CHECK(events[i].event_id == "evt_42");
      CHECK(events[i].type == "order.confirmed");
      CHECK(events[i].order_id == "o-abc");
      CHECK(events[i].attempt == static_cast<int64_t>(i) + 1);
      CHECK(events[i].received_at_ms >= before_ms);
      CHECK(events[i].body == body_42); // byte for byte, escapes and all
    }
    const auto st = s.stats();
    CHECK(st.received == 3);
    CHECK(st.rejected == 0);
    CHECK(st.failed + st.timed_out + st.dropped == 0);
  }

  TEST_CASE("webhook_sink: a wrong, stale, missing or malformed signature is 400, not recorded") {
    sink_process s{{"--secret=" + secret, "--tolerance-s=300"}};
    const int64_t t = unix_now();
    const std::vector<std::string> bad = {
        signature("another-secret", t, body_42),                     // wrong secret
        signature(secret, t, body_42 + " "),                         // another body
        signature(secret, t - 301, body_42),                         // stale
        signature(secret, t + 301, body_42),                         // from the future
        "v1=" + hmac_hex(secret, std::to_string(t) + "." + body_42), // no t
        "t=" + std::to_string(t),                                    // no v1
        "t=soon,v1=" + hmac_hex(secret, "soon." + body_42),          // t not a number
        "garbage",
    };
    for (const auto& sig : bad) {
      CAPTURE(sig);
      const auto r = post(s, body_42, surge_headers(sig));
      CHECK(r.r.status == 400);
      CHECK(r.r.body == R"({"error":"bad signature"})");
    }
    const auto missing = post(s, body_42, surge_headers(""));
    CHECK(missing.r.status == 400);

    CHECK(s.events().empty());
    const auto st = s.stats();
    CHECK(st.rejected == static_cast<int64_t>(bad.size()) + 1);
    CHECK(st.received == 0);

    // Within the tolerance either way is fine.
    CHECK(post(s, body_42, surge_headers(signature(secret, t - 250, body_42))).r.status == 200);
    CHECK(post(s, body_42, surge_headers(signature(secret, t + 250, body_42))).r.status == 200);
    CHECK(s.stats().received == 2);
  }

  TEST_CASE("webhook_sink: without --secret an unsigned POST is recorded") {
    sink_process s;
    CHECK(post(s, body_42, surge_headers("")).r.status == 200);
    const auto events = s.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].event_id == "evt_42");
  }

  TEST_CASE("webhook_sink: mode fail is 500 and not recorded, until set back to ok") {
    sink_process s{{"--secret=" + secret, "--mode=fail"}};
    const auto sig = signature(secret, unix_now(), body_42);
    const auto r = post(s, body_42, surge_headers(sig));
    CHECK(r.r.status == 500);
    CHECK(r.r.body == R"({"error":"failing on demand"})");
    CHECK(s.events().empty());
    CHECK(s.stats().failed == 1);

    s.set_mode("ok");
    CHECK(post(s, body_42, surge_headers(sig, "evt_42", 2)).r.status == 200);
    const auto events = s.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].attempt == 2);
    const auto st = s.stats();
    CHECK(st.failed == 1);
    CHECK(st.received == 1);
  }

  TEST_CASE("webhook_sink: mode slow answers 200 after the delay") {
    sink_process s{{"--secret=" + secret, "--mode=slow", "--delay-ms=300"}};
    const auto r = post(s, body_42, surge_headers(signature(secret, unix_now(), body_42)));
    CHECK(r.r.status == 200);
    CHECK(r.took >= 300ms);
    CHECK(s.events().size() == 1);
    CHECK(s.stats().received == 1);
  }

  TEST_CASE("webhook_sink: mode timeout never answers; other connections are served meanwhile") {
    sink_process s{{"--secret=" + secret, "--mode=timeout", "--delay-ms=60000"}};
    const auto sig = signature(secret, unix_now(), body_42);

    // The client's own timeout fires first: no answer.
    const auto r = post(s, body_42, surge_headers(sig), 300ms);
    CHECK(r.r.status == 0);
    CHECK(r.took >= 300ms);
    CHECK(stats_when(s, [](const sink_stats& st) { return st.timed_out == 1; }).timed_out == 1);

    // One held connection does not hold up the others: the control API and a webhook in mode
    // ok are answered while it waits.
    auto held = std::async(std::launch::async,
                           [&] { return post(s, body_42, surge_headers(sig, "evt_42", 2), 30s); });
    CHECK(stats_when(s, [](const sink_stats& st) { return st.timed_out == 2; }).timed_out == 2);
    s.set_mode("ok");
    CHECK(post(s, body_42, surge_headers(sig, "evt_42", 3)).r.status == 200);
    CHECK(held.wait_for(0s) == std::future_status::timeout); // still held
    const auto events = s.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].attempt == 3);

    // The sink closes a held connection after the delay: the client sees the close well
    // before its own timeout.
    s.set_mode("timeout", 300ms);
    const auto closed = post(s, body_42, surge_headers(sig, "evt_42", 4), 20s);
    CHECK(closed.r.status == 0);
    CHECK(closed.took >= 300ms);
    CHECK(closed.took < 20s);
    CHECK(s.stats().timed_out == 3);

    s.stop(); // closes the held connection
    CHECK(held.get().r.status == 0);
  }

  TEST_CASE("webhook_sink: mode down closes the connection without an answer") {
    sink_process s{{"--secret=" + secret, "--mode=down"}};
    const auto r = post(s, body_42, surge_headers(signature(secret, unix_now(), body_42)), 20s);
    CHECK(r.r.status == 0);
    CHECK(r.took < 20s); // closed by the sink, not by the client's timeout
    CHECK(s.events().empty());
    const auto st = s.stats();
    CHECK(st.dropped == 1);
    CHECK(st.received == 0);
  }

  TEST_CASE("webhook_sink: the control API — PUT /_mode errors, DELETE /_events") {
    sink_process s{{"--mode=down"}};
    // Control paths answer whatever the mode.
    for (const std::string bad :
         {"{", "[]", R"({"mode":"sideways"})", R"({"delay_ms":10})",
          R"({"mode":"slow","delay_ms":-1})", R"({"mode":"slow","delay_ms":"10"})"}) {
      CAPTURE(bad);
      CHECK(http_call(s.port(), "PUT", "/_mode", bad, {{"Content-Type", "application/json"}})
                .status == 400);
    }
    const auto ok = http_call(s.port(), "PUT", "/_mode", R"({"mode":"slow","delay_ms":50})",
                              {{"Content-Type", "application/json"}});
    CHECK(ok.status == 200);
    CHECK(ok.body == R"({"mode":"slow","delay_ms":50})");
    CHECK(http_call(s.port(), "POST", "/_mode", "{}").status == 405);
    CHECK(http_call(s.port(), "GET", "/hooks").status == 405); // webhooks are POSTs

    s.set_mode("ok");
    CHECK(post(s, body_42, surge_headers("", "evt_1")).r.status == 200);
    CHECK(post(s, body_42, surge_headers("", "evt_2")).r.status == 200);
    CHECK(s.events().size() == 2);
    s.clear_events();
    CHECK(s.events().empty());
    CHECK(s.stats().received == 2); // the counts stay
    CHECK(post(s, body_42, surge_headers("", "evt_3")).r.status == 200);
    const auto events = s.events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].event_id == "evt_3");
    CHECK(events[0].seq == 3); // never reused
  }

} // TEST_SUITE

} // namespace surge::ptest
