#include "surge/actors/errors.hpp"

namespace surge::actors {

const char* to_string(errc x) {
  switch (x) {
  case errc::not_found:
    return "not_found";
  case errc::sold_out:
    return "sold_out";
  case errc::limit_exceeded:
    return "limit_exceeded";
  case errc::conflict:
    return "conflict";
  case errc::invalid:
    return "invalid";
  case errc::unavailable:
    return "unavailable";
  case errc::payment_declined:
    return "payment_declined";
  case errc::hold_expired:
    return "hold_expired";
  case errc::empty_cart:
    return "empty_cart";
  case errc::idempotency_conflict:
    return "idempotency_conflict";
  case errc::checkout_in_progress:
    return "checkout_in_progress";
  case errc::currency_mismatch:
    return "currency_mismatch";
  case errc::login_required:
    return "login_required";
  }
  return "unknown";
}

std::string message_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    return ctx.get_as<std::string>(0);
  }
  return {};
}

} // namespace surge::actors
