#include "signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <optional>
#include <vector>

#include "surge/net/text.hpp"
#include "surge/tools/cli.hpp"

namespace surge::webhook_sink {

namespace {

constexpr std::size_t max_entries = 16; // entries of one header: more is malformed

} // namespace

const char* to_string(signature_check c) {
  switch (c) {
  case signature_check::ok:
    return "ok";
  case signature_check::missing:
    return "missing";
  case signature_check::malformed:
    return "malformed";
  case signature_check::stale:
    return "stale";
  case signature_check::mismatch:
    return "mismatch";
  }
  return "?";
}

std::string hmac_sha256_hex(std::string_view secret, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
           &len) == nullptr) {
    return {};
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{len} * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(digits[mac[i] >> 4]);
    out.push_back(digits[mac[i] & 0xf]);
  }
  return out;
}

signature_check check_signature(std::string_view header, std::string_view body,
                                std::string_view secret, int64_t now,
                                std::chrono::seconds tolerance) {
  if (net::text::trim_space(header).empty()) {
    return signature_check::missing;
  }
  const std::vector<std::string> entries = tools::cli::split_list(header, ',');
  if (entries.size() > max_entries) {
    return signature_check::malformed;
  }
  std::optional<std::string_view> t_text;
  std::vector<std::string_view> v1;
  for (const std::string& e : entries) {
    const std::string_view entry = net::text::trim_space(e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return signature_check::malformed;
    }
    const std::string_view key = entry.substr(0, eq);
    const std::string_view value = entry.substr(eq + 1);
    if (key == "t") {
      if (t_text) {
        return signature_check::malformed;
      }
      t_text = value;
    } else if (key == "v1") {
      v1.push_back(value);
    }
  }
  const auto t = t_text ? tools::cli::to_integer<int64_t>(*t_text) : std::nullopt;
  if (!t || v1.empty()) {
    return signature_check::malformed;
  }
  const int64_t tol = tolerance.count();
  if (*t < now - tol || *t > now + tol) {
    return signature_check::stale;
  }
  std::string signed_text{*t_text};
  signed_text += '.';
  signed_text += body;
  const std::string expected = hmac_sha256_hex(secret, signed_text);
  bool match = false;
  for (const std::string_view given : v1) {
    // Every entry is compared, so the time taken does not say which one matched.
    match |= !expected.empty() && given.size() == expected.size() &&
             CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
  }
  return match ? signature_check::ok : signature_check::mismatch;
}

} // namespace surge::webhook_sink
