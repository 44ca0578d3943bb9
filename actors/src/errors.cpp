#include "surge/actors/errors.hpp"

#include <iterator>

#include "surge/config/names.hpp"

namespace surge::actors {

const char* to_string(errc x) {
  static constexpr const char* names[] = {"not_found",
                                          "sold_out",
                                          "limit_exceeded",
                                          "conflict",
                                          "invalid",
                                          "unavailable",
                                          "payment_declined",
                                          "hold_expired",
                                          "empty_cart",
                                          "idempotency_conflict",
                                          "checkout_in_progress",
                                          "currency_mismatch",
                                          "login_required",
                                          "not_refundable",
                                          "sale_not_started",
                                          "sale_ended",
                                          "queue_required",
                                          "payment_unavailable"};
  static_assert(std::size(names) == config::count_of(errc::not_found, errc::payment_unavailable));
  return config::name_of(x, names, "unknown", errc::not_found);
}

std::string message_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    return ctx.get_as<std::string>(0);
  }
  return {};
}

} // namespace surge::actors
