#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "surge/actors/cart.hpp"
#include "surge/actors/directory.hpp"
#include "surge/actors/env.hpp"
#include "surge/actors/messages.hpp"
#include "surge/actors/placement.hpp"
#include "surge/actors/sku.hpp"

namespace surge::actors {

/// The order actor `order:<id>`, where the id derives from the checkout's idempotency key
/// under the server's secret (id_keys::order_id_for), so that every retry of a checkout meets the
/// same actor and row.
///
///   (checkout_atom, checkout_request) -> order_view   pay for the cart and turn holds into sales
///   (get_atom, principal)             -> order_view
///   (refund_atom, order_refund_request) -> refund_view an operator's refund (order_model.hpp):
///                                                     refunded, or pending when the gateway's
///                                                     answer is unknown; not_refundable,
///                                                     idempotency_conflict, not_found, unavailable
///   (reconcile_atom)                                  settle an order left pending or paid, or
///                                                     whose refund is pending
///
/// Checkout: the order claims the cart (from then on the cart's lines cannot change) and reads
/// its lines and hold ids; the order (pending) with its lines is written to PostgreSQL; the
/// payment service charges the key (no stock is locked meanwhile: the holds already reserve
/// it); each hold is confirmed in its SKU actor for exactly the order's quantity (journaled:
/// held -> sold; retry-safe); the order becomes confirmed together with its payment and an
/// outbox event in one transaction; the cart drops the sold lines, which ends the claim. A
/// crash in between leaves the order pending, and the reconciler settles it by looking the
/// charge up by its key.
///
/// The cart stays claimed while a charge may stand; it is given back when the checkout ends
/// without one: declined, gateways unavailable (nothing charged), refused before the charge
/// (empty cart, hold expired, currency mismatch), or cancelled and refunded.
///
/// Paid but not fulfillable (a hold expired, or is no longer what the order bought): the lines
/// already sold go back to stock, the order is stored cancelled (reason hold_expired) with its
/// refund pending, the gateway that took the charge is asked to refund it (idempotent by a key
/// derived from the order's), and only then is the shopper answered hold_expired; a refund whose
/// outcome is unknown stays pending and the reconciler asks again.
///
/// Idempotency: the same key again gets the same order (waiting for it while it is under way);
/// the same key for another cart or payment method: idempotency_conflict; a retry of a checkout
/// that charged nothing pays only if the cart still holds exactly the order's lines. Customers:
/// when customers are verified, a customer's order answers not_found to anyone else. Errors:
/// not_found (no cart), empty_cart, hold_expired (before anything is charged, or after a
/// refund), currency_mismatch, conflict (another checkout holds the cart), payment_declined
/// (the cart and holds stay), unavailable (gateways or storage down: retry with the same key; a
/// charge whose outcome is unknown is settled later by lookup, never charged twice).
///
/// The decisions above are order_model's (order_model.hpp); the actor runs its effects and
/// feeds their answers back, one step at a time. Requests that arrive while a step is under
/// way wait for its answer.
///
/// Lifecycle: spawned by the order directory on first use; loads its row from the order store
/// (on the `orders` pool), holding back checkouts and reads until then (a reconcile arriving
/// meanwhile is decided once the order is loaded); a failed load or a failed
/// store quits, so that the next incarnation reloads what PostgreSQL has; passivates after
/// `idle_timeout` when no step is under way. (handoff_atom, true): finish the step under way,
/// then passivate (the next owner loads the row and resumes); (handoff_atom, false): quit at
/// once.
using order_actor =
    caf::typed_actor<caf::replies_to<checkout_atom, checkout_request>::with<order_view>,
                     caf::replies_to<caf::get_atom, std::string>::with<order_view>,
                     caf::replies_to<refund_atom, order_refund_request>::with<refund_view>,
                     caf::reacts_to<reconcile_atom>, caf::reacts_to<handoff_atom, bool>>;

using order_directory = directory<order_actor>;

/// What an order actor reaches: the other entities' directories. Outlives every order actor.
struct order_links {
  order_directory* orders = nullptr;
  cart_directory* carts = nullptr;
  sku_directory* skus = nullptr;
};

/// `fence`: the lease the incarnation acts under; its payment calls are only sent while this
/// node still holds that lease with entity_options::payment_lease_margin to spare
/// (charge_request::may_send).
order_actor spawn_order(caf::actor_system& sys, const std::string& order_id,
                        std::shared_ptr<const entity_env> env, order_links links,
                        entity_fence fence = {});

} // namespace surge::actors
