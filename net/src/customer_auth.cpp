#include "surge/net/customer_auth.hpp"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "surge/net/json.hpp"
#include "surge/net/text.hpp"

namespace surge::net {

namespace {

/// The algorithm a configured public key serves.
enum class key_alg { none, rs256, es256 };

/// The largest key file read (a PEM public key is well under 4 KiB).
constexpr std::size_t max_key_file_bytes = 64 * 1024;
/// An "exp" beyond 2100-01-01 is reported as that date (system_clock's nanoseconds end in 2262).
constexpr double max_numeric_date = 4102444800.0;

/// A unique_ptr deleter that calls the C library's `Free` function.
template <auto Free>
struct c_deleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using jwt_ptr = std::unique_ptr<jwt_t, c_deleter<jwt_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, c_deleter<EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, c_deleter<BIO_free>>;

using text::b64url_value;

/// Strict unpadded base64url (RFC 7515 2): only the 64 characters, a length that is not 1 mod 4
/// and zero bits after the last whole byte, so that each byte string has exactly one spelling.
std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = b64url_value(c);
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

/// A NumericDate (RFC 7519 2): any finite JSON number of seconds since the epoch.
std::optional<double> numeric_date(const json::value& v) {
  if (const auto* i = std::get_if<int64_t>(&v.get())) {
    return static_cast<double>(*i);
  }
  if (const auto* d = std::get_if<double>(&v.get()); d != nullptr && std::isfinite(*d)) {
    return *d;
  }
  return std::nullopt;
}

const std::string* string_of(const json::value* v) {
  return v == nullptr ? nullptr : std::get_if<std::string>(&v->get());
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

/// The decoded JSON object of one token part, or nullopt.
std::optional<json::value> json_object_part(std::string_view part) {
  auto bytes = b64url_decode(part);
  if (!bytes) {
    return std::nullopt;
  }
  auto parsed = json::parse(*bytes);
  auto* v = std::get_if<json::value>(&parsed);
  if (v == nullptr || !v->is_object()) {
    return std::nullopt;
  }
  return std::move(*v);
}

std::variant<verified_customer, auth_refusal> refuse(auth_failure code, std::string reason) {
  return auth_refusal{code, std::move(reason)};
}

/// The public key in `path` for auth.jwt_public_key, re-encoded as SubjectPublicKeyInfo PEM (the
/// form libjwt reads), with its algorithm and signature size; or an error naming the setting.
struct loaded_key {
  std::string pem;
  key_alg alg = key_alg::none;
  std::size_t signature_bytes = 0;
};

std::variant<loaded_key, auth_error> load_public_key(const std::string& path) {
  const std::string setting = "setting 'auth.jwt_public_key' (" + path + "): ";
  auto fail = [&](const std::string& what) { return auth_error{setting + what}; };
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(std::string{"cannot read the file: "} + std::strerror(errno));
  }
  std::string text(max_key_file_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    return fail("cannot read the file");
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_key_file_bytes) {
    return fail("larger than 64 KiB; expected one PEM public key");
  }
  if (text.find("PRIVATE KEY") != std::string::npos) {
    return fail("holds a private key; give only its public key (openssl pkey -in KEY -pubout)");
  }
  if (text.find("CERTIFICATE") != std::string::npos) {
    return fail("holds a certificate; give its public key (openssl x509 -in CERT -pubkey "
                "-noout)");
  }
  if (text.find("-----BEGIN RSA PUBLIC KEY-----") != std::string::npos) {
    return fail("holds a PKCS#1 RSA key; convert it to '-----BEGIN PUBLIC KEY-----' (openssl "
                "rsa -RSAPublicKey_in -in KEY -pubout)");
  }
  std::size_t blocks = 0;
  for (auto at = text.find("-----BEGIN "); at != std::string::npos;
       at = text.find("-----BEGIN ", at + 1)) {
    ++blocks;
  }
  if (blocks != 1) {
    return fail(blocks == 0 ? "no PEM block; expected one '-----BEGIN PUBLIC KEY-----'"
                            : "more than one PEM block; expected exactly one public key");
  }
  bio_ptr bio{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
  pkey_ptr key{bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr};
  ERR_clear_error();
  if (!key) {
    return fail("not a readable PEM public key ('-----BEGIN PUBLIC KEY-----')");
  }
  loaded_key out;
  const int id = EVP_PKEY_get_base_id(key.get());
  if (id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(key.get());
    if (bits < 2048) {
      return fail("RSA key of " + std::to_string(bits) + " bits; RS256 needs at least 2048");
    }
    out.alg = key_alg::rs256;
    out.signature_bytes = static_cast<std::size_t>(EVP_PKEY_get_size(key.get()));
  } else if (id == EVP_PKEY_EC) {
    std::array<char, 80> group{};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.data(),
                                       group.size(), &len) != 1 ||
        OBJ_sn2nid(group.data()) != NID_X9_62_prime256v1) {
      ERR_clear_error();
      return fail("EC key not on the P-256 curve (prime256v1); ES256 needs P-256");
    }
    out.alg = key_alg::es256;
    out.signature_bytes = 64;
  } else {
    return fail("neither an RSA nor an EC P-256 public key (RS256 or ES256)");
  }
  bio_ptr mem{BIO_new(BIO_s_mem())};
  if (!mem || PEM_write_bio_PUBKEY(mem.get(), key.get()) != 1) {
    ERR_clear_error();
    return fail("cannot re-encode the key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(mem.get(), &data);
  out.pem.assign(data, static_cast<std::size_t>(n));
  return out;
}

std::chrono::system_clock::time_point time_of(double numeric_date) {
  const double s = std::clamp(numeric_date, 0.0, max_numeric_date);
  return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(s))};
}

/// Tokens that passed every check, by the SHA-256 of their text, with what the time checks need
/// again. Thread-safe: 16 shards, each under its own mutex; at most `capacity` entries (when a
/// shard is full it drops its expired entries, then an arbitrary one).
class token_cache {
 public:
  using digest = std::array<unsigned char, 32>;
  struct entry {
    std::string sub;
    double exp = 0;          ///< "exp"
    double latest_start = 0; ///< the larger of "nbf" and "iat"; -inf when neither is present
  };

  explicit token_cache(std::size_t capacity)
      : per_shard_((capacity + shard_count - 1) / shard_count) {}

  /// SHA-256 of `token`; nullopt when OpenSSL fails (then the cache is not used).
  static std::optional<digest> digest_of(std::string_view token) {
    digest d{};
    unsigned int len = 0;
    if (EVP_Digest(token.data(), token.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 ||
        len != d.size()) {
      ERR_clear_error();
      return std::nullopt;
    }
    return d;
  }

  std::optional<entry> find(const digest& d) const {
    const shard& sh = shard_of(d);
    std::lock_guard lock{sh.m};
    auto it = sh.map.find(d);
    if (it == sh.map.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  /// Remembers `e`; entries with exp <= `stale_before` may be dropped to make room.
  void insert(const digest& d, entry e, double stale_before) {
    shard& sh = shard_of(d);
    std::lock_guard lock{sh.m};
    if (sh.map.size() >= per_shard_ && sh.map.find(d) == sh.map.end()) {
      std::erase_if(sh.map, [&](const auto& kv) { return kv.second.exp <= stale_before; });
      if (sh.map.size() >= per_shard_) {
        sh.map.erase(sh.map.begin());
      }
    }
    sh.map.insert_or_assign(d, std::move(e));
  }

 private:
  static constexpr std::size_t shard_count = 16;
  struct digest_hash {
    std::size_t operator()(const digest& d) const {
      std::size_t h = 0;
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  struct shard {
    mutable std::mutex m;
    std::unordered_map<digest, entry, digest_hash> map;
  };
  shard& shard_of(const digest& d) { return shards_[d[31] % shard_count]; }
  const shard& shard_of(const digest& d) const { return shards_[d[31] % shard_count]; }

  const std::size_t per_shard_;
  std::array<shard, shard_count> shards_;
};

} // namespace

struct customer_verifier::keys {
  std::string secret;              ///< HS256; empty: none
  std::string pem;                 ///< SubjectPublicKeyInfo PEM; empty: none
  key_alg pem_alg = key_alg::none; ///< what `pem` serves
  std::size_t pem_sig_bytes = 0;   ///< its signature size in bytes
  std::string issuer;              ///< empty: not checked
  std::string audience;            ///< empty: not checked
  double leeway_s = 0;
  std::unique_ptr<token_cache> cache; ///< null: no cache (cache_entries 0)

  keys() = default;
  keys(const keys&) = delete;
  keys& operator=(const keys&) = delete;
  ~keys() { OPENSSL_cleanse(secret.data(), secret.size()); }
};

customer_verifier::customer_verifier() = default;

std::variant<customer_verifier, auth_error>
customer_verifier::make(const customer_auth_options& opts) {
  customer_verifier v;
  if (opts.secret.empty() && opts.public_key_file.empty()) {
    return v;
  }
  if (opts.leeway.count() < 0) {
    return auth_error{"customer token leeway must not be negative"};
  }
  auto k = std::make_shared<keys>();
  if (!opts.secret.empty()) {
    if (opts.secret.size() < min_secret_bytes) {
      return auth_error{"setting 'auth.jwt_secret': " + std::to_string(opts.secret.size()) +
                        " bytes; HS256 needs at least " + std::to_string(min_secret_bytes) +
                        " (e.g. openssl rand -hex 32)"};
    }
    if (opts.secret.size() > static_cast<std::size_t>(INT_MAX)) {
      return auth_error{"setting 'auth.jwt_secret': too long"};
    }
    k->secret = opts.secret;
  }
  if (!opts.public_key_file.empty()) {
    auto loaded = load_public_key(opts.public_key_file);
    if (auto* e = std::get_if<auth_error>(&loaded)) {
      return std::move(*e);
    }
    auto& lk = std::get<loaded_key>(loaded);
    k->pem = std::move(lk.pem);
    k->pem_alg = lk.alg;
    k->pem_sig_bytes = lk.signature_bytes;
  }
  k->issuer = opts.issuer;
  k->audience = opts.audience;
  k->leeway_s = static_cast<double>(opts.leeway.count());
  if (opts.cache_entries > 0) {
    k->cache = std::make_unique<token_cache>(opts.cache_entries);
  }
  // jansson seeds its hash function on the first object it makes; do that here, on one thread,
  // before I/O threads decode tokens concurrently.
  jwt_t* probe = nullptr;
  if (jwt_new(&probe) == 0) {
    jwt_free(probe);
  }
  v.keys_ = std::move(k);
  return v;
}

bool customer_verifier::enabled() const {
  return keys_ != nullptr;
}

std::string customer_verifier::algorithms() const {
  if (!keys_) {
    return {};
  }
  std::string out = keys_->secret.empty() ? "" : "HS256";
  if (keys_->pem_alg != key_alg::none) {
    out += out.empty() ? "" : ", ";
    out += keys_->pem_alg == key_alg::rs256 ? "RS256" : "ES256";
  }
  return out;
}

std::variant<verified_customer, auth_refusal>
customer_verifier::verify(std::string_view token, std::chrono::system_clock::time_point now) const {
  if (!keys_) {
    return refuse(auth_failure::disabled, "customer tokens are not configured");
  }
  const keys& k = *keys_;
  if (token.empty()) {
    return refuse(auth_failure::malformed, "empty token");
  }
  if (token.size() > max_token_bytes) {
    return refuse(auth_failure::malformed,
                  "token longer than " + std::to_string(max_token_bytes) + " bytes");
  }
  // Exactly three base64url parts. libjwt would stop decoding at the first foreign character and
  // ignore the rest, so nothing else may reach it.
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return refuse(auth_failure::malformed, "not three dot-separated parts");
  }
  for (char c : token) {
    if (c != '.' && b64url_value(c) < 0) {
      return refuse(auth_failure::malformed, "a character outside base64url");
    }
  }
  // A token verified before needs only its time checks again (the rest cannot change).
  const double now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
  const auto digest = k.cache ? token_cache::digest_of(token) : std::nullopt;
  if (digest) {
    if (auto hit = k.cache->find(*digest);
        hit && now_s < hit->exp + k.leeway_s && hit->latest_start <= now_s + k.leeway_s) {
      return verified_customer{std::move(hit->sub), time_of(hit->exp)};
    }
  }
  const auto head_part = token.substr(0, dot1);
  const auto body_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const auto sig_part = token.substr(dot2 + 1);

  const auto header = json_object_part(head_part);
  if (!header) {
    return refuse(auth_failure::malformed, "header is not a base64url JSON object");
  }
  const auto* alg = string_of(header->find("alg"));
  if (alg == nullptr) {
    return refuse(auth_failure::malformed, "header has no string alg");
  }
  if (ascii_iequals(*alg, "none")) {
    return refuse(auth_failure::unsupported_alg, "alg none");
  }
  if (header->find("crit") != nullptr) {
    return refuse(auth_failure::malformed, "header has crit (no extension is understood)");
  }
  if (const auto* typ = header->find("typ")) {
    const auto* s = string_of(typ);
    if (s == nullptr || !ascii_iequals(*s, "JWT")) {
      return refuse(auth_failure::malformed, "typ is not JWT");
    }
  }

  // The key for this alg, only ever the one configured for it.
  std::string_view key;
  jwt_alg_t want = JWT_ALG_NONE;
  std::size_t sig_bytes = 0;
  if (*alg == "HS256") {
    if (k.secret.empty()) {
      return refuse(auth_failure::unsupported_alg, "HS256 token but auth.jwt_secret is not set");
    }
    key = k.secret;
    want = JWT_ALG_HS256;
    sig_bytes = 32;
  } else if (*alg == "RS256" || *alg == "ES256") {
    const bool rs = *alg == "RS256";
    if (k.pem_alg != (rs ? key_alg::rs256 : key_alg::es256)) {
      return refuse(auth_failure::unsupported_alg, std::string{rs ? "RS256" : "ES256"} +
                                                       " token but auth.jwt_public_key is not " +
                                                       (rs ? "an RSA key" : "an EC P-256 key"));
    }
    key = k.pem;
    want = rs ? JWT_ALG_RS256 : JWT_ALG_ES256;
    sig_bytes = k.pem_sig_bytes;
  } else {
    return refuse(auth_failure::unsupported_alg, "alg is not HS256, RS256 or ES256");
  }

  const auto claims = json_object_part(body_part);
  if (!claims) {
    return refuse(auth_failure::malformed, "payload is not a base64url JSON object");
  }
  const auto sig = b64url_decode(sig_part);
  if (!sig || sig->size() != sig_bytes) {
    return refuse(auth_failure::bad_signature,
                  "signature is not " + std::to_string(sig_bytes) + " bytes of base64url");
  }

  // The signature, by libjwt, over exactly the text checked above, with the chosen key.
  const std::string text{token};
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                            static_cast<int>(key.size()));
  jwt_ptr decoded{raw};
  if (rc != 0 || !decoded || jwt_get_alg(decoded.get()) != want) {
    ERR_clear_error();
    return refuse(auth_failure::bad_signature, "signature check failed");
  }

  // The claims, from our strict parse of the payload libjwt has just verified.
  double latest_start = -std::numeric_limits<double>::infinity();
  const auto* exp_v = claims->find("exp");
  if (exp_v == nullptr) {
    return refuse(auth_failure::expired, "no exp claim");
  }
  const auto exp = numeric_date(*exp_v);
  if (!exp) {
    return refuse(auth_failure::malformed, "exp is not a number");
  }
  if (!(now_s < *exp + k.leeway_s)) {
    return refuse(auth_failure::expired, "token expired");
  }
  // The optional start claims, in this order: a number no later than now (plus leeway).
  struct start_claim {
    const char* name;
    auth_failure too_late;
    const char* not_a_number;
    const char* late;
  };
  static constexpr start_claim start_claims[] = {
      {"nbf", auth_failure::not_yet_valid, "nbf is not a number", "token not valid yet (nbf)"},
      {"iat", auth_failure::issued_in_future, "iat is not a number",
       "token issued in the future (iat)"}};
  for (const auto& c : start_claims) {
    if (const auto* v = claims->find(c.name)) {
      const auto t = numeric_date(*v);
      if (!t) {
        return refuse(auth_failure::malformed, c.not_a_number);
      }
      if (*t > now_s + k.leeway_s) {
        return refuse(c.too_late, c.late);
      }
      latest_start = std::max(latest_start, *t);
    }
  }
  if (!k.issuer.empty()) {
    const auto* iss = string_of(claims->find("iss"));
    if (iss == nullptr || *iss != k.issuer) {
      return refuse(auth_failure::wrong_issuer, "iss is not auth.jwt_issuer");
    }
  }
  if (!k.audience.empty()) {
    const auto* aud_v = claims->find("aud");
    bool match = false;
    if (const auto* one = string_of(aud_v)) {
      match = *one == k.audience;
    } else if (aud_v != nullptr && aud_v->is_array()) {
      for (const auto& a : std::get<json::array>(aud_v->get())) {
        const auto* s = string_of(&a);
        if (s == nullptr) {
          return refuse(auth_failure::malformed, "aud array has a non-string");
        }
        match = match || *s == k.audience;
      }
    }
    if (!match) {
      return refuse(auth_failure::wrong_audience, "aud does not name auth.jwt_audience");
    }
  }
  const auto* sub = string_of(claims->find("sub"));
  if (sub == nullptr) {
    return refuse(auth_failure::bad_subject, "no string sub claim");
  }
  if (auto problem = customer_id_problem(*sub); !problem.empty()) {
    return refuse(auth_failure::bad_subject, "sub " + problem);
  }
  if (digest) {
    k.cache->insert(*digest, {*sub, *exp, latest_start}, now_s - k.leeway_s);
  }
  return verified_customer{*sub, time_of(*exp)};
}

std::variant<std::string, auth_error> mint_hs256_token(std::string_view secret,
                                                       const token_claims& claims,
                                                       std::chrono::system_clock::time_point now) {
  if (secret.size() < min_secret_bytes) {
    return auth_error{"the secret has " + std::to_string(secret.size()) +
                      " bytes; HS256 needs at least " + std::to_string(min_secret_bytes)};
  }
  if (secret.size() > static_cast<std::size_t>(INT_MAX)) {
    return auth_error{"the secret is too long"};
  }
  if (auto problem = customer_id_problem(claims.subject); !problem.empty()) {
    return auth_error{"the customer id " + problem};
  }
  if (claims.ttl.count() < 1) {
    return auth_error{"ttl must be at least 1 s"};
  }
  if (!claims.issuer.empty() && !json::valid_utf8(claims.issuer)) {
    return auth_error{"issuer is not UTF-8"};
  }
  if (!claims.audience.empty() && !json::valid_utf8(claims.audience)) {
    return auth_error{"audience is not UTF-8"};
  }
  const long iat = static_cast<long>(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) {
    return auth_error{"out of memory"};
  }
  jwt_ptr j{raw};
  int rc = jwt_add_grant(j.get(), "sub", claims.subject.c_str());
  rc = rc != 0 ? rc : jwt_add_grant_int(j.get(), "iat", iat);
  rc =
      rc != 0 ? rc : jwt_add_grant_int(j.get(), "exp", iat + static_cast<long>(claims.ttl.count()));
  if (rc == 0 && !claims.issuer.empty()) {
    rc = jwt_add_grant(j.get(), "iss", claims.issuer.c_str());
  }
  if (rc == 0 && !claims.audience.empty()) {
    rc = jwt_add_grant(j.get(), "aud", claims.audience.c_str());
  }
  if (rc == 0) {
    rc = jwt_set_alg(j.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                     static_cast<int>(secret.size()));
  }
  if (rc != 0) {
    return auth_error{std::string{"cannot build the token: "} + std::strerror(rc)};
  }
  char* out = jwt_encode_str(j.get());
  if (out == nullptr) {
    return auth_error{"cannot sign the token"};
  }
  std::string token{out};
  std::free(out);
  return token;
}

std::string customer_id_problem(std::string_view id) {
  if (id.empty()) {
    return "is empty";
  }
  if (id.size() > max_subject_bytes) {
    return "is longer than " + std::to_string(max_subject_bytes) + " bytes";
  }
  if (!json::valid_utf8(id)) {
    return "is not UTF-8";
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    const auto b = static_cast<unsigned char>(id[i]);
    const bool c1 = b == 0xC2 && i + 1 < id.size() &&
                    static_cast<unsigned char>(id[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(id[i + 1]) <= 0x9F;
    if (b < 0x20 || b == 0x7F || c1) {
      return "has a control character";
    }
  }
  return {};
}

const char* to_string(auth_failure f) {
  // In declaration order; surge_net_http stands alone (the fuzz build), so no shared helper.
  static constexpr const char* names[] = {
      "disabled",      "malformed",        "unsupported_alg", "bad_signature",  "expired",
      "not_yet_valid", "issued_in_future", "wrong_issuer",    "wrong_audience", "bad_subject"};
  static_assert(std::size(names) == static_cast<std::size_t>(auth_failure::bad_subject) + 1);
  const auto i = static_cast<std::size_t>(f);
  return i < std::size(names) ? names[i] : "unknown";
}

} // namespace surge::net
