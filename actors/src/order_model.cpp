#include "surge/actors/order_model.hpp"

#include <caf/error.hpp>

#include <algorithm>
#include <cstdio>
#include <map>

#include "surge/actors/errors.hpp"

namespace surge::actors {

namespace {

/// The answer to a checkout whose charge no gateway took (errc::payment_unavailable).
constexpr const char* gateways_unavailable = "the payment gateways were unavailable; retry";

using lvl = order_fx::log::level;

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

/// Appends `,"lines":[{"sku","qty"...}]` to `out`; `more(out, line)` appends a line's other
/// members.
template <class Line, class More>
void append_lines(std::string& out, const std::vector<Line>& lines, More more) {
  out += ",\"lines\":[";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += i == 0 ? "{\"sku\":" : ",{\"sku\":";
    append_json_string(out, lines[i].sku);
    out += ",\"qty\":" + std::to_string(lines[i].qty);
    more(out, lines[i]);
    out += '}';
  }
  out += ']';
}

/// The payment record of `r` for `o`: status approved (the money taken), declined, failed, or
/// for an approved authorisation where its money stands, authorized or voided.
persistence::payment_record payment_of(const persistence::order_record& o, const charge_result& r,
                                       int64_t at_ms = 0) {
  const bool open = r.status == charge_status::approved && r.money != funds::captured;
  return persistence::payment_record{
      o.idempotency_key, r.gateway,  r.charge_id, open ? to_string(r.money) : to_string(r.status),
      o.total_cents,     o.currency, at_ms};
}

/// The capture or void request of the authorisation `p` under `key`.
settle_request settle_of(const persistence::payment_record& p, std::string key) {
  return settle_request{std::move(key), p.idempotency_key, p.gateway, p.charge_id,
                        p.amount_cents, p.currency,        {}};
}

/// The fingerprint of an operator's refund request: its lines merged by SKU, in SKU order
/// ("*": everything not given back yet).
std::string refund_fingerprint(const std::vector<refund_line_view>& lines) {
  if (lines.empty()) {
    return "*";
  }
  std::map<std::string, int64_t> merged;
  for (const auto& l : lines) {
    merged[l.sku] += l.qty;
  }
  std::string out;
  for (const auto& [sku, qty] : merged) {
    out += sku + ':' + std::to_string(qty) + ',';
  }
  return hex128(out);
}

/// Whether a refund in `status` counts against what is left to refund.
bool counts(const std::string& status) {
  return status == "pending" || status == "refunded";
}

/// What a shopper is told of a cancelled order's refund.
std::string refund_message(const persistence::refund_record& r) {
  if (r.status == "refunded") {
    return "a hold expired before the order was confirmed; the order is cancelled and its "
           "charge was refunded";
  }
  if (r.status == "voided") {
    return "a hold expired before the order was confirmed; the order is cancelled and its "
           "payment authorisation was released: nothing was charged";
  }
  if (r.status == "failed") {
    return "a hold expired before the order was confirmed; the order is cancelled, but the "
           "gateway refused its refund: the shop has been told";
  }
  return "a hold expired before the order was confirmed; the order is cancelled and its refund "
         "is under way";
}

/// What a shopper is told of an order whose 3-D Secure was given up for `reason`.
std::string abandoned_message(const std::string& reason) {
  if (reason == "hold_expired") {
    return "a hold expired before 3-D Secure could begin; nothing was charged";
  }
  return "3-D Secure was not completed in time; nothing was charged and the items were put back";
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

/// Builds one decision: the free functions of the checkout, on the next state. Each method is
/// one step of order.hpp's contract.
class planner {
 public:
  using step = order_model::step;
  using then_do = order_model::then_do;

  planner(const std::string& order_id, const order_terms& terms, order_model::decision& d)
      : id_(order_id)
      , terms_(terms)
      , d_(d)
      , st_(d.next) {}

  void on(const order_in::loaded& in) {
    if (!in.order) {
      note(lvl::warn, id_ + ": loading failed: " + caf::to_string(in.order.error()));
      emit(order_fx::quit{in.order.error()});
      return;
    }
    st_.order = *in.order;
    st_.loaded = true;
  }

  void on(const order_in::checkout& in) {
    const auto& req = in.request;
    if (!st_.loaded) {
      d_.refused = make_error(errc::unavailable, "the order is loading; retry");
      return;
    }
    const auto fp = order_model::fingerprint_of(req);
    if (st_.order) {
      if (st_.order->idempotency_key != req.idempotency_key || st_.order->fingerprint != fp) {
        d_.refused =
            make_error(errc::idempotency_conflict, "the key was used for another checkout");
        return;
      }
    } else if (busy() && fp != st_.fingerprint) {
      d_.refused = make_error(errc::idempotency_conflict, "the key was used for another checkout");
      return;
    }
    if (st_.order && !may_see(req.principal)) {
      d_.refused = make_error(errc::not_found, "no such cart");
      return;
    }
    ++st_.waiters;
    if (busy()) {
      return; // answered with the step under way
    }
    st_.current = req;
    if (st_.order) {
      resume();
      return;
    }
    st_.fingerprint = fp;
    // Claim the cart: from now on its lines cannot change, and a second checkout of it (another
    // key) is refused before anything is charged.
    st_.under_way = step::claiming;
    emit(order_fx::claim_cart{req.cart_id, id_, req.principal, req.deadline_ms});
  }

  void on(const order_in::reconcile&) {
    if (!st_.loaded) {
      return; // loading: the next round settles it
    }
    const bool refund_pending =
        st_.order && st_.order->refund && st_.order->refund->status == "pending";
    if (!busy() && st_.order &&
        (st_.order->status == "pending" || st_.order->status == "paid" ||
         st_.order->status == "requires_action" || refund_pending)) {
      note(lvl::info, id_ + ": settling an order left " + st_.order->status);
      st_.current = checkout_request{};
      resume();
      return;
    }
    if (!busy() && st_.order) {
      for (const auto& r : st_.order->refunds) {
        if (r.status == "pending") {
          note(lvl::info, id_ + ": asking again for refund " + r.refund_id);
          st_.admin_refund = r.refund_id;
          st_.admin_replay = true;
          ask_gateway(r);
          return;
        }
      }
    }
  }

  void on(const order_in::refund_asked& in) {
    const auto& req = in.request;
    if (!st_.loaded) {
      d_.refused = make_error(errc::unavailable, "the order is loading; retry");
      return;
    }
    if (!st_.order) {
      d_.refused = make_error(errc::not_found, "no such order");
      return;
    }
    const auto rid = order_model::refund_id_of(id_, req.idempotency_key);
    const auto fp = refund_fingerprint(req.lines);
    if (const auto* r = find_refund(rid)) {
      replay(*r, fp);
      return;
    }
    if (busy()) {
      d_.refused = make_error(errc::unavailable,
                              "another step of the order is under way; retry with the same key");
      return;
    }
    auto rec = plan_refund(req, rid, fp);
    if (!rec) {
      return; // refused
    }
    note(lvl::info, id_ + ": refund " + rid + " of " + std::to_string(rec->amount_cents) +
                        " asked for; storing it pending");
    ++st_.refund_waiters;
    st_.admin_refund = rid;
    st_.admin_replay = false;
    st_.order->refunds.push_back(*rec);
    store_refund(*rec, "order.refund_requested", then_do::ask_refund);
  }

  void on(const order_in::claimed& in) {
    if (st_.under_way == step::claiming) {
      on_first_claim(in);
    } else if (st_.under_way == step::reclaiming) {
      on_reclaim(in);
    }
  }

  void on(const order_in::created& in) {
    if (st_.under_way != step::creating) {
      return;
    }
    if (!in.result) {
      note(lvl::warn, id_ + ": creating the order failed: " + caf::to_string(in.result.error()));
      // Nothing is charged. Should the row exist after all, a retry or the reconciler finds it
      // pending, learns that no gateway has its key, and charges only after claiming the cart
      // again with the same lines.
      fail_released(errc::unavailable, "orders unavailable; retry with the same key");
      return;
    }
    const auto& [order, made] = *in.result;
    if (!made && order.fingerprint != st_.fingerprint) {
      // The key belongs to another checkout; the cart this request claimed is given back (unless
      // that other checkout is of the same cart: its claim stands).
      if (order.cart_id != st_.current.cart_id) {
        release(st_.current.cart_id);
      }
      st_.order = order;
      fail(errc::idempotency_conflict, "the key was used for another checkout");
      return;
    }
    st_.order = order;
    if (made) {
      charge();
      return;
    }
    resume();
  }

  void on(const order_in::charged& in) {
    if (st_.under_way != step::charging && st_.under_way != step::looking_up) {
      return;
    }
    const bool from_lookup = st_.under_way == step::looking_up;
    const auto& r = in.result;
    auto& o = *st_.order;
    note(lvl::debug, id_ + ": charge " + to_string(r.status) + " (" +
                         (from_lookup ? "lookup" : "charge") + ") via " + r.gateway);
    switch (r.status) {
    case charge_status::approved:
      // Confirmed and paid are stored together (with the outbox event) once the holds are sold.
      // A crash before that leaves the order pending: the reconciler finds the charge by its key
      // and confirms again (retry-safe).
      st_.approved = payment_of(o, r, in.now_ms);
      if (r.money == funds::voided) {
        // Released before the order was stored (by the gateway, or an operator): it cannot be
        // paid for. The lines go back (retry-safe) and the order is cancelled.
        cancel_paid(0);
        return;
      }
      confirm_holds();
      return;
    case charge_status::declined:
      store("failed", "payment_declined", payment_of(o, r, in.now_ms), std::nullopt,
            then_do::reply_declined);
      return;
    case charge_status::failed:
      if (from_lookup && st_.waiters > 0 && !st_.current.token.empty()) {
        reclaim_and_charge(); // no gateway has it: it was never charged, so charge it now
      } else {
        store("failed", "payment_unavailable",
              from_lookup ? std::nullopt : std::optional{payment_of(o, r, in.now_ms)}, std::nullopt,
              then_do::reply_unavailable);
      }
      return;
    case charge_status::unknown:
      // Stays pending; the reconciler looks it up later. Never charged elsewhere meanwhile.
      fail(errc::payment_unavailable,
           "the payment outcome is not known yet; retry with the same key");
      return;
    case charge_status::requires_action:
      on_action_required(r, in.now_ms);
      return;
    }
  }

  void on(const order_in::holds_renewed& in) {
    if (st_.under_way != step::renewing) {
      return;
    }
    if (in.tally.gone > 0) {
      // A hold had expired before the shopper was even sent: this order cannot be paid for.
      note(lvl::warn, id_ + ": " + std::to_string(in.tally.gone) +
                          " hold(s) expired before 3-D Secure began: giving the payment up");
      abandon("hold_expired");
      return;
    }
    if (in.tally.failed > 0) {
      // Not renewed: they may expire before the shopper is back, which the confirmation then
      // finds (and the payment is released). Nothing is sold that is not held.
      note(lvl::warn, id_ + ": could not renew " + std::to_string(in.tally.failed) +
                          " hold(s) for 3-D Secure");
    }
    finish_ok(); // the shopper goes to authenticate: answered with the action
  }

  void on(const order_in::holds_dropped&) {
    if (st_.under_way != step::dropping) {
      return;
    }
    auto& o = *st_.order;
    o.payment->status = "voided";
    store("failed", st_.abandon_reason, o.payment, std::nullopt, then_do::reply_abandoned);
  }

  void on(const order_in::lines_confirmed& in) {
    if (st_.under_way != step::confirming) {
      return;
    }
    const auto& t = in.tally;
    if (t.failed > 0) {
      // Stays paid: the reconciler (or a retry) confirms again; confirming is retry-safe.
      fail(errc::unavailable, "could not confirm every hold yet; retry with the same key");
    } else if (t.gone > 0) {
      cancel_paid(t.gone);
    } else if (st_.approved && st_.approved->status == "authorized") {
      // Every hold is sold: now the money is taken (confirmed once it is).
      st_.under_way = step::capturing;
      emit(order_fx::capture{settle_of(*st_.approved, "capture-" + st_.order->idempotency_key)});
    } else {
      store("confirmed", "", st_.approved, order_model::event_of(*st_.order, "confirmed"),
            then_do::reply_confirmed);
    }
  }

  void on(const order_in::settled& in) {
    const auto& r = in.result;
    if (st_.under_way == step::capturing) {
      switch (r.status) {
      case settle_status::done:
        st_.approved->status = "approved";
        store("confirmed", "", st_.approved, order_model::event_of(*st_.order, "confirmed"),
              then_do::reply_confirmed);
        return;
      case settle_status::rejected:
        // Not paid after all (the authorisation expired or was released): the confirmed lines
        // go back to stock, then the order fails as unpaid.
        note(lvl::error, id_ + ": the gateway refused to capture the authorisation via " +
                             st_.approved->gateway + ": " + r.message);
        st_.approved->status = "capture_refused";
        st_.capture_refused = true;
        cancel_paid(0);
        return;
      case settle_status::unknown:
        // Stays pending: a retry or the reconciler looks the key up, confirms again (retry-safe)
        // and captures again under the same key.
        fail(errc::payment_unavailable, "the payment is being captured; retry with the same key");
        return;
      }
    }
    if (st_.under_way == step::abandoning) {
      switch (r.status) {
      case settle_status::done:
        // Nothing is charged: the stock goes back now, then the order fails.
        note(lvl::info, id_ + ": 3-D Secure given up (" + st_.abandon_reason +
                            "): the payment is released, the holds go back");
        st_.under_way = step::dropping;
        emit(order_fx::drop_holds{st_.order->cart_id, st_.order->customer_id, st_.order->currency,
                                  st_.order->lines});
        return;
      case settle_status::rejected:
        // Not open any more: the shopper finished after all (or the gateway ended it). What it
        // came to decides.
        note(lvl::info, id_ + ": the gateway would not release the payment (" + r.message +
                            "): looking it up");
        st_.abandon_reason.clear();
        st_.under_way = step::looking_up;
        emit(order_fx::lookup{st_.order->idempotency_key});
        return;
      case settle_status::unknown:
        // Stays requires_action: the reconciler tries again (same key, never voided twice).
        fail(errc::payment_unavailable,
             "the payment is waiting for 3-D Secure and is being released; retry with the "
             "same key");
        return;
      }
    }
    if (st_.under_way == step::voiding) {
      auto& o = *st_.order;
      switch (r.status) {
      case settle_status::done:
        note(lvl::info, id_ + ": voided the authorisation of " +
                            std::to_string(o.refund->amount_cents) + " via " + o.payment->gateway);
        o.payment->status = "voided";
        end_cancelled("voided", "", o.payment);
        return;
      case settle_status::rejected:
        note(lvl::error, id_ + ": the gateway refused to void the authorisation of " +
                             std::to_string(o.refund->amount_cents) + " via " + o.payment->gateway +
                             ": " + r.message + " (needs an operator)");
        end_cancelled("failed", "", std::nullopt);
        return;
      case settle_status::unknown:
        fail(errc::unavailable,
             "the order is cancelled and its payment is being released; retry with the same key");
        return;
      }
    }
  }

  void on(const order_in::lines_returned& in) {
    if (st_.under_way != step::returning) {
      return;
    }
    const auto& t = in.tally;
    auto& o = *st_.order;
    if (t.failed + t.gone > 0) {
      fail(errc::unavailable, "could not undo every confirmed line yet; retry");
      return;
    }
    if (st_.capture_refused) {
      st_.capture_refused = false;
      store("failed", "payment_unavailable", st_.approved, std::nullopt,
            then_do::reply_unavailable);
      return;
    }
    const bool authorised =
        st_.approved && (st_.approved->status == "authorized" || st_.approved->status == "voided");
    note(lvl::warn, id_ + (authorised ? ": authorised, but " : ": paid, but ") +
                        std::to_string(st_.gone) + " hold(s) had expired or changed: cancelled, " +
                        (authorised ? "voiding " : "refunding ") + std::to_string(o.total_cents));
    // The intent is durable before the gateway is asked: a crash now leaves the refund pending,
    // and the reconciler asks again (with the same refund key: never refunded twice).
    const auto amount = st_.approved ? st_.approved->amount_cents : o.total_cents;
    store("cancelled", "hold_expired", st_.approved, std::nullopt, then_do::refund,
          persistence::refund_record{"pending", "", amount});
  }

  void on(const order_in::stored& in) {
    if (st_.under_way != step::storing) {
      return;
    }
    if (in.err && !st_.admin_refund.empty()) {
      note(lvl::warn,
           id_ + ": storing refund " + st_.admin_refund + " failed: " + caf::to_string(in.err));
      end_admin_step(make_error(errc::unavailable, "orders unavailable; retry with the same key"));
      emit(order_fx::quit{in.err}); // the next incarnation reloads what PostgreSQL has
      return;
    }
    if (in.err) {
      note(lvl::warn,
           id_ + ": storing status " + st_.order->status + " failed: " + caf::to_string(in.err));
      // What PostgreSQL has is the truth: forget our copy, reload on the next request.
      fail(errc::unavailable, "orders unavailable; retry with the same key");
      emit(order_fx::quit{in.err});
      return;
    }
    switch (st_.after_store) {
    case then_do::reply_declined:
      fail_released(errc::payment_declined, "the payment was declined");
      return;
    case then_do::reply_unavailable:
      fail_released(errc::payment_unavailable, gateways_unavailable);
      return;
    case then_do::reply_hold_expired:
      fail_released(errc::hold_expired, refund_message(*st_.order->refund));
      return;
    case then_do::refund:
      refund();
      return;
    case then_do::ask_refund:
      ask_gateway(*find_refund(st_.admin_refund));
      return;
    case then_do::renew_holds:
      st_.under_way = step::renewing;
      emit(order_fx::renew_holds{st_.order->cart_id, st_.order->customer_id, st_.order->currency,
                                 st_.order->lines});
      return;
    case then_do::reply_abandoned:
      fail(errc::payment_declined, abandoned_message(st_.order->reason));
      return;
    case then_do::charge:
      charge();
      return;
    case then_do::reply_refund: {
      const auto& r = *find_refund(st_.admin_refund);
      if (r.status == "failed") {
        end_admin_step(
            make_error(errc::not_refundable, "the gateway refused the refund: " + r.message));
      } else {
        end_admin_step(order_model::refund_view_of(id_, r, st_.admin_replay));
      }
      return;
    }
    case then_do::reply_confirmed: {
      // The sold lines leave the cart; the order is confirmed whatever the cart says.
      std::vector<std::string> holds;
      for (const auto& l : st_.order->lines) {
        holds.push_back(l.hold_id);
      }
      st_.under_way = step::clearing;
      emit(order_fx::clear_cart{st_.order->cart_id, std::move(holds)});
      return;
    }
    }
  }

  void on(const order_in::refunded& in) {
    if (st_.under_way == step::admin_refunding) {
      on_admin_refunded(in.result);
      return;
    }
    if (st_.under_way != step::refunding) {
      return;
    }
    auto& o = *st_.order;
    const auto& r = in.result;
    switch (r.status) {
    case refund_status::refunded:
      note(lvl::info, id_ + ": refunded " + std::to_string(o.refund->amount_cents) + " via " +
                          o.payment->gateway + " (" + r.refund_id + ")");
      end_cancelled("refunded", r.refund_id, std::nullopt);
      return;
    case refund_status::rejected:
      note(lvl::error, id_ + ": the gateway refused the refund of " +
                           std::to_string(o.refund->amount_cents) + " via " + o.payment->gateway +
                           ": " + r.message + " (needs an operator)");
      end_cancelled("failed", "", std::nullopt);
      return;
    case refund_status::unknown:
      // Stays pending: the reconciler asks again with the same key.
      fail(errc::unavailable,
           "the order is cancelled and its refund is under way; retry with the same key");
      return;
    }
  }

  void on(const order_in::cleared&) {
    if (st_.under_way != step::clearing) {
      return;
    }
    finish_ok(); // the clear ended the claim
  }

 private:
  bool busy() const { return st_.under_way != step::idle; }

  persistence::order_refund_record* find_refund(const std::string& refund_id) {
    auto& v = st_.order->refunds;
    auto i =
        std::find_if(v.begin(), v.end(), [&](const auto& r) { return r.refund_id == refund_id; });
    return i == v.end() ? nullptr : &*i;
  }

  /// The operator's key again: the same refund (`r`) if the request is the same.
  void replay(const persistence::order_refund_record& r, const std::string& fp) {
    if (r.fingerprint != fp) {
      d_.refused = make_error(errc::idempotency_conflict, "the key was used for another refund");
      return;
    }
    if (busy() && st_.admin_refund == r.refund_id) {
      ++st_.refund_waiters; // answered with the step under way
      return;
    }
    if (r.status == "refunded") {
      d_.answered = order_model::refund_view_of(id_, r, true);
    } else if (r.status == "failed") {
      d_.refused = make_error(errc::not_refundable, "the gateway refused the refund: " + r.message);
    } else if (busy()) {
      d_.refused = make_error(errc::unavailable,
                              "another step of the order is under way; retry with the same key");
    } else {
      ++st_.refund_waiters; // pending: ask the gateway again, with the same key
      st_.admin_refund = r.refund_id;
      st_.admin_replay = true;
      ask_gateway(r);
    }
  }

  /// The new refund `rid` that `req` asks for, or nullopt with d_.refused set: only a paid order,
  /// never more of a line than was bought and not given back, never more than was charged.
  std::optional<persistence::order_refund_record>
  plan_refund(const order_refund_request& req, const std::string& rid, const std::string& fp) {
    const auto& o = *st_.order;
    auto refuse = [&](std::string msg) {
      d_.refused = make_error(errc::not_refundable, std::move(msg));
      return std::nullopt;
    };
    if ((o.status != "confirmed" && o.status != "paid") || !o.payment ||
        o.payment->status != "approved" || o.payment->gateway.empty()) {
      return refuse("only a paid order can be refunded; this one is " + o.status);
    }
    std::map<std::string, int64_t> left;  // by SKU: bought and not given back
    std::map<std::string, int64_t> price; // by SKU: the unit price paid
    for (const auto& l : o.lines) {
      left[l.sku] += l.qty;
      price.emplace(l.sku, l.price_cents);
    }
    int64_t reserved = 0;
    for (const auto& r : o.refunds) {
      if (counts(r.status)) {
        reserved += r.amount_cents;
        for (const auto& l : r.lines) {
          left[l.sku] -= l.qty;
        }
      }
    }
    std::map<std::string, int64_t> want;
    if (req.lines.empty()) {
      for (const auto& [sku, n] : left) {
        if (n > 0) {
          want[sku] = n;
        }
      }
      if (want.empty()) {
        return refuse("everything of this order is refunded already");
      }
    } else {
      for (const auto& l : req.lines) {
        want[l.sku] += l.qty;
      }
    }
    persistence::order_refund_record rec;
    for (const auto& [sku, n] : want) {
      auto i = left.find(sku);
      if (i == left.end()) {
        return refuse(sku + " was not bought in this order");
      }
      if (n <= 0 || n > i->second) {
        return refuse("only " + std::to_string(std::max<int64_t>(i->second, 0)) + " of " + sku +
                      " are left to refund");
      }
      rec.lines.push_back(persistence::refund_line{sku, n});
      rec.amount_cents += n * price[sku];
    }
    if (rec.amount_cents <= 0 || rec.amount_cents > o.payment->amount_cents - reserved) {
      return refuse("only " + std::to_string(o.payment->amount_cents - reserved) +
                    " of the charge are left to refund");
    }
    rec.refund_id = rid;
    rec.idempotency_key = req.idempotency_key;
    rec.fingerprint = fp;
    rec.gateway_key = "refund-" + rid.substr(3);
    rec.status = "pending";
    return rec;
  }

  /// Stores the operator's refund `r` (its intent or its outcome) with event `event_name`; the
  /// order's status stays. `next` follows once stored.
  void store_refund(const persistence::order_refund_record& r, const std::string& event_name,
                    then_do next) {
    const auto& o = *st_.order;
    st_.after_store = next;
    st_.under_way = step::storing;
    persistence::order_store::order_update u{o.status,
                                             o.reason,
                                             std::nullopt,
                                             std::nullopt,
                                             order_model::refund_event_of(o, r, event_name),
                                             r};
    emit(order_fx::update{id_, std::move(u)});
  }

  /// Asks the gateway that took the charge for the operator's refund `r` (stored pending).
  void ask_gateway(const persistence::order_refund_record& r) {
    const auto& p = *st_.order->payment;
    st_.under_way = step::admin_refunding;
    emit(order_fx::refund{refund_request{r.gateway_key, p.idempotency_key, p.gateway, p.charge_id,
                                         r.amount_cents, p.currency}});
  }

  void on_admin_refunded(const refund_result& res) {
    auto& r = *find_refund(st_.admin_refund);
    switch (res.status) {
    case refund_status::refunded:
      note(lvl::info, id_ + ": refund " + r.refund_id + " of " + std::to_string(r.amount_cents) +
                          " done via " + st_.order->payment->gateway + " (" + res.refund_id + ")");
      r.status = "refunded";
      r.gateway_refund_id = res.refund_id;
      store_refund(r, "order.refunded", then_do::reply_refund);
      return;
    case refund_status::rejected:
      note(lvl::error, id_ + ": the gateway refused refund " + r.refund_id + ": " + res.message);
      r.status = "failed";
      r.message = res.message;
      store_refund(r, "order.refund_failed", then_do::reply_refund);
      return;
    case refund_status::unknown:
      // Stays pending: the reconciler asks again with the same key.
      note(lvl::warn, id_ + ": refund " + r.refund_id + " outcome unknown: " + res.message);
      end_admin_step(order_model::refund_view_of(id_, r, st_.admin_replay));
      return;
    }
  }

  /// Ends the operator's refund step with `answer` to the operators waiting for it, and answers
  /// the checkouts that waited meanwhile as the order now stands.
  void end_admin_step(caf::expected<refund_view> answer) {
    st_.under_way = step::idle;
    st_.refund_waiters = 0;
    st_.admin_refund.clear();
    st_.admin_replay = false;
    emit(order_fx::refund_reply{std::move(answer)});
    if (st_.waiters > 0) {
      finish_ok();
    }
  }

  void emit(order_effect e) { d_.effects.push_back(std::move(e)); }

  void note(lvl level, std::string text) { emit(order_fx::log{level, std::move(text)}); }

  /// Whether `principal` may see the order: a verified customer's orders are theirs alone.
  bool may_see(const std::string& principal) const {
    return !terms_.verify_customers || st_.order->customer_id.empty() ||
           st_.order->customer_id == principal;
  }

  /// The cart this order's checkout claims: the order's, or the request's before there is one.
  const std::string& claimed_cart() const {
    return st_.order ? st_.order->cart_id : st_.current.cart_id;
  }

  /// Gives `cart` back to its shopper: the checkout ended and nothing is charged (or what was
  /// charged is refunded). Only this order's claim is ended; the cart ignores it otherwise.
  void release(const std::string& cart) { emit(order_fx::release_cart{cart, id_}); }

  /// Answers everyone waiting for the step under way. An error leaves the cart claimed: the
  /// order may still charge (its outcome is unknown, or it is paid and not yet confirmed), and a
  /// retry or the reconciler settles it.
  void finish(caf::expected<order_view> answer) {
    st_.under_way = step::idle;
    st_.waiters = 0;
    emit(order_fx::reply{std::move(answer)});
  }

  void finish_ok() { finish(order_model::view_of(*st_.order)); }

  void fail(errc code, std::string msg) { finish(make_error(code, std::move(msg))); }

  /// The checkout ended without a charge that stands (nothing charged, declined, or refunded):
  /// the cart is the shopper's again, then everyone is answered.
  void fail_released(errc code, std::string msg) {
    release(claimed_cart());
    fail(code, std::move(msg));
  }

  /// Why the cart's lines cannot be paid for now (empty: they can): a hold must outlive the
  /// payment, or stock would be sold that is no longer held; one order is in one currency.
  std::optional<caf::error> unpayable(const cart_view& cart, int64_t now) const {
    if (cart.items.empty()) {
      return make_error(errc::empty_cart, "the cart is empty");
    }
    const int64_t margin = std::min<int64_t>(5000, terms_.holds_ttl.count() / 4);
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

  void on_first_claim(const order_in::claimed& in) {
    if (!in.cart) {
      const auto& err = in.cart.error();
      if (is(err, errc::not_found)) {
        fail(errc::not_found, "no such cart");
      } else if (is(err, errc::conflict)) {
        finish(err); // another checkout's claim: not ours to end
      } else {
        // The claim may have landed with its answer lost: nothing is charged, so give it back
        // rather than leave the cart frozen.
        fail_released(errc::unavailable, "the cart could not be reached; retry with the same key");
      }
      return;
    }
    const auto& cart = *in.cart;
    if (auto why = unpayable(cart, in.now_ms)) {
      release(cart.cart_id);
      finish(std::move(*why));
      return;
    }
    persistence::order_record rec;
    rec.order_id = id_;
    rec.idempotency_key = st_.current.idempotency_key;
    rec.fingerprint = st_.fingerprint;
    rec.cart_id = cart.cart_id;
    rec.customer_id = cart.customer_id;
    rec.currency = cart.currency;
    rec.total_cents = cart.total_cents;
    rec.claimed_at_ms = in.now_ms;
    for (const auto& item : cart.items) {
      rec.lines.push_back(
          persistence::order_line_record{item.sku, item.qty, item.price_cents, item.hold_id});
    }
    st_.under_way = step::creating;
    emit(order_fx::create{std::move(rec)});
  }

  void on_reclaim(const order_in::claimed& in) {
    if (!in.cart) {
      const auto& err = in.cart.error();
      if (is(err, errc::not_found)) {
        fail(errc::not_found, "no such cart");
      } else {
        finish(err); // conflict: another checkout holds the cart
      }
      return;
    }
    const auto& o = *st_.order;
    if (!same_lines(o, *in.cart)) {
      fail_released(errc::idempotency_conflict,
                    "the cart changed since this key's checkout began; use a new Idempotency-Key");
      return;
    }
    if (auto why = unpayable(*in.cart, in.now_ms)) {
      release(o.cart_id);
      finish(std::move(*why));
      return;
    }
    if (o.status != "pending") {
      // Pending again before the gateway is asked: if the charge goes through and storing the
      // confirmation then fails (PostgreSQL restarting), the next incarnation and the reconciler
      // find a pending order and look its key up, not a failed one with a charge nobody knows.
      store("pending", "", std::nullopt, std::nullopt, then_do::charge);
      return;
    }
    charge();
  }

  /// Carries on with an order known from storage, as its status says.
  void resume() {
    const auto& o = *st_.order;
    if (o.status == "confirmed") {
      finish_ok();
    } else if (o.status == "pending") {
      // Its charge may or may not have reached a gateway: ask them before anything else.
      st_.under_way = step::looking_up;
      emit(order_fx::lookup{o.idempotency_key});
    } else if (o.status == "paid") {
      confirm_holds();
    } else if (o.status == "requires_action") {
      // The shopper may have authenticated meanwhile: the gateway says how it stands.
      st_.under_way = step::looking_up;
      emit(order_fx::lookup{o.idempotency_key});
    } else if (o.status == "failed" &&
               (o.reason == "action_expired" || (o.reason == "hold_expired" && !o.refund))) {
      fail(errc::payment_declined, abandoned_message(o.reason)); // the cart's claim has ended
    } else if (o.status == "failed" && o.reason == "payment_declined") {
      fail_released(errc::payment_declined, "the payment was declined");
    } else if (o.status == "failed" && o.reason == "payment_unavailable" && st_.waiters > 0 &&
               !st_.current.token.empty()) {
      reclaim_and_charge(); // nothing was charged: a retry may try again, with the same key
    } else if (o.refund && o.refund->status == "pending") {
      refund(); // cancelled after its charge, and the refund is not confirmed yet
    } else if (o.reason == "hold_expired") {
      fail_released(errc::hold_expired, o.refund ? refund_message(*o.refund)
                                                 : "a hold expired before the order was "
                                                   "confirmed; nothing was charged");
    } else if (o.reason == "payment_unavailable") {
      fail_released(errc::payment_unavailable, gateways_unavailable);
    } else {
      fail_released(errc::unavailable, o.reason.empty()
                                           ? std::string{"the order failed; retry"}
                                           : "the order failed (" + o.reason + "); retry");
    }
  }

  void charge() {
    const auto& o = *st_.order;
    st_.under_way = step::charging;
    charge_request req{o.idempotency_key, o.order_id,        o.total_cents,
                       o.currency,        st_.current.token, {}};
    req.capture = !terms_.capture_after_confirm; // else authorise: captured once confirmed
    if (!terms_.return_url.empty()) {
      req.return_url = terms_.return_url;
      if (const auto at = req.return_url.find("{order_id}"); at != std::string::npos) {
        req.return_url.replace(at, 10, id_);
      }
    }
    emit(order_fx::charge{std::move(req)});
  }

  /// The gateway wants the shopper to authenticate (3-D Secure). The first time, the order is
  /// stored requires_action (its reason: where the shopper goes), its holds are renewed, and the
  /// checkout is answered with the action. Later (a retry, the reconciler, a gateway's webhook
  /// or the shopper's return found it still open): answered as it stands, or, once
  /// terms_.action_ttl has passed since the gateway's answer, given up.
  void on_action_required(const charge_result& r, int64_t now) {
    auto& o = *st_.order;
    if (o.status != "requires_action") {
      note(lvl::info,
           id_ + ": " + r.gateway + " asks for 3-D Secure; the shopper is sent to " + r.action_url);
      store("requires_action", r.action_url, payment_of(o, r, now), std::nullopt,
            then_do::renew_holds);
      return;
    }
    const int64_t since = o.payment ? o.payment->charged_at_ms : 0;
    if (since > 0 && now >= since + terms_.action_ttl.count()) {
      note(lvl::info, id_ + ": 3-D Secure not completed within " +
                          std::to_string(terms_.action_ttl.count()) + " ms: giving it up");
      abandon("action_expired");
      return;
    }
    finish_ok();
  }

  /// Gives up a payment that still requires action: the gateway releases it (void), then the
  /// holds go back and the order fails with `reason`.
  void abandon(std::string reason) {
    st_.abandon_reason = std::move(reason);
    st_.under_way = step::abandoning;
    emit(order_fx::void_payment{
        settle_of(*st_.order->payment, "void-" + st_.order->idempotency_key)});
  }

  /// Charges an order that no gateway has charged (its earlier attempt failed before a gateway
  /// took it): only after claiming the cart again and finding exactly the order's lines in it, so
  /// that a retry never pays for lines that changed while the cart was the shopper's.
  void reclaim_and_charge() {
    st_.under_way = step::reclaiming;
    emit(order_fx::claim_cart{st_.order->cart_id, id_, st_.current.principal,
                              st_.current.deadline_ms});
  }

  void confirm_holds() {
    const auto& o = *st_.order;
    st_.under_way = step::confirming;
    emit(order_fx::confirm_lines{id_, o.cart_id, o.lines});
  }

  /// Paid, but `gone` holds had expired (or changed) before they were confirmed: the order
  /// cannot be fulfilled. The lines that were confirmed go back to stock first (so that what is
  /// sold always equals the confirmed orders' lines), then the order is stored as cancelled with
  /// its refund pending, and the refund is asked for. Returning is retry-safe: if a SKU cannot be
  /// reached, the order stays as stored (pending) and the next attempt (a retry or the
  /// reconciler) finds the charge, confirms — the returned lines now answer not_found — and
  /// returns again.
  void cancel_paid(std::size_t gone) {
    st_.gone = gone;
    st_.under_way = step::returning;
    emit(order_fx::return_lines{id_, st_.order->lines});
  }

  /// Asks the gateway that took the charge to give it back (the order is stored cancelled with
  /// its refund pending).
  void refund() {
    const auto& o = *st_.order;
    if (!o.payment || o.payment->gateway.empty()) {
      // No charge is recorded (cannot happen for an order cancelled after its charge): nothing to
      // give back, and nobody to ask.
      note(lvl::error, id_ + ": refund pending, but no charge is recorded");
      store("cancelled", o.reason, std::nullopt, order_model::event_of(o, "cancelled"),
            then_do::reply_hold_expired, persistence::refund_record{"failed", "", 0});
      return;
    }
    if (o.payment->status == "authorized" || o.payment->status == "voided") {
      // Nothing was taken: the authorisation is released instead (voiding again is done again).
      st_.under_way = step::voiding;
      emit(order_fx::void_payment{settle_of(*o.payment, "void-" + o.idempotency_key)});
      return;
    }
    st_.under_way = step::refunding;
    emit(order_fx::refund{refund_request{"refund-" + o.idempotency_key, o.idempotency_key,
                                         o.payment->gateway, o.payment->charge_id,
                                         o.refund->amount_cents, o.payment->currency}});
  }

  /// Stores a new status (with payment, refund and outbox event); `next` follows once stored.
  /// The money of an order cancelled after its payment is settled: its refund ends `status`
  /// (refunded, voided or failed), stored with `payment` when it changed, then answered
  /// hold_expired.
  void end_cancelled(std::string status, std::string refund_id,
                     std::optional<persistence::payment_record> payment) {
    auto& o = *st_.order;
    o.refund =
        persistence::refund_record{std::move(status), std::move(refund_id), o.refund->amount_cents};
    store("cancelled", o.reason, std::move(payment), order_model::event_of(o, "cancelled"),
          then_do::reply_hold_expired, o.refund);
  }

  void store(std::string status, std::string reason,
             std::optional<persistence::payment_record> payment,
             std::optional<persistence::outbox_event> event, then_do next,
             std::optional<persistence::refund_record> refund = std::nullopt) {
    auto& o = *st_.order;
    o.status = status;
    o.reason = reason;
    if (payment) {
      o.payment = payment;
    }
    if (refund) {
      o.refund = refund;
    }
    st_.after_store = next;
    st_.under_way = step::storing;
    emit(order_fx::update{id_, persistence::order_store::order_update{
                                   std::move(status), std::move(reason), std::move(payment),
                                   std::move(refund), std::move(event)}});
  }

  const std::string& id_;
  const order_terms& terms_;
  order_model::decision& d_;
  order_model::state& st_;
};

} // namespace

order_model::order_model(std::string order_id, order_terms terms)
    : order_id_(std::move(order_id))
    , terms_(terms) {}

order_model::decision order_model::decide(const order_input& in) const {
  decision d{state_, {}, {}, {}};
  planner p{order_id_, terms_, d};
  std::visit([&p](const auto& x) { p.on(x); }, in);
  return d;
}

std::vector<order_effect> order_model::apply(decision d) {
  state_ = std::move(d.next);
  return std::move(d.effects);
}

caf::expected<order_view> order_model::view_for(const std::string& principal) const {
  const auto& o = state_.order;
  if (!o || (terms_.verify_customers && !o->customer_id.empty() && o->customer_id != principal)) {
    return make_error(errc::not_found, "no such order");
  }
  return view_of(*o);
}

std::string order_model::fingerprint_of(const checkout_request& req) {
  return hex128(req.cart_id + '\x1f' + req.method + '\x1f' + req.token);
}

order_view order_model::view_of(const persistence::order_record& o) {
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

persistence::outbox_event order_model::event_of(const persistence::order_record& o,
                                                const std::string& status) {
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
  append_lines(j, o.lines, [](std::string& out, const persistence::order_line_record& l) {
    out += ",\"price_cents\":" + std::to_string(l.price_cents);
  });
  if (o.refund) {
    j += ",\"refund_status\":";
    append_json_string(j, o.refund->status);
    j += ",\"refund_cents\":" + std::to_string(o.refund->amount_cents);
  }
  j += '}';
  return persistence::outbox_event{0, "orders", o.order_id, std::move(j)};
}

std::string order_model::refund_id_of(const std::string& order_id, const std::string& key) {
  return "rf_" + hex128(order_id + '\x1f' + key);
}

persistence::outbox_event order_model::refund_event_of(const persistence::order_record& o,
                                                       const persistence::order_refund_record& r,
                                                       const std::string& name) {
  int64_t refunded = 0;
  for (const auto& x : o.refunds) {
    refunded += x.status == "refunded" ? x.amount_cents : 0;
  }
  std::string j = "{\"event\":";
  append_json_string(j, name);
  j += ",\"order_id\":";
  append_json_string(j, o.order_id);
  j += ",\"refund_id\":";
  append_json_string(j, r.refund_id);
  j += ",\"status\":";
  append_json_string(j, r.status);
  j += ",\"amount_cents\":" + std::to_string(r.amount_cents) + ",\"currency\":";
  append_json_string(j, o.currency);
  append_lines(j, r.lines, [](std::string&, const persistence::refund_line&) {});
  j += ",\"refunded_cents\":" + std::to_string(refunded) + "}";
  return persistence::outbox_event{0, "refunds", o.order_id, std::move(j)};
}

refund_view order_model::refund_view_of(const std::string& order_id,
                                        const persistence::order_refund_record& r, bool replay) {
  refund_view v{r.refund_id, order_id, r.amount_cents, {}, r.status, replay};
  for (const auto& l : r.lines) {
    v.lines.push_back(refund_line_view{l.sku, l.qty});
  }
  return v;
}

} // namespace surge::actors
