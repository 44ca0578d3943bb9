#include "json_body.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// errors.hpp's bad_request, written out so that this file needs only surge_net_http (the fuzz
/// tree compiles it).
http_response bad_request(std::string_view msg) {
  return error_response(400, "bad_request", msg);
}

/// The member `key` of `obj`, or nullptr when it is absent or null (`err` then says so when it
/// is `required`).
const json::value* member(const json::value& obj, const char* key, bool required,
                          std::string& err) {
  const json::value* v = obj.find(key);
  if (v != nullptr && !v->is_null()) {
    return v;
  }
  if (required) {
    err = std::string{"'"} + key + "' is required";
  }
  return nullptr;
}

} // namespace

std::optional<json::value> object_body(const http_request& req, bool empty_ok, responder& r) {
  std::string_view body = req.body;
  auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    if (empty_ok) {
      return json::value{json::object{}};
    }
    r(bad_request("a JSON object body is required"));
    return std::nullopt;
  }
  auto parsed = json::parse(body);
  if (auto* err = std::get_if<json::parse_error>(&parsed)) {
    r(bad_request("malformed JSON: " + err->message));
    return std::nullopt;
  }
  auto& v = std::get<json::value>(parsed);
  if (!v.is_object()) {
    r(bad_request(std::string{"the body must be a JSON object, not "} + v.type_name()));
    return std::nullopt;
  }
  return std::move(v);
}

std::optional<int64_t> int_field(const json::value& obj, const char* key, int64_t lo, int64_t hi,
                                 bool required, int64_t fallback, std::string& err) {
  const json::value* v = member(obj, key, required, err);
  if (v == nullptr) {
    return required ? std::nullopt : std::optional<int64_t>{fallback};
  }
  if (!v->is_int()) {
    if (auto* d = std::get_if<double>(&v->get())) {
      if (*d == static_cast<double>(static_cast<int64_t>(*d)) && (*d > 9e18 || *d < -9e18)) {
        err = std::string{"'"} + key + "' is out of range";
      } else {
        err = std::string{"'"} + key + "' must be an integer between " + std::to_string(lo) +
              " and " + std::to_string(hi);
      }
    } else {
      err = std::string{"'"} + key + "' must be an integer, not " + v->type_name();
    }
    return std::nullopt;
  }
  int64_t x = std::get<int64_t>(v->get());
  if (x < lo || x > hi) {
    err = std::string{"'"} + key + "' must be between " + std::to_string(lo) + " and " +
          std::to_string(hi) + ", got " + std::to_string(x);
    return std::nullopt;
  }
  return x;
}

std::optional<std::string> string_field(const json::value& obj, const char* key,
                                        std::size_t max_len, bool required, std::string fallback,
                                        std::string& err) {
  const json::value* v = member(obj, key, required, err);
  if (v == nullptr) {
    return required ? std::nullopt : std::optional<std::string>{std::move(fallback)};
  }
  if (!v->is_string()) {
    err = std::string{"'"} + key + "' must be a string, not " + v->type_name();
    return std::nullopt;
  }
  const auto& s = std::get<std::string>(v->get());
  if (s.size() > max_len) {
    err = std::string{"'"} + key + "' is longer than " + std::to_string(max_len) + " bytes";
    return std::nullopt;
  }
  return s;
}

std::optional<persistence::product_record>
product_fields(const json::value& obj, const std::string& sku, std::string& err) {
  auto name = string_field(obj, "name", 200, true, "", err);
  auto description = name ? string_field(obj, "description", 5000, false, "", err) : std::nullopt;
  auto category = description ? string_field(obj, "category", 100, false, "", err) : std::nullopt;
  auto currency = category ? string_field(obj, "currency", 3, false, "USD", err) : std::nullopt;
  auto price = currency ? int_field(obj, "price_cents", 0, max_money, true, 0, err) : std::nullopt;
  auto limit =
      price ? int_field(obj, "per_customer_limit", 0, max_qty, false, 0, err) : std::nullopt;
  if (!limit) {
    return std::nullopt;
  }
  if (name->empty()) {
    err = "'name' must not be empty";
    return std::nullopt;
  }
  if (currency->size() != 3 || !std::all_of(currency->begin(), currency->end(),
                                            [](char c) { return c >= 'A' && c <= 'Z'; })) {
    err = "'currency' must be an ISO 4217 code such as \"USD\"";
    return std::nullopt;
  }
  persistence::product_record rec;
  rec.sku = sku;
  rec.name = *name;
  rec.description = *description;
  rec.category = *category;
  rec.currency = *currency;
  rec.price_cents = *price;
  rec.per_customer_limit = *limit;
  return rec;
}

std::optional<int64_t> parse_duration_ms(std::string_view s) {
  if (s.empty() || s.size() > 20) {
    return std::nullopt;
  }
  std::size_t i = 0;
  int64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (n > 1'000'000'000'000) {
      return std::nullopt;
    }
    n = n * 10 + (s[i] - '0');
    ++i;
  }
  if (i == 0) {
    return std::nullopt;
  }
  const auto unit = s.substr(i);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return std::nullopt;
  }
  return n * scale;
}

namespace {

/// queue.pass_ttl: whole seconds, as a number or a duration string.
std::optional<int64_t> pass_ttl_field(const json::value& queue, std::string& err) {
  constexpr int64_t max_s = max_pass_ttl_ms / 1000;
  const json::value* v = member(queue, "pass_ttl", false, err);
  if (v == nullptr) {
    return default_pass_ttl_ms;
  }
  const auto range = "'queue.pass_ttl' must be whole seconds from 1 to " + std::to_string(max_s) +
                     ", as a number or a duration such as \"90s\" or \"5m\"";
  int64_t ms = 0;
  if (v->is_int()) {
    const auto secs = std::get<int64_t>(v->get());
    if (secs < 1 || secs > max_s) {
      err = range;
      return std::nullopt;
    }
    ms = secs * 1000;
  } else if (v->is_string()) {
    auto d = parse_duration_ms(std::get<std::string>(v->get()));
    if (!d || *d % 1000 != 0 || *d < 1000 || *d > max_pass_ttl_ms) {
      err = range;
      return std::nullopt;
    }
    ms = *d;
  } else {
    err = range;
    return std::nullopt;
  }
  return ms;
}

/// queue.admission_rate: shoppers per second (a number > 0), or "auto" (0).
std::optional<double> admission_rate_field(const json::value& queue, std::string& err) {
  const json::value* v = member(queue, "admission_rate", false, err);
  if (v == nullptr) {
    return 0.0;
  }
  if (v->is_string() && std::get<std::string>(v->get()) == "auto") {
    return 0.0;
  }
  double rate = -1;
  if (v->is_int()) {
    rate = static_cast<double>(std::get<int64_t>(v->get()));
  } else if (auto* d = std::get_if<double>(&v->get())) {
    rate = *d;
  }
  if (!(rate > 0 && rate <= max_admission_rate) || !std::isfinite(rate)) {
    err = "'queue.admission_rate' must be \"auto\" or a number of shoppers per second above 0 "
          "and at most " +
          std::to_string(static_cast<int64_t>(max_admission_rate));
    return std::nullopt;
  }
  return rate;
}

/// A time member: an RFC 3339 string, as Unix milliseconds.
std::optional<int64_t> time_field(const json::value& obj, const char* key, std::string& err) {
  auto s = string_field(obj, key, 64, true, "", err);
  if (!s) {
    return std::nullopt;
  }
  auto t = parse_rfc3339(*s);
  // Years 1970 to 9999: what rfc3339_ms writes back.
  if (!t || *t < 0 || *t >= 253'402'300'800'000) {
    err = std::string{"'"} + key + "' must be an RFC 3339 time such as \"2026-11-27T08:00:00Z\"";
    return std::nullopt;
  }
  return t;
}

} // namespace

std::optional<persistence::sale_record> sale_fields(const json::value& obj,
                                                    const std::string& sale_id, std::string& err) {
  persistence::sale_record rec;
  rec.sale_id = sale_id;
  auto name = string_field(obj, "name", 200, true, "", err);
  if (!name) {
    return std::nullopt;
  }
  if (name->empty()) {
    err = "'name' must not be empty";
    return std::nullopt;
  }
  if (!json::valid_utf8(*name)) {
    err = "'name' is not UTF-8";
    return std::nullopt;
  }
  rec.name = std::move(*name);
  const json::value* skus = member(obj, "skus", true, err);
  if (skus == nullptr) {
    return std::nullopt;
  }
  if (!skus->is_array()) {
    err = std::string{"'skus' must be an array of SKUs, not "} + skus->type_name();
    return std::nullopt;
  }
  const auto& list = std::get<json::array>(skus->get());
  if (list.empty() || list.size() > max_sale_skus) {
    err = "'skus' must name 1 to " + std::to_string(max_sale_skus) + " SKUs";
    return std::nullopt;
  }
  std::set<std::string_view> seen;
  for (const auto& v : list) {
    if (!v.is_string() || !valid_sku(std::get<std::string>(v.get()))) {
      err = "'skus' must hold SKUs (1 to 64 letters, digits, '.', '_' or '-')";
      return std::nullopt;
    }
    const auto& sku = std::get<std::string>(v.get());
    if (!seen.insert(sku).second) {
      err = "'skus' names '" + sku + "' twice";
      return std::nullopt;
    }
    rec.skus.push_back(sku);
  }
  auto starts = time_field(obj, "starts_at", err);
  if (!starts) {
    return std::nullopt;
  }
  auto ends = time_field(obj, "ends_at", err);
  if (!ends) {
    return std::nullopt;
  }
  if (*ends <= *starts) {
    err = "'ends_at' must be after 'starts_at'";
    return std::nullopt;
  }
  rec.starts_at_ms = *starts;
  rec.ends_at_ms = *ends;
  auto limit = int_field(obj, "per_customer_limit", 0, max_qty, false, 0, err);
  if (!limit) {
    return std::nullopt;
  }
  rec.per_customer_limit = *limit;
  rec.pass_ttl_ms = default_pass_ttl_ms;
  if (const json::value* q = member(obj, "queue", false, err)) {
    if (!q->is_object()) {
      err = std::string{"'queue' must be an object, not "} + q->type_name();
      return std::nullopt;
    }
    if (const json::value* on = member(*q, "enabled", false, err)) {
      if (!on->is_bool()) {
        err = std::string{"'queue.enabled' must be true or false, not "} + on->type_name();
        return std::nullopt;
      }
      rec.queue_enabled = std::get<bool>(on->get());
    }
    auto rate = admission_rate_field(*q, err);
    if (!rate) {
      return std::nullopt;
    }
    rec.admission_rate = *rate;
    auto ttl = pass_ttl_field(*q, err);
    if (!ttl) {
      return std::nullopt;
    }
    rec.pass_ttl_ms = *ttl;
  }
  return rec;
}

} // namespace surge::net::bridge
