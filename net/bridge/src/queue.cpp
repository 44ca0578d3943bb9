// The waiting room on the storefront port: POST /api/v1/sales/{sale_id}/queue (join) and GET
// /api/v1/sales/{sale_id}/queue/{ticket}, answered by the sale's actor (sale.hpp) wherever it
// lives. The stream of a ticket is queue_stream.cpp's.

#include <string>
#include <variant>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "principal.hpp"
#include "surge/actors/deadline.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

std::optional<http_response> find_queue(const bridge_env& env, const std::string& sale_id,
                                        const std::string* ticket) {
  if (!valid_sale_id(sale_id) || (ticket != nullptr && !valid_ticket(*ticket))) {
    return not_found(ticket != nullptr ? "no such ticket" : "no such sale");
  }
  if (env.sale_queues == nullptr) {
    auto resp = error_response(503, "unavailable", "this node has no waiting rooms");
    resp.headers.emplace_back("Retry-After", "1");
    return resp;
  }
  if (!env.sales || !env.sales->find(sale_id)) {
    return not_found("no such sale: " + sale_id);
  }
  // A forged or mangled ticket is known by its MAC, without asking the queue.
  if (ticket != nullptr && (!env.ids || !env.ids->ticket_seq(sale_id, *ticket))) {
    return not_found("no such ticket");
  }
  return std::nullopt;
}

void join_queue(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p, responder r) {
  if (auto refused = find_queue(*env, p[0], nullptr)) {
    return r(std::move(*refused));
  }
  const auto sale = env->sales->find(p[0]);
  if (!sale->queue_enabled) {
    return r(error_response(409, "conflict", "the sale " + p[0] + " has no waiting room"));
  }
  if (actors::system_now_ms() >= sale->ends_at_ms) {
    return r(error_response(409, "sale_ended", "the sale " + p[0] + " has ended"));
  }
  auto who = principal_of(*env, req);
  if (auto* resp = std::get_if<http_response>(&who)) {
    return r(std::move(*resp));
  }
  auto customer = std::move(std::get<std::string>(who));
  const bool verified = env->customers && env->customers->enabled();
  auto body = object_body(req, verified, r);
  if (!body) {
    return;
  }
  std::string err;
  auto named = string_field(*body, "customer_id", 128, !verified, "", err);
  if (!named) {
    return r(bad_request(err));
  }
  if (verified) {
    if (customer.empty()) {
      return r(error_response(401, "login_required", "sign in to join the queue of a sale"));
    }
    if (!named->empty() && *named != customer) {
      return r(error_response(403, "forbidden", "'customer_id' is not the signed-in customer"));
    }
  } else {
    if (!valid_customer(*named)) {
      return r(bad_request("'customer_id' must be 1 to 128 letters, digits or ._@+-"));
    }
    customer = std::move(*named);
  }
  call<actors::ticket_view>(
      *env, env->sale_queues->acquire_routed(p[0]), std::move(r),
      [](actors::ticket_view& t) { return json_response(t.created ? 201 : 200, ticket_json(t)); },
      actors::join_atom::value, std::move(customer), req.request_id);
}

void get_ticket(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (auto refused = find_queue(*env, p[0], &p[1])) {
    return r(std::move(*refused));
  }
  call<actors::ticket_view>(*env, env->sale_queues->acquire_routed(p[0]), std::move(r),
                            answer(200, ticket_json), caf::get_atom::value, std::move(p[1]));
}

} // namespace surge::net::bridge
