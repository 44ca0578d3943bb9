// Client addresses: parse_ip, CIDR sets (http.trusted_proxies) and the X-Forwarded-For walk.
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "listener_options.hpp"
#include "surge/net/address.hpp"
#include "surge/net/request_parser.hpp"

using namespace surge::net;

namespace {

ip_address ip(const std::string& s) {
  auto a = parse_ip(s);
  REQUIRE_MESSAGE(a.has_value(), s);
  return *a;
}

cidr_set set_of(const std::string& list) {
  auto parsed = cidr_set::parse(list);
  REQUIRE_MESSAGE(std::holds_alternative<cidr_set>(parsed), list);
  return std::get<cidr_set>(parsed);
}

std::string set_error(const std::string& list) {
  auto parsed = cidr_set::parse(list);
  REQUIRE_MESSAGE(std::holds_alternative<std::string>(parsed), list);
  return std::get<std::string>(parsed);
}

/// client_address as text, for readable failures.
std::string client(const std::string& peer, std::optional<std::string> xff, const cidr_set& t) {
  return client_address(ip(peer), xff ? std::optional<std::string_view>(*xff) : std::nullopt, t)
      .to_string();
}

} // namespace

TEST_CASE("parse_ip: IPv4 and IPv6, nothing else") {
  CHECK(ip("192.0.2.1").to_string() == "192.0.2.1");
  CHECK(ip("192.0.2.1").is_v4());
  CHECK(ip("0.0.0.0").to_string() == "0.0.0.0");
  CHECK(ip("255.255.255.255").to_string() == "255.255.255.255");
  CHECK(ip("2001:db8::1").to_string() == "2001:db8::1");
  CHECK(ip("2001:DB8:0:0:0:0:0:1").to_string() == "2001:db8::1");
  CHECK_FALSE(ip("2001:db8::1").is_v4());
  CHECK(ip("[::1]").to_string() == "::1");
  CHECK(ip("::") == ip_address{});
  CHECK(ip_address::v4(0x7f000001) == ip("127.0.0.1"));

  // IPv4-mapped IPv6 is the IPv4 address.
  CHECK(ip("::ffff:10.1.2.3") == ip("10.1.2.3"));
  CHECK(ip("::FFFF:0a01:0203") == ip("10.1.2.3"));
  CHECK(ip("::ffff:10.1.2.3").is_v4());
  CHECK(ip("::ffff:10.1.2.3").to_string() == "10.1.2.3");

  for (const char* bad : {"",         " ",         "1.2.3",    "1.2.3.4.5",    "256.1.1.1",
                          "01.2.3.4", "1.2.3.4 ",  " 1.2.3.4", "1.2.3.4:80",   "[1.2.3.4]",
                          "[::1]:80", "[::1",      "::1]",     "fe80::1%eth0", "localhost",
                          "unknown",  "_hidden",   "1.2.3.-1", "::g",          "1:2:3:4:5:6:7:8:9",
                          "[]",       "0x7f.0.0.1"}) {
    CHECK_MESSAGE(!parse_ip(bad).has_value(), "'" << bad << "' parsed");
  }
  CHECK_FALSE(parse_ip(std::string_view("1.2.3.4\0", 8)).has_value());
  CHECK_FALSE(parse_ip(std::string(100, '1')).has_value());
}

TEST_CASE("cidr_set: parse, contains, errors") {
  const auto d = set_of("127.0.0.1/32,::1/128");
  CHECK(d.contains(ip("127.0.0.1")));
  CHECK(d.contains(ip("::ffff:127.0.0.1"))); // mapped compares as IPv4
  CHECK(d.contains(ip("::1")));
  CHECK_FALSE(d.contains(ip("127.0.0.2")));
  CHECK_FALSE(d.contains(ip("::2")));
  CHECK(d.blocks().size() == 2);
  CHECK(d.blocks()[0].to_string() == "127.0.0.1/32");
  CHECK(d.blocks()[1].to_string() == "::1/128");

  // Bare addresses, spaces, empty entries, host bits past the prefix.
  const auto s = set_of(" 10.0.0.0/8 , 192.168.1.77/24,, 2001:db8::/32 ,198.51.100.7 ,fd00::1 ");
  CHECK(s.blocks().size() == 5);
  CHECK(s.contains(ip("10.255.0.1")));
  CHECK_FALSE(s.contains(ip("11.0.0.1")));
  CHECK(s.contains(ip("192.168.1.1")));
  CHECK(s.blocks()[1].to_string() == "192.168.1.0/24");
  CHECK_FALSE(s.contains(ip("192.168.2.1")));
  CHECK(s.contains(ip("2001:db8:ffff::1")));
  CHECK_FALSE(s.contains(ip("2001:db9::1")));
  CHECK(s.contains(ip("198.51.100.7")));
  CHECK_FALSE(s.contains(ip("198.51.100.8")));
  CHECK(s.contains(ip("fd00::1")));
  CHECK_FALSE(s.contains(ip("fd00::2")));

  // /0 blocks; an IPv6 notation of the mapped range counts IPv6 bits.
  CHECK(set_of("0.0.0.0/0").contains(ip("203.0.113.9")));
  CHECK_FALSE(set_of("0.0.0.0/0").contains(ip("2001:db8::1")));
  CHECK(set_of("::/0").contains(ip("2001:db8::1")));
  CHECK(set_of("::/0").contains(ip("203.0.113.9")));
  CHECK(set_of("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
  CHECK_FALSE(set_of("::ffff:10.0.0.0/104").contains(ip("11.0.0.0")));

  // Blank: trust nobody.
  CHECK(set_of("").empty());
  CHECK(set_of("  ").empty());
  CHECK(set_of(" , ").empty());
  CHECK_FALSE(set_of("").contains(ip("127.0.0.1")));

  for (const char* bad :
       {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "10.0.0.0/8/8",
        "10.0.0/8", "localhost", "127.0.0.1:80", "10.0.0.0/0008", "*", "1.2.3.4 5.6.7.8"}) {
    const auto err = set_error(std::string("127.0.0.1,") + bad);
    CHECK_MESSAGE(err.find(std::string("'") + bad + "'") != std::string::npos, err);
  }
}

TEST_CASE("client_address: X-Forwarded-For only through trusted peers") {
  const auto t = set_of("127.0.0.1/32,::1/128,10.0.0.0/8");

  // An untrusted peer is the client, whatever it claims.
  CHECK(client("203.0.113.5", "198.51.100.1", t) == "203.0.113.5");
  CHECK(client("203.0.113.5", std::nullopt, t) == "203.0.113.5");
  // A trusted peer without the header is the client.
  CHECK(client("127.0.0.1", std::nullopt, t) == "127.0.0.1");
  // One hop.
  CHECK(client("127.0.0.1", "198.51.100.1", t) == "198.51.100.1");
  CHECK(client("::ffff:127.0.0.1", "198.51.100.1", t) == "198.51.100.1");
  CHECK(client("::1", "2001:db8::7", t) == "2001:db8::7");
  // Walk from the right: trusted hops are skipped, the first untrusted is the client; what a
  // client wrote to the left of it (spoofing) is ignored.
  CHECK(client("127.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.2", t) == "198.51.100.1");
  CHECK(client("127.0.0.1", "1.1.1.1,198.51.100.1,10.0.0.2,10.0.0.3", t) == "198.51.100.1");
  // All trusted: the leftmost.
  CHECK(client("127.0.0.1", "10.0.0.9, 10.0.0.2", t) == "10.0.0.9");
  // Brackets, mapped addresses (a mapped trusted hop is trusted).
  CHECK(client("127.0.0.1", "[2001:db8::1], ::ffff:10.0.0.2", t) == "2001:db8::1");
  // A malformed entry stops the walk at the last good hop.
  CHECK(client("127.0.0.1", "198.51.100.1, unknown, 10.0.0.2", t) == "10.0.0.2");
  CHECK(client("127.0.0.1", "198.51.100.1, garbage", t) == "127.0.0.1");
  CHECK(client("127.0.0.1", "198.51.100.1, 10.0.0.2:4711", t) == "127.0.0.1");
  CHECK(client("127.0.0.1", "", t) == "127.0.0.1");
  CHECK(client("127.0.0.1", " , ", t) == "127.0.0.1");
  CHECK(client("127.0.0.1", "198.51.100.1,,10.0.0.2", t) == "10.0.0.2");
  // Nobody trusted: the peer, always.
  CHECK(client("127.0.0.1", "198.51.100.1", cidr_set{}) == "127.0.0.1");
}

TEST_CASE("client_address: repeated X-Forwarded-For lines combine in order") {
  const auto t = set_of("127.0.0.1");
  auto parsed = parse_request("GET / HTTP/1.1\r\nHost: a\r\n"
                              "X-Forwarded-For: 1.1.1.1, 198.51.100.1\r\n"
                              "Other: x\r\n"
                              "x-forwarded-for: 127.0.0.1\r\n"
                              "X-Forwarded-For:\r\n"
                              "\r\n",
                              surge::test::listener());
  REQUIRE(std::holds_alternative<http_request>(parsed));
  const auto& req = std::get<http_request>(parsed);
  CHECK(req.header("x-forwarded-for") == "1.1.1.1, 198.51.100.1, 127.0.0.1");
  CHECK(client_address(ip("127.0.0.1"), req.header("x-forwarded-for"), t).to_string() ==
        "198.51.100.1");
  // parse_request has no socket: the peer is ::.
  CHECK(req.peer == ip_address{});
}
