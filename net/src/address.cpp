#include "surge/net/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "surge/net/text.hpp"

namespace surge::net {

namespace {

constexpr std::array<uint8_t, 12> v4_mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

using text::trim_space;

/// Clears every bit of `a` past the first `prefix` bits.
ip_address masked(ip_address a, unsigned prefix) {
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned first_bit = i * 8;
    if (prefix >= first_bit + 8) {
      continue;
    }
    const unsigned keep = prefix > first_bit ? prefix - first_bit : 0;
    a.bytes[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  return a;
}

} // namespace

ip_address ip_address::v4(uint32_t host_order) {
  ip_address a;
  std::memcpy(a.bytes.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size());
  a.bytes[12] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[13] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[14] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[15] = static_cast<uint8_t>(host_order);
  return a;
}

bool ip_address::is_v4() const {
  return std::memcmp(bytes.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size()) == 0;
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  }
  return buf;
}

std::optional<ip_address> parse_ip(std::string_view text) {
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    if (text.size() < 2 || text.back() != ']') {
      return std::nullopt;
    }
    text = text.substr(1, text.size() - 2);
    bracketed = true;
  }
  // inet_pton wants a NUL-terminated string; no address is longer than INET6_ADDRSTRLEN - 1.
  char buf[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof(buf) || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::memcpy(buf, text.data(), text.size());
  ip_address a;
  if (!bracketed) {
    in_addr v4{};
    if (inet_pton(AF_INET, buf, &v4) == 1) {
      return ip_address::v4(ntohl(v4.s_addr));
    }
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(a.bytes.data(), v6.s6_addr, 16);
    return a;
  }
  return std::nullopt;
}

bool cidr::contains(const ip_address& a) const {
  return masked(a, prefix) == base;
}

std::string cidr::to_string() const {
  const bool v4 = base.is_v4() && prefix >= 96;
  return base.to_string() + "/" + std::to_string(v4 ? prefix - 96 : prefix);
}

std::variant<cidr_set, std::string> cidr_set::parse(std::string_view list) {
  cidr_set out;
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view entry = trim_space(list.substr(0, comma));
    if (!entry.empty()) {
      auto bad = [&] {
        return "'" + std::string(entry) +
               "' is not an IPv4 or IPv6 address or CIDR block (e.g. 10.0.0.0/8, fd00::/8)";
      };
      const std::size_t slash = entry.find('/');
      const std::string_view addr_text = trim_space(entry.substr(0, slash));
      auto addr = parse_ip(addr_text);
      if (!addr) {
        return bad();
      }
      // The prefix counts bits of the notation written: "::ffff:10.0.0.0/104" is IPv6 text.
      const bool v6_text = addr_text.find(':') != std::string_view::npos;
      const unsigned max_len = v6_text ? 128 : 32;
      unsigned len = max_len;
      if (slash != std::string_view::npos) {
        const std::string_view digits = trim_space(entry.substr(slash + 1));
        if (digits.empty() || digits.size() > 3) {
          return bad();
        }
        len = 0;
        for (char c : digits) {
          if (c < '0' || c > '9') {
            return bad();
          }
          len = len * 10 + static_cast<unsigned>(c - '0');
        }
        if (len > max_len) {
          return bad();
        }
      }
      const unsigned prefix = v6_text ? len : len + 96;
      out.blocks_.push_back(cidr{masked(*addr, prefix), prefix});
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
  return out;
}

bool cidr_set::contains(const ip_address& a) const {
  for (const auto& b : blocks_) {
    if (b.contains(a)) {
      return true;
    }
  }
  return false;
}

ip_address client_address(const ip_address& peer, std::optional<std::string_view> forwarded_for,
                          const cidr_set& trusted) {
  if (!forwarded_for || !trusted.contains(peer)) {
    return peer;
  }
  ip_address last_good = peer;
  std::string_view rest = *forwarded_for;
  while (true) {
    const std::size_t comma = rest.rfind(',');
    const std::string_view entry =
        trim_space(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    const auto hop = parse_ip(entry);
    if (!hop) {
      return last_good;
    }
    if (!trusted.contains(*hop)) {
      return *hop;
    }
    last_good = *hop;
    if (comma == std::string_view::npos) {
      return last_good;
    }
    rest = rest.substr(0, comma);
  }
}

} // namespace surge::net
