#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "surge/net/json.hpp"

namespace json = surge::net::json;

namespace {

json::value parse_ok(std::string_view text) {
  auto r = json::parse(text);
  if (auto* e = std::get_if<json::parse_error>(&r)) {
    FAIL_CHECK("unexpected error for ", std::string(text), ": ", e->message);
    return {};
  }
  return std::get<json::value>(std::move(r));
}

json::parse_error parse_err(std::string_view text, const json::parse_limits& limits = {}) {
  auto r = json::parse(text, limits);
  if (auto* e = std::get_if<json::parse_error>(&r)) {
    return *e;
  }
  FAIL_CHECK("expected an error for ", std::string(text));
  return {};
}

} // namespace

TEST_CASE("json: valid documents round trip") {
  struct row {
    const char* in;
    const char* out;
  };
  const row rows[] = {
      {"null", "null"},
      {"true", "true"},
      {"false", "false"},
      {"0", "0"},
      {"-0", "0"},
      {"42", "42"},
      {"-17", "-17"},
      {"1.5", "1.5"},
      {"-0.25", "-0.25"},
      {"1e3", "1000.0"},
      {"2.5E-3", "0.0025"},
      {"3.0", "3.0"},
      {"\"\"", "\"\""},
      {"\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\""},
      {"\"\\u0041\\u00e9\\u20AC\"", "\"A\xC3\xA9\xE2\x82\xAC\""},
      {"\"\\ud83d\\ude00\"", "\"\xF0\x9F\x98\x80\""},
      {"\"\\u0001\"", "\"\\u0001\""},
      {"\"\xE2\x82\xAC\"", "\"\xE2\x82\xAC\""},
      {"[]", "[]"},
      {"{}", "{}"},
      {" [1, 2 ,3 ]\n", "[1,2,3]"},
      {"{\"b\":1,\"a\":[true,null,{\"c\":\"d\"}]}", "{\"b\":1,\"a\":[true,null,{\"c\":\"d\"}]}"},
      {"\t\r\n {\"k\" : \"v\"} \t", "{\"k\":\"v\"}"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    auto v = parse_ok(r.in);
    const std::string s = json::serialize(v);
    CHECK(s == r.out);
    // The serialization parses back to the same serialization.
    CHECK(json::serialize(parse_ok(s)) == s);
  }
}

TEST_CASE("json: integers are exact, other numbers are doubles") {
  auto v = parse_ok("9223372036854775807");
  REQUIRE(v.is_int());
  CHECK(std::get<int64_t>(v.get()) == std::numeric_limits<int64_t>::max());
  v = parse_ok("-9223372036854775808");
  REQUIRE(v.is_int());
  CHECK(std::get<int64_t>(v.get()) == std::numeric_limits<int64_t>::min());
  v = parse_ok("9223372036854775808"); // one too big: a double
  REQUIRE(v.is_number());
  CHECK_FALSE(v.is_int());
  CHECK(std::get<double>(v.get()) == doctest::Approx(9.223372036854775808e18));
  v = parse_ok("12345678901234567890123");
  CHECK_FALSE(v.is_int());
  v = parse_ok("1.0");
  CHECK_FALSE(v.is_int());
  CHECK(std::string(v.type_name()) == "number");
  v = parse_ok("1e-400"); // underflow rounds to zero
  CHECK(std::get<double>(v.get()) == 0.0);
  v = parse_ok("0.0000000000000000000000000000000000000000000000000000000000000000000000001e-300");
  CHECK(std::get<double>(v.get()) == 0.0);
  auto e = parse_err("1e400");
  CHECK(e.message == "number out of range at byte 0");
  e = parse_err("[-123456789e999]");
  CHECK(e.offset == 1);
}

TEST_CASE("json: error classes carry byte offsets") {
  struct row {
    const char* in;
    std::size_t offset;
    const char* message;
  };
  const row rows[] = {
      {"", 0, "unexpected end of input, expected a value at byte 0"},
      {"   ", 3, "unexpected end of input, expected a value at byte 3"},
      {"{\"a\":1,\"b\":2 \"c\":3}", 13, "expected ',' or '}' at byte 13"},
      {"{\"a\":1,\"b\":2,\"c\":3 x", 19, "expected ',' or '}' at byte 19"},
      {"[1 2]", 3, "expected ',' or ']' at byte 3"},
      {"[1,]", 3, "expected a value at byte 3"},
      {"{\"a\":1,}", 7, "expected a string key at byte 7"},
      {"{a:1}", 1, "expected a string key at byte 1"},
      {"{\"a\" 1}", 5, "expected ':' at byte 5"},
      {"[1", 2, "unexpected end of input, expected ',' or ']' at byte 2"},
      {"{\"a\":1", 6, "unexpected end of input, expected ',' or '}' at byte 6"},
      {"tru", 0, "invalid literal at byte 0"},
      {"nul", 0, "invalid literal at byte 0"},
      {"NaN", 0, "expected a value at byte 0"},
      {"Infinity", 0, "expected a value at byte 0"},
      {"01", 0, "leading zeros are not allowed at byte 0"},
      {"-01", 0, "leading zeros are not allowed at byte 0"},
      {"1.", 0, "invalid number: digit expected after '.' at byte 0"},
      {".5", 0, "expected a value at byte 0"},
      {"1e", 0, "invalid number: digit expected in exponent at byte 0"},
      {"-", 0, "invalid number at byte 0"},
      {"+1", 0, "expected a value at byte 0"},
      {"1 2", 2, "unexpected data after the value at byte 2"},
      {"{} x", 3, "unexpected data after the value at byte 3"},
      {"/* c */ 1", 0, "expected a value at byte 0"},
      {"\"abc", 0, "unterminated string at byte 0"},
      {"\"a\nb\"", 2, "control character in string at byte 2"},
      {"\"\\x\"", 1, "invalid escape at byte 1"},
      {"\"\\u12G4\"", 1, "invalid \\u escape at byte 1"},
      {"\"\\u12\"", 1, "invalid \\u escape at byte 1"},
      {"\"\\ud800\"", 1, "lone high surrogate in \\u escape at byte 1"},
      {"\"\\ud800\\u0041\"", 1, "lone high surrogate in \\u escape at byte 1"},
      {"\"\\udc00\"", 1, "lone low surrogate in \\u escape at byte 1"},
      {"{\"a\":1,\"a\":2}", 7, "duplicate key \"a\" at byte 7"},
      {"\xEF\xBB\xBF{}", 0, "expected a value at byte 0"}, // no BOM
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    auto e = parse_err(r.in);
    CHECK(e.offset == r.offset);
    CHECK(e.message == r.message);
  }
}

TEST_CASE("json: duplicate keys in large objects") {
  std::string doc = "{";
  for (int i = 0; i < 100; ++i) {
    doc += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  }
  auto e = parse_err(doc + "\"k57\":0}");
  CHECK(e.message.find("duplicate key \"k57\"") == 0);
  CHECK(parse_ok(doc + "\"k100\":0}").is_object());
}

TEST_CASE("json: invalid UTF-8") {
  struct row {
    std::string in;
    std::size_t offset;
  };
  const row rows[] = {
      {"\"a\x80\"", 2},                  // stray continuation byte
      {"\"\xC0\xAF\"", 1},               // overlong '/'
      {"\"\xC1\xBF\"", 1},               // overlong
      {"\"\xE0\x80\xAF\"", 1},           // overlong 3-byte
      {"\"\xF0\x80\x80\xAF\"", 1},       // overlong 4-byte
      {"\"\xED\xA0\x80\"", 1},           // encoded surrogate U+D800
      {"\"\xED\xBF\xBF\"", 1},           // encoded surrogate U+DFFF
      {"\"\xF4\x90\x80\x80\"", 1},       // above U+10FFFF
      {"\"\xF5\x80\x80\x80\"", 1},       // invalid lead byte
      {"\"\xFF\"", 1},                   //
      {"\"abcd\xE2\x82\"", 5},           // truncated sequence
      {std::string("\"ab\xC3\"", 5), 3}, // lead byte then quote
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    auto e = parse_err(r.in);
    CHECK(e.offset == r.offset);
    CHECK(e.message == "invalid UTF-8 in string at byte " + std::to_string(r.offset));
  }
  CHECK(parse_err("\xC3\xA9").message == "expected a value at byte 0");

  CHECK(json::valid_utf8(""));
  CHECK(json::valid_utf8("plain"));
  CHECK(json::valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"));
  CHECK(json::valid_utf8("\xED\x9F\xBF")); // U+D7FF
  CHECK(json::valid_utf8("\xEE\x80\x80")); // U+E000
  CHECK_FALSE(json::valid_utf8("\xC0\x80"));
  CHECK_FALSE(json::valid_utf8("\xED\xA0\x80"));
  CHECK_FALSE(json::valid_utf8("\xF4\x90\x80\x80"));
  CHECK_FALSE(json::valid_utf8("\xE2\x82"));
  CHECK_FALSE(json::valid_utf8("\x80"));
}

TEST_CASE("json: limits") {
  std::string deep(32, '[');
  deep += std::string(32, ']');
  CHECK(parse_ok(deep).is_array());
  std::string too_deep(33, '[');
  too_deep += std::string(33, ']');
  auto e = parse_err(too_deep);
  CHECK(e.message == "nesting deeper than 32 at byte 32");

  // Far over the limit: no stack trouble, the error comes at the limit.
  std::string very_deep(1'000'000, '[');
  CHECK(parse_err(very_deep).offset == 32);
  std::string objs;
  for (int i = 0; i < 100000; ++i) {
    objs += "{\"a\":";
  }
  CHECK(parse_err(objs).message.find("nesting deeper than 32") == 0);

  json::parse_limits small;
  small.max_depth = 2;
  small.max_string = 4;
  CHECK(std::holds_alternative<json::value>(json::parse("[{\"abcd\":\"wxyz\"}]", small)));
  CHECK(parse_err("[[[]]]", small).offset == 2);
  e = parse_err("[\"abcde\"]", small);
  CHECK(e.message == "string longer than 4 bytes at byte 1");
  CHECK(parse_err("{\"abcde\":1}", small).offset == 1);
  CHECK(parse_err("\"\\u00e9\\u00e9\\u00e9\"", small).offset == 0); // 6 bytes decoded
}

TEST_CASE("json: value access and serialization") {
  json::object o;
  o.emplace_back("name", "caf\xC3\xA9");
  o.emplace_back("qty", int64_t{3});
  o.emplace_back("price", 2.5);
  o.emplace_back("tags", json::array{json::value("a"), json::value(true), json::value()});
  json::value v(std::move(o));
  json::value copy = v;
  CHECK(copy.is_object());
  REQUIRE(copy.find("qty") != nullptr);
  CHECK(std::get<int64_t>(copy.find("qty")->get()) == 3);
  CHECK(copy.find("missing") == nullptr);
  CHECK(json::value(1).find("x") == nullptr);
  CHECK(std::string(copy.find("tags")->type_name()) == "array");
  CHECK(json::serialize(copy) ==
        "{\"name\":\"caf\xC3\xA9\",\"qty\":3,\"price\":2.5,\"tags\":[\"a\",true,null]}");

  CHECK(json::serialize(json::value(std::nan(""))) == "null");
  CHECK(json::serialize(json::value(-0.0)) == "-0.0");
  CHECK(json::serialize(json::value(1e300)) == "1e+300");
  CHECK(json::serialize(json::value(0.1)) == "0.1");

  std::string out;
  json::append_quoted(out, std::string_view("a\"\\\x01\x1f\x7f", 6));
  CHECK(out == "\"a\\\"\\\\\\u0001\\u001f\x7f\"");
  out.clear();
  json::append_quoted(out, "bad\xFF\xC3"); // invalid bytes become U+FFFD escapes
  CHECK(out == "\"bad\\ufffd\\ufffd\"");
  CHECK(json::valid_utf8(out));
  std::string nul("\"\\u0000\"");
  auto n = parse_ok(nul);
  CHECK(std::get<std::string>(n.get()) == std::string(1, '\0'));
  CHECK(json::serialize(n) == nul);
}
