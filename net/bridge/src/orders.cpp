// Checkout and orders: POST /api/v1/carts/{cart_id}/checkout (Idempotency-Key) and
// GET /api/v1/orders/{order_id}, on the order actors.

#include <string>
#include <variant>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "principal.hpp"
#include "surge/actors/ids.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

void checkout(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  auto key = idempotency_key(req, r);
  if (!key) {
    return;
  }
  auto body = object_body(req, false, r);
  if (!body) {
    return;
  }
  const json::value* payment = body->find("payment");
  if (payment == nullptr || !payment->is_object()) {
    return r(bad_request("'payment' must be an object with 'method' and 'token'"));
  }
  std::string err;
  auto method = string_field(*payment, "method", 32, true, "", err);
  auto token = method ? string_field(*payment, "token", 200, true, "", err) : std::nullopt;
  if (!token) {
    return r(bad_request("payment." + err.substr(0)));
  }
  if (*method != "card") {
    return r(bad_request("payment.method must be \"card\""));
  }
  if (token->empty()) {
    return r(bad_request("payment.token must not be empty"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    actors::checkout_request cr{
        std::string{*key},   p[0],          *method, *token, std::move(principal),
        call_deadline(*env), req.request_id};
    call<actors::order_view>(*env, env->orders->acquire_routed(env->ids->order_id_for(cr.idempotency_key)),
                             std::move(r), answer(201, order_json), actors::checkout_atom::value,
                             cr);
  });
}

void get_order(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such order"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::order_view>(*env, env->orders->acquire_routed(p[0]), std::move(r),
                             answer(200, order_json), caf::get_atom::value, std::move(principal));
  });
}

} // namespace surge::net::bridge
