// libFuzzer target over customer_verifier::verify (net/customer_auth.hpp). The first byte picks
// the mode, the rest is its input:
//   0: the rest is a token, verified by an HS256 and an ES256 verifier (RFC 7515 A.3's key);
//   1: the rest is a header JSON, a NUL, a payload JSON: signed here with the HS256 secret, so
//      that the claim checks behind the signature are reached;
//   2: the rest is a customer id: minted, then verified.
// A crash, a sanitizer report or a failed check (abort) is a bug. The cache is off so that every
// input takes the full path.

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "base64url.hpp"
#include "fuzz_check.hpp"
#include "surge/net/customer_auth.hpp"
#include "surge/net/json.hpp"

namespace net = surge::net;
namespace json = surge::net::json;

namespace {

constexpr surge::fuzz::checker check{"fuzz_token"};

const std::string secret = "fuzz-secret-0123456789abcdef-0123456789"; // not a real secret
const std::chrono::system_clock::time_point now{std::chrono::seconds{1'800'000'000}};

net::customer_verifier must_make(const net::customer_auth_options& o) {
  auto v = net::customer_verifier::make(o);
  check(std::holds_alternative<net::customer_verifier>(v), "verifier builds");
  return std::get<net::customer_verifier>(std::move(v));
}

net::customer_verifier hs_verifier(const std::string& key) {
  net::customer_auth_options o;
  o.secret = key;
  o.leeway = std::chrono::seconds{30};
  o.cache_entries = 0;
  return must_make(o);
}

/// RFC 7515 A.3.1's public key, through a temporary file (the verifier reads it at once).
net::customer_verifier es_verifier() {
  char path[] = "/tmp/fuzz_token_key_XXXXXX";
  const int fd = ::mkstemp(path);
  check(fd >= 0, "temporary key file");
  const std::string pem = "-----BEGIN PUBLIC KEY-----\n"
                          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
                          "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                          "-----END PUBLIC KEY-----\n";
  check(::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()), "key written");
  ::close(fd);
  net::customer_auth_options o;
  o.public_key_file = path;
  o.leeway = std::chrono::seconds{30};
  o.cache_entries = 0;
  auto v = must_make(o);
  ::unlink(path);
  return v;
}

std::string hs256(std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  check(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
             &len) != nullptr,
        "HMAC");
  return std::string(reinterpret_cast<char*>(mac), len);
}

/// The checks every answer must pass; returns the customer when accepted.
const net::verified_customer*
check_answer(const std::variant<net::verified_customer, net::auth_refusal>& r,
             std::string_view token) {
  if (const auto* f = std::get_if<net::auth_refusal>(&r)) {
    check(!f->reason.empty(), "a refusal has a reason");
    check(f->code != net::auth_failure::disabled, "an enabled verifier never says disabled");
    return nullptr;
  }
  const auto& c = std::get<net::verified_customer>(r);
  check(net::customer_id_problem(c.id).empty(), "the customer id is acceptable");
  check(token.size() <= net::max_token_bytes, "accepted tokens are within the cap");
  check(c.expires + std::chrono::seconds{30} > now, "accepted tokens are not expired");
  return &c;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const net::customer_verifier hs = hs_verifier(secret);
  static const net::customer_verifier other = hs_verifier(secret + "-other");
  static const net::customer_verifier es = es_verifier();
  if (size == 0) {
    return 0;
  }
  const int mode = data[0] % 3;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  if (mode == 0) {
    check_answer(hs.verify(rest, now), rest);
    check_answer(es.verify(rest, now), rest);
    return 0;
  }
  if (mode == 1) {
    const auto nul = rest.find('\0');
    const std::string header = rest.substr(0, nul);
    const std::string payload = nul == std::string::npos ? std::string{} : rest.substr(nul + 1);
    const std::string input =
        surge::test::base64url(header) + "." + surge::test::base64url(payload);
    const std::string token = input + "." + surge::test::base64url(hs256(input));
    const auto r = hs.verify(token, now);
    if (const auto* c = check_answer(r, token)) {
      // Accepted: the header said exactly HS256 and the payload's sub is the customer.
      auto h = json::parse(header);
      check(std::holds_alternative<json::value>(h), "accepted header is JSON");
      const auto* alg = std::get<json::value>(h).find("alg");
      check(alg != nullptr && alg->is_string() && std::get<std::string>(alg->get()) == "HS256",
            "accepted header has alg HS256");
      auto p = json::parse(payload);
      check(std::holds_alternative<json::value>(p), "accepted payload is JSON");
      const auto* sub = std::get<json::value>(p).find("sub");
      check(sub != nullptr && sub->is_string() && std::get<std::string>(sub->get()) == c->id,
            "the customer is the payload's sub");
      check(std::holds_alternative<net::auth_refusal>(other.verify(token, now)),
            "another secret refuses it");
    }
    check(std::holds_alternative<net::auth_refusal>(es.verify(token, now)),
          "an ES256-only verifier refuses HS256");
    return 0;
  }
  net::token_claims claims;
  claims.subject = rest;
  auto minted = net::mint_hs256_token(secret, claims, now);
  if (const auto* token = std::get_if<std::string>(&minted)) {
    const auto r = hs.verify(*token, now);
    const auto* c = check_answer(r, *token);
    check(c != nullptr && c->id == rest, "a minted token verifies as its customer");
  } else {
    check(!net::customer_id_problem(rest).empty(), "minting fails only for a bad customer id");
  }
  return 0;
}
