#pragma once

// The Surge-Signature header of Surge's outgoing webhooks, as a receiving shop checks it:
//
//   Surge-Signature: t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// with one or more v1 entries (any one that matches will do; a sender rotating its secret signs
// with both). Entries are separated by ',' (spaces around them allowed); other keys (v0, ...) are
// ignored. Pure functions: no I/O, no global state, usable from any thread.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace surge::webhook_sink {

/// What check_signature() found.
enum class signature_check {
  ok,        ///< a v1 entry matches and t is within the tolerance
  missing,   ///< no header (or an empty one)
  malformed, ///< an entry without '=', no t or t given twice, t not an integer, no v1
  stale,     ///< t more than the tolerance away from now (either way)
  mismatch,  ///< no v1 entry is the HMAC of "<t>.<body>" under the secret
};

/// "ok", "missing", "malformed", "stale", "mismatch": for the sink's log lines.
const char* to_string(signature_check c);

/// Checks `header` (the Surge-Signature value; empty when absent) for `body` under `secret` at
/// time `now` (unix seconds). The HMAC is computed over t as written in the header. v1 entries
/// are compared in constant time.
signature_check check_signature(std::string_view header, std::string_view body,
                                std::string_view secret, int64_t now,
                                std::chrono::seconds tolerance);

/// The lowercase hex HMAC-SHA256 of `message` under `secret` (64 characters).
std::string hmac_sha256_hex(std::string_view secret, std::string_view message);

} // namespace surge::webhook_sink
