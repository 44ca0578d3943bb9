#pragma once

#include <string_view>
#include <variant>

#include "surge/net/http.hpp"

namespace surge::net {

/// Parses one whole HTTP/1.1 request from `raw` with the same Beast parser configuration and
/// the same limits the server uses. Returns the request, or the error response the server would
/// send (400, 413, 414, 431). Used by the fuzz target and tests; the server shares its pieces.
std::variant<http_request, http_response> parse_request(std::string_view raw,
                                                        const server_options& limits);

/// Splits and percent-decodes a request target into path, segments and query.
/// Returns false (and leaves `out` unspecified) for a malformed target: bad percent escape,
/// invalid UTF-8 after decoding, a NUL byte, or not starting with '/'.
bool decode_target(std::string_view target, http_request& out);

} // namespace surge::net
