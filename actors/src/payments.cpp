#include "surge/actors/payments.hpp"

#include <iterator>

#include "surge/config/names.hpp"

namespace surge::actors {

const char* to_string(charge_status x) {
  static constexpr const char* names[] = {"approved", "declined", "failed", "unknown",
                                          "requires_action"};
  static_assert(std::size(names) ==
                config::count_of(charge_status::approved, charge_status::requires_action));
  return config::name_of(x, names, "?");
}

const char* to_string(refund_status x) {
  static constexpr const char* names[] = {"refunded", "rejected", "unknown"};
  static_assert(std::size(names) ==
                config::count_of(refund_status::refunded, refund_status::unknown));
  return config::name_of(x, names, "?");
}

const char* to_string(funds x) {
  static constexpr const char* names[] = {"captured", "authorized", "voided"};
  static_assert(std::size(names) == config::count_of(funds::captured, funds::voided));
  return config::name_of(x, names, "?");
}

const char* to_string(settle_status x) {
  static constexpr const char* names[] = {"done", "rejected", "unknown"};
  static_assert(std::size(names) == config::count_of(settle_status::done, settle_status::unknown));
  return config::name_of(x, names, "?");
}

} // namespace surge::actors
