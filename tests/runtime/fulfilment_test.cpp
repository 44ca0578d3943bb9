// The pure parts of the fulfilment (runtime/src/fulfilment.hpp): its settings, the webhook event
// of an order-stream entry, and when a failed delivery is tried again.

#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include <doctest/doctest.h>

#include "fulfilment.hpp"
#include "surge/net/json.hpp"

using namespace surge::runtime;
using namespace std::chrono_literals;

namespace {

std::vector<webhook_target> targets(std::string_view endpoints, std::string_view secrets) {
  auto r = parse_webhook_targets(endpoints, secrets);
  auto* err = std::get_if<std::string>(&r);
  REQUIRE_MESSAGE(err == nullptr, (err ? *err : ""));
  return std::get<0>(r);
}

std::string refusal(std::string_view endpoints, std::string_view secrets) {
  auto r = parse_webhook_targets(endpoints, secrets);
  REQUIRE_MESSAGE(std::holds_alternative<std::string>(r), endpoints << " / " << secrets);
  return std::get<std::string>(r);
}

using fields_t = std::vector<std::pair<std::string, std::string>>;

fields_t entry(const std::string& id, const std::string& key, const std::string& payload) {
  return {{"event_id", id}, {"key", key}, {"payload", payload}};
}

} // namespace

TEST_SUITE("fulfilment_unit") {

  TEST_CASE("webhooks.endpoints and webhooks.secrets") {
    CHECK(targets("", "").empty());
    CHECK(targets("  ", " ").empty());
    auto t = targets("shop=https://shop.example/hooks/surge?v=1, erp=http://10.0.0.5:8080",
                     "erp=0123456789abcdef0123, shop=a-long-enough-secret");
    REQUIRE(t.size() == 2);
    CHECK(t[0].name == "shop");
    CHECK(t[0].url.tls);
    CHECK(t[0].url.host == "shop.example");
    CHECK(t[0].url.port == 443);
    CHECK(t[0].url.path == "/hooks/surge?v=1");
    CHECK(t[0].secret == "a-long-enough-secret");
    CHECK(t[1].url.path == "/");
    CHECK(t[1].url.port == 8080);
    CHECK(surge::net::payments::to_string(t[0].url) == "https://shop.example:443/hooks/surge?v=1");
    auto v6 = targets("x=http://[::1]:9/in", "x=0123456789abcdef");
    CHECK(surge::net::payments::to_string(v6[0].url) == "http://[::1]:9/in");

    CHECK(refusal("shop", "").find("webhooks.endpoints") == 0);
    CHECK(refusal("sh op=http://a:1/", "").find("the name") != std::string::npos);
    CHECK(refusal("a=http://h:1/,a=http://h:2/", "a=0123456789abcdef").find("twice") !=
          std::string::npos);
    CHECK(refusal("a=ftp://h:1/", "a=0123456789abcdef").find("http") != std::string::npos);
    CHECK(refusal("a=http://h/", "a=0123456789abcdef").find("port") != std::string::npos);
    CHECK(refusal("a=http://u@h:1/", "a=0123456789abcdef").find("webhooks.endpoints") == 0);
    CHECK(refusal("a=http://h:1/x y", "a=0123456789abcdef").find("printable") != std::string::npos);
    // Every endpoint needs its secret, long enough; no secret for a name that is not one.
    CHECK(refusal("a=http://h:1/", "").find("no secret for the endpoint 'a'") != std::string::npos);
    CHECK(refusal("a=http://h:1/", "a=short").find("16") != std::string::npos);
    CHECK(refusal("a=http://h:1/", "a=0123456789abcdef,b=0123456789abcdef")
              .find("'b' is not an endpoint") != std::string::npos);
    CHECK(refusal("", "b=0123456789abcdef").find("'b' is not an endpoint") != std::string::npos);
    // A malformed secrets entry is named without its secret.
    auto msg = refusal("a=http://h:1/", "a");
    CHECK(msg.find("webhooks.secrets") == 0);
    auto msg2 = refusal("a=http://h:1/", "a=0123456789abcdef,=secretvalue-xyz");
    CHECK(msg2.find("secretvalue") == std::string::npos);
  }

  TEST_CASE("the webhook event of an order-stream entry") {
    auto ev = event_of_entry(
        "orders", entry("42", "o-1", R"({"order_id":"o-1","status":"confirmed","total_cents":5})"));
    REQUIRE(std::holds_alternative<order_event>(ev));
    const auto& e = std::get<order_event>(ev);
    CHECK(e.event_id == 42);
    CHECK(e.order_id == "o-1");
    CHECK(e.type == "order.confirmed");
    auto body = surge::net::json::parse(e.body);
    REQUIRE(std::holds_alternative<surge::net::json::value>(body));
    const auto& v = std::get<surge::net::json::value>(body);
    CHECK(std::get<std::string>(v.find("id")->get()) == "evt_42");
    CHECK(std::get<std::string>(v.find("type")->get()) == "order.confirmed");
    CHECK(std::get<std::string>(v.find("order_id")->get()) == "o-1");
    CHECK(std::get<int64_t>(v.find("data")->find("total_cents")->get()) == 5);

    auto refund = event_of_entry(
        "refunds", entry("7", "o-1", R"({"event":"order.refunded","order_id":"o-1"})"));
    REQUIRE(std::holds_alternative<order_event>(refund));
    CHECK(std::get<order_event>(refund).type == "order.refunded");
    for (const char* bad : {"", ".x", "x.", "a..b", "Order.refunded", "a b"}) {
      CHECK(std::holds_alternative<std::string>(event_of_entry(
          "refunds", entry("7", "o-1", std::string{R"({"event":")"} + bad + "\"}"))));
    }

    // What cannot be an event says why (it goes to the dead-letter stream).
    for (const auto& bad : std::vector<fields_t>{
             {},
             {{"event_id", "1"}, {"key", "o"}},
             entry("x", "o", "{}"),
             entry("0", "o", R"({"status":"paid"})"),
             entry("-3", "o", R"({"status":"paid"})"),
             entry("1", "", R"({"status":"paid"})"),
             entry("1", "o", "not json"),
             entry("1", "o", "[1]"),
             entry("1", "o", R"({"status":3})"),
             entry("1", "o", R"({"status":"Paid Now"})"),
             entry("1", "o", R"({"event":"x"})"),
         }) {
      auto r = event_of_entry("orders", bad);
      CHECK(std::holds_alternative<std::string>(r));
    }
    CHECK(std::holds_alternative<std::string>(
        event_of_entry("refunds", entry("1", "o", R"({"status":"paid"})"))));
  }

  TEST_CASE("retries: doubling from the base, capped, jittered down, ending with the window") {
    const retry_policy p{.base = 10s, .max = 1h, .give_up_after = 24h};
    const int64_t t0 = 1'000'000;
    CHECK(retry_after(p, 1, t0, t0, 0.0) == 10s);
    CHECK(retry_after(p, 2, t0, t0 + 10'000, 0.0) == 20s);
    CHECK(retry_after(p, 5, t0, t0 + 100'000, 0.0) == 160s);
    CHECK(retry_after(p, 30, t0, t0 + 100'000, 0.0) == 1h); // capped
    CHECK(retry_after(p, 1000, t0, t0, 0.0) == 1h);         // no overflow
    // Jitter only shortens, by at most 10%.
    auto j = retry_after(p, 1, t0, t0, 0.99);
    REQUIRE(j);
    CHECK(*j <= 10s);
    CHECK(*j >= 9s);
    // The last try lands at the end of the window; after it, none.
    CHECK(retry_after(p, 40, t0, t0 + 24 * 3'600'000 - 5'000, 0.0) == 5s);
    CHECK_FALSE(retry_after(p, 40, t0, t0 + 24 * 3'600'000, 0.0));
    CHECK_FALSE(retry_after(p, 2, t0, t0 + 25 * 3'600'000, 0.0));

    // A receiver down for 10 minutes (the default schedule): how many attempts, and the first
    // one after it came back is at most one capped interval later.
    int attempts = 1;
    int64_t now = t0;
    while (now < t0 + 600'000) {
      auto wait = retry_after(p, attempts, t0, now, 0.5);
      REQUIRE(wait);
      now += wait->count();
      ++attempts;
    }
    CHECK(attempts >= 6);
    CHECK(attempts <= 8);
    CHECK(now - (t0 + 600'000) <= 3'600'000);
  }

} // TEST_SUITE
