#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace surge::net {

/// An IPv4 or IPv6 address in 16 bytes (network order). IPv4 is held in its IPv4-mapped IPv6
/// form (::ffff:a.b.c.d), so an IPv4 peer and the same address seen through a dual-stack
/// socket compare equal, and one CIDR test covers both. Default: :: (unspecified).
struct ip_address {
  std::array<uint8_t, 16> bytes{};

  /// The address a.b.c.d of `host_order` (e.g. 0x7f000001 for 127.0.0.1).
  static ip_address v4(uint32_t host_order);
  /// True for an IPv4 (IPv4-mapped) address.
  bool is_v4() const;
  /// "192.0.2.1" for IPv4, RFC 5952 text ("2001:db8::1") for IPv6.
  std::string to_string() const;

  friend bool operator==(const ip_address&, const ip_address&) = default;
};

/// Parses a dotted-quad IPv4 address or an IPv6 address, optionally in brackets ("[::1]").
/// Nothing else: no port, zone id, host name or surrounding space. An IPv4-mapped IPv6
/// address ("::ffff:10.0.0.1") is the IPv4 address.
std::optional<ip_address> parse_ip(std::string_view text);

/// A block of addresses: `base` with all bits past `prefix` cleared. IPv4 blocks are held as
/// blocks of the mapped form (10.0.0.0/8 is ::ffff:10.0.0.0/104).
struct cidr {
  ip_address base;
  unsigned prefix = 128; ///< 0..128, over the 16-byte form

  bool contains(const ip_address& a) const;
  /// "10.0.0.0/8", "::1/128".
  std::string to_string() const;
};

/// A set of CIDR blocks, e.g. http.trusted_proxies. Immutable once built: safe to read from
/// every thread.
class cidr_set {
 public:
  /// The empty set: contains nothing.
  cidr_set() = default;

  /// Parses a comma list of IPv4/IPv6 CIDR blocks ("127.0.0.1/32, ::1/128, 10.0.0.0/8"); a bare
  /// address is a /32 (IPv4) or /128 (IPv6) block; host bits past the prefix are ignored.
  /// Spaces around entries and empty entries are ignored; a blank list is the empty set.
  /// Returns the set, or a message that quotes the first invalid entry.
  static std::variant<cidr_set, std::string> parse(std::string_view list);

  bool contains(const ip_address& a) const;
  bool empty() const { return blocks_.empty(); }
  const std::vector<cidr>& blocks() const { return blocks_; }

 private:
  std::vector<cidr> blocks_;
};

/// The address of the client that sent a request, as http.trusted_proxies defines it.
///
/// `peer` (the socket's remote address) is the client unless `trusted` contains it. Then
/// `forwarded_for` (every X-Forwarded-For line of the request, in order, comma-joined) is
/// walked from the right: the first address that is not trusted is the client; when all are
/// trusted, the leftmost is. An entry that is not an address (see parse_ip; empty entries
/// included) stops the walk: the client is then the last good hop before it (the peer when it
/// is the rightmost entry). No X-Forwarded-For: the peer. Pure; O(length of the header).
ip_address client_address(const ip_address& peer, std::optional<std::string_view> forwarded_for,
                          const cidr_set& trusted);

} // namespace surge::net
