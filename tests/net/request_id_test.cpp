#include <doctest/doctest.h>

#include <set>
#include <string>

#include "surge/net/request_id.hpp"

using namespace surge::net;

TEST_CASE("request id: which ids a client may set") {
  CHECK(valid_request_id("a"));
  CHECK(valid_request_id("AZaz09._:-"));
  CHECK(valid_request_id(std::string(128, '7')));
  CHECK_FALSE(valid_request_id(""));
  CHECK_FALSE(valid_request_id(std::string(129, '7')));
  for (const char* bad : {"a b", "a/b", "a\tb", "a\"b", "a,b", "a;b", "a=b", "a+b", "\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_request_id(bad));
  }
}

TEST_CASE("request id: new ones are 32 lowercase hex digits, all different") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_request_id();
    REQUIRE(id.size() == 32);
    REQUIRE(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    REQUIRE(valid_request_id(id));
    seen.insert(std::move(id));
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("request id: a valid header is kept, anything else replaced") {
  CHECK(request_id_for(std::string_view{"abc-1"}) == "abc-1");
  CHECK(request_id_for(std::nullopt).size() == 32);
  CHECK(request_id_for(std::string_view{""}).size() == 32);
  CHECK(request_id_for(std::string_view{"no spaces"}).size() == 32);
}
