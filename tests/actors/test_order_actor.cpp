// Checkout in-process: the order actor with the cart and SKU actors, on the in-memory fakes AND
// on real PostgreSQL (journal, pg order store) + Redis; payments through scripted fake gateways
// on both. The order cases of tests/checkout (flow, gateways, double_submit, hold_expiry, crash,
// attacks), without HTTP and processes: a charge in flight is held by the fake gateways instead
// of a slow gateway, and time moves by the node's clock instead of sleeping.
#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <set>
#include <tuple>

#include "actor_fixture.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"

using namespace surge;
using namespace surge::actors;
using namespace surge::test;
using outcome = surge::fakes::fake_gateways::outcome;
using refund_outcome = surge::fakes::fake_gateways::refund_outcome;

namespace {

constexpr int64_t minute = 60'000;

struct line_spec {
  std::string sku;
  int64_t qty = 0;
  int64_t price_cents = 0;
};

/// PUT of `qty` of `sku` in `cart`, answered by `deadline_ms` (actors/deadline.hpp; 0: none).
caf::expected<cart_view> put(entity_node& n, const std::string& cart, const std::string& sku,
                             int64_t qty, const std::string& principal = "",
                             int64_t deadline_ms = 0) {
  return n.ask_cart<cart_view>(cart, item_atom::value, sku, qty, false, principal, deadline_ms,
                               std::string{}, std::string{});
}

caf::expected<cart_view> remove(entity_node& n, const std::string& cart, const std::string& sku) {
  return n.ask_cart<cart_view>(cart, item_atom::value, sku, int64_t{0}, true, std::string{},
                               int64_t{0}, std::string{}, std::string{});
}

cart_view cart_of(entity_node& n, const std::string& cart) {
  auto c = n.ask_cart<cart_view>(cart, caf::get_atom::value, std::string{});
  REQUIRE_MESSAGE(c, caf::to_string(c.error()));
  return *c;
}

/// A new cart `id` of `customer` holding `lines` (each granted).
void filled_cart(entity_node& n, const std::string& id, const std::vector<line_spec>& lines,
                 const std::string& customer = "") {
  REQUIRE(n.ask_cart<cart_view>(id, create_atom::value, customer));
  for (const auto& l : lines) {
    auto r = put(n, id, l.sku, l.qty, customer);
    REQUIRE_MESSAGE(r, "PUT " << l.sku << " x" << l.qty << ": " << caf::to_string(r.error()));
  }
}

void check_stock(entity_node& n, const std::string& sku, int64_t on_hand, int64_t held,
                 int64_t sold) {
  const auto s = stock_of(n, sku);
  INFO(sku << ": on_hand " << s.on_hand << ", held " << s.held << ", sold " << s.sold);
  CHECK(s.on_hand == on_hand);
  CHECK(s.held == held);
  CHECK(s.sold == sold);
}

/// The error `r` carries, REQUIRE'd to be `code`.
void check_error(const caf::expected<order_view>& r, errc code) {
  REQUIRE_MESSAGE(!r, "want " << to_string(code) << ", got an order in status " << r->status);
  CHECK_MESSAGE(is(r.error(), code),
                "want " << to_string(code) << ", got " << caf::to_string(r.error()));
}

/// CHECKs that `r` is an order of `cart` in `status` for exactly `lines` (any order), in USD.
order_view check_order(const caf::expected<order_view>& r, const std::string& cart,
                       const std::string& status, const std::vector<line_spec>& lines) {
  REQUIRE_MESSAGE(r, "want an order, got " << caf::to_string(r.error()));
  const auto& o = *r;
  CHECK(!o.order_id.empty());
  CHECK(o.cart_id == cart);
  CHECK(o.status == status);
  CHECK(o.currency == "USD");
  CHECK(o.created_at_ms > 0);
  int64_t total = 0;
  using row = std::tuple<std::string, int64_t, int64_t>;
  std::vector<row> want;
  for (const auto& l : lines) {
    total += l.qty * l.price_cents;
    want.emplace_back(l.sku, l.qty, l.price_cents);
  }
  std::vector<row> got;
  for (const auto& l : o.lines) {
    got.emplace_back(l.sku, l.qty, l.price_cents);
  }
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  CHECK(got == want);
  CHECK(o.total_cents == total);
  return o;
}

bool same_order(const order_view& a, const order_view& b) {
  auto lines = [](const order_view& o) {
    std::vector<std::tuple<std::string, int64_t, int64_t>> out;
    for (const auto& l : o.lines) {
      out.emplace_back(l.sku, l.qty, l.price_cents);
    }
    return out;
  };
  return a.order_id == b.order_id && a.cart_id == b.cart_id && a.status == b.status &&
         lines(a) == lines(b) && a.total_cents == b.total_cents && a.currency == b.currency &&
         a.created_at_ms == b.created_at_ms && a.reason == b.reason &&
         a.refund_status == b.refund_status && a.refunded_cents == b.refunded_cents;
}

/// Charges paid with "tok_held" are approved (through `gateway`), their answers held until
/// released. Returns the token.
std::string held_token(test::backend& be, const std::string& gateway = "alpha") {
  be.gateways().script_token("tok_held", outcome::approve, gateway);
  be.gateways().hold("tok_held");
  return "tok_held";
}

/// The pending outbox events of `topic` ("orders", "refunds"; the products a test sets up add
/// "catalog" events of their own).
std::vector<persistence::outbox_event> events_of(test::backend& be, const std::string& topic) {
  auto all = be.orders()->pending_events(1000);
  REQUIRE(all);
  std::vector<persistence::outbox_event> out;
  for (auto& e : *all) {
    if (e.topic == topic) {
      out.push_back(std::move(e));
    }
  }
  return out;
}

/// Checks `cart` out with `key` and the held token: once its charge has reached the gateways,
/// runs `meanwhile()`, then lets the gateway's answer go. Returns the checkout's answer.
template <class F>
caf::expected<order_view> while_charging(test::backend& be, entity_node& n, const std::string& cart,
                                         const std::string& key, F meanwhile) {
  auto running = std::async(std::launch::async, [&] { return n.checkout(cart, key, "tok_held"); });
  REQUIRE(be.gateways().await_charge_calls(key, 1));
  meanwhile();
  be.gateways().release("tok_held");
  return running.get();
}

/// Moves the node's clock so that the hold of `sku` in `cart` has `left_ms` left.
void hold_left(entity_node& n, const std::string& cart, const std::string& sku, int64_t left_ms) {
  for (const auto& l : cart_of(n, cart).items) {
    if (l.sku == sku) {
      n.advance_clock(l.hold_expires_at_ms - n.now_ms() - left_ms);
      return;
    }
  }
  FAIL("no line of " << sku << " in " << cart);
}

/// One round of the node's order reconciler: every order left unsettled is read (so that its
/// actor has loaded) and told to settle.
void reconcile(test::backend& be, entity_node& n) {
  auto store = be.orders();
  REQUIRE(store);
  auto ids = store->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 500);
  REQUIRE_MESSAGE(ids, caf::to_string(ids.error()));
  for (const auto& id : *ids) {
    REQUIRE(n.ask<order_view>(n.orders->acquire(id), caf::get_atom::value, std::string{}));
    caf::anon_send(n.orders->acquire(id), reconcile_atom::value);
  }
}

/// The order row of `key` as stored.
persistence::order_record stored_order(test::backend& be, entity_node& n, const std::string& key) {
  auto store = be.orders();
  REQUIRE(store);
  auto o = store->load(n.order_id_for(key));
  REQUIRE_MESSAGE(o, caf::to_string(o.error()));
  REQUIRE_MESSAGE(o->has_value(), "no order for " << key);
  return **o;
}

} // namespace

TEST_CASE_TEMPLATE("flow: tok_ok is confirmed, reads back, held moves to sold, one charge; the "
                   "key again returns the first result",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "fl-a", 10, 0, 1250);
  create_sku(n, "fl-b", 5, 0, 499);
  const std::vector<line_spec> lines{{"fl-a", 2, 1250}, {"fl-b", 1, 499}};
  filled_cart(n, "cart-1", lines);
  check_stock(n, "fl-a", 10, 2, 0);

  const auto first =
      check_order(n.checkout("cart-1", "key-happy-1", "tok_ok"), "cart-1", "confirmed", lines);
  CHECK(first.order_id == n.order_id_for("key-happy-1"));
  const auto got = n.order_of("key-happy-1");
  REQUIRE(got);
  CHECK(same_order(*got, first));
  check_stock(n, "fl-a", 10, 0, 2);
  check_stock(n, "fl-b", 5, 0, 1);
  const auto c = cart_of(n, "cart-1");
  CHECK(c.items.empty());
  CHECK(c.total_cents == 0);
  auto& gw = be.gateways();
  CHECK(gw.charge_calls("key-happy-1") == 1);
  const auto charge = gw.charge_of("key-happy-1");
  REQUIRE(charge);
  CHECK(charge->status == charge_status::approved);
  CHECK(charge->amount_cents == 2 * 1250 + 499);
  CHECK(charge->currency == "USD");
  // Stored confirmed with its payment, and one outbox event for it.
  const auto row = stored_order(be, n, "key-happy-1");
  CHECK(row.status == "confirmed");
  REQUIRE(row.payment);
  CHECK(row.payment->status == "approved");
  CHECK(row.payment->charge_id == charge->charge_id);
  const auto events = events_of(be, "orders");
  REQUIRE(events.size() == 1);
  CHECK(events.front().key == first.order_id);
  CHECK(events.front().payload.find(R"("status":"confirmed")") != std::string::npos);

  // The same key again: the first result, no new charge, nothing more sold.
  const auto again = n.checkout("cart-1", "key-happy-1", "tok_ok");
  REQUIRE(again);
  CHECK(same_order(*again, first));
  CHECK(gw.charge_calls() == 1);
  check_stock(n, "fl-a", 10, 0, 2);
}

TEST_CASE_TEMPLATE("deadline: a checkout whose shopper no longer waits claims and charges "
                   "nothing; in time, the same key checks out",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "dl-a", 5, 0, 700);
  filled_cart(n, "cart-dl", {{"dl-a", 1, 700}});
  const std::string key = "key-deadline";
  auto late = n.checkout("cart-dl", key, "tok_ok", "", deadline_after(std::chrono::seconds{-1}));
  REQUIRE_FALSE(late);
  CHECK(is(late.error(), errc::unavailable));
  CHECK(be.gateways().charge_calls(key) == 0);
  // The cart is the shopper's still: its lines change, nothing was sold.
  REQUIRE(put(n, "cart-dl", "dl-a", 2));
  check_stock(n, "dl-a", 5, 2, 0);
  // A deadline ahead: the checkout goes through, and the cart call waited within it.
  auto in_time = n.checkout("cart-dl", key, "tok_ok", "", deadline_after(std::chrono::seconds{20}));
  REQUIRE_MESSAGE(in_time, caf::to_string(in_time.error()));
  CHECK(in_time->status == "confirmed");
  check_stock(n, "dl-a", 5, 0, 2);
}

TEST_CASE_TEMPLATE("deadline: a cart change past its request's deadline changes nothing", backend_t,
                   test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "dl-b", 5);
  filled_cart(n, "cart-db", {{"dl-b", 1, 1000}});
  auto late = put(n, "cart-db", "dl-b", 3, "", deadline_after(std::chrono::seconds{-1}));
  REQUIRE_FALSE(late);
  CHECK(late.error() == caf::sec::request_timeout);
  check_stock(n, "dl-b", 5, 1, 0);
  CHECK(cart_of(n, "cart-db").items.at(0).qty == 1);
  auto in_time = put(n, "cart-db", "dl-b", 3, "", deadline_after(std::chrono::seconds{20}));
  REQUIRE_MESSAGE(in_time, caf::to_string(in_time.error()));
  check_stock(n, "dl-b", 5, 3, 0);
}

TEST_CASE_TEMPLATE("flow: a decline keeps the lines and gives the cart back; the key keeps its "
                   "result; a new key confirms",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "fl-d", 4, 0, 700);
  filled_cart(n, "cart-d", {{"fl-d", 3, 700}});
  const auto before = cart_of(n, "cart-d");

  check_error(n.checkout("cart-d", "key-decline-1", "tok_decline"), errc::payment_declined);
  CHECK(cart_of(n, "cart-d").items.at(0).hold_id == before.items.at(0).hold_id);
  check_stock(n, "fl-d", 4, 3, 0);
  check_error(n.checkout("cart-d", "key-decline-1", "tok_decline"), errc::payment_declined);
  check_error(n.checkout("cart-d", "key-decline-1", "tok_ok"), errc::idempotency_conflict);
  CHECK(be.gateways().charge_calls("key-decline-1") == 1);
  CHECK(be.gateways().approved() == 0);
  const auto row = stored_order(be, n, "key-decline-1");
  CHECK(row.status == "failed");
  CHECK(row.reason == "payment_declined");
  // Attacks, finding 1: a decline gives the cart back, editable at once; the new key pays for it
  // as it is now.
  REQUIRE(put(n, "cart-d", "fl-d", 4));
  check_order(n.checkout("cart-d", "key-decline-2", "tok_ok"), "cart-d", "confirmed",
              {{"fl-d", 4, 700}});
  check_stock(n, "fl-d", 4, 0, 4);
  CHECK(cart_of(n, "cart-d").items.empty());
  CHECK(be.gateways().approved() == 1);
}

TEST_CASE_TEMPLATE("flow: a key used for another cart or token is idempotency_conflict, never "
                   "charged",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "fl-k", 10, 0, 300);
  filled_cart(n, "cart-1", {{"fl-k", 1, 300}});
  filled_cart(n, "cart-2", {{"fl-k", 2, 300}});

  const auto first = check_order(n.checkout("cart-1", "key-shared", "tok_ok"), "cart-1",
                                 "confirmed", {{"fl-k", 1, 300}});
  check_error(n.checkout("cart-2", "key-shared", "tok_ok"), errc::idempotency_conflict);
  check_error(n.checkout("cart-1", "key-shared", "tok_decline"), errc::idempotency_conflict);
  CHECK(cart_of(n, "cart-2").items.at(0).qty == 2);
  check_stock(n, "fl-k", 10, 2, 1);
  CHECK(be.gateways().charge_calls() == 1);
  const auto again = n.checkout("cart-1", "key-shared", "tok_ok");
  REQUIRE(again);
  CHECK(same_order(*again, first));
  // The conflict left cart-2 as it was (not claimed): with a key of its own it checks out.
  check_order(n.checkout("cart-2", "key-other", "tok_ok"), "cart-2", "confirmed",
              {{"fl-k", 2, 300}});
  check_stock(n, "fl-k", 10, 0, 3);
  CHECK(be.gateways().charge_calls() == 2);
}

TEST_CASE_TEMPLATE("flow: an empty or emptied cart is empty_cart, an unknown one not_found; "
                   "nothing charged, no key consumed",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "fl-e", 5, 0, 100);
  REQUIRE(n.ask_cart<cart_view>("empty", create_atom::value, std::string{}));
  check_error(n.checkout("empty", "key-empty", "tok_ok"), errc::empty_cart);
  filled_cart(n, "emptied", {{"fl-e", 1, 100}});
  REQUIRE(put(n, "emptied", "fl-e", 0));
  check_error(n.checkout("emptied", "key-emptied", "tok_ok"), errc::empty_cart);
  check_error(n.checkout("no-such-cart", "key-unknown-cart", "tok_ok"), errc::not_found);
  check_error(n.order_of("no-such-order"), errc::not_found);
  check_stock(n, "fl-e", 5, 0, 0);
  CHECK(be.gateways().charge_calls() == 0);
  CHECK(be.orders()->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 10)->empty());
  // The refused key made no order: once the cart has lines, it pays.
  REQUIRE(put(n, "empty", "fl-e", 2));
  check_order(n.checkout("empty", "key-empty", "tok_ok"), "empty", "confirmed", {{"fl-e", 2, 100}});
}

TEST_CASE_TEMPLATE("gateways: an answer lost after the charge is unavailable, the cart stays "
                   "claimed, and the key's retry finds the charge by lookup: one charge",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  be.gateways().script_token("tok_slow", outcome::lost_answer);
  entity_node n{be, default_opts()};
  create_sku(n, "gw-s", 3, 0, 2500);
  filled_cart(n, "cart-s", {{"gw-s", 1, 2500}});

  check_error(n.checkout("cart-s", "key-slow", "tok_slow"), errc::payment_unavailable);
  CHECK(stored_order(be, n, "key-slow").status == "pending");
  // A charge may stand: the cart stays the order's.
  auto edit = put(n, "cart-s", "gw-s", 2);
  REQUIRE_FALSE(edit);
  CHECK(is(edit.error(), errc::checkout_in_progress));
  const auto r = check_order(n.checkout("cart-s", "key-slow", "tok_slow"), "cart-s", "confirmed",
                             {{"gw-s", 1, 2500}});
  check_stock(n, "gw-s", 3, 0, 1);
  CHECK(be.gateways().charge_calls("key-slow") == 1);
  REQUIRE(be.gateways().charge_of("key-slow"));
  CHECK(be.gateways().charge_of("key-slow")->gateway == "alpha");
  const auto again = n.checkout("cart-s", "key-slow", "tok_slow");
  REQUIRE(again);
  CHECK(same_order(*again, r));
  CHECK(be.gateways().charge_calls("key-slow") == 1);
}

TEST_CASE_TEMPLATE("gateways: an approval through the second gateway is recorded as its", backend_t,
                   test::fake_backend, test::real_backend) {
  backend_t be;
  be.gateways().script_token("tok_down_first", outcome::approve, "beta");
  entity_node n{be, default_opts()};
  create_sku(n, "gw-d", 3, 0, 1999);
  filled_cart(n, "cart-d", {{"gw-d", 2, 1999}});
  check_order(n.checkout("cart-d", "key-down-first", "tok_down_first"), "cart-d", "confirmed",
              {{"gw-d", 2, 1999}});
  check_stock(n, "gw-d", 3, 0, 2);
  const auto row = stored_order(be, n, "key-down-first");
  REQUIRE(row.payment);
  CHECK(row.payment->gateway == "beta");
  CHECK(row.payment->amount_cents == 2 * 1999);
}

TEST_CASE_TEMPLATE("gateways down: unavailable and the cart given back; the key's retry pays "
                   "only for the same lines",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  create_sku(n, "atk-u", 10, 0, 500);
  SUBCASE("the lines changed: 422, a new key pays for the cart as it is") {
    filled_cart(n, "cart-u", {{"atk-u", 2, 500}});
    be.gateways().script_next_charges(outcome::fail);
    check_error(n.checkout("cart-u", "atk-down", "tok_ok"), errc::payment_unavailable);
    REQUIRE(put(n, "cart-u", "atk-u", 4)); // nothing charged: the shopper's again
    check_error(n.checkout("cart-u", "atk-down", "tok_ok"), errc::idempotency_conflict);
    CHECK(be.gateways().charge_calls("atk-down") == 1);
    CHECK(be.gateways().approved() == 0);
    check_stock(n, "atk-u", 10, 4, 0);
    REQUIRE(put(n, "cart-u", "atk-u", 3)); // the 422 gave the cart back too
    check_order(n.checkout("cart-u", "atk-down-2", "tok_ok"), "cart-u", "confirmed",
                {{"atk-u", 3, 500}});
    check_stock(n, "atk-u", 10, 0, 3);
  }
  SUBCASE("the same lines: the key's retry charges, once approved") {
    filled_cart(n, "cart-v", {{"atk-u", 2, 500}});
    be.gateways().script_next_charges(outcome::fail);
    check_error(n.checkout("cart-v", "atk-again", "tok_ok"), errc::payment_unavailable);
    check_order(n.checkout("cart-v", "atk-again", "tok_ok"), "cart-v", "confirmed",
                {{"atk-u", 2, 500}});
    CHECK(be.gateways().charge_calls("atk-again") == 2);
    CHECK(be.gateways().approved() == 1);
    check_stock(n, "atk-u", 10, 0, 2);
  }
}

TEST_CASE_TEMPLATE("double submit: 8 concurrent submits of one key get the same order, one "
                   "charge, sold == qty",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be);
  entity_node n{be, default_opts()};
  create_sku(n, "ds-1", 10, 0, 450);
  const std::vector<line_spec> lines{{"ds-1", 3, 450}};
  filled_cart(n, "cart-ds", lines);

  std::vector<std::future<caf::expected<order_view>>> submits;
  for (int i = 0; i < 8; ++i) {
    submits.push_back(std::async(std::launch::async,
                                 [&] { return n.checkout("cart-ds", "key-double", "tok_held"); }));
  }
  REQUIRE(be.gateways().await_charge_calls("key-double", 1));
  be.gateways().release("tok_held");
  std::set<std::string> ids;
  order_view first;
  for (std::size_t i = 0; i < submits.size(); ++i) {
    CAPTURE(i);
    const auto o = check_order(submits[i].get(), "cart-ds", "confirmed", lines);
    ids.insert(o.order_id);
    if (i == 0) {
      first = o;
    }
    CHECK(same_order(o, first));
  }
  CHECK(ids.size() == 1);
  CHECK(be.gateways().charge_calls() == 1);
  check_stock(n, "ds-1", 10, 0, 3);
  CHECK(cart_of(n, "cart-ds").items.empty());
}

TEST_CASE_TEMPLATE("double submit: a second key for a cart being paid is refused before any "
                   "charge (conflict); one order, one charge",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be);
  entity_node n{be, default_opts()};
  create_sku(n, "ds-2", 4, 0, 900);
  filled_cart(n, "cart-2k", {{"ds-2", 2, 900}});
  const auto first = while_charging(be, n, "cart-2k", "key-click-1", [&] {
    check_error(n.checkout("cart-2k", "key-click-2", "tok_ok"), errc::conflict);
  });
  check_order(first, "cart-2k", "confirmed", {{"ds-2", 2, 900}});
  check_stock(n, "ds-2", 4, 0, 2);
  CHECK(be.gateways().charge_calls("key-click-2") == 0);
  CHECK(be.gateways().charge_calls() == 1);
  // After the sale the second key finds the cart empty.
  check_error(n.checkout("cart-2k", "key-click-2", "tok_ok"), errc::empty_cart);
}

TEST_CASE_TEMPLATE("hold expiry: a hold expired, or with less than the margin left, is "
                   "hold_expired and never charged; a new hold pays",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()}; // holds.ttl 10 min: a 5 s margin
  create_sku(n, "he-1", 10, 0, 800);
  filled_cart(n, "soon", {{"he-1", 1, 800}});
  filled_cart(n, "gone", {{"he-1", 2, 800}});
  check_stock(n, "he-1", 10, 3, 0);

  hold_left(n, "soon", "he-1", 4000); // 4 s left: too late to pay
  check_error(n.checkout("soon", "key-expiring", "tok_ok"), errc::hold_expired);
  n.advance_clock(2 * minute); // both expired
  check_error(n.checkout("gone", "key-expired", "tok_ok"), errc::hold_expired);
  CHECK(be.gateways().charge_calls() == 0);
  // Holding again takes a new hold (the expired ones are released first) and pays with a new key.
  const auto renewed = put(n, "gone", "he-1", 2);
  REQUIRE(renewed);
  CHECK(renewed->items.at(0).hold_expires_at_ms > n.now_ms() + 5 * minute);
  check_stock(n, "he-1", 10, 2, 0);
  check_order(n.checkout("gone", "key-renewed", "tok_ok"), "gone", "confirmed", {{"he-1", 2, 800}});
  check_stock(n, "he-1", 10, 0, 2);
  CHECK(be.gateways().approved() == 1);
}

TEST_CASE_TEMPLATE("hold expiry: a hold that expires while the charge is in flight cancels the "
                   "order; every line goes back and the gateway that took it refunds it",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be, "beta");
  entity_node n{be, default_opts()};
  create_sku(n, "he-a", 5, 0, 800);
  create_sku(n, "he-b", 5, 0, 900);
  filled_cart(n, "cart-h", {{"he-a", 1, 800}});
  n.advance_clock(minute);
  REQUIRE(put(n, "cart-h", "he-b", 2));   // B is held a minute later than A
  hold_left(n, "cart-h", "he-a", 10'000); // A has 10 s left: payable
  // A expires during the payment; B does not.
  const auto r =
      while_charging(be, n, "cart-h", "key-half-expired", [&] { n.advance_clock(20'000); });
  check_error(r, errc::hold_expired);
  CHECK(message_of(r.error()).find("refunded") != std::string::npos);

  const auto refunds = be.gateways().refund_calls();
  REQUIRE(refunds.size() == 1);
  CHECK(refunds[0].status == refund_status::refunded);
  CHECK(refunds[0].request.charge_key == "key-half-expired");
  CHECK(refunds[0].request.gateway == "beta");
  CHECK(refunds[0].request.amount_cents == 800 + 2 * 900);
  CHECK(be.gateways().charge_of("key-half-expired")->refunded_cents == 800 + 2 * 900);
  check_stock(n, "he-a", 5, 0, 0);
  check_stock(n, "he-b", 5, 0, 0); // B's sale was returned
  const auto o = n.order_of("key-half-expired");
  REQUIRE(o);
  CHECK(o->status == "cancelled");
  CHECK(o->reason == "hold_expired");
  CHECK(o->refund_status == "refunded");
  CHECK(o->refunded_cents == 800 + 2 * 900);
  const auto events = events_of(be, "orders");
  REQUIRE(events.size() == 1);
  CHECK(events.front().payload.find(R"("status":"cancelled")") != std::string::npos);
  // A retry answers the same and changes nothing; the cart is the shopper's again.
  check_error(n.checkout("cart-h", "key-half-expired", "tok_held"), errc::hold_expired);
  CHECK(be.gateways().refund_calls().size() == 1);
  CHECK(be.gateways().charge_calls("key-half-expired") == 1);
  check_stock(n, "he-b", 5, 0, 0);
  CHECK(put(n, "cart-h", "he-b", 1));
}

TEST_CASE_TEMPLATE("refunds: an unknown outcome stays pending with the cart claimed until the "
                   "reconciler asks again; a refused one is failed",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be);
  entity_node n{be, default_opts()};
  create_sku(n, "rf-1", 5, 0, 1000);
  filled_cart(n, "cart-r", {{"rf-1", 1, 1000}});
  hold_left(n, "cart-r", "rf-1", 10'000);
  // The hold expires while the charge is in flight: the order is cancelled for a refund.
  auto pay_late = [&] {
    return while_charging(be, n, "cart-r", "key-r", [&] { n.advance_clock(20'000); });
  };
  SUBCASE("unknown, then refunded by the reconciler") {
    be.gateways().script_next_refunds(refund_outcome::unknown);
    check_error(pay_late(), errc::unavailable);
    auto o = n.order_of("key-r");
    REQUIRE(o);
    CHECK(o->status == "cancelled");
    CHECK(o->refund_status == "pending");
    auto edit = put(n, "cart-r", "rf-1", 1);
    REQUIRE_FALSE(edit); // the money is not back yet: the cart stays the order's
    CHECK(is(edit.error(), errc::checkout_in_progress));

    reconcile(be, n);
    REQUIRE(eventually([&] {
      const auto row = stored_order(be, n, "key-r");
      return row.refund && row.refund->status == "refunded";
    }));
    const auto calls = be.gateways().refund_calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].request.idempotency_key == calls[1].request.idempotency_key);
    CHECK(be.gateways().charge_of("key-r")->refunded_cents == 1000);
    CHECK(
        be.orders()->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 10)->empty());
    check_error(n.checkout("cart-r", "key-r", "tok_held"), errc::hold_expired);
    check_stock(n, "rf-1", 5, 0, 0);
    CHECK(put(n, "cart-r", "rf-1", 1)); // the refund ended the claim
  }
  SUBCASE("rejected") {
    be.gateways().script_next_refunds(refund_outcome::reject);
    const auto r = pay_late();
    check_error(r, errc::hold_expired);
    CHECK(message_of(r.error()).find("refused its refund") != std::string::npos);
    const auto o = n.order_of("key-r");
    REQUIRE(o);
    CHECK(o->refund_status == "failed");
    CHECK(o->refunded_cents == 0);
    CHECK(
        be.orders()->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 10)->empty());
    check_stock(n, "rf-1", 5, 0, 0);
  }
}

TEST_CASE_TEMPLATE("crash: a node stopped while the charge is in flight; the restarted node's "
                   "reconciler settles the order with the one charge",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be);
  const std::vector<line_spec> lines{{"cr-1", 2, 1500}};
  {
    entity_node n{be, default_opts()};
    create_sku(n, "cr-1", 5, 0, 1500);
    filled_cart(n, "cart-c", lines);
    caf::anon_send(n.orders->acquire(n.order_id_for("key-crash")), checkout_atom::value,
                   checkout_request{"key-crash", "cart-c", "card", "tok_held", ""});
    REQUIRE(be.gateways().await_charge_calls("key-crash", 1));
  } // the answer of the gateway, which approved the charge, is lost with the node
  be.gateways().release("tok_held");
  entity_node n{be, default_opts()};
  CHECK(stored_order(be, n, "key-crash").status == "pending");
  check_stock(n, "cr-1", 5, 2, 0);

  reconcile(be, n);
  REQUIRE(eventually([&] {
    const auto s = stock_of(n, "cr-1");
    CHECK(s.held + s.sold <= s.on_hand); // G1 at every read
    return s.sold == 2 && s.held == 0;
  }));
  const auto retry =
      check_order(n.checkout("cart-c", "key-crash", "tok_held"), "cart-c", "confirmed", lines);
  CHECK(be.gateways().charge_calls("key-crash") == 1);
  CHECK(cart_of(n, "cart-c").items.empty());
  const auto again = n.checkout("cart-c", "key-crash", "tok_held");
  REQUIRE(again);
  CHECK(same_order(*again, retry));
  CHECK(be.gateways().charge_calls("key-crash") == 1);
  CHECK(be.gateways().approved() == 1);
}

TEST_CASE_TEMPLATE("a reconcile that wakes a passive order (a gateway's webhook) is decided once "
                   "the order has loaded",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be);
  const std::vector<line_spec> lines{{"wk-1", 1, 900}};
  {
    entity_node n{be, default_opts()};
    create_sku(n, "wk-1", 3, 0, 900);
    filled_cart(n, "cart-w", lines);
    caf::anon_send(n.orders->acquire(n.order_id_for("key-wake")), checkout_atom::value,
                   checkout_request{"key-wake", "cart-w", "card", "tok_held", ""});
    REQUIRE(be.gateways().await_charge_calls("key-wake", 1));
  } // the gateway's answer is lost with the node; the order is left pending
  be.gateways().release("tok_held");
  entity_node n{be, default_opts()};
  // Straight to a fresh incarnation, which is still loading when the message arrives.
  caf::anon_send(n.orders->acquire(n.order_id_for("key-wake")), reconcile_atom::value);
  // Sold, then stored confirmed (in that order).
  REQUIRE(eventually([&] { return stored_order(be, n, "key-wake").status == "confirmed"; }));
  check_stock(n, "wk-1", 3, 0, 1);
  CHECK(be.gateways().charge_calls("key-wake") == 1);
}

TEST_CASE_TEMPLATE("crash: a charge that never reached a gateway is settled failed, and the "
                   "key's retry charges it once",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  const std::vector<line_spec> lines{{"cr-2", 1, 700}};
  {
    entity_node n{be, default_opts()};
    create_sku(n, "cr-2", 5, 0, 700);
    filled_cart(n, "cart-c2", lines);
    be.gateways().script_next_charges(outcome::unknown);
    check_error(n.checkout("cart-c2", "key-lost", "tok_ok"), errc::payment_unavailable);
  }
  entity_node n{be, default_opts()};
  CHECK(stored_order(be, n, "key-lost").status == "pending");
  reconcile(be, n); // no gateway has the key: nothing was charged
  REQUIRE(eventually([&] { return stored_order(be, n, "key-lost").status == "failed"; }));
  CHECK(stored_order(be, n, "key-lost").reason == "payment_unavailable");
  // The shopper's retry: while the reconciler's step is still being answered it gets that step's
  // 503 (a client retries those with the same key), then the order is charged.
  caf::expected<order_view> retry{caf::sec::request_timeout};
  REQUIRE(eventually([&] {
    retry = n.checkout("cart-c2", "key-lost", "tok_ok");
    return retry ||
           !(is(retry.error(), errc::unavailable) || is(retry.error(), errc::payment_unavailable));
  }));
  check_order(retry, "cart-c2", "confirmed", lines);
  check_stock(n, "cr-2", 5, 0, 1);
  CHECK(be.gateways().charge_calls("key-lost") == 2);
  CHECK(be.gateways().approved() == 1);
}

TEST_CASE_TEMPLATE("attacks, finding 1: a running checkout owns its cart: edits and a second "
                   "checkout change nothing",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  held_token(be);
  entity_node n{be, default_opts()};
  create_sku(n, "atk-1", 10, 0, 1000);
  filled_cart(n, "cart-a", {{"atk-1", 10, 1000}});
  check_stock(n, "atk-1", 10, 10, 0);

  const auto done = while_charging(be, n, "cart-a", "atk-key-1", [&] {
    for (int64_t qty : {int64_t{1}, int64_t{40}, int64_t{10}}) {
      auto r = put(n, "cart-a", "atk-1", qty);
      REQUIRE_FALSE(r);
      CHECK(is(r.error(), errc::checkout_in_progress));
    }
    auto del = remove(n, "cart-a", "atk-1");
    REQUIRE_FALSE(del);
    CHECK(is(del.error(), errc::checkout_in_progress));
    check_error(n.checkout("cart-a", "atk-key-2", "tok_ok"), errc::conflict);
    CHECK(be.gateways().charge_calls("atk-key-2") == 0);
    check_stock(n, "atk-1", 10, 10, 0);
  });
  check_order(done, "cart-a", "confirmed", {{"atk-1", 10, 1000}});
  check_stock(n, "atk-1", 10, 0, 10);
  CHECK(be.gateways().charge_of("atk-key-1")->amount_cents == 10 * 1000);
  CHECK(be.gateways().refund_calls().empty());
  REQUIRE(n.ask_cart<cart_view>("other", create_atom::value, std::string{}));
  auto other = put(n, "other", "atk-1", 1);
  REQUIRE_FALSE(other);
  CHECK(is(other.error(), errc::sold_out));
  CHECK(cart_of(n, "cart-a").items.empty());
}

TEST_CASE_TEMPLATE("customers: a verified customer's order answers not_found to anyone else",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, opts_with([](auto& o) { o.verify_customers = true; })};
  create_sku(n, "cu-1", 5, 0, 100);
  filled_cart(n, "cart-alice", {{"cu-1", 1, 100}}, "alice");
  check_error(n.checkout("cart-alice", "key-alice", "tok_ok", "bob"), errc::not_found);
  check_order(n.checkout("cart-alice", "key-alice", "tok_ok", "alice"), "cart-alice", "confirmed",
              {{"cu-1", 1, 100}});
  CHECK(n.order_of("key-alice", "alice"));
  check_error(n.order_of("key-alice", "bob"), errc::not_found);
  check_error(n.order_of("key-alice", ""), errc::not_found);
  check_error(n.checkout("cart-alice", "key-alice", "tok_ok", "bob"), errc::not_found);
  CHECK(be.gateways().charge_calls() == 1);
}

namespace {

/// An operator's refund of the order of checkout key `key`, with the admin key `admin_key`.
caf::expected<refund_view> refund(entity_node& n, const std::string& key,
                                  const std::string& admin_key,
                                  std::vector<refund_line_view> lines = {}) {
  return n.ask<refund_view>(n.orders->acquire(n.order_id_for(key)), refund_atom::value,
                            order_refund_request{admin_key, std::move(lines)});
}

void check_refund_error(const caf::expected<refund_view>& r, errc code) {
  REQUIRE_FALSE(r);
  CHECK_MESSAGE(is(r.error(), code), caf::to_string(r.error()));
}

/// A confirmed order of key `key`: 2 x ar-a at 1250 and 1 x ar-b at 499, paid with `token`.
void confirmed_order(entity_node& n, const std::string& key, const std::string& token = "tok_ok") {
  create_sku(n, "ar-a", 10, 0, 1250);
  create_sku(n, "ar-b", 5, 0, 499);
  filled_cart(n, "cart-ar", {{"ar-a", 2, 1250}, {"ar-b", 1, 499}});
  auto o = n.checkout("cart-ar", key, token);
  REQUIRE_MESSAGE(o, caf::to_string(o.error()));
  REQUIRE(o->status == "confirmed");
}

} // namespace

TEST_CASE_TEMPLATE("admin refunds: a line, then the rest, through the charging gateway; an "
                   "over-refund is not_refundable; the key replays; stored across a restart",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  be.gateways().script_token("tok_beta", outcome::approve, "beta");
  {
    entity_node n{be, default_opts()};
    confirmed_order(n, "key-ar", "tok_beta");
    auto one = refund(n, "key-ar", "admin-1", {{"ar-a", 1}});
    REQUIRE_MESSAGE(one, caf::to_string(one.error()));
    CHECK(one->status == "refunded");
    CHECK(one->amount_cents == 1250);
    CHECK_FALSE(one->replay);
    check_refund_error(refund(n, "key-ar", "admin-2", {{"ar-b", 2}}), errc::not_refundable);
    check_refund_error(refund(n, "key-ar", "admin-1", {{"ar-b", 1}}), errc::idempotency_conflict);
    auto again = refund(n, "key-ar", "admin-1", {{"ar-a", 1}});
    REQUIRE(again);
    CHECK(again->refund_id == one->refund_id);
    CHECK(again->replay);
    auto rest = refund(n, "key-ar", "admin-3");
    REQUIRE_MESSAGE(rest, caf::to_string(rest.error()));
    CHECK(rest->amount_cents == 1250 + 499);
    check_refund_error(refund(n, "key-ar", "admin-4"), errc::not_refundable);
    const auto calls = be.gateways().refund_calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].request.gateway == "beta");
    CHECK(calls[0].request.idempotency_key != calls[1].request.idempotency_key);
    CHECK(be.gateways().charge_of("key-ar")->refunded_cents == 2999);
  }
  // Stored: the list of refunds, each with its outbox events (requested, refunded).
  entity_node n{be, default_opts()};
  const auto row = stored_order(be, n, "key-ar");
  CHECK(row.status == "confirmed");
  REQUIRE(row.refunds.size() == 2);
  CHECK(row.refunds[0].status == "refunded");
  CHECK(row.refunds[0].lines.size() == 1);
  CHECK(row.refunds[1].amount_cents == 1749);
  CHECK(row.refunds[0].created_at_ms > 0);
  CHECK(row.refunds[0].settled_at_ms >= row.refunds[0].created_at_ms);
  std::size_t refunded = 0;
  for (const auto& e : events_of(be, "refunds")) {
    refunded += e.payload.find(R"("event":"order.refunded")") != std::string::npos ? 1 : 0;
  }
  CHECK(refunded == 2);
  auto replay = refund(n, "key-ar", "admin-3");
  REQUIRE(replay);
  CHECK(replay->replay);
  CHECK(be.gateways().refund_calls().size() == 2);
  check_refund_error(refund(n, "key-ar", "admin-5", {{"ar-a", 1}}), errc::not_refundable);
}

TEST_CASE_TEMPLATE("admin refunds: the gateway's answer unknown is pending until the reconciler "
                   "asks again with the same key; an unpaid order is not refundable",
                   backend_t, test::fake_backend, test::real_backend) {
  backend_t be;
  entity_node n{be, default_opts()};
  confirmed_order(n, "key-au");
  be.gateways().script_next_refunds(refund_outcome::unknown);
  auto first = refund(n, "key-au", "admin-u");
  REQUIRE_MESSAGE(first, caf::to_string(first.error()));
  CHECK(first->status == "pending");
  CHECK(stored_order(be, n, "key-au").refunds.at(0).status == "pending");
  reconcile(be, n);
  REQUIRE(eventually([&] {
    const auto row = stored_order(be, n, "key-au");
    return row.refunds.size() == 1 && row.refunds[0].status == "refunded";
  }));
  const auto calls = be.gateways().refund_calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].request.idempotency_key == calls[1].request.idempotency_key);
  CHECK(be.gateways().charge_of("key-au")->refunded_cents == 2999);
  CHECK(be.orders()->unsettled(std::chrono::milliseconds{0}, std::chrono::hours{24}, 10)->empty());
  // Declined: nothing was charged, nothing to give back.
  filled_cart(n, "cart-dec", {{"ar-b", 1, 499}});
  check_error(n.checkout("cart-dec", "key-dec", "tok_decline"), errc::payment_declined);
  check_refund_error(refund(n, "key-dec", "admin-d"), errc::not_refundable);
  check_refund_error(refund(n, "key-nothing", "admin-n"), errc::not_found);
}
