#pragma once

// The customer a storefront request acts for (private to the bridge). API.md "Customer tokens".

#include <string>
#include <utility>
#include <variant>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// Who is asking: the verified customer of the request's bearer token, "" without one, or the
/// 401 to answer (malformed Authorization, a token that does not verify). Only routes that act
/// for a customer ask; without auth.* nothing is verified and every request is anonymous here
/// (the body's customer_id is trusted instead). Thread-safe; does not block.
std::variant<std::string, http_response> principal_of(const bridge_env& env,
                                                      const http_request& req);

/// Runs `f(principal)` for a request that acts for a customer, or answers its 401 through `r`.
template <class F>
void as_customer(const bridge_env& env, const http_request& req, responder& r, F f) {
  auto who = principal_of(env, req);
  if (auto* resp = std::get_if<http_response>(&who)) {
    return r(std::move(*resp));
  }
  f(std::move(std::get<std::string>(who)));
}

} // namespace surge::net::bridge
