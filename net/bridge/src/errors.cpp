#include "errors.hpp"

#include "surge/actors/errors.hpp"
#include "surge/net/bridge.hpp"

namespace surge::net {

namespace bridge {

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_response bad_request(std::string_view msg) {
  return error_response(400, "bad_request", msg);
}

http_response not_found(std::string_view msg) {
  return error_response(404, "not_found", msg);
}

} // namespace bridge

namespace {

/// How an entity's error answers: status, API.md code, the message when it carries none, and
/// the outside service whose failure it is (header Surge-Error-Cause), if any.
struct error_mapping {
  actors::errc code;
  int status;
  const char* name;
  const char* fallback;
  const char* cause = "";
};

constexpr error_mapping error_mappings[] = {
    {actors::errc::not_found, 404, "not_found", "not found"},
    {actors::errc::sold_out, 409, "sold_out", "sold out"},
    {actors::errc::limit_exceeded, 409, "limit_exceeded", "limit exceeded"},
    {actors::errc::conflict, 409, "conflict", "conflict"},
    {actors::errc::invalid, 400, "bad_request", "invalid request"},
    {actors::errc::payment_declined, 402, "payment_declined", "payment declined"},
    {actors::errc::hold_expired, 409, "hold_expired", "a hold expired"},
    {actors::errc::empty_cart, 409, "empty_cart", "the cart is empty"},
    {actors::errc::idempotency_conflict, 422, "idempotency_conflict",
     "the key was used for another request"},
    {actors::errc::checkout_in_progress, 409, "checkout_in_progress",
     "a checkout of this cart is under way"},
    {actors::errc::currency_mismatch, 409, "currency_mismatch", "the cart is in another currency"},
    {actors::errc::login_required, 401, "login_required", "sign in first"},
    {actors::errc::not_refundable, 409, "not_refundable", "nothing of this order can be refunded"},
    {actors::errc::sale_not_started, 409, "sale_not_started", "the sale has not started yet"},
    {actors::errc::sale_ended, 409, "sale_ended", "the sale has ended"},
    {actors::errc::queue_required, 403, "queue_required",
     "this sale admits shoppers through its queue: join it and send the pass (Surge-Pass)"},
    {actors::errc::payment_unavailable, 503, "unavailable",
     "the payment gateways were unavailable; retry with the same key", "payment"},
};

} // namespace

bridge::api_error bridge::api_error_of(const caf::error& err) {
  if (err.category() == actors::error_category) {
    for (const auto& m : error_mappings) {
      if (err.code() == static_cast<uint8_t>(m.code)) {
        auto msg = actors::message_of(err);
        return {m.status, m.name, msg.empty() ? m.fallback : msg, m.cause};
      }
    }
  }
  // Storage failures, timeouts, entities that went away (errc::unavailable and anything not
  // above): nothing was acknowledged, and the client may retry.
  return {503, "unavailable", "temporarily unavailable, retry shortly", {}};
}

http_response to_http_error(const caf::error& err) {
  auto e = bridge::api_error_of(err);
  auto resp = error_response(e.status, e.code, e.message);
  if (e.status == 503) {
    resp.headers.emplace_back("Retry-After", "1");
  }
  if (!e.cause.empty()) {
    // The body keeps API.md's shape; the header tells clients and load tools what failed.
    resp.headers.emplace_back("Surge-Error-Cause", e.cause);
  }
  return resp;
}

} // namespace surge::net
