// The cluster end to end: several surge-node processes sharing one PostgreSQL database and Redis
// prefix, shoppers on their storefronts, and nodes killed, paused, drained and joined under load.
// The promises checked: G1 (no oversell), G2 (every acknowledged hold is still there), G4 (one
// writer per shard and epoch, from the journal's own record) and G5 (the shards of a dead node
// serve again elsewhere; the time is measured and reported).
#include <doctest/doctest.h>

#include <csignal>
#include <unistd.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// Three members: n1 owns the database, n2 and n3 join it.
struct cluster3 {
  explicit cluster3(std::vector<std::string> extra = {}, bool third = true) {
    nodes.push_back(std::make_unique<node_process>(cfg("n1", nullptr, extra)));
    nodes.push_back(std::make_unique<node_process>(cfg("n2", nodes[0].get(), extra)));
    if (third) {
      add("n3", extra);
    }
  }

  static node_config cfg(const std::string& id, const node_process* with,
                         const std::vector<std::string>& extra) {
    node_config c;
    c.node_id = id;
    c.cluster_with = with;
    c.extra = extra;
    return c;
  }

  ~cluster3() {
    while (!nodes.empty()) {
      nodes.pop_back(); // n1 last: it owns the database the others use
    }
  }

  node_process& add(const std::string& id, const std::vector<std::string>& extra = {}) {
    nodes.push_back(std::make_unique<node_process>(cfg(id, nodes[0].get(), extra)));
    return *nodes.back();
  }

  node_process& by_id(const std::string& id) {
    for (auto& n : nodes) {
      if (n->node_id() == id) {
        return *n;
      }
    }
    FAIL("no node " << id);
    throw std::logic_error("unreachable");
  }

  std::vector<std::unique_ptr<node_process>> nodes;
};

/// GET /admin/v1/cluster on `n`: node id -> (status, shards).
std::map<std::string, std::pair<std::string, int64_t>> members_of(node_process& n) {
  http_client c{n.admin_port(), 5s};
  auto r = c.get("/admin/v1/cluster");
  std::map<std::string, std::pair<std::string, int64_t>> out;
  if (r.status != 200) {
    return out;
  }
  const auto body = parse_json(r.body);
  for (const auto& m : array_of(body, "nodes")) {
    out[str_of(m, "node_id")] = {str_of(m, "status"), int_of(m, "shards")};
  }
  return out;
}

/// Shards with a planned move (target set), per GET /admin/v1/shards on `n`; -1 on error.
int moves_under_way(node_process& n) {
  http_client c{n.admin_port(), 5s};
  auto r = c.get("/admin/v1/shards");
  if (r.status != 200) {
    return -1;
  }
  int moving = 0;
  const auto body = parse_json(r.body);
  for (const auto& s : array_of(body, "shards")) {
    moving += str_of(s, "target").empty() ? 0 : 1;
  }
  return moving;
}

/// Waits (bounded) until every listed node is up with at least `min_shards` and no move is
/// under way. REQUIREs it.
void wait_balanced(node_process& probe, const std::vector<std::string>& ids, int64_t min_shards,
                   std::chrono::seconds patience = 40s) {
  const auto deadline = clock::now() + patience;
  std::map<std::string, std::pair<std::string, int64_t>> m;
  while (clock::now() < deadline) {
    m = members_of(probe);
    bool ok = moves_under_way(probe) == 0;
    for (const auto& id : ids) {
      ok = ok && m.count(id) != 0 && m[id].first == "up" && m[id].second >= min_shards;
    }
    if (ok) {
      return;
    }
    std::this_thread::sleep_for(100ms);
  }
  std::string seen;
  for (const auto& [id, st] : m) {
    seen += id + ":" + st.first + "/" + std::to_string(st.second) + " ";
  }
  FAIL("cluster not balanced in time: " << seen);
}

/// The owner node id of `sku`, as its stock says (through any node).
std::string owner_of(api& a, const std::string& sku) {
  return str_of(a.stock(sku), "owner_node");
}

/// One acknowledged hold: the 200 of PUT /carts/{cart}/items/{sku}.
struct ack {
  std::string cart;
  std::string sku;
  int64_t qty;
  std::string hold_id;
};

/// Shoppers: `threads` loops, each with its own connections to `ports` (round robin), each
/// iteration a new cart and a PUT of 1 unit of a random SKU of `skus`. Bounded by `stop`, by
/// `max_iterations` and by the clients' timeouts. Records every response.
class shoppers {
 public:
  shoppers(std::vector<uint16_t> ports, std::vector<std::string> skus, std::size_t threads,
           std::size_t max_iterations = 4000)
      : ports_(std::move(ports))
      , skus_(std::move(skus)) {
    for (std::size_t t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t, max_iterations] { run(t, max_iterations); });
    }
  }
  ~shoppers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

  /// Ports to use from now on (e.g. without a node that is about to die).
  void use_ports(std::vector<uint16_t> ports) {
    std::lock_guard<std::mutex> g{mtx_};
    ports_ = std::move(ports);
  }

  std::vector<ack> acks() const {
    std::lock_guard<std::mutex> g{mtx_};
    return acks_;
  }
  /// Responses by status (0: transport error) and error code.
  std::map<std::string, int> outcomes() const {
    std::lock_guard<std::mutex> g{mtx_};
    return outcomes_;
  }
  std::size_t failures() const {
    std::lock_guard<std::mutex> g{mtx_};
    std::size_t n = 0;
    for (const auto& [k, v] : outcomes_) {
      n += k == "200" || k == "201" || k == "409 sold_out" ? 0 : static_cast<std::size_t>(v);
    }
    return n;
  }
  std::string describe_outcomes() const {
    std::string s;
    for (const auto& [k, v] : outcomes()) {
      s += k + "=" + std::to_string(v) + " ";
    }
    return s;
  }
  /// The time of the last 200 for `sku` (steady clock), or nullopt.
  std::optional<clock::time_point> last_ok(const std::string& sku) const {
    std::lock_guard<std::mutex> g{mtx_};
    auto i = last_ok_.find(sku);
    if (i == last_ok_.end()) {
      return std::nullopt;
    }
    return i->second;
  }

 private:
  void note(const response& r) {
    std::string key = std::to_string(r.status);
    if (r.status >= 400) {
      auto body = r.body;
      auto pos = body.find("\"code\":\"");
      if (pos != std::string::npos) {
        key += " " + body.substr(pos + 8, body.find('"', pos + 8) - pos - 8);
      }
    }
    std::lock_guard<std::mutex> g{mtx_};
    ++outcomes_[key];
  }

  void run(std::size_t t, std::size_t max_iterations) {
    std::mt19937 rng{static_cast<unsigned>(t * 7919 + 1)};
    std::map<uint16_t, std::unique_ptr<http_client>> clients;
    for (std::size_t i = 0; i < max_iterations && !stop_; ++i) {
      uint16_t port = 0;
      {
        std::lock_guard<std::mutex> g{mtx_};
        port = ports_[(t + i) % ports_.size()];
      }
      auto& c = clients[port];
      if (!c) {
        c = std::make_unique<http_client>(port, 15s);
      }
      auto created = c->post("/api/v1/carts", "{}");
      note(created);
      if (created.status != 201) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      const auto cart = str_of(parse_json(created.body), "cart_id");
      const auto& sku = skus_[rng() % skus_.size()];
      auto r = c->put("/api/v1/carts/" + cart + "/items/" + sku, R"({"qty":1})");
      note(r);
      if (r.status == 200) {
        const auto body = parse_json(r.body);
        const auto* line = line_of(body, sku);
        if (line != nullptr) {
          std::lock_guard<std::mutex> g{mtx_};
          acks_.push_back(ack{cart, sku, int_of(*line, "qty"), str_of(*line, "hold_id")});
          last_ok_[sku] = clock::now();
        }
      }
    }
  }

  std::vector<uint16_t> ports_;
  const std::vector<std::string> skus_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mtx_;
  std::vector<ack> acks_;
  std::map<std::string, int> outcomes_;
  std::map<std::string, clock::time_point> last_ok_;
  std::vector<std::thread> threads_;
};

/// G1 + G2 for `skus` (read through `a`): held + sold <= on_hand, held covers the acknowledged
/// holds, and every acknowledged hold is in its cart with the same hold id.
void check_promises(api& a, const std::vector<std::string>& skus, const std::vector<ack>& acks) {
  std::map<std::string, int64_t> acked;
  for (const auto& k : acks) {
    acked[k.sku] += k.qty;
  }
  for (const auto& sku : skus) {
    const auto st = a.stock(sku);
    const auto on_hand = int_of(st, "on_hand");
    const auto held = int_of(st, "held");
    const auto sold = int_of(st, "sold");
    CHECK_MESSAGE(held + sold <= on_hand,
                  sku << ": held " << held << " + sold " << sold << " > on_hand " << on_hand);
    CHECK_MESSAGE(held >= acked[sku], sku << ": held " << held << " < acknowledged " << acked[sku]);
  }
  std::size_t missing = 0;
  for (const auto& k : acks) {
    auto r = a.store().get("/api/v1/carts/" + k.cart);
    const bool ok = r.status == 200 && [&] {
      const auto cart = parse_json(r.body);
      const auto* line = line_of(cart, k.sku);
      return line != nullptr && str_of(*line, "hold_id") == k.hold_id;
    }();
    if (!ok && ++missing <= 5) {
      FAIL_CHECK("acknowledged hold " << k.hold_id << " of " << k.sku << " missing from cart "
                                      << k.cart << ": " << describe(r));
    }
  }
  CHECK(missing == 0);
}

/// G4 from the journal: no (shard, epoch) was committed by two nodes.
void check_one_writer_per_epoch(const std::string& db_url) {
  pqxx::connection c{db_url};
  pqxx::nontransaction tx{c};
  auto rows = tx.exec("SELECT shard, epoch, string_agg(DISTINCT node_id, ',') FROM sku_journal "
                      "WHERE shard IS NOT NULL GROUP BY shard, epoch "
                      "HAVING count(DISTINCT node_id) > 1");
  for (const auto& row : rows) {
    FAIL_CHECK("shard " << row[0].as<int>() << " epoch " << row[1].as<long>() << " committed by "
                        << row[2].as<std::string>());
  }
  CHECK(rows.empty());
}

/// SKUs named prefix-0.. created (stock `units` each) until `per_node` are owned by each of
/// the listed nodes; returns sku -> owner.
std::map<std::string, std::string> skus_per_owner(api& a, const std::string& prefix,
                                                  const std::vector<std::string>& owners,
                                                  std::size_t per_node, int64_t units) {
  std::map<std::string, std::string> out;
  std::map<std::string, std::size_t> have;
  for (int i = 0; i < 200; ++i) {
    const auto sku = prefix + "-" + std::to_string(i);
    a.add_product({.sku = sku, .name = sku, .price_cents = 100}, units);
    const auto owner = owner_of(a, sku);
    if (have[owner] < per_node) {
      ++have[owner];
      out[sku] = owner;
    }
    bool done = true;
    for (const auto& o : owners) {
      done = done && have[o] >= per_node;
    }
    if (done) {
      return out;
    }
  }
  FAIL("could not place SKUs on every node");
  return out;
}

/// One SKU (stock `units`) owned by each of n1..n3: all of them, and the one `victim` owns.
std::pair<std::vector<std::string>, std::string>
one_hot_sku_per_node(api& a, const std::string& prefix, int64_t units, const std::string& victim) {
  std::vector<std::string> skus;
  std::string of_victim;
  for (const auto& [sku, owner] : skus_per_owner(a, prefix, {"n1", "n2", "n3"}, 1, units)) {
    skus.push_back(sku);
    if (owner == victim) {
      of_victim = sku;
    }
  }
  return {skus, of_victim};
}

} // namespace

TEST_SUITE("cluster") {

  TEST_CASE("three nodes: any node answers for any entity; the shards spread evenly") {
    cluster3 c;
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);
    api a1{*c.nodes[0]};
    const auto skus = skus_per_owner(a1, "any", {"n1", "n2", "n3"}, 1, 10);
    for (auto& n : c.nodes) {
      api a{*n};
      for (const auto& [sku, owner] : skus) {
        // A cart on this node's storefront holding a SKU owned anywhere.
        const auto cart = a.create_cart();
        auto r = a.put_item(cart, sku, 1);
        REQUIRE_MESSAGE(r.status == 200, describe(r));
        CHECK(str_of(a.stock(sku), "owner_node") == owner);
        CHECK(int_of(line_at(a.cart(cart), sku), "qty") == 1);
      }
    }
    for (const auto& [sku, owner] : skus) {
      check_stock(a1.stock(sku), 10, 3, 0);
    }
  }

  TEST_CASE("cluster.tls: members talk over TLS with certificates of one CA") {
    // A CA and a node certificate made with the openssl CLI, as README.md shows.
    const auto dir = std::filesystem::temp_directory_path() /
                     ("surge-tls-" + std::to_string(::getpid()) + "-" + std::to_string(wall_ms()));
    std::filesystem::create_directories(dir);
    const auto d = dir.string();
    const std::string script =
        "cd '" + d +
        "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
        "-days 2 -subj /CN=surge-test-ca && openssl req -newkey rsa:2048 -nodes -keyout node.key "
        "-out node.csr -subj /CN=surge-node && openssl x509 -req -in node.csr -CA ca.pem -CAkey "
        "ca.key -CAcreateserial -out node.pem -days 2";
    REQUIRE(std::system((script + " >/dev/null 2>&1").c_str()) == 0);
    const std::vector<std::string> tls{
        "--cluster.tls=true", "--cluster.tls_cert=" + d + "/node.pem",
        "--cluster.tls_key=" + d + "/node.key", "--cluster.tls_ca=" + d + "/ca.pem"};
    {
      cluster3 c{tls, false};
      wait_balanced(*c.nodes[0], {"n1", "n2"}, 120);
      api a1{*c.nodes[0]};
      api a2{*c.nodes[1]};
      const auto skus = skus_per_owner(a1, "tls", {"n1", "n2"}, 1, 10);
      for (const auto& [sku, owner] : skus) {
        const auto cart = a2.create_cart();
        auto r = a2.put_item(cart, sku, 2);
        CHECK_MESSAGE(r.status == 200, describe(r));
        check_stock(a1.stock(sku), 10, 2, 0);
      }
    }
    std::filesystem::remove_all(dir);
  }

  TEST_CASE("kill -9 of a hot SKU's owner under load: no oversell, no lost hold, back in seconds") {
    cluster3 c;
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);
    api a1{*c.nodes[0]};
    const auto [skus, victim_sku] = one_hot_sku_per_node(a1, "hot", 5000, "n3");
    auto& victim = c.by_id("n3");
    // Shoppers come in through the survivors (as a load balancer would once n3 fails its
    // health check); n3 still serves them by owning shards.
    shoppers load{{c.nodes[0]->http_port(), c.nodes[1]->http_port()}, skus, 6};
    std::this_thread::sleep_for(2s);
    // The probe's cart is made while every member is up: a cart made after the kill lands on
    // the victim's shards a third of the time and waits for their failover like any other.
    api a2{*c.nodes[1]};
    const auto probe_cart = a2.create_cart();
    const auto acks_before = load.acks().size();
    victim.kill9();
    const auto killed = clock::now();
    // The time until a reservation of the victim's SKU succeeds on a survivor again (the
    // probe's cart moves too when it was the victim's).
    std::optional<double> failover_s;
    {
      int64_t qty = 0;
      while (clock::now() - killed < 20s) {
        // The SKU answers again: a hold, or sold out (the shoppers may have bought it all).
        auto r = a2.put_item(probe_cart, victim_sku, ++qty);
        if (r.status == 200 || error_mismatch(r, 409, "sold_out").empty()) {
          failover_s = std::chrono::duration<double>(clock::now() - killed).count();
          break;
        }
        --qty;
        std::this_thread::sleep_for(20ms);
      }
    }
    std::this_thread::sleep_for(2s);
    load.stop();
    REQUIRE_MESSAGE(failover_s.has_value(), "the dead node's SKU never answered again");
    MESSAGE("failover after kill -9: " << *failover_s << " s (goal < 3 s); outcomes: "
                                       << load.describe_outcomes());
    CHECK(*failover_s < 10.0); // generous: the figure itself is reported above and in the bench
    CHECK(acks_before > 0);
    CHECK(load.acks().size() > acks_before); // the cluster went on selling
    check_promises(a1, skus, load.acks());
    check_one_writer_per_epoch(c.nodes[0]->database_url());
    // The survivors own every shard.
    auto m = members_of(*c.nodes[0]);
    CHECK(m["n1"].second + m["n2"].second == 256);
  }

  TEST_CASE(
      "SIGSTOP of an owner past its lease: fenced when it wakes, nothing acknowledged twice") {
    cluster3 c;
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);
    api a1{*c.nodes[0]};
    const auto [skus, victim_sku] = one_hot_sku_per_node(a1, "pause", 150, "n3");
    auto& victim = c.by_id("n3");
    // Half the shoppers enter through the victim itself: requests stuck inside it while it is
    // stopped must not come out acknowledged after others took its shards.
    shoppers load{{c.nodes[0]->http_port(), c.nodes[1]->http_port(), victim.http_port()}, skus, 6};
    std::this_thread::sleep_for(1500ms);
    victim.signal(SIGSTOP);
    const auto stopped = clock::now();
    load.use_ports({c.nodes[0]->http_port(), c.nodes[1]->http_port()});
    // Someone else serves the victim's SKU once its lease ran out.
    bool taken_over = false;
    while (clock::now() - stopped < 20s) {
      auto st = a1.store().get("/api/v1/products/" + victim_sku);
      http_client adm{c.nodes[0]->admin_port(), 5s};
      auto s = adm.get("/admin/v1/products/" + victim_sku + "/stock");
      if (s.status == 200 && str_of(parse_json(s.body), "owner_node") != "n3") {
        taken_over = true;
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(1s);
    victim.signal(SIGCONT);
    std::this_thread::sleep_for(3s);
    load.stop();
    MESSAGE("outcomes: " << load.describe_outcomes());
    REQUIRE(taken_over);
    check_promises(a1, skus, load.acks());
    check_one_writer_per_epoch(c.nodes[0]->database_url());
    // The paused node came back as a member and serves again (forwarding or owning).
    api av{victim};
    const auto cart = av.create_cart();
    auto r = av.put_item(cart, victim_sku, 1);
    CHECK_MESSAGE((r.status == 200 || error_mismatch(r, 409, "sold_out").empty()), describe(r));
  }

  TEST_CASE("drain under load: every request succeeds and the drained node owns no shard") {
    cluster3 c;
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);
    api a1{*c.nodes[0]};
    const auto placed = skus_per_owner(a1, "drain", {"n1", "n2", "n3"}, 2, 100000);
    std::vector<std::string> skus;
    for (const auto& [sku, owner] : placed) {
      skus.push_back(sku);
    }
    auto& drained = c.by_id("n3");
    shoppers load{{c.nodes[0]->http_port(), c.nodes[1]->http_port(), drained.http_port()}, skus, 6};
    std::this_thread::sleep_for(1s);
    http_client adm{c.nodes[0]->admin_port(), 5s};
    auto r = adm.post("/admin/v1/nodes/n3/drain", "");
    REQUIRE_MESSAGE(r.status == 202, describe(r));
    check_error(adm.post("/admin/v1/nodes/nope/drain", ""), 404, "not_found");
    const auto deadline = clock::now() + 30s;
    int64_t left = -1;
    while (clock::now() < deadline) {
      auto m = members_of(*c.nodes[0]);
      left = m["n3"].second;
      if (m["n3"].first == "draining" && left == 0 && moves_under_way(*c.nodes[0]) == 0) {
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(1s);
    load.stop();
    MESSAGE("outcomes: " << load.describe_outcomes());
    CHECK(left == 0);
    CHECK(load.failures() == 0);
    CHECK(load.acks().size() > 0);
    check_promises(a1, skus, load.acks());
    // The drained node still answers (it forwards everything) and can now stop cleanly.
    api ad{drained};
    CHECK(ad.put_item(ad.create_cart(), skus[0], 1).status == 200);
    drained.stop();
    auto m = members_of(*c.nodes[0]);
    CHECK(m["n1"].second + m["n2"].second == 256);
  }

  TEST_CASE("join under load: shards move at the bounded rate and no request fails") {
    const std::vector<std::string> extra{"--cluster.max_moves=4"};
    cluster3 c{extra, false};
    wait_balanced(*c.nodes[0], {"n1", "n2"}, 120);
    api a1{*c.nodes[0]};
    const auto placed = skus_per_owner(a1, "join", {"n1", "n2"}, 3, 100000);
    std::vector<std::string> skus;
    for (const auto& [sku, owner] : placed) {
      skus.push_back(sku);
    }
    shoppers load{{c.nodes[0]->http_port(), c.nodes[1]->http_port()}, skus, 6};
    std::this_thread::sleep_for(1s);
    std::atomic<bool> watching{true};
    std::atomic<int> most_moving{0};
    std::thread watcher([&] {
      while (watching) {
        most_moving = std::max(most_moving.load(), moves_under_way(*c.nodes[0]));
        std::this_thread::sleep_for(20ms);
      }
    });
    c.add("n3", extra);
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80, 60s);
    watching = false;
    watcher.join();
    std::this_thread::sleep_for(500ms);
    load.stop();
    MESSAGE("most moves under way at once: " << most_moving.load()
                                             << "; outcomes: " << load.describe_outcomes());
    CHECK(most_moving.load() <= 4);
    CHECK(most_moving.load() >= 1); // the watcher saw the moves
    CHECK(load.failures() == 0);
    check_promises(a1, skus, load.acks());
    check_one_writer_per_epoch(c.nodes[0]->database_url());
  }

  TEST_CASE("drain and undrain from any node; the last serving member is not drained") {
    cluster3 c;
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);
    http_client adm{c.nodes[1]->admin_port(), 5s};
    // Every row carries its member's build version.
    auto rows = adm.get("/admin/v1/cluster");
    REQUIRE_MESSAGE(rows.status == 200, describe(rows));
    std::set<std::string> versions;
    const auto listed = parse_json(rows.body);
    for (const auto& n : array_of(listed, "nodes")) {
      versions.insert(str_of(n, "version"));
    }
    REQUIRE(versions.size() == 1);
    CHECK_FALSE(versions.begin()->empty());

    auto r = adm.post("/admin/v1/nodes/n3/drain", "");
    REQUIRE_MESSAGE(r.status == 202, describe(r));
    CHECK(r.body == R"({"node_id":"n3","status":"draining"})");
    auto deadline = clock::now() + 30s;
    while (clock::now() < deadline && members_of(*c.nodes[0])["n3"].second != 0) {
      std::this_thread::sleep_for(100ms);
    }
    auto m = members_of(*c.nodes[0]);
    REQUIRE(m["n3"].first == "draining");
    REQUIRE(m["n3"].second == 0);

    // Undrained (through another node), n3 gets shards back from the rebalancer.
    http_client adm3{c.nodes[2]->admin_port(), 5s};
    r = adm3.post("/admin/v1/nodes/n3/undrain", "");
    REQUIRE_MESSAGE(r.status == 202, describe(r));
    CHECK(r.body == R"({"node_id":"n3","status":"up"})");
    check_error(adm3.post("/admin/v1/nodes/nope/undrain", ""), 404, "not_found");
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);

    // Two of three drained: the third is the last member serving, and stays so.
    REQUIRE(adm.post("/admin/v1/nodes/n1/drain", "").status == 202);
    REQUIRE(adm.post("/admin/v1/nodes/n2/drain", "").status == 202);
    check_error(adm.post("/admin/v1/nodes/n3/drain", ""), 409, "conflict");
    m = members_of(*c.nodes[0]);
    deadline = clock::now() + 10s;
    while (clock::now() < deadline &&
           (m["n1"].first != "draining" || m["n2"].first != "draining")) {
      std::this_thread::sleep_for(100ms);
      m = members_of(*c.nodes[0]);
    }
    CHECK(m["n1"].first == "draining");
    CHECK(m["n2"].first == "draining");
    CHECK(m["n3"].first == "up");
    // Undrain one: now n3 may go.
    REQUIRE(adm.post("/admin/v1/nodes/n1/undrain", "").status == 202);
    r = adm.post("/admin/v1/nodes/n3/drain", "");
    CHECK_MESSAGE(r.status == 202, describe(r));
  }

  TEST_CASE("hot SKUs: holds placed show up with their rate and stock, from any node") {
    cluster3 c;
    wait_balanced(*c.nodes[0], {"n1", "n2", "n3"}, 80);
    api a1{*c.nodes[0]};
    a1.add_product({.sku = "hot-a", .name = "Hot A", .price_cents = 100}, 50);
    a1.add_product({.sku = "hot-b", .name = "Hot B", .price_cents = 100}, 50);
    const auto owner = owner_of(a1, "hot-a");
    // Six holds on hot-a and two on hot-b, placed through every node's storefront.
    for (int i = 0; i < 6; ++i) {
      api via{*c.nodes[static_cast<std::size_t>(i) % 3]};
      REQUIRE(via.put_item(via.create_cart(), "hot-a", 1).status == 200);
    }
    for (int i = 0; i < 2; ++i) {
      REQUIRE(a1.put_item(a1.create_cart(), "hot-b", 2).status == 200);
    }
    for (auto& n : c.nodes) {
      CAPTURE(n->node_id());
      http_client adm{n->admin_port(), 5s};
      auto r = adm.get("/admin/v1/hot-skus?limit=5");
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      const auto body = parse_json(r.body);
      CHECK(int_of(body, "window_s") == 10);
      CHECK(array_of(body, "nodes").size() == 3);
      CHECK(array_of(body, "errors").empty());
      const auto& items = array_of(body, "items");
      REQUIRE(items.size() == 2);
      const auto& hot = items[0];
      CHECK(str_of(hot, "sku") == "hot-a");
      CHECK(int_of(hot, "reservations") == 6);
      CHECK(std::get<double>(member(hot, "rate").get()) == doctest::Approx(0.6));
      CHECK(int_of(hot, "on_hand") == 50);
      CHECK(int_of(hot, "held") == 6);
      CHECK(int_of(hot, "sold") == 0);
      CHECK(int_of(hot, "available") == 44);
      CHECK(str_of(hot, "owner_node") == owner);
      CHECK(int_of(hot, "epoch") > 0);
      CHECK(str_of(items[1], "sku") == "hot-b");
      CHECK(int_of(items[1], "reservations") == 2);
      // Only the owner counts hot-a's holds.
      auto local = adm.get("/admin/v1/hot-skus?scope=local");
      REQUIRE_MESSAGE(local.status == 200, describe(local));
      CHECK((local.body.find("\"hot-a\"") != std::string::npos) == (n->node_id() == owner));
    }
    check_error(http_client{c.nodes[0]->admin_port(), 5s}.get("/admin/v1/hot-skus?limit=0"), 400,
                "bad_request");
  }
}

} // namespace surge::itest

namespace surge::itest {

// cluster.advertise (issue 18): a node bound to every address (as in a pod) registers the
// address its peers reach it at, and a wildcard storefront or admin bind is advertised with
// that host too (the admin fan-out reaches members at their admin_address).
TEST_SUITE("cluster_advertise") {

  TEST_CASE("bound to 0.0.0.0 and advertised as 127.0.0.1: two nodes form a cluster") {
    const std::vector<std::string> pod{"--cluster.host=0.0.0.0", "--cluster.insecure=true",
                                       "--cluster.advertise=127.0.0.1", "--http.host=0.0.0.0",
                                       "--admin.host=0.0.0.0"};
    auto c1 = cluster3::cfg("n1", nullptr, pod);
    c1.admin_token = "advertise-token";
    node_process n1{c1};
    auto c2 = cluster3::cfg("n2", &n1, pod);
    c2.admin_token = c1.admin_token;
    node_process n2{c2};
    api a1{n1};
    api a2{n2};
    // Both up, with shards, and nothing moving (bounded wait).
    const auto deadline = clock::now() + 40s;
    json::value view;
    while (true) {
      auto r = a1.admin().get("/admin/v1/cluster");
      REQUIRE_MESSAGE(r.status == 200, describe(r));
      view = parse_json(r.body);
      int up = 0;
      for (const auto& m : array_of(view, "nodes")) {
        up += str_of(m, "status") == "up" && int_of(m, "shards") >= 100 ? 1 : 0;
      }
      if (up == 2) {
        break;
      }
      REQUIRE_MESSAGE(clock::now() < deadline, "no balanced cluster in time: " << r.body);
      std::this_thread::sleep_for(100ms);
    }
    // Every address in the view is the advertised host, never the bind address.
    std::map<std::string, const node_process*> by_id{{"n1", &n1}, {"n2", &n2}};
    for (const auto& m : array_of(view, "nodes")) {
      const auto* n = by_id.at(str_of(m, "node_id"));
      CAPTURE(str_of(m, "node_id"));
      CHECK(str_of(m, "address") == "127.0.0.1:" + std::to_string(n->cluster_port()));
      CHECK(str_of(m, "http_address") == "127.0.0.1:" + std::to_string(n->http_port()));
      CHECK(str_of(m, "admin_address") == "127.0.0.1:" + std::to_string(n->admin_port()));
    }
    // Entities owned by either node answer through either storefront (over the cluster port).
    const auto skus = skus_per_owner(a1, "adv", {"n1", "n2"}, 2, 10);
    for (auto* via : {&a1, &a2}) {
      for (const auto& [sku, owner] : skus) {
        const auto cart = via->create_cart();
        auto r = via->put_item(cart, sku, 1);
        CHECK_MESSAGE(r.status == 200, describe(r));
      }
    }
    for (const auto& [sku, owner] : skus) {
      check_stock(a2.stock(sku), 10, 2, 0);
    }
    // The admin fan-out reaches the other member at its advertised admin address.
    auto hot = a2.admin().get("/admin/v1/hot-skus?limit=5");
    REQUIRE_MESSAGE(hot.status == 200, describe(hot));
    const auto body = parse_json(hot.body);
    CHECK(array_of(body, "nodes").size() == 2);
    CHECK(array_of(body, "errors").empty());
  }
}

} // namespace surge::itest
