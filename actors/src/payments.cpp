#include "surge/actors/payments.hpp"

namespace surge::actors {

const char* to_string(charge_status x) {
  switch (x) {
  case charge_status::approved:
    return "approved";
  case charge_status::declined:
    return "declined";
  case charge_status::failed:
    return "failed";
  case charge_status::unknown:
    return "unknown";
  }
  return "?";
}

const char* to_string(refund_status x) {
  switch (x) {
  case refund_status::refunded:
    return "refunded";
  case refund_status::rejected:
    return "rejected";
  case refund_status::unknown:
    return "unknown";
  }
  return "?";
}

} // namespace surge::actors
