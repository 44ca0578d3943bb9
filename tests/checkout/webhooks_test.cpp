// Orders reach the shop: a real node paying through a real surge-paysim delivers its order and
// refund events to a real surge-webhook-sink (the shop's endpoint, which verifies every
// Surge-Signature with the shared secret) through the fulfilment consumer group and the
// dispatchers. What the shop gets is checked against what the node put on its Redis streams.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkout_support.hpp"
#include "sink_process.hpp"
#include "surge/persistence/orders.hpp"
#include "test_env.hpp"

namespace surge::itest {

using namespace std::chrono_literals;
using ptest::sink_event;
using ptest::sink_process;

namespace {

const std::string secret = "whsec-test-0123456789abcdef";

/// The node flags that deliver to `sink` (endpoint "shop"), with retries scaled down: what is
/// minutes in production is seconds here.
std::vector<std::string> webhook_flags(const sink_process& sink,
                                       std::vector<std::string> more = {}) {
  std::vector<std::string> f{"--webhooks.endpoints=shop=" + sink.url("/hooks/surge"),
                             "--webhooks.secrets=shop=" + secret,
                             "--webhooks.retry_base=100ms",
                             "--webhooks.retry_max=1s",
                             "--webhooks.timeout=1s",
                             "--webhooks.claim_idle=1s"};
  f.insert(f.end(), more.begin(), more.end());
  return f;
}

/// The events the node put on its streams (orders and refunds): event id "evt_<n>" -> order id.
std::map<std::string, std::string> streamed(const node_process& node) {
  std::map<std::string, std::string> out;
  for (const char* topic : {"orders", "refunds"}) {
    for (const auto& e : xrange(surge::test::test_redis_url(), node.redis_prefix() + topic)) {
      out["evt_" + e.fields.at("event_id")] = e.fields.at("key");
    }
  }
  return out;
}

/// The distinct event ids `events` hold.
std::set<std::string> distinct(const std::vector<sink_event>& events) {
  std::set<std::string> out;
  for (const auto& e : events) {
    out.insert(e.event_id);
  }
  return out;
}

int64_t number_of(const std::string& event_id) {
  return std::stoll(event_id.substr(4));
}

/// CHECKs that the shop got exactly the events `want` (after de-duplication by event id), each
/// body naming its own id, type and order, and that one order's events first arrived in event
/// order.
void check_received(const std::vector<sink_event>& events,
                    const std::map<std::string, std::string>& want) {
  CHECK(distinct(events).size() == want.size());
  std::map<std::string, int64_t> last_of_order;
  std::set<std::string> seen;
  for (const auto& e : events) {
    INFO("event " << e.event_id << " " << e.type << " attempt " << e.attempt << ": " << e.body);
    REQUIRE(want.count(e.event_id) == 1);
    CHECK(e.order_id == want.at(e.event_id));
    const auto body = parse_json(e.body);
    CHECK(str_of(body, "id") == e.event_id);
    CHECK(str_of(body, "type") == e.type);
    CHECK(str_of(body, "order_id") == e.order_id);
    CHECK(str_of(member(body, "data"), "order_id") == e.order_id);
    CHECK(e.attempt >= 1);
    if (!seen.insert(e.event_id).second) {
      continue; // a redelivery: the shop de-duplicates it
    }
    const auto n = number_of(e.event_id);
    auto& last = last_of_order[e.order_id];
    CHECK_MESSAGE(n > last, e.order_id << ": " << e.event_id << " after evt_" << last);
    last = std::max(last, n);
  }
}

/// Confirmed orders of `n` carts (one unit of `sku` each, paid with tok_ok); their ids.
std::vector<std::string> place_orders(api& a, const std::string& sku, int n,
                                      const std::string& tag) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    const auto cart = filled_cart(a, {{sku, 1, 700}});
    const auto r = checkout(a.store(), cart, tag + std::to_string(i), "tok_ok");
    REQUIRE_MESSAGE(r.status == 201, describe(r));
    ids.push_back(str_of(parse_json(r.body), "order_id"));
  }
  return ids;
}

/// A full refund of order `id` through the admin API (a "refunds" event, then its outcome).
void refund(api& a, const std::string& id, const std::string& key) {
  request rq{"POST",
             "/admin/v1/orders/" + id + "/refunds",
             "{}",
             {{"Content-Type", "application/json"}, {"Idempotency-Key", key}}};
  const auto r = a.admin().send(rq);
  REQUIRE_MESSAGE(r.status == 201, describe(r));
}

json::value admin_json(api& a, const std::string& target) {
  const auto r = a.admin().get(target);
  REQUIRE_MESSAGE(r.status == 200, target << ": " << describe(r));
  return parse_json(r.body);
}

/// Waits (bounded) until the shop got every event the node streamed (at least `at_least`).
std::vector<sink_event> await_all(const sink_process& sink, const node_process& node,
                                  std::size_t at_least, std::chrono::milliseconds patience) {
  std::vector<sink_event> got;
  const bool all = poll_until(
      patience,
      [&] {
        const auto want = streamed(node);
        got = sink.events();
        return want.size() >= at_least && distinct(got).size() >= want.size();
      },
      200ms);
  CHECK_MESSAGE(all, "the shop got " << distinct(got).size() << " of " << streamed(node).size()
                                     << " events; stats " << sink.stats().received << " received, "
                                     << sink.stats().failed << " failed");
  return got;
}

} // namespace

TEST_SUITE("webhooks") {

  TEST_CASE("every order and refund event reaches the shop signed, in order; the log shows it") {
    sink_process sink{{"--secret=" + secret}};
    auto [ps, node, a] = paying_store{{}, webhook_flags(sink)};
    add_product(a, "wh-a", 700, 100);
    const auto ids = place_orders(a, "wh-a", 3, "wh-key-");
    refund(a, ids[0], "wh-refund-0");

    const auto got = await_all(sink, node, 5, 30s); // 3 confirmations, a refund's 2 events
    const auto want = streamed(node);
    check_received(got, want);
    CHECK(sink.stats().rejected == 0); // every signature held
    std::set<std::string> types;
    for (const auto& e : got) {
      types.insert(e.type);
    }
    CHECK(types.count("order.confirmed") == 1);
    CHECK(types.count("order.refund_requested") == 1);
    CHECK(types.count("order.refunded") == 1);

    // The delivery log: per endpoint, per delivery, per attempt.
    CHECK(poll_until(5s, [&] {
      const auto eps = array_of(admin_json(a, "/admin/v1/webhooks"), "endpoints");
      return eps.size() == 1 && int_of(eps[0], "delivered") == static_cast<int64_t>(want.size());
    }));
    const auto eps = array_of(admin_json(a, "/admin/v1/webhooks"), "endpoints");
    REQUIRE(eps.size() == 1);
    CHECK(str_of(eps[0], "name") == "shop");
    CHECK(str_of(eps[0], "url") == sink.url("/hooks/surge"));
    CHECK(int_of(eps[0], "pending") == 0);
    CHECK(int_of(eps[0], "dead") == 0);
    const auto of_order = admin_json(a, "/admin/v1/webhooks/deliveries?order_id=" + ids[1]);
    const auto& items = array_of(of_order, "items");
    REQUIRE(items.size() == 1);
    CHECK(str_of(items[0], "status") == "delivered");
    CHECK(str_of(items[0], "event_type") == "order.confirmed");
    CHECK(int_of(items[0], "attempts") == 1);
    CHECK(int_of(items[0], "last_status") == 200);
    const auto id = std::to_string(int_of(items[0], "id"));
    const auto one = admin_json(a, "/admin/v1/webhooks/deliveries/" + id);
    REQUIRE(array_of(one, "history").size() == 1);
    CHECK(int_of(array_of(one, "history")[0], "status") == 200);
    CHECK(str_of(parse_json(str_of(one, "body")), "order_id") == ids[1]);

    check_error(a.admin().get("/admin/v1/webhooks/deliveries?colour=red"), 400, "bad_request");
    check_error(a.admin().get("/admin/v1/webhooks/deliveries?status=lost"), 400, "bad_request");
    check_error(a.admin().get("/admin/v1/webhooks/deliveries?limit=0"), 400, "bad_request");
    check_error(a.admin().get("/admin/v1/webhooks/deliveries/abc"), 404, "not_found");
    check_error(a.admin().get("/admin/v1/webhooks/deliveries/99999999"), 404, "not_found");

    // "Deliver again": the same event (same id) once more; the shop de-duplicates it.
    const auto before = sink.events().size();
    const auto again = a.admin().send(request{"POST",
                                              "/admin/v1/webhooks/deliveries/" + id + "/redeliver",
                                              "{}",
                                              {{"Content-Type", "application/json"}}});
    REQUIRE_MESSAGE(again.status == 202, describe(again));
    CHECK(poll_until(
        10s, [&] { return sink.events().size() > before; }, 100ms));
    const auto after = sink.events();
    CHECK(after.back().event_id == str_of(items[0], "event_id"));
    CHECK(after.back().attempt == 2);
    check_received(after, want);

    const auto metrics = a.admin().get("/metrics");
    CHECK(metrics.body.find("surge_webhook_attempts_total{outcome=\"delivered\"}") !=
          std::string::npos);
  }

  TEST_CASE("a shop that is down gets every event once it is back, in order per order") {
    // Down in three ways, one after the other: 500s, connections dropped, no answer at all.
    sink_process sink{{"--secret=" + secret, "--mode=fail"}};
    auto [ps, node, a] = paying_store{{}, webhook_flags(sink)};
    add_product(a, "wh-b", 700, 100);
    const auto ids = place_orders(a, "wh-b", 4, "wh-down-");
    refund(a, ids[1], "wh-down-refund");
    CHECK(poll_until(
        15s, [&] { return sink.stats().failed >= 12; }, 100ms));
    sink.set_mode("down");
    CHECK(poll_until(
        15s, [&] { return sink.stats().dropped >= 6; }, 100ms));
    sink.set_mode("timeout", 3s); // beyond webhooks.timeout (1 s)
    CHECK(poll_until(
        15s, [&] { return sink.stats().timed_out >= 2; }, 100ms));
    CHECK(sink.events().empty()); // nothing got through meanwhile
    // More events while it is down.
    const auto more = place_orders(a, "wh-b", 2, "wh-down-more-");
    sink.set_mode("ok");

    const auto got = await_all(sink, node, 8, 60s);
    check_received(got, streamed(node));
    CHECK(std::any_of(got.begin(), got.end(), [](const sink_event& e) { return e.attempt > 2; }));
    CHECK(sink.stats().rejected == 0);
    const auto eps = array_of(admin_json(a, "/admin/v1/webhooks"), "endpoints");
    REQUIRE(eps.size() == 1);
    CHECK(int_of(eps[0], "dead") == 0);
  }

  TEST_CASE("entries a dead consumer left pending are claimed; unreadable ones are dead-lettered") {
    sink_process sink{{"--secret=" + secret}};
    auto [ps, node, a] = paying_store{{}, webhook_flags(sink)};
    // Stop the node (its consumer made the group), then play a consumer that dies holding an
    // entry, and put an entry on the stream that is no event.
    node.stop();
    auto s = persistence::make_redis_event_stream(
        surge::test::redis_test_options(surge::test::test_redis_url(), node.redis_prefix()));
    REQUIRE(s);
    auto& stream = **s;
    REQUIRE_FALSE(stream.create_group("orders", "surge-fulfil"));
    REQUIRE(stream.append("orders",
                          {{"event_id", "900000001"},
                           {"key", "ghost-order"},
                           {"payload", R"({"order_id":"ghost-order","status":"confirmed"})"}}));
    auto held = stream.read_group("orders", "surge-fulfil", "ghost", 10, 0ms);
    REQUIRE(held);
    REQUIRE(held->size() == 1);
    REQUIRE(stream.append("orders",
                          {{"event_id", "900000002"}, {"key", "bad-order"}, {"payload", "nope"}}));
    node.start();

    CHECK(poll_until(
        20s,
        [&] {
          const auto ev = sink.events();
          return std::any_of(ev.begin(), ev.end(),
                             [](const sink_event& e) { return e.event_id == "evt_900000001"; });
        },
        100ms));
    CHECK(poll_until(10s, [&] {
      return !xrange(surge::test::test_redis_url(), node.redis_prefix() + "orders:dead").empty();
    }));
    const auto dead = xrange(surge::test::test_redis_url(), node.redis_prefix() + "orders:dead");
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].fields.at("event_id") == "900000002");
    CHECK(dead[0].fields.at("dead_reason").find("not JSON") != std::string::npos);
    // Nothing stays pending: the ghost's entry was claimed and acknowledged, the bad one
    // acknowledged once dead-lettered.
    CHECK(poll_until(10s, [&] {
      auto p1 = stream.pending("orders", "surge-fulfil", "ghost", 10);
      auto p2 = stream.pending("orders", "surge-fulfil", node.node_id(), 10);
      return p1 && p1->empty() && p2 && p2->empty();
    }));
    const auto metrics = a.admin().get("/metrics");
    CHECK(metrics.body.find("surge_webhook_dead_letters_total 1") != std::string::npos);
  }

  TEST_CASE("bad webhook settings stop the node at start, naming them, never a secret") {
    auto ps = start_paysim();
    for (const auto& [flags, words] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--webhooks.endpoints=shop=ftp://x:1/"}, "'webhooks.endpoints': 'shop=ftp://x:1/'"},
             {{"--webhooks.endpoints=shop=http://127.0.0.1:9/"},
              "'webhooks.secrets': no secret for the endpoint 'shop'"},
             {{"--webhooks.endpoints=shop=http://127.0.0.1:9/",
               "--webhooks.secrets=shop=tiny-secret-zz"},
              "'webhooks.secrets': the secret of 'shop' is shorter than 16 characters"},
             {{"--webhooks.endpoints=shop=https://127.0.0.1:9/",
               "--webhooks.secrets=shop=0123456789abcdef", "--webhooks.ca_file=/nonexistent.pem"},
              "'webhooks.ca_file': "},
         }) {
      auto bad = paying_node(*ps, flags);
      bad.node_id = "bad-webhooks";
      const auto failure = start_failure(bad);
      REQUIRE(failure.has_value());
      const auto said = failure->substr(failure->find("surge-node: setting"));
      CHECK_MESSAGE(said.find("surge-node: setting " + words) == 0, *failure);
      CHECK_MESSAGE(said.find("tiny-secret-zz") == std::string::npos, said);
    }
  }
}

} // namespace surge::itest
