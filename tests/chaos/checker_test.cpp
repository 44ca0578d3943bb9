// surge-chaos's checker on hand-made histories: a valid run passes every promise; each broken
// promise is a FAIL whose counter-example names what broke it.
#include <algorithm>

#include <doctest/doctest.h>

#include "checker.hpp"
#include "journal_codec.hpp"

namespace surge::chaos {

namespace {

constexpr int64_t t0 = 1'700'000'000'000;
using ek = journal_event::kind_t;
using ok = operation::kind_t;

journal_event ev(ek k, std::string hold = {}, int64_t qty = 0, int64_t at = t0) {
  journal_event e;
  e.kind = k;
  e.at_ms = at;
  e.hold_id = std::move(hold);
  e.qty = qty;
  e.value = qty;
  e.cart_id = "c-" + e.hold_id;
  e.expires_at_ms = at + 5000;
  return e;
}

journal_batch batch(int64_t seq, std::vector<journal_event> evs, std::string node = "n1",
                    int64_t epoch = 1, std::string sku = "A") {
  journal_batch b;
  b.stream = "sku:" + sku;
  b.seq = seq;
  b.shard = 5;
  b.epoch = epoch;
  b.node_id = std::move(node);
  b.events = std::move(evs);
  return b;
}

operation op(uint64_t id, ok k, int status, int64_t start, int64_t end) {
  operation o;
  o.id = id;
  o.kind = k;
  o.status = status;
  o.start_ms = t0 + start;
  o.end_ms = t0 + end;
  o.sku = "A";
  return o;
}

operation put(uint64_t id, const std::string& cart, const std::string& hold, int status,
              int64_t start, int64_t end, int node = 0) {
  auto o = op(id, ok::put_item, status, start, end);
  o.cart_id = cart;
  o.qty = 1;
  o.node = node;
  if (status == 200) {
    o.lines.push_back({"A", 1, hold});
  }
  return o;
}

operation checkout(uint64_t id, const std::string& key, int status, const std::string& order,
                   int64_t start, int64_t end) {
  auto o = op(id, ok::checkout, status, start, end);
  o.sku.clear();
  o.cart_id = "c-h1";
  o.idempotency_key = key;
  o.token = "tok_ok";
  o.order_id = order;
  o.order_status = status == 201 ? "confirmed" : "";
  return o;
}

/// A run that keeps every promise: stock 2, one hold sold, one expired.
run_data valid_run() {
  run_data d;
  d.node_ids = {"n1", "n2", "n3"};
  d.hold_ttl_ms = 5000;
  auto stock = ev(ek::stock_set, {}, 2);
  d.journal.push_back(batch(1, {ev(ek::product_set), stock}));
  d.journal.push_back(batch(2, {ev(ek::hold_set, "h1", 1, t0 + 100)}));
  auto confirm = ev(ek::hold_confirmed, "h1", 0, t0 + 300);
  confirm.order_id = "o1";
  confirm.reason = 3;
  d.journal.push_back(batch(3, {confirm}));
  d.journal.push_back(batch(4, {ev(ek::hold_set, "h2", 1, t0 + 400)}));
  auto expire = ev(ek::hold_released, "h2", 0, t0 + 5500);
  expire.reason = 2;
  d.journal.push_back(batch(5, {expire}));

  auto s = op(1, ok::stock, 200, 0, 50);
  s.qty = 2;
  s.stock_set = true;
  d.history.push_back(s);
  d.history.push_back(put(2, "c-h1", "h1", 200, 90, 110));
  d.history.push_back(checkout(3, "k1", 201, "o1", 200, 320));
  d.history.push_back(checkout(4, "k1", 201, "o1", 400, 420)); // a retry: the same order
  d.history.push_back(put(5, "c-h2", "h2", 200, 390, 410));
  d.orders.push_back({"o1", "k1", "confirmed", "c-h1", {{"A", 1, "h1"}}});
  d.orders.back().total_cents = 100;
  d.orders.back().payment_status = "approved";
  d.orders.back().payment_gateway = "alpha";
  d.charges.push_back({"alpha", "k1", 100, "approved"});
  d.charges.push_back({"alpha", "k2", 100, "declined"});
  d.shard_history.push_back({5, 1, "n1", "assign", t0});
  d.checked_at_ms = t0 + 20000;
  return d;
}

bool mentions(const promise_result& r, const std::string& text) {
  for (const auto& c : r.counter_examples) {
    if (c.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

} // namespace

TEST_SUITE("chaos_unit") {
  TEST_CASE("a valid run passes every promise") {
    const auto rs = check_all(valid_run());
    REQUIRE(rs.size() == 6);
    for (const auto& r : rs) {
      CHECK_MESSAGE(r.result == verdict::pass, r.id << ": " << r.summary);
      CHECK(r.counter_examples.empty());
    }
    CHECK(all_passed(rs));
  }

  TEST_CASE("G1: held + sold above on_hand after a batch") {
    auto d = valid_run();
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h3", 5, t0 + 600)}));
    auto r = check_g1(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "held 5 + sold 1 > on_hand 2"));
    CHECK(mentions(r, "h3"));
  }

  TEST_CASE("G1: an oversell in the middle of the journal, healed later, still fails") {
    auto d = valid_run();
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h3", 2, t0 + 600)}));
    auto rel = ev(ek::hold_released, "h3", 0, t0 + 700);
    rel.reason = 1;
    d.journal.push_back(batch(7, {rel}));
    CHECK(check_g1(d).result == verdict::fail);
  }

  TEST_CASE("G1: confirmed order lines differ from what the journal sold") {
    auto d = valid_run();
    d.orders.push_back({"o2", "k2", "confirmed", "c9", {{"A", 1, "h9"}}});
    auto r = check_g1(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "journal sold 1 but confirmed order lines add up to 2"));
    CHECK(mentions(r, "o2"));
  }

  TEST_CASE("G1: a cancelled order's returned line is no longer sold") {
    auto d = valid_run();
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h3", 1, t0 + 600)}));
    auto c = ev(ek::hold_confirmed, "h3", 0, t0 + 700);
    c.order_id = "o2";
    d.journal.push_back(batch(7, {c}));
    d.orders.push_back({"o2", "k2", "cancelled", "c-h3", {{"A", 1, "h3"}, {"B", 1, "h8"}}});
    // Without the return, a cancelled order's line stays sold: under-sold stock.
    auto r = check_g1(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "journal sold 2 but confirmed order lines add up to 1"));
    auto ret = ev(ek::sale_returned, "h3", 0, t0 + 800);
    ret.order_id = "o2";
    d.journal.push_back(batch(8, {ret}));
    d.journal.push_back(batch(9, {ret})); // a retried return changes nothing
    CHECK(check_g1(d).result == verdict::pass);
  }

  TEST_CASE("G2: an acknowledged hold missing from the journal") {
    auto d = valid_run();
    d.history.push_back(put(6, "c-h9", "h9", 200, 500, 510));
    auto r = check_g2(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "hold h9 acknowledged but not in the journal"));
    CHECK(mentions(r, "op#6"));
  }

  TEST_CASE("G2: an order acknowledged with 201 missing from PostgreSQL") {
    auto d = valid_run();
    d.history.push_back(checkout(6, "k7", 201, "o7", 500, 510));
    auto r = check_g2(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "not in PostgreSQL"));
    CHECK(mentions(r, "o7"));
  }

  TEST_CASE("G2: an acknowledged stock change missing from the journal") {
    auto d = valid_run();
    auto s = op(6, ok::stock, 200, 500, 510);
    s.qty = 10;
    d.history.push_back(s);
    CHECK(check_g2(d).result == verdict::fail);
  }

  TEST_CASE("G3: two approved charges for one key on two gateways") {
    auto d = valid_run();
    d.charges.push_back({"beta", "k1", 100, "approved"});
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k1: 2 approved charges"));
  }

  TEST_CASE("G3: a failed attempt on one gateway and an approval on the next is one charge") {
    auto d = valid_run();
    d.charges.insert(d.charges.begin(), {"beta", "k1", 100, "failed"});
    CHECK(check_g3(d).result == verdict::pass);
  }

  TEST_CASE("G3: two orders acknowledged for one key") {
    auto d = valid_run();
    d.history.push_back(checkout(6, "k1", 201, "o9", 500, 510));
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "two orders acknowledged"));
  }

  TEST_CASE("G3: a retry after a 201 refused by the rate limit (429) says nothing of the key") {
    auto d = valid_run();
    auto retry = checkout(6, "k1", 429, "", 500, 510);
    retry.error_code = "rate_limited";
    d.history.push_back(retry);
    CHECK(check_g3(d).result == verdict::pass);
  }

  TEST_CASE("G3: a retry after a 201 answered differently") {
    auto d = valid_run();
    auto retry = checkout(6, "k1", 402, "", 500, 510);
    retry.error_code = "payment_declined";
    d.history.push_back(retry);
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "did not return the first result"));
  }

  TEST_CASE("G3: a charge kept for an order that is not confirmed") {
    auto d = valid_run();
    d.orders.push_back({"o7", "k7", "cancelled", "c-h7", {}});
    d.orders.back().refund_status = "refunded";
    d.orders.back().refund_cents = 300;
    d.charges.push_back({"alpha", "k7", 300, "approved", 0});
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k7: charged 300 via alpha for an order that is cancelled"));
    CHECK(mentions(r, "order o7 cancelled, refund refunded"));
    // Given back whole by its cancellation's refund, it is fine; in part, it is not.
    d.charges.back().refunded_cents = 300;
    d.refunds.push_back({"alpha", "refund-k7", "k7", 300, "refunded"});
    CHECK(check_g3(d).result == verdict::pass);
    // The order recorded its refund, but no gateway made it.
    d.refunds.back().status = "rejected";
    CHECK(mentions(check_g3(d), "order o7 (key k7, cancelled, refund refunded): its refund is "
                                "recorded refunded but no gateway refunded refund-k7"));
    d.refunds.back().status = "refunded";
    d.charges.back().refunded_cents = 100;
    CHECK(check_g3(d).result == verdict::fail);
    // A charge with no order at all is kept money too.
    auto e = valid_run();
    e.charges.push_back({"beta", "k-lost", 50, "approved", 0});
    CHECK(mentions(check_g3(e), "an order that is missing"));
  }

  TEST_CASE("G3: a confirmed order's charge refunded") {
    auto d = valid_run();
    for (auto& c : d.charges) {
      c.refunded_cents = c.amount_cents;
    }
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "a confirmed order's charge was refunded"));
  }

  // ---- G3 with payments.capture=after_confirm: authorise, then capture or void ----

  TEST_CASE("G3 after_confirm: captures of confirmed orders, voids of cancelled ones pass") {
    auto d = valid_run(); // o1/k1: captured (approved) 100 via alpha, confirmed
    d.orders.push_back({"o2", "k2v", "cancelled", "c2", {}});
    d.orders.back().total_cents = 250;
    d.orders.back().refund_status = "voided";
    d.orders.back().refund_cents = 250;
    d.orders.back().payment_status = "voided";
    d.orders.back().payment_gateway = "beta";
    d.charges.push_back({"beta", "k2v", 250, "voided"});
    // A capture refused (the authorisation was released first): failed, nothing kept.
    d.orders.push_back({"o3", "k3", "failed", "c3", {}});
    d.charges.push_back({"alpha", "k3", 80, "declined"});
    // 3-D Secure given up: the open charge released, the order failed with its payment voided.
    d.orders.push_back({"o5", "k5", "failed", "c5", {}});
    d.orders.back().total_cents = 60;
    d.orders.back().payment_status = "voided";
    d.orders.back().payment_gateway = "alpha";
    d.charges.push_back({"alpha", "k5", 60, "voided"});
    // A confirmed order refunded in part by an operator (recorded in order_refunds).
    d.orders.push_back({"o4", "k4", "confirmed", "c4", {}});
    d.orders.back().total_cents = 500;
    d.orders.back().refunds.push_back({"rf_1", "refund-1", "refunded", 200});
    d.charges.push_back({"alpha", "k4", 500, "approved", 200});
    d.refunds.push_back({"alpha", "refund-1", "k4", 200, "refunded"});
    d.refunds.push_back({"alpha", "refund-2", "k4", 900, "rejected"}); // refused: nothing moved
    const auto r = check_g3(d);
    CHECK_MESSAGE(r.result == verdict::pass, r.summary);
    for (const auto& c : r.counter_examples) {
      MESSAGE(c);
    }
    CHECK(r.metrics.at("captured_confirmed") == doctest::Approx(2));
    CHECK(r.metrics.at("voided_keys") == doctest::Approx(2));
    CHECK(r.metrics.at("refunds_made") == doctest::Approx(1));
    CHECK(r.metrics.at("open_authorizations") == doctest::Approx(0));
    CHECK(all_passed(check_all(d)));
  }

  TEST_CASE("G3 after_confirm: a captured charge of a cancelled order is a violation") {
    auto d = valid_run();
    d.orders.push_back({"o5", "k5", "cancelled", "c5", {}});
    d.orders.back().total_cents = 300;
    d.orders.back().refund_status = "voided"; // the order believes it released the money
    d.charges.push_back({"alpha", "k5", 300, "approved"});
    const auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k5: charged 300 via alpha for an order that is cancelled, refunded 0 "
                      "(order o5 cancelled, refund voided)"));
    CHECK(mentions(r, "order o5 (key k5, cancelled, refund voided): its authorisation is "
                      "recorded voided but no gateway voided one"));
  }

  TEST_CASE("G3 after_confirm: a void of a confirmed order is a violation") {
    auto d = valid_run();
    d.charges[0].status = "voided"; // k1's authorisation released, yet o1 is confirmed
    const auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k1: an authorisation of 100 voided via alpha for an order that is "
                      "confirmed, not cancelled with its refund voided (order o1 confirmed)"));
    CHECK(mentions(r, "order o1 (key k1, confirmed): confirmed, but no gateway captured its "
                      "payment"));
  }

  TEST_CASE("G3 after_confirm: captured and voided, or authorised twice, for one key") {
    auto d = valid_run();
    d.charges.push_back({"beta", "k1", 100, "voided"});
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k1: both captured (approved 100 via alpha) and voided (voided 100 via "
                      "beta) (order o1 confirmed)"));
    d = valid_run();
    d.charges[0].status = "authorized";
    d.charges.push_back({"beta", "k1", 100, "authorized"});
    r = check_g3(d);
    CHECK(mentions(r, "key k1: more than one charge or authorisation: authorized 100 via alpha, "
                      "authorized 100 via beta"));
  }

  TEST_CASE("G3 after_confirm: an authorisation left open, an unsettled order") {
    auto d = valid_run();
    d.orders.push_back({"o6", "k6", "failed", "c6", {}});
    d.charges.push_back({"alpha", "k6", 120, "authorized"});
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k6: an authorisation of 120 via alpha left open (neither captured nor "
                      "voided) at the check (order o6 failed)"));
    CHECK(r.metrics.at("open_authorizations") == doctest::Approx(1));
    // Still pending at the check (the reconciler did not settle it): reported as such too.
    d.orders.back().status = "pending";
    r = check_g3(d);
    CHECK(mentions(r, "order o6 (key k6, pending): not settled at the check"));
    CHECK(mentions(r, "left open"));
    // A cancelled order whose refund is still pending is not settled either.
    d = valid_run();
    d.orders.push_back({"o8", "k8", "cancelled", "c8", {}});
    d.orders.back().refund_status = "pending";
    CHECK(mentions(check_g3(d), "order o8 (key k8, cancelled, refund pending): not settled"));
  }

  TEST_CASE("G3: a refund must match a cancellation or an operator's recorded refund") {
    auto d = valid_run();
    // k1's confirmed order refunded by someone the database does not know of.
    d.charges[0].refunded_cents = 40;
    d.refunds.push_back({"alpha", "refund-x", "k1", 40, "refunded"});
    auto r = check_g3(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "key k1: refund refund-x of 40 via alpha matches neither a cancelled "
                      "order's refund nor an operator's refund recorded for the order (order o1 "
                      "confirmed)"));
    CHECK(mentions(r, "a confirmed order's charge was refunded (40 of 100 via alpha) but its "
                      "operators' refunds recorded give back 0"));
    // Recorded as an operator's refund: fine.
    d.orders[0].refunds.push_back({"rf_x", "refund-x", "refunded", 40});
    CHECK(check_g3(d).result == verdict::pass);
    // Recorded, but for another amount.
    d.orders[0].refunds.back().amount_cents = 30;
    CHECK(check_g3(d).result == verdict::fail);
    // Recorded refunded, but no gateway made it.
    d = valid_run();
    d.orders[0].refunds.push_back({"rf_y", "refund-y", "refunded", 10});
    CHECK(mentions(check_g3(d), "operator refund rf_y of 10 is recorded refunded but no gateway "
                                "refunded refund-y"));
  }

  TEST_CASE("G3: a captured amount other than the confirmed order's total") {
    auto d = valid_run();
    d.charges[0].amount_cents = 90;
    CHECK(mentions(check_g3(d), "key k1: captured 90 via alpha but the order's total is 100"));
    d = valid_run();
    d.orders[0].payment_gateway = "beta";
    CHECK(
        mentions(check_g3(d),
                 "key k1: captured via alpha but the order's payment row says approved via beta"));
  }

  TEST_CASE("G4: two nodes committed for one shard in one epoch") {
    auto d = valid_run();
    d.journal.push_back(batch(6, {ev(ek::stock_added, {}, 1)}, "n2", 1));
    auto r = check_g4(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "shard 5 epoch 1 committed by 2 nodes"));
  }

  TEST_CASE("G4: shard_history with two owners for one epoch") {
    auto d = valid_run();
    d.shard_history.push_back({5, 1, "n3", "assign", t0 + 10});
    CHECK(check_g4(d).result == verdict::fail);
  }

  TEST_CASE("G4: a new epoch for a new owner is fine") {
    auto d = valid_run();
    d.journal.push_back(batch(6, {ev(ek::stock_added, {}, 1)}, "n2", 2));
    d.shard_history.push_back({5, 2, "n2", "failover", t0 + 10});
    CHECK(check_g4(d).result == verdict::pass);
  }

  TEST_CASE("G5: shards back within the goal pass, slower ones warn, lost ones fail") {
    auto d = valid_run();
    d.faults.push_back({"kill", "n1", "", t0 + 10000, t0 + 12000, false, ""});
    // Requests through n2 (index 1) on the dead node's shard.
    d.history.push_back(put(10, "c10", "", 503, 10100, 10200, 1));
    d.history.push_back(put(11, "c11", "h11", 200, 11000, 12000, 1));
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h11", 1, t0 + 11900)}));
    auto r = check_g5(d);
    CHECK(r.result == verdict::pass);
    CHECK(r.metrics["node_fault_max_ms"] == doctest::Approx(1900));
    CHECK(r.metrics["max_ms.kill"] == doctest::Approx(1900));
    CHECK(std::find(r.details.begin(), r.details.end(), "longest per fault kind: kill 1900 ms") !=
          r.details.end());

    d.history[d.history.size() - 1].end_ms = t0 + 15100; // back after 5 s: over the goal
    CHECK(check_g5(d).result == verdict::warn);

    d.history.pop_back(); // never back
    r = check_g5(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "never served again"));
  }

  TEST_CASE("G5: a probe that gets an answer ends the window before the next purchase") {
    auto d = valid_run();
    d.faults.push_back({"kill", "n1", "", t0 + 10000, t0 + 12000, false, ""});
    d.history.push_back(put(10, "c10", "", 503, 10100, 10200, 1));
    // The next shopper wants this SKU only 40 s later: without probes, 40 s "unavailable".
    d.history.push_back(put(11, "c11", "h11", 200, 50000, 50010, 1));
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h11", 1, t0 + 50000)}));
    CHECK(check_g5(d).result == verdict::fail);
    // The prober asked every 200 ms: one more failure, then an answer at 11.4 s.
    auto probe = [](uint64_t id, int status, int64_t start) {
      auto o = op(id, ok::probe, status, start, start + 5);
      o.node = 1;
      return o;
    };
    d.history.push_back(probe(12, 503, 10400));
    d.history.push_back(probe(13, 200, 11400));
    auto r = check_g5(d);
    CHECK(r.result == verdict::pass);
    CHECK(r.metrics["node_fault_max_ms"] == doctest::Approx(1305));
  }

  TEST_CASE("G5: a shard that changed hands with no fault to explain it warns (flapping)") {
    auto d = valid_run();
    d.faults.push_back({"kill", "n1", "", t0 + 10000, t0 + 12000, false, ""});
    // The kill's own failover, and a handover (planned): both fine.
    d.shard_history.push_back({5, 2, "n2", "failover from n1", t0 + 10900});
    d.shard_history.push_back({5, 3, "n1", "handover from n2", t0 + 60000});
    auto r = check_g5(d);
    CHECK(r.result == verdict::pass);
    CHECK(r.metrics["failovers_without_fault"] == 0);
    // A lease that ran out a minute after everything was healed: nothing explains it.
    d.shard_history.push_back({5, 4, "n2", "failover from n1", t0 + 90000});
    r = check_g5(d);
    CHECK(r.result == verdict::warn);
    CHECK(r.metrics["failovers_without_fault"] == 1);
    CHECK(std::any_of(r.details.begin(), r.details.end(), [](const std::string& line) {
      return line.find("shard 5 changed hands without a fault (failover from n1, epoch 4 to n2)") !=
             std::string::npos;
    }));
    CHECK(r.summary.find("1 shard(s) changed hands without a fault") != std::string::npos);
  }

  TEST_CASE("G5: requests sent to the dead node itself do not count against its shards") {
    auto d = valid_run();
    d.faults.push_back({"kill", "n1", "", t0 + 10000, t0 + 12000, false, ""});
    d.history.push_back(put(10, "c10", "", 0, 10100, 18000, 0)); // to n1 (index 0), no answer
    d.history.push_back(put(11, "c11", "h11", 200, 30000, 30010, 1));
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h11", 1, t0 + 30000)}));
    CHECK(check_g5(d).result == verdict::pass);
  }

  TEST_CASE("G5: a rolling restart and a scale are bounded, requests to their nodes count") {
    for (const char* kind : {"rolling-restart", "scale"}) {
      auto d = valid_run();
      d.faults.push_back({kind, "n1,n2,n3", "", t0 + 10000, t0 + 40000, false, ""});
      // A request to n1 (index 0) during the roll failed: planned restarts have no excuse.
      d.history.push_back(put(10, "c10", "", 503, 10100, 10200, 0));
      d.history.push_back(put(11, "c11", "h11", 200, 15000, 15100, 1)); // back after 5 s
      d.journal.push_back(batch(6, {ev(ek::hold_set, "h11", 1, t0 + 15000)}));
      auto r = check_g5(d);
      CHECK_MESSAGE(r.result == verdict::warn, kind);
      CHECK(r.metrics["node_fault_max_ms"] == doctest::Approx(5000));
      CHECK_MESSAGE(!mentions(r, "reported, not bounded"), kind);
      d.history.back().end_ms = t0 + 45000; // 35 s: over the limit
      CHECK_MESSAGE(check_g5(d).result == verdict::fail, kind);
    }
  }

  TEST_CASE("G6: a hold left past its TTL") {
    auto d = valid_run();
    d.journal.push_back(batch(6, {ev(ek::hold_set, "h4", 1, t0 + 600)}));
    d.history.push_back(put(6, "c-h4", "h4", 200, 590, 610));
    auto r = check_g6(d);
    CHECK(r.result == verdict::fail);
    CHECK(mentions(r, "hold h4"));
    d.checked_at_ms = t0 + 6000; // checked before its expiry (+ margin): fine
    CHECK(check_g6(d).result == verdict::pass);
  }

  TEST_CASE("journal payloads decode to the model") {
    auto h = ev(ek::hold_set, "h1", 3, t0);
    auto c = ev(ek::hold_confirmed, "h1", 0, t0 + 1);
    c.order_id = "o1";
    c.reason = 3;
    auto ret = ev(ek::sale_returned, "h1", 0, t0 + 2);
    ret.order_id = "o1";
    ret.reason = 4;
    const auto payload = encode_batch({ev(ek::stock_set, {}, 7), h, c, ret});
    auto decoded = decode_batch(payload);
    REQUIRE(decoded.has_value());
    REQUIRE(decoded->size() == 4);
    CHECK((*decoded)[3].kind == ek::sale_returned);
    CHECK((*decoded)[3].order_id == "o1");
    CHECK((*decoded)[0].kind == ek::stock_set);
    CHECK((*decoded)[0].value == 7);
    CHECK((*decoded)[1].hold_id == "h1");
    CHECK((*decoded)[1].qty == 3);
    CHECK((*decoded)[1].expires_at_ms == t0 + 5000);
    CHECK((*decoded)[2].order_id == "o1");
    CHECK_FALSE(decode_batch(std::string("\xff\xff\xff", 3)).has_value());
  }

  TEST_CASE("quantiles") {
    CHECK(quantile({}, 0.99) == 0);
    CHECK(quantile({5}, 0.99) == 5);
    std::vector<int64_t> v;
    for (int i = 1; i <= 100; ++i) {
      v.push_back(i);
    }
    CHECK(quantile(v, 0.99) == 99);
    CHECK(quantile(v, 1.0) == 100);
  }
}

} // namespace surge::chaos
