// customer_verifier and mint_hs256_token (net/customer_auth.hpp). Keys are generated here with
// OpenSSL (RSA 2048, EC P-256; nothing private is committed) and most tokens are built by hand
// with OpenSSL's HMAC/EVP APIs (ES256 as raw r||s per RFC 7518 3.4), so they come from outside
// libjwt. Fixed vectors from outside: RFC 7515 A.1 (HS256) and A.3 (ES256), and one token made
// by PyJWT 2.6. Every refusal of the header's contract is a case.

#include <doctest/doctest.h>

#include "base64url.hpp"
#include "on_threads.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "surge/net/customer_auth.hpp"

namespace net = surge::net;
using namespace std::chrono_literals;
using clock_type = std::chrono::system_clock;

namespace {

// ------------------------------------------------------------------------------ helpers

using surge::test::base64url;

std::string b64url_decode(std::string_view s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
                                   : 63;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey = std::unique_ptr<EVP_PKEY, pkey_free>;

pkey rsa_key(unsigned bits = 2048) {
  pkey k{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits))};
  REQUIRE(k);
  return k;
}

pkey ec_key(const char* curve = "P-256") {
  pkey k{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve)};
  REQUIRE(k);
  return k;
}

pkey ed25519_key() {
  pkey k{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")};
  REQUIRE(k);
  return k;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string public_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(b, k) == 1);
  return bio_text(b);
}

std::string private_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  return bio_text(b);
}

/// "-----BEGIN RSA PUBLIC KEY-----" (PKCS#1).
std::string pkcs1_public_pem(EVP_PKEY* k) {
  OSSL_ENCODER_CTX* ctx =
      OSSL_ENCODER_CTX_new_for_pkey(k, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", nullptr);
  REQUIRE(ctx != nullptr);
  unsigned char* data = nullptr;
  size_t len = 0;
  REQUIRE(OSSL_ENCODER_to_data(ctx, &data, &len) == 1);
  std::string s(reinterpret_cast<char*>(data), len);
  OPENSSL_free(data);
  OSSL_ENCODER_CTX_free(ctx);
  return s;
}

/// A self-signed certificate of `k` as PEM.
std::string certificate_pem(EVP_PKEY* k) {
  X509* x = X509_new();
  REQUIRE(x != nullptr);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, k);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("surge test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  REQUIRE(X509_sign(x, k, EVP_sha256()) > 0);
  BIO* b = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_X509(b, x) == 1);
  X509_free(x);
  return bio_text(b);
}

std::string hs256(std::string_view key, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
               &len) != nullptr);
  return std::string(reinterpret_cast<char*>(mac), len);
}

/// An EVP signature over SHA-256: PKCS#1 v1.5 for RSA, DER (X9.62) for EC.
std::string evp_sign(EVP_PKEY* k, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k) == 1);
  size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

/// ES256 as RFC 7518 3.4 wants it: r and s, 32 big-endian bytes each.
std::string es256_raw(EVP_PKEY* k, std::string_view input) {
  const std::string der = evp_sign(k, input);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig != nullptr);
  std::string raw(64, '\0');
  REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32) ==
          32);
  REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32,
                       32) == 32);
  ECDSA_SIG_free(sig);
  return raw;
}

using sign_fn = std::function<std::string(std::string_view)>;

/// header.payload.signature from raw JSON texts.
std::string make_token(std::string_view header, std::string_view payload, const sign_fn& sign) {
  std::string input = base64url(header) + "." + base64url(payload);
  return input + "." + base64url(sign(input));
}

const clock_type::time_point now_tp{std::chrono::seconds{1'800'000'000}};
constexpr int64_t now_s = 1'800'000'000;

std::string claims(const std::string& extra = {}, int64_t exp = now_s + 600) {
  return R"({"sub":"alice","exp":)" + std::to_string(exp) + extra + "}";
}

/// A temporary directory, removed with everything in it.
struct temp_dir {
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "surge-auth-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const auto p = (path / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::filesystem::path path;
};

/// The keys every case shares (generated once: RSA key generation takes a moment).
struct keyring {
  keyring()
      : rsa(rsa_key())
      , rsa_other(rsa_key())
      , ec(ec_key())
      , ec_other(ec_key()) {
    rsa_file = dir.write("rsa.pem", public_pem(rsa.get()));
    ec_file = dir.write("ec.pem", public_pem(ec.get()));
  }
  temp_dir dir;
  pkey rsa, rsa_other, ec, ec_other;
  std::string rsa_file, ec_file;
};

keyring& keys() {
  static keyring k;
  return k;
}

const std::string secret = "0123456789abcdef0123456789abcdef-surge-test"; // test-only
const std::string other_secret = "fedcba9876543210fedcba9876543210-surge-test";

sign_fn with_secret(std::string key) {
  return [key](std::string_view in) { return hs256(key, in); };
}
sign_fn with_rsa(EVP_PKEY* k) {
  return [k](std::string_view in) { return evp_sign(k, in); };
}
sign_fn with_ec(EVP_PKEY* k) {
  return [k](std::string_view in) { return es256_raw(k, in); };
}

constexpr const char* hs_header = R"({"alg":"HS256","typ":"JWT"})";
constexpr const char* rs_header = R"({"alg":"RS256","typ":"JWT"})";
constexpr const char* es_header = R"({"alg":"ES256","typ":"JWT"})";

net::customer_auth_options options(std::string secret, std::string key_file = {},
                                   std::string issuer = {}, std::string audience = {},
                                   std::chrono::seconds leeway = 30s) {
  net::customer_auth_options o;
  o.secret = std::move(secret);
  o.public_key_file = std::move(key_file);
  o.issuer = std::move(issuer);
  o.audience = std::move(audience);
  o.leeway = leeway;
  o.cache_entries = 16384; // the setting's default
  return o;
}

template <class... Args>
net::customer_verifier make(Args&&... args) {
  auto r = net::customer_verifier::make(options(std::forward<Args>(args)...));
  if (auto* e = std::get_if<net::auth_error>(&r)) {
    FAIL("unexpected start-up error: ", e->message);
  }
  return std::get<net::customer_verifier>(std::move(r));
}

net::customer_verifier hs_verifier(std::string issuer = {}, std::string audience = {}) {
  return make(secret, "", std::move(issuer), std::move(audience));
}
net::customer_verifier rs_verifier() {
  return make("", keys().rsa_file);
}
net::customer_verifier es_verifier() {
  return make("", keys().ec_file);
}

template <class... Args>
std::string startup_error(Args&&... args) {
  auto r = net::customer_verifier::make(options(std::forward<Args>(args)...));
  if (auto* e = std::get_if<net::auth_error>(&r)) {
    return e->message;
  }
  FAIL_CHECK("expected a start-up error");
  return {};
}

/// The customer id, or fails the test naming the refusal.
std::string accepted(const net::customer_verifier& v, const std::string& token,
                     clock_type::time_point at = now_tp) {
  auto r = v.verify(token, at);
  if (auto* f = std::get_if<net::auth_refusal>(&r)) {
    FAIL_CHECK("refused (", net::to_string(f->code), "): ", f->reason);
    return {};
  }
  return std::get<net::verified_customer>(r).id;
}

/// The refusal's code (and that there is a reason), or fails the test when accepted.
net::auth_failure refused(const net::customer_verifier& v, const std::string& token,
                          clock_type::time_point at = now_tp) {
  auto r = v.verify(token, at);
  if (auto* f = std::get_if<net::auth_refusal>(&r)) {
    CHECK_FALSE(f->reason.empty());
    return f->code;
  }
  FAIL_CHECK("accepted a token that must be refused: ", token);
  return net::auth_failure::disabled;
}

using F = net::auth_failure;

} // namespace

// ------------------------------------------------------------------------- valid tokens

TEST_CASE("customer_auth: HS256, RS256 and ES256 tokens built with OpenSSL verify") {
  const auto hs = make_token(hs_header, claims(), with_secret(secret));
  const auto rs = make_token(rs_header, claims(), with_rsa(keys().rsa.get()));
  const auto es = make_token(es_header, claims(), with_ec(keys().ec.get()));
  CHECK(accepted(hs_verifier(), hs) == "alice");
  CHECK(accepted(rs_verifier(), rs) == "alice");
  CHECK(accepted(es_verifier(), es) == "alice");

  auto r = hs_verifier().verify(hs, now_tp);
  REQUIRE(std::holds_alternative<net::verified_customer>(r));
  CHECK(std::get<net::verified_customer>(r).expires == now_tp + 600s);

  // Headers without typ, with extra members, and with a lower-case typ are fine.
  CHECK(accepted(es_verifier(),
                 make_token(R"({"alg":"ES256"})", claims(), with_ec(keys().ec.get()))) == "alice");
  CHECK(accepted(hs_verifier(), make_token(R"({"typ":"jwt","kid":"k1","alg":"HS256"})", claims(),
                                           with_secret(secret))) == "alice");
  // Unicode customer ids, and one of exactly 255 bytes.
  CHECK(accepted(hs_verifier(), make_token(hs_header,
                                           R"({"sub":"zo\u00eb@example.com","exp":)" +
                                               std::to_string(now_s + 60) + "}",
                                           with_secret(secret))) == "zo\xC3\xAB@example.com");
  const std::string long_sub(255, 'x');
  CHECK(accepted(hs_verifier(), make_token(hs_header,
                                           R"({"sub":")" + long_sub + R"(","exp":)" +
                                               std::to_string(now_s + 60) + "}",
                                           with_secret(secret))) == long_sub);
}

TEST_CASE("customer_auth: with a secret and a public key, the token's alg picks the key") {
  const auto v = make(secret, keys().ec_file);
  CHECK(v.enabled());
  CHECK(v.algorithms() == "HS256, ES256");
  CHECK(accepted(v, make_token(hs_header, claims(), with_secret(secret))) == "alice");
  CHECK(accepted(v, make_token(es_header, claims(), with_ec(keys().ec.get()))) == "alice");
  CHECK(refused(v, make_token(rs_header, claims(), with_rsa(keys().rsa.get()))) ==
        F::unsupported_alg);
  CHECK(make("", keys().rsa_file).algorithms() == "RS256");
}

TEST_CASE("customer_auth: minted tokens verify and carry the claims") {
  net::token_claims c;
  c.subject = "bob";
  c.ttl = 3600s;
  auto minted = net::mint_hs256_token(secret, c, now_tp);
  REQUIRE(std::holds_alternative<std::string>(minted));
  const auto token = std::get<std::string>(minted);
  CHECK(b64url_decode(token.substr(0, token.find('.'))) == R"({"alg":"HS256","typ":"JWT"})");
  auto r = hs_verifier().verify(token, now_tp);
  REQUIRE(std::holds_alternative<net::verified_customer>(r));
  CHECK(std::get<net::verified_customer>(r).id == "bob");
  CHECK(std::get<net::verified_customer>(r).expires == now_tp + 3600s);
  CHECK(refused(hs_verifier(), token, now_tp + 3600s + 30s) == F::expired);

  c.issuer = "https://shop.example";
  c.audience = "surge";
  const auto with_iss = std::get<std::string>(net::mint_hs256_token(secret, c, now_tp));
  CHECK(accepted(hs_verifier("https://shop.example", "surge"), with_iss) == "bob");
  CHECK(refused(hs_verifier("https://other.example"), with_iss) == F::wrong_issuer);
  CHECK(refused(make(other_secret), with_iss) == F::bad_signature);
}

TEST_CASE("customer_auth: minting refuses a short secret, a bad customer id and a zero ttl") {
  net::token_claims c;
  c.subject = "bob";
  auto err = [&](std::string_view s, const net::token_claims& cl) {
    auto r = net::mint_hs256_token(s, cl, now_tp);
    REQUIRE(std::holds_alternative<net::auth_error>(r));
    return std::get<net::auth_error>(r).message;
  };
  CHECK(err(std::string(31, 'k'), c).find("at least 32") != std::string::npos);
  auto bad = c;
  bad.subject = "";
  CHECK(err(secret, bad).find("customer id") != std::string::npos);
  bad.subject = "a\nb";
  CHECK(err(secret, bad).find("control") != std::string::npos);
  bad.subject = std::string(256, 'x');
  CHECK(err(secret, bad).find("255") != std::string::npos);
  bad = c;
  bad.ttl = 0s;
  CHECK(err(secret, bad).find("ttl") != std::string::npos);
}

// ------------------------------------------------------------------ vectors from outside

TEST_CASE("customer_auth: RFC 7515 A.1 (HS256): the signature verifies, exp is honoured") {
  // The example key of RFC 7515 A.1.1 (a JWK "k", 64 bytes) and its token. It has no "sub":
  // a verified signature gets as far as the subject check.
  const std::string key = b64url_decode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  REQUIRE(key.size() == 64);
  const std::string token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                            "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLm"
                            "NvbS9pc19yb290Ijp0cnVlfQ."
                            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  const auto v = make(key, "", "joe");
  const clock_type::time_point exp{std::chrono::seconds{1300819380}};
  CHECK(refused(v, token, exp - 80s) == F::bad_subject);
  CHECK(refused(v, token, exp + 29s) == F::bad_subject); // inside the 30 s leeway
  CHECK(refused(v, token, exp + 30s) == F::expired);
  CHECK(refused(make(key, "", "mallory"), token, exp - 80s) == F::wrong_issuer);
  auto tampered = token;
  tampered.back() = 'g'; // ...EjXk -> ...EjXg: one bit of the MAC, still canonical base64url
  CHECK(refused(v, tampered, exp - 80s) == F::bad_signature);
  CHECK(refused(make(std::string(64, 'k')), token, exp - 80s) == F::bad_signature);
}

TEST_CASE("customer_auth: RFC 7515 A.3 (ES256, raw r||s) verifies with the RFC's public key") {
  // RFC 7515 A.3.1's P-256 key (x = f83OJ3D2..., y = x_FEzRu9...) as SubjectPublicKeyInfo.
  const std::string pem = "-----BEGIN PUBLIC KEY-----\n"
                          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
                          "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                          "-----END PUBLIC KEY-----\n";
  temp_dir dir;
  const auto v = make("", dir.write("rfc.pem", pem));
  const std::string token =
      "eyJhbGciOiJFUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ."
      "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
  const clock_type::time_point exp{std::chrono::seconds{1300819380}};
  CHECK(refused(v, token, exp - 80s) == F::bad_subject); // signature and exp passed
  CHECK(refused(v, token, exp + 60s) == F::expired);
  auto tampered = token;
  tampered.back() = 'A'; // the low bit of s's last byte
  CHECK(refused(v, tampered, exp - 80s) == F::bad_signature);
}

TEST_CASE("customer_auth: a token made by PyJWT 2.6 verifies (aud as an array)") {
  // jwt.encode({"sub":"alice@example.com","iss":"https://id.example","aud":["other","surge"],
  //   "iat":1700000000,"nbf":1700000000,"exp":1700003600},
  //   "surge-test-interop-secret-0123456789abcdef", algorithm="HS256")
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsImlzcyI6Imh0dHBzOi8vaWQuZXhhbXBsZSIsImF1ZCI6WyJvdGhlci"
      "IsInN1cmdlIl0sImlhdCI6MTcwMDAwMDAwMCwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9."
      "I3Cd5t1mb3HKOUbbZqNPulh2dtS_1Y8di06FN3Ip_b4";
  const auto v =
      make("surge-test-interop-secret-0123456789abcdef", "", "https://id.example", "surge");
  const clock_type::time_point at{std::chrono::seconds{1700001000}};
  auto r = v.verify(token, at);
  REQUIRE(std::holds_alternative<net::verified_customer>(r));
  CHECK(std::get<net::verified_customer>(r).id == "alice@example.com");
  CHECK(std::get<net::verified_customer>(r).expires ==
        clock_type::time_point{std::chrono::seconds{1700003600}});
  CHECK(refused(make("surge-test-interop-secret-0123456789abcdef", "", "", "billing"), token, at) ==
        F::wrong_audience);
}

// ------------------------------------------------------------------------------ refusals

TEST_CASE("customer_auth: alg none is refused, in any spelling, with or without a signature") {
  const auto v = make(secret, keys().rsa_file);
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = std::string{R"({"alg":")"} + alg + R"("})";
    const std::string unsigned_token = base64url(header) + "." + base64url(claims()) + ".";
    CHECK(refused(v, unsigned_token) == F::unsupported_alg);
    CHECK(refused(v, make_token(header, claims(), with_secret(secret))) == F::unsupported_alg);
  }
}

TEST_CASE("customer_auth: no alg confusion: a public key's PEM is never an HMAC secret") {
  // An attacker who knows the public key signs "HS256" with its PEM text as the secret (what
  // libjwt 1.10 would do given that key and that header).
  const std::string rsa_pem = public_pem(keys().rsa.get());
  const std::string ec_pem = public_pem(keys().ec.get());
  CHECK(refused(rs_verifier(), make_token(hs_header, claims(), with_secret(rsa_pem))) ==
        F::unsupported_alg);
  CHECK(refused(es_verifier(), make_token(hs_header, claims(), with_secret(ec_pem))) ==
        F::unsupported_alg);
  // With a secret configured as well, the PEM-keyed HMAC is simply a wrong signature.
  CHECK(refused(make(secret, keys().rsa_file),
                make_token(hs_header, claims(), with_secret(rsa_pem))) == F::bad_signature);
  // A key serves only its own algorithm: ES256 against an RSA key and RS256 against an EC key.
  CHECK(refused(rs_verifier(), make_token(es_header, claims(), with_ec(keys().ec.get()))) ==
        F::unsupported_alg);
  CHECK(refused(es_verifier(), make_token(rs_header, claims(), with_rsa(keys().rsa.get()))) ==
        F::unsupported_alg);
  // And the secret only HS256.
  CHECK(refused(hs_verifier(), make_token(rs_header, claims(), with_rsa(keys().rsa.get()))) ==
        F::unsupported_alg);
}

TEST_CASE("customer_auth: algorithms other than HS256, RS256 and ES256 are refused") {
  const auto v = make(secret, keys().rsa_file);
  for (const char* alg : {"HS384", "HS512", "RS384", "RS512", "PS256", "ES384", "EdDSA", "hs256",
                          "Hs256", "rs256", "HS256 ", ""}) {
    const std::string header = std::string{R"({"alg":")"} + alg + R"("})";
    CAPTURE(alg);
    CHECK(refused(v, make_token(header, claims(), with_secret(secret))) == F::unsupported_alg);
  }
  CHECK(refused(v, make_token(R"({"typ":"JWT"})", claims(), with_secret(secret))) == F::malformed);
  CHECK(refused(v, make_token(R"({"alg":256})", claims(), with_secret(secret))) == F::malformed);
  CHECK(refused(v, make_token(R"({"alg":["HS256"]})", claims(), with_secret(secret))) ==
        F::malformed);
}

TEST_CASE("customer_auth: bad, truncated or foreign signatures are refused") {
  const auto hs = make_token(hs_header, claims(), with_secret(secret));
  const auto rs = make_token(rs_header, claims(), with_rsa(keys().rsa.get()));
  const auto es = make_token(es_header, claims(), with_ec(keys().ec.get()));
  struct row {
    net::customer_verifier v;
    std::string token;
  };
  for (auto& [v, token] :
       std::vector<row>{{hs_verifier(), hs}, {rs_verifier(), rs}, {es_verifier(), es}}) {
    const auto dot = token.rfind('.');
    // One byte of the signature changed (the first character: no padding bits involved).
    auto flipped = token;
    flipped[dot + 1] = flipped[dot + 1] == 'A' ? 'B' : 'A';
    CHECK(refused(v, flipped) == F::bad_signature);
    CHECK(refused(v, token.substr(0, dot + 1)) == F::bad_signature);          // empty signature
    CHECK(refused(v, token.substr(0, token.size() - 4)) == F::bad_signature); // truncated
    CHECK(refused(v, token + "AAAA") == F::bad_signature);                    // bytes appended
    CHECK(refused(v, token + ".AAAA") == F::malformed);                       // a fourth part
    CHECK(refused(v, token + "!") == F::malformed); // libjwt would stop at '!' and accept
    CHECK(refused(v, token + "=") == F::malformed); // padding
    CHECK(refused(v, token + "\n") == F::malformed);
  }
  // Signed by another key of the right type.
  CHECK(refused(hs_verifier(), make_token(hs_header, claims(), with_secret(other_secret))) ==
        F::bad_signature);
  CHECK(refused(rs_verifier(), make_token(rs_header, claims(), with_rsa(keys().rsa_other.get()))) ==
        F::bad_signature);
  CHECK(refused(es_verifier(), make_token(es_header, claims(), with_ec(keys().ec_other.get()))) ==
        F::bad_signature);
  // ES256 with OpenSSL's DER signature instead of raw r||s.
  CHECK(refused(es_verifier(), make_token(es_header, claims(), with_rsa(keys().ec.get()))) ==
        F::bad_signature);
}

TEST_CASE("customer_auth: a changed header or payload breaks the signature") {
  for (int alg = 0; alg < 3; ++alg) {
    CAPTURE(alg);
    const auto v = alg == 0 ? hs_verifier() : alg == 1 ? rs_verifier() : es_verifier();
    const char* header = alg == 0 ? hs_header : alg == 1 ? rs_header : es_header;
    const sign_fn sign = alg == 0   ? with_secret(secret)
                         : alg == 1 ? with_rsa(keys().rsa.get())
                                    : with_ec(keys().ec.get());
    const auto token = make_token(header, claims(), sign);
    const auto sig = token.substr(token.rfind('.'));
    // The payload of another customer with the original signature.
    const auto other =
        make_token(header, R"({"sub":"mallory","exp":)" + std::to_string(now_s + 600) + "}", sign);
    const auto forged_payload = other.substr(0, other.rfind('.')) + sig;
    CHECK(refused(v, forged_payload) == F::bad_signature);
    // A longer lifetime with the original signature.
    const auto later = make_token(header, claims({}, now_s + 86400), sign);
    CHECK(refused(v, later.substr(0, later.rfind('.')) + sig) == F::bad_signature);
    // Another header (an added kid) with the original signature.
    std::string h = header;
    h.insert(1, R"("kid":"x",)");
    const auto rekeyed = make_token(h, claims(), sign);
    CHECK(refused(v, rekeyed.substr(0, rekeyed.rfind('.')) + sig) == F::bad_signature);
  }
}

TEST_CASE("customer_auth: exp is required and honoured with the leeway") {
  const auto v = hs_verifier();
  auto tok = [](const std::string& payload) {
    return make_token(hs_header, payload, with_secret(secret));
  };
  CHECK(accepted(v, tok(claims({}, now_s - 29))) == "alice"); // within the 30 s leeway
  CHECK(refused(v, tok(claims({}, now_s - 30))) == F::expired);
  CHECK(refused(v, tok(claims({}, now_s - 3600))) == F::expired);
  CHECK(refused(v, tok(claims({}, 0))) == F::expired);
  CHECK(refused(v, tok(claims({}, -5))) == F::expired);
  CHECK(refused(v, tok(R"({"sub":"alice"})")) == F::expired);
  CHECK(refused(v, tok(R"({"sub":"alice","exp":null})")) == F::malformed);
  CHECK(refused(v, tok(R"({"sub":"alice","exp":"1800000600"})")) == F::malformed);
  CHECK(refused(v, tok(R"({"sub":"alice","exp":true})")) == F::malformed);
  CHECK(accepted(v, tok(R"({"sub":"alice","exp":1800000600.5})")) == "alice");
  CHECK(refused(v, tok(R"({"sub":"alice","exp":1799999960.5})")) == F::expired);
  // A huge exp is accepted and clamped to a representable time.
  auto r = v.verify(tok(R"({"sub":"alice","exp":1e300})"), now_tp);
  REQUIRE(std::holds_alternative<net::verified_customer>(r));
  CHECK(std::get<net::verified_customer>(r).expires > now_tp);
  // No leeway at all.
  const auto strict = make(secret, "", "", "", 0s);
  CHECK(refused(strict, tok(claims({}, now_s))) == F::expired);
  CHECK(accepted(strict, tok(claims({}, now_s + 1))) == "alice");
}

TEST_CASE("customer_auth: nbf in the future and iat far in the future are refused") {
  const auto v = hs_verifier();
  auto tok = [](const std::string& extra) {
    return make_token(hs_header, claims(extra), with_secret(secret));
  };
  CHECK(accepted(v, tok(",\"nbf\":" + std::to_string(now_s + 30))) == "alice");
  CHECK(refused(v, tok(",\"nbf\":" + std::to_string(now_s + 31))) == F::not_yet_valid);
  CHECK(refused(v, tok(",\"nbf\":\"0\"")) == F::malformed);
  CHECK(accepted(v, tok(",\"iat\":" + std::to_string(now_s - 100))) == "alice");
  CHECK(accepted(v, tok(",\"iat\":" + std::to_string(now_s + 30))) == "alice");
  CHECK(refused(v, tok(",\"iat\":" + std::to_string(now_s + 31))) == F::issued_in_future);
  CHECK(refused(v, tok(",\"iat\":" + std::to_string(now_s + 86400 * 365))) == F::issued_in_future);
  CHECK(refused(v, tok(",\"iat\":{}")) == F::malformed);
}

TEST_CASE("customer_auth: iss and aud are checked when configured") {
  auto tok = [](const std::string& extra) {
    return make_token(hs_header, claims(extra), with_secret(secret));
  };
  const auto iss = hs_verifier("https://id.example");
  CHECK(accepted(iss, tok(R"(,"iss":"https://id.example")")) == "alice");
  CHECK(refused(iss, tok(R"(,"iss":"https://evil.example")")) == F::wrong_issuer);
  CHECK(refused(iss, tok(R"(,"iss":"https://id.example/")")) == F::wrong_issuer);
  CHECK(refused(iss, tok("")) == F::wrong_issuer);
  CHECK(refused(iss, tok(R"(,"iss":["https://id.example"])")) == F::wrong_issuer);

  const auto aud = hs_verifier("", "surge");
  CHECK(accepted(aud, tok(R"(,"aud":"surge")")) == "alice");
  CHECK(accepted(aud, tok(R"(,"aud":["billing","surge"])")) == "alice");
  CHECK(refused(aud, tok(R"(,"aud":"billing")")) == F::wrong_audience);
  CHECK(refused(aud, tok(R"(,"aud":["billing"])")) == F::wrong_audience);
  CHECK(refused(aud, tok(R"(,"aud":[])")) == F::wrong_audience);
  CHECK(refused(aud, tok(R"(,"aud":"Surge")")) == F::wrong_audience);
  CHECK(refused(aud, tok("")) == F::wrong_audience);
  CHECK(refused(aud, tok(R"(,"aud":["surge",7])")) == F::malformed);
  CHECK(refused(aud, tok(R"(,"aud":{"surge":true})")) == F::wrong_audience);

  // Not configured: not looked at.
  CHECK(accepted(hs_verifier(), tok(R"(,"iss":"anyone","aud":"anything")")) == "alice");
}

TEST_CASE("customer_auth: sub must be a non-empty string of <= 255 bytes without controls") {
  const auto v = hs_verifier();
  auto tok = [](const std::string& sub_json) {
    return make_token(hs_header, R"({"exp":)" + std::to_string(now_s + 60) + sub_json + "}",
                      with_secret(secret));
  };
  CHECK(refused(v, tok("")) == F::bad_subject);
  CHECK(refused(v, tok(R"(,"sub":"")")) == F::bad_subject);
  CHECK(refused(v, tok(R"(,"sub":42)")) == F::bad_subject);
  CHECK(refused(v, tok(R"(,"sub":null)")) == F::bad_subject);
  CHECK(refused(v, tok(R"(,"sub":["alice"])")) == F::bad_subject);
  CHECK(refused(v, tok(R"(,"sub":")" + std::string(256, 'x') + "\"")) == F::bad_subject);
  for (const char* ctl :
       {R"(\n)", R"(\t)", R"(\r)", R"(\u001b)", R"(\u007f)", R"(\u0085)", R"(\u009f)"}) {
    CAPTURE(ctl);
    CHECK(refused(v, tok(std::string{R"(,"sub":"ali)"} + ctl + "ce\"")) == F::bad_subject);
  }
  // NUL: libjwt's JSON parser (jansson) refuses it first, which is a refusal too.
  CHECK(refused(v, tok(R"(,"sub":"ali\u0000ce")")) != F::disabled);
}

TEST_CASE("customer_auth: malformed and oversized tokens are refused") {
  const auto v = hs_verifier();
  auto signed_raw = [](const std::string& header64, const std::string& payload64) {
    const std::string input = header64 + "." + payload64;
    return input + "." + base64url(hs256(secret, input));
  };
  CHECK(refused(v, "") == F::malformed);
  CHECK(refused(v, "abc") == F::malformed);
  CHECK(refused(v, "a.b") == F::malformed);
  CHECK(refused(v, "..") == F::malformed);
  CHECK(refused(v, "Bearer " + make_token(hs_header, claims(), with_secret(secret))) ==
        F::malformed);
  // Header or payload not base64url JSON objects (each correctly signed).
  CHECK(refused(v, signed_raw("!!!!", base64url(claims()))) == F::malformed);
  CHECK(refused(v, signed_raw(base64url(hs_header) + "=", base64url(claims()))) == F::malformed);
  CHECK(refused(v, signed_raw(base64url("not json"), base64url(claims()))) == F::malformed);
  CHECK(refused(v, signed_raw(base64url(R"(["HS256"])"), base64url(claims()))) == F::malformed);
  CHECK(refused(v, signed_raw(base64url(hs_header), base64url("{\"sub\":\"alice\""))) ==
        F::malformed);
  CHECK(refused(v, signed_raw(base64url(hs_header), base64url(R"("alice")"))) == F::malformed);
  CHECK(refused(v, signed_raw(base64url(hs_header), base64url(claims() + "x"))) == F::malformed);
  CHECK(refused(v, signed_raw(base64url(hs_header), base64url("{\"sub\":\"al\xFF\"}"))) ==
        F::malformed);
  CHECK(refused(v, signed_raw(base64url(hs_header), "A")) == F::malformed); // length 1 mod 4
  // Duplicate claims (parsers disagree on which one wins) and duplicate header members.
  CHECK(refused(
            v, make_token(hs_header,
                          R"({"sub":"alice","sub":"bob","exp":)" + std::to_string(now_s + 60) + "}",
                          with_secret(secret))) == F::malformed);
  CHECK(refused(v, make_token(R"({"alg":"HS256","alg":"none"})", claims(), with_secret(secret))) ==
        F::malformed);
  // Non-canonical base64url: the header's last character with its unused low bits set.
  {
    // 28 bytes -> 38 characters whose last one carries 4 zero bits (A, Q, g or w); +1 sets one.
    std::string h64 = base64url(std::string{hs_header} + " ");
    REQUIRE(h64.size() % 4 == 2);
    CHECK(accepted(v, signed_raw(h64, base64url(claims()))) == "alice");
    h64.back() = static_cast<char>(h64.back() + 1);
    CHECK(refused(v, signed_raw(h64, base64url(claims()))) == F::malformed);
  }
  // crit, and typ other than JWT.
  CHECK(refused(v, make_token(R"({"alg":"HS256","crit":["exp"]})", claims(),
                              with_secret(secret))) == F::malformed);
  CHECK(refused(v, make_token(R"({"alg":"HS256","typ":"JOSE+JSON"})", claims(),
                              with_secret(secret))) == F::malformed);
  CHECK(refused(v, make_token(R"({"alg":"HS256","typ":1})", claims(), with_secret(secret))) ==
        F::malformed);

  // The size cap: a correctly signed token just under it verifies, one over it does not.
  auto padded = [&](std::size_t total) {
    // header64 '.' payload64 '.' signature64 (43 characters), at most `total` characters: the
    // payload may take n bytes with (4n + 2) / 3 <= total - the rest.
    const auto room = total - (base64url(hs_header).size() + 2 + 43);
    const auto n = (3 * room - 2) / 4;
    const std::string head =
        R"({"sub":"alice","exp":)" + std::to_string(now_s + 60) + R"(,"pad":")";
    const std::string payload = head + std::string(n - head.size() - 2, 'x') + "\"}";
    REQUIRE(payload.size() == n);
    return make_token(hs_header, payload, with_secret(secret));
  };
  const auto at_cap = padded(net::max_token_bytes);
  REQUIRE(at_cap.size() <= net::max_token_bytes);
  CHECK(accepted(v, at_cap) == "alice");
  const auto over = padded(net::max_token_bytes + 4);
  REQUIRE(over.size() > net::max_token_bytes);
  CHECK(refused(v, over) == F::malformed);
  CHECK(refused(v, std::string(1 << 20, 'A')) == F::malformed);
}

TEST_CASE("customer_auth: a disabled verifier refuses everything") {
  const auto v = make("");
  CHECK_FALSE(v.enabled());
  CHECK(v.algorithms().empty());
  CHECK(refused(v, make_token(hs_header, claims(), with_secret(secret))) == F::disabled);
  CHECK_FALSE(net::customer_verifier{}.enabled());
}

// --------------------------------------------------------------------- start-up errors

TEST_CASE("customer_auth: unusable key settings are start-up errors naming the setting") {
  temp_dir dir;
  auto key_error = [&](const std::string& content) {
    return startup_error("", dir.write("key.pem", content));
  };
  auto names_setting = [](const std::string& m) {
    return m.find("auth.jwt_public_key") != std::string::npos;
  };
  const auto missing = startup_error("", (dir.path / "absent.pem").string());
  CHECK(names_setting(missing));
  CHECK(missing.find("cannot read") != std::string::npos);
  CHECK(names_setting(key_error("")));
  CHECK(names_setting(key_error("not a key at all\n")));
  CHECK(names_setting(key_error("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")));
  const auto priv = key_error(private_pem(keys().ec.get()));
  CHECK(names_setting(priv));
  CHECK(priv.find("private") != std::string::npos);
  CHECK(key_error(private_pem(keys().rsa.get())).find("private") != std::string::npos);
  // A private key next to a valid public key is refused too (it must not live on the node).
  CHECK(key_error(public_pem(keys().ec.get()) + private_pem(keys().ec.get())).find("private") !=
        std::string::npos);
  CHECK(key_error(certificate_pem(keys().ec.get())).find("certificate") != std::string::npos);
  CHECK(key_error(pkcs1_public_pem(keys().rsa.get())).find("PKCS#1") != std::string::npos);
  CHECK(names_setting(key_error(public_pem(keys().ec.get()) + public_pem(keys().rsa.get()))));
  // Wrong key types and sizes.
  CHECK(key_error(public_pem(ed25519_key().get())).find("neither") != std::string::npos);
  CHECK(key_error(public_pem(ec_key("P-384").get())).find("P-256") != std::string::npos);
  CHECK(key_error(public_pem(ec_key("secp256k1").get())).find("P-256") != std::string::npos);
  CHECK(key_error(public_pem(rsa_key(1024).get())).find("2048") != std::string::npos);
  // A directory is not a key file.
  CHECK(names_setting(startup_error("", dir.path.string())));
  // The secret must be at least 32 bytes.
  const auto short_secret = startup_error(std::string(31, 's'));
  CHECK(short_secret.find("auth.jwt_secret") != std::string::npos);
  CHECK(short_secret.find("32") != std::string::npos);
  CHECK(short_secret.find(std::string(31, 's')) == std::string::npos); // never echoed
  // A bad key file is an error even when a good secret is configured.
  CHECK(names_setting(startup_error(secret, (dir.path / "absent.pem").string())));
}

// ------------------------------------------------------------------------------- cache

TEST_CASE("customer_auth: a remembered token still expires and still waits for its nbf") {
  for (std::size_t entries : {std::size_t{16384}, std::size_t{16}, std::size_t{0}}) {
    CAPTURE(entries);
    auto o = options("", keys().ec_file);
    o.cache_entries = entries;
    auto made = net::customer_verifier::make(o);
    REQUIRE(std::holds_alternative<net::customer_verifier>(made));
    const auto v = std::get<net::customer_verifier>(std::move(made));
    const auto token =
        make_token(es_header, claims(",\"nbf\":" + std::to_string(now_s - 100), now_s + 600),
                   with_ec(keys().ec.get()));
    for (int i = 0; i < 3; ++i) {
      CHECK(accepted(v, token) == "alice");
    }
    CHECK(refused(v, token, now_tp + 630s) == F::expired);
    CHECK(refused(v, token, now_tp - 131s) == F::not_yet_valid);
    CHECK(accepted(v, token, now_tp + 629s) == "alice");
    // More distinct tokens than entries: each still verifies, and a forgery never does.
    for (int i = 0; i < 40; ++i) {
      const auto sub = "c" + std::to_string(i);
      const auto payload =
          R"({"sub":")" + sub + R"(","exp":)" + std::to_string(now_s + 60 + i) + "}";
      const auto t = make_token(es_header, payload, with_ec(keys().ec.get()));
      CHECK(accepted(v, t) == sub);
      CHECK(accepted(v, t) == sub);
      CHECK(refused(v, make_token(es_header, payload, with_ec(keys().ec_other.get()))) ==
            F::bad_signature);
    }
  }
}

// ------------------------------------------------------------------------ thread safety

TEST_CASE("customer_auth: one verifier serves several threads at once") {
  const auto v = make(secret, keys().ec_file);
  std::vector<std::string> tokens;
  for (int i = 0; i < 8; ++i) {
    const auto payload =
        R"({"sub":"c)" + std::to_string(i) + R"(","exp":)" + std::to_string(now_s + 600) + "}";
    tokens.push_back(make_token(i % 2 ? es_header : hs_header, payload,
                                i % 2 ? with_ec(keys().ec.get()) : with_secret(secret)));
  }
  const auto forged = make_token(hs_header, claims(), with_secret(other_secret));
  std::atomic<int> good{0};
  std::atomic<int> wrong{0};
  surge::test::on_threads(4, [&](int t) {
    for (int n = 0; n < 200; ++n) {
      const auto i = static_cast<std::size_t>((n + t) % 8);
      auto r = v.verify(tokens[i], now_tp);
      auto* c = std::get_if<net::verified_customer>(&r);
      (c != nullptr && c->id == "c" + std::to_string(i) ? good : wrong)++;
      if (std::holds_alternative<net::verified_customer>(v.verify(forged, now_tp))) {
        wrong++;
      }
    }
  });
  CHECK(good.load() == 800);
  CHECK(wrong.load() == 0);
}
