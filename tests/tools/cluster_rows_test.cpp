// The admin API's cluster answers as the tools read them (tools/common's cluster_rows.hpp).

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "surge/tools/cluster_rows.hpp"

namespace surge::tools {

namespace {

net::json::value parsed(const std::string& body) {
  auto p = net::json::parse(body);
  REQUIRE(std::holds_alternative<net::json::value>(p));
  return std::get<net::json::value>(std::move(p));
}

} // namespace

TEST_SUITE("tools_unit") {
  TEST_CASE("GET /admin/v1/cluster: every member, absent fields as their defaults") {
    const auto c = read_cluster(parsed(R"({"this_node":"n1","shards":256,"nodes":[
        {"node_id":"n1","address":"127.0.0.1:7001","http_address":"127.0.0.1:8081",
         "admin_address":"127.0.0.1:9091","status":"up","shards":200,"actors":12,
         "heartbeat_age_ms":120},
        {"node_id":"n2","status":"draining","shards":"many"}]})"));
    CHECK(c.this_node == "n1");
    CHECK(c.shards == 256);
    REQUIRE(c.nodes.size() == 2);
    CHECK(c.nodes[0].node_id == "n1");
    CHECK(c.nodes[0].address == "127.0.0.1:7001");
    CHECK(c.nodes[0].http_address == "127.0.0.1:8081");
    CHECK(c.nodes[0].admin_address == "127.0.0.1:9091");
    CHECK(c.nodes[0].status == "up");
    CHECK(c.nodes[0].shards == 200);
    CHECK(c.nodes[0].actors == 12);
    CHECK(c.nodes[0].heartbeat_age_ms == 120);
    CHECK(c.nodes[1].status == "draining");
    CHECK(c.nodes[1].shards == 0);
    CHECK(c.nodes[1].address.empty());
    CHECK(c.nodes[1].heartbeat_age_ms == -1);
  }

  TEST_CASE("GET /admin/v1/shards: owners, epochs and moves in order") {
    const auto s = read_shards(parsed(R"({"shards":[{"shard":0,"owner":"n1","epoch":3},
        {"shard":1,"owner":"n1","epoch":4,"target":"n2"},{"shard":2,"owner":null}]})"));
    REQUIRE(s.size() == 3);
    CHECK(s[0].shard == 0);
    CHECK(s[0].owner == "n1");
    CHECK(s[0].epoch == 3);
    CHECK(s[0].target.empty());
    CHECK(s[1].target == "n2");
    CHECK(s[2].owner.empty());
  }

  TEST_CASE("another answer names the missing array") {
    CHECK_THROWS_WITH_AS(read_cluster(parsed(R"({"error":{"code":"unauthorized"}})")),
                         "the answer has no \"nodes\" array", std::runtime_error);
    CHECK_THROWS_WITH_AS(read_shards(parsed("[]")), "the answer has no \"shards\" array",
                         std::runtime_error);
  }
}

} // namespace surge::tools
