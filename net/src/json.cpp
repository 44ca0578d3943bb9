#include "surge/net/json.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "surge/net/json_writer.hpp"
#include "surge/net/text.hpp"

namespace surge::net::json {

namespace {

/// Length of the valid UTF-8 sequence starting at p[0] (n bytes available), or 0 when the bytes
/// there are not a valid sequence (overlong, surrogate, above U+10FFFF, truncated, stray).
std::size_t utf8_sequence_length(const unsigned char* p, std::size_t n) {
  const unsigned char c = p[0];
  if (c < 0x80) {
    return 1;
  }
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (c == 0xE0) {
    return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
  }
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (c == 0xED) {
    return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  }
  if (c == 0xF0) {
    return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
  }
  if (c >= 0xF1 && c <= 0xF3) {
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  if (c == 0xF4) {
    return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// The failure of one parse: thrown inside the parser only, caught in parse().
struct failure {
  parse_error error;
};

/// Recursive-descent parser; recursion is bounded by limits_.max_depth.
class parser {
 public:
  parser(std::string_view text, const parse_limits& limits)
      : text_(text)
      , limits_(limits) {}

  value parse_document() {
    skip_ws();
    value v = parse_value(0);
    skip_ws();
    if (pos_ != text_.size()) {
      fail("unexpected data after the value");
    }
    return v;
  }

 private:
  [[noreturn]] void fail(std::string_view what) { fail_at(what, pos_); }

  [[noreturn]] void fail_at(std::string_view what, std::size_t at) {
    std::string msg(what);
    msg += " at byte ";
    msg += std::to_string(at);
    throw failure{parse_error{at, std::move(msg)}};
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      const char c = peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        break;
      }
      ++pos_;
    }
  }

  void expect_literal(std::string_view lit) {
    if (text_.substr(pos_, lit.size()) != lit) {
      fail("invalid literal");
    }
    pos_ += lit.size();
  }

  value parse_value(std::size_t depth) {
    if (at_end()) {
      fail("unexpected end of input, expected a value");
    }
    switch (peek()) {
    case '{':
      return parse_object(depth + 1);
    case '[':
      return parse_array(depth + 1);
    case '"':
      return value(parse_string());
    case 't':
      expect_literal("true");
      return value(true);
    case 'f':
      expect_literal("false");
      return value(false);
    case 'n':
      expect_literal("null");
      return value(nullptr);
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
        return parse_number();
      }
      fail("expected a value");
    }
  }

  void check_depth(std::size_t depth) {
    if (depth > limits_.max_depth) {
      fail("nesting deeper than " + std::to_string(limits_.max_depth));
    }
  }

  /// Fails unless the next character is `c`, naming it `what` ("expected <what>"); does not
  /// consume it.
  void expect(char c, std::string_view what) {
    if (at_end()) {
      fail("unexpected end of input, expected " + std::string(what));
    }
    if (peek() != c) {
      fail("expected " + std::string(what));
    }
  }

  /// At the start of an array or object (after its opening character): consumes `close` and
  /// returns true when the container is empty.
  bool closes_at_once(char close) {
    skip_ws();
    if (!at_end() && peek() == close) {
      ++pos_;
      return true;
    }
    return false;
  }

  /// After an element of an array or object: consumes ',' and returns true when another
  /// element follows, consumes `close` and returns false at the end, fails on anything else.
  bool another_element(char close) {
    skip_ws();
    if (!at_end() && peek() == ',') {
      ++pos_;
      return true;
    }
    if (!at_end() && peek() == close) {
      ++pos_;
      return false;
    }
    const std::string expected = std::string("expected ',' or '") + close + "'";
    fail(at_end() ? "unexpected end of input, " + expected : expected);
  }

  value parse_array(std::size_t depth) {
    check_depth(depth);
    ++pos_; // '['
    array out;
    if (closes_at_once(']')) {
      return value(std::move(out));
    }
    do {
      skip_ws();
      out.push_back(parse_value(depth));
    } while (another_element(']'));
    return value(std::move(out));
  }

  value parse_object(std::size_t depth) {
    check_depth(depth);
    ++pos_; // '{'
    object out;
    std::unordered_set<std::string> seen; // only used once the object grows
    if (closes_at_once('}')) {
      return value(std::move(out));
    }
    do {
      skip_ws();
      expect('"', "a string key");
      const std::size_t key_pos = pos_;
      std::string key = parse_string();
      if (is_duplicate(out, seen, key)) {
        std::string msg = "duplicate key";
        if (key.size() <= 64) {
          msg += ' ';
          append_quoted(msg, key);
        }
        fail_at(msg, key_pos);
      }
      skip_ws();
      expect(':', "':'");
      ++pos_;
      skip_ws();
      value v = parse_value(depth);
      out.emplace_back(std::move(key), std::move(v));
    } while (another_element('}'));
    return value(std::move(out));
  }

  /// Linear scan for small objects, a hash set once an object has more than 16 members.
  static bool is_duplicate(const object& members, std::unordered_set<std::string>& seen,
                           const std::string& key) {
    constexpr std::size_t linear_max = 16;
    if (members.size() < linear_max) {
      for (const auto& m : members) {
        if (m.first == key) {
          return true;
        }
      }
      return false;
    }
    if (seen.empty()) {
      for (const auto& m : members) {
        seen.insert(m.first);
      }
    }
    return !seen.insert(key).second;
  }

  /// Reads the 4 hex digits of a \u escape; pos_ is at the first digit.
  uint32_t read_hex4(std::size_t escape_pos) {
    if (text_.size() - pos_ < 4) {
      fail_at("invalid \\u escape", escape_pos);
    }
    uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int d = text::hex_value(text_[pos_ + i]);
      if (d < 0) {
        fail_at("invalid \\u escape", escape_pos);
      }
      cp = (cp << 4) | static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return cp;
  }

  std::string parse_string() {
    const std::size_t start = pos_;
    ++pos_; // opening quote
    std::string out;
    for (;;) {
      if (at_end()) {
        fail_at("unterminated string", start);
      }
      if (out.size() > limits_.max_string) {
        fail_at("string longer than " + std::to_string(limits_.max_string) + " bytes", start);
      }
      const auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c < 0x20) {
        fail("control character in string");
      }
      if (c == '\\') {
        parse_escape(out);
        continue;
      }
      if (c < 0x80) {
        // Copy the run of plain ASCII in one go.
        std::size_t end = pos_ + 1;
        while (end < text_.size()) {
          const auto d = static_cast<unsigned char>(text_[end]);
          if (d == '"' || d == '\\' || d < 0x20 || d >= 0x80) {
            break;
          }
          ++end;
        }
        out.append(text_.data() + pos_, end - pos_);
        pos_ = end;
        continue;
      }
      const std::size_t len = utf8_sequence_length(
          reinterpret_cast<const unsigned char*>(text_.data()) + pos_, text_.size() - pos_);
      if (len == 0) {
        fail("invalid UTF-8 in string");
      }
      out.append(text_.data() + pos_, len);
      pos_ += len;
    }
    if (out.size() > limits_.max_string) {
      fail_at("string longer than " + std::to_string(limits_.max_string) + " bytes", start);
    }
    return out;
  }

  void parse_escape(std::string& out) {
    const std::size_t escape_pos = pos_;
    ++pos_; // backslash
    if (at_end()) {
      fail_at("unterminated escape", escape_pos);
    }
    const char e = peek();
    ++pos_;
    switch (e) {
    case '"':
      out += '"';
      return;
    case '\\':
      out += '\\';
      return;
    case '/':
      out += '/';
      return;
    case 'b':
      out += '\b';
      return;
    case 'f':
      out += '\f';
      return;
    case 'n':
      out += '\n';
      return;
    case 'r':
      out += '\r';
      return;
    case 't':
      out += '\t';
      return;
    case 'u':
      break;
    default:
      fail_at("invalid escape", escape_pos);
    }
    uint32_t cp = read_hex4(escape_pos);
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      fail_at("lone low surrogate in \\u escape", escape_pos);
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (text_.substr(pos_, 2) != "\\u") {
        fail_at("lone high surrogate in \\u escape", escape_pos);
      }
      pos_ += 2;
      const uint32_t low = read_hex4(escape_pos);
      if (low < 0xDC00 || low > 0xDFFF) {
        fail_at("lone high surrogate in \\u escape", escape_pos);
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
  }

  value parse_number() {
    const std::size_t start = pos_;
    std::size_t p = pos_;
    const std::size_t n = text_.size();
    auto digit = [&](std::size_t i) { return i < n && text_[i] >= '0' && text_[i] <= '9'; };
    if (text_[p] == '-') {
      ++p;
    }
    if (!digit(p)) {
      fail_at("invalid number", start);
    }
    const std::size_t int_begin = p;
    if (text_[p] == '0') {
      ++p;
      if (digit(p)) {
        fail_at("leading zeros are not allowed", start);
      }
    } else {
      while (digit(p)) {
        ++p;
      }
    }
    const std::size_t int_end = p;
    bool is_integer = true;
    std::size_t frac_begin = p;
    std::size_t frac_end = p;
    if (p < n && text_[p] == '.') {
      is_integer = false;
      ++p;
      if (!digit(p)) {
        fail_at("invalid number: digit expected after '.'", start);
      }
      frac_begin = p;
      while (digit(p)) {
        ++p;
      }
      frac_end = p;
    }
    int64_t exponent = 0;
    if (p < n && (text_[p] == 'e' || text_[p] == 'E')) {
      is_integer = false;
      ++p;
      bool negative = false;
      if (p < n && (text_[p] == '+' || text_[p] == '-')) {
        negative = text_[p] == '-';
        ++p;
      }
      if (!digit(p)) {
        fail_at("invalid number: digit expected in exponent", start);
      }
      while (digit(p)) {
        if (exponent < 1'000'000) {
          exponent = exponent * 10 + (text_[p] - '0');
        }
        ++p;
      }
      if (negative) {
        exponent = -exponent;
      }
    }
    pos_ = p;
    const char* first = text_.data() + start;
    const char* last = text_.data() + p;
    if (is_integer) {
      int64_t i = 0;
      auto [ptr, ec] = std::from_chars(first, last, i);
      if (ec == std::errc{} && ptr == last) {
        return value(i);
      }
    }
    double d = 0;
    auto [ptr, ec] = std::from_chars(first, last, d);
    if (ec == std::errc{} && ptr == last && std::isfinite(d)) {
      return value(d);
    }
    // Out of range: overflow is an error, underflow rounds to (signed) zero. The decimal
    // magnitude is the position of the first significant digit plus the exponent.
    int64_t magnitude = exponent;
    std::size_t i = int_begin;
    while (i < int_end && text_[i] == '0') {
      ++i;
    }
    if (i < int_end) {
      magnitude += static_cast<int64_t>(int_end - i);
    } else {
      std::size_t f = frac_begin;
      while (f < frac_end && text_[f] == '0') {
        ++f;
      }
      if (f == frac_end) {
        return value(text_[start] == '-' ? -0.0 : 0.0);
      }
      magnitude -= static_cast<int64_t>(f - frac_begin);
    }
    if (magnitude > 0) {
      fail_at("number out of range", start);
    }
    return value(text_[start] == '-' ? -0.0 : 0.0);
  }

  const std::string_view text_;
  const parse_limits& limits_;
  std::size_t pos_ = 0;
};

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null"; // JSON has no NaN or infinity
    return;
  }
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  if (ec != std::errc{}) {
    out += "null";
    return;
  }
  const std::string_view s(buf, static_cast<std::size_t>(ptr - buf));
  out += s;
  // Keep it a double when parsed back: "3" would come back as an integer.
  if (s.find_first_of(".eE") == std::string_view::npos) {
    out += ".0";
  }
}

/// Writes a parsed value; recursion is bounded by the parser's depth limit (or the caller's
/// own tree).
struct write_visitor {
  writer& w;

  void operator()(std::nullptr_t) const { w.null(); }
  void operator()(bool b) const { w.boolean(b); }
  void operator()(int64_t i) const { w.integer(i); }
  void operator()(double d) const { w.number(d); }
  void operator()(const std::string& s) const { w.string(s); }
  void operator()(const array& a) const {
    w.begin_array();
    for (const auto& e : a) {
      w.write(e);
    }
    w.end_array();
  }
  void operator()(const object& o) const {
    w.begin_object();
    for (const auto& [k, e] : o) {
      w.key(k).write(e);
    }
    w.end_object();
  }
};

} // namespace

const value* value::find(std::string_view key) const {
  const auto* o = std::get_if<object>(&v_);
  if (o == nullptr) {
    return nullptr;
  }
  for (const auto& [k, v] : *o) {
    if (k == key) {
      return &v;
    }
  }
  return nullptr;
}

const char* value::type_name() const {
  switch (v_.index()) {
  case 0:
    return "null";
  case 1:
    return "boolean";
  case 2:
    return "integer";
  case 3:
    return "number";
  case 4:
    return "string";
  case 5:
    return "array";
  default:
    return "object";
  }
}

std::variant<value, parse_error> parse(std::string_view text, const parse_limits& limits) {
  try {
    return parser(text, limits).parse_document();
  } catch (failure& f) {
    return std::move(f.error);
  }
}

std::string serialize(const value& v) {
  return writer{}.write(v).take();
}

writer& writer::number(double d) {
  separate();
  append_double(out_, d);
  return *this;
}

writer& writer::write(const value& v) {
  std::visit(write_visitor{*this}, v.get());
  return *this;
}

void append_quoted(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t copied = 0; // bytes before this are in `out`
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i; // copied with its run
      continue;
    }
    if (c >= 0x80) {
      // Valid sequences are copied; any invalid byte becomes U+FFFD so the output is valid.
      if (const std::size_t len = utf8_sequence_length(p + i, n - i); len > 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + copied, i - copied);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c >= 0x80) {
        out += "\\ufffd";
      } else {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
      }
    }
    copied = ++i;
  }
  out.append(s.data() + copied, n - copied);
  out += '"';
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(p + i, n - i);
    if (len == 0) {
      return false;
    }
    i += len;
  }
  return true;
}

} // namespace surge::net::json
