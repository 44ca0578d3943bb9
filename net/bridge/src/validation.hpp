#pragma once

// What the bridge accepts as ids and quantities (private to the bridge). Pure functions that
// need nothing but surge_net_http (the fuzz tree compiles this file).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "surge/net/http.hpp"

namespace surge::net::bridge {

/// The most of one SKU a cart line may ask for.
constexpr int64_t max_qty = 10000;
/// The largest price, stock figure or stock change in minor units / pieces.
constexpr int64_t max_money = 1'000'000'000'000;

/// 1 to `max_len` ASCII letters, digits or characters of `extra`.
bool valid_id(std::string_view s, std::size_t max_len, std::string_view extra = "._-");

/// 1 to 64 letters, digits, '.', '_' or '-', not dots alone. A SKU becomes a path segment (API
/// paths, /p/{sku}), part of Redis and page-cache keys and, in a statically generated
/// storefront, a directory name. "." and ".." are dot segments: clients and proxies normalise
/// them away (/p/.. is /), and as names they are the directories themselves; longer runs of
/// dots lose their trailing dots on Windows paths. (Leading '.', '-' and '_' stay allowed: SKUs
/// like that may exist, and nothing they reach treats them specially.)
bool valid_sku(std::string_view s);

/// Cart and order ids: 1 to 64 letters, digits, '_' or '-'.
bool valid_cart_id(std::string_view s);

/// A customer id from a request body: 1 to 128 letters, digits or "._@+-".
bool valid_customer(std::string_view s);

/// A sale id (API.md "Sales and the waiting room"): what a SKU may be (valid_sku), for the same
/// reasons: it is a path segment and part of entity keys ("sale:<id>").
bool valid_sale_id(std::string_view s);

/// A queue ticket as the sale actors make them (id_keys::ticket_for: "t<seq>-<mac>"): 1 to 64
/// letters, digits, '_' or '-'. Only its form: whether it is one of the sale's is the MAC's
/// business (id_keys::ticket_seq).
bool valid_ticket(std::string_view s);

/// An Idempotency-Key: 1 to 200 printable ASCII characters (no space).
bool valid_key(std::string_view s);

/// The request's Idempotency-Key (required, valid_key); nullopt when the 400 is already answered
/// through `r`.
std::optional<std::string> idempotency_key(const http_request& req, responder& r);

/// An RFC 3339 date-time ("2026-11-28T08:30:00Z", fractions and "+01:00" offsets allowed, 'T'
/// and 'Z' in either case) as Unix milliseconds (fractions past ms are cut), or nullopt.
std::optional<int64_t> parse_rfc3339(std::string_view s);

} // namespace surge::net::bridge
