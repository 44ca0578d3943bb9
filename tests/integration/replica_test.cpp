// Catalog reads from a read replica (pg.read_urls): a node under listing load keeps answering,
// from the primary, while its replica is stopped, and goes back to the replica once it is up.
// The test makes a replica of its own (scripts/services.sh replica add, removed at the end), so
// that stopping it disturbs no other test.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "api.hpp"
#include "surge/tools/process.hpp"

namespace surge::itest {

namespace {

/// The port of SURGE_TEST_PG_URL's server (services.sh's SURGE_PG_PORT).
std::string primary_port() {
  static const std::regex port_re{R"(^postgres(?:ql)?://[^/?]*:(\d+)(?:[/?]|$))"};
  std::smatch m;
  const auto url = surge::test::test_pg_admin_url();
  REQUIRE_MESSAGE(std::regex_search(url, m, port_re), "no port in SURGE_TEST_PG_URL " << url);
  return m[1].str();
}

/// `scripts/services.sh replica ARGS...` for the test server; REQUIREs exit status 0 and
/// returns what it printed.
std::string services_replica(const std::vector<std::string>& args) {
  tools::child_spec spec;
  spec.argv = {std::string{SURGE_SOURCE_DIR} + "/scripts/services.sh", "replica"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = tools::environment();
  spec.env->push_back("SURGE_PG_PORT=" + primary_port());
  auto r = tools::run(spec, std::chrono::seconds{120}, true);
  REQUIRE_MESSAGE(r.status == 0, "services.sh replica " << args[0] << ": " << r.out);
  return r.out;
}

/// A streaming replica of the test server made for this test; removed on destruction.
struct own_replica {
  std::string number;
  std::string url; ///< postgresql://surge@127.0.0.1:PORT/surge

  own_replica() {
    const auto out = services_replica({"add"});
    static const std::regex line_re{R"(replica (\d+): (postgresql://\S+))"};
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_search(out, m, line_re), "no replica URL in: " << out);
    number = m[1].str();
    url = m[2].str();
  }
  ~own_replica() {
    tools::child_spec spec;
    spec.argv = {std::string{SURGE_SOURCE_DIR} + "/scripts/services.sh", "replica", "remove",
                 number};
    spec.env = tools::environment();
    spec.env->push_back("SURGE_PG_PORT=" + primary_port());
    try {
      auto r = tools::run(spec, std::chrono::seconds{120}, true);
      if (r.status != 0) {
        std::fprintf(stderr, "services.sh replica remove %s: %s\n", number.c_str(), r.out.c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "services.sh replica remove %s: %s\n", number.c_str(), e.what());
    }
  }
};

/// Connections the node's database has open on the replica at `url` (another database's URL
/// form; `db` names the node's).
int replica_backends(const std::string& url, const std::string& db) {
  try {
    pqxx::connection c{surge::test::pg_url_with_database(url, "postgres")};
    pqxx::nontransaction tx{c};
    return tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db)[0]
        .as<int>();
  } catch (...) {
    return 0;
  }
}

std::vector<std::string> listed_skus(const response& r) {
  std::vector<std::string> out;
  const auto body = parse_json(r.body);
  for (const auto& it : array_of(body, "items")) {
    out.push_back(str_of(it, "sku"));
  }
  return out;
}

/// Until the node reads from the replica (its backends show there), listing meanwhile; bounded.
void await_replica_reads(api& a, const std::string& replica_url, const std::string& db) {
  for (int i = 0; i < 400; ++i) {
    if (replica_backends(replica_url, db) > 0) {
      return;
    }
    auto r = a.store().get("/api/v1/products");
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  FAIL("the node never read from its replica " << replica_url);
}

} // namespace

TEST_SUITE("replica") {
  TEST_CASE("replica: listings keep answering while the replica stops and starts") {
    if (surge::test::test_pg_replica_url().empty()) {
      MESSAGE("SURGE_TEST_PG_REPLICA_URL is not set: replica test skipped (scripts/test.sh sets "
              "it; scripts/services.sh starts replicas)");
      return;
    }
    own_replica replica;
    node_config cfg;
    cfg.read_replicas = {replica.url};
    // Every listing reads the catalog (no page cache); replicas are probed every 200 ms.
    cfg.extra = {"--http.page_cache=0", "--pg.max_replica_lag=2s"};
    node_process node{cfg};
    api a{node};
    std::vector<std::string> expected;
    for (int i = 1; i <= 5; ++i) {
      product_spec p;
      p.sku = "rep-" + std::to_string(i);
      p.name = "Replica item " + std::to_string(i);
      p.category = "replicas";
      p.price_cents = 100 * i;
      a.put_product(p);
      expected.push_back(p.sku);
    }
    await_replica_reads(a, replica.url, node.database());
    std::string baseline; // the listing's body: the same from the replica and the primary
    {
      auto r = a.store().get("/api/v1/products");
      REQUIRE(r.status == 200);
      REQUIRE(listed_skus(r) == expected);
      baseline = r.body;
    }

    // Load: 4 connections listing until told to stop (each at most 20000 requests). No doctest
    // assertion on these threads: failures are collected and checked after the join.
    std::mutex mtx;
    std::condition_variable cv;
    std::size_t done = 0;
    std::vector<std::string> failures;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&] {
        http_client client{node.http_port()};
        for (int i = 0; i < 20000 && !stop.load(); ++i) {
          auto r = client.get("/api/v1/products");
          std::string failure;
          if (r.status != 200) {
            failure = "status " + std::to_string(r.status) + " " + r.error + " " + r.body;
          } else if (r.body != baseline) {
            failure = "another listing: " + r.body;
          }
          std::lock_guard<std::mutex> guard{mtx};
          ++done;
          if (!failure.empty() && failures.size() < 5) {
            failures.push_back(failure);
          }
          cv.notify_all();
        }
      });
    }
    // Waits until `n` more listings were answered (bounded).
    auto answered = [&](std::size_t n) {
      std::unique_lock<std::mutex> lock{mtx};
      const auto target = done + n;
      return cv.wait_for(lock, std::chrono::seconds{60}, [&] { return done >= target; });
    };
    CHECK(answered(200));
    services_replica({"stop", replica.number}); // mid-load
    CHECK(answered(400));
    services_replica({"start", replica.number});
    CHECK(answered(200));
    stop = true;
    for (auto& t : clients) {
      t.join();
    }
    CHECK_MESSAGE(failures.empty(), failures.size() << " failed listings, e.g. "
                                                    << (failures.empty() ? "" : failures[0]));
    // Back on the replica once it is up again.
    await_replica_reads(a, replica.url, node.database());
    // The node's metrics saw both servers answer.
    CHECK(a.metric(R"(surge_catalog_reads_total{target="replica1"})") > 0);
    CHECK(a.metric(R"(surge_catalog_reads_total{target="primary"})") > 0);
  }
} // TEST_SUITE

} // namespace surge::itest
