// Carts: POST /api/v1/carts, GET /api/v1/carts/{cart_id}, PUT and DELETE
// /api/v1/carts/{cart_id}/items/{sku}, on the cart actors, for the request's customer.

#include <algorithm>
#include <optional>
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

/// The Surge-Pass header (a waiting-room pass, API.md "Sales and the waiting room"), or "" when
/// there is none or it is too long to be one. The cart opens and checks it.
std::string pass_of(const http_request& req) {
  constexpr std::size_t max_pass = 512;
  auto h = req.header("surge-pass");
  return h && h->size() <= max_pass ? std::string{*h} : std::string{};
}

/// The pass `token` when it verifies (any expiry: the cart judges that) and names a sale of this
/// node's index that has `sku`: whose queue to tell that the pass took stock. Else nullopt.
std::optional<actors::sale_pass> used_pass(const bridge_env& env, const std::string& token,
                                           const std::string& sku) {
  if (token.empty() || !env.ids || !env.sales || env.sale_queues == nullptr) {
    return std::nullopt;
  }
  auto pass = env.ids->open_pass(token);
  if (!pass) {
    return std::nullopt;
  }
  auto sale = env.sales->find(pass->sale_id);
  if (!sale || std::find(sale->skus.begin(), sale->skus.end(), sku) == sale->skus.end()) {
    return std::nullopt;
  }
  return pass;
}

} // namespace

void create_cart(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&, responder r) {
  auto who = principal_of(*env, req);
  if (auto* resp = std::get_if<http_response>(&who)) {
    return r(std::move(*resp));
  }
  const auto& principal = std::get<std::string>(who);
  auto body = object_body(req, true, r);
  if (!body) {
    return;
  }
  std::string err;
  auto customer = string_field(*body, "customer_id", 128, false, "", err);
  if (!customer) {
    return r(bad_request(err));
  }
  if (!customer->empty() && !valid_customer(*customer)) {
    return r(bad_request("'customer_id' may hold only letters, digits and ._@+-"));
  }
  if (env->customers && env->customers->enabled()) {
    // Customers are verified: the token says who the cart is for, never the body.
    if (principal.empty() && !customer->empty()) {
      return r(error_response(401, "login_required",
                              "a cart for a customer needs that customer's token "
                              "(Authorization: Bearer)"));
    }
    if (!principal.empty() && !customer->empty() && *customer != principal) {
      return r(error_response(403, "forbidden", "'customer_id' is not the token's customer"));
    }
    *customer = principal;
  }
  call<actors::cart_view>(*env, env->carts->acquire_routed(actors::random_id("c_")), std::move(r),
                          answer(201, cart_json), actors::create_atom::value, *customer);
}

void get_cart(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::cart_view>(*env, env->carts->acquire_routed(p[0]), std::move(r),
                            answer(200, cart_json), caf::get_atom::value, std::move(principal));
  });
}

void put_item(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  if (!valid_sku(p[1])) {
    return r(not_found("no such product"));
  }
  auto body = object_body(req, false, r);
  if (!body) {
    return;
  }
  std::string err;
  auto qty = int_field(*body, "qty", 0, max_qty, true, 0, err);
  if (!qty) {
    return r(bad_request(err));
  }
  auto pass = pass_of(req);
  auto opened = *qty > 0 ? used_pass(*env, pass, p[1]) : std::nullopt;
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::cart_view>(
        *env, env->carts->acquire_routed(p[0]), std::move(r),
        [env, opened = std::move(opened)](actors::cart_view& c) {
          if (opened && opened->customer_id == c.customer_id) {
            // The line now holds stock on this pass: its queue need not keep stock for it.
            caf::anon_send(env->sale_queues->acquire(opened->sale_id), actors::used_atom::value,
                           opened->ticket);
          }
          return json_response(200, cart_json(c));
        },
        actors::item_atom::value, p[1], *qty, false, std::move(principal), call_deadline(*env),
        req.request_id, std::move(pass));
  });
}

void delete_item(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                 responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  if (!valid_sku(p[1])) {
    return r(not_found("no such product"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::cart_view>(*env, env->carts->acquire_routed(p[0]), std::move(r),
                            answer(200, cart_json), actors::item_atom::value, p[1], int64_t{0},
                            true, std::move(principal), call_deadline(*env), req.request_id,
                            std::string{});
  });
}

} // namespace surge::net::bridge
