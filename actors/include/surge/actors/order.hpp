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
/// (order_id_for), so that every retry of a checkout meets the same actor and row.
///
///   (checkout_atom, checkout_request) -> order_view   pay for the cart and turn holds into sales
///   (get_atom)                        -> order_view
///   (reconcile_atom)                                  settle an order left pending or paid
///
/// Checkout: the cart's lines and hold ids are read from the cart actor; the order (pending) with
/// its lines is written to PostgreSQL; the payment service charges the key (no stock is locked
/// meanwhile: the holds already reserve it); each hold is confirmed in its SKU actor (journaled:
/// held -> sold; retry-safe); the order becomes confirmed together with its payment and an
/// outbox event in one transaction; the cart drops the sold lines. A crash in between leaves the
/// order pending, and the reconciler settles it by looking the charge up by its key.
///
/// Idempotency: the same key again gets the same order (waiting for it while it is under way);
/// the same key for another cart or payment method: idempotency_conflict. Errors: not_found
/// (no cart), empty_cart, hold_expired (before anything is charged), payment_declined (the cart
/// and holds stay), unavailable (gateways or storage down: retry with the same key; a charge
/// whose outcome is unknown is settled later by lookup, never charged twice).
using order_actor =
    caf::typed_actor<caf::replies_to<checkout_atom, checkout_request>::with<order_view>,
                     caf::replies_to<caf::get_atom>::with<order_view>,
                     caf::reacts_to<reconcile_atom>, caf::reacts_to<handoff_atom, bool>>;

using order_directory = directory<order_actor>;

/// The order id of an idempotency key: "o_" + 32 hex digits of a 128-bit hash of the key.
std::string order_id_for(const std::string& idempotency_key);

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
