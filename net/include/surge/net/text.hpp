#pragma once

// Character and text helpers of the HTTP edge: digit values (JSON and percent escapes, JWT
// base64url), ASCII lower case (header names, origins, currencies), trimming of list entries and
// percent-encoding.
// Standard library only.

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

namespace surge::net::text {

/// A run of consecutive characters `first`..`last` of an alphabet, standing for the values
/// `value`, `value + 1`, ... in order.
struct char_run {
  char first;
  char last;
  int value;
};

/// The value of `c` in the alphabet made of `runs`, or -1 when `c` is in none of them.
template <std::size_t N>
constexpr int value_in(char c, const char_run (&runs)[N]) {
  for (const auto& r : runs) {
    if (c >= r.first && c <= r.last) {
      return r.value + (c - r.first);
    }
  }
  return -1;
}

/// The value of one hexadecimal digit (either case), or -1.
constexpr int hex_value(char c) {
  constexpr char_run hex[] = {{'0', '9', 0}, {'a', 'f', 10}, {'A', 'F', 10}};
  return value_in(c, hex);
}

/// The value of one base64url character (RFC 4648 section 5), or -1.
constexpr int b64url_value(char c) {
  constexpr char_run b64url[] = {
      {'A', 'Z', 0}, {'a', 'z', 26}, {'0', '9', 52}, {'-', '-', 62}, {'_', '_', 63}};
  return value_in(c, b64url);
}

/// `s` with ASCII letters lowered (header names, origins and media types are compared this way).
inline std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// `s` without the spaces and tabs (HTTP's optional white space) at either end.
constexpr std::string_view trim_space(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

/// Appends `s` escaped for HTML text and attribute values (& < > " '); other bytes unchanged.
inline void append_html(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
}

/// `s` escaped as append_html() does.
inline std::string html_escape(std::string_view s) {
  std::string out;
  append_html(out, s);
  return out;
}

/// `s` with everything but RFC 3986's unreserved characters percent-encoded: for paths, queries
/// and forms.
inline std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

} // namespace surge::net::text
