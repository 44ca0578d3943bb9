// order_model alone: every decision of a checkout, fed its inputs by hand. No actors, no I/O.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "surge/actors/errors.hpp"
#include "surge/actors/order_model.hpp"

using namespace surge;
using namespace surge::actors;
using persistence::order_record;

namespace {

constexpr int64_t t0 = 1'700'000'000'000; ///< the wall clock of these tests, in ms
constexpr int64_t minute = 60'000;

/// The name of an effect, for comparing effect lists.
std::string kind_of(const order_effect& e) {
  static const char* const names[] = {
      "claim_cart", "release_cart",  "clear_cart",   "create",       "update",      "charge",
      "lookup",     "confirm_lines", "return_lines", "refund",       "reply",       "quit",
      "log",        "refund_reply",  "capture",      "void_payment", "renew_holds", "drop_holds"};
  static_assert(std::size(names) == std::variant_size_v<order_effect>);
  return names[e.index()];
}

/// The effects' names in order, without log lines: "claim_cart,reply".
std::string kinds(const std::vector<order_effect>& fx) {
  std::string out;
  for (const auto& e : fx) {
    if (std::holds_alternative<order_fx::log>(e)) {
      continue;
    }
    out += (out.empty() ? "" : ",") + kind_of(e);
  }
  return out;
}

template <class T>
const T& the(const std::vector<order_effect>& fx) {
  const T* found = nullptr;
  for (const auto& e : fx) {
    if (const auto* x = std::get_if<T>(&e)) {
      REQUIRE_MESSAGE(found == nullptr, "two effects of one kind in " << kinds(fx));
      found = x;
    }
  }
  REQUIRE_MESSAGE(found != nullptr, "no such effect in " << kinds(fx));
  return *found;
}

/// The logged lines of `fx` at `level`.
std::vector<std::string> logs(const std::vector<order_effect>& fx, order_fx::log::level level) {
  std::vector<std::string> out;
  for (const auto& e : fx) {
    if (const auto* l = std::get_if<order_fx::log>(&e); l != nullptr && l->lvl == level) {
      out.push_back(l->text);
    }
  }
  return out;
}

/// The error the reply of `fx` carries (REQUIRES: a reply with an error).
caf::error error_of(const std::vector<order_effect>& fx) {
  const auto& r = the<order_fx::reply>(fx);
  REQUIRE_MESSAGE(!r.answer, "the reply is an order, not an error");
  return r.answer.error();
}

order_view view_of(const std::vector<order_effect>& fx) {
  const auto& r = the<order_fx::reply>(fx);
  REQUIRE_MESSAGE(r.answer, "the reply is " << caf::to_string(r.answer.error()));
  return *r.answer;
}

cart_line_view line(std::string sku, int64_t qty, int64_t price, std::string hold,
                    int64_t expires = t0 + 10 * minute, std::string currency = "USD") {
  return cart_line_view{std::move(sku), qty, price, std::move(currency), std::move(hold), expires};
}

/// A cart of `lines`, its total and currency as the cart actor computes them.
cart_view cart_of(std::vector<cart_line_view> lines, std::string customer = "") {
  cart_view c;
  c.cart_id = "cart-1";
  c.customer_id = std::move(customer);
  for (const auto& l : lines) {
    c.total_cents += l.qty * l.price_cents;
  }
  c.currency = lines.empty() ? "" : lines.front().currency;
  c.items = std::move(lines);
  return c;
}

cart_view two_lines() {
  return cart_of({line("A", 2, 1250, "h-a"), line("B", 1, 499, "h-b")});
}

checkout_request request(std::string key = "key-1", std::string token = "tok_ok",
                         std::string principal = "") {
  return checkout_request{std::move(key), "cart-1", "card", std::move(token), std::move(principal)};
}

charge_result approved(std::string gateway = "alpha") {
  return charge_result{charge_status::approved, std::move(gateway), "ch_1", "approved"};
}

/// An approved authorisation (payments.capture=after_confirm), or where its money stands.
charge_result authorised(funds money = funds::authorized, std::string gateway = "alpha") {
  auto r = approved(std::move(gateway));
  r.money = money;
  return r;
}

/// A gateway's answer that the shopper must authenticate (3-D Secure) first.
charge_result needs_action(std::string url = "https://alpha.example/3ds/ch_1") {
  charge_result r{charge_status::requires_action, "alpha", "ch_1", "3-D Secure"};
  r.action_url = std::move(url);
  return r;
}

/// Terms with 3-D Secure's window and return address.
order_terms action_terms(bool after_confirm = false) {
  order_terms t{std::chrono::minutes{10}, false, after_confirm};
  t.action_ttl = std::chrono::minutes{10};
  t.return_url = "http://shop.example/api/v1/orders/{order_id}/return";
  return t;
}

settle_result settled_as(settle_status s, std::string msg = "msg") {
  return settle_result{s, std::move(msg)};
}

charge_result with_status(charge_status s) {
  return charge_result{s, s == charge_status::declined ? "alpha" : "", "", "msg"};
}

/// One order model, fed by hand.
struct harness {
  order_model m;

  explicit harness(order_terms terms = {std::chrono::minutes{10}, false})
      : m("order-1", terms) {
    CHECK(feed(order_in::loaded{std::optional<order_record>{}}).empty());
    REQUIRE(m.loaded());
  }

  /// Decides `in`, checks that deciding changed nothing, applies it; returns the effects.
  std::vector<order_effect> feed(order_input in) {
    const auto before = m.current().under_way;
    const auto waiters = m.current().waiters;
    auto d = m.decide(in);
    CHECK(m.current().under_way == before);
    CHECK(m.current().waiters == waiters);
    REQUIRE_MESSAGE(!d.refused, caf::to_string(d.refused));
    return m.apply(std::move(d));
  }

  /// A checkout refused at once: its error (and no effects, no waiter).
  caf::error refused(checkout_request req) {
    const auto waiters = m.current().waiters;
    auto d = m.decide(order_in::checkout{std::move(req)});
    REQUIRE(d.refused);
    CHECK(d.effects.empty());
    auto err = d.refused;
    m.apply(std::move(d));
    CHECK(m.current().waiters == waiters);
    return err;
  }

  std::vector<order_effect> checkout(checkout_request req = request()) {
    return feed(order_in::checkout{std::move(req)});
  }

  /// The order row the store answers a create with: what was asked, plus created_at.
  static order_record as_created(const std::vector<order_effect>& fx) {
    auto o = the<order_fx::create>(fx).order;
    o.created_at_ms = t0;
    return o;
  }

  /// Runs a new checkout of `cart` up to the charge: claim, create. Returns the charge's effects.
  std::vector<order_effect> up_to_charge(cart_view cart = two_lines(),
                                         checkout_request req = request()) {
    REQUIRE(kinds(checkout(std::move(req))) == "claim_cart");
    auto fx = feed(order_in::claimed{std::move(cart), t0});
    REQUIRE(kinds(fx) == "create");
    fx = feed(order_in::created{std::make_pair(as_created(fx), true)});
    REQUIRE(kinds(fx) == "charge");
    return fx;
  }

  /// A new checkout approved, one of its holds gone, the others returned, stored cancelled:
  /// up to the refund. Returns the refund's effects.
  std::vector<order_effect> up_to_refund() {
    up_to_charge();
    REQUIRE(kinds(feed(order_in::charged{approved()})) == "confirm_lines");
    REQUIRE(kinds(feed(order_in::lines_confirmed{{1, 0}})) == "return_lines");
    REQUIRE(kinds(feed(order_in::lines_returned{{}})) == "update");
    auto fx = feed(order_in::stored{});
    REQUIRE(kinds(fx) == "refund");
    return fx;
  }

  /// A new checkout whose gateway asks for 3-D Secure (at t0), up to the answer with the action:
  /// stored requires_action, holds renewed.
  void up_to_action() {
    up_to_charge();
    REQUIRE(kinds(feed(order_in::charged{needs_action(), t0})) == "update");
    REQUIRE(kinds(feed(order_in::stored{})) == "renew_holds");
    REQUIRE(kinds(feed(order_in::holds_renewed{{}})) == "reply");
  }

  /// Up to a confirmed order, answering every step with success.
  order_view confirmed() {
    up_to_charge();
    REQUIRE(kinds(feed(order_in::charged{approved()})) == "confirm_lines");
    REQUIRE(kinds(feed(order_in::lines_confirmed{{}})) == "update");
    REQUIRE(kinds(feed(order_in::stored{})) == "clear_cart");
    auto fx = feed(order_in::cleared{});
    REQUIRE(kinds(fx) == "reply");
    return view_of(fx);
  }
};

/// A cart's answer to a claim, and what the order must do with it.
struct claim_case {
  const char* name;
  caf::expected<cart_view> answer;
  const char* effects; ///< kinds() of the decision
  errc replied;        ///< the error everyone waiting is answered with
};

/// Feeds `c.answer` to `h` (whose claim is under way) and checks the decision.
void check_claim_answer(harness& h, const claim_case& c) {
  auto fx = h.feed(order_in::claimed{c.answer, t0});
  REQUIRE(kinds(fx) == c.effects);
  CHECK(is(error_of(fx), c.replied));
}

} // namespace

TEST_SUITE("order_model") {

  TEST_CASE("a checkout: claim, create from the cart's lines, charge, confirm, store, clear, "
            "reply") {
    harness h;
    auto fx = h.checkout(request("key-1", "tok_ok", "cust-9"));
    REQUIRE(kinds(fx) == "claim_cart");
    CHECK(the<order_fx::claim_cart>(fx).cart_id == "cart-1");
    CHECK(the<order_fx::claim_cart>(fx).order_id == "order-1");
    CHECK(the<order_fx::claim_cart>(fx).principal == "cust-9");
    CHECK(h.m.busy());
    CHECK(h.m.current().waiters == 1);
    CHECK(!h.m.idle());

    fx = h.feed(order_in::claimed{
        cart_of({line("A", 2, 1250, "h-a"), line("B", 1, 499, "h-b")}, "cust-9"), t0});
    REQUIRE(kinds(fx) == "create");
    const auto& rec = the<order_fx::create>(fx).order;
    CHECK(rec.order_id == "order-1");
    CHECK(rec.idempotency_key == "key-1");
    CHECK(rec.fingerprint == order_model::fingerprint_of(request("key-1", "tok_ok", "cust-9")));
    CHECK(rec.cart_id == "cart-1");
    CHECK(rec.customer_id == "cust-9");
    CHECK(rec.total_cents == 2 * 1250 + 499);
    CHECK(rec.currency == "USD");
    CHECK(rec.status == "pending");
    REQUIRE(rec.lines.size() == 2);
    CHECK(rec.lines[0].sku == "A");
    CHECK(rec.lines[0].qty == 2);
    CHECK(rec.lines[0].price_cents == 1250);
    CHECK(rec.lines[0].hold_id == "h-a");

    fx = h.feed(order_in::created{std::make_pair(harness::as_created(fx), true)});
    REQUIRE(kinds(fx) == "charge");
    const auto& ch = the<order_fx::charge>(fx).request;
    CHECK(ch.idempotency_key == "key-1");
    CHECK(ch.order_id == "order-1");
    CHECK(ch.amount_cents == 2999);
    CHECK(ch.currency == "USD");
    CHECK(ch.token == "tok_ok");
    CHECK(!ch.may_send); // the actor fences it

    fx = h.feed(order_in::charged{approved()});
    REQUIRE(kinds(fx) == "confirm_lines");
    CHECK(logs(fx, order_fx::log::level::debug) ==
          std::vector<std::string>{"order-1: charge approved (charge) via alpha"});
    const auto& conf = the<order_fx::confirm_lines>(fx);
    CHECK(conf.order_id == "order-1");
    CHECK(conf.cart_id == "cart-1");
    CHECK(conf.lines.size() == 2);
    CHECK(h.m.current().order->status == "pending"); // paid is stored with confirmed

    fx = h.feed(order_in::lines_confirmed{{}});
    REQUIRE(kinds(fx) == "update");
    const auto& up = the<order_fx::update>(fx);
    CHECK(up.order_id == "order-1");
    CHECK(up.change.status == "confirmed");
    CHECK(up.change.reason.empty());
    REQUIRE(up.change.payment);
    CHECK(up.change.payment->idempotency_key == "key-1");
    CHECK(up.change.payment->gateway == "alpha");
    CHECK(up.change.payment->charge_id == "ch_1");
    CHECK(up.change.payment->status == "approved");
    CHECK(up.change.payment->amount_cents == 2999);
    CHECK(!up.change.refund);
    REQUIRE(up.change.event);
    CHECK(up.change.event->topic == "orders");
    CHECK(up.change.event->key == "order-1");
    CHECK(up.change.event->payload ==
          R"({"order_id":"order-1","status":"confirmed","cart_id":"cart-1","customer_id":"cust-9",)"
          R"("total_cents":2999,"currency":"USD","lines":[{"sku":"A","qty":2,"price_cents":1250},)"
          R"({"sku":"B","qty":1,"price_cents":499}]})");

    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "clear_cart");
    CHECK(the<order_fx::clear_cart>(fx).cart_id == "cart-1");
    CHECK(the<order_fx::clear_cart>(fx).hold_ids == std::vector<std::string>{"h-a", "h-b"});
    CHECK(h.m.busy()); // answered once the cart dropped the sold lines

    fx = h.feed(order_in::cleared{});
    REQUIRE(kinds(fx) == "reply");
    const auto v = view_of(fx);
    CHECK(v.order_id == "order-1");
    CHECK(v.status == "confirmed");
    CHECK(v.total_cents == 2999);
    CHECK(v.created_at_ms == t0);
    CHECK(v.lines.size() == 2);
    CHECK(v.refund_status.empty());
    CHECK(h.m.idle());
    CHECK(h.m.current().waiters == 0);
  }

  TEST_CASE("retries return the first result: a confirmed order answers at once, charging "
            "nothing") {
    harness h;
    const auto first = h.confirmed();
    auto fx = h.checkout();
    REQUIRE(kinds(fx) == "reply");
    const auto again = view_of(fx);
    CHECK(again.order_id == first.order_id);
    CHECK(again.status == "confirmed");
    CHECK(again.created_at_ms == first.created_at_ms);
    CHECK(h.m.idle());
    // Another token, cart or key with this order's id: refused at once.
    CHECK(is(h.refused(request("key-1", "tok_decline")), errc::idempotency_conflict));
    auto other_cart = request();
    other_cart.cart_id = "cart-2";
    CHECK(is(h.refused(other_cart), errc::idempotency_conflict));
    CHECK(is(h.refused(request("key-2")), errc::idempotency_conflict));
    CHECK(h.m.view_for("")->status == "confirmed");
  }

  TEST_CASE("askers while a step is under way wait for its reply; another request is refused") {
    harness h;
    REQUIRE(kinds(h.checkout()) == "claim_cart");
    CHECK(h.checkout().empty()); // the same checkout again: waits
    CHECK(h.checkout().empty());
    CHECK(h.m.current().waiters == 3);
    // Before the order exists, the request's fingerprint decides.
    CHECK(is(h.refused(request("key-1", "tok_other")), errc::idempotency_conflict));
    auto fx = h.feed(order_in::claimed{two_lines(), t0});
    CHECK(h.checkout().empty());
    CHECK(h.m.current().waiters == 4);
    fx = h.feed(order_in::created{std::make_pair(harness::as_created(fx), true)});
    REQUIRE(kinds(fx) == "charge");
    // Once the order exists, its key and fingerprint decide.
    CHECK(is(h.refused(request("key-1", "tok_other")), errc::idempotency_conflict));
    CHECK(h.checkout().empty());
    fx = h.feed(order_in::charged{with_status(charge_status::unknown)});
    REQUIRE(kinds(fx) == "reply"); // one reply, delivered to all five
    CHECK(is(error_of(fx), errc::payment_unavailable));
    CHECK(h.m.current().waiters == 0);
  }

  TEST_CASE("a decline gives the cart back; retries of the key are declined without a charge") {
    harness h;
    h.up_to_charge();
    auto fx = h.feed(order_in::charged{with_status(charge_status::declined)});
    REQUIRE(kinds(fx) == "update");
    const auto& up = the<order_fx::update>(fx).change;
    CHECK(up.status == "failed");
    CHECK(up.reason == "payment_declined");
    REQUIRE(up.payment);
    CHECK(up.payment->status == "declined");
    CHECK(!up.event);
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(the<order_fx::release_cart>(fx).cart_id == "cart-1");
    CHECK(the<order_fx::release_cart>(fx).order_id == "order-1");
    CHECK(is(error_of(fx), errc::payment_declined));
    CHECK(h.m.idle());

    fx = h.checkout();
    CHECK(kinds(fx) == "release_cart,reply");
    CHECK(is(error_of(fx), errc::payment_declined));
    CHECK(is(h.refused(request("key-1", "tok_other")), errc::idempotency_conflict));
    CHECK(h.m.view_for("")->status == "failed");
    CHECK(h.m.view_for("")->reason == "payment_declined");
  }

  TEST_CASE("an unknown outcome keeps the cart claimed and the order pending; a retry looks it "
            "up") {
    harness h;
    h.up_to_charge();
    auto fx = h.feed(order_in::charged{with_status(charge_status::unknown)});
    REQUIRE(kinds(fx) == "reply"); // no release_cart: a charge may stand
    CHECK(is(error_of(fx), errc::payment_unavailable));
    CHECK(h.m.current().order->status == "pending");
    CHECK(h.m.idle());

    fx = h.checkout();
    REQUIRE(kinds(fx) == "lookup");
    CHECK(the<order_fx::lookup>(fx).idempotency_key == "key-1");
    fx = h.feed(order_in::charged{approved("beta")});
    CHECK(logs(fx, order_fx::log::level::debug) ==
          std::vector<std::string>{"order-1: charge approved (lookup) via beta"});
    REQUIRE(kinds(fx) == "confirm_lines");
    fx = h.feed(order_in::lines_confirmed{{}});
    CHECK(the<order_fx::update>(fx).change.payment->gateway == "beta");
    h.feed(order_in::stored{});
    CHECK(view_of(h.feed(order_in::cleared{})).status == "confirmed");
  }

  TEST_CASE("gateways unavailable: stored failed, the cart given back; the key's retry re-claims "
            "and charges the same lines") {
    harness h;
    h.up_to_charge();
    auto fx = h.feed(order_in::charged{with_status(charge_status::failed)});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.status == "failed");
    CHECK(the<order_fx::update>(fx).change.reason == "payment_unavailable");
    CHECK(the<order_fx::update>(fx).change.payment->status == "failed");
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(is(error_of(fx), errc::payment_unavailable));

    fx = h.checkout(request("key-1", "tok_ok", "cust-1"));
    REQUIRE(kinds(fx) == "claim_cart");
    CHECK(the<order_fx::claim_cart>(fx).principal == "cust-1");
    // The lines in another order (and another cart listing) are the same lines.
    fx = h.feed(order_in::claimed{cart_of({line("B", 1, 499, "h-b"), line("A", 2, 1250, "h-a")}),
                                  t0 + minute});
    // Stored pending again before the charge: a charge that goes through is then never left
    // behind a failed row (if storing the confirmation fails, a lookup of the key finds it).
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.status == "pending");
    CHECK(h.m.view_for("")->status == "pending");
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "charge");
    CHECK(the<order_fx::charge>(fx).request.amount_cents == 2999);
    CHECK(the<order_fx::charge>(fx).request.idempotency_key == "key-1");
    REQUIRE(kinds(h.feed(order_in::charged{approved()})) == "confirm_lines");
  }

  TEST_CASE("re-claim with changed lines is 422 and gives the cart back; other re-claim "
            "answers") {
    auto with_line = [](cart_view c, cart_line_view l) {
      c.items.push_back(std::move(l));
      return c;
    };
    const std::vector<claim_case> cases{
        {"another quantity", cart_of({line("A", 3, 1250, "h-a"), line("B", 1, 499, "h-b")}),
         "release_cart,reply", errc::idempotency_conflict},
        {"a line more", with_line(two_lines(), line("C", 1, 100, "h-c")), "release_cart,reply",
         errc::idempotency_conflict},
        {"another hold for the same line",
         cart_of({line("A", 2, 1250, "h-a2"), line("B", 1, 499, "h-b")}), "release_cart,reply",
         errc::idempotency_conflict},
        {"the same lines, but a hold about to expire",
         cart_of({line("A", 2, 1250, "h-a", t0 + 4000), line("B", 1, 499, "h-b")}),
         "release_cart,reply", errc::hold_expired},
        {"the cart is gone", make_error(errc::not_found, "x"), "reply", errc::not_found},
        {"another checkout holds the cart: not ours to give back",
         make_error(errc::conflict, "claimed"), "reply", errc::conflict},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      harness h;
      h.up_to_charge();
      h.feed(order_in::charged{with_status(charge_status::failed)});
      h.feed(order_in::stored{});
      REQUIRE(kinds(h.checkout()) == "claim_cart");
      check_claim_answer(h, c);
    }
  }

  TEST_CASE("the first claim's answers: no cart, another claim, unreachable, unpayable") {
    const std::vector<claim_case> cases{
        {"not_found", make_error(errc::not_found, "no"), "reply", errc::not_found},
        {"conflict: another checkout's claim stands", make_error(errc::conflict, "claimed"),
         "reply", errc::conflict},
        {"the cart unreachable: the claim may have landed, so it is given back",
         make_error(errc::unavailable, "down"), "release_cart,reply", errc::unavailable},
        {"an empty cart", cart_of({}), "release_cart,reply", errc::empty_cart},
        {"a 10 min TTL has a 5 s margin", cart_of({line("A", 1, 100, "h-a", t0 + 5000)}),
         "release_cart,reply", errc::hold_expired},
        {"lines in two currencies",
         cart_of({line("A", 1, 100, "h-a"), line("B", 1, 100, "h-b", t0 + minute, "EUR")}),
         "release_cart,reply", errc::currency_mismatch},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      harness h;
      REQUIRE(kinds(h.checkout()) == "claim_cart");
      check_claim_answer(h, c);
      CHECK(!h.m.current().order);
      CHECK(h.m.idle());
    }
  }

  TEST_CASE("a hold within the margin, min(5 s, holds_ttl / 4), is hold_expired") {
    harness h{order_terms{std::chrono::seconds{2}, false}}; // margin 500 ms
    h.checkout();
    auto fx = h.feed(order_in::claimed{cart_of({line("A", 1, 100, "h-a", t0 + 500)}), t0});
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(the<order_fx::release_cart>(fx).cart_id == "cart-1");
    CHECK(is(error_of(fx), errc::hold_expired));
    CHECK(message_of(error_of(fx)) == "the hold on A has expired; nothing was charged");
    // 501 ms left is enough.
    h.checkout(request("key-1"));
    CHECK(kinds(h.feed(order_in::claimed{cart_of({line("A", 1, 100, "h-a", t0 + 501)}), t0})) ==
          "create");
  }

  TEST_CASE("create: storage down gives the cart back; the key taken by another checkout is 422") {
    SUBCASE("unavailable") {
      harness h;
      h.checkout();
      h.feed(order_in::claimed{two_lines(), t0});
      auto fx = h.feed(order_in::created{make_error(errc::unavailable, "pg down")});
      REQUIRE(kinds(fx) == "release_cart,reply");
      CHECK(is(error_of(fx), errc::unavailable));
      CHECK(logs(fx, order_fx::log::level::warn).size() == 1);
      CHECK(!h.m.current().order);
    }
    SUBCASE("another checkout's order, of another cart: this request's claim is given back") {
      harness h;
      h.checkout();
      auto fx = h.feed(order_in::claimed{two_lines(), t0});
      auto theirs = harness::as_created(fx);
      theirs.fingerprint = "someone-else";
      theirs.cart_id = "cart-9";
      fx = h.feed(order_in::created{std::make_pair(theirs, false)});
      REQUIRE(kinds(fx) == "release_cart,reply");
      CHECK(the<order_fx::release_cart>(fx).cart_id == "cart-1");
      CHECK(is(error_of(fx), errc::idempotency_conflict));
      CHECK(h.m.current().order->cart_id == "cart-9");
    }
    SUBCASE("another checkout's order of the same cart: its claim stands") {
      harness h;
      h.checkout();
      auto fx = h.feed(order_in::claimed{two_lines(), t0});
      auto theirs = harness::as_created(fx);
      theirs.fingerprint = "someone-else";
      fx = h.feed(order_in::created{std::make_pair(theirs, false)});
      REQUIRE(kinds(fx) == "reply");
      CHECK(is(error_of(fx), errc::idempotency_conflict));
    }
    SUBCASE("the same checkout's order (a concurrent create won): carried on as stored") {
      harness h;
      h.checkout();
      auto fx = h.feed(order_in::claimed{two_lines(), t0});
      auto ours = harness::as_created(fx);
      ours.status = "confirmed";
      fx = h.feed(order_in::created{std::make_pair(ours, false)});
      REQUIRE(kinds(fx) == "reply");
      CHECK(view_of(fx).status == "confirmed");
    }
  }

  TEST_CASE("hold gone or changed after the charge: confirmed lines return, cancelled, refunded") {
    harness h;
    h.up_to_charge();
    h.feed(order_in::charged{approved("beta")});
    auto fx = h.feed(order_in::lines_confirmed{{1, 0}});
    REQUIRE(kinds(fx) == "return_lines");
    CHECK(the<order_fx::return_lines>(fx).order_id == "order-1");
    CHECK(the<order_fx::return_lines>(fx).lines.size() == 2);

    fx = h.feed(order_in::lines_returned{{}});
    REQUIRE(kinds(fx) == "update");
    CHECK(logs(fx, order_fx::log::level::warn) ==
          std::vector<std::string>{
              "order-1: paid, but 1 hold(s) had expired or changed: cancelled, refunding 2999"});
    auto up = the<order_fx::update>(fx).change;
    CHECK(up.status == "cancelled");
    CHECK(up.reason == "hold_expired");
    REQUIRE(up.payment); // the charge is recorded with the intent to refund it
    CHECK(up.payment->gateway == "beta");
    REQUIRE(up.refund);
    CHECK(up.refund->status == "pending");
    CHECK(up.refund->amount_cents == 2999);
    CHECK(!up.event);

    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "refund");
    const auto& rf = the<order_fx::refund>(fx).request;
    CHECK(rf.idempotency_key == "refund-key-1");
    CHECK(rf.charge_key == "key-1");
    CHECK(rf.gateway == "beta");
    CHECK(rf.charge_id == "ch_1");
    CHECK(rf.amount_cents == 2999);
    CHECK(rf.currency == "USD");

    fx = h.feed(order_in::refunded{refund_result{refund_status::refunded, "re_1", "ok"}});
    REQUIRE(kinds(fx) == "update");
    CHECK(logs(fx, order_fx::log::level::info) ==
          std::vector<std::string>{"order-1: refunded 2999 via beta (re_1)"});
    up = the<order_fx::update>(fx).change;
    CHECK(up.status == "cancelled");
    CHECK(up.reason == "hold_expired");
    CHECK(!up.payment);
    REQUIRE(up.refund);
    CHECK(up.refund->status == "refunded");
    CHECK(up.refund->refund_id == "re_1");
    REQUIRE(up.event);
    CHECK(up.event->payload.find(R"("status":"cancelled")") != std::string::npos);
    CHECK(up.event->payload.find(R"("refund_status":"refunded","refund_cents":2999})") !=
          std::string::npos);

    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(is(error_of(fx), errc::hold_expired));
    CHECK(message_of(error_of(fx)).find("refunded") != std::string::npos);
    const auto v = *h.m.view_for("");
    CHECK(v.status == "cancelled");
    CHECK(v.refund_status == "refunded");
    CHECK(v.refunded_cents == 2999);

    // A retry answers the same and asks for no second refund.
    fx = h.checkout();
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(is(error_of(fx), errc::hold_expired));
    CHECK(h.m.idle());
  }

  TEST_CASE("capture after confirm: authorise, confirm every hold, capture, then store "
            "confirmed and paid") {
    harness h{{std::chrono::minutes{10}, false, true}};
    auto fx = h.up_to_charge();
    CHECK_FALSE(the<order_fx::charge>(fx).request.capture); // authorise only
    fx = h.feed(order_in::charged{authorised()});
    REQUIRE(kinds(fx) == "confirm_lines");
    fx = h.feed(order_in::lines_confirmed{{}});
    REQUIRE(kinds(fx) == "capture");
    const auto& cap = the<order_fx::capture>(fx).request;
    CHECK(cap.idempotency_key == "capture-key-1");
    CHECK(cap.charge_key == "key-1");
    CHECK(cap.gateway == "alpha");
    CHECK(cap.charge_id == "ch_1");
    CHECK(cap.amount_cents == 2999);
    CHECK(cap.currency == "USD");
    CHECK(!cap.may_send);                            // the actor fences it
    CHECK(h.m.current().order->status == "pending"); // nothing stored before the money is taken

    fx = h.feed(order_in::settled{settled_as(settle_status::done)});
    REQUIRE(kinds(fx) == "update");
    const auto& up = the<order_fx::update>(fx).change;
    CHECK(up.status == "confirmed");
    REQUIRE(up.payment);
    CHECK(up.payment->status == "approved");
    REQUIRE(up.event);
    REQUIRE(kinds(h.feed(order_in::stored{})) == "clear_cart");
    CHECK(view_of(h.feed(order_in::cleared{})).status == "confirmed");

    // A node that charges at once still finishes an order whose lookup finds an authorisation
    // (written by a node with after_confirm): the money decides, not the setting.
    harness old_node;
    old_node.up_to_charge();
    REQUIRE(kinds(old_node.feed(order_in::charged{authorised()})) == "confirm_lines");
    CHECK(kinds(old_node.feed(order_in::lines_confirmed{{}})) == "capture");
  }

  TEST_CASE("capture after confirm: a hold gone — lines returned, cancelled with the void pending, "
            "the authorisation voided: nothing charged") {
    harness h{{std::chrono::minutes{10}, false, true}};
    h.up_to_charge();
    h.feed(order_in::charged{authorised(funds::authorized, "beta")});
    REQUIRE(kinds(h.feed(order_in::lines_confirmed{{1, 0}})) == "return_lines");
    auto fx = h.feed(order_in::lines_returned{{}});
    REQUIRE(kinds(fx) == "update");
    CHECK(
        logs(fx, order_fx::log::level::warn) ==
        std::vector<std::string>{
            "order-1: authorised, but 1 hold(s) had expired or changed: cancelled, voiding 2999"});
    auto up = the<order_fx::update>(fx).change;
    CHECK(up.status == "cancelled");
    REQUIRE(up.payment);
    CHECK(up.payment->status == "authorized");
    REQUIRE(up.refund);
    CHECK(up.refund->status == "pending");

    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "void_payment");
    const auto& v = the<order_fx::void_payment>(fx).request;
    CHECK(v.idempotency_key == "void-key-1");
    CHECK(v.gateway == "beta");
    CHECK(v.charge_id == "ch_1");

    // Unknown: stays cancelled with the void pending; the reconciler voids again, same key.
    fx = h.feed(order_in::settled{settled_as(settle_status::unknown)});
    REQUIRE(kinds(fx) == "reply");
    CHECK(is(error_of(fx), errc::unavailable));
    fx = h.feed(order_in::reconcile{});
    REQUIRE(kinds(fx) == "void_payment");
    CHECK(the<order_fx::void_payment>(fx).request.idempotency_key == "void-key-1");

    fx = h.feed(order_in::settled{settled_as(settle_status::done)});
    REQUIRE(kinds(fx) == "update");
    up = the<order_fx::update>(fx).change;
    REQUIRE(up.refund);
    CHECK(up.refund->status == "voided");
    REQUIRE(up.payment);
    CHECK(up.payment->status == "voided");
    REQUIRE(up.event);
    CHECK(up.event->payload.find(R"("refund_status":"voided")") != std::string::npos);
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(is(error_of(fx), errc::hold_expired));
    CHECK(message_of(error_of(fx)).find("nothing was charged") != std::string::npos);
    CHECK(h.m.view_for("")->refund_status == "voided");
    CHECK(h.m.view_for("")->refunded_cents == 0);
    CHECK(kinds(h.feed(order_in::reconcile{})).empty()); // settled
  }

  TEST_CASE("capture after confirm: a refused capture returns the lines and fails the order; an "
            "unknown one stays pending and is captured again under the same key") {
    {
      harness h{{std::chrono::minutes{10}, false, true}};
      h.up_to_charge();
      h.feed(order_in::charged{authorised()});
      REQUIRE(kinds(h.feed(order_in::lines_confirmed{{}})) == "capture");
      auto fx = h.feed(order_in::settled{settled_as(settle_status::rejected, "expired")});
      REQUIRE(kinds(fx) == "return_lines");
      CHECK(logs(fx, order_fx::log::level::error).size() == 1);
      fx = h.feed(order_in::lines_returned{{}});
      REQUIRE(kinds(fx) == "update");
      const auto& up = the<order_fx::update>(fx).change;
      CHECK(up.status == "failed");
      CHECK(up.reason == "payment_unavailable");
      REQUIRE(up.payment);
      CHECK(up.payment->status == "capture_refused");
      CHECK(!up.refund);
      fx = h.feed(order_in::stored{});
      REQUIRE(kinds(fx) == "release_cart,reply");
      CHECK(is(error_of(fx), errc::payment_unavailable));
    }
    {
      harness h{{std::chrono::minutes{10}, false, true}};
      h.up_to_charge();
      h.feed(order_in::charged{authorised()});
      h.feed(order_in::lines_confirmed{{}});
      auto fx = h.feed(order_in::settled{settled_as(settle_status::unknown)});
      REQUIRE(kinds(fx) == "reply"); // the cart stays claimed: the money may be taken
      CHECK(is(error_of(fx), errc::payment_unavailable));
      CHECK(h.m.view_for("")->status == "pending");
      // The reconciler: lookup (captured meanwhile, or still authorised), confirm again, and
      // capture again under the same key when it is still authorised.
      fx = h.feed(order_in::reconcile{});
      REQUIRE(kinds(fx) == "lookup");
      REQUIRE(kinds(h.feed(order_in::charged{authorised()})) == "confirm_lines");
      fx = h.feed(order_in::lines_confirmed{{}});
      REQUIRE(kinds(fx) == "capture");
      CHECK(the<order_fx::capture>(fx).request.idempotency_key == "capture-key-1");
      fx = h.feed(order_in::settled{settled_as(settle_status::done)});
      CHECK(the<order_fx::update>(fx).change.status == "confirmed");

      harness found;
      found.up_to_charge();
      // Captured by an earlier attempt: confirmed without another capture.
      REQUIRE(kinds(found.feed(order_in::charged{authorised(funds::captured)})) == "confirm_lines");
      CHECK(kinds(found.feed(order_in::lines_confirmed{{}})) == "update");
      // Voided before it was stored: cancelled like a hold gone.
      harness released;
      released.up_to_charge();
      CHECK(kinds(released.feed(order_in::charged{authorised(funds::voided)})) == "return_lines");
    }
  }

  TEST_CASE("3-D Secure: stored requires_action with the URL, holds renewed, answered with the "
            "action; completed later, it goes on as an approved charge") {
    harness h{action_terms()};
    auto fx = h.up_to_charge();
    CHECK(the<order_fx::charge>(fx).request.return_url ==
          "http://shop.example/api/v1/orders/order-1/return");
    fx = h.feed(order_in::charged{needs_action(), t0 + 1000});
    REQUIRE(kinds(fx) == "update");
    const auto& up = the<order_fx::update>(fx).change;
    CHECK(up.status == "requires_action");
    CHECK(up.reason == "https://alpha.example/3ds/ch_1");
    REQUIRE(up.payment);
    CHECK(up.payment->status == "requires_action");
    CHECK(up.payment->charge_id == "ch_1");
    CHECK(up.payment->charged_at_ms == t0 + 1000);
    CHECK_FALSE(up.event); // nothing for the shop yet
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "renew_holds");
    const auto& renew = the<order_fx::renew_holds>(fx);
    CHECK(renew.cart_id == "cart-1");
    CHECK(renew.currency == "USD");
    CHECK(renew.lines.size() == 2);
    fx = h.feed(order_in::holds_renewed{{}});
    REQUIRE(kinds(fx) == "reply");
    auto v = view_of(fx);
    CHECK(v.status == "requires_action");
    CHECK(v.reason == "https://alpha.example/3ds/ch_1");
    CHECK(h.m.idle());

    // A retry of the key while the shopper authenticates: looked up, still open, the same answer.
    REQUIRE(kinds(h.checkout()) == "lookup");
    fx = h.feed(order_in::charged{needs_action(), t0 + 2 * minute});
    REQUIRE(kinds(fx) == "reply");
    CHECK(view_of(fx).status == "requires_action");

    // The shopper is back (or the gateway's webhook came): approved — confirm, store, clear.
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    REQUIRE(kinds(h.feed(order_in::charged{approved(), t0 + 3 * minute})) == "confirm_lines");
    fx = h.feed(order_in::lines_confirmed{{}});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.status == "confirmed");
    CHECK(the<order_fx::update>(fx).change.payment->status == "approved");
    CHECK(the<order_fx::update>(fx).change.event);
    REQUIRE(kinds(h.feed(order_in::stored{})) == "clear_cart");
    CHECK(kinds(h.feed(order_in::cleared{})) == "reply");
    CHECK(h.m.current().order->status == "confirmed");
  }

  TEST_CASE("3-D Secure with capture after confirm: authorised once authenticated, then captured") {
    harness h{action_terms(true)};
    auto fx = h.up_to_charge();
    CHECK_FALSE(the<order_fx::charge>(fx).request.capture);
    REQUIRE(kinds(h.feed(order_in::charged{needs_action(), t0})) == "update");
    REQUIRE(kinds(h.feed(order_in::stored{})) == "renew_holds");
    REQUIRE(kinds(h.feed(order_in::holds_renewed{{}})) == "reply");
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    REQUIRE(kinds(h.feed(order_in::charged{authorised(), t0 + minute})) == "confirm_lines");
    fx = h.feed(order_in::lines_confirmed{{}});
    REQUIRE(kinds(fx) == "capture");
    CHECK(the<order_fx::capture>(fx).request.idempotency_key == "capture-key-1");
  }

  TEST_CASE("3-D Secure failed: stored failed payment_declined, the cart given back") {
    harness h{action_terms()};
    h.up_to_action();
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    auto fx = h.feed(order_in::charged{with_status(charge_status::declined), t0 + minute});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.status == "failed");
    CHECK(the<order_fx::update>(fx).change.reason == "payment_declined");
    CHECK(kinds(h.feed(order_in::stored{})) == "release_cart,reply");
  }

  TEST_CASE("3-D Secure abandoned: after action_ttl voided, holds dropped, failed action_expired; "
            "a retry is told so") {
    harness h{action_terms()};
    h.up_to_action();
    // Still open before the end of the window: nothing changes.
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    CHECK(kinds(h.feed(order_in::charged{needs_action(), t0 + 9 * minute})) == "reply");
    // Past it: released at the gateway, the holds go back, the order fails.
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    auto fx = h.feed(order_in::charged{needs_action(), t0 + 10 * minute});
    REQUIRE(kinds(fx) == "void_payment");
    CHECK(the<order_fx::void_payment>(fx).request.idempotency_key == "void-key-1");
    CHECK(the<order_fx::void_payment>(fx).request.charge_id == "ch_1");
    fx = h.feed(order_in::settled{settled_as(settle_status::done)});
    REQUIRE(kinds(fx) == "drop_holds");
    CHECK(the<order_fx::drop_holds>(fx).lines.size() == 2);
    fx = h.feed(order_in::holds_dropped{});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.status == "failed");
    CHECK(the<order_fx::update>(fx).change.reason == "action_expired");
    CHECK(the<order_fx::update>(fx).change.payment->status == "voided");
    CHECK(kinds(h.feed(order_in::stored{})) == "reply");
    CHECK(h.m.current().order->status == "failed");
    // The key again: declined at once (the cart's lines are gone with the holds).
    fx = h.checkout();
    REQUIRE(kinds(fx) == "reply");
    CHECK(is(error_of(fx), errc::payment_declined));
  }

  TEST_CASE("3-D Secure: a void the gateway refuses is looked up (the shopper finished); an "
            "unknown void stays requires_action") {
    harness h{action_terms()};
    h.up_to_action();
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    REQUIRE(kinds(h.feed(order_in::charged{needs_action(), t0 + 11 * minute})) == "void_payment");
    auto fx = h.feed(order_in::settled{settled_as(settle_status::unknown)});
    REQUIRE(kinds(fx) == "reply");
    CHECK(is(error_of(fx), errc::payment_unavailable));
    CHECK(h.m.current().order->status == "requires_action");
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    REQUIRE(kinds(h.feed(order_in::charged{needs_action(), t0 + 12 * minute})) == "void_payment");
    REQUIRE(kinds(h.feed(order_in::settled{settled_as(settle_status::rejected)})) == "lookup");
    CHECK(kinds(h.feed(order_in::charged{approved(), t0 + 12 * minute})) == "confirm_lines");
  }

  TEST_CASE("3-D Secure: a hold found expired when renewing gives the payment up at once") {
    harness h{action_terms()};
    h.up_to_charge();
    REQUIRE(kinds(h.feed(order_in::charged{needs_action(), t0})) == "update");
    REQUIRE(kinds(h.feed(order_in::stored{})) == "renew_holds");
    REQUIRE(kinds(h.feed(order_in::holds_renewed{{1, 0}})) == "void_payment");
    REQUIRE(kinds(h.feed(order_in::settled{settled_as(settle_status::done)})) == "drop_holds");
    auto fx = h.feed(order_in::holds_dropped{});
    CHECK(the<order_fx::update>(fx).change.reason == "hold_expired");
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "reply");
    CHECK(is(error_of(fx), errc::payment_declined));
  }

  TEST_CASE("3-D Secure found by the reconciler on an order left pending: stored requires_action") {
    harness h{action_terms()};
    h.up_to_charge();
    // The charge's answer was lost: pending, then the lookup finds the open charge.
    REQUIRE(kinds(h.feed(order_in::charged{with_status(charge_status::unknown)})) == "reply");
    REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
    auto fx = h.feed(order_in::charged{needs_action(), t0 + minute});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.status == "requires_action");
  }

  TEST_CASE("a hold no longer what the order bought counts as gone, as a not_found does") {
    // The executor tallies conflict and not_found alike; the model sees only the tally.
    harness h;
    h.up_to_charge();
    h.feed(order_in::charged{approved()});
    CHECK(kinds(h.feed(order_in::lines_confirmed{{2, 0}})) == "return_lines");
  }

  TEST_CASE("refund rejected: cancelled with the refund failed, the shop told") {
    harness h;
    h.up_to_refund();
    auto fx = h.feed(order_in::refunded{refund_result{refund_status::rejected, "", "no balance"}});
    REQUIRE(kinds(fx) == "update");
    CHECK(logs(fx, order_fx::log::level::error) ==
          std::vector<std::string>{"order-1: the gateway refused the refund of 2999 via alpha: no "
                                   "balance (needs an operator)"});
    CHECK(the<order_fx::update>(fx).change.refund->status == "failed");
    CHECK(the<order_fx::update>(fx).change.refund->amount_cents == 2999);
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "release_cart,reply");
    CHECK(is(error_of(fx), errc::hold_expired));
    CHECK(message_of(error_of(fx)).find("refused its refund") != std::string::npos);
    CHECK(h.m.view_for("")->refund_status == "failed");
    CHECK(h.m.view_for("")->refunded_cents == 0);
  }

  TEST_CASE("refund unknown: stays pending and claimed; the reconciler asks again with the same "
            "key") {
    harness h;
    h.up_to_refund();
    auto fx = h.feed(order_in::refunded{refund_result{refund_status::unknown, "", "timeout"}});
    REQUIRE(kinds(fx) == "reply"); // no release: the money is not back yet
    CHECK(is(error_of(fx), errc::unavailable));
    CHECK(h.m.view_for("")->status == "cancelled");
    CHECK(h.m.view_for("")->refund_status == "pending");

    fx = h.feed(order_in::reconcile{});
    REQUIRE(kinds(fx) == "refund");
    CHECK(the<order_fx::refund>(fx).request.idempotency_key == "refund-key-1");
    CHECK(logs(fx, order_fx::log::level::info) ==
          std::vector<std::string>{"order-1: settling an order left cancelled"});
    h.feed(order_in::refunded{refund_result{refund_status::refunded, "re_2", ""}});
    fx = h.feed(order_in::stored{});
    CHECK(kinds(fx) == "release_cart,reply"); // answered to nobody: the reconciler waits for none
    CHECK(h.m.view_for("")->refund_status == "refunded");
    CHECK(kinds(h.feed(order_in::reconcile{})).empty()); // settled
  }

  TEST_CASE("a pending refund without a recorded charge is stored failed, nobody asked") {
    harness h;
    order_record o;
    o.order_id = "order-1";
    o.idempotency_key = "key-1";
    o.fingerprint = order_model::fingerprint_of(request());
    o.cart_id = "cart-1";
    o.status = "cancelled";
    o.reason = "hold_expired";
    o.total_cents = 100;
    o.currency = "USD";
    o.refund = persistence::refund_record{"pending", "", 100};
    order_model m{"order-1", {}};
    m.apply(m.decide(order_in::loaded{std::optional<order_record>{o}}));
    auto fx = m.apply(m.decide(order_in::reconcile{}));
    REQUIRE(kinds(fx) == "update");
    CHECK(logs(fx, order_fx::log::level::error) ==
          std::vector<std::string>{"order-1: refund pending, but no charge is recorded"});
    const auto& up = the<order_fx::update>(fx).change;
    CHECK(up.refund->status == "failed");
    CHECK(up.refund->amount_cents == 0);
    // The event is of the order as it was (its refund still pending).
    CHECK(up.event->payload.find(R"("refund_status":"pending")") != std::string::npos);
    fx = m.apply(m.decide(order_in::stored{}));
    CHECK(kinds(fx) == "release_cart,reply");
  }

  TEST_CASE("SKUs unreachable: confirming or returning stays as stored, answered unavailable") {
    SUBCASE("confirm") {
      harness h;
      h.up_to_charge();
      h.feed(order_in::charged{approved()});
      auto fx = h.feed(order_in::lines_confirmed{{1, 1}}); // failed wins over gone
      REQUIRE(kinds(fx) == "reply");
      CHECK(is(error_of(fx), errc::unavailable));
      CHECK(h.m.current().order->status == "pending");
      // The reconciler settles it: the charge is found, and confirming is asked again.
      REQUIRE(kinds(h.feed(order_in::reconcile{})) == "lookup");
      REQUIRE(kinds(h.feed(order_in::charged{approved()})) == "confirm_lines");
    }
    SUBCASE("return") {
      harness h;
      h.up_to_charge();
      h.feed(order_in::charged{approved()});
      h.feed(order_in::lines_confirmed{{1, 0}});
      auto fx = h.feed(order_in::lines_returned{{0, 1}});
      REQUIRE(kinds(fx) == "reply");
      CHECK(is(error_of(fx), errc::unavailable));
      CHECK(h.m.current().order->status == "pending");
    }
  }

  TEST_CASE("a store that fails: answered unavailable, and the actor quits to reload the truth") {
    harness h;
    h.up_to_charge();
    h.feed(order_in::charged{approved()});
    h.feed(order_in::lines_confirmed{{}});
    auto fx = h.feed(order_in::stored{make_error(errc::unavailable, "pg down")});
    REQUIRE(kinds(fx) == "reply,quit");
    CHECK(is(error_of(fx), errc::unavailable));
    CHECK(is(the<order_fx::quit>(fx).reason, errc::unavailable));
    REQUIRE(logs(fx, order_fx::log::level::warn).size() == 1);
    CHECK(logs(fx, order_fx::log::level::warn)[0].rfind("order-1: storing status confirmed failed",
                                                        0) == 0);
  }

  TEST_CASE("loading: a failure quits; a stored order is carried on by the next request") {
    SUBCASE("failure") {
      order_model m{"order-1", {}};
      auto fx = m.apply(m.decide(order_in::loaded{make_error(errc::unavailable, "down")}));
      CHECK(kinds(fx) == "quit");
      CHECK(!m.loaded());
      CHECK(is(m.decide(order_in::checkout{request()}).refused, errc::unavailable));
      CHECK(kinds(m.apply(m.decide(order_in::reconcile{}))).empty());
    }
    auto stored = [](std::string status, std::string reason) {
      order_record o;
      o.order_id = "order-1";
      o.idempotency_key = "key-1";
      o.fingerprint = order_model::fingerprint_of(request());
      o.cart_id = "cart-1";
      o.status = std::move(status);
      o.reason = std::move(reason);
      o.total_cents = 100;
      o.currency = "USD";
      o.lines = {{"A", 1, 100, "h-a"}};
      o.payment = persistence::payment_record{"key-1", "alpha", "ch_1", "approved", 100, "USD"};
      return o;
    };
    auto loaded_with = [](const order_record& o) {
      auto m =
          std::make_unique<order_model>("order-1", order_terms{std::chrono::minutes{10}, false});
      m->apply(m->decide(order_in::loaded{std::optional<order_record>{o}}));
      return m;
    };
    SUBCASE("pending: looked up first") {
      auto m = loaded_with(stored("pending", ""));
      CHECK(kinds(m->apply(m->decide(order_in::checkout{request()}))) == "lookup");
    }
    SUBCASE("paid: confirmed again") {
      auto m = loaded_with(stored("paid", ""));
      CHECK(kinds(m->apply(m->decide(order_in::checkout{request()}))) == "confirm_lines");
    }
    SUBCASE("failed for another reason: unavailable, the cart given back") {
      auto m = loaded_with(stored("failed", "something"));
      auto fx = m->apply(m->decide(order_in::checkout{request()}));
      REQUIRE(kinds(fx) == "release_cart,reply");
      CHECK(is(error_of(fx), errc::unavailable));
    }
    SUBCASE("hold_expired before anything was charged") {
      auto m = loaded_with(stored("cancelled", "hold_expired"));
      auto fx = m->apply(m->decide(order_in::checkout{request()}));
      REQUIRE(kinds(fx) == "release_cart,reply");
      CHECK(is(error_of(fx), errc::hold_expired));
      CHECK(message_of(error_of(fx)).find("nothing was charged") != std::string::npos);
    }
    SUBCASE("payment_unavailable, asked by the reconciler: nothing to charge with") {
      auto m = loaded_with(stored("failed", "payment_unavailable"));
      auto fx = m->apply(m->decide(order_in::reconcile{}));
      CHECK(kinds(fx).empty()); // failed is settled: the reconciler leaves it
    }
  }

  TEST_CASE("the reconciler settles orders left pending, paid or refund-pending, never one under "
            "way") {
    harness h;
    CHECK(kinds(h.feed(order_in::reconcile{})).empty()); // no order
    h.up_to_charge();
    CHECK(kinds(h.feed(order_in::reconcile{})).empty()); // busy: the charge is under way
    auto fx = h.feed(order_in::charged{with_status(charge_status::unknown)});
    CHECK(is(error_of(fx), errc::payment_unavailable));

    // A crash or an unknown outcome left it pending: looked up, confirmed, nobody answered.
    fx = h.feed(order_in::reconcile{});
    REQUIRE(kinds(fx) == "lookup");
    CHECK(h.m.current().current.token.empty()); // the reconciler has no token
    // No gateway has the key: with nobody waiting and no token, stored failed (nothing charged).
    fx = h.feed(order_in::charged{with_status(charge_status::failed)});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.reason == "payment_unavailable");
    CHECK(!the<order_fx::update>(fx).change.payment); // a lookup has no charge to record
    fx = h.feed(order_in::stored{});
    CHECK(kinds(fx) == "release_cart,reply");
    CHECK(kinds(h.feed(order_in::reconcile{})).empty()); // settled: failed
  }

  TEST_CASE("a lookup that finds nothing while a shopper retries: re-claim and charge") {
    harness h;
    h.up_to_charge();
    h.feed(order_in::charged{with_status(charge_status::unknown)});
    REQUIRE(kinds(h.checkout()) == "lookup");
    auto fx = h.feed(order_in::charged{with_status(charge_status::failed)});
    REQUIRE(kinds(fx) == "claim_cart"); // never charged: charge now, if the lines are the same
    fx = h.feed(order_in::claimed{two_lines(), t0});
    REQUIRE(kinds(fx) == "charge");
  }

  TEST_CASE("a verified customer's order answers not_found to anyone else") {
    harness h{order_terms{std::chrono::minutes{10}, true}};
    h.checkout(request("key-1", "tok_ok", "alice"));
    auto fx = h.feed(order_in::claimed{cart_of({line("A", 1, 100, "h-a")}, "alice"), t0});
    h.feed(order_in::created{std::make_pair(harness::as_created(fx), true)});
    h.feed(order_in::charged{approved()});
    h.feed(order_in::lines_confirmed{{}});
    h.feed(order_in::stored{});
    h.feed(order_in::cleared{});
    CHECK(h.m.view_for("alice"));
    CHECK(is(h.m.view_for("bob").error(), errc::not_found));
    CHECK(is(h.m.view_for("").error(), errc::not_found));
    CHECK(is(h.refused(request("key-1", "tok_ok", "bob")), errc::not_found));
    CHECK(view_of(h.checkout(request("key-1", "tok_ok", "alice"))).status == "confirmed");
    // Without verification, anyone with the id sees it.
    harness open;
    open.confirmed();
    CHECK(open.m.view_for("anyone"));
  }

  TEST_CASE("answers no step waits for change nothing; deciding changes nothing") {
    harness h;
    const auto inputs = std::vector<order_input>{
        order_in::claimed{two_lines(), t0},
        order_in::created{make_error(errc::unavailable, "x")},
        order_in::charged{approved()},
        order_in::lines_confirmed{{}},
        order_in::lines_returned{{}},
        order_in::stored{},
        order_in::refunded{refund_result{refund_status::refunded, "re", ""}},
        order_in::cleared{}};
    for (const auto& in : inputs) {
      CHECK(h.feed(in).empty());
      CHECK(h.m.idle());
      CHECK(!h.m.current().order);
    }
    h.up_to_charge(); // charging: a cart answer is not awaited
    CHECK(h.feed(order_in::claimed{two_lines(), t0}).empty());
    CHECK(h.feed(order_in::stored{}).empty());
    CHECK(h.m.current().under_way == order_model::step::charging);
    // The same decision twice: the same effects.
    const auto a = h.m.decide(order_in::charged{approved()});
    const auto b = h.m.decide(order_in::charged{approved()});
    CHECK(kinds(a.effects) == kinds(b.effects));
    CHECK(a.next.under_way == order_model::step::confirming);
    CHECK(h.m.current().under_way == order_model::step::charging);
  }

  TEST_CASE("view_of and event_of: API.md's order and the outbox payload, JSON-escaped") {
    order_record o;
    o.order_id = "o\"1";
    o.cart_id = "c\\1";
    o.customer_id = "line\nbreak";
    o.status = "confirmed";
    o.total_cents = 5;
    o.currency = "USD";
    o.lines = {{"A", 1, 5, "h"}};
    const auto ev = order_model::event_of(o, "confirmed");
    CHECK(ev.payload == R"({"order_id":"o\"1","status":"confirmed","cart_id":"c\\1",)"
                        R"("customer_id":"line\u000abreak","total_cents":5,"currency":"USD",)"
                        R"("lines":[{"sku":"A","qty":1,"price_cents":5}]})");
    CHECK(ev.key == "o\"1");
    CHECK(ev.id == 0);
    o.refund = persistence::refund_record{"pending", "", 5};
    const auto v = order_model::view_of(o);
    CHECK(v.refund_status == "pending");
    CHECK(v.refunded_cents == 0);
    // The fingerprint tells requests apart by cart, method and token, and hides the token.
    const auto fp = order_model::fingerprint_of(request());
    CHECK(fp.size() == 32);
    CHECK(fp.find("tok_ok") == std::string::npos);
    CHECK(fp != order_model::fingerprint_of(request("key-1", "tok_other")));
    CHECK(fp == order_model::fingerprint_of(request("key-2"))); // the key is compared apart
  }

} // TEST_SUITE
