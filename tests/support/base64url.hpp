#pragma once

// Unpadded base64url (RFC 4648 5, as JWS uses it, RFC 7515 2), written here apart from the
// product's code so that tests build tokens independently of the verifier they test.
// Header-only: the fuzz tree includes it without linking the test support library.

#include <cstdint>
#include <string>
#include <string_view>

namespace surge::test {

inline std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) {
    out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  }
  return out;
}

} // namespace surge::test
