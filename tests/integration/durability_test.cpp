// An acknowledged hold is durable: it survives kill -9 right after its 200, kill -9 in the
// middle of a burst, and a graceful stop; stock set by the admin survives too.
#include <doctest/doctest.h>

#include <regex>

#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"

namespace surge::itest {

namespace {

struct burst_result {
  std::vector<response> responses;
  std::map<std::string, std::string> acked; ///< cart id -> hold id of every 200
};

/// PUT {"qty":1} of `sku` into every cart at once; `signal()` runs on an I/O thread the moment
/// the `at`-th 200 arrives (e.g. node_process::signal_kill: the node dies mid-burst).
template <class Signal>
burst_result burst(api& a, const std::vector<std::string>& carts, const std::string& sku,
                   std::size_t at, Signal signal) {
  std::vector<request> puts;
  for (const auto& id : carts) {
    puts.push_back(json_request("PUT", "/api/v1/carts/" + id + "/items/" + sku, R"({"qty":1})"));
  }
  std::atomic<std::size_t> ok{0};
  burst_result out;
  out.responses = send_all(a.store_port(), puts, [&](std::size_t, const response& r) {
    if (r.status == 200 && ok.fetch_add(1) + 1 == at) {
      signal();
    }
  });
  for (std::size_t i = 0; i < carts.size(); ++i) {
    const auto& r = out.responses[i];
    if (r.status == 200) {
      const auto cart = parse_json(r.body);
      const auto* line = line_of(cart, sku);
      REQUIRE_MESSAGE(line != nullptr, "200 without the line: " << r.body);
      out.acked[carts[i]] = str_of(*line, "hold_id");
    }
  }
  return out;
}

/// Every acknowledged cart still has its line (qty 1) with the same hold id; returns how many
/// carts of `carts` have a line for `sku` at all.
std::size_t check_acked(api& a, const std::vector<std::string>& carts, const std::string& sku,
                        const std::map<std::string, std::string>& acked) {
  const auto back = a.get_carts(carts);
  std::size_t with_line = 0;
  std::size_t lost = 0;
  for (std::size_t i = 0; i < carts.size(); ++i) {
    REQUIRE_MESSAGE(back[i].status == 200, "GET cart " << carts[i] << ": " << describe(back[i]));
    const auto cart = parse_json(back[i].body);
    const auto* line = line_of(cart, sku);
    with_line += line != nullptr ? 1 : 0;
    auto it = acked.find(carts[i]);
    if (it == acked.end()) {
      continue;
    }
    const bool ok =
        line != nullptr && int_of(*line, "qty") == 1 && str_of(*line, "hold_id") == it->second;
    if (!ok && ++lost <= 5) {
      FAIL_CHECK("acknowledged cart " << carts[i] << " (hold " << it->second << ") reads back as "
                                      << back[i].body);
    }
  }
  CHECK_MESSAGE(lost == 0, lost << " acknowledged holds lost");
  return with_line;
}

} // namespace

TEST_SUITE("durability") {

  TEST_CASE("holds acknowledged just before kill -9 are all there after the restart") {
    constexpr std::size_t n = 300;
    node_process node;
    api a{node};
    a.add_product({.sku = "dur-a", .name = "Durable A", .price_cents = 700}, 1000);
    const auto carts = a.create_carts(n);

    // kill -9 from the I/O thread the moment the last 200 arrives.
    auto b = burst(a, carts, "dur-a", n, [&] { node.signal_kill(); });
    node.kill9();
    REQUIRE(b.acked.size() == n);

    node.start();
    check_stock(a.stock("dur-a"), 1000, static_cast<int64_t>(n), 0);
    CHECK(check_acked(a, carts, "dur-a", b.acked) == n);
    CHECK(int_of(a.product("dur-a"), "available") == 1000 - static_cast<int64_t>(n));

    // The node goes on from there: a new hold after the restart.
    const auto extra = a.create_cart();
    auto r = a.put_item(extra, "dur-a", 5);
    CHECK_MESSAGE(r.status == 200, describe(r));
    check_stock(a.stock("dur-a"), 1000, static_cast<int64_t>(n) + 5, 0);
  }

  TEST_CASE("kill -9 in the middle of a burst loses no acknowledged hold") {
    constexpr std::size_t n = 600;
    constexpr std::size_t kill_at = 150;
    node_process node;
    api a{node};
    a.add_product({.sku = "dur-b", .name = "Durable B", .price_cents = 700}, 1000);
    const auto carts = a.create_carts(n);

    auto b = burst(a, carts, "dur-b", kill_at, [&] { node.signal_kill(); });
    node.kill9();
    REQUIRE(b.acked.size() >= kill_at);
    MESSAGE(b.acked.size() << " of " << n << " PUTs acknowledged before the kill");
    for (const auto& r : b.responses) {
      // Nothing but a 200 or a dropped connection (no made-up answers while dying).
      CHECK_MESSAGE((r.status == 200 || r.status == 503 || r.status == 0), describe(r));
    }

    node.start();
    const auto st = a.stock("dur-b");
    const auto held = int_of(st, "held");
    CHECK(int_of(st, "on_hand") == 1000);
    CHECK(int_of(st, "sold") == 0);
    CHECK(int_of(st, "available") == 1000 - held);
    // Every acknowledged hold is there; a hold committed whose answer was lost may be too.
    CHECK(held >= static_cast<int64_t>(b.acked.size()));
    CHECK(held <= static_cast<int64_t>(n));
    const auto with_line = check_acked(a, carts, "dur-b", b.acked);
    CHECK(static_cast<int64_t>(with_line) <= held);
  }

  TEST_CASE("graceful stop keeps acknowledged holds; admin stock survives stop and kill -9") {
    constexpr std::size_t n = 200;
    node_process node;
    api a{node};
    a.add_product({.sku = "dur-c", .name = "Durable C", .price_cents = 700}, 500);
    a.put_product({.sku = "dur-d", .name = "Durable D", .price_cents = 100});
    const auto carts = a.create_carts(n);

    // SIGTERM the moment the last 200 arrives: a graceful stop.
    auto b = burst(a, carts, "dur-c", n, [&] { node.signal_term(); });
    node.stop();
    REQUIRE(b.acked.size() == n);
    node.start();
    check_stock(a.stock("dur-c"), 500, static_cast<int64_t>(n), 0);
    CHECK(check_acked(a, carts, "dur-c", b.acked) == n);

    // Stock changes acknowledged right before kill -9 and before a graceful stop.
    check_stock(a.set_stock("dur-d", 777), 777, 0, 0);
    node.kill9();
    node.start();
    check_stock(a.stock("dur-d"), 777, 0, 0);
    auto r = a.admin().post("/admin/v1/products/dur-d/stock", R"({"add":-7})");
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    check_stock(parse_json(r.body), 770, 0, 0);
    node.restart();
    check_stock(a.stock("dur-d"), 770, 0, 0);
    check_stock(a.stock("dur-c"), 500, static_cast<int64_t>(n), 0);
    CHECK(int_of(a.product("dur-d"), "available") == 770);

    // SIGTERM in the middle of a burst: what was acknowledged is kept.
    const auto more = a.create_carts(n);
    auto b2 = burst(a, more, "dur-c", n / 4, [&] { node.signal_term(); });
    node.stop();
    CHECK(b2.acked.size() >= n / 4);
    for (const auto& r : b2.responses) {
      // Answered, refused as unavailable, or cut off: never another error.
      CHECK_MESSAGE((r.status == 200 || r.status == 503 || r.status == 0), describe(r));
    }
    node.start();
    const auto held = int_of(a.stock("dur-c"), "held");
    CHECK(held >= static_cast<int64_t>(n + b2.acked.size()));
    CHECK(held <= static_cast<int64_t>(2 * n));
    check_acked(a, more, "dur-c", b2.acked);
    CHECK(check_acked(a, carts, "dur-c", b.acked) == n);
  }

  TEST_CASE("restarts rebuild the same stock from snapshots and journal") {
    for (const char* every : {"1", "7"}) {
      CAPTURE(every);
      node_process node{node_config{.extra = {std::string{"--sku.snapshot_every="} + every}}};
      api a{node};
      a.add_product(
          {.sku = "snap", .name = "Snapshots", .price_cents = 321, .per_customer_limit = 9}, 50);
      std::vector<std::string> carts;
      for (int i = 0; i < 12; ++i) {
        carts.push_back(a.create_cart("snap-customer-" + std::to_string(i % 5)));
      }
      // Holds of assorted sizes, then shrink, grow, release and delete some, and change stock.
      for (int i = 0; i < 12; ++i) {
        auto r = a.put_item(carts[i], "snap", i % 4 + 1);
        REQUIRE_MESSAGE(r.status == 200, describe(r));
      }
      for (int i = 0; i < 12; i += 3) {
        REQUIRE(a.put_item(carts[i], "snap", 1).status == 200);
      }
      REQUIRE(a.put_item(carts[1], "snap", 0).status == 200);
      REQUIRE(a.store().del("/api/v1/carts/" + carts[2] + "/items/snap").status == 200);
      REQUIRE(a.put_item(carts[4], "snap", 3).status == 200);
      REQUIRE(a.admin().post("/admin/v1/products/snap/stock", R"({"add":5})").status == 200);
      REQUIRE(
          a.put_product(
               {.sku = "snap", .name = "Snapshots 2", .price_cents = 400, .per_customer_limit = 9})
              .is_object());

      // Everything but the lease epoch in the stock: each restart is a new incarnation of the
      // member, which takes its shards back at a new epoch.
      auto state = [&] {
        std::string out =
            std::regex_replace(json::serialize(a.stock("snap")), std::regex{R"("epoch":\d+)"}, "") +
            json::serialize(a.product("snap"));
        for (const auto& c : carts) {
          out += json::serialize(a.cart(c));
        }
        return out;
      };
      const auto before = state();
      int64_t held_in_carts = 0;
      for (const auto& c : carts) {
        const auto cart = a.cart(c);
        if (const auto* line = line_of(cart, "snap")) {
          held_in_carts += int_of(*line, "qty");
        }
      }
      check_stock(a.stock("snap"), 55, held_in_carts, 0);

      node.kill9();
      node.start();
      CHECK(state() == before);
      node.restart();
      CHECK(state() == before);
      // The limit still counts the holds it had: customer 0 has carts 0, 5, 10.
      const auto c0 = a.create_cart("snap-customer-0");
      int64_t customer0 = 0;
      for (int i : {0, 5, 10}) {
        customer0 += int_of(line_at(a.cart(carts[i]), "snap"), "qty");
      }
      check_error(a.put_item(c0, "snap", 9 - customer0 + 1), 409, "limit_exceeded");
      CHECK(a.put_item(c0, "snap", 9 - customer0).status == 200);
    }
  }

  TEST_CASE("a repeated PUT is not acknowledged before the hold it reports is durable") {
    // Fault injection: a transaction of the test holds the journal table locked, so the node's
    // commit of the first PUT waits. A second, identical PUT of the same line must not be answered
    // 200 with that hold before it is durable: after kill -9 an acknowledged hold must be there.
    node_process node;
    api a{node};
    a.add_product({.sku = "rep", .name = "Repeated", .price_cents = 700}, 10);
    const auto cart = a.create_cart();
    const std::string item = "/api/v1/carts/" + cart + "/items/rep";

    pqxx::connection pg{node.database_url()};
    pqxx::work lock{pg};
    lock.exec("LOCK TABLE sku_journal IN EXCLUSIVE MODE");

    response first;
    std::thread t{[&] {
      http_client c{node.http_port(), std::chrono::seconds{15}};
      first = c.put(item, R"({"qty":1})");
    }};
    // Wait (bounded) until the node's commit waits for the lock.
    REQUIRE_MESSAGE(wait_for_lock_waiter(node.database_url()),
                    "the node's journal commit never waited for the test's lock");
    pqxx::connection probe{node.database_url()};

    http_client second_client{node.http_port(), std::chrono::seconds{2}};
    const auto second = second_client.put(item, R"({"qty":1})");
    node.kill9();
    // The node died before its commit: end the transaction it left waiting, then unlock.
    {
      pqxx::nontransaction q{probe};
      q.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE datname = current_database() AND wait_event_type = 'Lock'");
    }
    lock.abort();
    t.join();

    node.start();
    const auto stock = a.stock("rep");
    const auto after = a.cart(cart);
    INFO("second PUT: " << describe(second) << "\nfirst PUT: " << describe(first)
                        << "\nafter restart: " << json::serialize(stock) << " "
                        << json::serialize(after));
    if (second.status == 200) {
      // Acknowledged: the hold must have survived.
      const auto acked = parse_json(second.body);
      CHECK(int_of(stock, "held") == 1);
      const auto* line = line_of(after, "rep");
      CHECK(line != nullptr);
      if (line != nullptr) {
        CHECK(str_of(*line, "hold_id") == str_of(line_at(acked, "rep"), "hold_id"));
      }
    }
    // Whatever was answered: a line in the cart is backed by a hold.
    const int64_t in_cart =
        line_of(after, "rep") != nullptr ? int_of(line_at(after, "rep"), "qty") : 0;
    CHECK(in_cart <= int_of(stock, "held"));
  }

} // TEST_SUITE

} // namespace surge::itest
