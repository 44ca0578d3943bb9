// Checkout and orders: POST /api/v1/carts/{cart_id}/checkout (Idempotency-Key),
// GET /api/v1/orders/{order_id} and GET /api/v1/orders/{order_id}/return (where a gateway sends
// the shopper back after 3-D Secure), on the order actors.

#include <string>
#include <variant>

#include <caf/send.hpp>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "principal.hpp"
#include "surge/actors/ids.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

http_response checkout_answer(actors::order_view& o) {
  // 202: the shopper must authenticate (3-D Secure) at the order's action URL first.
  return json_response(o.status == "requires_action" ? 202 : 201, order_json(o));
}

} // namespace

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
    call<actors::order_view>(
        *env, env->orders->acquire_routed(env->ids->order_id_for(cr.idempotency_key)), std::move(r),
        checkout_answer, actors::checkout_atom::value, cr);
  });
}

void order_return(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                  responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such order"));
  }
  // The order asks its gateway how the authentication ended (as a gateway's webhook makes it
  // do); the shopper's page then follows the order (GET /api/v1/orders/{order_id}).
  as_customer(*env, req, r, [&](std::string principal) {
    caf::anon_send(env->orders->acquire(p[0]), actors::reconcile_atom::value);
    call<actors::order_view>(*env, env->orders->acquire_routed(p[0]), std::move(r),
                             answer(200, order_json), caf::get_atom::value, std::move(principal));
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
