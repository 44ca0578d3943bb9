#pragma once

#include <string>
#include <string_view>

namespace surge::actors {

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

 private:
  std::string mac_hex(std::string_view domain, std::string_view data, std::size_t bytes) const;

  const std::string secret_;
};

} // namespace surge::actors
