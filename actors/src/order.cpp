#include "surge/actors/order.hpp"

#include <caf/all.hpp>

#include <cstdio>
#include <limits>
#include <optional>

#include "entity.hpp"
#include "surge/actors/errors.hpp"
#include "surge/config/log.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::actors {
namespace {

/// Storage answers, handed from pool threads to the actor.
struct order_loaded {
  caf::error err;
  std::optional<persistence::order_record> order;
};

struct order_created {
  caf::error err;
  persistence::order_record order;
  bool created = false;
};

struct order_charged {
  charge_result result;
  bool from_lookup = false;
};

/// What to do once an update of the order row is stored.
enum class then_do : uint8_t {
  reply_declined,
  reply_unavailable,
  reply_confirmed,
  reply_hold_expired, ///< cancelled, and what was charged is refunded (or the refund failed)
  refund,             ///< cancelled with its refund pending: ask the gateway for it now
};

struct order_refunded {
  refund_result result;
};

} // namespace
} // namespace surge::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::order_loaded)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::order_created)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::order_charged)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::then_do)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::order_refunded)

namespace surge::actors {
namespace {

using created_atom = caf::atom_constant<caf::atom("created")>;
using charged_atom = caf::atom_constant<caf::atom("charged")>;
using stored_atom = caf::atom_constant<caf::atom("stored")>;
using refunded_atom = caf::atom_constant<caf::atom("refunded")>;

using order_impl = order_actor::extend<
    caf::reacts_to<loaded_atom, order_loaded>, caf::reacts_to<created_atom, order_created>,
    caf::reacts_to<charged_atom, order_charged>, caf::reacts_to<stored_atom, then_do, caf::error>,
    caf::reacts_to<refunded_atom, order_refunded>, caf::reacts_to<tick_atom>>;

struct order_state {
  static inline const char* name = "surge.order";

  // Set at spawn.
  std::string order_id;
  std::shared_ptr<const entity_env> env;
  order_links links;
  entity_fence fence;

  // Owned by the actor.
  bool loaded = false;
  std::optional<persistence::order_record> order; ///< as stored (or being stored)
  bool busy = false;                              ///< a checkout step is under way
  std::string busy_fingerprint;                   ///< of the checkout being created
  checkout_request current; ///< the request that started the step under way (token)
  std::optional<persistence::payment_record> approved; ///< the charge, until the order is stored
  std::vector<caf::typed_response_promise<order_view>> waiters;
  uint64_t received = 0;
  bool handing_off = false; ///< the shard leaves this node: passivate once no step is under way
  int64_t last_active_ms = 0;
  detail::tick_schedule tick;
};

using self_ptr = order_impl::stateful_pointer<order_state>;

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("order");
  return lg;
}

void hash128(std::string_view s, uint64_t& a, uint64_t& b) {
  a = 1469598103934665603ULL;
  b = 0x9ae16a3b2f90404fULL;
  for (unsigned char c : s) {
    a = (a ^ c) * 1099511628211ULL;
    b = (b ^ c) * 0x100000001b3ULL + 0x2545F4914F6CDD1DULL;
  }
}

std::string hex128(std::string_view s) {
  uint64_t a = 0;
  uint64_t b = 0;
  hash128(s, a, b);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

/// What a key was first used for; the token is hashed, never stored.
std::string fingerprint_of(const checkout_request& req) {
  return hex128(req.cart_id + '\x1f' + req.method + '\x1f' + req.token);
}

order_view view_of(const persistence::order_record& o) {
  order_view v;
  v.order_id = o.order_id;
  v.cart_id = o.cart_id;
  v.status = o.status;
  for (const auto& l : o.lines) {
    v.lines.push_back(order_line_view{l.sku, l.qty, l.price_cents});
  }
  v.total_cents = o.total_cents;
  v.currency = o.currency;
  v.created_at_ms = o.created_at_ms;
  v.reason = o.reason;
  if (o.refund) {
    v.refund_status = o.refund->status;
    v.refunded_cents = o.refund->status == "refunded" ? o.refund->amount_cents : 0;
  }
  return v;
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

/// The outbox event of an order's final state.
persistence::outbox_event event_of(const persistence::order_record& o, const std::string& status) {
  std::string j = "{\"order_id\":";
  append_json_string(j, o.order_id);
  j += ",\"status\":";
  append_json_string(j, status);
  j += ",\"cart_id\":";
  append_json_string(j, o.cart_id);
  j += ",\"customer_id\":";
  append_json_string(j, o.customer_id);
  j += ",\"total_cents\":" + std::to_string(o.total_cents) + ",\"currency\":";
  append_json_string(j, o.currency);
  j += ",\"lines\":[";
  for (std::size_t i = 0; i < o.lines.size(); ++i) {
    j += i == 0 ? "{\"sku\":" : ",{\"sku\":";
    append_json_string(j, o.lines[i].sku);
    j += ",\"qty\":" + std::to_string(o.lines[i].qty) +
         ",\"price_cents\":" + std::to_string(o.lines[i].price_cents) + "}";
  }
  j += ']';
  if (o.refund) {
    j += ",\"refund_status\":";
    append_json_string(j, o.refund->status);
    j += ",\"refund_cents\":" + std::to_string(o.refund->amount_cents);
  }
  j += '}';
  return persistence::outbox_event{0, "orders", o.order_id, std::move(j)};
}

/// Gives `cart` back to its shopper: the checkout ended and nothing is charged (or what was
/// charged is refunded). Only this order's claim is ended; the cart ignores it otherwise.
void release(self_ptr self, const std::string& cart) {
  auto& st = self->state;
  self->request(st.links.carts->acquire(cart), st.env->opts.call_timeout, checkout_atom::value,
                st.order_id, false, std::string{})
      .then([](cart_view&) {}, [](caf::error&) {}); // a cart gone or down: its claim lapses
}

/// The cart this order's checkout claims: the order's, or the request's before there is one.
const std::string& claimed_cart(const order_state& st) {
  return st.order ? st.order->cart_id : st.current.cart_id;
}

/// Answers everyone waiting for the step under way. An error leaves the cart claimed: the
/// order may still charge (its outcome is unknown, or it is paid and not yet confirmed), and
/// a retry or the reconciler settles it.
void finish(self_ptr self, const caf::error* err) {
  auto& st = self->state;
  st.busy = false;
  auto waiters = std::move(st.waiters);
  st.waiters.clear();
  for (auto& rp : waiters) {
    if (err != nullptr) {
      rp.deliver(*err);
    } else {
      rp.deliver(view_of(*st.order));
    }
  }
}

void fail(self_ptr self, errc code, std::string msg) {
  auto err = make_error(code, std::move(msg));
  finish(self, &err);
}

/// The checkout ended without a charge that stands (nothing charged, declined, or refunded):
/// the cart is the shopper's again, then everyone is answered.
void fail_released(self_ptr self, errc code, std::string msg) {
  release(self, claimed_cart(self->state));
  fail(self, code, std::move(msg));
}

void charge(self_ptr self);
void confirm_holds(self_ptr self);
void cancel_paid(self_ptr self, std::size_t gone);
void refund(self_ptr self);
void reclaim_and_charge(self_ptr self);

/// Stores a new status (with payment, refund and outbox event) on the orders pool; `next`
/// follows once it is stored.
void store(self_ptr self, std::string status, std::string reason,
           std::optional<persistence::payment_record> payment,
           std::optional<persistence::outbox_event> event, then_do next,
           std::optional<persistence::refund_record> refund = std::nullopt) {
  auto& st = self->state;
  st.order->status = status;
  st.order->reason = reason;
  if (payment) {
    st.order->payment = payment;
  }
  if (refund) {
    st.order->refund = refund;
  }
  persistence::order_store::order_update change{std::move(status), std::move(reason),
                                                std::move(payment), std::move(refund),
                                                std::move(event)};
  auto h = caf::actor_cast<order_impl>(self);
  st.env->orders->submit(
      [h, id = st.order_id, change = std::move(change), next](persistence::order_store* s) {
        caf::error err;
        if (s == nullptr) {
          err = persistence::make_error(persistence::errc::unavailable, "no PostgreSQL connection");
        } else {
          err = s->update(id, change);
        }
        caf::anon_send(h, stored_atom::value, next, std::move(err));
      });
}

persistence::payment_record payment_of(const persistence::order_record& o, const charge_result& r) {
  return persistence::payment_record{o.idempotency_key,   r.gateway,     r.charge_id,
                                     to_string(r.status), o.total_cents, o.currency};
}

/// What a shopper is told of a cancelled order's refund.
std::string refund_message(const persistence::refund_record& r) {
  if (r.status == "refunded") {
    return "a hold expired before the order was confirmed; the order is cancelled and its "
           "charge was refunded";
  }
  if (r.status == "failed") {
    return "a hold expired before the order was confirmed; the order is cancelled, but the "
           "gateway refused its refund: the shop has been told";
  }
  return "a hold expired before the order was confirmed; the order is cancelled and its refund "
         "is under way";
}

/// Carries on with an order known from storage, as its status says.
void resume(self_ptr self) {
  auto& st = self->state;
  auto& o = *st.order;
  st.busy = true;
  if (o.status == "confirmed") {
    finish(self, nullptr);
  } else if (o.status == "pending") {
    // Its charge may or may not have reached a gateway: ask them before anything else.
    auto h = caf::actor_cast<order_impl>(self);
    st.env->payments->lookup(o.idempotency_key, [h](charge_result r) {
      caf::anon_send(h, charged_atom::value, order_charged{std::move(r), true});
    });
  } else if (o.status == "paid") {
    confirm_holds(self);
  } else if (o.status == "failed" && o.reason == "payment_declined") {
    fail_released(self, errc::payment_declined, "the payment was declined");
  } else if (o.status == "failed" && o.reason == "payment_unavailable" && !st.waiters.empty() &&
             !st.current.token.empty()) {
    reclaim_and_charge(self); // nothing was charged: a retry may try again, with the same key
  } else if (o.refund && o.refund->status == "pending") {
    refund(self); // cancelled after its charge, and the refund is not confirmed yet
  } else if (o.reason == "hold_expired") {
    fail_released(self, errc::hold_expired,
                  o.refund ? refund_message(*o.refund)
                           : "a hold expired before the order was "
                             "confirmed; nothing was charged");
  } else {
    fail_released(self, errc::unavailable, "the payment gateways were unavailable; retry");
  }
}

void charge(self_ptr self) {
  auto& st = self->state;
  st.busy = true;
  const auto& o = *st.order;
  charge_request req{o.idempotency_key, o.order_id,       o.total_cents,
                     o.currency,        st.current.token, {}};
  if (st.fence.shard >= 0 && st.env->cluster != nullptr) {
    // A charge must not go out once another node may own this order: its lookup could then
    // miss a charge still on the way and charge the key a second time (on another gateway).
    req.may_send = [cluster = st.env->cluster, shard = static_cast<uint32_t>(st.fence.shard),
                    epoch = st.fence.epoch, margin = st.env->opts.payment_lease_margin] {
      return cluster->serving_for(shard, epoch, margin);
    };
  }
  auto h = caf::actor_cast<order_impl>(self);
  st.env->payments->charge(std::move(req), [h](charge_result r) {
    caf::anon_send(h, charged_atom::value, order_charged{std::move(r), false});
  });
}

void on_charged(self_ptr self, order_charged& in) {
  auto& st = self->state;
  const auto& r = in.result;
  auto& o = *st.order;
  logger()->debug("{}: charge {} ({}) via {}", st.order_id, to_string(r.status),
                  in.from_lookup ? "lookup" : "charge", r.gateway);
  switch (r.status) {
  case charge_status::approved:
    // Confirmed and paid are stored together (with the outbox event) once the holds are
    // sold. A crash before that leaves the order pending: the reconciler finds the charge by
    // its key and confirms again (retry-safe).
    st.approved = payment_of(o, r);
    confirm_holds(self);
    return;
  case charge_status::declined:
    store(self, "failed", "payment_declined", payment_of(o, r), std::nullopt,
          then_do::reply_declined);
    return;
  case charge_status::failed:
    if (in.from_lookup && !st.waiters.empty() && !st.current.token.empty()) {
      reclaim_and_charge(self); // no gateway has it: it was never charged, so charge it now
    } else {
      store(self, "failed", "payment_unavailable",
            in.from_lookup ? std::nullopt : std::optional{payment_of(o, r)}, std::nullopt,
            then_do::reply_unavailable);
    }
    return;
  case charge_status::unknown:
    // Stays pending; the reconciler looks it up later. Never charged elsewhere meanwhile.
    fail(self, errc::unavailable, "the payment outcome is not known yet; retry with the same key");
    return;
  }
}

/// How the SKUs answered one command about each of an order's lines.
struct line_tally {
  std::size_t remaining = 0;
  std::size_t gone = 0;   ///< not_found: the hold is no longer there
  std::size_t failed = 0; ///< any other error: the SKU could not be reached
};

/// Sends `ask(line)` (a request to the line's SKU) for every line; `done(tally)` once all
/// answered.
template <class Ask, class Done>
void ask_each_line(self_ptr self, Ask ask, Done done) {
  auto& st = self->state;
  auto t = std::make_shared<line_tally>();
  t->remaining = st.order->lines.size();
  auto one = [t, done](bool ok, bool gone) {
    t->gone += !ok && gone ? 1 : 0;
    t->failed += !ok && !gone ? 1 : 0;
    if (--t->remaining == 0) {
      done(*t);
    }
  };
  for (const auto& line : st.order->lines) {
    // not_found: the hold is gone; conflict: it is no longer what the order bought (defence in
    // depth: the cart's claim keeps its lines as they were). Either way it cannot be sold.
    ask(line).then([one](stock_view&) { one(true, false); },
                   [one](caf::error& err) {
                     one(false, is(err, errc::not_found) || is(err, errc::conflict));
                   });
  }
}

void confirm_holds(self_ptr self) {
  self->state.busy = true;
  auto ask = [self](const persistence::order_line_record& line) {
    auto& st = self->state;
    return self->request(st.links.skus->acquire(line.sku), st.env->opts.call_timeout,
                         confirm_atom::value, line.hold_id, st.order_id, st.order->cart_id,
                         line.qty);
  };
  ask_each_line(self, ask, [self](const line_tally& t) {
    auto& o = *self->state.order;
    if (t.failed > 0) {
      // Stays paid: the reconciler (or a retry) confirms again; confirming is retry-safe.
      fail(self, errc::unavailable, "could not confirm every hold yet; retry with the same key");
    } else if (t.gone > 0) {
      cancel_paid(self, t.gone);
    } else {
      store(self, "confirmed", "", self->state.approved, event_of(o, "confirmed"),
            then_do::reply_confirmed);
    }
  });
}

/// Paid, but `gone` holds had expired (or changed) before they were confirmed: the order
/// cannot be fulfilled. The lines that were confirmed go back to stock first (so that what is
/// sold always equals the confirmed orders' lines), then the order is stored as cancelled with
/// its refund pending, and the refund is asked for. Returning is retry-safe: if a SKU cannot be
/// reached, the order stays as stored (pending) and the next attempt (a retry or the
/// reconciler) finds the charge, confirms — the returned lines now answer not_found — and
/// returns again.
void cancel_paid(self_ptr self, std::size_t gone) {
  auto ask = [self](const persistence::order_line_record& line) {
    auto& st = self->state;
    return self->request(st.links.skus->acquire(line.sku), st.env->opts.call_timeout,
                         return_atom::value, line.hold_id, st.order_id);
  };
  ask_each_line(self, ask, [self, gone](const line_tally& t) {
    auto& st = self->state;
    auto& o = *st.order;
    if (t.failed + t.gone > 0) {
      fail(self, errc::unavailable, "could not undo every confirmed line yet; retry");
      return;
    }
    logger()->warn("{}: paid, but {} hold(s) had expired or changed: cancelled, refunding {}",
                   o.order_id, gone, o.total_cents);
    // The intent is durable before the gateway is asked: a crash now leaves the refund pending,
    // and the reconciler asks again (with the same refund key: never refunded twice).
    const auto amount = st.approved ? st.approved->amount_cents : o.total_cents;
    store(self, "cancelled", "hold_expired", st.approved, std::nullopt, then_do::refund,
          persistence::refund_record{"pending", "", amount});
  });
}

/// Asks the gateway that took the charge to give it back (the order is stored cancelled with
/// its refund pending).
void refund(self_ptr self) {
  auto& st = self->state;
  st.busy = true;
  const auto& o = *st.order;
  if (!o.payment || o.payment->gateway.empty()) {
    // No charge is recorded (cannot happen for an order cancelled after its charge): nothing to
    // give back, and nobody to ask.
    logger()->error("{}: refund pending, but no charge is recorded", o.order_id);
    store(self, "cancelled", o.reason, std::nullopt, event_of(o, "cancelled"),
          then_do::reply_hold_expired, persistence::refund_record{"failed", "", 0});
    return;
  }
  refund_request req{"refund-" + o.idempotency_key, o.idempotency_key,      o.payment->gateway,
                     o.payment->charge_id,          o.refund->amount_cents, o.payment->currency};
  auto h = caf::actor_cast<order_impl>(self);
  st.env->payments->refund(std::move(req), [h](refund_result r) {
    caf::anon_send(h, refunded_atom::value, order_refunded{std::move(r)});
  });
}

void on_refunded(self_ptr self, order_refunded& in) {
  auto& st = self->state;
  auto& o = *st.order;
  const auto& r = in.result;
  switch (r.status) {
  case refund_status::refunded:
    logger()->info("{}: refunded {} via {} ({})", o.order_id, o.refund->amount_cents,
                   o.payment->gateway, r.refund_id);
    o.refund = persistence::refund_record{"refunded", r.refund_id, o.refund->amount_cents};
    store(self, "cancelled", o.reason, std::nullopt, event_of(o, "cancelled"),
          then_do::reply_hold_expired, o.refund);
    return;
  case refund_status::rejected:
    logger()->error("{}: the gateway refused the refund of {} via {}: {} (needs an operator)",
                    o.order_id, o.refund->amount_cents, o.payment->gateway, r.message);
    o.refund = persistence::refund_record{"failed", "", o.refund->amount_cents};
    store(self, "cancelled", o.reason, std::nullopt, event_of(o, "cancelled"),
          then_do::reply_hold_expired, o.refund);
    return;
  case refund_status::unknown:
    // Stays pending: the reconciler asks again with the same key.
    fail(self, errc::unavailable,
         "the order is cancelled and its refund is under way; retry with the same key");
    return;
  }
}

void on_stored(self_ptr self, then_do next, const caf::error& err) {
  auto& st = self->state;
  if (err) {
    logger()->warn("{}: storing status {} failed: {}", st.order_id, st.order->status,
                   caf::to_string(err));
    // What PostgreSQL has is the truth: forget our copy, reload on the next request.
    fail(self, errc::unavailable, "orders unavailable; retry with the same key");
    self->quit(err);
    return;
  }
  switch (next) {
  case then_do::reply_declined:
    fail_released(self, errc::payment_declined, "the payment was declined");
    return;
  case then_do::reply_unavailable:
    fail_released(self, errc::unavailable, "the payment gateways were unavailable; retry");
    return;
  case then_do::reply_hold_expired:
    fail_released(self, errc::hold_expired, refund_message(*st.order->refund));
    return;
  case then_do::refund:
    refund(self);
    return;
  case then_do::reply_confirmed: {
    // The sold lines leave the cart; the order is confirmed whatever the cart says.
    std::vector<std::string> holds;
    for (const auto& l : st.order->lines) {
      holds.push_back(l.hold_id);
    }
    self->request(st.links.carts->acquire(st.order->cart_id), st.env->opts.call_timeout,
                  clear_atom::value, std::move(holds))
        .then([self](cart_view&) { finish(self, nullptr); }, // the clear ended the claim
              [self](caf::error&) { finish(self, nullptr); });
    return;
  }
  }
}

/// Why the cart's lines cannot be paid for now (empty: they can): a hold must outlive the
/// payment, or stock would be sold that is no longer held; one order is in one currency.
std::optional<caf::error> unpayable(const order_state& st, const cart_view& cart) {
  if (cart.items.empty()) {
    return make_error(errc::empty_cart, "the cart is empty");
  }
  const int64_t now = st.env->now_ms();
  const int64_t margin = std::min<int64_t>(5000, st.env->opts.holds_ttl.count() / 4);
  for (const auto& item : cart.items) {
    if (item.hold_expires_at_ms - margin <= now) {
      return make_error(errc::hold_expired,
                        "the hold on " + item.sku + " has expired; nothing was charged");
    }
    if (item.currency != cart.items.front().currency) {
      return make_error(errc::currency_mismatch, "the cart's lines are in " +
                                                     cart.items.front().currency + " and " +
                                                     item.currency);
    }
  }
  return std::nullopt;
}

/// The order is for exactly the cart's lines (the same holds, the same quantities).
bool same_lines(const persistence::order_record& o, const cart_view& cart) {
  if (o.lines.size() != cart.items.size()) {
    return false;
  }
  return std::all_of(o.lines.begin(), o.lines.end(), [&](const persistence::order_line_record& l) {
    return std::any_of(cart.items.begin(), cart.items.end(), [&](const cart_line_view& i) {
      return i.sku == l.sku && i.qty == l.qty && i.hold_id == l.hold_id;
    });
  });
}

void begin_order(self_ptr self, const cart_view& cart) {
  auto& st = self->state;
  if (auto why = unpayable(st, cart)) {
    release(self, cart.cart_id);
    return finish(self, &*why);
  }
  persistence::order_record rec;
  rec.order_id = st.order_id;
  rec.idempotency_key = st.current.idempotency_key;
  rec.fingerprint = st.busy_fingerprint;
  rec.cart_id = cart.cart_id;
  rec.customer_id = cart.customer_id;
  rec.currency = cart.currency;
  rec.total_cents = cart.total_cents;
  for (const auto& item : cart.items) {
    rec.lines.push_back(
        persistence::order_line_record{item.sku, item.qty, item.price_cents, item.hold_id});
  }
  auto h = caf::actor_cast<order_impl>(self);
  st.env->orders->submit([h, rec = std::move(rec)](persistence::order_store* s) {
    order_created out;
    if (s == nullptr) {
      out.err = persistence::make_error(persistence::errc::unavailable, "no PostgreSQL connection");
    } else if (auto r = s->create(rec); !r) {
      out.err = std::move(r.error());
    } else {
      out.order = std::move(r->first);
      out.created = r->second;
    }
    caf::anon_send(h, created_atom::value, std::move(out));
  });
}

void on_created(self_ptr self, order_created& in) {
  auto& st = self->state;
  if (in.err) {
    logger()->warn("{}: creating the order failed: {}", st.order_id, caf::to_string(in.err));
    // Nothing is charged. Should the row exist after all, a retry or the reconciler finds it
    // pending, learns that no gateway has its key, and charges only after claiming the cart
    // again with the same lines.
    return fail_released(self, errc::unavailable, "orders unavailable; retry with the same key");
  }
  if (!in.created && in.order.fingerprint != st.busy_fingerprint) {
    // The key belongs to another checkout; the cart this request claimed is given back (unless
    // that other checkout is of the same cart: its claim stands).
    if (in.order.cart_id != st.current.cart_id) {
      release(self, st.current.cart_id);
    }
    st.order = std::move(in.order);
    return fail(self, errc::idempotency_conflict, "the key was used for another checkout");
  }
  st.order = std::move(in.order);
  if (in.created) {
    return charge(self);
  }
  resume(self);
}

/// Charges an order that no gateway has charged (its earlier attempt failed before a gateway
/// took it): only after claiming the cart again and finding exactly the order's lines in it, so
/// that a retry never pays for lines that changed while the cart was the shopper's.
void reclaim_and_charge(self_ptr self) {
  auto& st = self->state;
  st.busy = true;
  self->request(st.links.carts->acquire(st.order->cart_id), st.env->opts.call_timeout,
                checkout_atom::value, st.order_id, true, st.current.principal)
      .then(
          [self](cart_view& cart) {
            auto& o = *self->state.order;
            if (!same_lines(o, cart)) {
              return fail_released(self, errc::idempotency_conflict,
                                   "the cart changed since this key's checkout began; use a new "
                                   "Idempotency-Key");
            }
            if (auto why = unpayable(self->state, cart)) {
              release(self, o.cart_id);
              return finish(self, &*why);
            }
            charge(self);
          },
          [self](caf::error& err) {
            if (is(err, errc::not_found)) {
              return fail(self, errc::not_found, "no such cart");
            }
            finish(self, &err); // conflict: another checkout holds the cart
          });
}

/// Whether `principal` may see the order: a verified customer's orders are theirs alone.
bool may_see(const order_state& st, const std::string& principal) {
  return !st.env->opts.verify_customers || st.order->customer_id.empty() ||
         st.order->customer_id == principal;
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  const int64_t now = st.env->now_ms();
  st.tick.arm(self,
              st.handing_off ? now + detail::handoff_poll_ms
                             : st.last_active_ms + st.env->opts.idle_timeout.count(),
              now);
}

void touch(self_ptr self) {
  auto& st = self->state;
  ++st.received;
  st.last_active_ms = st.env->now_ms();
  schedule_tick(self);
}

order_impl::behavior_type running(self_ptr self) {
  return {
      [=](checkout_atom, checkout_request& req) -> caf::result<order_view> {
        auto& st = self->state;
        if (!st.loaded) {
          return caf::skip;
        }
        touch(self);
        const auto fp = fingerprint_of(req);
        if (st.order) {
          if (st.order->idempotency_key != req.idempotency_key || st.order->fingerprint != fp) {
            return make_error(errc::idempotency_conflict, "the key was used for another checkout");
          }
        } else if (st.busy && fp != st.busy_fingerprint) {
          return make_error(errc::idempotency_conflict, "the key was used for another checkout");
        }
        if (st.order && !may_see(st, req.principal)) {
          return make_error(errc::not_found, "no such cart");
        }
        auto rp = self->make_response_promise<order_view>();
        st.waiters.push_back(rp);
        if (st.busy) {
          return rp; // answered with the step under way
        }
        st.current = req;
        st.busy = true;
        if (st.order) {
          resume(self);
          return rp;
        }
        st.busy_fingerprint = fp;
        // Claim the cart: from now on its lines cannot change, and a second checkout of it
        // (another key) is refused before anything is charged.
        self->request(st.links.carts->acquire(req.cart_id), st.env->opts.call_timeout,
                      checkout_atom::value, st.order_id, true, req.principal)
            .then([self](cart_view& cart) { begin_order(self, cart); },
                  [self](caf::error& err) {
                    if (is(err, errc::not_found)) {
                      fail(self, errc::not_found, "no such cart");
                    } else if (is(err, errc::conflict)) {
                      finish(self, &err); // another checkout's claim: not ours to end
                    } else {
                      // The claim may have landed with its answer lost: nothing is charged,
                      // so give it back rather than leave the cart frozen.
                      fail_released(self, errc::unavailable,
                                    "the cart could not be reached; retry with the same key");
                    }
                  });
        return rp;
      },
      [=](caf::get_atom, const std::string& principal) -> caf::result<order_view> {
        auto& st = self->state;
        if (!st.loaded) {
          return caf::skip;
        }
        touch(self);
        if (!st.order || !may_see(st, principal)) {
          return make_error(errc::not_found, "no such order");
        }
        return view_of(*st.order);
      },
      [=](reconcile_atom) {
        auto& st = self->state;
        if (!st.loaded) {
          return; // loading: the next round settles it
        }
        touch(self);
        const bool refund_pending =
            st.order && st.order->refund && st.order->refund->status == "pending";
        if (!st.busy && st.order &&
            (st.order->status == "pending" || st.order->status == "paid" || refund_pending)) {
          logger()->info("{}: settling an order left {}", st.order_id, st.order->status);
          st.current = checkout_request{};
          resume(self);
        }
      },
      [=](loaded_atom, order_loaded& in) {
        auto& st = self->state;
        if (in.err) {
          logger()->warn("{}: loading failed: {}", st.order_id, caf::to_string(in.err));
          self->quit(in.err);
          return;
        }
        st.order = std::move(in.order);
        st.loaded = true;
        st.last_active_ms = st.env->now_ms();
        schedule_tick(self);
        self->become(running(self));
      },
      [=](created_atom, order_created& in) { on_created(self, in); },
      [=](charged_atom, order_charged& in) { on_charged(self, in); },
      [=](stored_atom, then_do next, const caf::error& err) { on_stored(self, next, err); },
      [=](refunded_atom, order_refunded& in) { on_refunded(self, in); },
      [=](tick_atom) {
        auto& st = self->state;
        st.tick.fired();
        if (!st.busy && st.waiters.empty() &&
            (st.handing_off ||
             st.env->now_ms() - st.last_active_ms >= st.env->opts.idle_timeout.count()) &&
            st.links.orders->try_release(st.order_id, self->address(), st.received)) {
          self->quit();
          return;
        }
        schedule_tick(self);
      },
      [=](handoff_atom, bool graceful) {
        auto& st = self->state;
        if (!graceful) {
          self->quit(make_error(errc::unavailable, "the shard of " + st.order_id + " moved"));
          return;
        }
        // The order is in PostgreSQL: the next owner loads it and resumes any step left.
        st.handing_off = true;
        schedule_tick(self);
      },
  };
}

order_impl::behavior_type order_main(self_ptr self, std::string order_id,
                                     std::shared_ptr<const entity_env> env, order_links links,
                                     entity_fence fence) {
  auto& st = self->state;
  st.order_id = order_id;
  st.env = std::move(env);
  st.links = links;
  st.fence = fence;
  auto* dir = links.orders;
  self->attach_functor(
      [dir, order_id, addr = self->address()](const caf::error&) { dir->forget(order_id, addr); });
  auto h = caf::actor_cast<order_impl>(self);
  st.env->orders->submit([h, order_id](persistence::order_store* s) {
    order_loaded out;
    if (s == nullptr) {
      out.err = persistence::make_error(persistence::errc::unavailable, "no PostgreSQL connection");
    } else if (auto r = s->load(order_id); !r) {
      out.err = std::move(r.error());
    } else {
      out.order = std::move(*r);
    }
    caf::anon_send(h, loaded_atom::value, std::move(out));
  });
  return running(self);
}

} // namespace

order_actor spawn_order(caf::actor_system& sys, const std::string& order_id,
                        std::shared_ptr<const entity_env> env, order_links links,
                        entity_fence fence) {
  return sys.spawn(order_main, order_id, std::move(env), links, fence);
}

} // namespace surge::actors
