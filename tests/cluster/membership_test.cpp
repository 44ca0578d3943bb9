// Membership (DESIGN.md "Cluster", G4 and G5) as one node's rounds, several nodes sharing one
// store, time moved by hand: fencing, lease lapse, handover, rebalancing, failover, drain,
// restarts and min_age. No processes, no sleeps. Every case runs on the in-memory store
// (cluster_unit) and on PostgreSQL (cluster_membership_pg).

#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "membership_backends.hpp"
#include "membership_times.hpp"
#include "surge/cluster/membership.hpp"
#include "surge/cluster/membership_driver.hpp"
#include "surge/cluster/protocol.hpp"
#include "surge/cluster/shard_table.hpp"

using namespace std::chrono_literals;
using surge::cluster::membership_driver;
using surge::cluster::membership_options;
using surge::cluster::shard_table;
using surge::persistence::lease_change;
using surge::persistence::shard_lease_record;
using state = shard_table::state;

#define MEMBERSHIP_BACKENDS                                                                        \
  surge::test::memory_membership_backend, surge::test::pg_membership_backend

namespace {

constexpr uint32_t shards = 8;

/// Times far from each other, so that the real time a case takes on PostgreSQL (well under a
/// second) never moves an expiry past a check.
membership_options options_of(const std::string& id) {
  auto o = surge::test::membership_options_of(id, shards, {2s, 20s, 10s, 30s});
  o.address = "127.0.0.1:" + std::to_string(7000 + id[0]);
  o.http_address = "127.0.0.1:8080";
  o.admin_address = "127.0.0.1:9090";
  o.version = "0.0.0-test";
  o.protocol = surge::cluster::protocol_version;
  return o;
}

/// One member: its shard table, what the node answers (entities per shard) and what membership
/// asked of it.
struct member {
  template <class B>
  member(B& backend, membership_options opts)
      : table(opts.node_id, opts.shards)
      , driver(opts, table, hooks(), backend.factory(), backend.clock()) {}

  surge::cluster::membership_hooks hooks() {
    surge::cluster::membership_hooks h;
    h.release = [this](uint32_t s, bool graceful) { released.emplace_back(s, graceful); };
    h.local_count = [this](uint32_t s) { return entities[s]; };
    h.wake_sku = [this](const std::string& sku) { woken.push_back(sku); };
    h.actors = [] { return uint64_t{3}; };
    h.connect = [this](const std::string& node, const std::string&, uint16_t) {
      connects.push_back(node);
    };
    return h;
  }

  void start() { REQUIRE(driver.start() == ""); }
  void round() { driver.round(); }
  void beat() { driver.beat(3); }

  /// Shards this node serves (local) or is handing over (leaving).
  std::set<uint32_t> owned(state st = state::local) const {
    std::set<uint32_t> out;
    for (uint32_t s = 0; s < table.shards(); ++s) {
      if (table.get(s).st == st) {
        out.insert(s);
      }
    }
    return out;
  }

  shard_table table;
  std::map<uint32_t, std::size_t> entities;
  std::vector<std::pair<uint32_t, bool>> released;
  std::vector<std::string> woken;
  std::vector<std::string> connects;
  membership_driver driver;
};

template <class B>
std::vector<shard_lease_record> leases_of(B& backend) {
  auto l = backend.inspect().leases();
  REQUIRE_MESSAGE(l, caf::to_string(l.error()));
  return *l;
}

template <class B>
std::map<std::string, int> owner_counts(B& backend) {
  std::map<std::string, int> out;
  for (const auto& l : leases_of(backend)) {
    ++out[l.owner];
  }
  return out;
}

template <class B>
std::size_t moves_under_way(B& backend) {
  std::size_t n = 0;
  for (const auto& l : leases_of(backend)) {
    n += l.target.empty() ? 0 : 1;
  }
  return n;
}

template <class B>
std::string status_of(B& backend, const std::string& node) {
  auto ms = backend.inspect().members();
  REQUIRE(ms);
  for (const auto& m : *ms) {
    if (m.node_id == node) {
      return m.status + (m.live ? "" : " (expired)");
    }
  }
  return "none";
}

/// Time passes by `d`; the members in `alive` renew their leases.
template <class B>
void pass(B& backend, std::chrono::milliseconds d, std::initializer_list<member*> alive) {
  backend.advance(d);
  for (auto* m : alive) {
    m->beat();
  }
}

membership_options with_max_moves(membership_options o, std::size_t max_moves) {
  o.max_moves = max_moves;
  return o;
}

/// A backend with members a and b (with `max_moves`): a started first and took every shard;
/// now both are older than min_age, and nothing was rebalanced yet.
template <class B>
struct mature_pair {
  explicit mature_pair(std::size_t max_moves)
      : a{backend, with_max_moves(options_of("a"), max_moves)}
      , b{backend, with_max_moves(options_of("b"), max_moves)} {
    a.start();
    a.round();
    b.start();
    b.round();
    pass(backend, 11s, {&a, &b});
  }
  /// Rounds of both members until the shards are split evenly (four each suffice).
  void rebalance() {
    for (int i = 0; i < 4; ++i) {
      a.round();
      b.round();
    }
  }
  B backend;
  member a;
  member b;
};

} // namespace

TEST_CASE_TEMPLATE("membership: the first member takes every shard; the shard count is fixed", B,
                   MEMBERSHIP_BACKENDS) {
  B backend;
  member a{backend, options_of("a")};
  CHECK_FALSE(a.driver.ready());
  a.start();
  a.round();
  CHECK(a.driver.ready());
  CHECK(a.owned().size() == shards);
  for (const auto& l : leases_of(backend)) {
    CHECK(l.owner == "a");
    CHECK(l.epoch == 1);
    CHECK(a.table.get(l.shard).epoch == 1);
  }
  auto h = backend.inspect().history(3);
  REQUIRE(h);
  REQUIRE(h->size() == 1);
  CHECK((*h)[0].reason == "unassigned");
  CHECK((*h)[0].owner == "a");
  // The members row: addresses, actors of the last heartbeat.
  a.beat();
  auto nodes_now = backend.inspect().members();
  REQUIRE(nodes_now);
  REQUIRE(nodes_now->size() == 1);
  CHECK((*nodes_now)[0].address == "127.0.0.1:7097");
  CHECK((*nodes_now)[0].actors == 3);
  CHECK((*nodes_now)[0].status == "up");

  auto other = options_of("b");
  other.shards = shards / 2;
  member b{backend, other};
  CHECK(b.driver.start() ==
        "setting 'cluster.shards' is 4 but the database has 8 shards (fixed for the life of a "
        "database)");
  CHECK(status_of(backend, "b") == "none"); // nothing was written
}

TEST_CASE_TEMPLATE("membership: the allocator's lock admits one round at a time, and a change "
                   "planned against a stale lease is not applied",
                   B, MEMBERSHIP_BACKENDS) {
  B backend;
  member a{backend, options_of("a")};
  a.start(); // shard rows exist, all unassigned
  auto one = backend.factory()();
  auto two = backend.factory()();
  REQUIRE(one);
  REQUIRE(two);
  bool planned = false;
  auto done = (*one)->allocation_round([&](const auto& members, const auto& leases) {
    planned = true;
    CHECK(members.size() == 1);
    CHECK(leases.size() == shards);
    // Another member's round meanwhile does not get the lock: it reads and changes nothing.
    bool second_planned = false;
    auto other = (*two)->allocation_round([&](const auto&, const auto&) {
      second_planned = true;
      return std::vector<lease_change>{};
    });
    REQUIRE(other);
    CHECK_FALSE(other->has_value());
    CHECK_FALSE(second_planned);
    // Guards: shard 1 is not at epoch 7, shard 2 has no owner to move it, shard 3 is not x's.
    return std::vector<lease_change>{
        {lease_change::kind::assign, 0, 0, "", "a"},
        {lease_change::kind::assign, 1, 7, "", "a"},
        {lease_change::kind::move, 2, 0, "", "a"},
        {lease_change::kind::assign, 3, 0, "x", "a"},
    };
  });
  REQUIRE_MESSAGE(done, caf::to_string(done.error()));
  CHECK(planned);
  REQUIRE(done->has_value());
  CHECK((*done)->assigned == 1);
  CHECK((*done)->moved == 0);
  auto leases = leases_of(backend);
  CHECK(leases[0].owner == "a");
  CHECK(leases[0].epoch == 1);
  CHECK(leases[1].owner == "");
  CHECK(leases[2].target == "");
  CHECK(leases[3].owner == "");
  // The lock ended with the round.
  auto again = (*two)->allocation_round([](const auto&, const auto&) {
    return std::vector<lease_change>{{lease_change::kind::assign, 1, 0, "", "a"},
                                     {lease_change::kind::move, 0, 1, "a", "b"},
                                     {lease_change::kind::move, 1, 1, "a", "b"}};
  });
  REQUIRE(again);
  REQUIRE(again->has_value());
  CHECK((*again)->assigned == 1);
  CHECK((*again)->moved == 2); // shard 1 was assigned first in the same round: epoch 1 now
  CHECK(leases_of(backend)[0].target == "b");
  // A change made by another member while a round plans fails the round's guard.
  auto stale = (*one)->allocation_round([&](const auto&, const auto& leases_read) {
    CHECK(leases_read[0].target == "b");
    auto h = (*two)->complete_handover("a", 0, 1, "b"); // a hands shard 0 over: epoch 2
    REQUIRE(h);
    CHECK(*h == std::optional<uint64_t>{2});
    return std::vector<lease_change>{{lease_change::kind::cancel, 0, 1, {}, {}}};
  });
  REQUIRE(stale);
  CHECK((*stale)->cancelled == 0);
  CHECK(leases_of(backend)[0].owner == "b");
  CHECK(leases_of(backend)[0].epoch == 2);
  CHECK(leases_of(backend)[1].target == "b"); // untouched
  // A completion whose guard fails changes nothing.
  auto twice = (*two)->complete_handover("a", 0, 1, "b");
  REQUIRE(twice);
  CHECK_FALSE(twice->has_value());
}

TEST_CASE_TEMPLATE("membership: a restart of a node id fences the old incarnation", B,
                   MEMBERSHIP_BACKENDS) {
  B backend;
  member old_a{backend, options_of("a")};
  old_a.start();
  old_a.round();
  REQUIRE(old_a.owned().size() == shards);
  CHECK(backend.fence_passes("a", 5, 1));

  // The same node id starts again (the old process is paused, not dead).
  member new_a{backend, options_of("a")};
  new_a.start();
  CHECK_FALSE(backend.fence_passes("a", 5, 1)); // the old incarnation's commits fail (G4)
  CHECK(backend.fence_passes("a", 5, 2));
  for (const auto& l : leases_of(backend)) {
    CHECK(l.owner == "a");
    CHECK(l.epoch == 2);
  }
  auto h = backend.inspect().history(5);
  REQUIRE(h);
  REQUIRE(h->size() == 2);
  CHECK(h->back().reason == "restart");
  CHECK(h->back().epoch == 2);
  new_a.round();
  CHECK(new_a.owned().size() == shards);
  CHECK(new_a.table.get(5).epoch == 2);

  // The old one wakes up: its heartbeat is refused, it stops serving and drops every shard.
  CHECK(old_a.driver.beat(1)); // asks for a round now
  CHECK_FALSE(old_a.driver.ready());
  CHECK(old_a.table.lease_deadline() == std::chrono::steady_clock::time_point{});
  old_a.round();
  CHECK(old_a.owned().empty());
  CHECK(old_a.owned(state::leaving).empty());
  CHECK(old_a.released.size() == shards);
  for (const auto& [s, graceful] : old_a.released) {
    CHECK_FALSE(graceful);
  }
  CHECK_FALSE(old_a.driver.beat(1)); // it does not renew any more
  old_a.round();
  CHECK(old_a.owned().empty());
  // Its stop does not mark the new incarnation left.
  old_a.driver.stop();
  CHECK(status_of(backend, "a") == "up");
  CHECK(new_a.driver.ready());
}

TEST_CASE_TEMPLATE("membership: a node stops serving before its lease expires; a lapsed lease "
                   "serves again only after the map is applied",
                   B, MEMBERSHIP_BACKENDS) {
  B backend;
  member a{backend, options_of("a")};
  member b{backend, options_of("b")};
  a.start();
  a.round();
  b.start();
  b.round();
  REQUIRE(a.owned().size() == shards);
  REQUIRE(b.owned().empty());
  CHECK(b.table.get(0).st == state::remote);
  CHECK(b.table.get(0).owner == "a");

  // a is paused: no heartbeat after its registration. 18 s later (a heartbeat before the
  // lease ends) it serves nothing, while its lease still holds in the store: nobody else took
  // its shards yet.
  pass(backend, 9s, {&b});
  b.round();
  CHECK(a.driver.ready());
  pass(backend, 9s, {&b});
  b.round();
  CHECK_FALSE(a.driver.ready());
  CHECK(a.table.lease_deadline() <= backend.clock()());
  CHECK(status_of(backend, "a") == "up");
  CHECK(owner_counts(backend)["a"] == static_cast<int>(shards));

  // 4 s later its lease has expired: b takes every shard (failover, epoch + 1).
  pass(backend, 4s, {&b});
  b.round();
  CHECK(status_of(backend, "a") == "up (expired)");
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards));
  CHECK(b.owned().size() == shards);
  CHECK(b.table.get(0).epoch == 2);
  auto h = backend.inspect().history(0);
  REQUIRE(h);
  CHECK(h->back().reason == "failover from a");
  bool down_seen = false;
  for (const auto& n : b.driver.nodes()) {
    down_seen |= n.node_id == "a" && n.status == "down";
  }
  CHECK(down_seen);

  // a resumes: its heartbeat is accepted (same incarnation) but comes too late; the lease
  // stays lapsed until the map is applied and the lost shards are dropped.
  CHECK(a.driver.beat(3));
  CHECK_FALSE(a.driver.ready());
  a.round();
  CHECK(a.driver.ready());
  CHECK(a.owned().empty());
  CHECK(a.released.size() == shards);
  CHECK(a.table.get(0).st == state::remote);
  CHECK(a.table.get(0).owner == "b");
  CHECK(a.table.get(0).epoch == 2);
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards)); // a allocated nothing
}

TEST_CASE_TEMPLATE("membership: a store out of reach renews nothing; the node stops serving "
                   "and serves again after the map",
                   B, MEMBERSHIP_BACKENDS) {
  B backend;
  member a{backend, options_of("a")};
  a.start();
  a.round();
  REQUIRE(a.driver.ready());
  backend.set_down(true);
  pass(backend, 10s, {&a});
  a.round();
  CHECK(a.driver.ready()); // the deadline of the last renewal still holds
  pass(backend, 10s, {&a});
  a.round();
  CHECK_FALSE(a.driver.ready());
  CHECK(a.owned().size() == shards); // nobody took them: still ours, but not served
  backend.set_down(false);
  CHECK(a.driver.beat(3)); // lapsed: a round now
  CHECK_FALSE(a.driver.ready());
  a.round();
  CHECK(a.driver.ready());
  CHECK(a.owned().size() == shards);
  CHECK(a.released.empty());
  CHECK(a.table.get(0).epoch == 1);
}

TEST_CASE_TEMPLATE("membership: a new member receives rebalanced shards only after min_age", B,
                   MEMBERSHIP_BACKENDS) {
  B backend;
  member a{backend, options_of("a")};
  a.start();
  a.round();
  pass(backend, 11s, {&a}); // a is older than min_age (10 s)
  member b{backend, options_of("b")};
  b.start();
  b.round();
  a.round();
  a.round();
  CHECK(moves_under_way(backend) == 0);               // b is too young to receive any
  CHECK(a.connects == std::vector<std::string>{"b"}); // the smaller id connects, once a second
  CHECK(b.connects.empty());
  pass(backend, 6s, {&a, &b});
  a.round();
  b.round();
  CHECK(moves_under_way(backend) == 0);
  CHECK(a.connects.size() == 2); // not connected yet (no gateway here): again
  pass(backend, 5s, {&a, &b});   // b is 11 s old
  b.round();
  CHECK(moves_under_way(backend) == shards / 2);
  a.round(); // no entities: handed over at once
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards / 2));
}

TEST_CASE_TEMPLATE("membership: the shards of a dead member go at once to the least loaded, "
                   "young members too, and their holds wake up",
                   B, MEMBERSHIP_BACKENDS) {
  mature_pair<B> pair{16};
  auto& [backend, a, b] = pair;
  b.round();
  a.round(); // 4 + 4
  b.round();
  REQUIRE(owner_counts(backend)["a"] == static_cast<int>(shards / 2));
  REQUIRE(b.owned().size() == shards / 2);
  const auto a_shards = a.owned();
  // Holds in one of a's shards and in one of b's.
  std::string held_at_a;
  std::string held_at_b;
  for (int i = 0; held_at_a.empty() || held_at_b.empty(); ++i) {
    auto sku = "SKU-" + std::to_string(i);
    (a_shards.count(surge::cluster::shard_of("sku", sku, shards)) != 0 ? held_at_a : held_at_b) =
        sku;
  }
  backend.set_holding({held_at_a, held_at_b});

  // a stops renewing (last renewal at 11 s: its lease ends at 31 s); c joins at 26 s.
  pass(backend, 15s, {&b});
  member c{backend, options_of("c")};
  c.start();
  pass(backend, 7s, {&b, &c}); // 33 s: a is dead, c is 7 s old
  b.round();
  auto counts = owner_counts(backend);
  CHECK(counts["a"] == 0);
  CHECK(counts["c"] == static_cast<int>(shards / 2)); // the least loaded, young or not
  CHECK(counts["b"] == static_cast<int>(shards / 2));
  for (auto s : a_shards) {
    auto h = backend.inspect().history(s);
    REQUIRE(h);
    CHECK(h->back().reason == "failover from a");
    CHECK(h->back().epoch == leases_of(backend)[s].epoch);
  }
  bool down_seen = false;
  for (const auto& n : b.driver.nodes()) {
    down_seen |= n.node_id == "a" && n.status == "down";
  }
  CHECK(down_seen);
  c.round();
  CHECK(c.owned() == a_shards);
  CHECK(c.woken == std::vector<std::string>{held_at_a}); // G6: its holds expire on c
  CHECK(b.woken.empty());
  CHECK(moves_under_way(backend) == 0);
}

TEST_CASE("membership: while the store answers this node slowly, a member whose lease expired "
          "less than that long ago keeps its shards; past it, they go") {
  mature_pair<surge::test::memory_membership_backend> pair{16};
  auto& [backend, a, b] = pair;
  pair.rebalance();
  REQUIRE(owner_counts(backend)["b"] == static_cast<int>(shards / 2));
  // 11 s: b's last renewal (its lease ends at 31 s). a's next heartbeat takes 8 s: the database
  // (or the machine) is slow, and b's renewals may just be stuck behind a's.
  backend.slow_heartbeats(8s);
  a.beat(); // 19 s
  backend.slow_heartbeats(0ms);
  pass(backend, 14s, {&a}); // 33 s: b expired 2 s ago, less than a's 8 s heartbeat
  a.round();
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards / 2));
  CHECK(a.owned().size() == shards / 2);
  pass(backend, 7s, {&a}); // 40 s: expired 9 s ago
  a.round();
  CHECK(owner_counts(backend)["b"] == 0);
  a.round();
  CHECK(a.owned().size() == shards);
}

TEST_CASE_TEMPLATE("membership: a peer whose connection closed and whose store session is gone "
                   "(its process died) loses its lease at once; a live one keeps it",
                   B, MEMBERSHIP_BACKENDS) {
  B backend;
  member a{backend, options_of("a")};
  auto b = std::make_unique<member>(backend, options_of("b"));
  a.start();
  a.round();
  b->start();
  b->round();
  pass(backend, 11s, {&a, b.get()});
  for (int i = 0; i < 4; ++i) {
    a.round();
    b->round();
  }
  REQUIRE(owner_counts(backend)["b"] == static_cast<int>(shards / 2));
  b->beat(); // its heartbeat session is recorded
  const auto b_shards = b->owned();

  // Suspected while alive (a partition closed the connection, say): nothing happens.
  a.table.suspect("b");
  for (int i = 0; i < 3; ++i) {
    a.round();
  }
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards / 2));
  CHECK(status_of(backend, "b") == "up");

  // b's process dies: its connections close, nobody marks it left, its lease has 20 s to run
  // by the (manual) clock. a's gateway sees the connection to b close.
  b.reset();
  a.table.suspect("b");
  // PostgreSQL drops the sessions of a closed connection within milliseconds: a few rounds.
  for (int i = 0; i < 250 && owner_counts(backend)["b"] > 0; ++i) {
    a.round();
    std::this_thread::sleep_for(20ms);
  }
  CHECK(owner_counts(backend)["b"] == 0);
  CHECK(status_of(backend, "b") == "up (expired)");
  CHECK(a.owned().size() == shards);
  for (auto s : b_shards) {
    auto h = backend.inspect().history(s);
    REQUIRE(h);
    CHECK(h->back().reason == "failover from b");
  }
}

TEST_CASE_TEMPLATE("membership: a member most others cannot reach is cut off: it stops serving, "
                   "its lease ends within the grace, and it serves again once they reach it",
                   B, MEMBERSHIP_BACKENDS) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto a_gateway = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
  B backend;
  member a{backend, options_of("a")};
  member b{backend, options_of("b")};
  member c{backend, options_of("c")};
  a.start();
  a.round();
  b.start();
  c.start();
  pass(backend, 11s, {&a, &b, &c});
  for (int i = 0; i < 6; ++i) {
    a.round();
    b.round();
    c.round();
  }
  const auto a_shards = a.owned();
  REQUIRE_FALSE(a_shards.empty());

  // b alone cannot reach a (one link down): one of three is no majority.
  b.table.suspect("a");
  b.round();
  a.beat();
  CHECK(a.driver.ready());
  CHECK(status_of(backend, "a") == "up");

  // c cannot either (a is cut off from its peers): a stops serving at once, and its lease ends
  // within the grace (1 s here), long before the 20 s lease.
  c.table.suspect("a");
  c.round();
  a.beat();
  CHECK_FALSE(a.driver.ready());
  pass(backend, 1500ms, {&b, &c});
  CHECK(status_of(backend, "a") == "up (expired)");
  b.round();
  c.round();
  CHECK(owner_counts(backend)["a"] == 0);
  for (auto s : a_shards) {
    auto h = backend.inspect().history(s);
    REQUIRE(h);
    CHECK(h->back().reason == "failover from a");
  }

  // The links are back: both withdraw, a's next heartbeat renews, and once a has read the map
  // (its shards are gone) it serves again.
  b.table.set_peer("a", a_gateway);
  c.table.set_peer("a", a_gateway);
  b.round();
  c.round();
  a.beat();
  CHECK(status_of(backend, "a") == "up");
  a.round();
  CHECK(a.driver.ready());
  CHECK(a.owned().empty());
  caf::anon_send_exit(a_gateway, caf::exit_reason::user_shutdown);
}

TEST_CASE_TEMPLATE("membership: a handover drains the shard's entities, then owner := target "
                   "at epoch + 1",
                   B, MEMBERSHIP_BACKENDS) {
  mature_pair<B> pair{1};
  auto& [backend, a, b] = pair;
  // Every shard of a has entities: the planned move waits for them.
  for (uint32_t s = 0; s < shards; ++s) {
    a.entities[s] = 2;
  }
  a.round(); // plans one move (max_moves 1) and starts handing it over
  REQUIRE(moves_under_way(backend) == 1);
  REQUIRE(a.owned(state::leaving).size() == 1);
  const auto moving = *a.owned(state::leaving).begin();
  CHECK(a.released == std::vector<std::pair<uint32_t, bool>>{{moving, true}});
  std::string held_here;
  std::string held_elsewhere;
  for (int i = 0; held_here.empty() || held_elsewhere.empty(); ++i) {
    auto sku = "SKU-" + std::to_string(i);
    (surge::cluster::shard_of("sku", sku, shards) == moving ? held_here : held_elsewhere) = sku;
  }
  backend.set_holding({held_here, held_elsewhere});
  CHECK(a.driver.handovers_pending());
  CHECK(leases_of(backend)[moving].target == "b");
  b.round();
  CHECK(b.table.get(moving).st == state::remote); // not b's before the handover completes
  a.round();
  CHECK(a.table.get(moving).st == state::leaving); // entities still there
  CHECK(moves_under_way(backend) == 1);            // and no second move (max_moves)

  a.entities[moving] = 0; // they finished and passivated
  a.round();
  CHECK_FALSE(a.driver.handovers_pending());
  CHECK(a.table.get(moving).st == state::remote);
  CHECK(a.table.get(moving).owner == "b");
  CHECK(a.table.get(moving).epoch == 2);
  auto l = leases_of(backend)[moving];
  CHECK(l.owner == "b");
  CHECK(l.epoch == 2);
  auto h = backend.inspect().history(moving);
  REQUIRE(h);
  CHECK(h->back().reason == "handover from a");
  CHECK(backend.fence_passes("b", moving, 2));
  CHECK_FALSE(backend.fence_passes("a", moving, 1));
  b.round();
  CHECK(b.table.get(moving).st == state::local);
  CHECK(b.table.get(moving).epoch == 2);
  CHECK(b.woken == std::vector<std::string>{held_here}); // the holds of the shard it took

  // The next move (planned by b's round): its entities never leave; after handoff_timeout
  // (30 s) they are stopped and the handover completes anyway.
  a.round();
  REQUIRE(a.owned(state::leaving).size() == 1);
  const auto stuck = *a.owned(state::leaving).begin();
  pass(backend, 20s, {&a, &b});
  a.round();
  CHECK(a.table.get(stuck).st == state::leaving);
  pass(backend, 11s, {&a, &b});
  a.released.clear();
  a.round();
  CHECK(a.released.front() == std::pair<uint32_t, bool>{stuck, false});
  CHECK(a.table.get(stuck).st == state::remote);
  CHECK(leases_of(backend)[stuck].owner == "b");
}

TEST_CASE_TEMPLATE("membership: rebalancing moves at most max_moves shards at a time", B,
                   MEMBERSHIP_BACKENDS) {
  mature_pair<B> pair{3};
  auto& [backend, a, b] = pair;
  std::size_t rounds = 0;
  while (owner_counts(backend)["b"] < static_cast<int>(shards / 2) && rounds < 20) {
    ++rounds;
    b.round(); // the allocator plans; nothing moves yet
    CHECK(moves_under_way(backend) <= 3);
    const auto before = owner_counts(backend)["b"];
    a.round(); // the owner hands over (no entities: at once)
    CHECK(owner_counts(backend)["b"] - before <= 3);
    CHECK(moves_under_way(backend) <= 3);
  }
  CHECK(rounds == 2); // 4 shards, 3 at a time
  auto counts = owner_counts(backend);
  CHECK(counts["a"] == 4);
  CHECK(counts["b"] == 4);
  b.round();
  a.round();
  CHECK(moves_under_way(backend) == 0); // balanced: nothing more
  CHECK(a.owned().size() == 4);
  CHECK(b.owned().size() == 4);
}

TEST_CASE_TEMPLATE("membership: a drained member hands every shard over, then leaves", B,
                   MEMBERSHIP_BACKENDS) {
  mature_pair<B> pair{16};
  auto& [backend, a, b] = pair;
  pair.rebalance(); // to 4 + 4
  REQUIRE(owner_counts(backend)["b"] == 4);

  std::optional<bool> unknown;
  std::optional<bool> found;
  b.driver.request_drain("nobody", [&](bool f) { unknown = f; });
  b.driver.request_drain("a", [&](bool f) { found = f; });
  b.round();
  CHECK(unknown == std::optional<bool>{false});
  CHECK(found == std::optional<bool>{true});
  CHECK(status_of(backend, "a") == "draining");
  for (int i = 0; i < 3 && !a.owned().empty(); ++i) {
    a.round();
    b.round();
  }
  CHECK(a.owned().empty());
  CHECK(a.owned(state::leaving).empty());
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards));
  CHECK(b.owned().size() == shards);
  CHECK(a.driver.ready()); // still a member, serving nothing

  a.driver.stop();
  CHECK(status_of(backend, "a") == "left (expired)");
  CHECK_FALSE(a.driver.ready());
  b.round();
  bool left = false;
  for (const auto& n : b.driver.nodes()) {
    left |= n.node_id == "a" && n.status == "left";
  }
  CHECK(left);
  std::optional<bool> again;
  b.driver.request_drain("a", [&](bool f) { again = f; }); // it left: nothing to drain
  b.round();
  CHECK(again == std::optional<bool>{false});
}

TEST_CASE_TEMPLATE("membership: undrain gives a drained member shards again; the last serving "
                   "member is not drained",
                   B, MEMBERSHIP_BACKENDS) {
  using surge::persistence::drain_outcome;
  mature_pair<B> pair{16};
  auto& [backend, a, b] = pair;
  pair.rebalance(); // to 4 + 4
  REQUIRE(owner_counts(backend)["a"] == 4);
  for (const auto& n : b.driver.nodes()) {
    CHECK(n.version == "0.0.0-test"); // stored with the member
    CHECK(n.protocol == surge::cluster::protocol_version);
  }

  // Two drains in one round: the first leaves b serving; the second would leave nobody.
  std::vector<caf::expected<drain_outcome>> answers;
  auto keep = [&](caf::expected<drain_outcome> x) { answers.push_back(std::move(x)); };
  b.driver.ask_drain("a", keep);
  b.driver.ask_drain("b", keep);
  b.driver.ask_drain("nobody", keep);
  b.round();
  REQUIRE(answers.size() == 3);
  CHECK(answers[0] == drain_outcome::draining);
  CHECK(answers[1] == drain_outcome::last_serving);
  CHECK(answers[2] == drain_outcome::not_found);
  CHECK(status_of(backend, "a") == "draining");
  CHECK(status_of(backend, "b") == "up");
  for (int i = 0; i < 3 && !a.owned().empty(); ++i) {
    a.round();
    b.round();
  }
  REQUIRE(a.owned().empty());
  CHECK(owner_counts(backend)["b"] == static_cast<int>(shards));

  // Again: b is still the only member up.
  answers.clear();
  a.driver.ask_drain("b", keep);
  a.round();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0] == drain_outcome::last_serving);

  // Undrain: a is up again and the allocator moves shards back to it (it is older than min_age).
  std::vector<caf::expected<bool>> found;
  auto keep_found = [&](caf::expected<bool> x) { found.push_back(std::move(x)); };
  a.driver.ask_undrain("a", keep_found);
  a.driver.ask_undrain("b", keep_found); // up already: stays up
  a.driver.ask_undrain("nobody", keep_found);
  a.round();
  REQUIRE(found.size() == 3);
  CHECK(found[0] == true);
  CHECK(found[1] == true);
  CHECK(found[2] == false);
  CHECK(status_of(backend, "a") == "up");
  CHECK(status_of(backend, "b") == "up");
  for (int i = 0; i < 6 && a.owned().size() < 4; ++i) {
    b.round();
    a.round();
  }
  CHECK(a.owned().size() == 4);
  CHECK(b.owned().size() == 4);

  // Now b may be drained again (a serves); a member that left is not found.
  answers.clear();
  a.driver.ask_drain("b", keep);
  a.round();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0] == drain_outcome::draining);
  b.driver.stop();
  found.clear();
  a.driver.ask_undrain("b", keep_found);
  a.round();
  REQUIRE(found.size() == 1);
  CHECK(found[0] == false);
}

TEST_CASE_TEMPLATE("membership: the loop's threads start, drain and stop a member", B,
                   MEMBERSHIP_BACKENDS) {
  B backend;
  shard_table table{"a", shards};
  surge::cluster::membership_hooks hooks;
  hooks.release = [](uint32_t, bool) {};
  hooks.local_count = [](uint32_t) { return std::size_t{0}; };
  surge::cluster::membership m{options_of("a"), table, hooks, backend.factory()};
  REQUIRE(m.start() == "");
  CHECK(m.ready()); // start() ran the first round
  REQUIRE(m.nodes().size() == 1);
  CHECK(m.shard_map().size() == shards);
  std::promise<bool> drained;
  m.request_drain("nobody", [&](bool f) { drained.set_value(f); });
  CHECK_FALSE(drained.get_future().get());
  m.leave(1s); // nobody to hand the shards to: returns at once
  m.stop();
  CHECK_FALSE(m.ready());
  CHECK(status_of(backend, "a").rfind("left", 0) == 0);
  m.stop(); // idempotent
}
