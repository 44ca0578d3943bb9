// Mixed versions (issue 18): a node of the previous release (SURGE_PREVIOUS_NODE, built by
// build_previous.sh from the tag surge-r17) and two of this build on one database, under load.
// The old node starts first and migrates the database to its schema; the new ones migrate it
// further while it runs (expand only: it keeps working). Node ids make both link directions
// happen: n1 (new) connects to n2 (old) with the versioned hello, which the old node does not
// understand, so n1 falls back to the unversioned one; n2 connects to n3 (new) with the
// unversioned hello, which n3 reads as protocol 1. Asserted: every request of a bounded load
// through all three storefronts succeeds, every acknowledged hold is there afterwards (stock
// and carts, from every node), the cluster view shows each member's protocol and the minimum
// (1 while the old node is up), the feature gated on protocol 2 opening only once it left, and a
// roll back (n1 restarted on the previous release, on the new schema) reading as protocol 1.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

node_config cfg(const std::string& id, const node_process* with, const std::string& binary) {
  node_config c;
  c.node_id = id;
  c.cluster_with = with;
  c.binary = binary;
  return c;
}

/// GET /admin/v1/cluster on `n`.
json::value cluster_view(node_process& n) {
  http_client c{n.admin_port(), 5s};
  auto r = c.get("/admin/v1/cluster");
  REQUIRE_MESSAGE(r.status == 200, describe(r));
  return parse_json(r.body);
}

/// Waits (bounded) until `probe` sees each of `ids` up with at least `min_shards` shards.
json::value wait_members(node_process& probe, const std::set<std::string>& ids,
                         int64_t min_shards) {
  const auto deadline = clock::now() + 60s;
  while (true) {
    auto v = cluster_view(probe);
    std::set<std::string> ok;
    std::string seen;
    for (const auto& m : array_of(v, "nodes")) {
      if (str_of(m, "status") == "up" && int_of(m, "shards") >= min_shards) {
        ok.insert(str_of(m, "node_id"));
      }
      seen += str_of(m, "node_id") + ":" + str_of(m, "status") + "/" +
              std::to_string(int_of(m, "shards")) + " ";
    }
    if (std::includes(ok.begin(), ok.end(), ids.begin(), ids.end())) {
      return v;
    }
    if (clock::now() > deadline) {
      FAIL("members not up with shards in time: " << seen);
    }
    std::this_thread::sleep_for(200ms);
  }
}

/// The whole log of `n` (every start).
std::string log_of(const node_process& n) {
  std::ifstream in{n.log_path()};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// One acknowledged hold.
struct ack {
  std::string cart;
  std::string sku;
};

} // namespace

TEST_SUITE("upgrade") {

  TEST_CASE("previous release and this build side by side under load: nothing fails or is lost") {
    const std::string previous = SURGE_PREVIOUS_NODE;
    // The previous release first: it creates the database and applies its own migrations.
    node_process n2{cfg("n2", nullptr, previous)};
    node_process n1{cfg("n1", &n2, {})}; // migrates further while n2 runs
    node_process n3{cfg("n3", &n2, {})};
    std::vector<node_process*> nodes{&n1, &n2, &n3};
    auto view = wait_members(n1, {"n1", "n2", "n3"}, 40);

    // Every member's protocol: the old one records none (protocol 1).
    std::map<std::string, int64_t> protocol;
    for (const auto& m : array_of(view, "nodes")) {
      protocol[str_of(m, "node_id")] = int_of(m, "protocol");
    }
    CHECK(protocol["n1"] == 2);
    CHECK(protocol["n2"] == 1);
    CHECK(protocol["n3"] == 2);
    CHECK(int_of(view, "min_protocol") == 1);
    CHECK(array_of(view, "features").empty());
    // The links, as the new nodes logged them: n1 -> n2 fell back to the unversioned hello,
    // n2 -> n3 came with it, n1 -> n3 spoke protocol 2.
    const auto log1 = log_of(n1);
    const auto log3 = log_of(n3);
    CHECK(log1.find("connected to node n2 at") != std::string::npos);
    CHECK(log1.find("(cluster protocol 1: unversioned hello)") != std::string::npos);
    CHECK(log1.find("connected to node n3 at 127.0.0.1:" + std::to_string(n3.cluster_port()) +
                    " (cluster protocol 2, build") != std::string::npos);
    CHECK(log3.find("node n2 connected (cluster protocol 1: unversioned hello)") !=
          std::string::npos);
    CHECK(log3.find("node n1 connected (cluster protocol 2, build") != std::string::npos);

    // SKUs until each node owns two (the old node's view of ownership answers too).
    api a1{n1};
    std::map<std::string, std::string> owner_of;
    std::map<std::string, int> owned;
    constexpr int64_t stock = 1000;
    for (int i = 0; i < 300 && (owned["n1"] < 2 || owned["n2"] < 2 || owned["n3"] < 2); ++i) {
      const auto sku = "mix-" + std::to_string(i);
      a1.add_product({.sku = sku, .name = sku, .price_cents = 100}, stock);
      const auto owner = str_of(a1.stock(sku), "owner_node");
      if (owned[owner] < 2) {
        ++owned[owner];
        owner_of[sku] = owner;
      }
    }
    REQUIRE(owner_of.size() == 6);
    std::vector<std::string> skus;
    for (const auto& [sku, owner] : owner_of) {
      skus.push_back(sku);
    }

    // The load: one shopper thread per storefront, each a bounded number of carts with a hold
    // on every SKU (so every node's storefront reaches every node's SKUs).
    constexpr int carts_per_thread = 20;
    std::mutex mtx;
    std::vector<ack> acks;
    std::vector<std::string> failures;
    std::vector<std::thread> shoppers;
    for (auto* n : nodes) {
      shoppers.emplace_back([&, n] {
        api a{*n};
        for (int c = 0; c < carts_per_thread; ++c) {
          const auto cart = a.create_cart();
          for (const auto& sku : skus) {
            auto r = a.put_item(cart, sku, 1);
            std::lock_guard<std::mutex> guard{mtx};
            if (r.status == 200) {
              acks.push_back({cart, sku});
            } else {
              failures.push_back(n->node_id() + " " + sku + ": " + describe(r));
            }
          }
        }
      });
    }
    for (auto& t : shoppers) {
      t.join();
    }
    CHECK_MESSAGE(failures.empty(), failures.size() << " failed requests, first: "
                                                    << (failures.empty() ? "" : failures[0]));
    CHECK(acks.size() == nodes.size() * carts_per_thread * skus.size());

    // Nothing acknowledged is lost: each SKU holds what was acknowledged, seen from every node,
    // and every cart still has its lines.
    std::map<std::string, int64_t> held;
    for (const auto& a : acks) {
      ++held[a.sku];
    }
    for (auto* n : nodes) {
      api a{*n};
      for (const auto& sku : skus) {
        CAPTURE(n->node_id());
        CAPTURE(sku);
        check_stock(a.stock(sku), stock, held[sku], 0);
      }
    }
    std::set<std::string> carts;
    for (const auto& a : acks) {
      carts.insert(a.cart);
    }
    for (const auto& cart : carts) {
      CHECK(array_of(a1.cart(cart), "items").size() == skus.size());
    }

    // The old node leaves (graceful: its shards move to the new ones): the minimum protocol
    // becomes 2 and the feature gated on it opens; the holds are still all there.
    n2.stop(30s);
    const auto deadline = clock::now() + 30s;
    while (int_of(cluster_view(n1), "min_protocol") != 2 && clock::now() < deadline) {
      std::this_thread::sleep_for(200ms);
    }
    view = cluster_view(n1);
    CHECK(int_of(view, "min_protocol") == 2);
    const auto& features = array_of(view, "features");
    REQUIRE(features.size() == 1);
    CHECK(std::get<std::string>(features[0].get()) == "versioned_hello");
    wait_members(n1, {"n1", "n3"}, 100);
    api a3{n3};
    for (const auto& sku : skus) {
      check_stock(a3.stock(sku), stock, held[sku], 0);
    }

    // A roll back: n1 restarts on the previous release, now on this build's schema. Its
    // registration writes no protocol, and the one n1 recorded before belongs to another
    // incarnation: it reads as protocol 1 again, and the minimum with it.
    n1.stop(30s);
    node_process old1{cfg("n1", &n2, previous)};
    view = wait_members(n3, {"n1", "n3"}, 40);
    for (const auto& m : array_of(view, "nodes")) {
      if (str_of(m, "node_id") == "n1") {
        CHECK(int_of(m, "protocol") == 1);
      }
    }
    CHECK(int_of(view, "min_protocol") == 1);
    CHECK(array_of(view, "features").empty());
    api back{old1};
    for (const auto& sku : skus) {
      check_stock(back.stock(sku), stock, held[sku], 0);
    }
  }
}

} // namespace surge::itest
