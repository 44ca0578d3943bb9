#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include "surge/persistence/errors.hpp"

namespace surge::actors {

/// Outcomes of entity commands that are not success. The HTTP bridge maps each to API.md's
/// status and code; nothing else is sent to shoppers.
enum class errc : uint8_t {
  not_found = 1,        ///< unknown SKU, cart or hold (404 not_found)
  sold_out,             ///< not enough available stock (409 sold_out)
  limit_exceeded,       ///< the per-customer limit would be broken (409 limit_exceeded)
  conflict,             ///< e.g. stock set below held + sold (409 conflict)
  invalid,              ///< a command's argument is out of range (400 bad_request)
  unavailable,          ///< storage failed; nothing was acknowledged (503 unavailable)
  payment_declined,     ///< the gateway declined the card (402 payment_declined)
  hold_expired,         ///< a cart hold ran out before checkout (409 hold_expired)
  empty_cart,           ///< checkout of a cart without lines (409 empty_cart)
  idempotency_conflict, ///< a key reused for another cart or body (422 idempotency_conflict)
  checkout_in_progress, ///< the cart's lines are claimed by a running checkout (409)
  currency_mismatch,    ///< an item in another currency than the cart's (409 currency_mismatch)
  login_required,       ///< a per-customer limit needs a verified customer (401 login_required)
  not_refundable,       ///< an order not paid, nothing left, or more of a line than is left (409)
  sale_not_started,     ///< a sale SKU added to a cart before the sale's start (409)
  sale_ended,           ///< a sale SKU added to a cart after the sale's end, or a queue
                        ///< joined after it (409)
  queue_required,       ///< a sale SKU without a valid pass while its queue is on (403)
  payment_unavailable,  ///< no gateway took the charge or said what became of it; nothing was
                        ///< acknowledged (503 unavailable, Surge-Error-Cause: payment)
};

constexpr caf::atom_value error_category = caf::atom("surge");

const char* to_string(errc x);

/// The CAF category of entity errors; see persistence::make_error() and persistence::is().
constexpr caf::atom_value category_of(errc) {
  return error_category;
}

using persistence::is;
using persistence::make_error;

/// The human message carried by an error made with make_error, or "".
std::string message_of(const caf::error& err);

} // namespace surge::actors
