#pragma once

// The bridge's responses in API.md's shapes (private to the bridge; to_http_error is public, in
// bridge.hpp).

#include <string>

#include <caf/error.hpp>
#include <string_view>

#include "surge/net/http.hpp"

namespace surge::net::bridge {

/// `status` with a JSON `body` made by encode.hpp.
http_response json_response(int status, std::string body);

/// 400 bad_request with `msg`.
http_response bad_request(std::string_view msg);

/// 404 not_found with `msg`.
http_response not_found(std::string_view msg);

/// What to_http_error() answers for an error: status, API.md code and message.
struct api_error {
  int status = 503;
  std::string code;
  std::string message;
  std::string cause; ///< header Surge-Error-Cause: "payment" when the gateways failed, else empty
};

api_error api_error_of(const caf::error& err);

} // namespace surge::net::bridge
