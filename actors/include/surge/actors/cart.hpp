#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "surge/actors/directory.hpp"
#include "surge/actors/env.hpp"
#include "surge/actors/messages.hpp"
#include "surge/actors/sku.hpp"

namespace surge::actors {

/// The cart actor `cart:<id>`: a shopper's lines, each backed by a hold on its SKU.
///
///   (create_atom, customer_id)                    -> cart_view  a new, empty cart (conflict if
///                                                               it exists)
///   (get_atom, principal)                         -> cart_view
///   (item_atom, sku, qty, must_exist, principal, deadline_ms, request_id, pass)
///                                                 -> cart_view  set the line to exactly qty (0
///                                                               removes); must_exist: not_found
///                                                               if no such line; the SKU's
///                                                               answer is awaited until the
///                                                               request's deadline (deadline.hpp);
///                                                               request_id: X-Request-Id (or
///                                                               empty), carried in the log
///                                                               lines of the cart and the SKU;
///                                                               pass: the Surge-Pass header (or
///                                                               empty): when it opens
///                                                               (env.ids), is unexpired and is
///                                                               this cart's customer's, the hold
///                                                               request carries its sale
///                                                               (hold_request::pass_sale)
///   (clear_atom, hold_ids)                        -> cart_view  drops the lines of these holds
///                                                               (sold) and ends the claim
///   (checkout_atom, order_id, begin, principal)   -> cart_view  begin: claims the cart for that
///                                                               order's checkout (conflict while
///                                                               another order's claim stands);
///                                                               !begin: gives the claim back
///
/// Customers: `principal` is the verified customer asking, or empty. When the node verifies
/// customers (entity_options::verify_customers), a customer's cart answers not_found to anyone
/// else; an anonymous cart is usable by whoever has its (unguessable) id.
///
/// Checkout owns the cart: from the claim until the order gives it back or clears it, item
/// commands answer checkout_in_progress and change nothing. The claim is answered only after
/// the hold changes already under way have landed, and it is stored with the cart (Redis), so
/// that it outlives passivation, handover and crashes; it lapses by itself only after every
/// hold it protected has expired (holds.max_lifetime).
///
/// Contract: a line changes only after its SKU actor granted the hold (sold_out,
/// limit_exceeded, currency_mismatch, login_required leave the cart exactly as it was); the
/// cart's currency is its first line's (none while empty); the cart's snapshot is written to
/// Redis before the answer, and changes that arrive while a write is in flight share the next
/// write. not_found: no such cart. unavailable: Redis or the SKU could not be reached.
///
/// Lifecycle: spawned by the cart directory on first use, loads its snapshot from Redis, expires
/// there after `carts_ttl` without changes (`carts_empty_ttl` while it has no lines), passivates
/// after `idle_timeout`. Each hold names its cart in the SKU journal, so a cart lost with Redis
/// costs the shopper a cart, never stock.
using cart_actor = caf::typed_actor<
    caf::replies_to<create_atom, std::string>::with<cart_view>,
    caf::replies_to<caf::get_atom, std::string>::with<cart_view>,
    caf::replies_to<item_atom, std::string, int64_t, bool, std::string, int64_t, std::string,
                    std::string>::with<cart_view>,
    caf::replies_to<clear_atom, std::vector<std::string>>::with<cart_view>,
    caf::replies_to<checkout_atom, std::string, bool, std::string>::with<cart_view>,
    caf::reacts_to<handoff_atom, bool>>;

using cart_directory = directory<cart_actor>;

cart_actor spawn_cart(caf::actor_system& sys, const std::string& cart_id,
                      std::shared_ptr<const entity_env> env, cart_directory* carts,
                      sku_directory* skus);

/// Registers the message types of actors/ with CAF. Call once on the config before the system.
void register_message_types(caf::actor_system_config& cfg);

} // namespace surge::actors
