// membership_model alone: no store, no table, no clock but the times given to it.

#include <chrono>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "membership_times.hpp"
#include "surge/cluster/membership_model.hpp"

using namespace std::chrono_literals;
using namespace surge::cluster;
using namespace surge::persistence;
using state = shard_table::state;
using time_point = membership_model::time_point;

namespace {

membership_options two_shards() {
  return surge::test::membership_options_of("a", 2, {1s, 10s, 2s, 5s});
}

member_record up(const std::string& id, const std::string& address = "h:1") {
  member_record m;
  m.node_id = id;
  m.address = address;
  m.status = "up";
  m.live = true;
  return m;
}

const auto never_connected = [](const std::string&) { return false; };

} // namespace

TEST_CASE("model: the lease deadline is a heartbeat before the store's expiry; a late renewal "
          "lapses it until the map is applied") {
  membership_model m{two_shards()};
  const time_point t0{1h};
  CHECK(m.registered(t0) == t0 + 9s);
  CHECK(m.lease_live(t0 + 8s));
  CHECK_FALSE(m.ready(t0)); // no map yet
  auto renewed = m.heartbeat_answered(true, t0 + 1s, t0 + 1s);
  REQUIRE(renewed.deadline);
  CHECK(*renewed.deadline == t0 + 10s);
  // Paused for 12 s: the answer comes after the deadline.
  auto late = m.heartbeat_answered(true, t0 + 12s, t0 + 12s);
  CHECK(late.lapsed);
  CHECK_FALSE(late.deadline);
  CHECK_FALSE(m.lease_live(t0 + 12s));
  CHECK_FALSE(m.heartbeat_answered(true, t0 + 13s, t0 + 13s).deadline); // still lapsed
  m.apply_map({up("a")}, {}, t0 + 13s, never_connected);
  m.map_applied();
  bool revived = false;
  auto deadline = m.after_map(t0 + 13s, revived);
  REQUIRE(deadline);
  CHECK(*deadline == t0 + 22s); // from the last renewal sent (13 s)
  CHECK(revived);
  CHECK(m.ready(t0 + 13s));
  // Refused: fenced out for good, everything dropped once.
  auto refused = m.heartbeat_answered(false, t0 + 14s, t0 + 14s);
  CHECK(refused.fenced);
  CHECK_FALSE(m.ready(t0 + 14s));
  CHECK(m.drop_if_fenced());
  CHECK_FALSE(m.drop_if_fenced());
}

TEST_CASE("model: the map becomes steps in order: leaving before the graceful release, the "
          "release of a lost shard before it points elsewhere") {
  membership_model m{two_shards()};
  const time_point t0{1h};
  m.registered(t0);
  auto first = m.apply_map({up("a"), up("b", "h:7")},
                           {shard_lease_record{0, "a", 1, ""}, shard_lease_record{1, "a", 1, ""}},
                           t0, never_connected);
  CHECK(first.taken == std::vector<uint32_t>{0, 1});
  REQUIRE(first.steps.size() == 3);
  CHECK(first.steps[2].what == membership_step::kind::connect);
  CHECK(first.steps[2].node == "b");
  CHECK(first.steps[2].port == 7);

  auto second = m.apply_map({up("a"), up("b")},
                            {shard_lease_record{0, "a", 1, "b"}, shard_lease_record{1, "b", 2, ""}},
                            t0 + 100ms, never_connected); // no connect within a second
  REQUIRE(second.steps.size() == 4);
  CHECK(second.steps[0].what == membership_step::kind::set_shard);
  CHECK(second.steps[0].state == state::leaving);
  CHECK(second.steps[1].what == membership_step::kind::release);
  CHECK(second.steps[1].graceful);
  CHECK(second.steps[2].what == membership_step::kind::release);
  CHECK(second.steps[2].why == membership_step::cause::lost);
  CHECK_FALSE(second.steps[2].graceful);
  CHECK(second.steps[3].state == state::remote);
  CHECK(second.steps[3].node == "b");
  CHECK(m.handovers() == std::vector<uint32_t>{0});

  // The handover waits for entities, unless overdue (handoff_timeout 5 s).
  CHECK_FALSE(m.decide_handover(0, 2, t0 + 1s).complete);
  CHECK(m.decide_handover(0, 0, t0 + 1s).complete);
  auto overdue = m.decide_handover(0, 2, t0 + 6s);
  CHECK(overdue.complete);
  CHECK(overdue.overdue);
  auto done = m.handover_done(0, 2);
  REQUIRE(done.size() == 1);
  CHECK(done[0].state == state::remote);
  CHECK(done[0].epoch == 2);
  CHECK(done[0].node == "b");
  CHECK_FALSE(m.handovers_pending());
}

TEST_CASE("model: the next round comes just after another member's lease expires, then soon "
          "while a shard has no owner that is up") {
  membership_model m{two_shards()}; // heartbeat 1 s
  const time_point t0{1h};
  m.registered(t0);
  CHECK(m.next_round(t0) == t0 + 1s); // no map yet: a heartbeat
  auto b = up("b");
  b.lease_left_ms = 5000;
  const std::vector<shard_lease_record> split{{0, "a", 1, ""}, {1, "b", 1, ""}};
  m.apply_map({up("a"), b}, split, t0, never_connected);
  CHECK(m.next_round(t0) == t0 + 1s); // b's lease runs out later than the next heartbeat
  b.lease_left_ms = 400;              // b stopped renewing
  m.apply_map({up("a"), b}, split, t0, never_connected);
  CHECK(m.next_round(t0) == t0 + 405ms);
  CHECK(m.next_round(t0 + 100ms) == t0 + 405ms);
  // Read at 410 ms: b's lease has expired and its shard is an orphan until someone takes it.
  b.live = false;
  b.lease_left_ms = -5;
  const auto t1 = t0 + 410ms;
  m.apply_map({up("a"), b}, split, t1, never_connected);
  CHECK(m.next_round(t1) == t1 + membership_model::failover_poll);
  CHECK(m.next_round(t1 + 1s) == t1 + 1s + membership_model::failover_poll);
  // Nobody took it for failover_poll_for (no live allocator): back to the heartbeat.
  const auto t2 = t1 + membership_model::failover_poll_for;
  CHECK(m.next_round(t2) == t2 + 1s);
  // Taken over: a heartbeat; b's expiry is no reason to hurry any more.
  m.apply_map({up("a"), b}, {{0, "a", 1, ""}, {1, "a", 2, ""}}, t2, never_connected);
  CHECK(m.next_round(t2) == t2 + 1s);
}

TEST_CASE("model: a member whose lease expired less than the patience ago keeps its shards") {
  membership_model m{two_shards()};
  auto b = up("b", "h:7");
  b.live = false;
  b.lease_left_ms = -400; // expired 400 ms ago
  const std::vector<shard_lease_record> leases{shard_lease_record{0, "a", 1, ""},
                                               shard_lease_record{1, "b", 1, ""}};
  auto a = up("a");
  a.age_ms = 60000;
  b.age_ms = 60000;
  CHECK(m.plan({a, b}, leases).assigns.size() == 1); // no patience: b is dead
  CHECK(m.plan({a, b}, leases, 300ms).assigns.size() == 1);
  CHECK(m.plan({a, b}, leases, 500ms).assigns.empty()); // this node's heartbeats took 500 ms
  b.status = "left";
  CHECK(m.plan({a, b}, leases, 500ms).assigns.size() == 1); // gone for good: no patience
}

TEST_CASE("model: a draining member waits longer for a handover's entities") {
  auto opts = two_shards(); // handoff_timeout 5 s
  opts.drain_handoff_timeout = 20s;
  membership_model m{opts};
  const time_point t0{1h};
  m.registered(t0);
  m.apply_map({up("a"), up("b", "h:7")},
              {shard_lease_record{0, "a", 1, ""}, shard_lease_record{1, "a", 1, ""}}, t0,
              never_connected);
  m.map_applied();
  auto a = up("a");
  a.status = "draining";
  m.apply_map({a, up("b", "h:7")},
              {shard_lease_record{0, "a", 1, "b"}, shard_lease_record{1, "a", 1, ""}}, t0,
              never_connected);
  REQUIRE(m.handovers() == std::vector<uint32_t>{0});
  CHECK_FALSE(m.decide_handover(0, 2, t0 + 6s).complete); // a planned stop: no hurry
  auto overdue = m.decide_handover(0, 2, t0 + 21s);
  CHECK(overdue.complete);
  CHECK(overdue.overdue);
}
