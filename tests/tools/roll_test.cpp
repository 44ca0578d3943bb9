// The pure parts of `surgectl roll` (tools/common's roll.hpp): the node list, the plan, the
// restart command, and the drained / settled / balanced rules over a cluster and its shard map.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "surge/tools/roll.hpp"

namespace surge::tools::roll {

namespace {

node_row member(const std::string& id, const std::string& status) {
  node_row n;
  n.node_id = id;
  n.status = status;
  n.address = "127.0.0.1:4241";
  return n;
}

cluster_view cluster(std::vector<node_row> nodes) {
  cluster_view c;
  c.nodes = std::move(nodes);
  c.shards = 8;
  return c;
}

/// A shard map of `owners.size()` shards, shard i owned by owners[i] ("" unassigned).
std::vector<shard_row> shards_of(const std::vector<std::string>& owners) {
  std::vector<shard_row> out;
  for (std::size_t i = 0; i < owners.size(); ++i) {
    out.push_back({static_cast<int64_t>(i), owners[i], 1, {}});
  }
  return out;
}

} // namespace

TEST_SUITE("tools_unit") {
  TEST_CASE("roll: --nodes is a list of distinct names") {
    CHECK(split_nodes("n1") == std::vector<std::string>{"n1"});
    CHECK(split_nodes("n3, n1 ,n2") == std::vector<std::string>{"n3", "n1", "n2"});
    CHECK_THROWS_WITH_AS(split_nodes(""), "--nodes: an empty node name in ''", plan_error);
    CHECK_THROWS_AS(split_nodes("n1,,n2"), plan_error);
    CHECK_THROWS_AS(split_nodes("n1,"), plan_error);
    CHECK_THROWS_WITH_AS(split_nodes("n1,n2,n1"), "--nodes: n1 is named twice", plan_error);
  }

  TEST_CASE("roll: the plan is the given order, else the live members by id") {
    const auto c = cluster({member("n2", "up"), member("n10", "up"), member("n1", "up"),
                            member("old", "left"), member("n4", "draining")});
    CHECK(plan(c, {}) == std::vector<std::string>{"n1", "n10", "n2", "n4"});
    CHECK(plan(c, {"n2", "n1"}) == std::vector<std::string>{"n2", "n1"});
    CHECK_THROWS_WITH_AS(plan(c, {"n1", "n9"}), "node n9 is not a member of the cluster",
                         plan_error);
    CHECK_THROWS_WITH_AS(plan(c, {"old"}), "node old is left; start it first or leave it out",
                         plan_error);
    // One member up: nobody would take its shards.
    const auto alone = cluster({member("n1", "up"), member("n2", "down")});
    CHECK_THROWS_AS(plan(alone, {}), plan_error);
    CHECK_THROWS_AS(plan(cluster({}), {}), plan_error);
  }

  TEST_CASE("roll: the restart command names the node, safely") {
    CHECK(restart_command("scripts/restart-node.sh {node}", "n1") == "scripts/restart-node.sh n1");
    CHECK(restart_command("a {node} b {node}", "surge-0.x_y") == "a surge-0.x_y b surge-0.x_y");
    CHECK_THROWS_AS(restart_command("systemctl restart surge", "n1"), plan_error);
    CHECK_THROWS_AS(restart_command("r {node}", "n1; rm -rf /"), plan_error);
    CHECK_THROWS_AS(restart_command("r {node}", "$(id)"), plan_error);
    CHECK_THROWS_AS(restart_command("r {node}", "-rf"), plan_error);
    CHECK_THROWS_AS(restart_command("r {node}", ""), plan_error);
    CHECK(safe_node_id("host-1234.example_a"));
    CHECK_FALSE(safe_node_id("a b"));
    CHECK_FALSE(safe_node_id("a'b"));
  }

  TEST_CASE("roll: drained means it owns nothing and nothing moves") {
    const auto c = cluster({member("n1", "draining"), member("n2", "up"), member("n3", "up")});
    auto map = shards_of({"n2", "n3", "n1", "n2"});
    auto v = drained(count_shards(c, map), "n1");
    CHECK_FALSE(v.ok);
    CHECK(v.why == "n1 owns 1 shard");
    map[2].owner = "n3";
    map[0].target = "n3"; // another move still under way
    v = drained(count_shards(c, map), "n1");
    CHECK_FALSE(v.ok);
    CHECK(v.why == "1 move under way");
    map[0].target.clear();
    CHECK(drained(count_shards(c, map), "n1").ok);
    // A node the map does not name at all owns nothing.
    CHECK(drained(count_shards(c, map), "n9").ok);
  }

  TEST_CASE("roll: balanced means up, settled, and its share (counts differ by at most one)") {
    auto c = cluster({member("n1", "up"), member("n2", "up"), member("n3", "up")});
    // 8 shards over 3: 3, 3, 2 is balanced whoever has the 2.
    auto map = shards_of({"n1", "n1", "n1", "n2", "n2", "n2", "n3", "n3"});
    CHECK(balanced(c, count_shards(c, map), "n3").ok);
    CHECK(balanced(c, count_shards(c, map), "n1").ok);

    // Just back: owns little while the others hold the rest.
    auto back = shards_of({"n1", "n1", "n1", "n1", "n2", "n2", "n2", "n3"});
    auto v = balanced(c, count_shards(c, back), "n3");
    CHECK_FALSE(v.ok);
    CHECK(v.why == "n3 owns 1 of 8 (its share: 2-3)");
    // The move that would even it out (4, 3, 1 -> 3, 3, 2) is under way: not yet.
    back[0].target = "n3";
    v = balanced(c, count_shards(c, back), "n3");
    CHECK_FALSE(v.ok);
    CHECK(v.why == "1 move under way");

    // Unassigned shards are not balanced.
    map[7].owner.clear();
    CHECK(balanced(c, count_shards(c, map), "n1").why == "1 shards unassigned");
    map[7].owner = "n3";

    // Not up yet (or still draining), or not listed: not balanced.
    c.nodes[2].status = "draining";
    CHECK(balanced(c, count_shards(c, map), "n3").why == "n3 is draining");
    CHECK(balanced(c, count_shards(c, map), "n7").why == "n7 is not listed in the cluster yet");

    // Uneven elsewhere (5, 2, 1 with n2 at its floor): the allocator still has moves to plan.
    c.nodes[2].status = "up";
    auto uneven = shards_of({"n1", "n1", "n1", "n1", "n1", "n2", "n2", "n3"});
    CHECK_FALSE(balanced(c, count_shards(c, uneven), "n2").ok);
  }

  TEST_CASE("roll: settled before the roll starts") {
    const auto c = cluster({member("n1", "up"), member("n2", "up")});
    CHECK(settled(count_shards(c, shards_of({"n1", "n2"}))).ok);
    CHECK(settled(count_shards(c, shards_of({"n1", ""}))).why == "1 shards unassigned");
    CHECK(settled(count_shards(c, {})).why == "the shard map is empty");
  }

  TEST_CASE("roll: a member's address, with a wildcard host replaced") {
    CHECK(reach("127.0.0.1:8081", "x") == std::pair<std::string, uint16_t>{"127.0.0.1", 8081});
    CHECK(reach("0.0.0.0:8081", "10.0.0.7") == std::pair<std::string, uint16_t>{"10.0.0.7", 8081});
    CHECK(reach("[::]:80", "h") == std::pair<std::string, uint16_t>{"h", 80});
    CHECK(reach("[::1]:80", "h") == std::pair<std::string, uint16_t>{"::1", 80});
    CHECK_THROWS_AS(reach("127.0.0.1", "h"), plan_error);
    CHECK_THROWS_AS(reach("127.0.0.1:", "h"), plan_error);
    CHECK_THROWS_AS(reach("127.0.0.1:0", "h"), plan_error);
    CHECK_THROWS_AS(reach("127.0.0.1:99999", "h"), plan_error);
    CHECK_THROWS_AS(reach("127.0.0.1:8x", "h"), plan_error);
  }
}

} // namespace surge::tools::roll
