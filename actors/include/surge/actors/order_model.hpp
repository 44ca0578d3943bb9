#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/actors/messages.hpp"
#include "surge/actors/payments.hpp"
#include "surge/persistence/orders.hpp"

namespace surge::actors {

/// What the order model needs of the node's settings, fixed when its actor is spawned.
struct order_terms {
  /// A hold must have more than min(5 s, holds_ttl / 4) left to be paid for.
  std::chrono::milliseconds holds_ttl{};
  /// Customers are verified: a customer's order answers not_found to anyone else.
  bool verify_customers = false;
  /// payments.capture=after_confirm: the checkout authorises, confirms the holds, then captures;
  /// an order that cannot be fulfilled voids its authorisation instead of refunding a charge.
  bool capture_after_confirm = false;
  /// How long an order waits in requires_action for the shopper's 3-D Secure authentication,
  /// from the gateway's answer, before it is abandoned.
  std::chrono::milliseconds action_ttl{};
  /// Where the gateway sends the shopper back after authenticating; "{order_id}" is replaced
  /// by the order's id. Empty: no return address is given.
  std::string return_url = {};
};

/// How the SKUs answered one command (confirm, return) about each of an order's lines.
struct line_tally {
  std::size_t gone = 0;   ///< not_found or conflict: the hold is no longer what the order bought
  std::size_t failed = 0; ///< any other error: the SKU could not be reached
};

/// What happened to an order: a request, or the answer of an effect it asked for. Answers are
/// exactly what the effect's port gives back.
namespace order_in {

/// The order row as storage has it (nullopt: none yet), or why it could not be read.
struct loaded {
  caf::expected<std::optional<persistence::order_record>> order;
};

/// A shopper's checkout (the asker waits for the next `reply` unless it is refused at once).
struct checkout {
  checkout_request request;
};

/// The reconciler asks the order to settle itself if it was left pending or paid, or with its
/// refund pending.
struct reconcile {};

/// The cart's answer to a claim (order_fx::claim_cart): its lines, or an actors error.
/// `now_ms`: the wall clock when the answer arrived (holds must outlive the payment).
struct claimed {
  caf::expected<cart_view> cart;
  int64_t now_ms = 0;
};

/// The order store's answer to order_fx::create: the stored order and whether this call made it.
struct created {
  caf::expected<std::pair<persistence::order_record, bool>> result;
};

/// The payment service's answer to order_fx::charge or order_fx::lookup. `now_ms`: the wall
/// clock when it arrived (0: not known), kept as the payment's time.
struct charged {
  charge_result result;
  int64_t now_ms = 0;
};

/// The SKUs' answers to order_fx::confirm_lines, all of them.
struct lines_confirmed {
  line_tally tally;
};

/// The SKUs' answers to order_fx::return_lines, all of them.
struct lines_returned {
  line_tally tally;
};

/// The order store's answer to order_fx::update (none: stored).
struct stored {
  caf::error err;
};

/// The payment service's answer to order_fx::refund.
struct refunded {
  refund_result result;
};

/// The payment service's answer to order_fx::capture or order_fx::void_payment.
struct settled {
  settle_result result;
};

/// The cart answered order_fx::clear_cart (whatever it said: the order is confirmed anyway).
struct cleared {};

/// The SKUs' answers to order_fx::renew_holds: `gone` holds were no longer there (expired or
/// changed), `failed` could not be asked.
struct holds_renewed {
  line_tally tally;
};

/// The SKUs and the cart answered order_fx::drop_holds (whatever they said).
struct holds_dropped {};

/// An operator asks for a refund (the asker waits for the next `refund_reply` unless it is
/// answered at once).
struct refund_asked {
  order_refund_request request;
};

} // namespace order_in

using order_input =
    std::variant<order_in::loaded, order_in::checkout, order_in::reconcile, order_in::claimed,
                 order_in::created, order_in::charged, order_in::lines_confirmed,
                 order_in::lines_returned, order_in::stored, order_in::refunded, order_in::cleared,
                 order_in::refund_asked, order_in::settled, order_in::holds_renewed,
                 order_in::holds_dropped>;

/// What the order's actor must do, in order. Each effect that has an answer is answered by the
/// order_in input of the same name; at most one such effect is under way at a time.
namespace order_fx {

/// (checkout_atom, order_id, true, principal) to the cart → order_in::claimed.
struct claim_cart {
  std::string cart_id;
  std::string order_id;
  std::string principal;
  int64_t deadline_ms = 0; ///< the checkout request's (deadline.hpp); 0: none waits
};

/// (checkout_atom, order_id, false, "") to the cart, answer ignored: the checkout ended and
/// nothing stands charged. The cart ends only this order's claim.
struct release_cart {
  std::string cart_id;
  std::string order_id;
};

/// (clear_atom, hold_ids) to the cart: the sold lines leave it, which ends the claim
/// → order_in::cleared, whatever the answer.
struct clear_cart {
  std::string cart_id;
  std::vector<std::string> hold_ids;
};

/// order_store::create(order) → order_in::created.
struct create {
  persistence::order_record order;
};

/// order_store::update(order_id, change) → order_in::stored.
struct update {
  std::string order_id;
  persistence::order_store::order_update change;
};

/// payment_service::charge(request) → order_in::charged. The actor adds `may_send` (its fence).
struct charge {
  charge_request request;
};

/// payment_service::lookup(idempotency_key) → order_in::charged.
struct lookup {
  std::string idempotency_key;
};

/// (confirm_atom, hold_id, order_id, cart_id, qty) to each line's SKU → order_in::lines_confirmed
/// once every line answered (not_found and conflict count as gone).
struct confirm_lines {
  std::string order_id;
  std::string cart_id;
  std::vector<persistence::order_line_record> lines;
};

/// (return_atom, hold_id, order_id) to each line's SKU → order_in::lines_returned once every
/// line answered.
struct return_lines {
  std::string order_id;
  std::vector<persistence::order_line_record> lines;
};

/// (hold_atom, {cart_id, customer_id, qty, currency}) to each line's SKU: the cart's hold set to
/// the qty it has, which renews its expiry (3-D Secure: the shopper is authenticating). A line
/// whose answer names another hold (its own had expired: a new one was made) counts as gone, and
/// that new hold is dropped again (qty 0) → order_in::holds_renewed once every line answered.
struct renew_holds {
  std::string cart_id;
  std::string customer_id;
  std::string currency;
  std::vector<persistence::order_line_record> lines;
};

/// (hold_atom, qty 0) to each line's SKU (the cart's hold given back now), then (clear_atom,
/// hold_ids) to the cart (the lines leave it, its claim ends) → order_in::holds_dropped.
struct drop_holds {
  std::string cart_id;
  std::string customer_id;
  std::string currency;
  std::vector<persistence::order_line_record> lines;
};

/// payment_service::refund(request) → order_in::refunded.
struct refund {
  refund_request request;
};

/// payment_service::capture(request) → order_in::settled. The actor adds `may_send` (its fence).
struct capture {
  settle_request request;
};

/// payment_service::void_authorization(request) → order_in::settled. The actor adds `may_send`.
struct void_payment {
  settle_request request;
};

/// Answer everyone waiting for the step that just ended, with this.
struct reply {
  caf::expected<order_view> answer;
};

/// Answer every operator waiting for the refund step that just ended, with this.
struct refund_reply {
  caf::expected<refund_view> answer;
};

/// Stop the actor with `reason` (what storage has is the truth: the next incarnation reloads).
struct quit {
  caf::error reason;
};

/// A line for the order log.
struct log {
  enum class level : uint8_t { debug, info, warn, error };
  level lvl = level::info;
  std::string text;
};

} // namespace order_fx

using order_effect =
    std::variant<order_fx::claim_cart, order_fx::release_cart, order_fx::clear_cart,
                 order_fx::create, order_fx::update, order_fx::charge, order_fx::lookup,
                 order_fx::confirm_lines, order_fx::return_lines, order_fx::refund, order_fx::reply,
                 order_fx::quit, order_fx::log, order_fx::refund_reply, order_fx::capture,
                 order_fx::void_payment, order_fx::renew_holds, order_fx::drop_holds>;

/// The checkout of one order as a pure state machine: an input (order_in) is *decided* against
/// the current state, yielding the next state and the effects to run (order_fx), never changing
/// anything; the decision is then *applied*. No CAF actors, no I/O, no clock: time comes in with
/// the inputs. Not thread-safe: owned by its order actor, which runs the effects and feeds their
/// answers back as inputs.
///
/// The decisions are order.hpp's contract: claim the cart, create the order row (pending), charge
/// the key, confirm every hold for exactly the order's quantity, store confirmed with the payment
/// and the outbox event, clear the sold lines from the cart. A charge that did not stand
/// (declined, gateways unavailable, refused before the charge) gives the cart back; an outcome
/// that is unknown keeps it claimed and leaves the order pending. Paid but not fulfillable (a hold
/// gone or changed): return the confirmed lines, store cancelled with the refund pending, refund,
/// store the refund's outcome, answer hold_expired. With order_terms::capture_after_confirm the
/// charge is an authorisation: once every hold is confirmed it is captured (under a key derived
/// from the order's), and only then stored confirmed; one that cannot be fulfilled returns its
/// lines, is stored cancelled with its "refund" pending, and voids the authorisation (refund
/// status voided: nothing was taken); a capture the gateway refuses returns the lines and fails
/// the order (payment_unavailable). A capture or void whose outcome is unknown leaves the order
/// as stored (pending, or cancelled with the void pending) for a retry or the reconciler, which
/// looks the key up and carries on; the same keys are used again. Retries of the key return the
/// first result, wait for the step under way, or settle what a crash left, as the stored status
/// says; a retry that charges after nothing was charged first re-claims the cart and needs exactly
/// the order's lines.
///
/// 3-D Secure: a gateway that answers requires_action (with a URL) gets the order stored
/// requires_action (its reason: the URL; its payment: that gateway's open charge), the holds
/// renewed (a hold found expired gives the payment up at once), and the checkout answered with
/// the action. A lookup (a retry of the key, the reconciler, a gateway's webhook, the shopper's
/// return) then finds it approved (the holds are confirmed and it goes on as any approved
/// charge), declined (failed payment_declined, the cart given back), or still open: answered as
/// it is until order_terms::action_ttl has passed since the gateway's answer, then given up —
/// voided at the gateway, the holds given back and the lines taken out of the cart, and the order
/// failed action_expired. A void the gateway refuses (the shopper finished after all) is looked
/// up again; one whose outcome is unknown is tried again later.
///
/// Operators' refunds (order.hpp, refund_atom): of a paid order only, never more of a line than
/// was bought and not yet given back (pending refunds count as given back), never more than was
/// charged. The intent is stored first (the refund pending in the order's list, with an outbox
/// event, in one transaction), then the gateway that took the charge is asked under a key derived
/// from the order id and the operator's key (so no retry refunds twice), then the outcome is
/// stored with its event: refunded, or failed when the gateway refused; an unknown outcome stays
/// pending (answered so) and the reconciler asks again. The operator's key names the refund: the
/// same key with the same lines is the same refund (answered as it stands, or waited for); with
/// other lines, idempotency_conflict. A new refund while another step is under way is refused
/// unavailable (retry with the same key).
///
/// One step (an effect with an answer) is under way at a time; an answer that no step under way
/// waits for changes nothing.
class order_model {
 public:
  /// The step under way, whose answer the model waits for.
  enum class step : uint8_t {
    idle,            ///< none
    claiming,        ///< claim_cart, before the order exists
    creating,        ///< create
    charging,        ///< charge
    looking_up,      ///< lookup (an order found pending)
    reclaiming,      ///< claim_cart again before charging an order nothing was charged for
    confirming,      ///< confirm_lines
    returning,       ///< return_lines
    storing,         ///< update
    refunding,       ///< refund (of an order cancelled after its charge)
    capturing,       ///< capture (an authorisation whose holds are all confirmed)
    voiding,         ///< void_payment (of an order cancelled after its authorisation)
    clearing,        ///< clear_cart
    admin_refunding, ///< refund (an operator's, state::admin_refund)
    renewing,        ///< renew_holds (the shopper is sent to authenticate)
    abandoning,      ///< void_payment of a charge still requiring action (3-D Secure given up)
    dropping,        ///< drop_holds (after an abandoned 3-D Secure)
  };

  /// What follows the update under way once it is stored.
  enum class then_do : uint8_t {
    reply_declined,
    reply_unavailable,
    reply_confirmed,
    reply_hold_expired, ///< cancelled, and what was charged is refunded (or the refund failed)
    refund,             ///< cancelled with its refund pending: ask the gateway for it now
    ask_refund,         ///< an operator's refund is stored pending: ask the gateway for it now
    reply_refund,       ///< an operator's refund is stored with its outcome: answer it
    renew_holds,        ///< stored requires_action: renew the holds, then answer with the action
    reply_abandoned,    ///< stored failed after an abandoned 3-D Secure: answer so
    charge,             ///< stored pending again before a retry's charge: charge now
  };

  struct state {
    bool loaded = false;
    std::optional<persistence::order_record> order; ///< as stored (or being stored)
    step under_way = step::idle;
    std::string fingerprint;  ///< of the checkout whose claim or create is under way
    checkout_request current; ///< the request that started the step under way (its token)
    std::optional<persistence::payment_record> approved; ///< the charge, until it is stored
    std::size_t waiters = 0;                             ///< askers waiting for the next reply
    then_do after_store = then_do::reply_unavailable;
    std::size_t gone = 0;         ///< holds found gone when the charge was confirmed (for the log)
    bool capture_refused = false; ///< the lines under return are of a refused capture
    std::size_t refund_waiters = 0; ///< operators waiting for the next refund_reply
    std::string admin_refund;       ///< the refund id of the operator's refund under way
    bool admin_replay = false;      ///< that refund existed before the request now waiting
    std::string abandon_reason;     ///< why 3-D Secure is being given up (action_expired, ...)
  };

  struct decision {
    state next;
    std::vector<order_effect> effects;
    /// Set for a checkout or refund answered at once with this error: it waits for no reply.
    caf::error refused;
    /// Set for a refund answered at once with this (a replay of a settled one).
    std::optional<refund_view> answered;
  };

  order_model(std::string order_id, order_terms terms);

  /// The next state and effects for `in`. REQUIRES: loaded() for checkout.
  decision decide(const order_input& in) const;

  /// Adopts `d.next`; returns the effects to run, in order.
  std::vector<order_effect> apply(decision d);

  const std::string& order_id() const { return order_id_; }
  const state& current() const { return state_; }
  bool loaded() const { return state_.loaded; }
  bool busy() const { return state_.under_way != step::idle; }
  /// Nothing under way and nobody waiting: the actor may passivate.
  bool idle() const { return !busy() && state_.waiters == 0 && state_.refund_waiters == 0; }

  /// The order as `principal` may see it; not_found when there is none or it is another
  /// verified customer's.
  caf::expected<order_view> view_for(const std::string& principal) const;

  /// What a checkout request is, for comparing retries of a key: a hash of its cart, payment
  /// method and token (the token itself is never stored).
  static std::string fingerprint_of(const checkout_request& req);

  /// API.md's order object of `o`.
  static order_view view_of(const persistence::order_record& o);

  /// The outbox event (topic "orders") of `o` in `status`.
  static persistence::outbox_event event_of(const persistence::order_record& o,
                                            const std::string& status);

  /// The refund id of the operator's key `key` for order `order_id` ("rf_" and 32 hex digits).
  static std::string refund_id_of(const std::string& order_id, const std::string& key);

  /// The outbox event (topic "refunds", so that the "orders" stream keeps carrying order states;
  /// `"event":name`: order.refund_requested, order.refunded, order.refund_failed) of the
  /// operator's refund `r` of `o`.
  static persistence::outbox_event refund_event_of(const persistence::order_record& o,
                                                   const persistence::order_refund_record& r,
                                                   const std::string& name);

  /// The admin API's view of refund `r` of order `order_id`.
  static refund_view refund_view_of(const std::string& order_id,
                                    const persistence::order_refund_record& r, bool replay);

 private:
  const std::string order_id_;
  const order_terms terms_;
  state state_;
};

} // namespace surge::actors
