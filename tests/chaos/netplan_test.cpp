// surge-chaos's netns mode as data: the layout's names and addresses, the commands that build
// and remove it, and the partition plans the schedule's variants turn into.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "netplan.hpp"
#include "schedule.hpp"

namespace surge::chaos {

namespace {

bool has(const std::vector<argv_t>& cmds, const argv_t& c) {
  return std::find(cmds.begin(), cmds.end(), c) != cmds.end();
}

} // namespace

TEST_SUITE("chaos_unit") {
  TEST_CASE("layout: names fit a Linux interface name, addresses in 10.77.0.0/24") {
    net_layout l;
    l.nodes = 9;
    CHECK(l.bridge() == "schaosbr");
    CHECK(l.ns(0) == "schaosn1");
    CHECK(l.veth(8) == "schaosv9");
    CHECK(l.bridge().size() <= 15);
    CHECK(l.veth(8).size() <= 15);
    CHECK(l.hub_address() == "10.77.0.1");
    CHECK(l.pg_address() == "10.77.0.2");
    CHECK(l.node_address(0) == "10.77.0.11");
    CHECK(l.node_address(2) == "10.77.0.13");
  }

  TEST_CASE("setup builds the bridge first and every node's namespace, veth and rules") {
    net_layout l;
    l.nodes = 3;
    const auto cmds = net_setup_commands(l);
    REQUIRE(!cmds.empty());
    CHECK(cmds.front() == argv_t{"ip", "link", "add", "schaosbr", "type", "bridge"});
    CHECK(has(cmds, {"ip", "addr", "add", "10.77.0.1/24", "dev", "schaosbr"}));
    CHECK(has(cmds, {"ip", "addr", "add", "10.77.0.2/32", "dev", "schaosbr"}));
    for (int i = 0; i < 3; ++i) {
      CHECK(has(cmds, {"ip", "netns", "add", l.ns(i)}));
      CHECK(has(cmds, {"ip", "link", "add", l.veth(i), "type", "veth", "peer", "name", "eth0",
                       "netns", l.ns(i)}));
      CHECK(has(cmds, {"ip", "link", "set", l.veth(i), "master", "schaosbr"}));
      CHECK(has(cmds,
                {"ip", "-n", l.ns(i), "addr", "add", l.node_address(i) + "/24", "dev", "eth0"}));
      // the local table moves behind the cut rules (pref 100), so incoming packets meet them
      CHECK(has(cmds, {"ip", "-n", l.ns(i), "rule", "add", "pref", "1000", "lookup", "local"}));
      CHECK(has(cmds, {"ip", "-n", l.ns(i), "rule", "del", "pref", "0"}));
    }
    // every command is ip (iproute2), nothing touches another interface than ours
    for (const auto& c : cmds) {
      CHECK(c.front() == "ip");
    }
  }

  TEST_CASE("teardown removes our namespaces, leftovers with the prefix and the bridge only") {
    net_layout l;
    l.nodes = 2;
    const auto listed = namespaces_with_prefix(
        "schaosn1 (id: 0)\nschaosn5 (id: 4)\nother\nschaosprobe\nxschaosn1\n", l.prefix);
    CHECK(listed == std::vector<std::string>{"schaosn1", "schaosn5", "schaosprobe"});
    const auto cmds = net_teardown_commands(l, listed);
    CHECK(has(cmds, {"ip", "netns", "del", "schaosn1"}));
    CHECK(has(cmds, {"ip", "netns", "del", "schaosn2"}));
    CHECK(has(cmds, {"ip", "netns", "del", "schaosn5"}));
    CHECK(has(cmds, {"ip", "netns", "del", "schaosprobe"}));
    CHECK(!has(cmds, {"ip", "netns", "del", "other"}));
    CHECK(std::count(cmds.begin(), cmds.end(), argv_t{"ip", "netns", "del", "schaosn1"}) == 1);
    CHECK(cmds.back() == argv_t{"ip", "link", "del", "schaosbr"});
  }

  TEST_CASE("a node runs through ip netns exec in its namespace") {
    net_layout l;
    CHECK(in_node_ns(l, 1, {"/bin/surge-node", "--node.id=n2"}) ==
          argv_t{"ip", "netns", "exec", "schaosn2", "/bin/surge-node", "--node.id=n2"});
  }

  TEST_CASE("partition plans: scope and direction become blackhole rules in the node's ns") {
    net_layout l;
    l.nodes = 3;
    SUBCASE("peers, both ways") {
      const auto p = plan_partition(l, 1, "peers");
      CHECK(p.peers);
      CHECK(!p.pg);
      CHECK(p.in);
      CHECK(p.out);
      CHECK(p.cut_off == std::vector<std::string>{"10.77.0.11", "10.77.0.13"});
      CHECK(p.cut.size() == 4);
      CHECK(has(p.cut, {"ip", "-n", "schaosn2", "rule", "add", "pref", "100", "to", "10.77.0.11/32",
                        "blackhole"}));
      CHECK(has(p.cut, {"ip", "-n", "schaosn2", "rule", "add", "pref", "100", "from",
                        "10.77.0.13/32", "blackhole"}));
      CHECK(p.describe == "n2 cut off from peers n1,n3 (both ways)");
    }
    SUBCASE("PostgreSQL only: Redis, paysim and the harness on 10.77.0.1 stay reachable") {
      const auto p = plan_partition(l, 0, "pg");
      CHECK(p.cut_off == std::vector<std::string>{"10.77.0.2"});
      CHECK(p.cut.size() == 2);
      for (const auto& c : p.cut) {
        CHECK(std::find(c.begin(), c.end(), "10.77.0.1/32") == c.end());
      }
    }
    SUBCASE("all: peers and PostgreSQL") {
      const auto p = plan_partition(l, 2, "all");
      CHECK(p.cut_off == std::vector<std::string>{"10.77.0.11", "10.77.0.12", "10.77.0.2"});
      CHECK(p.cut.size() == 6);
      CHECK(p.describe == "n3 cut off from peers n1,n2 and PostgreSQL (both ways)");
    }
    SUBCASE("asymmetric: in drops what arrives, out what leaves") {
      const auto in = plan_partition(l, 0, "peers-in");
      CHECK(in.in);
      CHECK(!in.out);
      REQUIRE(in.cut.size() == 2);
      for (const auto& c : in.cut) {
        CHECK(c[7] == "from");
      }
      const auto out = plan_partition(l, 0, "pg-out");
      CHECK(!out.in);
      CHECK(out.out);
      REQUIRE(out.cut.size() == 1);
      CHECK(out.cut[0] == argv_t{"ip", "-n", "schaosn1", "rule", "add", "pref", "100", "to",
                                 "10.77.0.2/32", "blackhole"});
    }
    SUBCASE("heal deletes exactly the rules the cut added, in reverse order") {
      for (const auto& v : partition_variants()) {
        const auto p = plan_partition(l, 1, v);
        REQUIRE(p.heal.size() == p.cut.size());
        for (std::size_t k = 0; k < p.cut.size(); ++k) {
          auto expect = p.cut[p.cut.size() - 1 - k];
          expect[4] = "del";
          CHECK(p.heal[k] == expect);
        }
      }
    }
    SUBCASE("bad input") {
      CHECK_THROWS_AS(plan_partition(l, 3, "peers"), std::invalid_argument);
      CHECK_THROWS_AS(plan_partition(l, 0, "sideways"), std::invalid_argument);
    }
  }

  TEST_CASE("the schedule's partitions: variants per seed, reproducible, both kinds of cut") {
    std::set<std::string> seen;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      schedule_options o;
      o.seed = seed;
      o.duration_ms = 180000;
      o.kinds = {"partition"};
      const auto a = make_schedule(o);
      const auto b = make_schedule(o);
      REQUIRE(a.size() == b.size());
      REQUIRE(!a.empty());
      net_layout l;
      l.nodes = o.nodes;
      for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].variant == b[i].variant);
        CHECK(a[i].node == b[i].node);
        CHECK(a[i].duration_ms > o.lease_ms); // longer than the lease: the node loses it
        const auto pa = plan_partition(l, a[i].node, a[i].variant);
        const auto pb = plan_partition(l, b[i].node, b[i].variant);
        CHECK(pa.cut == pb.cut);
        seen.insert(a[i].variant);
      }
    }
    // every variant, symmetric and asymmetric, comes up
    CHECK(seen.size() == partition_variants().size());
  }

  TEST_CASE("link shaping commands: both ends of the node's link; the probe on a scratch ns") {
    net_layout l;
    const auto add = shape_add_commands(l, 0, shape_args(link_shaper::netem, "latency", "200ms"));
    REQUIRE(add.size() == 2);
    CHECK(add[0] == argv_t{"ip", "netns", "exec", "schaosn1", "tc", "qdisc", "add", "dev", "eth0",
                           "root", "netem", "delay", "200ms", "50ms"});
    CHECK(add[1] == argv_t{"tc", "qdisc", "add", "dev", "schaosv1", "root", "netem", "delay",
                           "200ms", "50ms"});
    CHECK(shape_args(link_shaper::netem, "loss", "15%") == argv_t{"netem", "loss", "15%"});
    // Without netem: a slow link queueing up to the delay; a shallower queue the more loss.
    CHECK(shape_args(link_shaper::tbf, "latency", "200ms") ==
          argv_t{"tbf", "rate", "512kbit", "burst", "8kb", "latency", "200ms"});
    CHECK(shape_args(link_shaper::tbf, "loss", "5%").back() == "9000");
    CHECK(shape_args(link_shaper::tbf, "loss", "30%").back() == "1500");
    CHECK_THROWS_AS(shape_args(link_shaper::netem, "kill", ""), std::invalid_argument);
    CHECK_THROWS_AS(shape_args(link_shaper::none, "loss", "5%"), std::invalid_argument);
    const auto del = shape_del_commands(l, 0);
    CHECK(del[1] == argv_t{"tc", "qdisc", "del", "dev", "schaosv1", "root"});
    const auto probe = shaper_probe_commands("schaosprobe", link_shaper::netem);
    CHECK(probe.back() == argv_t{"ip", "netns", "exec", "schaosprobe", "tc", "qdisc", "add", "dev",
                                 "lo", "root", "netem", "delay", "1ms"});
    CHECK(shaper_probe_commands("schaosprobe", link_shaper::tbf).back()[10] == "tbf");
    CHECK(join_argv({"ip", "netns", "list"}) == "ip netns list");
    CHECK(shape_stats_commands(l, 1)[1] == argv_t{"tc", "-s", "qdisc", "show", "dev", "schaosv2"});
    CHECK(qdisc_stats_line("qdisc tbf 8001: root refcnt 2 rate 1Mbit burst 4Kb lat 0us \n"
                           " Sent 52340 bytes 301 pkt (dropped 17, overlimits 40 requeues 0) \n"
                           " backlog 0b 0p requeues 0\n") ==
          "Sent 52340 bytes 301 pkt (dropped 17, overlimits 40 requeues 0)");
    CHECK(qdisc_stats_line("").empty());
  }

  TEST_CASE("latency and loss variants are link shaping parameters drawn from the seed") {
    schedule_options o;
    o.seed = 5;
    o.duration_ms = 120000;
    o.kinds = {"latency", "loss"};
    for (const auto& f : make_schedule(o)) {
      const auto args = shape_args(link_shaper::netem, f.kind, f.variant);
      CHECK(!shape_args(link_shaper::tbf, f.kind, f.variant).empty());
      if (f.kind == "latency") {
        CHECK(f.variant.size() > 2);
        CHECK(f.variant.substr(f.variant.size() - 2) == "ms");
      } else {
        CHECK(f.variant.back() == '%');
      }
      CHECK(!args.empty());
    }
  }
}

} // namespace surge::chaos
