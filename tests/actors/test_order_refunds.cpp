// order_model alone: an operator's refunds (order_in::refund_asked), fed their inputs by hand. No
// actors, no I/O. The same cases run through the order actor on fake and real storage in
// test_order_actor.cpp.
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

constexpr int64_t t0 = 1'700'000'000'000;

std::string kinds(const std::vector<order_effect>& fx) {
  static const char* const names[] = {
      "claim_cart",    "release_cart", "clear_cart", "create", "update", "charge", "lookup",
      "confirm_lines", "return_lines", "refund",     "reply",  "quit",   "log",    "refund_reply"};
  std::string out;
  for (const auto& e : fx) {
    if (!std::holds_alternative<order_fx::log>(e)) {
      out += (out.empty() ? "" : ",") + std::string{names[e.index()]};
    }
  }
  return out;
}

template <class T>
const T& the(const std::vector<order_effect>& fx) {
  for (const auto& e : fx) {
    if (const auto* x = std::get_if<T>(&e)) {
      return *x;
    }
  }
  FAIL("no such effect in " << kinds(fx));
  throw 0; // unreachable
}

/// An order model holding a confirmed order of A x2 at 1250 and B x1 at 499 (2999), charged
/// through "beta".
struct harness {
  order_model m{"order-1", order_terms{std::chrono::minutes{10}, false}};

  explicit harness(std::string status = "confirmed") {
    order_record o;
    o.order_id = "order-1";
    o.idempotency_key = "key-1";
    o.cart_id = "cart-1";
    o.status = std::move(status);
    o.total_cents = 2999;
    o.currency = "USD";
    o.created_at_ms = t0;
    o.lines = {{"A", 2, 1250, "h-a"}, {"B", 1, 499, "h-b"}};
    if (o.status == "confirmed") {
      o.payment = persistence::payment_record{"key-1", "beta", "ch_9", "approved", 2999, "USD"};
    }
    m.apply(m.decide(order_in::loaded{std::optional<order_record>{o}}));
    REQUIRE(m.loaded());
  }

  order_model::decision ask(std::string key, std::vector<refund_line_view> lines = {}) {
    return m.decide(order_in::refund_asked{order_refund_request{std::move(key), std::move(lines)}});
  }

  /// A refund refused at once: its error.
  caf::error refused(std::string key, std::vector<refund_line_view> lines = {}) {
    const auto waiters = m.current().refund_waiters;
    auto d = ask(std::move(key), std::move(lines));
    REQUIRE(d.refused);
    CHECK(d.effects.empty());
    auto err = d.refused;
    m.apply(std::move(d));
    CHECK(m.current().refund_waiters == waiters);
    return err;
  }

  std::vector<order_effect> feed(order_input in) { return m.apply(m.decide(in)); }

  /// Asks for a refund and runs it up to the gateway's call: the intent stored pending with its
  /// event. Returns the gateway call.
  refund_request up_to_gateway(std::string key, std::vector<refund_line_view> lines = {}) {
    auto d = ask(std::move(key), std::move(lines));
    REQUIRE_MESSAGE(!d.refused, caf::to_string(d.refused));
    auto fx = m.apply(std::move(d));
    REQUIRE(kinds(fx) == "update");
    const auto& up = the<order_fx::update>(fx).change;
    REQUIRE(up.refund_entry);
    CHECK(up.refund_entry->status == "pending");
    CHECK(up.status == "confirmed"); // the order's status stays
    REQUIRE(up.event);
    CHECK(up.event->payload.find(R"("event":"order.refund_requested")") != std::string::npos);
    fx = feed(order_in::stored{});
    REQUIRE(kinds(fx) == "refund");
    return the<order_fx::refund>(fx).request;
  }

  /// A whole refund that the gateway grants: the answer.
  refund_view granted(std::string key, std::vector<refund_line_view> lines = {}) {
    up_to_gateway(std::move(key), std::move(lines));
    auto fx = feed(order_in::refunded{refund_result{refund_status::refunded, "re_x", ""}});
    REQUIRE(kinds(fx) == "update");
    const auto& up = the<order_fx::update>(fx).change;
    CHECK(up.refund_entry->status == "refunded");
    CHECK(up.event->payload.find(R"("event":"order.refunded")") != std::string::npos);
    fx = feed(order_in::stored{});
    REQUIRE(kinds(fx) == "refund_reply");
    const auto& a = the<order_fx::refund_reply>(fx).answer;
    REQUIRE_MESSAGE(a, caf::to_string(a.error()));
    CHECK(!m.busy());
    return *a;
  }
};

} // namespace

TEST_SUITE("order_model refunds") {

  TEST_CASE("full refund: intent stored pending, the charging gateway asked under a derived key, "
            "outcome stored with its event, answered refunded") {
    harness h;
    const auto call = h.up_to_gateway("admin-1");
    CHECK(call.gateway == "beta");
    CHECK(call.charge_id == "ch_9");
    CHECK(call.charge_key == "key-1");
    CHECK(call.amount_cents == 2999);
    CHECK(call.idempotency_key.rfind("refund-", 0) == 0);
    CHECK(call.idempotency_key != harness{}.up_to_gateway("admin-2").idempotency_key);
    h.feed(order_in::refunded{refund_result{refund_status::refunded, "re_1", ""}});
    auto fx = h.feed(order_in::stored{});
    const auto& v = *the<order_fx::refund_reply>(fx).answer;
    CHECK(v.refund_id == order_model::refund_id_of("order-1", "admin-1"));
    CHECK(v.order_id == "order-1");
    CHECK(v.amount_cents == 2999);
    CHECK(v.status == "refunded");
    CHECK_FALSE(v.replay);
    REQUIRE(v.lines.size() == 2);
    CHECK(v.lines[0].sku == "A");
    CHECK(v.lines[0].qty == 2);
    CHECK(v.lines[1].sku == "B");
    const auto& o = *h.m.current().order;
    REQUIRE(o.refunds.size() == 1);
    CHECK(o.refunds[0].gateway_refund_id == "re_1");
    CHECK(o.status == "confirmed");
    // Nothing is left.
    CHECK(is(h.refused("admin-3"), errc::not_refundable));
  }

  TEST_CASE("two partial refunds, then the rest; never more of a line than is left") {
    harness h;
    auto a = h.granted("k-a", {{"A", 1}});
    CHECK(a.amount_cents == 1250);
    auto b = h.granted("k-b", {{"B", 1}});
    CHECK(b.amount_cents == 499);
    CHECK(is(h.refused("k-c", {{"B", 1}}), errc::not_refundable)); // B is all given back
    CHECK(is(h.refused("k-c", {{"A", 2}}), errc::not_refundable)); // only one A is left
    CHECK(is(h.refused("k-c", {{"C", 1}}), errc::not_refundable)); // never bought
    auto rest = h.granted("k-rest");
    CHECK(rest.amount_cents == 1250);
    REQUIRE(rest.lines.size() == 1);
    CHECK(rest.lines[0].sku == "A");
    CHECK(rest.lines[0].qty == 1);
    CHECK(h.m.current().order->refunds.size() == 3);
  }

  TEST_CASE("a pending refund counts as given back; duplicate SKUs in a request add up") {
    harness h;
    h.up_to_gateway("k-1", {{"A", 1}, {"A", 1}});
    h.feed(order_in::refunded{refund_result{refund_status::unknown, "", "timeout"}});
    CHECK(is(h.refused("k-2", {{"A", 1}}), errc::not_refundable));
  }

  TEST_CASE("only a paid order is refundable") {
    harness h{"pending"};
    CHECK(is(h.refused("k"), errc::not_refundable));
    order_model empty{"order-2", order_terms{}};
    empty.apply(empty.decide(order_in::loaded{std::optional<order_record>{}}));
    auto d = empty.decide(order_in::refund_asked{order_refund_request{"k", {}}});
    CHECK(is(d.refused, errc::not_found));
  }

  TEST_CASE("the same key: the same refund, answered as it stands; other lines: conflict") {
    harness h;
    const auto first = h.granted("k-1", {{"A", 1}});
    auto d = h.ask("k-1", {{"A", 1}});
    REQUIRE(d.answered);
    CHECK(d.effects.empty());
    CHECK(d.answered->refund_id == first.refund_id);
    CHECK(d.answered->replay);
    CHECK(d.answered->status == "refunded");
    h.m.apply(std::move(d));
    CHECK(is(h.refused("k-1", {{"B", 1}}), errc::idempotency_conflict));
    CHECK(is(h.refused("k-1"), errc::idempotency_conflict));
    CHECK(h.m.current().order->refunds.size() == 1);
  }

  TEST_CASE("a refund asked again while under way waits for it; another key is told to retry") {
    harness h;
    h.up_to_gateway("k-1");
    auto d = h.ask("k-1");
    CHECK(!d.refused);
    CHECK(d.effects.empty());
    h.m.apply(std::move(d));
    CHECK(h.m.current().refund_waiters == 2);
    CHECK(is(h.refused("k-2", {{"A", 1}}), errc::unavailable));
    h.feed(order_in::refunded{refund_result{refund_status::refunded, "re_1", ""}});
    auto fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "refund_reply");
    CHECK(h.m.current().refund_waiters == 0);
  }

  TEST_CASE("the gateway's answer unknown: answered pending, the reconciler asks again with the "
            "same key, then refunded") {
    harness h;
    const auto first = h.up_to_gateway("k-1");
    auto fx = h.feed(order_in::refunded{refund_result{refund_status::unknown, "", "timeout"}});
    REQUIRE(kinds(fx) == "refund_reply");
    CHECK(the<order_fx::refund_reply>(fx).answer->status == "pending");
    CHECK(h.m.current().order->refunds[0].status == "pending");
    CHECK(!h.m.busy());
    fx = h.feed(order_in::reconcile{});
    REQUIRE(kinds(fx) == "refund");
    CHECK(the<order_fx::refund>(fx).request.idempotency_key == first.idempotency_key);
    fx = h.feed(order_in::refunded{refund_result{refund_status::refunded, "re_1", ""}});
    REQUIRE(kinds(fx) == "update");
    fx = h.feed(order_in::stored{});
    REQUIRE(kinds(fx) == "refund_reply"); // nobody waits: delivered to none
    CHECK(h.m.current().order->refunds[0].status == "refunded");
    CHECK(h.feed(order_in::reconcile{}).empty()); // settled
    // A replay of the key while it was pending asks the gateway again too.
    harness g;
    g.up_to_gateway("k-1");
    g.feed(order_in::refunded{refund_result{refund_status::unknown, "", "timeout"}});
    auto d = g.ask("k-1");
    REQUIRE(!d.refused);
    fx = g.m.apply(std::move(d));
    REQUIRE(kinds(fx) == "refund");
  }

  TEST_CASE("refused by the gateway: stored failed with its event, answered not_refundable, and "
            "the amount is free again") {
    harness h;
    h.up_to_gateway("k-1");
    auto fx = h.feed(order_in::refunded{refund_result{refund_status::rejected, "", "no"}});
    REQUIRE(kinds(fx) == "update");
    CHECK(the<order_fx::update>(fx).change.refund_entry->status == "failed");
    CHECK(the<order_fx::update>(fx).change.event->payload.find("order.refund_failed") !=
          std::string::npos);
    fx = h.feed(order_in::stored{});
    CHECK(is(the<order_fx::refund_reply>(fx).answer.error(), errc::not_refundable));
    CHECK(is(h.refused("k-1"), errc::not_refundable)); // the same key: the same answer
    CHECK(h.granted("k-2").amount_cents == 2999);
  }

  TEST_CASE("storing the intent fails: answered unavailable, and the actor quits to reload") {
    harness h;
    auto d = h.ask("k-1");
    h.m.apply(std::move(d));
    auto fx =
        h.feed(order_in::stored{persistence::make_error(persistence::errc::unavailable, "x")});
    CHECK(kinds(fx) == "refund_reply,quit");
    CHECK(is(the<order_fx::refund_reply>(fx).answer.error(), errc::unavailable));
  }

  TEST_CASE("refund_event_of: the refund's event, JSON-escaped") {
    order_record o;
    o.order_id = "o\"1";
    o.currency = "USD";
    persistence::order_refund_record r;
    r.refund_id = "rf_1";
    r.status = "refunded";
    r.amount_cents = 5;
    r.lines = {{"A", 1}};
    o.refunds = {r};
    const auto e = order_model::refund_event_of(o, r, "order.refunded");
    CHECK(e.topic == "refunds");
    CHECK(e.key == "o\"1");
    CHECK(e.payload == R"({"event":"order.refunded","order_id":"o\"1","refund_id":"rf_1",)"
                       R"("status":"refunded","amount_cents":5,"currency":"USD",)"
                       R"("lines":[{"sku":"A","qty":1}],"refunded_cents":5})");
  }
}
