#pragma once

// Customer tokens (shared/API.md, "Customers, limits and request hygiene"): verifies the JWT a
// storefront request carries in `Authorization: Bearer`, and mints development tokens for
// `surgectl token` and tests. Signatures are checked by libjwt (Debian's 1.10.2); this file
// decides which key may check which token and what a valid token must say, because libjwt 1.10
// does not (each seen in a probe against the installed library): it verifies with whatever
// algorithm the token's header names (an RS256 key's PEM text is taken as the HMAC secret of an
// "HS256" token and such a forgery verifies), accepts "alg":"none" when given no key, matches
// "alg" case-insensitively ("hs256"), accepts an ES256 signature under a secp256k1 key, accepts
// stray characters after a signature ("...sig!" or "...sig=") and checks no claim (an expired
// token verifies). It refuses "none" when given a key and expects ES256 signatures as raw r||s.
//
// Accepted: a compact JWS of at most `max_token_bytes`, three base64url parts (no padding, no
// stray bits), a JSON object header whose "alg" is exactly
//   - "HS256" with `secret` configured (HMAC-SHA-256 over the secret's bytes),
//   - "RS256" with an RSA public key in `public_key_file` (PKCS#1 v1.5, SHA-256),
//   - "ES256" with an EC P-256 public key there (signature raw r||s, RFC 7518 3.4),
// "typ" absent or "JWT" (any case), no "crit"; and a JSON object payload with
//   - "exp" (a number, required): now < exp + leeway,
//   - "nbf" (optional number): nbf <= now + leeway,
//   - "iat" (optional number): iat <= now + leeway,
//   - "iss" equal to `issuer` when one is configured (otherwise not looked at),
//   - "aud" equal to `audience`, or an array of strings containing it, when one is configured
//     (otherwise not looked at),
//   - "sub": a string of 1 to 255 bytes with no control character (C0, DEL or C1).
// Both JSON texts are parsed with surge::net::json (strict: duplicate keys, invalid UTF-8 and
// trailing data are refused). Other header members ("kid", "jku", ...) and other claims are
// ignored; keys are never fetched.
// Refused (with `auth_failure` and a short reason): everything else, in particular "alg" "none"
// (in any case), HS384/RS512/..., an algorithm whose key is not configured, a bad or truncated
// signature, any change to the header or payload, a token signed with another key.
//
// Both a secret and a public key may be configured: the token's "alg" picks which one checks
// it, and a key is only ever used with its own algorithm.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace surge::net {

/// The settings auth.* (config/ does the parsing; no defaults of their own: the node fills them
/// through runtime/wiring.hpp's customer_auth_of, tests from the defaults or explicitly).
struct customer_auth_options {
  std::string secret;            ///< auth.jwt_secret: the HS256 key's bytes; empty: none
  std::string public_key_file;   ///< auth.jwt_public_key: PEM file; empty: none
  std::string issuer;            ///< auth.jwt_issuer; empty: "iss" is not checked
  std::string audience;          ///< auth.jwt_audience; empty: "aud" is not checked
  std::chrono::seconds leeway{}; ///< auth.jwt_leeway: clock skew allowed on exp, nbf and iat
  /// auth.token_cache: tokens remembered after a successful check (see customer_verifier);
  /// 0: none. At ~0.5 KiB an entry, the default bounds the cache near 8 MiB.
  std::size_t cache_entries = 0;
};

/// Tokens longer than this are refused before any decoding.
inline constexpr std::size_t max_token_bytes = 8 * 1024;
/// The shortest `secret` accepted: RFC 7518 3.2 requires a key at least as long as the hash.
inline constexpr std::size_t min_secret_bytes = 32;
/// The longest customer id (`sub`) accepted, in bytes.
inline constexpr std::size_t max_subject_bytes = 255;

/// A start-up or minting error; `message` names the setting (or argument) at fault.
struct auth_error {
  std::string message;
};

/// Why a token was refused. The HTTP bridge answers every one of them 401 `unauthorized`.
enum class auth_failure {
  disabled,  ///< no secret and no public key configured
  malformed, ///< too long, not three base64url parts, not JSON objects, a claim of the wrong type
  unsupported_alg,  ///< "none", an algorithm other than HS256/RS256/ES256, or its key is not
                    ///< configured
  bad_signature,    ///< libjwt refused the signature (wrong key, changed header or payload, ...)
  expired,          ///< "exp" missing or now >= exp + leeway
  not_yet_valid,    ///< "nbf" > now + leeway
  issued_in_future, ///< "iat" > now + leeway
  wrong_issuer,     ///< "iss" missing or not the configured issuer
  wrong_audience,   ///< "aud" missing or not (containing) the configured audience
  bad_subject,      ///< "sub" missing, not a string, empty, too long or with a control character
};

/// A refusal: the kind and a short reason for logs. The reason never quotes the token or its
/// claims (they come from the client), only fixed text, setting names and numbers.
struct auth_refusal {
  auth_failure code;
  std::string reason;
};

/// A verified token.
struct verified_customer {
  std::string id;                                ///< the token's "sub"
  std::chrono::system_clock::time_point expires; ///< "exp" (no leeway; at most 2100-01-01)
};

/// Checks customer tokens against the configured keys (see the top of this file).
///
/// Built once at start-up; its settings are immutable afterwards and `verify` may be called from
/// any number of threads at once (libjwt, jansson and OpenSSL 3 keep no shared mutable state per
/// call; the cache below has its own locks). Copies share the keys and the cache.
///
/// Cost per `verify`, on the calling thread, never blocking on I/O (measured on the 2-core
/// development machine under load, 2000 calls each): a token checked in full costs two small
/// JSON parses each by our parser and by libjwt's jansson, a few dozen allocations and the
/// signature check. HS256 is one HMAC-SHA-256: about 5 us. RS256 and ES256 are dominated by
/// libjwt parsing the key's PEM text on every call (OpenSSL 3's decoders; libjwt 1.10 takes keys
/// only as PEM), not by the signature: about 0.4 ms (RS256) and 0.6 ms (ES256). So tokens that
/// pass are remembered (`cache_entries`, by the SHA-256 of the token, in 16 mutex-guarded
/// shards): the same token again costs one SHA-256, a lookup and the exp/nbf/iat checks, about
/// 1 us. Refused tokens are not remembered: a forged RS256/ES256 token always costs the full
/// check, so the per-address rate limits are what bound that work.
class customer_verifier {
 public:
  /// A disabled verifier (`enabled()` false; `verify` refuses everything with `disabled`).
  customer_verifier();

  /// Builds a verifier from `opts`. Reads `public_key_file` when set. Returns an error naming
  /// the setting when the secret is shorter than `min_secret_bytes`, the key file is unreadable
  /// or holds no public key (a private key or a certificate is refused too), the key is neither
  /// RSA (at least 2048 bits) nor EC on P-256, or leeway is negative. With neither a secret nor a
  /// key it returns a disabled verifier.
  static std::variant<customer_verifier, auth_error> make(const customer_auth_options& opts);

  /// True when a secret or a public key is configured.
  bool enabled() const;

  /// Which algorithms this verifier accepts, e.g. "HS256, ES256" ("" when disabled): for the
  /// node's start-up log line.
  std::string algorithms() const;

  /// Verifies `token` (the text after "Bearer ") at time `now`. Returns the customer, or why the
  /// token is refused.
  std::variant<verified_customer, auth_refusal>
  verify(std::string_view token, std::chrono::system_clock::time_point now) const;

 private:
  struct keys;
  std::shared_ptr<const keys> keys_; ///< null when disabled
};

/// What a minted token says.
struct token_claims {
  std::string subject;            ///< "sub": the customer id (the same rules as `verify`)
  std::chrono::seconds ttl{3600}; ///< "exp" = now + ttl; at least 1 s
  std::string issuer;             ///< "iss" when not empty
  std::string audience;           ///< "aud" (one string) when not empty
};

/// Mints an HS256 token over `secret` with `claims`, "iat" = now and "exp" = now + ttl (whole
/// seconds). Returns the compact token, or an error when the secret is shorter than
/// `min_secret_bytes`, the subject breaks `verify`'s rules or ttl is not positive. For
/// `surgectl token`, tests and the node's dev sign-in (auth.dev_login) only.
std::variant<std::string, auth_error> mint_hs256_token(std::string_view secret,
                                                       const token_claims& claims,
                                                       std::chrono::system_clock::time_point now);

/// Why `id` is not an acceptable customer id ("is empty", "is longer than 255 bytes", "is not
/// UTF-8", "has a control character"), or "" when it is: the rule `verify` applies to "sub".
std::string customer_id_problem(std::string_view id);

/// A name for `f` ("bad_signature", ...), for logs and test messages.
const char* to_string(auth_failure f);

} // namespace surge::net
