// libFuzzer target over the gateways' webhook bodies (net/payments/webhook.hpp). The first byte
// picks the mode, the rest is its input:
//   0: the rest is a form-style body, sent with a signature made here over it (so the event
//      parser behind the MAC is reached) and with the same signature over another secret;
//   1: the rest is a Stripe-Signature header, a NUL, a body: verified as given;
//   2: the rest is a json-style notification, verified as given;
//   3: the rest is a `payments.webhook_secrets` value.
// A crash, a sanitizer report or a failed check (abort) is a bug.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "surge/net/payments/webhook.hpp"

namespace pay = surge::net::payments;

namespace {

constexpr surge::fuzz::checker check{"fuzz_webhook"};

constexpr int64_t now = 1'800'000'000;
constexpr std::chrono::seconds tolerance{300};
const std::string secret = "fuzz-webhook-secret-0123456789"; // not a real secret

using answer = std::variant<std::vector<pay::webhook_event>, pay::webhook_refusal>;

/// The checks every answer passes; the events when accepted.
const std::vector<pay::webhook_event>* check_answer(const answer& r) {
  if (const auto* no = std::get_if<pay::webhook_refusal>(&r)) {
    check(!no->message.empty(), "a refusal says why");
    return nullptr;
  }
  const auto& events = std::get<std::vector<pay::webhook_event>>(r);
  check(!events.empty() && events.size() <= 100, "1..100 events");
  for (const auto& e : events) {
    check(!e.id.empty() && !e.type.empty(), "an event has an id and a type");
  }
  return &events;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const pay::webhook_endpoint form{pay::gateway_kind::form, secret};
  static const pay::webhook_endpoint json{pay::gateway_kind::json, secret};
  static const std::vector<pay::gateway_spec> gateways{
      {"alpha", pay::gateway_kind::form, "127.0.0.1", 7070, false},
      {"beta", pay::gateway_kind::json, "127.0.0.1", 7071, false}};
  if (size == 0) {
    return 0;
  }
  const int mode = data[0] % 4;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode == 0) {
    const auto sig = pay::form_signature(secret, now, rest);
    check_answer(pay::read_webhook(form, sig, rest, now, tolerance));
    const auto forged = pay::form_signature(secret + "x", now, rest);
    check(std::holds_alternative<pay::webhook_refusal>(
              pay::read_webhook(form, forged, rest, now, tolerance)),
          "another secret's signature is refused");
    check(std::holds_alternative<pay::webhook_refusal>(
              pay::read_webhook(form, sig, rest, now + 301, tolerance)),
          "a stale signature is refused");
    return 0;
  }
  if (mode == 1) {
    const auto nul = rest.find('\0');
    const std::string header = rest.substr(0, nul);
    const std::string body = nul == std::string::npos ? std::string{} : rest.substr(nul + 1);
    check(check_answer(pay::read_webhook(form, header, body, now, tolerance)) == nullptr ||
              header.find("v1=") != std::string::npos,
          "accepted only with a v1 signature");
    return 0;
  }
  if (mode == 2) {
    check_answer(pay::read_webhook(json, {}, rest, now, tolerance));
    return 0;
  }
  auto parsed = pay::parse_webhook_secrets(rest, gateways);
  if (const auto* eps = std::get_if<0>(&parsed)) {
    for (const auto& [name, ep] : *eps) {
      check(name == "alpha" || name == "beta", "only configured gateways");
      check(!ep.secret.empty(), "a secret is never empty");
    }
  } else {
    check(!std::get<std::string>(parsed).empty(), "a refusal says why");
  }
  return 0;
}
