#pragma once

// Pieces of request parsing shared by parse_request() and the server, so that both apply the
// same Beast configuration and map errors the same way. Internal to surge_net_http.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <string_view>
#include <system_error>
#include <variant>

#include "surge/net/http.hpp"

namespace surge::net::detail {

/// Beast's string_view (boost::string_view in 1.74) as a std::string_view.
inline std::string_view to_std(boost::beast::string_view s) {
  return {s.data(), s.size()};
}

using beast_request = boost::beast::http::request<boost::beast::http::string_body>;
using beast_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// Applies `opts`' body and header limits to a freshly constructed parser.
void configure_parser(beast_parser& p, const server_options& opts);

/// After the header is parsed: the 414 response when the target is longer than allowed.
std::optional<http_response> check_header(const beast_request& header, const server_options& opts);

/// The response for a parse error `ec`. `buffered` is the unparsed input seen so far: when the
/// header limit is hit while still inside an over-long request line, the answer is 414 rather
/// than 431.
http_response parse_error_response(const boost::system::error_code& ec, std::string_view buffered,
                                   const server_options& opts);

/// Converts a complete Beast request into an http_request, or the 400 response for a malformed
/// target.
std::variant<http_request, http_response> to_request(beast_request&& msg);

} // namespace surge::net::detail
