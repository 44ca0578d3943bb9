// Every confirmed order reaches the Redis stream <redis.prefix>orders at least once (fields
// event_id, key = order_id, payload), also when the node is killed right after confirming: the
// outbox row was committed with the order and the relay delivers it after the restart.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "checkout_support.hpp"

namespace surge::itest {

using namespace std::chrono_literals;

namespace {

/// The de-duplicated keys of `entries`; CHECKs each entry's fields and that its payload is the
/// confirmed order it names, and that one order has one event id (duplicates are redeliveries).
std::set<std::string> order_keys(const std::vector<stream_entry>& entries) {
  std::set<std::string> keys;
  std::map<std::string, std::set<std::string>> event_ids;
  for (const auto& e : entries) {
    INFO("stream entry " << e.id);
    REQUIRE(e.fields.count("event_id") == 1);
    REQUIRE(e.fields.count("key") == 1);
    REQUIRE(e.fields.count("payload") == 1);
    const auto& key = e.fields.at("key");
    const auto payload = parse_json(e.fields.at("payload"));
    INFO("payload " << e.fields.at("payload"));
    CHECK(str_of(payload, "order_id") == key);
    CHECK(str_of(payload, "status") == "confirmed");
    keys.insert(key);
    event_ids[key].insert(e.fields.at("event_id"));
  }
  for (const auto& [key, ids] : event_ids) {
    CHECK_MESSAGE(ids.size() == 1, key << " has " << ids.size() << " different event ids");
  }
  return keys;
}

} // namespace

TEST_SUITE("outbox") {

  TEST_CASE("confirmed orders reach <prefix>orders at least once, across kill -9") {
    auto ps = start_paysim();
    // The stream is read with this prefix; declared first, so its keys are deleted last.
    surge::test::redis_test_keys redis;
    node_process node{paying_node(*ps, {"--redis.prefix=" + redis.prefix()})};
    api a{node};
    add_product(a, "ob-1", 100, 100);
    const std::string stream = redis.prefix() + "orders";

    std::set<std::string> confirmed;
    std::vector<std::pair<std::string, std::string>> bodies; // cart, checkout answer
    int n = 0;
    auto order = [&] {
      ++n;
      const auto cart = filled_cart(a, {{"ob-1", 1, 100}});
      const auto before = wall_ms();
      const auto r = checkout(a.store(), cart, "key-ob-" + std::to_string(n), "tok_ok");
      const auto o = check_order(r, 201, cart, "confirmed", {{"ob-1", 1, 100}}, before);
      confirmed.insert(str_of(o, "order_id"));
      bodies.emplace_back(cart, r.body);
    };
    std::set<std::string> seen;
    auto stream_has_all = [&] {
      seen = order_keys(xrange(redis.url(), stream));
      return seen == confirmed;
    };

    for (int i = 0; i < 5; ++i) {
      order();
    }
    REQUIRE(confirmed.size() == 5);
    CHECK_MESSAGE(poll_until(10s, stream_has_all, 50ms),
                  "stream keys " << seen.size() << " of " << confirmed.size());
    CHECK(seen == confirmed);

    // Killed right after a confirmation: its event may not be relayed yet.
    order();
    node.kill9();
    node.start();
    // G2: every acknowledged order survived the kill, and a retry of the last key is answered
    // from it (no new order, no new charge).
    for (const auto& [cart, body] : bodies) {
      const auto id = str_of(parse_json(body), "order_id");
      const auto got = a.store().get("/api/v1/orders/" + id);
      CHECK_MESSAGE(got.status == 200, id << ": " << describe(got));
      CHECK_MESSAGE(same_json(got.body, body), got.body << " vs " << body);
    }
    const auto retry = checkout(a.store(), bodies.back().first, "key-ob-6", "tok_ok");
    CHECK_MESSAGE(retry.status == 201, describe(retry));
    CHECK(same_json(retry.body, bodies.back().second));
    CHECK(count_status(charges_for(*ps, "key-ob-6"), "approved") == 1);

    for (int i = 0; i < 3; ++i) {
      order();
    }
    REQUIRE(confirmed.size() == 9);
    CHECK_MESSAGE(poll_until(15s, stream_has_all, 50ms),
                  "stream keys " << seen.size() << " of " << confirmed.size());
    CHECK(seen == confirmed); // none missing, none that is not a confirmed order
    check_stock(a.stock("ob-1"), 100, 0, 9);
    CHECK(count_status(ps->charges(), "approved") == 9);
  }

} // TEST_SUITE

} // namespace surge::itest
