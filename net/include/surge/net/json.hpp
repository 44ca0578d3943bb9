#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace surge::net::json {

class value;
using array = std::vector<value>;
using object = std::vector<std::pair<std::string, value>>; ///< insertion order kept

/// A JSON value. Numbers keep integers exact: an integer literal that fits int64 is an
/// `int64_t`; any other number (fraction, exponent, out of range) is a `double`.
class value {
 public:
  using storage = std::variant<std::nullptr_t, bool, int64_t, double, std::string, array, object>;

  value()
      : v_(nullptr) {}
  /// Any type `storage` converts from (not value itself, so copies use the copy constructor).
  template <class T>
  requires(!std::is_same_v<std::remove_cvref_t<T>, value>) value(T&& x)
      : v_(std::forward<T>(x)) {}

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_number() const { return is_int() || std::holds_alternative<double>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_array() const { return std::holds_alternative<array>(v_); }
  bool is_object() const { return std::holds_alternative<object>(v_); }

  const storage& get() const { return v_; }
  storage& get() { return v_; }

  /// For objects: the member `key` (first one), or nullptr.
  const value* find(std::string_view key) const;

  /// "null", "boolean", "integer", "number", "string", "array", "object": for error messages.
  const char* type_name() const;

  /// Same type and same contents (members in the same order); 1 and 1.0 differ.
  bool operator==(const value& other) const = default;

 private:
  storage v_;
};

struct parse_error {
  std::size_t offset = 0; ///< byte offset into the input
  std::string message;    ///< e.g. "expected ',' or '}' at byte 17"
};

struct parse_limits {
  std::size_t max_depth = 32;
  std::size_t max_string = 64 * 1024;
};

/// Strict RFC 8259 parsing: one value, optional surrounding whitespace, nothing after it; valid
/// UTF-8 required (also inside strings, and \u escapes must not form lone surrogates); no
/// comments, trailing commas, NaN or leading zeros; duplicate object keys are an error.
std::variant<value, parse_error> parse(std::string_view text, const parse_limits& limits = {});

/// Compact serialization (a json::writer, json_writer.hpp); strings are escaped per RFC 8259
/// (control characters as \u00XX). parse(serialize(v)) == v for every value parse() returns.
std::string serialize(const value& v);

/// Appends `s` as a quoted, escaped JSON string to `out`.
void append_quoted(std::string& out, std::string_view s);

/// True when `s` is valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);

} // namespace surge::net::json
