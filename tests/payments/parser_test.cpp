#include <doctest/doctest.h>

#include <string>
#include <variant>
#include <vector>

#include "surge/net/payments/gateway.hpp"

using namespace surge::net::payments;

namespace {

std::vector<gateway_spec> ok(std::string_view s) {
  auto r = parse_gateways(s);
  if (auto* err = std::get_if<std::string>(&r)) {
    FAIL_CHECK("unexpected error for '" << std::string{s} << "': " << *err);
    return {};
  }
  return std::get<std::vector<gateway_spec>>(r);
}

std::string err(std::string_view s) {
  auto r = parse_gateways(s);
  if (auto* e = std::get_if<std::string>(&r)) {
    return *e;
  }
  FAIL_CHECK("expected an error for '" << std::string{s} << "'");
  return {};
}

} // namespace

TEST_SUITE("payments_unit") {

  TEST_CASE("gateways setting: the API.md example, kinds, defaults") {
    const auto v = ok("alpha=http://127.0.0.1:7070,beta=http://127.0.0.1:7071");
    REQUIRE(v.size() == 2);
    CHECK(v[0] == gateway_spec{"alpha", gateway_kind::form, "127.0.0.1", 7070});
    CHECK(v[1] == gateway_spec{"beta", gateway_kind::form, "127.0.0.1", 7071});

    const auto k =
        ok(" a = json+http://localhost:80/ , b=form+http://[::1]:9 ,c_1-x=http://h.example:65535");
    REQUIRE(k.size() == 3);
    CHECK(k[0] == gateway_spec{"a", gateway_kind::json, "localhost", 80});
    CHECK(k[1] == gateway_spec{"b", gateway_kind::form, "::1", 9});
    CHECK(k[2] == gateway_spec{"c_1-x", gateway_kind::form, "h.example", 65535});

    // https: TLS; without a port, 443.
    const auto t = ok("a=https://pay.example,b=json+https://[::1]:8443/,c=https://10.0.0.1:9");
    REQUIRE(t.size() == 3);
    CHECK(t[0] == gateway_spec{"a", gateway_kind::form, "pay.example", 443, true});
    CHECK(t[1] == gateway_spec{"b", gateway_kind::json, "::1", 8443, true});
    CHECK(t[2] == gateway_spec{"c", gateway_kind::form, "10.0.0.1", 9, true});

    CHECK(ok("").empty());
    CHECK(ok("   ").empty());
  }

  TEST_CASE("gateways setting: clear errors") {
    CHECK(err("alpha=ftp://127.0.0.1:7070").find("http://host:port or https://") !=
          std::string::npos);
    CHECK(err("alpha=https://127.0.0.1:7070/v1").find("no path") != std::string::npos);
    CHECK(err("alpha=https://127.0.0.1:0").find("bad port") != std::string::npos);
    CHECK(err("alpha=https://user@pay.example").find("no path") != std::string::npos);
    CHECK(err("alpha=127.0.0.1:7070").find("http://host:port") != std::string::npos);
    CHECK(err("alpha=http://127.0.0.1").find("port") != std::string::npos);
    CHECK(err("alpha=http://127.0.0.1:0").find("bad port") != std::string::npos);
    CHECK(err("alpha=http://127.0.0.1:70000").find("bad port") != std::string::npos);
    CHECK(err("alpha=http://127.0.0.1:7x").find("bad port") != std::string::npos);
    CHECK(err("alpha=http://127.0.0.1:7070/v1").find("no path") != std::string::npos);
    CHECK(err("alpha=grpc+http://127.0.0.1:7070").find("unknown kind") != std::string::npos);
    CHECK(err("alpha").find("name=url") != std::string::npos);
    CHECK(err("=http://h:1").find("name") != std::string::npos);
    CHECK(err("a b=http://h:1").find("name") != std::string::npos);
    CHECK(err("a=http://h:1,a=http://h:2").find("twice") != std::string::npos);
    CHECK(err("a=http://h:1,").find("name=url") != std::string::npos);
    CHECK(err("a=http://:1").find("bad host") != std::string::npos);
    CHECK(err("a=http://u@h:1").find("no path") != std::string::npos);
  }

  TEST_CASE("status names") {
    CHECK(std::string{surge::actors::to_string(surge::actors::charge_status::unknown)} ==
          "unknown");
    CHECK(std::string{to_string(attempt_kind::not_found)} == "not_found");
    CHECK(std::string{to_string(attempt_kind::requires_action)} == "requires_action");
  }

} // TEST_SUITE
