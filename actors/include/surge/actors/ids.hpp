#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace surge::actors {

/// What a waiting-room pass grants (API.md "Sales and the waiting room"): the customer may
/// add the sale's SKUs to a cart until `expires_at_ms`.
struct sale_pass {
  std::string sale_id;
  std::string customer_id;
  std::string ticket;
  int64_t expires_at_ms = 0;
};

/// Ids a shopper must not be able to guess (API.md: "Cart, hold and order ids are
/// unguessable").
///
/// random_id: `prefix` + 32 lowercase hex digits = 128 bits from the operating system's CSPRNG
/// (getrandom(2)). Bytes are drawn in blocks into a per-thread buffer, never from a seeded PRNG;
/// a forked child never reuses its parent's buffered bytes. Thread-safe. Aborts only if the
/// kernel refuses getrandom (no usable source of randomness: a broken invariant).
std::string random_id(std::string_view prefix);

/// 32 random bytes as 64 hex digits: a fresh secret (ids.secret when none is kept yet).
std::string random_secret();

/// Ids derived from client input under a server secret (ids.secret), so that they can be
/// recomputed by every node but not by a shopper: HMAC-SHA-256, truncated to 128 bits.
///
/// Every node of a cluster must use the same secret, or the same Idempotency-Key would name two
/// different orders; the runtime checks that against a fingerprint kept in PostgreSQL.
/// Immutable after construction; thread-safe.
class id_keys {
 public:
  /// REQUIRES: `secret` is not empty.
  explicit id_keys(std::string secret);

  /// The order id of a checkout's Idempotency-Key: "o_" + 32 hex digits.
  std::string order_id_for(std::string_view idempotency_key) const;

  /// A value that identifies the secret without revealing it (stored to detect nodes that were
  /// given different secrets): 64 hex digits.
  std::string fingerprint() const;

  /// The pass `p` as a token (header Surge-Pass): its fields and an HMAC-SHA-256 over them
  /// under the secret (a domain of its own), URL-safe, at most 512 characters. Any node with the
  /// same secret verifies it without a lookup.
  std::string sign_pass(const sale_pass& p) const;

  /// The pass a token carries when its MAC verifies under the secret (constant-time compare),
  /// else nullopt. Does not check expiry or whom it is for: callers compare expires_at_ms with
  /// the clock and sale_id/customer_id with the request's. Never throws on any input.
  std::optional<sale_pass> open_pass(std::string_view token) const;

  /// A sale's ticket for join number `seq` (0-based): seq and a MAC of (sale_id, seq), so that
  /// tickets cannot be guessed; ticket_seq gives seq back, or nullopt for a forged or malformed
  /// ticket. URL-safe, at most 64 characters.
  std::string ticket_for(std::string_view sale_id, uint64_t seq) const;
  std::optional<uint64_t> ticket_seq(std::string_view sale_id, std::string_view ticket) const;

 private:
  std::string mac_hex(std::string_view domain, std::string_view data, std::size_t bytes) const;

  const std::string secret_;
};

} // namespace surge::actors
