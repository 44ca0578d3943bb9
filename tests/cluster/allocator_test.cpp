// The allocator's least-shard allocation as a pure function, and the shard map's placement.

#include <map>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "surge/cluster/allocator.hpp"
#include "surge/cluster/shard_table.hpp"

using namespace surge::cluster;

namespace {

/// The allocator's settings for a case (it has no defaults of its own).
allocator_options limits(std::size_t max_moves = 8, int64_t min_age_ms = 2000) {
  allocator_options o;
  o.max_moves = max_moves;
  o.min_age_ms = min_age_ms;
  return o;
}

member_state up(const std::string& id, int64_t age_ms = 60000) {
  return member_state{id, true, false, age_ms};
}

std::vector<lease_state> leases_of(uint32_t n, const std::string& owner) {
  std::vector<lease_state> out;
  for (uint32_t s = 0; s < n; ++s) {
    out.push_back(lease_state{s, owner, 1, ""});
  }
  return out;
}

/// Applies a plan as the database would (moves complete at once), returns owner -> count.
std::map<std::string, int> apply_plan(std::vector<lease_state>& leases, const allocation_plan& p) {
  for (const auto& a : p.assigns) {
    leases[a.shard].owner = a.to;
    leases[a.shard].epoch = a.epoch + 1;
    leases[a.shard].target.clear();
  }
  for (const auto& m : p.moves) {
    leases[m.shard].owner = m.to;
    leases[m.shard].epoch = m.epoch + 1;
  }
  std::map<std::string, int> count;
  for (const auto& l : leases) {
    ++count[l.owner];
  }
  return count;
}

} // namespace

TEST_CASE("allocator: a first member takes every unassigned shard at once") {
  auto leases = leases_of(16, "");
  auto plan = allocate({up("a")}, leases, limits());
  CHECK(plan.assigns.size() == 16);
  CHECK(plan.moves.empty());
  CHECK(apply_plan(leases, plan)["a"] == 16);
}

TEST_CASE("allocator: orphans of a dead member go to the least loaded live members") {
  std::vector<lease_state> leases;
  for (uint32_t s = 0; s < 12; ++s) {
    leases.push_back(lease_state{s, s < 6 ? "dead" : (s < 9 ? "a" : "b"), 5, ""});
  }
  auto dead = up("dead");
  dead.alive = false;
  auto plan = allocate({dead, up("a"), up("b")}, leases, limits());
  CHECK(plan.assigns.size() == 6);
  for (const auto& a : plan.assigns) {
    CHECK(a.from == "dead");
    CHECK(a.epoch == 5);
  }
  auto count = apply_plan(leases, plan);
  CHECK(count["a"] == 6);
  CHECK(count["b"] == 6);
  CHECK(count.count("dead") == 0);
}

TEST_CASE("allocator: an overdue member keeps its shards and a move towards it, and takes none") {
  std::vector<lease_state> leases;
  for (uint32_t s = 0; s < 12; ++s) {
    leases.push_back(lease_state{s, s < 6 ? "late" : (s < 9 ? "a" : "b"), 5, ""});
  }
  leases[9].target = "late"; // a move from b to late, planned before late's lease expired
  auto late = up("late");
  late.alive = false;
  late.overdue = true;
  auto plan = allocate({late, up("a"), up("b")}, leases, limits());
  CHECK(plan.assigns.empty());
  CHECK(plan.cancels.empty());
  for (const auto& m : plan.moves) {
    CHECK(m.from != "late");
    CHECK(m.to != "late");
  }
  // Every member overdue (the database answered late for everyone): nothing changes at all.
  auto a = up("a");
  a.alive = false;
  a.overdue = true;
  auto b = up("b");
  b.alive = false;
  b.overdue = true;
  auto none = allocate({late, a, b}, leases, limits());
  CHECK(none.assigns.empty());
  CHECK(none.moves.empty());
  CHECK(none.cancels.empty());
  // Once the patience ran out, it is dead like any other.
  late.overdue = false;
  auto taken = allocate({late, up("a"), up("b")}, leases, limits());
  CHECK(taken.assigns.size() == 6);
  CHECK(taken.cancels.size() == 1);
}

TEST_CASE("allocator: a joining member gets shards gradually, at most max_moves per round") {
  auto leases = leases_of(64, "a");
  auto opts = limits(4);
  std::vector<member_state> members{up("a"), up("b")};
  int rounds = 0;
  std::map<std::string, int> count;
  for (; rounds < 100; ++rounds) {
    auto plan = allocate(members, leases, opts);
    CHECK(plan.moves.size() <= 4);
    CHECK(plan.assigns.empty());
    if (plan.moves.empty()) {
      break;
    }
    count = apply_plan(leases, plan);
  }
  CHECK(rounds == 8); // 32 shards, 4 per round
  CHECK(count["a"] == 32);
  CHECK(count["b"] == 32);
}

TEST_CASE("allocator: moves under way count against the budget") {
  auto leases = leases_of(64, "a");
  for (uint32_t s = 0; s < 3; ++s) {
    leases[s].target = "b";
  }
  auto opts = limits(4);
  auto plan = allocate({up("a"), up("b")}, leases, opts);
  CHECK(plan.moves.size() == 1);
}

TEST_CASE("allocator: a member younger than min_age takes no rebalanced shard") {
  auto leases = leases_of(32, "a");
  auto opts = limits(8, 5000);
  auto plan = allocate({up("a"), up("young", 100)}, leases, opts);
  CHECK(plan.moves.empty());
  plan = allocate({up("a"), up("young", 6000)}, leases, opts);
  CHECK_FALSE(plan.moves.empty());
}

TEST_CASE("allocator: a draining member gives every shard away and takes none") {
  auto leases = leases_of(10, "d");
  auto d = up("d");
  d.draining = true;
  auto opts = limits(100);
  auto plan = allocate({d, up("a"), up("b")}, leases, opts);
  CHECK(plan.moves.size() == 10);
  auto count = apply_plan(leases, plan);
  CHECK(count.count("d") == 0);
  CHECK(count["a"] == 5);
  CHECK(count["b"] == 5);
}

TEST_CASE("allocator: a move towards a member that died or drains is cancelled") {
  auto leases = leases_of(4, "a");
  leases[0].target = "gone";
  leases[1].target = "d";
  auto d = up("d");
  d.draining = true;
  auto gone = up("gone");
  gone.alive = false;
  auto plan = allocate({up("a"), d, gone}, leases, limits());
  std::set<uint32_t> cancelled;
  for (const auto& c : plan.cancels) {
    cancelled.insert(c.shard);
  }
  CHECK(cancelled == std::set<uint32_t>{0, 1});
}

TEST_CASE("allocator: a balanced cluster plans nothing; no live member plans nothing") {
  std::vector<lease_state> leases;
  for (uint32_t s = 0; s < 9; ++s) {
    leases.push_back(lease_state{s, std::string(1, static_cast<char>('a' + s % 3)), 1, ""});
  }
  CHECK(allocate({up("a"), up("b"), up("c")}, leases, limits()).empty());
  auto a = up("a");
  a.alive = false;
  CHECK(allocate({a}, leases, limits()).empty());
}

TEST_CASE("shard_of: stable, in range, spread") {
  CHECK(shard_of("sku:ABC-1", 256) == shard_of("sku:ABC-1", 256));
  std::map<uint32_t, int> hist;
  for (int i = 0; i < 25600; ++i) {
    auto s = shard_of("cart:c_" + std::to_string(i), 256);
    REQUIRE(s < 256);
    ++hist[s];
  }
  CHECK(hist.size() == 256);
  for (const auto& [s, n] : hist) {
    CHECK(n > 40); // 100 expected per shard
  }
}

TEST_CASE("shard_table: local only while the lease is live and at the epoch") {
  shard_table t{"me", 8};
  t.set(3, shard_table::state::local, 7);
  CHECK(t.resolve(3).at == surge::actors::placement::where::none); // no lease yet
  t.set_lease_deadline(std::chrono::steady_clock::now() + std::chrono::seconds{10});
  CHECK(t.resolve(3).at == surge::actors::placement::where::local);
  CHECK(t.resolve(3).epoch == 7);
  CHECK(t.serving(3, 7));
  CHECK_FALSE(t.serving(3, 6));
  t.set(3, shard_table::state::leaving, 7);
  CHECK(t.serving(3, 7)); // still ours until the handover commits
  CHECK(t.resolve(3).at == surge::actors::placement::where::none);
  t.set(4, shard_table::state::remote, 2, "other");
  CHECK(t.resolve(4).at == surge::actors::placement::where::none); // not connected yet
  CHECK(t.get(4).owner == "other");
  t.set_lease_deadline(std::chrono::steady_clock::now() - std::chrono::seconds{1});
  CHECK_FALSE(t.serving(3, 7));
}
