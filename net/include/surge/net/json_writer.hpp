#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "surge/net/json.hpp"

namespace surge::net::json {

/// Writes compact JSON text by appending to one std::string: no tree, no allocation but the
/// string's own growth (give the expected size to the constructor to avoid even that). Every
/// JSON body Surge builds goes through a writer or through serialize(), which uses one.
///
/// The writer places commas and colons itself: inside an object, call key() before each member
/// value (or use a member() shorthand); begin_* and end_* come in matching pairs. It does not
/// check the structure — a missing end_object() or a value without key() gives malformed text —
/// so a caller's shape must be fixed and unit-tested (the bridge's encoders are, in tests/net).
///
/// Strings (keys and values) are escaped per RFC 8259 as append_quoted() does: `"` and `\`,
/// control characters as \b \f \n \r \t or \u00XX; valid UTF-8 passes through unchanged and any
/// invalid byte becomes \ufffd, so the text is always valid UTF-8. Integers are exact (any
/// integral type, unsigned ones too); doubles as serialize() writes them (shortest round trip,
/// ".0" added to integral values, NaN and infinities as null).
///
/// Not thread-safe: one writer per document.
class writer {
 public:
  writer() = default;
  /// Reserves `capacity` bytes up front.
  explicit writer(std::size_t capacity) { out_.reserve(capacity); }

  writer& begin_object() { return open('{'); }
  writer& end_object() { return close('}'); }
  writer& begin_array() { return open('['); }
  writer& end_array() { return close(']'); }

  /// The name of the next member; the value follows with any of the value calls below.
  writer& key(std::string_view k) {
    separate();
    append_quoted(out_, k);
    out_ += ':';
    comma_ = false;
    return *this;
  }

  writer& string(std::string_view s) {
    separate();
    append_quoted(out_, s);
    return *this;
  }
  template <std::integral T>
  requires(!std::same_as<T, bool>) writer& integer(T i) {
    separate();
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof(buf), i);
    out_.append(buf, res.ptr); // 24 bytes hold every 64-bit integer
    return *this;
  }
  writer& boolean(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
  }
  writer& null() {
    separate();
    out_ += "null";
    return *this;
  }
  writer& number(double d);
  /// A whole parsed value, as serialize() writes it.
  writer& write(const value& v);

  /// key(k) and then the value.
  writer& member(std::string_view k, std::string_view s) { return key(k).string(s); }
  writer& member(std::string_view k, const char* s) { return key(k).string(s); }
  writer& member(std::string_view k, const std::string& s) { return key(k).string(s); }
  template <std::integral T>
  requires(!std::same_as<T, bool>) writer& member(std::string_view k, T i) {
    return key(k).integer(i);
  }
  writer& member(std::string_view k, bool b) { return key(k).boolean(b); }
  writer& member_null(std::string_view k) { return key(k).null(); }

  /// The text so far.
  const std::string& str() const { return out_; }
  /// The text; the writer is empty afterwards.
  std::string take() {
    std::string out = std::move(out_);
    out_.clear();
    comma_ = false;
    return out;
  }

 private:
  writer& open(char bracket) {
    separate();
    out_ += bracket;
    comma_ = false;
    return *this;
  }
  writer& close(char bracket) {
    out_ += bracket;
    comma_ = true;
    return *this;
  }

  /// Before a key or a value: a comma unless it is the first of its object or array.
  void separate() {
    if (comma_) {
      out_ += ',';
    }
    comma_ = true;
  }

  std::string out_;
  bool comma_ = false; ///< the next key or value is not the first of its level
};

} // namespace surge::net::json
