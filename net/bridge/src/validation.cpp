#include "validation.hpp"

#include <algorithm>

namespace surge::net::bridge {

bool valid_id(std::string_view s, std::size_t max_len, std::string_view extra) {
  if (s.empty() || s.size() > max_len) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool valid_sku(std::string_view s) {
  return valid_id(s, 64) && s.find_first_not_of('.') != std::string_view::npos;
}

bool valid_cart_id(std::string_view s) {
  return valid_id(s, 64, "_-");
}

bool valid_customer(std::string_view s) {
  return valid_id(s, 128, "._@+-");
}

bool valid_key(std::string_view s) {
  if (s.empty() || s.size() > 200) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

} // namespace surge::net::bridge
