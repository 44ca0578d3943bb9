#include "surge/net/request_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cctype>

#include "parser_detail.hpp"
#include "surge/net/json.hpp"
#include "surge/net/text.hpp"

namespace surge::net {

namespace http = boost::beast::http;

namespace {

using text::hex_value;
using text::to_lower;

/// Percent-decodes `in` into `out` ('+' becomes a space when `plus_is_space`). False for a bad
/// escape, a NUL byte or invalid UTF-8 in the result.
bool percent_decode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (in.size() - i < 3) {
        return false;
      }
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return false;
      }
      out += static_cast<char>((hi << 4) | lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out.find('\0') == std::string::npos && json::valid_utf8(out);
}

} // namespace

bool decode_target(std::string_view target, http_request& out) {
  if (target.empty() || target.front() != '/') {
    return false;
  }
  const std::size_t q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  std::string_view raw_query =
      q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

  if (!percent_decode(raw_path, false, out.path)) {
    return false;
  }
  // Segments are split before decoding, so an encoded "%2F" stays inside its segment.
  out.segments.clear();
  std::string_view rest = raw_path.substr(1);
  if (!rest.empty()) {
    for (;;) {
      const std::size_t slash = rest.find('/');
      std::string seg;
      if (!percent_decode(rest.substr(0, slash), false, seg)) {
        return false;
      }
      out.segments.push_back(std::move(seg));
      if (slash == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(slash + 1);
    }
  }

  out.query.clear();
  while (!raw_query.empty()) {
    const std::size_t amp = raw_query.find('&');
    const std::string_view pair = raw_query.substr(0, amp);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      std::string key;
      std::string val;
      if (!percent_decode(pair.substr(0, eq), true, key)) {
        return false;
      }
      if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), true, val)) {
        return false;
      }
      out.query.emplace(std::move(key), std::move(val));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    raw_query.remove_prefix(amp + 1);
  }
  return true;
}

namespace detail {

void configure_parser(beast_parser& p, const server_options& opts) {
  p.body_limit(static_cast<std::uint64_t>(opts.body_limit));
  p.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(opts.header_limit, std::numeric_limits<std::uint32_t>::max())));
}

std::optional<http_response> check_header(const beast_request& header, const server_options& opts) {
  if (to_std(header.target()).size() > opts.target_limit) {
    return error_response(414, "too_large",
                          "request target longer than " + std::to_string(opts.target_limit) +
                              " bytes");
  }
  // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host (HTTP/1.0 needs none).
  const std::size_t hosts = header.count(http::field::host);
  if (header.version() >= 11 && hosts == 0) {
    return error_response(400, "bad_request", "an HTTP/1.1 request needs a Host header");
  }
  if (hosts > 1) {
    return error_response(400, "bad_request", "more than one Host header");
  }
  // RFC 9112 6.1: any other transfer coding leaves the body's length unknown to this server
  // (and to whatever stands in front of it: request smuggling); HTTP/1.0 has no transfer
  // codings at all.
  const std::size_t codings = header.count(http::field::transfer_encoding);
  if (codings > 0) {
    if (header.version() < 11) {
      return error_response(400, "bad_request", "Transfer-Encoding is not allowed in HTTP/1.0");
    }
    // Beast has trimmed the value; coding names are case-insensitive.
    if (codings > 1 || !boost::beast::iequals(header[http::field::transfer_encoding], "chunked")) {
      return error_response(400, "bad_request",
                            "Transfer-Encoding must be exactly \"chunked\" when present");
    }
  }
  return std::nullopt;
}

http_response parse_error_response(const boost::system::error_code& ec, std::string_view buffered,
                                   const server_options& opts) {
  if (ec == http::error::body_limit) {
    return error_response(413, "too_large",
                          "request body larger than " + std::to_string(opts.body_limit) + " bytes");
  }
  if (ec == http::error::header_limit) {
    // Beast parses the request line before the fields and drops it from the input once it is
    // whole, so `buffered` begins either with the (over-long) request line or with the fields.
    // A request line's method has no ':' (a field name does): then the URL is the problem.
    const std::string_view line = buffered.substr(0, buffered.find('\n'));
    const std::size_t sp = line.find(' ');
    if (sp != std::string_view::npos && sp > 0 &&
        line.substr(0, sp).find(':') == std::string_view::npos) {
      const std::string_view target = line.substr(sp + 1);
      const std::size_t end = target.find(' ');
      if ((end == std::string_view::npos ? target.size() : end) > opts.target_limit) {
        return error_response(414, "too_large",
                              "request target longer than " + std::to_string(opts.target_limit) +
                                  " bytes");
      }
    }
    return error_response(431, "too_large",
                          "request header larger than " + std::to_string(opts.header_limit) +
                              " bytes");
  }
  return error_response(400, "bad_request", "malformed HTTP request: " + ec.message());
}

std::variant<http_request, http_response> to_request(beast_request&& msg) {
  http_request r;
  r.method = std::string(to_std(msg.method_string()));
  if (!decode_target(to_std(msg.target()), r)) {
    return error_response(400, "bad_request", "malformed request target");
  }
  // Beast keeps fields in the order received: repeated lines join in that order, so that e.g.
  // X-Forwarded-For reads left to right across lines as within one. An empty line adds nothing.
  for (const auto& field : msg) {
    std::string name = to_lower(to_std(field.name_string()));
    const std::string_view value = to_std(field.value());
    auto [it, inserted] = r.headers.emplace(std::move(name), std::string(value));
    if (!inserted && !value.empty()) {
      if (!it->second.empty()) {
        it->second += ", ";
      }
      it->second += value;
    }
  }
  r.keep_alive = msg.keep_alive();
  r.body = std::move(msg.body());
  return r;
}

} // namespace detail

std::variant<http_request, http_response> parse_request(std::string_view raw,
                                                        const server_options& limits) {
  detail::beast_parser p;
  detail::configure_parser(p, limits);
  p.eager(true);
  boost::beast::error_code ec;
  std::size_t consumed = 0;
  bool header_checked = false;
  while (!p.is_done()) {
    const std::size_t n =
        p.put(boost::asio::const_buffer(raw.data() + consumed, raw.size() - consumed), ec);
    consumed += n;
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0 || consumed >= raw.size()) {
        break;
      }
      continue;
    }
    if (ec) {
      return detail::parse_error_response(ec, raw.substr(consumed), limits);
    }
    if (!header_checked && p.is_header_done()) {
      header_checked = true;
      if (auto r = detail::check_header(p.get(), limits)) {
        return std::move(*r);
      }
    }
    if (n == 0) {
      break;
    }
  }
  if (!header_checked && p.is_header_done()) {
    if (auto r = detail::check_header(p.get(), limits)) {
      return std::move(*r);
    }
  }
  if (!p.is_done()) {
    return error_response(400, "bad_request", "incomplete HTTP request");
  }
  return detail::to_request(p.release());
}

} // namespace surge::net
