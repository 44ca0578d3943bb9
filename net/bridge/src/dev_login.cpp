// POST /api/v1/dev/login (auth.dev_login): a customer token for whoever asks, for development
// and demos. The route exists only when the node was started with auth.dev_login=true (which
// requires auth.jwt_secret, checked at load); the token is minted as `surgectl token` mints it.

#include <chrono>
#include <string>
#include <variant>

#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "surge/net/json_writer.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

void dev_login(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&, responder r) {
  auto body = object_body(req, false, r);
  if (!body) {
    return;
  }
  std::string err;
  auto customer = string_field(*body, "customer_id", 128, true, "", err);
  if (!customer) {
    return r(bad_request(err));
  }
  if (customer->empty() || !valid_customer(*customer)) {
    return r(bad_request("'customer_id' must be 1 to 128 letters, digits or ._@+-"));
  }
  const auto& keys = *env->dev_login;
  const auto now = std::chrono::system_clock::now();
  token_claims claims{
      .subject = *customer, .ttl = dev_login_ttl, .issuer = keys.issuer, .audience = keys.audience};
  auto token = mint_hs256_token(keys.secret, claims, now);
  if (auto* e = std::get_if<auth_error>(&token)) {
    // Unreachable with a valid id and the secret the verifier accepted at start.
    return r(error_response(500, "internal", e->message));
  }
  // The token's "exp": whole seconds, as mint_hs256_token counts them.
  const auto exp = std::chrono::floor<std::chrono::seconds>(now) + dev_login_ttl;
  json::writer w{std::get<std::string>(token).size() + 128};
  w.begin_object()
      .member("token", std::get<std::string>(token))
      .member("customer_id", *customer)
      .member("expires_at", rfc3339_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           exp.time_since_epoch())
                                           .count()));
  r(json_response(200, w.end_object().take()));
}

} // namespace surge::net::bridge
