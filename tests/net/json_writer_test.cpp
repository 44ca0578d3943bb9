#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <variant>

#include "surge/net/json.hpp"
#include "surge/net/json_writer.hpp"

namespace json = surge::net::json;

namespace {

json::value parse_ok(std::string_view text) {
  auto r = json::parse(text);
  REQUIRE_MESSAGE(std::holds_alternative<json::value>(r), std::string(text));
  return std::get<json::value>(std::move(r));
}

std::string quoted(std::string_view s) {
  return json::writer{}.string(s).take();
}

} // namespace

TEST_CASE("json::writer: commas and colons in objects and arrays") {
  CHECK(json::writer{}.begin_object().end_object().take() == "{}");
  CHECK(json::writer{}.begin_array().end_array().take() == "[]");
  json::writer w;
  w.begin_object();
  w.member("a", 1).member("b", "two").member("c", true).member_null("d");
  w.key("e").begin_array().integer(1).begin_object().end_object().begin_array().end_array();
  w.begin_object().member("x", false).end_object().null().string("s").end_array();
  w.key("f").begin_object().key("g").begin_array().end_array().end_object();
  w.end_object();
  CHECK(w.str() ==
        R"({"a":1,"b":"two","c":true,"d":null,"e":[1,{},[],{"x":false},null,"s"],"f":{"g":[]}})");
  // Top-level scalars and several documents are the caller's business; a scalar alone is fine.
  CHECK(json::writer{}.integer(0).take() == "0");
  CHECK(json::writer{}.null().take() == "null");
}

TEST_CASE("json::writer: strings are escaped, valid UTF-8 passes through") {
  CHECK(quoted("") == R"("")");
  CHECK(quoted(R"(say "hi" \ bye /)") == R"("say \"hi\" \\ bye /")");
  CHECK(quoted("\b\f\n\r\t") == R"("\b\f\n\r\t")");
  // Every other control character as \u00XX; DEL is not a control character in JSON.
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    }
    char expected[16];
    std::snprintf(expected, sizeof(expected), "\"\\u%04x\"", c);
    CHECK(quoted(std::string(1, static_cast<char>(c))) == expected);
  }
  CHECK(quoted(std::string_view("\0", 1)) == R"("\u0000")");
  CHECK(quoted("\x7f") == "\"\x7f\"");
  // 2-, 3- and 4-byte sequences, the highest code point and U+FFFF.
  const std::string utf8 =
      "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf";
  CHECK(quoted(utf8) == "\"" + utf8 + "\"");
  // Invalid bytes (stray continuation, truncated, overlong, surrogate, above U+10FFFF) become
  // U+FFFD escapes, one per byte that does not start a valid sequence.
  CHECK(quoted("a\x80z") == R"("a\ufffdz")");
  CHECK(quoted("a\xc3") == R"("a\ufffd")");
  CHECK(quoted("\xc0\xaf") == R"("\ufffd\ufffd")");
  CHECK(quoted("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");
  CHECK(quoted("\xf4\x90\x80\x80") == R"("\ufffd\ufffd\ufffd\ufffd")");
  CHECK(json::valid_utf8(quoted("\xff\xfe\xc3")));
  // Keys are escaped the same way.
  CHECK(json::writer{}.begin_object().member("k\"\n\xff", 1).end_object().take() ==
        R"({"k\"\n\ufffd":1})");
}

TEST_CASE("json::writer: numbers, booleans and null") {
  json::writer w;
  w.begin_array();
  w.integer(std::numeric_limits<int64_t>::min()).integer(std::numeric_limits<int64_t>::max());
  w.integer(std::numeric_limits<uint64_t>::max()).integer(uint32_t{7}).integer(int16_t{-3});
  w.integer(0).boolean(true).boolean(false).null();
  w.number(2.5).number(3.0).number(-0.0).number(1e300).number(0.1);
  w.number(std::numeric_limits<double>::quiet_NaN())
      .number(std::numeric_limits<double>::infinity());
  w.end_array();
  CHECK(w.str() == "[-9223372036854775808,9223372036854775807,18446744073709551615,7,-3,0,true,"
                   "false,null,2.5,3.0,-0.0,1e+300,0.1,null,null]");
  // A const char* is a string, never a bool.
  CHECK(json::writer{}.begin_object().member("s", "x").end_object().take() == R"({"s":"x"})");
}

TEST_CASE("json::writer: take() empties the writer") {
  json::writer w{64};
  w.begin_array().integer(1).end_array();
  CHECK(w.take() == "[1]");
  CHECK(w.str().empty());
  w.begin_array().integer(2).end_array();
  CHECK(w.take() == "[2]");
}

TEST_CASE("json::writer: a parsed value is written as serialize() writes it, and parses back") {
  const char* docs[] = {
      "null",
      "[1,-2,3.5,\"x\",true,false,null,[],{}]",
      R"({"a":{"b":[{"c":"\u0000\ud83d\ude00\u20ac"}]},"n":-0.0,"big":9223372036854775808})",
      R"("\"\\\/\b\f\n\r\t")",
  };
  for (const char* doc : docs) {
    CAPTURE(doc);
    const auto v = parse_ok(doc);
    const auto text = json::writer{}.write(v).take();
    CHECK(text == json::serialize(v));
    CHECK(parse_ok(text) == v);
  }
  // Inside a document, as one member.
  json::writer w;
  w.begin_object().key("v").write(parse_ok("[1,{\"k\":2}]")).member("after", 3).end_object();
  CHECK(w.str() == R"({"v":[1,{"k":2}],"after":3})");
}

TEST_CASE("json::value: equality is by type and contents") {
  CHECK(parse_ok("[1,{\"a\":\"b\"}]") == parse_ok(" [ 1 , { \"a\" : \"b\" } ] "));
  CHECK(!(parse_ok("1") == parse_ok("1.0")));
  CHECK(!(parse_ok(R"({"a":1,"b":2})") == parse_ok(R"({"b":2,"a":1})")));
  CHECK(!(parse_ok("null") == parse_ok("false")));
}

TEST_CASE("json::writer: cost of a cart body against pasting strings (informational)") {
  // The bridge's biggest common body: a cart of three lines, as the old hand-pasted encoder
  // built it (std::string += and std::to_string, no reserve) and as the writer does.
  struct line {
    std::string sku, hold_id, expires;
    int64_t qty, price;
  };
  const line lines[] = {
      {"SKU-HOT-1", "h_8f3a2c1d9e7b4a6f0c5d2e1f3a4b5c6d", "2026-11-28T08:30:00.123Z", 2, 2599},
      {"SKU-2", "h_0c5d2e1f3a4b5c6d8f3a2c1d9e7b4a6f", "2026-11-28T08:31:00.456Z", 1, 100},
      {"SKU-3", "h_3a4b5c6d8f3a2c1d0c5d2e1f9e7b4a6f", "2026-11-28T08:32:00.789Z", 5, 999}};
  auto pasted = [&] {
    auto field = [](std::string& out, std::string_view k, std::string_view v, bool first) {
      if (!first) {
        out += ',';
      }
      json::append_quoted(out, k);
      out += ':';
      json::append_quoted(out, v);
    };
    auto ifield = [](std::string& out, std::string_view k, int64_t v) {
      out += ',';
      json::append_quoted(out, k);
      out += ':';
      out += std::to_string(v);
    };
    std::string out = "{";
    field(out, "cart_id", "c_0123456789abcdef0123456789abcdef", true);
    field(out, "customer_id", "customer-42", false);
    out += ",\"items\":[";
    bool first = true;
    for (const auto& l : lines) {
      out += first ? "{" : ",{";
      first = false;
      field(out, "sku", l.sku, true);
      ifield(out, "qty", l.qty);
      ifield(out, "price_cents", l.price);
      field(out, "hold_id", l.hold_id, false);
      field(out, "hold_expires_at", l.expires, false);
      out += '}';
    }
    out += ']';
    ifield(out, "total_cents", 10192);
    field(out, "currency", "USD", false);
    out += '}';
    return out;
  };
  auto written = [&] {
    json::writer w{512};
    w.begin_object();
    w.member("cart_id", "c_0123456789abcdef0123456789abcdef").member("customer_id", "customer-42");
    w.key("items").begin_array();
    for (const auto& l : lines) {
      w.begin_object().member("sku", l.sku).member("qty", l.qty).member("price_cents", l.price);
      w.member("hold_id", l.hold_id).member("hold_expires_at", l.expires).end_object();
    }
    w.end_array().member("total_cents", 10192).member("currency", "USD").end_object();
    return w.take();
  };
  REQUIRE(pasted() == written());
  auto time_of = [](auto f) {
    constexpr int rounds = 200000;
    std::size_t bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) {
      bytes += f().size();
    }
    const auto d = std::chrono::steady_clock::now() - start;
    CHECK(bytes > 0);
    return std::chrono::duration<double, std::nano>(d).count() / rounds;
  };
  time_of(pasted); // warm-up
  const double old_ns = time_of(pasted);
  const double new_ns = time_of(written);
  std::printf("[net] cart body (%zu bytes): pasted %.0f ns, json::writer %.0f ns\n",
              written().size(), old_ns, new_ns);
}
