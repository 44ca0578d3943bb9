#include <algorithm>
#include <cctype>
#include <charconv>
#include <iterator>
#include <optional>

#include "surge/config/names.hpp"
#include "surge/net/json.hpp"
#include "surge/net/payments/gateway.hpp"
#include "surge/net/payments/http_client.hpp"
#include "surge/net/text.hpp"

namespace surge::net::payments {

namespace {

using detail::exchange_result;
using outcome = exchange_result::outcome;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

bool valid_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool valid_host(std::string_view s) {
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') {
    return std::all_of(s.begin() + 1, s.end() - 1, [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

std::string upper(std::string_view s) {
  std::string out{s};
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

const json::value* parse_object(std::string_view body, json::value& holder) {
  auto parsed = json::parse(body);
  if (auto* v = std::get_if<json::value>(&parsed); v != nullptr && v->is_object()) {
    holder = std::move(*v);
    return &holder;
  }
  return nullptr;
}

std::string str_member(const json::value* obj, std::string_view key) {
  if (obj == nullptr) {
    return {};
  }
  const json::value* v = obj->find(key);
  if (v == nullptr || !v->is_string()) {
    return {};
  }
  return std::get<std::string>(v->get());
}

/// The attempt for a transport failure or an HTTP status the styles share (429, 5xx, other 4xx).
attempt common_status(const exchange_result& r, std::string_view what) {
  if (r.what == outcome::not_sent) {
    return {attempt_kind::retryable, {}, std::string{what} + ": " + r.error, 0, false, {}};
  }
  if (r.what == outcome::no_answer) {
    return {attempt_kind::unknown, {}, std::string{what} + ": " + r.error, 0, false, {}};
  }
  const std::string msg = std::string{what} + ": HTTP " + std::to_string(r.status);
  if (r.status == 429 || r.status == 503) {
    return {attempt_kind::retryable, {}, msg, r.status, false, {}};
  }
  if (r.status >= 500) {
    return {attempt_kind::retryable, {}, msg, r.status, true, {}};
  }
  return {attempt_kind::rejected, {}, msg + " " + r.body.substr(0, 200), r.status, false, {}};
}

/// A 409 to a refund: another request with the same key is still being processed (the way the
/// big processors answer concurrent retries). Not definitive: the same key may be tried again.
attempt in_progress(const exchange_result& r) {
  return {attempt_kind::retryable, {}, "refund: HTTP 409 (the key is in use)", r.status, true, {}};
}

/// What a refund, capture or void call (`what`) that got no answer (common_status) or a 409 (in
/// progress) comes to; nullopt when the gateway answered the call itself.
std::optional<attempt> not_answered(const exchange_result& r, std::string_view what = "refund") {
  if (r.what != outcome::answered) {
    return common_status(r, what);
  }
  if (r.status == 409) {
    attempt a = in_progress(r);
    a.message = std::string{what} + ": HTTP 409 (the key is in use)";
    return a;
  }
  return std::nullopt;
}

/// The boolean member `key` of `obj`, or `otherwise` when it has none.
bool bool_member(const json::value* obj, std::string_view key, bool otherwise) {
  const json::value* v = obj != nullptr ? obj->find(key) : nullptr;
  return v != nullptr && v->is_bool() ? std::get<bool>(v->get()) : otherwise;
}

/// A capture's or void's answer that is not 2xx (`body` parsed as `obj`): rejected with the
/// gateway's message when it refused, else the error kind.
attempt settle_refused(const exchange_result& r, std::string_view what, const json::value* obj,
                       const json::value* err) {
  attempt a = common_status(r, what);
  if (std::string msg = str_member(err, "message");
      a.kind == attempt_kind::rejected && !msg.empty()) {
    const std::string code =
        str_member(err, "code").empty() ? str_member(obj, "errorCode") : str_member(err, "code");
    a.message = std::string{what} + ": " + code + ": " + msg;
  }
  return a;
}

/// A charge() or lookup() answer saying the charge `id` waits for the shopper's authentication at
/// `url`: requires_action, or unknown when the gateway gave no URL to send the shopper to.
attempt action_required(const std::string& id, std::string url, int status) {
  if (url.empty()) {
    return {
        attempt_kind::unknown, id, "authentication required, but no action url", status, false, {}};
  }
  attempt a{attempt_kind::requires_action, id, "authentication required", status, false, {}};
  a.action_url = std::move(url);
  return a;
}

/// Shared plumbing of both styles.
class http_gateway : public gateway {
 public:
  http_gateway(const gateway_spec& spec, const tls_options& tls)
      : name_(spec.name)
      , client_(spec.host, spec.port, spec.tls ? detail::make_client_tls(tls.ca_file) : nullptr) {}

  const std::string& name() const override { return name_; }

 protected:
  const std::string name_;
  detail::http_client client_;
};

/// The form-encoded style of the big card processors.
class form_gateway final : public http_gateway {
 public:
  using http_gateway::http_gateway;

  attempt charge(const actors::charge_request& req, std::chrono::milliseconds timeout) override {
    using detail::url_encode;
    const std::string body =
        "amount=" + std::to_string(req.amount_cents) +
        "&currency=" + url_encode(text::to_lower(req.currency)) +
        "&source=" + url_encode(req.token) + "&description=" + url_encode(req.order_id) +
        (req.capture ? "" : "&capture=false") +
        (req.return_url.empty() ? "" : "&return_url=" + url_encode(req.return_url));
    auto r = client_.exchange("POST", "/v1/charges", "application/x-www-form-urlencoded", body,
                              {{"Idempotency-Key", req.idempotency_key}}, timeout);
    if (r.what != outcome::answered) {
      return common_status(r, "charge");
    }
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    if (r.status == 200) {
      return from_charge(obj, r.status);
    }
    if (r.status == 402) {
      const json::value* err = obj != nullptr ? obj->find("error") : nullptr;
      std::string msg = str_member(err, "message");
      if (msg.empty()) {
        msg = str_member(err, "code");
      }
      return {attempt_kind::declined, str_member(err, "charge"), msg, r.status, false, {}};
    }
    return common_status(r, "charge");
  }

  attempt lookup(const std::string& key, std::chrono::milliseconds timeout) override {
    auto r = client_.exchange("GET", "/v1/charges?idempotency_key=" + detail::url_encode(key), {},
                              {}, {}, timeout);
    if (r.what != outcome::answered || r.status != 200) {
      return common_status(r, "lookup");
    }
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    const json::value* data = obj != nullptr ? obj->find("data") : nullptr;
    if (data == nullptr || !data->is_array()) {
      return {attempt_kind::unknown, {}, "lookup: malformed list", r.status, false, {}};
    }
    const auto& list = std::get<json::array>(data->get());
    if (list.empty()) {
      return {attempt_kind::not_found, {}, {}, r.status, false, {}};
    }
    // Prefer a succeeded charge should the gateway list several.
    for (const auto& c : list) {
      if (str_member(&c, "status") == "succeeded") {
        return from_charge(&c, r.status);
      }
    }
    return from_charge(&list.front(), r.status);
  }

  attempt refund(const actors::refund_request& req, std::chrono::milliseconds timeout) override {
    using detail::url_encode;
    const std::string body = "charge=" + url_encode(req.charge_id) +
                             "&amount=" + std::to_string(req.amount_cents) +
                             "&currency=" + url_encode(text::to_lower(req.currency));
    auto r = client_.exchange("POST", "/v1/refunds", "application/x-www-form-urlencoded", body,
                              {{"Idempotency-Key", req.idempotency_key}}, timeout);
    if (auto early = not_answered(r)) {
      return *early;
    }
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    if (r.status != 200) {
      attempt a = common_status(r, "refund");
      if (a.kind == attempt_kind::rejected) {
        const json::value* err = obj != nullptr ? obj->find("error") : nullptr;
        if (std::string msg = str_member(err, "message"); !msg.empty()) {
          a.message = "refund: " + msg;
        }
      }
      return a;
    }
    const std::string st = str_member(obj, "status");
    attempt a{attempt_kind::unknown, str_member(obj, "charge"), {}, r.status, false, {}};
    a.refund_id = str_member(obj, "id");
    if (st == "succeeded") {
      a.kind = attempt_kind::approved;
    } else if (st == "failed" || st == "canceled") {
      a.kind = attempt_kind::rejected;
      a.message = "refund " + st + ": " + str_member(obj, "failure_reason");
    } else {
      a.message = "refund status '" + st + "'";
    }
    return a;
  }

  attempt capture(const actors::settle_request& req, std::chrono::milliseconds timeout) override {
    return settle(req, "capture", actors::funds::captured, timeout);
  }

  attempt void_authorization(const actors::settle_request& req,
                             std::chrono::milliseconds timeout) override {
    return settle(req, "cancel", actors::funds::voided, timeout);
  }

 private:
  /// POST /v1/charges/{id}/`op` (capture or cancel): approved when the charge object that comes
  /// back has its money where `want` says.
  attempt settle(const actors::settle_request& req, const char* op, actors::funds want,
                 std::chrono::milliseconds timeout) {
    const std::string what = op;
    auto r = client_.exchange("POST", "/v1/charges/" + detail::url_encode(req.charge_id) + "/" + op,
                              "application/x-www-form-urlencoded",
                              "amount=" + std::to_string(req.amount_cents),
                              {{"Idempotency-Key", req.idempotency_key}}, timeout);
    if (auto early = not_answered(r, what)) {
      return *early;
    }
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    if (r.status != 200) {
      return settle_refused(r, what, obj, obj != nullptr ? obj->find("error") : nullptr);
    }
    attempt a = from_charge(obj, r.status);
    if (a.kind != attempt_kind::approved || a.money != want) {
      return {attempt_kind::unknown,
              a.charge_id,
              what + ": the charge came back " + actors::to_string(a.money),
              r.status,
              false,
              {}};
    }
    return a;
  }

  static attempt from_charge(const json::value* c, int status) {
    const std::string st = str_member(c, "status");
    const std::string id = str_member(c, "id");
    if (st == "requires_action") {
      // 3-D Secure: next_action.redirect_to_url.url is where the shopper authenticates.
      const json::value* next = c != nullptr ? c->find("next_action") : nullptr;
      const json::value* redirect = next != nullptr ? next->find("redirect_to_url") : nullptr;
      return action_required(id, str_member(redirect, "url"), status);
    }
    if (st == "succeeded" || st == "canceled") {
      attempt a{attempt_kind::approved, id, {}, status, false, {}};
      a.money = st == "canceled"                   ? actors::funds::voided
                : bool_member(c, "captured", true) ? actors::funds::captured
                                                   : actors::funds::authorized;
      return a;
    }
    if (st == "failed") {
      std::string msg = str_member(c, "failure_message");
      if (msg.empty()) {
        msg = str_member(c, "failure_code");
      }
      return {attempt_kind::declined, id, msg, status, false, {}};
    }
    return {attempt_kind::unknown, id, "charge status '" + st + "'", status, false, {}};
  }
};

/// The JSON style with a merchant reference as the key.
class json_gateway final : public http_gateway {
 public:
  using http_gateway::http_gateway;

  attempt charge(const actors::charge_request& req, std::chrono::milliseconds timeout) override {
    json::object amount{{"value", json::value{static_cast<int64_t>(req.amount_cents)}},
                        {"currency", json::value{upper(req.currency)}}};
    json::object method{{"token", json::value{req.token}}};
    json::object body{{"reference", json::value{req.idempotency_key}},
                      {"amount", json::value{std::move(amount)}},
                      {"paymentMethod", json::value{std::move(method)}},
                      {"shopperStatement", json::value{req.order_id}}};
    if (!req.capture) {
      body.emplace_back("additionalData",
                        json::value{json::object{{"manualCapture", json::value{"true"}}}});
    }
    if (!req.return_url.empty()) {
      body.emplace_back("returnUrl", json::value{req.return_url});
    }
    auto r = client_.exchange("POST", "/payments", "application/json",
                              json::serialize(json::value{std::move(body)}),
                              {{"Idempotency-Key", req.idempotency_key}}, timeout);
    if (r.what != outcome::answered || r.status != 200) {
      return common_status(r, "charge");
    }
    return from_result(r);
  }

  attempt lookup(const std::string& key, std::chrono::milliseconds timeout) override {
    auto r = client_.exchange("GET", "/payments/" + detail::url_encode(key), {}, {}, {}, timeout);
    if (r.what == outcome::answered && r.status == 404) {
      return {attempt_kind::not_found, {}, {}, r.status, false, {}};
    }
    if (r.what != outcome::answered || r.status != 200) {
      return common_status(r, "lookup");
    }
    return from_result(r);
  }

  attempt refund(const actors::refund_request& req, std::chrono::milliseconds timeout) override {
    json::object amount{{"value", json::value{static_cast<int64_t>(req.amount_cents)}},
                        {"currency", json::value{upper(req.currency)}}};
    json::object body{{"reference", json::value{req.idempotency_key}},
                      {"paymentReference", json::value{req.charge_key}}};
    if (!req.charge_id.empty()) {
      body.emplace_back("paymentPspReference", json::value{req.charge_id});
    }
    body.emplace_back("amount", json::value{std::move(amount)});
    auto r = client_.exchange("POST", "/refunds", "application/json",
                              json::serialize(json::value{std::move(body)}),
                              {{"Idempotency-Key", req.idempotency_key}}, timeout);
    if (auto early = not_answered(r)) {
      return *early;
    }
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    if (r.status != 200 && r.status != 201) {
      attempt a = common_status(r, "refund");
      if (std::string msg = str_member(obj, "message");
          a.kind == attempt_kind::rejected && !msg.empty()) {
        a.message = "refund: " + str_member(obj, "errorCode") + ": " + msg;
      }
      return a;
    }
    const std::string st = str_member(obj, "status");
    attempt a{
        attempt_kind::unknown, str_member(obj, "paymentPspReference"), {}, r.status, false, {}};
    a.refund_id = str_member(obj, "pspReference");
    if (st == "refunded") {
      a.kind = attempt_kind::approved;
    } else {
      a.message = "refund status '" + st + "'";
    }
    return a;
  }

  attempt capture(const actors::settle_request& req, std::chrono::milliseconds timeout) override {
    return settle(req, "captures", "capture", timeout);
  }

  attempt void_authorization(const actors::settle_request& req,
                             std::chrono::milliseconds timeout) override {
    return settle(req, "cancels", "cancel", timeout);
  }

 private:
  /// POST /payments/{pspReference}/`path` (captures or cancels): approved when it is received.
  attempt settle(const actors::settle_request& req, const char* path, const char* what,
                 std::chrono::milliseconds timeout) {
    json::object body{{"reference", json::value{req.idempotency_key}},
                      {"paymentReference", json::value{req.charge_key}}};
    body.emplace_back("amount", json::value{json::object{
                                    {"value", json::value{static_cast<int64_t>(req.amount_cents)}},
                                    {"currency", json::value{upper(req.currency)}}}});
    auto r = client_.exchange("POST", "/payments/" + detail::url_encode(req.charge_id) + "/" + path,
                              "application/json", json::serialize(json::value{std::move(body)}),
                              {{"Idempotency-Key", req.idempotency_key}}, timeout);
    if (auto early = not_answered(r, what)) {
      return *early;
    }
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    if (r.status != 200 && r.status != 201) {
      return settle_refused(r, what, obj, obj);
    }
    const std::string st = str_member(obj, "status");
    if (st != "received") {
      return {attempt_kind::unknown,
              req.charge_id,
              std::string{what} + " status '" + st + "'",
              r.status,
              false,
              {}};
    }
    return {
        attempt_kind::approved, str_member(obj, "paymentPspReference"), {}, r.status, false, {}};
  }

  static attempt from_result(const exchange_result& r) {
    json::value holder;
    const json::value* obj = parse_object(r.body, holder);
    const std::string code = str_member(obj, "resultCode");
    const std::string id = str_member(obj, "pspReference");
    if (code == "Authorised") {
      attempt a{attempt_kind::approved, id, {}, r.status, false, {}};
      a.money = bool_member(obj, "cancelled", false) ? actors::funds::voided
                : bool_member(obj, "captured", true) ? actors::funds::captured
                                                     : actors::funds::authorized;
      return a;
    }
    if (code == "Refused") {
      return {attempt_kind::declined, id, str_member(obj, "refusalReason"), r.status, false, {}};
    }
    if (code == "RedirectShopper" || code == "IdentifyShopper" || code == "ChallengeShopper") {
      // 3-D Secure: action.url is where the shopper authenticates.
      const json::value* action = obj != nullptr ? obj->find("action") : nullptr;
      return action_required(id, str_member(action, "url"), r.status);
    }
    return {attempt_kind::unknown, id, "resultCode '" + code + "'", r.status, false, {}};
  }
};

} // namespace

const char* to_string(attempt_kind x) {
  static constexpr const char* names[] = {"approved",  "declined", "retryable",      "unknown",
                                          "not_found", "rejected", "requires_action"};
  static_assert(std::size(names) ==
                config::count_of(attempt_kind::approved, attempt_kind::requires_action));
  return config::name_of(x, names, "?");
}

std::variant<http_url, std::string> parse_http_url(std::string_view url, bool with_path) {
  http_url out;
  if (url.starts_with("https://")) {
    out.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return with_path ? "the url must be http://host:port/path or https://host[:port]/path"
                     : "the url must be http://host:port or https://host[:port]";
  }
  if (const auto slash = url.find('/'); with_path && slash != std::string_view::npos) {
    out.path = std::string{url.substr(slash)};
    url = url.substr(0, slash);
    const bool printable = std::all_of(out.path.begin(), out.path.end(),
                                       [](char c) { return c > ' ' && c < 0x7f && c != '#'; });
    if (!printable) {
      return "the url's path must be printable ASCII without spaces or '#'";
    }
  } else if (url.ends_with('/')) {
    url.remove_suffix(1);
  }
  if (url.find_first_of("/?#@") != std::string_view::npos) {
    return with_path ? "the url must be http(s)://host[:port]/path (no user, query or fragment "
                       "before the path)"
                     : "the url must be http(s)://host:port (no path)";
  }
  std::size_t colon = url.rfind(':');
  if (colon == std::string_view::npos || (url.starts_with('[') && colon < url.find(']'))) {
    if (!out.tls) {
      return "the url needs a port";
    }
    colon = url.size(); // https: 443
  }
  const std::string_view host = url.substr(0, colon);
  const std::string_view port =
      colon == url.size() ? std::string_view{"443"} : url.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return "bad port '" + std::string{port} + "'";
  }
  if (!valid_host(host)) {
    return "bad host '" + std::string{host} + "'";
  }
  out.host = host.front() == '[' ? std::string{host.substr(1, host.size() - 2)} : std::string{host};
  out.port = static_cast<uint16_t>(value);
  return out;
}

std::string to_string(const http_url& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  return std::string{u.tls ? "https://" : "http://"} + (v6 ? "[" + u.host + "]" : u.host) + ":" +
         std::to_string(u.port) + u.path;
}

std::variant<std::vector<gateway_spec>, std::string> parse_gateways(std::string_view setting) {
  std::vector<gateway_spec> out;
  if (trim(setting).empty()) {
    return out;
  }
  for (;;) {
    const std::size_t comma = setting.find(',');
    const std::string_view entry = trim(setting.substr(0, comma));
    const std::string quoted = "'" + std::string{entry} + "'";
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return "payments.gateways: " + quoted + " is not name=url";
    }
    gateway_spec spec;
    spec.name = std::string{trim(entry.substr(0, eq))};
    if (!valid_name(spec.name)) {
      return "payments.gateways: " + quoted + ": the name must be letters, digits, '_' or '-'";
    }
    for (const auto& g : out) {
      if (g.name == spec.name) {
        return "payments.gateways: the name '" + spec.name + "' appears twice";
      }
    }
    std::string_view url = trim(entry.substr(eq + 1));
    if (url.starts_with("form+")) {
      url.remove_prefix(5);
    } else if (url.starts_with("json+")) {
      spec.kind = gateway_kind::json;
      url.remove_prefix(5);
    } else if (const auto plus = url.find('+'); plus != std::string_view::npos &&
                                                url.find("://") != std::string_view::npos &&
                                                plus < url.find("://")) {
      return "payments.gateways: " + quoted + ": unknown kind '" +
             std::string{url.substr(0, plus)} + "' (form or json)";
    }
    auto parsed = parse_http_url(url, false);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      return "payments.gateways: " + quoted + ": " + *err;
    }
    auto& u = std::get<http_url>(parsed);
    spec.tls = u.tls;
    spec.host = std::move(u.host);
    spec.port = u.port;
    out.push_back(std::move(spec));
    if (comma == std::string_view::npos) {
      break;
    }
    setting.remove_prefix(comma + 1);
  }
  return out;
}

std::string check_tls(const tls_options& tls) {
  try {
    detail::make_client_tls(tls.ca_file);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::unique_ptr<gateway> make_gateway(const gateway_spec& spec, const tls_options& tls) {
  if (spec.kind == gateway_kind::json) {
    return std::make_unique<json_gateway>(spec, tls);
  }
  return std::make_unique<form_gateway>(spec, tls);
}

} // namespace surge::net::payments
