#include "surge/net/payments/webhook.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "surge/net/json.hpp"
#include "surge/net/text.hpp"

namespace surge::net::payments {

namespace {

constexpr std::size_t max_items = 100;    // notification items in one json webhook
constexpr std::size_t max_signatures = 8; // v1 entries in one Stripe-Signature header

std::string hmac_sha256(std::string_view key, std::string_view msg) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len) == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

std::string to_base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

/// `a == b` in time that depends only on their lengths.
bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string str_of(const json::value* obj, std::string_view key) {
  const json::value* v = obj != nullptr ? obj->find(key) : nullptr;
  return v != nullptr && v->is_string() ? std::get<std::string>(v->get()) : std::string{};
}

const json::value* object_of(const json::value* obj, std::string_view key) {
  const json::value* v = obj != nullptr ? obj->find(key) : nullptr;
  return v != nullptr && v->is_object() ? v : nullptr;
}

webhook_refusal refuse(webhook_failure why, std::string message) {
  return webhook_refusal{why, std::move(message)};
}

std::variant<std::vector<webhook_event>, webhook_refusal>
read_form(const webhook_endpoint& ep, std::string_view header, std::string_view body, int64_t now_s,
          std::chrono::seconds tolerance) {
  using failure = webhook_failure;
  if (text::trim_space(header).empty()) {
    return refuse(failure::unsigned_signature, "no Stripe-Signature header");
  }
  std::string_view t;
  std::vector<std::string_view> v1;
  std::string_view rest = header;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const auto part = text::trim_space(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) {
      return refuse(failure::unsigned_signature, "Stripe-Signature: an entry without '='");
    }
    const auto k = part.substr(0, eq);
    const auto v = part.substr(eq + 1);
    if (k == "t") {
      t = v;
    } else if (k == "v1" && v1.size() < max_signatures) {
      v1.push_back(v);
    } // other schemes (v0, ...) are not ours to check
  }
  int64_t ts = 0;
  if (t.empty() || t.size() > 12 ||
      std::from_chars(t.data(), t.data() + t.size(), ts).ptr != t.data() + t.size() || ts < 0) {
    return refuse(failure::unsigned_signature, "Stripe-Signature: no timestamp t=<unix seconds>");
  }
  if (v1.empty()) {
    return refuse(failure::unsigned_signature, "Stripe-Signature: no v1 signature");
  }
  std::string payload;
  payload.reserve(t.size() + 1 + body.size());
  payload.append(t).append(".").append(body);
  const std::string want = to_hex(hmac_sha256(ep.secret, payload));
  bool matched = false;
  for (const auto sig : v1) {
    matched = same_secret(sig, want) || matched; // every candidate compared: no early exit
  }
  if (!matched) {
    return refuse(failure::bad_signature, "the signature does not match the body");
  }
  // Checked only once the timestamp is known to be the gateway's own.
  if (ts > now_s + tolerance.count() || ts < now_s - tolerance.count()) {
    return refuse(failure::stale, "the signature's timestamp is " + std::to_string(now_s - ts) +
                                      " s old, more than payments.webhook_tolerance (" +
                                      std::to_string(tolerance.count()) + " s) allows");
  }
  auto parsed = json::parse(body);
  const auto* event = std::get_if<json::value>(&parsed);
  if (event == nullptr || !event->is_object()) {
    return refuse(failure::malformed, "the body is not a JSON object");
  }
  webhook_event e;
  e.id = str_of(event, "id");
  e.type = str_of(event, "type");
  const json::value* obj = object_of(object_of(event, "data"), "object");
  if (e.id.empty() || e.type.empty() || obj == nullptr) {
    return refuse(failure::malformed, "an event needs \"id\", \"type\" and \"data\".\"object\"");
  }
  if (str_of(obj, "object") == "refund") {
    e.charge_id = str_of(obj, "charge");
  } else {
    e.charge_id = str_of(obj, "id");
    e.order_id = str_of(obj, "description");
  }
  return std::vector<webhook_event>{std::move(e)};
}

/// The checkout key a json gateway's merchantReference stands for in an event of `code`:
/// modifications Surge asked for carry the key it derived from the checkout's.
std::string checkout_key_of(const std::string& code, const std::string& reference) {
  static constexpr std::pair<std::string_view, std::string_view> derived[] = {
      {"CAPTURE", "capture-"},
      {"CAPTURE_FAILED", "capture-"},
      {"CANCELLATION", "void-"},
      {"REFUND", "refund-"},
      {"REFUND_FAILED", "refund-"}};
  for (const auto& [c, prefix] : derived) {
    if (code == c && reference.starts_with(prefix)) {
      return reference.substr(prefix.size());
    }
  }
  return reference;
}

std::variant<std::vector<webhook_event>, webhook_refusal> read_json(const webhook_endpoint& ep,
                                                                    std::string_view body) {
  using failure = webhook_failure;
  auto parsed = json::parse(body);
  const auto* doc = std::get_if<json::value>(&parsed);
  const json::value* items =
      doc != nullptr && doc->is_object() ? doc->find("notificationItems") : nullptr;
  if (items == nullptr || !items->is_array()) {
    return refuse(failure::malformed, "a notification needs \"notificationItems\": [...]");
  }
  const auto& list = std::get<json::array>(items->get());
  if (list.empty() || list.size() > max_items) {
    return refuse(failure::malformed, "a notification carries 1.." + std::to_string(max_items) +
                                          " items, not " + std::to_string(list.size()));
  }
  std::vector<webhook_event> out;
  out.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json::value* item = object_of(&list[i], "NotificationRequestItem");
    const json::value* amount = object_of(item, "amount");
    const json::value* value = amount != nullptr ? amount->find("value") : nullptr;
    const std::string where = "item " + std::to_string(i);
    if (item == nullptr || value == nullptr || !value->is_int()) {
      return refuse(failure::malformed,
                    where + ": needs a NotificationRequestItem with amount.value (an integer)");
    }
    const std::string psp = str_of(item, "pspReference");
    const std::string code = str_of(item, "eventCode");
    const std::string success = str_of(item, "success");
    const std::string reference = str_of(item, "merchantReference");
    if (psp.empty() || code.empty() || (success != "true" && success != "false")) {
      return refuse(failure::malformed,
                    where + ": needs pspReference, eventCode and success (\"true\"/\"false\")");
    }
    const std::string sig = str_of(object_of(item, "additionalData"), "hmacSignature");
    if (sig.empty()) {
      return refuse(failure::unsigned_signature, where + ": no additionalData.hmacSignature");
    }
    const std::string want = json_item_signature(
        ep.secret, psp, str_of(item, "originalReference"), str_of(item, "merchantAccountCode"),
        reference, std::get<int64_t>(value->get()), str_of(amount, "currency"), code,
        success == "true");
    if (!same_secret(sig, want)) {
      return refuse(failure::bad_signature, where + ": the signature does not match its fields");
    }
    webhook_event e;
    e.id = psp + ":" + code + ":" + success;
    e.type = code;
    e.charge_id = code == "AUTHORISATION" ? psp : str_of(item, "originalReference");
    e.idempotency_key = checkout_key_of(code, reference);
    out.push_back(std::move(e));
  }
  return out;
}

} // namespace

std::variant<std::map<std::string, webhook_endpoint>, std::string>
parse_webhook_secrets(std::string_view text, const std::vector<gateway_spec>& gateways) {
  std::map<std::string, webhook_endpoint> out;
  if (text::trim_space(text).empty()) {
    return out;
  }
  std::string_view rest = text;
  for (int n = 1;; ++n) {
    const auto comma = rest.find(',');
    const auto entry = text::trim_space(rest.substr(0, comma));
    const auto eq = entry.find('=');
    const std::string name{text::trim_space(entry.substr(0, eq))};
    if (eq == std::string_view::npos || name.empty()) {
      // Not echoed: the entry may be a secret.
      return "entry " + std::to_string(n) + ": expected name=secret";
    }
    const auto spec = std::find_if(gateways.begin(), gateways.end(),
                                   [&](const gateway_spec& g) { return g.name == name; });
    if (spec == gateways.end()) {
      return "'" + name + "': no such gateway in payments.gateways";
    }
    if (out.count(name) != 0) {
      return "'" + name + "' is given twice";
    }
    const auto secret = text::trim_space(entry.substr(eq + 1));
    webhook_endpoint ep{spec->kind, {}};
    if (spec->kind == gateway_kind::json) {
      if (secret.size() < 32 || secret.size() % 2 != 0) {
        return "'" + name +
               "': a json gateway's secret is its HMAC key in hex (32 hex digits "
               "or more, an even number)";
      }
      for (std::size_t i = 0; i < secret.size(); i += 2) {
        const int hi = text::hex_value(secret[i]);
        const int lo = text::hex_value(secret[i + 1]);
        if (hi < 0 || lo < 0) {
          return "'" + name + "': the secret is not hex";
        }
        ep.secret.push_back(static_cast<char>(hi * 16 + lo));
      }
    } else {
      if (secret.size() < 16) {
        return "'" + name + "': the secret needs at least 16 characters";
      }
      ep.secret = std::string{secret};
    }
    out.emplace(name, std::move(ep));
    if (comma == std::string_view::npos) {
      break;
    }
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::variant<std::vector<webhook_event>, webhook_refusal>
read_webhook(const webhook_endpoint& endpoint, std::string_view signature, std::string_view body,
             int64_t now_s, std::chrono::seconds tolerance) {
  if (endpoint.kind == gateway_kind::json) {
    return read_json(endpoint, body);
  }
  return read_form(endpoint, signature, body, now_s, tolerance);
}

std::string form_signature(std::string_view secret, int64_t t_s, std::string_view body) {
  const std::string t = std::to_string(t_s);
  std::string payload;
  payload.append(t).append(".").append(body);
  return "t=" + t + ",v1=" + to_hex(hmac_sha256(secret, payload));
}

std::string json_item_signature(std::string_view key, std::string_view psp_reference,
                                std::string_view original_reference,
                                std::string_view merchant_account,
                                std::string_view merchant_reference, int64_t value,
                                std::string_view currency, std::string_view event_code,
                                bool success) {
  std::string s;
  for (const auto part :
       {psp_reference, original_reference, merchant_account, merchant_reference}) {
    s.append(part).push_back(':');
  }
  s.append(std::to_string(value)).push_back(':');
  s.append(currency).push_back(':');
  s.append(event_code).push_back(':');
  s.append(success ? "true" : "false");
  return to_base64(hmac_sha256(key, s));
}

} // namespace surge::net::payments
