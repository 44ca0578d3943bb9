// surge-chaos's fault scheduler: a pure function of its options.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "schedule.hpp"

namespace surge::chaos {

TEST_SUITE("chaos_unit") {
  TEST_CASE("the same seed gives the same schedule, another seed another one") {
    schedule_options o;
    o.seed = 42;
    o.duration_ms = 120000;
    o.kinds = parse_fault_list("all");
    const auto a = make_schedule(o);
    const auto b = make_schedule(o);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].kind == b[i].kind);
      CHECK(a[i].at_ms == b[i].at_ms);
      CHECK(a[i].duration_ms == b[i].duration_ms);
      CHECK(a[i].node == b[i].node);
      CHECK(a[i].variant == b[i].variant);
    }
    o.seed = 43;
    const auto c = make_schedule(o);
    bool differs = c.size() != a.size();
    for (std::size_t i = 0; !differs && i < a.size(); ++i) {
      differs = a[i].kind != c[i].kind || a[i].at_ms != c[i].at_ms || a[i].node != c[i].node;
    }
    CHECK(differs);
  }

  TEST_CASE("every requested kind appears at least once in a short schedule") {
    for (uint64_t seed = 1; seed <= 50; ++seed) {
      schedule_options o;
      o.seed = seed;
      o.duration_ms = 60000; // shorter than the plain sum of durations and gaps of all kinds
      o.kinds = parse_fault_list("all");
      const auto s = make_schedule(o);
      std::set<std::string> seen;
      for (const auto& f : s) {
        seen.insert(f.kind);
      }
      CHECK_MESSAGE(seen.size() == parse_fault_list("all").size(), "seed " << seed);
    }
  }

  TEST_CASE("faults are sequential, inside the window, on existing nodes") {
    schedule_options o;
    o.seed = 7;
    o.duration_ms = 300000;
    o.nodes = 3;
    o.kinds = {"kill", "pause", "gateway-outage"};
    const auto s = make_schedule(o);
    REQUIRE(s.size() >= 3);
    int64_t previous_end = 0;
    for (const auto& f : s) {
      CHECK(f.at_ms >= o.warmup_ms);
      CHECK(f.at_ms >= previous_end);
      CHECK(f.at_ms + f.duration_ms <= o.duration_ms - o.cooldown_ms);
      CHECK(f.node >= 0);
      CHECK(f.node < 3);
      if (f.kind == "pause") {
        CHECK(f.duration_ms > o.lease_ms);
      }
      previous_end = f.at_ms + f.duration_ms;
    }
  }

  TEST_CASE("rolling-restart and scale: one at a time, a roll's estimate grows with the nodes") {
    for (int nodes : {3, 5}) {
      schedule_options o;
      o.seed = 11;
      o.duration_ms = 150000;
      o.nodes = nodes;
      o.kinds = parse_fault_list("rolling-restart,scale");
      const auto s = make_schedule(o);
      REQUIRE(s.size() >= 2);
      int64_t previous_end = 0;
      for (const auto& f : s) {
        CHECK(f.at_ms >= previous_end);
        if (f.kind == "rolling-restart") {
          CHECK(f.duration_ms == 12000 * nodes);
          CHECK(f.node == 0);
        } else {
          CHECK(f.kind == "scale");
          CHECK(f.duration_ms >= 4000);
          CHECK(f.duration_ms <= 8000);
          CHECK(f.node < nodes);
        }
        previous_end = f.at_ms + f.duration_ms;
      }
    }
  }

  TEST_CASE("gateway-slow-capture: in all, a delay past payments.timeout, the gateways' index") {
    CHECK(parse_fault_list("gateway-slow-capture,kill") ==
          std::vector<std::string>{"gateway-slow-capture", "kill"});
    const auto all = parse_fault_list("all");
    CHECK(std::find(all.begin(), all.end(), "gateway-slow-capture") != all.end());
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      schedule_options o;
      o.seed = seed;
      o.duration_ms = 60000;
      o.kinds = parse_fault_list("gateway-slow-capture");
      const auto s = make_schedule(o);
      REQUIRE(s.size() >= 2);
      int64_t previous_end = 0;
      for (const auto& f : s) {
        CHECK(f.kind == "gateway-slow-capture");
        CHECK(f.node == 0);
        CHECK(f.at_ms >= previous_end);
        CHECK(f.duration_ms >= 4000);
        CHECK(f.duration_ms <= 8000);
        // "2000ms".."4500ms", in steps of 500: at or past the nodes' payments.timeout (2 s).
        REQUIRE(f.variant.size() > 2);
        CHECK(f.variant.substr(f.variant.size() - 2) == "ms");
        const int64_t delay = std::stoll(f.variant);
        CHECK(delay >= 2000);
        CHECK(delay <= 4500);
        CHECK(delay % 500 == 0);
        CHECK(f.variant == std::to_string(delay) + "ms");
        previous_end = f.at_ms + f.duration_ms;
      }
    }
  }

  TEST_CASE("fault lists") {
    CHECK(parse_fault_list("kill,pause,kill") == std::vector<std::string>{"kill", "pause"});
    // "all" is every kind but the long ones, which are asked for by name.
    CHECK(parse_fault_list("all").size() == fault_kinds().size() - long_fault_kinds().size());
    for (const auto& k : long_fault_kinds()) {
      CHECK(std::find(fault_kinds().begin(), fault_kinds().end(), k) != fault_kinds().end());
      const auto all = parse_fault_list("all");
      CHECK(std::find(all.begin(), all.end(), k) == all.end());
      const auto more = parse_fault_list("all," + k);
      CHECK(more.size() == all.size() + 1);
      CHECK(more.back() == k);
    }
    CHECK_THROWS_AS(parse_fault_list("kill,meteor"), std::invalid_argument);
    CHECK(make_schedule(schedule_options{}).empty()); // no kinds, no faults
  }
}

} // namespace surge::chaos
