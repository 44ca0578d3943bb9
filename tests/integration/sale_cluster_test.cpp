// The waiting room in a cluster (issue 17): three nodes, a sale whose queue admits slowly, 20
// shoppers joined through every node; kill -9 of the node that owns the queue (the entity
// "sale:<id>"), then every ticket answers again through the others, no waiting position grew and
// every admitted ticket is still admitted.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sale_support.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// The shard of entity `kind:id` among `shards`: FNV-1a (64 bit) of the key, as DESIGN.md's
/// "Entity key kind:id -> shard = hash mod cluster.shards" (cluster/shard_table.hpp) does.
uint32_t shard_of(const std::string& key, uint32_t shards) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<uint32_t>(h % shards);
}

/// The owner of `shard` per GET /admin/v1/shards on `n` ("" when unknown).
std::string owner_of_shard(node_process& n, uint32_t shard) {
  http_client c{n.admin_port(), 5s};
  auto r = c.get("/admin/v1/shards");
  if (r.status != 200) {
    return {};
  }
  const auto body = parse_json(r.body);
  for (const auto& s : array_of(body, "shards")) {
    if (int_of(s, "shard") == static_cast<int64_t>(shard)) {
      return str_of(s, "owner");
    }
  }
  return {};
}

node_config member(const std::string& id, const node_process* with) {
  node_config c;
  c.node_id = id;
  c.cluster_with = with;
  return c;
}

struct seen {
  std::string state;
  int64_t position = -1;
};

seen read_ticket(http_client& c, const std::string& sale, const std::string& ticket, int& status) {
  auto r = c.get("/api/v1/sales/" + sale + "/queue/" + ticket);
  status = r.status;
  if (r.status != 200) {
    return {};
  }
  auto t = ticket_of(parse_json(r.body));
  return {t.state, t.position};
}

} // namespace

TEST_SUITE("sale_cluster") {
  TEST_CASE("kill -9 of the queue's owner: tickets answer again elsewhere, no position grows") {
    std::vector<std::unique_ptr<node_process>> nodes;
    nodes.push_back(std::make_unique<node_process>(member("n1", nullptr)));
    nodes.push_back(std::make_unique<node_process>(member("n2", nodes[0].get())));
    nodes.push_back(std::make_unique<node_process>(member("n3", nodes[0].get())));
    struct cleanup {
      std::vector<std::unique_ptr<node_process>>& n;
      ~cleanup() {
        while (!n.empty()) {
          n.pop_back(); // n1 last: it owns the database
        }
      }
    } in_order{nodes};
    api a{*nodes[0]};
    a.add_product({.sku = "CQ", .name = "Cq", .price_cents = 100}, 1000);
    const std::string sale = "cluster-drop";
    const auto start = wall_ms() + 4000;
    put_sale(a, sale,
             {.skus = {"CQ"},
              .starts_at_ms = start,
              .ends_at_ms = start + 600000,
              .queue = true,
              .admission_rate = "2",
              .pass_ttl = "600"});
    // Every node's index has the sale (sales.refresh) before shoppers join through it.
    for (auto& n : nodes) {
      http_client c{n->http_port(), 5s};
      REQUIRE_MESSAGE(eventually(10s,
                                 [&] {
                                   auto r = c.get("/api/v1/products/CQ");
                                   return r.status == 200 &&
                                          parse_json(r.body).find("sale") != nullptr;
                                 }),
                      n->node_id() << " never showed the sale");
    }

    // 20 shoppers join through the three nodes (auth off: the body names the customer).
    std::vector<std::string> tickets;
    for (int i = 0; i < 20; ++i) {
      http_client c{nodes[static_cast<std::size_t>(i) % 3]->http_port(), 15s};
      auto r = c.post("/api/v1/sales/" + sale + "/queue",
                      "{\"customer_id\":\"c" + std::to_string(i) + "\"}");
      REQUIRE_MESSAGE(r.status == 201, describe(r));
      tickets.push_back(str_of(parse_json(r.body), "ticket"));
    }

    // Admission progresses a bit (2 per second after the lottery).
    REQUIRE(eventually(30s, [&] {
      auto r = a.admin().get("/admin/v1/sales/" + sale);
      if (r.status != 200) {
        return false;
      }
      const auto st = member(parse_json(r.body), "stats");
      return st.is_object() && int_of(st, "admitted") >= 3;
    }));

    const auto shard = shard_of("sale:" + sale, 256);
    const auto owner = owner_of_shard(*nodes[0], shard);
    REQUIRE_MESSAGE(!owner.empty(), "no owner of shard " << shard);
    node_process* victim = nullptr;
    node_process* probe = nullptr;
    for (auto& n : nodes) {
      if (n->node_id() == owner) {
        victim = n.get();
      } else if (probe == nullptr) {
        probe = n.get();
      }
    }
    REQUIRE(victim != nullptr);
    REQUIRE(probe != nullptr);

    // The positions just before the kill, read through the node that will survive.
    http_client c{probe->http_port(), 5s};
    std::map<std::string, seen> before;
    for (const auto& t : tickets) {
      int status = 0;
      before[t] = read_ticket(c, sale, t, status);
      REQUIRE_MESSAGE(status == 200, "ticket " << t << " before the kill: " << status);
    }
    std::size_t admitted_before = 0;
    for (const auto& [t, s] : before) {
      admitted_before += s.state == "admitted" ? 1 : 0;
    }
    MESSAGE("before the kill of " << owner << " (owner of sale:" << sale << ", shard " << shard
                                  << "): " << admitted_before << " of 20 admitted");
    victim->kill9();
    const auto killed = clock::now();

    // Every ticket answers again through the survivor.
    std::map<std::string, seen> after;
    REQUIRE(eventually(40s, [&] {
      for (const auto& t : tickets) {
        if (after.count(t) != 0) {
          continue;
        }
        int status = 0;
        auto s = read_ticket(c, sale, t, status);
        if (status != 200) {
          return false;
        }
        after[t] = s;
      }
      return true;
    }));
    MESSAGE("every ticket answered again "
            << std::chrono::duration<double>(clock::now() - killed).count() << " s after the kill");
    for (const auto& t : tickets) {
      const auto& b = before[t];
      const auto& x = after[t];
      CAPTURE(t);
      if (b.state == "admitted") {
        CHECK(x.state == "admitted");
      } else if (b.state == "waiting" && b.position > 0) {
        CHECK((x.state == "admitted" ||
               (x.state == "waiting" && x.position > 0 && x.position <= b.position)));
      }
    }
  }
}

} // namespace surge::itest
