#pragma once

// Webhooks from payment gateways into Surge (POST /api/v1/payments/{gateway}/webhook): each
// gateway signs its events in its wire style's own scheme, with a secret it shares with the shop
// (`payments.webhook_secrets`). An event that verifies only *tells* Surge that something happened
// to a charge; the order it names then settles itself by asking the gateway (lookup by key), as
// the reconciler would. So an event is safe before, after or instead of the synchronous answer,
// and receiving one twice does nothing the first did not.
//
//   form: header `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, t + "." + body)>`
//         (several v1 may be given: one must match, so secrets can be rolled), `t` within
//         `payments.webhook_tolerance` of now (replays of an old event are refused); the body is
//         an event {"id","type","data":{"object":<charge>}} whose charge's `description` is the
//         order id (what the form gateway sends as description).
//   json: a notification {"notificationItems":[{"NotificationRequestItem":{...}}]}, each item
//         signed in additionalData.hmacSignature: base64 HMAC-SHA-256 under the hex-decoded secret
//         of pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
//         eventCode:success. Every item must verify. merchantReference is the checkout's
//         Idempotency-Key, or a key Surge derived from it ("refund-", "capture-", "void-" + key).
//         The scheme has no timestamp (the gateway retries for days); de-duplication is by
//         pspReference + eventCode + success, and a repeat is harmless anyway.
//
// Depends on: the JSON parser of net/, OpenSSL (HMAC), gateway.hpp (gateway_kind, gateway_spec).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "surge/net/payments/gateway.hpp"

namespace surge::net::payments {

/// Where one gateway's webhooks are checked: its wire style and the secret it signs with.
struct webhook_endpoint {
  gateway_kind kind = gateway_kind::form;
  std::string secret; ///< form: the signing secret as given; json: the key's bytes (hex-decoded)
};

/// Parses `payments.webhook_secrets`: `name=secret,...`, each name one of `gateways` (at most
/// once). A json gateway's secret is its HMAC key in hex (an even number of hex digits, at least
/// 32); a form gateway's is any non-empty text without ',' (at least 16 characters). Blank input:
/// no webhooks. Returns the endpoints by gateway name, or a message naming the offending entry.
std::variant<std::map<std::string, webhook_endpoint>, std::string>
parse_webhook_secrets(std::string_view text, const std::vector<gateway_spec>& gateways);

/// One event a gateway reported, once its signature held.
struct webhook_event {
  std::string id;        ///< de-duplication key (form: the event id; json: psp:eventCode:success)
  std::string type;      ///< as the gateway names it: charge.succeeded, AUTHORISATION, CAPTURE, ...
  std::string charge_id; ///< the gateway's id of the charge
  std::string order_id;  ///< form: the charge's description (the order id), else empty
  std::string idempotency_key; ///< json: the checkout's key (derived prefixes removed), else empty
};

enum class webhook_failure {
  unsigned_signature, ///< no signature where the scheme puts it (401)
  bad_signature,      ///< no signature matches (401)
  stale,              ///< form: the timestamp is outside the tolerance (401)
  malformed,          ///< signed, but not an event of the scheme's shape (400)
};

/// Why a webhook was refused, for the answer.
struct webhook_refusal {
  webhook_failure why;
  std::string message;
};

/// Verifies and reads one webhook body sent to `endpoint`. `signature` is the form style's
/// Stripe-Signature header (empty when absent; the json style signs inside the body);
/// `now_s` the current Unix time in seconds. The events in the order sent, or why not.
std::variant<std::vector<webhook_event>, webhook_refusal>
read_webhook(const webhook_endpoint& endpoint, std::string_view signature, std::string_view body,
             int64_t now_s, std::chrono::seconds tolerance);

/// Signs `body` as a form gateway does at time `t_s` (the Stripe-Signature header's value), for
/// surge-paysim and tests.
std::string form_signature(std::string_view secret, int64_t t_s, std::string_view body);

/// The json style's signing string of one notification item's fields and its base64 HMAC under
/// `key` (raw bytes), for surge-paysim and tests.
std::string json_item_signature(std::string_view key, std::string_view psp_reference,
                                std::string_view original_reference,
                                std::string_view merchant_account,
                                std::string_view merchant_reference, int64_t value,
                                std::string_view currency, std::string_view event_code,
                                bool success);

} // namespace surge::net::payments
