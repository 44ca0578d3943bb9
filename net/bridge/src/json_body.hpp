#pragma once

// Reading JSON request bodies with the strict parser (private to the bridge). Every failure is
// the message of a 400 bad_request that names the field.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "surge/net/http.hpp"
#include "surge/net/json.hpp"
#include "surge/persistence/records.hpp"

namespace surge::net::bridge {

/// The body of `req` as a JSON object; an empty body reads as {} when `empty_ok`. Otherwise
/// (malformed JSON, not an object, empty) answers the 400 through `r` and returns nullopt.
std::optional<json::value> object_body(const http_request& req, bool empty_ok, responder& r);

/// The integer member `key` of `obj` within [lo, hi]; absent or null: `fallback`, unless
/// `required`. nullopt with `err` set when it is missing, not an integer or out of range.
std::optional<int64_t> int_field(const json::value& obj, const char* key, int64_t lo, int64_t hi,
                                 bool required, int64_t fallback, std::string& err);

/// The string member `key` of `obj`, at most `max_len` bytes; absent or null: `fallback`, unless
/// `required`. nullopt with `err` set when it is missing, not a string or too long.
std::optional<std::string> string_field(const json::value& obj, const char* key,
                                        std::size_t max_len, bool required, std::string fallback,
                                        std::string& err);

/// The product `sku` that `obj` describes (PUT /admin/v1/products/{sku}'s body: name, description,
/// category, price_cents, currency, per_customer_limit), or nullopt with `err` naming the first
/// bad field. REQUIRES: `sku` is valid (validation.hpp).
std::optional<persistence::product_record> product_fields(const json::value& obj,
                                                          const std::string& sku, std::string& err);

} // namespace surge::net::bridge
