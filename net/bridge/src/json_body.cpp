#include "json_body.hpp"

#include <algorithm>

#include "errors.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

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

} // namespace surge::net::bridge
