#pragma once

// Reading JSON request bodies with the strict parser (private to the bridge). Every failure is
// the message of a 400 bad_request that names the field. Needs nothing but surge_net_http and
// persistence's records.hpp (header only): the fuzz tree compiles it (tests/fuzz).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

/// "90s", "5m", "1h", "250ms" (digits, then one of ms, s, m, h) as milliseconds, or nullopt.
std::optional<int64_t> parse_duration_ms(std::string_view s);

/// A sale's SKUs: at most this many.
constexpr std::size_t max_sale_skus = 100;
/// queue.pass_ttl when the body does not give one, and the longest allowed.
constexpr int64_t default_pass_ttl_ms = 300'000;
constexpr int64_t max_pass_ttl_ms = 86'400'000;
/// queue.admission_rate: the most shoppers per second a body may ask for.
constexpr double max_admission_rate = 1'000'000;

/// The sale `sale_id` that `obj` describes (PUT /admin/v1/sales/{sale_id}'s body, API.md "Sales
/// and the waiting room"): "name" (1..200 bytes, required), "skus" (1..100 distinct valid SKUs,
/// required), "starts_at" and "ends_at" (RFC 3339, required, ends after starts),
/// "per_customer_limit" (0..max_qty, default 0), "queue" (optional object: "enabled" (default
/// false), "admission_rate" (a number > 0 per second or "auto", the default; "auto" is 0 in the
/// record), "pass_ttl" (whole seconds, a number or a duration string such as "90s" or "5m";
/// default 300)). Other members are ignored. nullopt with `err` naming the first bad field.
/// Whether the SKUs exist and whether the sale overlaps another is not checked here.
/// REQUIRES: `sale_id` is valid (validation.hpp).
std::optional<persistence::sale_record> sale_fields(const json::value& obj,
                                                    const std::string& sale_id, std::string& err);

} // namespace surge::net::bridge
