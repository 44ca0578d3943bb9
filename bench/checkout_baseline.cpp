// The baseline of `checkout`: how a typical shop checks out. --clients threads, each with its own
// PostgreSQL connection, run per checkout one transaction that locks the stock rows of the cart's
// SKUs (SELECT ... FOR UPDATE, in SKU order), calls the payment gateway WHILE holding those locks,
// then decrements the stock and inserts the order. A hot SKU's row is therefore locked for at
// least one gateway round trip per checkout that contains it.

#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <pqxx/pqxx>
#include <unistd.h>

#include "common.hpp"
#include "surge/net/payments/gateway.hpp"

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

constexpr int64_t initial_qty = 1'000'000'000'000; // never sells out
constexpr auto gateway_timeout = 5s;

std::unique_ptr<pqxx::connection> connect_client(const std::string& url) {
  auto c = std::make_unique<pqxx::connection>(url);
  c->prepare("lock", "SELECT sku, qty, price_cents FROM bench_stock WHERE sku = ANY($1::text[]) "
                     "ORDER BY sku FOR UPDATE");
  c->prepare("take", "UPDATE bench_stock SET qty = qty - 1 WHERE sku = ANY($1::text[])");
  c->prepare("order", "INSERT INTO bench_orders(order_id, idempotency_key, status, total_cents, "
                      "currency, charge_id) VALUES ($1, $2, 'confirmed', $3, 'USD', $4)");
  c->prepare("lines", "INSERT INTO bench_order_lines(order_id, sku, qty, price_cents) "
                      "SELECT $1, s.sku, 1, s.price_cents FROM bench_stock s "
                      "WHERE s.sku = ANY($2::text[])");
  return c;
}

/// {a,b,c}: SKU names are [a-z0-9-], no quoting needed.
std::string array_literal(const std::vector<std::string>& skus) {
  std::string out = "{";
  for (std::size_t i = 0; i < skus.size(); ++i) {
    out += (i == 0 ? "" : ",") + skus[i];
  }
  return out + "}";
}

struct checkout_figures : client_figures {
  uint64_t charges = 0;                 ///< approved gateway calls
  std::map<std::string, int64_t> lines; ///< units per SKU of the committed checkouts
};

void client_loop(int id, const checkout_options& opts, const std::string& url,
                 std::unique_ptr<pqxx::connection> conn, net::payments::gateway& gw,
                 const phases& p, std::atomic<uint64_t>& measured, checkout_figures& out) {
  sku_picker picker{opts, 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(id + 1)};
  const std::string key_prefix =
      "base-" + std::to_string(::getpid()) + "-" + std::to_string(id) + "-";
  uint64_t n = 0;
  while (!interrupted().load(std::memory_order_relaxed) && clock::now() < p.measure_until) {
    if (!conn) {
      std::this_thread::sleep_for(100ms);
      try {
        conn = connect_client(url);
      } catch (const std::exception&) {
        continue;
      }
    }
    const auto skus = picker.next();
    const auto arr = array_literal(skus);
    const std::string key = key_prefix + std::to_string(n++);
    const std::string order_id = "bo_" + key;
    const auto t0 = clock::now();
    try {
      pqxx::work tx{*conn};
      const auto rows = tx.exec_prepared("lock", arr);
      if (rows.size() != skus.size()) {
        out.failed("lock found " + std::to_string(rows.size()) + " of " +
                   std::to_string(skus.size()) + " SKUs");
        continue; // rolls back
      }
      int64_t total = 0;
      bool sold_out = false;
      for (const auto& r : rows) {
        sold_out |= r[1].as<int64_t>() < 1;
        total += r[2].as<int64_t>();
      }
      if (sold_out) {
        out.failed("sold out");
        continue;
      }
      // The payment call, with the row locks held.
      actors::charge_request req{key, order_id, total, "USD", "tok_ok", {}};
      const auto a = gw.charge(req, gateway_timeout);
      if (a.kind != net::payments::attempt_kind::approved) {
        out.failed(std::string{"gateway: "} + net::payments::to_string(a.kind) + " " + a.message);
        continue;
      }
      ++out.charges;
      tx.exec_prepared("take", arr);
      tx.exec_prepared("order", order_id, key, total, a.charge_id);
      tx.exec_prepared("lines", order_id, arr);
      tx.commit();
      const auto t1 = clock::now();
      for (const auto& s : skus) {
        ++out.lines[s];
      }
      out.succeeded(p, t0, t1, measured);
    } catch (const std::exception& e) {
      out.failed(e.what());
      if (!conn->is_open()) {
        conn.reset();
      }
    }
  }
}

} // namespace

run_result run_checkout_baseline(const checkout_options& opts, const std::string& db_url,
                                 uint16_t gateway_port, checkout_extra& extra) {
  {
    pqxx::connection c{db_url};
    pqxx::work tx{c};
    tx.exec("CREATE TABLE bench_stock(sku text PRIMARY KEY, qty bigint NOT NULL, "
            "price_cents bigint NOT NULL)");
    tx.exec("CREATE TABLE bench_orders(order_id text PRIMARY KEY, idempotency_key text NOT NULL "
            "UNIQUE, status text NOT NULL, total_cents bigint NOT NULL, currency text NOT NULL, "
            "charge_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())");
    tx.exec("CREATE TABLE bench_order_lines(order_id text REFERENCES bench_orders, sku text NOT "
            "NULL, qty bigint NOT NULL, price_cents bigint NOT NULL, PRIMARY KEY (order_id, sku))");
    for (int i = 0; i < opts.skus; ++i) {
      tx.exec("INSERT INTO bench_stock VALUES (" + tx.quote(sku_picker::name_of(i)) + ", " +
              std::to_string(initial_qty) + ", " + std::to_string(sku_picker::price_of(i)) + ")");
    }
    tx.commit();
  }
  net::payments::gateway_spec spec{"alpha", net::payments::gateway_kind::form, "127.0.0.1",
                                   gateway_port};
  auto gw = net::payments::make_gateway(spec);

  std::vector<std::unique_ptr<pqxx::connection>> conns;
  std::vector<std::unique_ptr<checkout_figures>> figures;
  for (int i = 0; i < opts.clients; ++i) {
    conns.push_back(connect_client(db_url));
    figures.push_back(std::make_unique<checkout_figures>());
  }
  std::atomic<uint64_t> measured{0};
  const auto p = phases::starting_now(warmup_for(opts.duration), opts.duration);
  run_clients(opts.clients, "baseline", p, measured, "checkouts", [&](int i) {
    const auto k = static_cast<std::size_t>(i);
    client_loop(i, opts, db_url, std::move(conns[k]), *gw, p, measured, *figures[k]);
  });

  run_result res;
  res.system = "baseline (row locks across payment)";
  res.seconds = p.seconds();
  for (const auto& f : figures) {
    res.add(*f);
    extra.charges += f->charges;
    for (const auto& [sku, n] : f->lines) {
      extra.lines[sku] += n;
    }
  }
  // The stock of every SKU dropped by exactly the units of the committed checkouts.
  pqxx::connection c{db_url};
  pqxx::nontransaction tx{c};
  const auto orders = tx.exec("SELECT count(*) FROM bench_orders").at(0).at(0).as<int64_t>();
  std::string bad;
  int mismatches = 0;
  for (const auto& r : tx.exec("SELECT sku, qty FROM bench_stock ORDER BY sku")) {
    const auto sku = r[0].as<std::string>();
    const auto taken = initial_qty - r[1].as<int64_t>();
    const auto it = extra.lines.find(sku);
    const int64_t expected = it == extra.lines.end() ? 0 : it->second;
    if (taken != expected && mismatches++ == 0) {
      bad = sku + " dropped by " + std::to_string(taken) + ", ordered " + std::to_string(expected);
    }
  }
  // A failed checkout (sold out, gateway error or timeout, lost connection) rolled back: it is
  // reported, and only the accounting decides.
  if (res.errors > 0) {
    std::cerr << "[baseline] " << res.errors
              << " checkouts failed and rolled back, first: " << res.first_error << "\n";
  }
  if (mismatches > 0) {
    res.failure = "baseline: " + std::to_string(mismatches) + " SKUs off, e.g. " + bad;
  } else if (orders != static_cast<int64_t>(res.total_ok)) {
    res.failure = "baseline: " + std::to_string(orders) + " orders in PostgreSQL but " +
                  std::to_string(res.total_ok) + " checkouts committed";
  }
  return res;
}

} // namespace surge::bench
