// The baseline of `hot-sku`: what a typical shop does. One row per SKU with a quantity, and
// every reservation is one autocommit UPDATE (one durable transaction) from one of --clients
// threads, each with its own connection. All of them contend for the same row.

#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "common.hpp"

namespace surge::bench {

namespace {

constexpr int64_t initial_qty = 1'000'000'000'000'000; // never sells out
constexpr const char* hot_sku = "HOT";

/// A connection of one client: the table lives in schema `baseline` (the Surge schema of the
/// same database has its own `stock` table), so the statement reads exactly like a shop's.
std::unique_ptr<pqxx::connection> connect_client(const std::string& url) {
  auto c = std::make_unique<pqxx::connection>(url);
  {
    pqxx::nontransaction tx{*c};
    tx.exec("SET search_path = baseline");
  }
  c->prepare("reserve", "UPDATE stock SET qty = qty - 1 WHERE sku = $1 AND qty > 0");
  return c;
}

void client_loop(const std::string& url, std::unique_ptr<pqxx::connection> conn, const phases& p,
                 std::atomic<uint64_t>& measured, client_figures& out) {
  while (!interrupted().load(std::memory_order_relaxed) && clock::now() < p.measure_until) {
    if (!conn) {
      // Reconnect after a broken connection, at most ten times a second.
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
      try {
        conn = connect_client(url);
      } catch (const std::exception&) {
        continue;
      }
    }
    const auto t0 = clock::now();
    try {
      pqxx::nontransaction tx{*conn};
      const auto r = tx.exec_prepared("reserve", hot_sku);
      const auto t1 = clock::now();
      if (r.affected_rows() != 1) {
        ++out.errors; // sold out: cannot happen with initial_qty
        continue;
      }
      out.succeeded(p, t0, t1, measured);
    } catch (const std::exception&) {
      ++out.errors;
      if (!conn->is_open()) {
        conn.reset();
      }
    }
  }
}

} // namespace

run_result run_baseline(const hot_sku_options& opts, const std::string& db_url) {
  {
    pqxx::connection c{db_url};
    pqxx::nontransaction tx{c};
    tx.exec("CREATE SCHEMA baseline");
    tx.exec("CREATE TABLE baseline.stock(sku text PRIMARY KEY, qty bigint NOT NULL)");
    tx.exec("INSERT INTO baseline.stock VALUES (" + tx.quote(hot_sku) + ", " +
            std::to_string(initial_qty) + ")");
  }
  // Every client connects before the clock starts.
  std::vector<std::unique_ptr<pqxx::connection>> conns;
  for (int i = 0; i < opts.clients; ++i) {
    conns.push_back(connect_client(db_url));
  }
  std::vector<std::unique_ptr<client_figures>> figures;
  for (int i = 0; i < opts.clients; ++i) {
    figures.push_back(std::make_unique<client_figures>());
  }

  std::atomic<uint64_t> measured{0};
  const auto p = phases::starting_now(warmup_for(opts.duration), opts.duration);
  run_clients(opts.clients, "baseline", p, measured, "reservations", [&](int i) {
    const auto k = static_cast<std::size_t>(i);
    client_loop(db_url, std::move(conns[k]), p, measured, *figures[k]);
  });

  run_result res;
  res.system = "baseline (PostgreSQL UPDATE)";
  res.seconds = p.seconds();
  for (const auto& f : figures) {
    res.add(*f);
  }
  // Every successful UPDATE took exactly one unit.
  pqxx::connection c{db_url};
  pqxx::nontransaction tx{c};
  const auto qty = tx.exec("SELECT qty FROM baseline.stock WHERE sku = " + tx.quote(hot_sku))
                       .at(0)
                       .at(0)
                       .as<int64_t>();
  if (initial_qty - qty != static_cast<int64_t>(res.total_ok)) {
    res.failure = "baseline: qty dropped by " + std::to_string(initial_qty - qty) + " but " +
                  std::to_string(res.total_ok) + " updates succeeded";
  }
  return res;
}

} // namespace surge::bench
