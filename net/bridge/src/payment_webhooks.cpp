// POST /api/v1/payments/{gateway}/webhook: a gateway tells Surge that something happened to a
// charge (net/payments/webhook.hpp has the signature schemes). A verified event wakes the order
// it names (reconcile_atom, on whichever node owns it), which settles itself by asking the
// gateway: the event is a hint, never the source of truth, so it may come before, after or
// instead of the synchronous answer, and twice.

#include <chrono>

#include <caf/send.hpp>

#include "errors.hpp"
#include "handlers.hpp"
#include "surge/config/log.hpp"
#include "surge/net/payments/webhook.hpp"

namespace surge::net::bridge {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("payments");
  return lg;
}

/// An order id as id_keys::order_id_for makes them: "o_" + 32 lower-case hex digits.
bool order_id_shape(std::string_view s) {
  return s.size() == 34 && s.starts_with("o_") &&
         s.substr(2).find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

void payment_webhook(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                     responder r) {
  const std::string& gateway = p[0];
  const auto ep = env->webhooks.find(gateway);
  if (ep == env->webhooks.end()) {
    return r(not_found("no webhooks are taken from gateway '" + gateway +
                       "' (payments.webhook_secrets)"));
  }
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  auto read = payments::read_webhook(ep->second, req.header("stripe-signature").value_or(""),
                                     req.body, now_s, env->webhook_tolerance);
  if (const auto* no = std::get_if<payments::webhook_refusal>(&read)) {
    logger()->warn("webhook from {} refused: {} (from {})", gateway, no->message,
                   req.peer.to_string());
    if (no->why == payments::webhook_failure::malformed) {
      return r(bad_request(no->message));
    }
    return r(error_response(401, "unauthorized", "webhook from " + gateway + ": " + no->message));
  }
  std::size_t woken = 0;
  for (const auto& e : std::get<std::vector<payments::webhook_event>>(read)) {
    std::string order = e.order_id;
    if (order.empty() && !e.idempotency_key.empty()) {
      order = env->ids->order_id_for(e.idempotency_key);
    }
    if (!order_id_shape(order)) {
      // Authentic, but not about one of Surge's checkouts (another system's charge on the same
      // account, or an operator's refund, whose own call records its outcome).
      logger()->info("webhook from {}: {} {} (charge {}) names no order; acknowledged", gateway,
                     e.type, e.id, e.charge_id.empty() ? "-" : e.charge_id);
      continue;
    }
    logger()->info("webhook from {}: {} {} (charge {}): settling order {}", gateway, e.type, e.id,
                   e.charge_id.empty() ? "-" : e.charge_id, order);
    caf::anon_send(env->orders->acquire(order), actors::reconcile_atom::value);
    ++woken;
  }
  if (ep->second.kind == payments::gateway_kind::json) {
    http_response ok; // what that style's gateways wait for
    ok.content_type = "text/plain";
    ok.body = "[accepted]";
    return r(std::move(ok));
  }
  r(json_response(200, "{\"received\":true,\"orders\":" + std::to_string(woken) + "}"));
}

} // namespace surge::net::bridge
