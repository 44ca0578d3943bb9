#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "surge/persistence/records.hpp"

/// Atoms and plain message types of the entity protocols. Every struct has an inspect() so that
/// it can cross a node boundary (CAF serialization); they are declared in one type-ID block (the
/// end of this file) and registered once at start-up by register_message_types().
namespace surge::actors {

using hold_atom = caf::atom_constant<caf::atom("hold")>;
using confirm_atom = caf::atom_constant<caf::atom("confirm")>;
/// (return_atom, hold_id, order_id): undo the sale of a confirmed hold (its order was cancelled).
using return_atom = caf::atom_constant<caf::atom("return")>;
using stock_atom = caf::atom_constant<caf::atom("stock")>;
using product_atom = caf::atom_constant<caf::atom("product")>;
using create_atom = caf::atom_constant<caf::atom("create")>;
using item_atom = caf::atom_constant<caf::atom("item")>;
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;
using saved_atom = caf::atom_constant<caf::atom("saved")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using checkout_atom = caf::atom_constant<caf::atom("checkout")>;
using clear_atom = caf::atom_constant<caf::atom("clear")>;
using reconcile_atom = caf::atom_constant<caf::atom("reconcile")>;
/// (handoff_atom, graceful): the entity's shard leaves this node (see directory::release_shard).
using handoff_atom = caf::atom_constant<caf::atom("handoff")>;
/// (refund_atom, order_refund_request): an operator's refund of an order (order.hpp).
using refund_atom = caf::atom_constant<caf::atom("refund")>;
/// (route_atom, key, message): a message for entity `key`, forwarded to its owner's gateway.
using route_atom = caf::atom_constant<caf::atom("route")>;
/// Sales (sale.hpp): join a sale's queue, a pass was used, keep a sale warm, the queue's state.
using join_atom = caf::atom_constant<caf::atom("join")>;
using used_atom = caf::atom_constant<caf::atom("used")>;
using warm_atom = caf::atom_constant<caf::atom("warm")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;

/// Set the hold of `cart_id` on a SKU to exactly `qty` (0 releases it).
struct hold_request {
  std::string cart_id;
  std::string customer_id; ///< empty: an anonymous cart
  int64_t qty = 0;
  /// The cart's currency, fixed by its other lines (empty: any); another is currency_mismatch.
  std::string currency = {};
  /// The node verifies customers (auth.*): a SKU with a per-customer limit then refuses
  /// anonymous carts (login_required) instead of limiting each cart on its own.
  bool login_required = false;
  /// X-Request-Id of the HTTP request behind the change (empty: none): the SKU's log lines
  /// while it handles this carry it (log::request_scope), on whichever node it lives.
  std::string request_id = {};
  /// The sale whose waiting-room pass the cart verified for this change (its MAC, expiry and
  /// customer: cart.hpp); empty: none. A SKU in a sale with its queue on grows a hold only with
  /// its sale's id here (else queue_required).
  std::string pass_sale = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hold_request& x) {
  return f(caf::meta::type_name("surge.hold_request"), x.cart_id, x.customer_id, x.qty, x.currency,
           x.login_required, x.request_id, x.pass_sale);
}

/// A hold as the SKU decided it. qty 0: the cart holds nothing of this SKU.
struct hold_view {
  std::string sku;
  std::string hold_id;
  int64_t qty = 0;
  int64_t expires_at_ms = 0;
  int64_t price_cents = 0;
  std::string currency;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hold_view& x) {
  return f(caf::meta::type_name("surge.hold_view"), x.sku, x.hold_id, x.qty, x.expires_at_ms,
           x.price_cents, x.currency);
}

/// Set (`set` = true) or add to a SKU's on_hand.
struct stock_change {
  bool set = true;
  int64_t value = 0;
  std::string request_id = {}; ///< X-Request-Id behind the change (empty: none), for the logs
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stock_change& x) {
  return f(caf::meta::type_name("surge.stock_change"), x.set, x.value, x.request_id);
}

/// API.md's stock object.
struct stock_view {
  std::string sku;
  int64_t on_hand = 0;
  int64_t held = 0;
  int64_t sold = 0;
  int64_t available = 0;
  std::string owner_node;
  uint64_t epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stock_view& x) {
  return f(caf::meta::type_name("surge.stock_view"), x.sku, x.on_hand, x.held, x.sold, x.available,
           x.owner_node, x.epoch);
}

/// API.md's product object: catalog data plus what is available right now.
struct product_view {
  persistence::product_record product;
  int64_t available = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, product_view& x) {
  auto& p = x.product;
  return f(caf::meta::type_name("surge.product_view"), p.sku, p.name, p.description, p.category,
           p.price_cents, p.currency, p.per_customer_limit, x.available);
}

struct cart_line_view {
  std::string sku;
  int64_t qty = 0;
  int64_t price_cents = 0;
  std::string currency;
  std::string hold_id;
  int64_t hold_expires_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cart_line_view& x) {
  return f(caf::meta::type_name("surge.cart_line_view"), x.sku, x.qty, x.price_cents, x.currency,
           x.hold_id, x.hold_expires_at_ms);
}

/// API.md's cart object.
struct cart_view {
  std::string cart_id;
  std::string customer_id;
  std::vector<cart_line_view> items;
  int64_t total_cents = 0;
  std::string currency;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cart_view& x) {
  return f(caf::meta::type_name("surge.cart_view"), x.cart_id, x.customer_id, x.items,
           x.total_cents, x.currency);
}

/// POST /api/v1/carts/{cart_id}/checkout with its Idempotency-Key.
struct checkout_request {
  std::string idempotency_key;
  std::string cart_id;
  std::string method;         ///< "card"
  std::string token;          ///< payment token, e.g. "tok_ok"
  std::string principal = {}; ///< the verified customer asking (empty: none), see cart_actor
  /// When the shopper's answer is due (deadline.hpp): the cart claim waits no longer. The
  /// order's own work after a charge (confirmations, returns) does not end with it.
  int64_t deadline_ms = 0;
  /// X-Request-Id of the HTTP request (empty: none): the order's log lines, and its payment
  /// calls', carry it until the checkout is answered. Not part of what a retry must repeat.
  std::string request_id = {};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_request& x) {
  return f(caf::meta::type_name("surge.checkout_request"), x.idempotency_key, x.cart_id, x.method,
           x.token, x.principal, x.deadline_ms, x.request_id);
}

struct order_line_view {
  std::string sku;
  int64_t qty = 0;
  int64_t price_cents = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_line_view& x) {
  return f(caf::meta::type_name("surge.order_line_view"), x.sku, x.qty, x.price_cents);
}

/// API.md's order object, plus why it failed or was cancelled and the refund of a cancelled
/// order that had been charged.
struct order_view {
  std::string order_id;
  std::string cart_id;
  std::string status;
  std::vector<order_line_view> lines;
  int64_t total_cents = 0;
  std::string currency;
  int64_t created_at_ms = 0;
  /// e.g. "payment_declined", "hold_expired"; empty when none. While the status is
  /// requires_action: the URL where the shopper authenticates (3-D Secure).
  std::string reason;
  std::string refund_status; ///< "", "pending", "refunded" or "failed"
  int64_t refunded_cents = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_view& x) {
  return f(caf::meta::type_name("surge.order_view"), x.order_id, x.cart_id, x.status, x.lines,
           x.total_cents, x.currency, x.created_at_ms, x.reason, x.refund_status, x.refunded_cents);
}

/// `qty` units of an order's line of `sku`.
struct refund_line_view {
  std::string sku;
  int64_t qty = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refund_line_view& x) {
  return f(caf::meta::type_name("surge.refund_line_view"), x.sku, x.qty);
}

/// POST /admin/v1/orders/{order_id}/refunds with its Idempotency-Key: `lines` to give back, or
/// (empty) everything not given back yet.
struct order_refund_request {
  std::string idempotency_key;
  std::vector<refund_line_view> lines;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_refund_request& x) {
  return f(caf::meta::type_name("surge.order_refund_request"), x.idempotency_key, x.lines);
}

/// An operator's refund as the admin API shows it.
struct refund_view {
  std::string refund_id;
  std::string order_id;
  int64_t amount_cents = 0;
  std::vector<refund_line_view> lines;
  std::string status;  ///< pending, refunded or failed
  bool replay = false; ///< the key's refund existed before this request (answered 200, not 201)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refund_view& x) {
  return f(caf::meta::type_name("surge.refund_view"), x.refund_id, x.order_id, x.amount_cents,
           x.lines, x.status, x.replay);
}

/// A shopper's ticket in a sale's waiting room (API.md's queue object, and what the bridge needs
/// to follow it).
struct ticket_view {
  std::string sale_id;
  std::string ticket;
  std::string state;    ///< "waiting", "admitted", "sold_out" or "expired"
  int64_t position = 0; ///< 1-based while waiting and ranked; 0: not ranked yet (the lottery
                        ///< has not run: API shows null) or not waiting
  int64_t eta_s = -1;   ///< estimated seconds until admission; -1: unknown (API shows null)
  std::string pass;     ///< the signed pass while admitted and unexpired, else empty
  int64_t pass_expires_at_ms = 0;
  int64_t rank = -1; ///< 0-based place in admission order; -1: not ranked yet
  int64_t admitted_at_ms = 0;
  bool created = false; ///< this join created the ticket (201), else it existed (200)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ticket_view& x) {
  return f(caf::meta::type_name("surge.ticket_view"), x.sale_id, x.ticket, x.state, x.position,
           x.eta_s, x.pass, x.pass_expires_at_ms, x.rank, x.admitted_at_ms, x.created);
}

/// The whole queue of a sale at one moment: what stream watchers compute every ticket's
/// position from (position = rank - admitted + 1 while rank >= admitted), and the admin stats.
struct queue_summary {
  std::string sale_id;
  std::string phase;     ///< "scheduled" (before prewarm), "warming", "open", "sold_out", "ended"
  bool ranked = false;   ///< the lottery ran: pre-start tickets have ranks
  int64_t tickets = 0;   ///< tickets issued in all
  int64_t admitted = 0;  ///< ranks [0, admitted) are admitted (never decreases)
  int64_t waiting = 0;   ///< tickets not admitted (and the sale not sold out or ended)
  double admit_rate = 0; ///< shoppers admitted per second lately (for eta)
  int64_t pass_ttl_ms = 0;
  int64_t available = 0; ///< the sale's SKUs, summed, as last read
  int64_t held = 0;
  int64_t sold = 0;
  int64_t sold_out_at_ms = 0; ///< 0: not sold out (now)
  std::string lottery_seed;   ///< hex; empty until the lottery ran
  bool warm = false;          ///< every SKU of the sale answered since the prewarm began
  int64_t updated_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_summary& x) {
  return f(caf::meta::type_name("surge.queue_summary"), x.sale_id, x.phase, x.ranked, x.tickets,
           x.admitted, x.waiting, x.admit_rate, x.pass_ttl_ms, x.available, x.held, x.sold,
           x.sold_out_at_ms, x.lottery_seed, x.warm, x.updated_at_ms);
}

} // namespace surge::actors

namespace surge::persistence {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, product_record& x) {
  return f(caf::meta::type_name("surge.product_record"), x.sku, x.name, x.description, x.category,
           x.price_cents, x.currency, x.per_customer_limit);
}

} // namespace surge::persistence

/// Every message type of surge's entity protocols, registered at once by
/// register_message_types() (cfg.add_message_types<caf::id_block::surge>()).
CAF_BEGIN_TYPE_ID_BLOCK(surge, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(surge, (surge::actors::hold_request))
CAF_ADD_TYPE_ID(surge, (surge::actors::hold_view))
CAF_ADD_TYPE_ID(surge, (surge::actors::stock_change))
CAF_ADD_TYPE_ID(surge, (surge::actors::stock_view))
CAF_ADD_TYPE_ID(surge, (surge::persistence::product_record))
CAF_ADD_TYPE_ID(surge, (surge::actors::product_view))
CAF_ADD_TYPE_ID(surge, (surge::actors::cart_line_view))
CAF_ADD_TYPE_ID(surge, (std::vector<surge::actors::cart_line_view>))
CAF_ADD_TYPE_ID(surge, (surge::actors::cart_view))
CAF_ADD_TYPE_ID(surge, (surge::actors::checkout_request))
CAF_ADD_TYPE_ID(surge, (surge::actors::order_line_view))
CAF_ADD_TYPE_ID(surge, (std::vector<surge::actors::order_line_view>))
CAF_ADD_TYPE_ID(surge, (surge::actors::order_view))
CAF_ADD_TYPE_ID(surge, (surge::actors::refund_line_view))
CAF_ADD_TYPE_ID(surge, (std::vector<surge::actors::refund_line_view>))
CAF_ADD_TYPE_ID(surge, (surge::actors::order_refund_request))
CAF_ADD_TYPE_ID(surge, (surge::actors::refund_view))
CAF_ADD_TYPE_ID(surge, (surge::actors::ticket_view))
CAF_ADD_TYPE_ID(surge, (surge::actors::queue_summary))
CAF_END_TYPE_ID_BLOCK(surge)
