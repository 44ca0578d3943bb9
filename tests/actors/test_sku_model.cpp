// sku_model: the SKU's decisions and their replay, without actors or storage.
#include <doctest/doctest.h>

#include "surge/actors/errors.hpp"
#include "surge/actors/sku_model.hpp"

using namespace surge;
using surge::actors::errc;
using surge::actors::sku_model;

namespace {

constexpr int64_t ttl = 60'000;

sku_model make_sku(int64_t on_hand, int64_t limit = 0) {
  sku_model m;
  proto::Product p;
  p.set_sku("S1");
  p.set_name("thing");
  p.set_price_cents(500);
  p.set_currency("USD");
  p.set_per_customer_limit(limit);
  m.apply(m.decide_product(p, 1));
  auto ev = m.decide_stock(true, on_hand, 1);
  REQUIRE(ev);
  m.apply(*ev);
  return m;
}

/// Decides and applies hold `req` at `now` with holds living at most `max_life` ms; returns the
/// error code or 0.
int hold_request(sku_model& m, const actors::hold_request& req, int64_t now, int64_t max_life) {
  auto d = m.decide_hold(req, {now, ttl, max_life}, "h-" + req.cart_id);
  if (!d) {
    return d.error().code();
  }
  if (*d) {
    m.apply(**d);
  }
  return 0;
}

/// Decides and applies a hold; returns the error code or 0.
int hold(sku_model& m, const std::string& cart, int64_t qty, const std::string& customer = "",
         int64_t now = 1000) {
  return hold_request(m, actors::hold_request{cart, customer, qty}, now, 30 * 60'000);
}

int code(errc x) {
  return static_cast<int>(x);
}

void check_invariant(const sku_model& m) {
  CHECK(m.held() >= 0);
  CHECK(m.sold() >= 0);
  CHECK(m.held() + m.sold() <= m.on_hand());
}

} // namespace

TEST_CASE("unknown SKU refuses holds and stock changes") {
  sku_model m;
  CHECK_FALSE(m.exists());
  CHECK(hold(m, "c1", 1) == code(errc::not_found));
  auto s = m.decide_stock(true, 5, 1);
  REQUIRE_FALSE(s);
  CHECK(s.error().code() == code(errc::not_found));
}

TEST_CASE("holds never exceed what is available") {
  auto m = make_sku(3);
  CHECK(hold(m, "c1", 2) == 0);
  CHECK(m.held() == 2);
  CHECK(hold(m, "c2", 2) == code(errc::sold_out));
  CHECK(m.held() == 2);
  CHECK(hold(m, "c2", 1) == 0);
  CHECK(m.available() == 0);
  CHECK(hold(m, "c3", 1) == code(errc::sold_out));
  check_invariant(m);
}

TEST_CASE("a hold is set to exactly qty: it grows, shrinks and goes") {
  auto m = make_sku(10);
  CHECK(hold(m, "c1", 4) == 0);
  const std::string id = m.hold_of_cart("c1")->hold_id();
  CHECK(hold(m, "c1", 7) == 0);
  CHECK(m.held() == 7);
  CHECK(m.hold_of_cart("c1")->hold_id() == id); // resized in place
  CHECK(hold(m, "c1", 2) == 0);
  CHECK(m.held() == 2);
  CHECK(hold(m, "c1", 11) == code(errc::sold_out)); // grows by 9 > 8 available
  CHECK(m.held() == 2);
  CHECK(hold(m, "c1", 0) == 0);
  CHECK(m.held() == 0);
  CHECK(m.hold_of_cart("c1") == nullptr);
  // Releasing what is not held changes nothing and decides no event.
  auto d = m.decide_hold(actors::hold_request{"c1", "", 0}, {1, ttl, ttl}, "x");
  REQUIRE(d);
  CHECK_FALSE(d->has_value());
  CHECK(hold(m, "c1", -1) == code(errc::invalid));
}

TEST_CASE("per-customer limit counts holds and sales across carts") {
  auto m = make_sku(100, 3);
  CHECK(hold(m, "c1", 2, "alice") == 0);
  CHECK(hold(m, "c2", 2, "alice") == code(errc::limit_exceeded));
  CHECK(hold(m, "c2", 1, "alice") == 0);
  CHECK(hold(m, "c3", 1, "bob") == 0);
  // A sale still counts against the limit.
  auto c = m.decide_confirm(m.hold_of_cart("c1")->hold_id(), "o1", "c1", 2, 2000);
  REQUIRE(c);
  REQUIRE(c->has_value());
  m.apply(**c);
  CHECK(m.sold() == 2);
  CHECK(m.customer_qty("alice", "") == 3);
  CHECK(hold(m, "c4", 1, "alice") == code(errc::limit_exceeded));
  // Anonymous carts are limited one by one.
  CHECK(hold(m, "anon1", 3) == 0);
  CHECK(hold(m, "anon1", 4) == code(errc::limit_exceeded));
  CHECK(hold(m, "anon2", 3) == 0);
  check_invariant(m);
}

TEST_CASE("confirm moves held to sold, once") {
  auto m = make_sku(5);
  CHECK(hold(m, "c1", 2) == 0);
  auto id = m.hold_of_cart("c1")->hold_id();
  auto c = m.decide_confirm(id, "o1", "c1", 2, 2000);
  REQUIRE(c);
  REQUIRE(c->has_value());
  m.apply(**c);
  CHECK(m.held() == 0);
  CHECK(m.sold() == 2);
  CHECK(m.available() == 3);
  // A retry for the same order is recognised as done; another order cannot take it.
  auto again = m.decide_confirm(id, "o1", "c1", 2, 2000);
  REQUIRE(again);
  CHECK_FALSE(again->has_value());
  auto other = m.decide_confirm(id, "o2", "c1", 2, 2000);
  REQUIRE_FALSE(other);
  CHECK(other.error().code() == code(errc::not_found));
  // ... also after a snapshot round trip.
  sku_model restored{m.snapshot()};
  auto retry = restored.decide_confirm(id, "o1", "c1", 2, 3000);
  REQUIRE(retry);
  CHECK_FALSE(retry->has_value());
}

TEST_CASE("a returned sale goes back to stock and to the customer's limit, once") {
  auto m = make_sku(5, 3);
  CHECK(hold(m, "c1", 2, "alice") == 0);
  auto id = m.hold_of_cart("c1")->hold_id();
  // Nothing to return before the hold is confirmed.
  CHECK_FALSE(m.decide_return(id, "o1", 1500).has_value());
  auto c = m.decide_confirm(id, "o1", "c1", 2, 2000);
  REQUIRE(c);
  REQUIRE(c->has_value());
  m.apply(**c);
  CHECK(m.sold() == 2);
  // Only the order the hold was sold to can return it.
  CHECK_FALSE(m.decide_return(id, "o2", 2500).has_value());
  auto r = m.decide_return(id, "o1", 2500);
  REQUIRE(r.has_value());
  m.apply(*r);
  CHECK(m.sold() == 0);
  CHECK(m.available() == 5);
  CHECK(m.customer_qty("alice", "") == 0);
  CHECK(hold(m, "c2", 3, "alice") == 0); // the limit counts the returned units no more
  // A retry returns nothing more, and the hold cannot be confirmed again.
  CHECK_FALSE(m.decide_return(id, "o1", 3000).has_value());
  auto again = m.decide_confirm(id, "o1", "c1", 2, 3000);
  REQUIRE_FALSE(again);
  CHECK(again.error().code() == code(errc::not_found));
  // Applying the return twice (a replay) changes nothing; the snapshot keeps it returned.
  m.apply(*r);
  CHECK(m.sold() == 0);
  sku_model restored{m.snapshot()};
  CHECK(restored.sold() == 0);
  CHECK_FALSE(restored.decide_return(id, "o1", 3000).has_value());
  check_invariant(restored);
}

TEST_CASE("stock may not drop below held + sold") {
  auto m = make_sku(10);
  CHECK(hold(m, "c1", 6) == 0);
  auto low = m.decide_stock(true, 5, 1);
  REQUIRE_FALSE(low);
  CHECK(low.error().code() == code(errc::conflict));
  auto sub = m.decide_stock(false, -5, 1);
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code() == code(errc::conflict));
  auto neg = m.decide_stock(true, -1, 1);
  REQUIRE_FALSE(neg);
  auto overflow = m.decide_stock(false, INT64_MAX, 1);
  REQUIRE_FALSE(overflow);
  CHECK(overflow.error().code() == code(errc::invalid));
  auto add = m.decide_stock(false, 4, 1);
  REQUIRE(add);
  m.apply(*add);
  CHECK(m.on_hand() == 14);
  check_invariant(m);
}

TEST_CASE("on_hand is bounded by max_on_hand the same way for set and add") {
  constexpr int64_t max = sku_model::max_on_hand;
  auto m = make_sku(10);
  // set: up to the bound, not past it.
  auto over = m.decide_stock(true, max + 1, 1);
  REQUIRE_FALSE(over);
  CHECK(over.error().code() == code(errc::invalid));
  // add: 10 + (max - 9) is one past the bound, refused the same way; one less is allowed.
  auto add_over = m.decide_stock(false, max - 9, 1);
  REQUIRE_FALSE(add_over);
  CHECK(add_over.error().code() == code(errc::invalid));
  auto add_max = m.decide_stock(false, max - 10, 1);
  REQUIRE(add_max);
  m.apply(*add_max);
  CHECK(m.on_hand() == max);
  // At the bound: any further add is refused, a set to the bound is not.
  auto one_more = m.decide_stock(false, 1, 1);
  REQUIRE_FALSE(one_more);
  CHECK(one_more.error().code() == code(errc::invalid));
  auto set_max = m.decide_stock(true, max, 1);
  REQUIRE(set_max);
  // Replaying the decided events on a fresh model reaches the same bounded state, which then
  // refuses the same add.
  auto replayed = make_sku(10);
  replayed.apply(*add_max);
  replayed.apply(*set_max);
  CHECK(replayed.on_hand() == max);
  auto replayed_more = replayed.decide_stock(false, 1, 1);
  REQUIRE_FALSE(replayed_more);
  CHECK(replayed_more.error().code() == code(errc::invalid));
  check_invariant(m);
  check_invariant(replayed);
}

TEST_CASE("expiry releases exactly the holds past their time") {
  auto m = make_sku(10);
  CHECK(hold(m, "c1", 1, "", 1000) == 0);
  CHECK(hold(m, "c2", 2, "", 5000) == 0);
  CHECK(m.next_expiry() == 1000 + ttl);
  CHECK(m.decide_expiry(1000 + ttl - 1).empty());
  auto evs = m.decide_expiry(1000 + ttl);
  REQUIRE(evs.size() == 1);
  m.apply(evs[0]);
  CHECK(m.held() == 2);
  CHECK(m.next_expiry() == 5000 + ttl);
  // Resizing a hold renews its expiry.
  CHECK(hold(m, "c2", 3, "", 9000) == 0);
  CHECK(m.decide_expiry(5000 + ttl).empty());
  CHECK(m.decide_expiry(9000 + ttl).size() == 1);
}

TEST_CASE("snapshot + replay gives the same state as the live model") {
  auto m = make_sku(50, 5);
  proto::EventBatch journal;
  for (int i = 0; i < 20; ++i) {
    actors::hold_request req{"c" + std::to_string(i % 7), i % 2 ? "alice" : "", 1 + i % 3};
    auto d = m.decide_hold(req, {1000 + i, ttl, ttl}, "h" + std::to_string(i));
    if (d && *d) {
      m.apply(**d);
      *journal.add_events() = **d;
    }
  }
  auto snap = m.snapshot();
  sku_model restored{snap};
  CHECK(restored.on_hand() == m.on_hand());
  CHECK(restored.held() == m.held());
  CHECK(restored.sold() == m.sold());
  CHECK(restored.hold_count() == m.hold_count());
  CHECK(restored.customer_qty("alice", "") == m.customer_qty("alice", ""));
  CHECK(restored.next_expiry() == m.next_expiry());
  // Replaying the journal on a fresh model (product and stock first) converges too.
  auto replayed = make_sku(50, 5);
  replayed.apply(journal);
  CHECK(replayed.held() == m.held());
  CHECK(replayed.hold_count() == m.hold_count());
  check_invariant(restored);
}

TEST_CASE("confirm sells exactly what the order bought: another qty or cart is a conflict") {
  // Issue 11, finding 1: a cart edited during checkout must not sell its new quantity under
  // the order made for the old one.
  auto m = make_sku(10);
  CHECK(hold(m, "c1", 10) == 0);
  const auto id = m.hold_of_cart("c1")->hold_id();
  CHECK(hold(m, "c1", 1) == 0); // shrunk after the order was made for 10
  for (auto [cart, qty] : {std::pair{"c1", int64_t{10}}, std::pair{"c2", int64_t{1}}}) {
    auto c = m.decide_confirm(id, "o1", cart, qty, 2000);
    REQUIRE_FALSE(c);
    CHECK(c.error().code() == code(errc::conflict));
  }
  CHECK(m.sold() == 0);
  CHECK(m.held() == 1);
  CHECK(hold(m, "c1", 40) == code(errc::sold_out)); // grown: 39 more than 9 available
  auto ok = m.decide_confirm(id, "o1", "c1", 1, 2000);
  REQUIRE(ok);
  REQUIRE(ok->has_value());
  m.apply(**ok);
  CHECK(m.sold() == 1);
  check_invariant(m);
}

TEST_CASE("renewing a hold never moves its expiry past created + max_lifetime") {
  auto m = make_sku(10);
  constexpr int64_t max_life = 5 * ttl / 2; // 150 s
  auto put = [&](int64_t qty, int64_t now) {
    auto d = m.decide_hold(actors::hold_request{"c1", "", qty}, {now, ttl, max_life}, "h1");
    REQUIRE(d);
    if (*d) {
      m.apply(**d);
    }
    return d->has_value();
  };
  CHECK(put(1, 1000));
  CHECK(m.hold_of_cart("c1")->expires_at_ms() == 1000 + ttl);
  CHECK(m.hold_of_cart("c1")->created_at_ms() == 1000);
  CHECK(put(1, 1000 + ttl / 2)); // renewed: a full ttl from now
  CHECK(m.hold_of_cart("c1")->expires_at_ms() == 1000 + ttl / 2 + ttl);
  CHECK(put(2, 1000 + 2 * ttl)); // grown near the end of its life: capped
  CHECK(m.hold_of_cart("c1")->expires_at_ms() == 1000 + max_life);
  // At its limit a re-PUT of the same qty decides nothing, however often it comes.
  for (int64_t now = 1000 + 2 * ttl + 1; now < 1000 + max_life; now += ttl / 4) {
    CHECK_FALSE(put(2, now));
  }
  CHECK(m.hold_of_cart("c1")->expires_at_ms() == 1000 + max_life);
  CHECK(m.hold_of_cart("c1")->created_at_ms() == 1000);
  // Replay keeps it: a snapshot round trip has the same creation time.
  sku_model restored{m.snapshot()};
  CHECK(restored.hold_of_cart("c1")->created_at_ms() == 1000);
  // A max_lifetime below the ttl still gives every hold one whole ttl.
  auto n = make_sku(10);
  auto d = n.decide_hold(actors::hold_request{"c9", "", 1}, {1000, ttl, ttl / 10}, "h9");
  REQUIRE(d);
  REQUIRE(d->has_value());
  CHECK((*d)->hold_set().expires_at_ms() == 1000 + ttl);
}

TEST_CASE("a cart in another currency cannot take the SKU; shrinking is always allowed") {
  auto m = make_sku(10); // USD
  auto put = [&](const std::string& cart, int64_t qty, const std::string& currency) {
    return hold_request(m, actors::hold_request{cart, "", qty, currency}, 1000, ttl);
  };
  CHECK(put("c1", 2, "EUR") == code(errc::currency_mismatch));
  CHECK(m.held() == 0);
  CHECK(put("c1", 2, "") == 0);    // an empty cart takes any currency
  CHECK(put("c2", 1, "USD") == 0); // the same currency
  CHECK(put("c1", 1, "EUR") == 0); // shrinking takes nothing more
  CHECK(m.held() == 2);
}

TEST_CASE("with customers verified, a per-customer limit needs a customer") {
  auto m = make_sku(10, 2);
  auto put = [&](const std::string& cart, const std::string& customer, bool login_required) {
    return hold_request(m, actors::hold_request{cart, customer, 1, "", login_required}, 1000, ttl);
  };
  CHECK(put("anon", "", true) == code(errc::login_required));
  CHECK(m.held() == 0);
  CHECK(put("anon", "", false) == 0); // development: each anonymous cart is limited alone
  CHECK(put("a1", "alice", true) == 0);
  CHECK(put("a2", "alice", true) == 0);
  CHECK(put("a3", "alice", true) == code(errc::limit_exceeded));
  // Without a limit, anonymous carts are fine either way.
  auto free = make_sku(10);
  actors::hold_request req{"anon", "", 1, "", true};
  CHECK(static_cast<bool>(free.decide_hold(req, {1000, ttl, ttl}, "h")));
}

TEST_CASE("the hold indexes follow renewals, moves, expiry, release and snapshots") {
  // Ids longer than a short string's inline buffer: the indexes view the holds' own strings.
  auto cart = [](int i) { return "cart-with-a-long-id-" + std::to_string(i); };
  auto m = make_sku(100);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(hold(m, cart(i), 1, "", 1000 + i) == 0);
  }
  // Renew every other hold later: its expiry moves, its id stays.
  for (int i = 0; i < 20; i += 2) {
    const std::string id = m.hold_of_cart(cart(i))->hold_id();
    REQUIRE(hold(m, cart(i), 2, "", 5000 + i) == 0);
    CHECK(m.hold_of_cart(cart(i))->hold_id() == id);
    CHECK(m.hold_of_cart(cart(i))->expires_at_ms() == 5000 + i + ttl);
  }
  sku_model moved = std::move(m);
  CHECK(moved.held() == 30);
  CHECK(moved.next_expiry() == 1001 + ttl); // cart 1's, the oldest not renewed
  // Expiry releases exactly the holds that were not renewed.
  auto expired = moved.decide_expiry(1019 + ttl);
  CHECK(expired.size() == 10);
  for (const auto& ev : expired) {
    moved.apply(ev);
  }
  for (int i = 0; i < 20; ++i) {
    const auto* h = moved.hold_of_cart(cart(i));
    REQUIRE((h != nullptr) == (i % 2 == 0));
    if (h != nullptr) {
      CHECK(h->cart_id() == cart(i));
      CHECK(moved.hold(h->hold_id()) == h);
    }
  }
  CHECK(moved.held() == 20);
  CHECK(moved.next_expiry() == 5000 + ttl);
  // A snapshot restores the same holds; releasing them empties every index.
  sku_model restored{moved.snapshot()};
  CHECK(restored.hold_count() == 10);
  for (int i = 0; i < 20; i += 2) {
    REQUIRE(restored.hold_of_cart(cart(i)) != nullptr);
    CHECK(restored.hold_of_cart(cart(i))->hold_id() == moved.hold_of_cart(cart(i))->hold_id());
    CHECK(hold(restored, cart(i), 0, "", 6000) == 0);
    CHECK(restored.hold_of_cart(cart(i)) == nullptr);
  }
  CHECK(restored.held() == 0);
  CHECK(restored.hold_count() == 0);
  CHECK_FALSE(restored.next_expiry());
  check_invariant(restored);
}

// The sale gate (issue 17): a hold that grows on a SKU governed by a sale is checked against the
// sale's window, its queue and its per-customer limit; shrinking never is.
namespace {

constexpr int64_t sale_start = 1'000'000;
constexpr int64_t sale_end = 2'000'000;

actors::sale_gate gate(bool queue = false, int64_t limit = 0) {
  return actors::sale_gate{.sale_id = "drop-1",
                           .starts_at_ms = sale_start,
                           .ends_at_ms = sale_end,
                           .queue = queue,
                           .limit = limit};
}

/// Decides and applies `req` at `now` under `g`; returns the error code or 0.
int gated(sku_model& m, const actors::hold_request& req, int64_t now, const actors::sale_gate& g) {
  sku_model::hold_terms terms{now, ttl, ttl};
  terms.sale = g;
  auto d = m.decide_hold(req, terms, "h-" + req.cart_id);
  if (!d) {
    return d.error().code();
  }
  if (*d) {
    m.apply(**d);
  }
  return 0;
}

actors::hold_request with_pass(std::string cart, std::string customer, int64_t qty,
                               std::string pass_sale) {
  actors::hold_request r{std::move(cart), std::move(customer), qty};
  r.pass_sale = std::move(pass_sale);
  return r;
}

} // namespace

TEST_CASE("sale window: open from starts_at (inclusive) to ends_at (exclusive)") {
  auto m = make_sku(10);
  const auto g = gate();
  const actors::hold_request req{"c1", "", 1};
  CHECK(gated(m, req, sale_start - 1, g) == code(errc::sale_not_started));
  CHECK(gated(m, req, 0, g) == code(errc::sale_not_started));
  CHECK(m.held() == 0);
  CHECK(gated(m, req, sale_start, g) == 0);
  CHECK(m.held() == 1);
  CHECK(gated(m, actors::hold_request{"c2", "", 1}, sale_end - 1, g) == 0);
  CHECK(gated(m, actors::hold_request{"c3", "", 1}, sale_end, g) == code(errc::sale_ended));
  CHECK(gated(m, actors::hold_request{"c1", "", 2}, sale_end + 5000, g) == code(errc::sale_ended));
  CHECK(m.held() == 2);
  // No gate (empty sale id): the same times are fine.
  auto free = make_sku(10);
  CHECK(gated(free, req, sale_start - 1, actors::sale_gate{}) == 0);
  CHECK(gated(free, actors::hold_request{"c2", "", 1}, sale_end, actors::sale_gate{}) == 0);
  check_invariant(m);
}

TEST_CASE("sale window: shrinking or releasing a hold is allowed before the start and after "
          "the end") {
  auto m = make_sku(10);
  const auto g = gate(true, 1);            // queue on, limit 1: neither applies to a shrink either
  REQUIRE(hold(m, "c1", 3, "", 500) == 0); // taken before the SKU was put in the sale
  REQUIRE(hold(m, "c2", 2, "", 500) == 0);
  CHECK(gated(m, actors::hold_request{"c1", "", 2}, sale_start - 1, g) == 0);
  CHECK(m.hold_of_cart("c1")->qty() == 2);
  CHECK(gated(m, actors::hold_request{"c1", "", 3}, sale_start - 1, g) ==
        code(errc::sale_not_started)); // growing back is not
  CHECK(gated(m, actors::hold_request{"c1", "", 0}, sale_start - 1, g) == 0);
  CHECK(m.hold_of_cart("c1") == nullptr);
  CHECK(gated(m, actors::hold_request{"c2", "", 1}, sale_end, g) == 0);
  CHECK(gated(m, actors::hold_request{"c2", "", 0}, sale_end + 1, g) == 0);
  CHECK(m.held() == 0);
  check_invariant(m);
}

TEST_CASE("sale queue: a growing hold needs the pass of this very sale") {
  auto m = make_sku(10);
  const auto g = gate(true);
  const int64_t now = sale_start + 10;
  CHECK(gated(m, with_pass("c1", "alice", 1, ""), now, g) == code(errc::queue_required));
  CHECK(gated(m, with_pass("c1", "alice", 1, "drop-2"), now, g) == code(errc::queue_required));
  CHECK(gated(m, with_pass("c1", "alice", 1, "drop-1x"), now, g) == code(errc::queue_required));
  CHECK(m.held() == 0);
  CHECK(gated(m, with_pass("c1", "alice", 2, "drop-1"), now, g) == 0);
  CHECK(m.held() == 2);
  // Without a pass the hold may still shrink, not grow.
  CHECK(gated(m, with_pass("c1", "alice", 3, ""), now, g) == code(errc::queue_required));
  CHECK(gated(m, with_pass("c1", "alice", 1, ""), now, g) == 0);
  CHECK(m.held() == 1);
  // The window comes before the queue: a pass does not open a sale early or keep it open.
  CHECK(gated(m, with_pass("c2", "bob", 1, "drop-1"), sale_start - 1, g) ==
        code(errc::sale_not_started));
  CHECK(gated(m, with_pass("c2", "bob", 1, "drop-1"), sale_end, g) == code(errc::sale_ended));
  CHECK(gated(m, with_pass("c2", "bob", 1, ""), sale_start - 1, g) == code(errc::sale_not_started));
  // Queue off: no pass needed.
  CHECK(gated(m, with_pass("c3", "carol", 1, ""), now, gate(false)) == 0);
  check_invariant(m);
}

TEST_CASE("sale limit: the smaller non-zero of the sale's and the product's") {
  const int64_t now = sale_start;
  SUBCASE("the sale's alone") {
    auto m = make_sku(10);
    CHECK(gated(m, with_pass("a1", "alice", 2, ""), now, gate(false, 2)) == 0);
    CHECK(gated(m, with_pass("a2", "alice", 1, ""), now, gate(false, 2)) ==
          code(errc::limit_exceeded));
    CHECK(gated(m, with_pass("b1", "bob", 2, ""), now, gate(false, 2)) == 0);
    // Outside the sale (no gate) only the product's limit (none) applies.
    CHECK(gated(m, with_pass("a2", "alice", 3, ""), now, actors::sale_gate{}) == 0);
  }
  SUBCASE("the sale's is smaller") {
    auto m = make_sku(10, 3);
    CHECK(gated(m, with_pass("a1", "alice", 2, ""), now, gate(false, 1)) ==
          code(errc::limit_exceeded));
    CHECK(gated(m, with_pass("a1", "alice", 1, ""), now, gate(false, 1)) == 0);
  }
  SUBCASE("the product's is smaller") {
    auto m = make_sku(10, 1);
    CHECK(gated(m, with_pass("a1", "alice", 2, ""), now, gate(false, 5)) ==
          code(errc::limit_exceeded));
    CHECK(gated(m, with_pass("a1", "alice", 1, ""), now, gate(false, 5)) == 0);
  }
  SUBCASE("the sale's limit needs a customer when customers are verified") {
    auto m = make_sku(10);
    actors::hold_request anon{"anon", "", 1, "", true};
    CHECK(gated(m, anon, now, gate(false, 2)) == code(errc::login_required));
    anon.login_required = false; // development: each anonymous cart is limited alone
    CHECK(gated(m, anon, now, gate(false, 2)) == 0);
    anon.qty = 3;
    CHECK(gated(m, anon, now, gate(false, 2)) == code(errc::limit_exceeded));
  }
}
