// Gateway webhooks (webhook.hpp): both signature schemes, checked against signatures made here
// with OpenSSL directly, and every way a webhook is refused.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <map>
#include <string>

#include <doctest/doctest.h>

#include "surge/net/payments/webhook.hpp"

namespace surge::net::payments {

namespace {

std::string mac(std::string_view key, std::string_view msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hex(std::string_view bytes) {
  std::string out;
  char buf[3];
  for (const char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(c));
    out += buf;
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

const std::vector<gateway_spec> gateways{{"alpha", gateway_kind::form, "127.0.0.1", 7070, false},
                                         {"beta", gateway_kind::json, "127.0.0.1", 7071, false}};

constexpr int64_t now = 1'800'000'000;
constexpr std::chrono::seconds tolerance{300};
const std::string form_secret = "whsec_test_0123456789abcdef";
const std::string json_key_hex = "44782def547aaa06c910c43932b1eb0c71fc68d9d0c057550c48ec2acf6ba056";

const std::string form_body =
    R"({"id":"evt_1","type":"charge.succeeded","data":{"object":{"object":"charge",)"
    R"("id":"ch_9","description":"o_0123456789abcdef0123456789abcdef","amount":2500}}})";

std::string stripe_header(std::string_view secret, int64_t t, std::string_view body) {
  const std::string ts = std::to_string(t);
  return "t=" + ts + ",v1=" + hex(mac(secret, ts + "." + std::string{body}));
}

/// A json notification of one item whose signature is made with `key` over the fields given.
std::string adyen_body(std::string_view key, const std::string& code, const std::string& reference,
                       const std::string& tamper_value = {}) {
  const std::string fields = "psp_7::ShopAccount:" + reference + ":2500:USD:" + code + ":true";
  const std::string sig = base64(mac(key, fields));
  return R"({"live":"false","notificationItems":[{"NotificationRequestItem":{)"
         R"("pspReference":"psp_7","merchantAccountCode":"ShopAccount","merchantReference":")" +
         reference + R"(","amount":{"value":)" + (tamper_value.empty() ? "2500" : tamper_value) +
         R"(,"currency":"USD"},"eventCode":")" + code +
         R"(","success":"true","additionalData":{"hmacSignature":")" + sig + R"("}}}]})";
}

std::string json_key() {
  std::string out;
  for (std::size_t i = 0; i < json_key_hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(json_key_hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

} // namespace

TEST_SUITE("payments_unit") {

  TEST_CASE("payments.webhook_secrets: parsed per gateway, each entry checked") {
    auto ok = parse_webhook_secrets("alpha=" + form_secret + ", beta=" + json_key_hex, gateways);
    REQUIRE(std::holds_alternative<std::map<std::string, webhook_endpoint>>(ok));
    const auto& eps = std::get<std::map<std::string, webhook_endpoint>>(ok);
    REQUIRE(eps.size() == 2);
    CHECK(eps.at("alpha").kind == gateway_kind::form);
    CHECK(eps.at("alpha").secret == form_secret);
    CHECK(eps.at("beta").kind == gateway_kind::json);
    CHECK(eps.at("beta").secret == json_key()); // the key's bytes
    CHECK(std::get<std::map<std::string, webhook_endpoint>>(parse_webhook_secrets(" ", gateways))
              .empty());

    for (const std::string& bad : std::vector<std::string>{
             "gamma=" + form_secret, "alpha", "=x", "alpha=short", "beta=nothex" + json_key_hex,
             "beta=abc", "alpha=" + form_secret + ",alpha=" + form_secret}) {
      CAPTURE(bad);
      const auto r = parse_webhook_secrets(bad, gateways);
      REQUIRE(std::holds_alternative<std::string>(r));
      CHECK_FALSE(std::get<std::string>(r).empty());
    }
  }

  TEST_CASE("form style: Stripe-Signature over t.body, within the tolerance") {
    const webhook_endpoint ep{gateway_kind::form, form_secret};
    auto good = read_webhook(ep, stripe_header(form_secret, now - 10, form_body), form_body, now,
                             tolerance);
    REQUIRE(std::holds_alternative<std::vector<webhook_event>>(good));
    const auto& events = std::get<std::vector<webhook_event>>(good);
    REQUIRE(events.size() == 1);
    CHECK(events[0].id == "evt_1");
    CHECK(events[0].type == "charge.succeeded");
    CHECK(events[0].charge_id == "ch_9");
    CHECK(events[0].order_id == "o_0123456789abcdef0123456789abcdef");
    CHECK(events[0].idempotency_key.empty());
    // What paysim and the tests sign with agrees with the independent computation above.
    CHECK(form_signature(form_secret, now - 10, form_body) ==
          stripe_header(form_secret, now - 10, form_body));

    // A rolled secret: one of several v1 entries matches (other schemes are ignored).
    const std::string ts = std::to_string(now);
    const std::string rolled = "t=" + ts + ",v0=abc,v1=" + std::string(64, '0') +
                               ",v1=" + hex(mac(form_secret, ts + "." + form_body));
    CHECK(std::holds_alternative<std::vector<webhook_event>>(
        read_webhook(ep, rolled, form_body, now, tolerance)));

    auto refused = [&](std::string_view header, std::string_view body, int64_t at) {
      auto r = read_webhook(ep, header, body, at, tolerance);
      REQUIRE(std::holds_alternative<webhook_refusal>(r));
      return std::get<webhook_refusal>(r);
    };
    std::string forged = form_body;
    forged.replace(forged.find("2500"), 4, "9999");
    CHECK(refused(stripe_header(form_secret, now, form_body), forged, now).why ==
          webhook_failure::bad_signature);
    CHECK(refused(stripe_header("another-secret-entirely", now, form_body), form_body, now).why ==
          webhook_failure::bad_signature);
    // The timestamp is signed: moving it breaks the signature; an old signature is stale.
    auto moved = stripe_header(form_secret, now - 1000, form_body);
    moved.replace(2, ts.size(), ts);
    CHECK(refused(moved, form_body, now).why == webhook_failure::bad_signature);
    CHECK(refused(stripe_header(form_secret, now - 301, form_body), form_body, now).why ==
          webhook_failure::stale);
    CHECK(refused(stripe_header(form_secret, now + 301, form_body), form_body, now).why ==
          webhook_failure::stale);
    CHECK(refused("", form_body, now).why == webhook_failure::unsigned_signature);
    CHECK(refused("v1=" + std::string(64, 'a'), form_body, now).why ==
          webhook_failure::unsigned_signature);
    CHECK(refused("t=" + ts, form_body, now).why == webhook_failure::unsigned_signature);
    CHECK(refused("t=-5,v1=aa", form_body, now).why == webhook_failure::unsigned_signature);
    CHECK(refused("garbage", form_body, now).why == webhook_failure::unsigned_signature);
    // Signed but not an event: 400, not 401.
    for (const std::string& body :
         {std::string{"[1,2]"}, std::string{"{\"id\":\"evt\"}"}, std::string{"{not json"}}) {
      CAPTURE(body);
      CHECK(refused(stripe_header(form_secret, now, body), body, now).why ==
            webhook_failure::malformed);
    }
  }

  TEST_CASE("json style: each item's hmacSignature over its fields under the hex key") {
    const webhook_endpoint ep{gateway_kind::json, json_key()};
    const auto body = adyen_body(json_key(), "AUTHORISATION", "key-1");
    auto good = read_webhook(ep, "", body, now, tolerance);
    REQUIRE(std::holds_alternative<std::vector<webhook_event>>(good));
    const auto& events = std::get<std::vector<webhook_event>>(good);
    REQUIRE(events.size() == 1);
    CHECK(events[0].id == "psp_7:AUTHORISATION:true");
    CHECK(events[0].charge_id == "psp_7");
    CHECK(events[0].idempotency_key == "key-1");
    CHECK(events[0].order_id.empty());
    CHECK(json_item_signature(json_key(), "psp_7", "", "ShopAccount", "key-1", 2500, "USD",
                              "AUTHORISATION", true) ==
          base64(mac(json_key(), "psp_7::ShopAccount:key-1:2500:USD:AUTHORISATION:true")));

    // The modifications Surge asked for name the checkout's key under a derived one.
    auto key_of = [&](const std::string& code, const std::string& ref) {
      auto r = read_webhook(ep, "", adyen_body(json_key(), code, ref), now, tolerance);
      REQUIRE(std::holds_alternative<std::vector<webhook_event>>(r));
      return std::get<std::vector<webhook_event>>(r).at(0).idempotency_key;
    };
    CHECK(key_of("CAPTURE", "capture-key-1") == "key-1");
    CHECK(key_of("CANCELLATION", "void-key-1") == "key-1");
    CHECK(key_of("REFUND", "refund-key-1") == "key-1");
    CHECK(key_of("AUTHORISATION", "refund-key-1") == "refund-key-1"); // a shopper's own key

    auto why = [&](const std::string& b) {
      auto r = read_webhook(ep, "", b, now, tolerance);
      REQUIRE(std::holds_alternative<webhook_refusal>(r));
      return std::get<webhook_refusal>(r).why;
    };
    CHECK(why(adyen_body(json_key(), "AUTHORISATION", "key-1", "9999")) ==
          webhook_failure::bad_signature);
    CHECK(why(adyen_body("another key", "AUTHORISATION", "key-1")) ==
          webhook_failure::bad_signature);
    std::string unsigned_body = body;
    unsigned_body.replace(unsigned_body.find("hmacSignature"), 13, "somethingElse");
    CHECK(why(unsigned_body) == webhook_failure::unsigned_signature);
    CHECK(why(R"({"notificationItems":[]})") == webhook_failure::malformed);
    CHECK(why(R"({"notificationItems":[{"x":1}]})") == webhook_failure::malformed);
    CHECK(why("[]") == webhook_failure::malformed);
    CHECK(why("") == webhook_failure::malformed);
  }

  TEST_CASE("webhook bodies cut or with a bit flipped anywhere: refused, or the same event") {
    const webhook_endpoint form{gateway_kind::form, form_secret};
    const webhook_endpoint json{gateway_kind::json, json_key()};
    const auto header = stripe_header(form_secret, now, form_body);
    const auto adyen = adyen_body(json_key(), "AUTHORISATION", "key-1");
    std::size_t tried = 0;
    std::size_t still_verified = 0;
    for (const auto& [ep, body] : {std::pair{&form, form_body}, std::pair{&json, adyen}}) {
      for (std::size_t i = 0; i < body.size(); ++i) {
        std::string flipped = body;
        flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
        for (const auto& b : {flipped, body.substr(0, i)}) {
          ++tried;
          auto r = read_webhook(*ep, header, b, now, tolerance);
          if (const auto* events = std::get_if<std::vector<webhook_event>>(&r)) {
            // The form style signs every byte; the json style signs its fields, so only a change
            // outside them (the "live" flag, white space) may pass, and says the same.
            CAPTURE(b);
            REQUIRE(ep == &json);
            REQUIRE(events->size() == 1);
            CHECK(events->at(0).id == "psp_7:AUTHORISATION:true");
            CHECK(events->at(0).idempotency_key == "key-1");
            ++still_verified;
          }
        }
      }
    }
    MESSAGE(tried << " mutated bodies, " << still_verified
                  << " still verified (json, outside the signed fields)");
  }
}

} // namespace surge::net::payments
