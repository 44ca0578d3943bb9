#include "surge/net/request_id.hpp"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace surge::net {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string new_request_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    std::fputs("surge: RAND_bytes failed: no randomness for request ids\n", stderr);
    std::abort();
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(2 * sizeof(bytes), '0');
  for (std::size_t i = 0; i < sizeof(bytes); ++i) {
    id[2 * i] = hex[bytes[i] >> 4];
    id[2 * i + 1] = hex[bytes[i] & 0xF];
  }
  return id;
}

std::string request_id_for(std::optional<std::string_view> header) {
  if (header && valid_request_id(*header)) {
    return std::string{*header};
  }
  return new_request_id();
}

} // namespace surge::net
