// `surge-bench checkout`: whole checkouts with a payment, Surge vs. the typical shop, in one
// invocation. Starts surge-paysim as a child process (one gateway with a fixed latency), runs the
// baseline and then Surge against it, checks both, prints the table and the ratio.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "common.hpp"
#include "surge/config/settings.hpp"
#include "surge/tools/process.hpp"

#ifndef SURGE_PAYSIM_BINARY
#define SURGE_PAYSIM_BINARY "surge-paysim"
#endif

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

constexpr const char* checkout_usage =
    R"(usage: surge-bench checkout [flags]

Whole checkouts with a card payment through surge-paysim (started here, one gateway with
--gateway-latency-ms per call), back to back, each system after a warm-up of min(1s, D/2):

  baseline  the typical shop: --clients threads, each on its own PostgreSQL connection, per
            checkout one transaction: SELECT qty ... WHERE sku = ANY($1) ORDER BY sku FOR UPDATE;
            the gateway call (form style POST /v1/charges with Idempotency-Key) while holding
            the row locks; UPDATE bench_stock SET qty = qty - 1 ...; INSERT the order and its
            lines; COMMIT. Timed: BEGIN -> COMMIT.
  Surge     in-process as surge-node wires it (SKU, cart and order actors, commit queue, order
            store pool, payment router): --concurrency shopper flows, each creates a cart, adds
            1-3 SKUs (holds), checks out (checkout_atom to the order actor). Timed: the checkout
            request only (send -> confirmed order).

Both pick 1-3 distinct SKUs of a --skus catalog, one unit each, --hot-percent of the picks from
the first --hot-skus SKUs. Checks: baseline stock dropped by exactly the committed units; Surge
has one confirmed order in PostgreSQL per 201 reply, and every SKU's sold equals the units of
those orders (and PostgreSQL's order lines agree). FAIL -> exit 1.

flags:
  --pg-url=URL              admin URL; a database surge_bench_<pid> is created and dropped
                            (default $SURGE_TEST_PG_URL, else postgresql://surge@127.0.0.1:5432/postgres)
  --redis-url=URL           (default $SURGE_TEST_REDIS_URL, else redis://127.0.0.1:6379/0); keys use prefix surge_bench:<pid>:
  --duration=D              measured time per system, 1s..600s (default 10s)
  --clients=N               baseline connections, 1..512 (default 16)
  --concurrency=N           Surge checkouts in flight, 1..10000 (default 64)
  --gateway-latency-ms=N    paysim latency per charge, 0..10000 (default 20)
  --skus=N                  catalog size, 4..100000 (default 200)
  --hot-skus=N              hot SKUs, 0..skus-3 (default 5)
  --hot-percent=N           share of picks from the hot SKUs, 0..100 (default 20)
  --paysim=PATH             the surge-paysim binary (default: the one built with this tree)
  --json=FILE               also write the figures as JSON to FILE
  --help                    this text

exit status: 0 ok, 1 a check failed (FAIL) or set-up failed, 2 bad flags
)";

std::optional<checkout_options> parse_checkout(const std::vector<std::string>& args) {
  checkout_options o;
  o.paysim_path = SURGE_PAYSIM_BINARY;
  const auto flags =
      storage_flags(o, {int_flag("clients", o.clients, 1, 512),
                        int_flag("concurrency", o.concurrency, 1, 10000),
                        int_flag("gateway-latency-ms", o.gateway_latency_ms, 0, 10000),
                        int_flag("skus", o.skus, 4, 100000),
                        int_flag("hot-skus", o.hot_skus, 0, 100000),
                        int_flag("hot-percent", o.hot_percent, 0, 100),
                        {"paysim", cli::takes::value, cli::assign(o.paysim_path)},
                        json_flag(o)});
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  if (o.hot_skus > o.skus - 3) {
    throw bad_flag("--hot-skus must leave at least 3 other SKUs (at most --skus - 3)");
  }
  return o;
}

/// surge-paysim as a child process: one gateway "alpha" on a free loopback port. In its own
/// process group: Ctrl-C stops the bench, which stops paysim.
class paysim_process {
 public:
  paysim_process(const std::string& path, int latency_ms)
      : log_path_("/tmp/surge_bench_paysim_" + std::to_string(::getpid()) + ".log") {
    if (::access(path.c_str(), X_OK) != 0) {
      throw std::runtime_error("cannot execute surge-paysim at " + path +
                               " (build it: cmake --build build --target surge-paysim)");
    }
    tools::child_spec spec;
    spec.argv = {path, "--gateways=alpha=127.0.0.1:0",
                 "--latency-ms=" + std::to_string(latency_ms)};
    spec.log_path = log_path_;
    spec.truncate_log = true;
    spec.own_process_group = true;
    proc_.start(spec);
    const std::string marker = "paysim: alpha listening on 127.0.0.1:";
    const auto deadline = clock::now() + 10s;
    while (port_ == 0) {
      std::ifstream f{log_path_};
      for (std::string line; std::getline(f, line);) {
        if (const auto at = line.find(marker); at != std::string::npos) {
          port_ = static_cast<uint16_t>(std::stoi(line.substr(at + marker.size())));
        }
      }
      if (port_ == 0 && proc_.wait(0ms)) {
        throw std::runtime_error("surge-paysim exited at start:\n" + tools::read_file(log_path_));
      }
      if (port_ == 0 && clock::now() > deadline) {
        stop();
        throw std::runtime_error("surge-paysim did not start within 10 s:\n" +
                                 tools::read_file(log_path_));
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  ~paysim_process() {
    stop();
    std::remove(log_path_.c_str());
  }
  paysim_process(const paysim_process&) = delete;
  paysim_process& operator=(const paysim_process&) = delete;

  uint16_t port() const { return port_; }

  void stop() { proc_.stop(5s); }

 private:
  std::string log_path_;
  tools::child proc_;
  uint16_t port_ = 0;
};

void print_checkout_table(const run_result& base, const run_result& surge, const checkout_extra& be,
                          const checkout_extra& se) {
  print_comparison(base, surge, "checkouts/s", "checkouts");
  auto units = [](const checkout_extra& e) {
    int64_t n = 0;
    for (const auto& [sku, q] : e.lines) {
      n += q;
    }
    return n;
  };
  std::cout << "check: baseline " << grouped(base.total_ok) << " orders, "
            << grouped(static_cast<uint64_t>(units(be))) << " units, " << grouped(be.charges)
            << " charges; Surge " << grouped(surge.total_ok) << " replies, " << se.orders_confirmed
            << " confirmed in PostgreSQL, " << grouped(static_cast<uint64_t>(units(se)))
            << " units sold\n";
}

void write_json(const checkout_options& opts, const run_result& base, const run_result& surge,
                bool ok) {
  const double ratio = base.per_second() > 0 ? surge.per_second() / base.per_second() : 0;
  std::ostringstream members;
  members << ",\n  \"duration_s\": "
          << fixed(std::chrono::duration<double>(opts.duration).count(), 3)
          << ",\n  \"clients\": " << opts.clients << ",\n  \"concurrency\": " << opts.concurrency
          << ",\n  \"gateway_latency_ms\": " << opts.gateway_latency_ms
          << ",\n  \"skus\": " << opts.skus << ",\n  \"hot_skus\": " << opts.hot_skus
          << ",\n  \"hot_percent\": " << opts.hot_percent
          << ",\n  \"hardware_threads\": " << std::thread::hardware_concurrency()
          << ",\n  \"baseline\": " << json_of(base, "checkouts_per_s", true)
          << ",\n  \"surge\": " << json_of(surge, "checkouts_per_s", true)
          << ",\n  \"ratio\": " << fixed(ratio, 2);
  write_json_file(opts.json_path, "checkout", members.str(), ok);
}

int run_checkout(const checkout_options& opts) {
  const std::string redis_prefix = "surge_bench:" + std::to_string(::getpid()) + ":";
  run_result base;
  run_result surge;
  checkout_extra base_extra;
  checkout_extra surge_extra;
  {
    paysim_process paysim{opts.paysim_path, opts.gateway_latency_ms};
    bench_db db{opts.pg_admin_url};
    std::cerr << "surge-bench checkout: database " << db.url()
              << ", paysim on 127.0.0.1:" << paysim.port() << " (" << opts.gateway_latency_ms
              << " ms per charge), " << opts.skus << " SKUs (" << opts.hot_percent
              << " % of picks on " << opts.hot_skus << " hot), " << opts.clients
              << " baseline clients, " << opts.concurrency << " Surge checkouts in flight, "
              << std::chrono::duration<double>(opts.duration).count() << " s each after "
              << std::chrono::duration<double>(warmup_for(opts.duration)).count() << " s warm-up\n";
    base = run_checkout_baseline(opts, db.url(), paysim.port(), base_extra);
    if (!interrupted().load()) {
      with_redis_prefix(opts.redis_url, redis_prefix, [&] {
        surge = run_checkout_surge(opts, db.url(), redis_prefix, paysim.port(), surge_extra);
      });
    }
  }
  if (interrupted().load()) {
    std::cerr << "surge-bench: interrupted\n";
    return 1;
  }
  print_checkout_table(base, surge, base_extra, surge_extra);
  const bool ok = print_verdict(
      base, surge, "every acknowledged checkout is confirmed and accounted for in the stock");
  if (!opts.json_path.empty()) {
    write_json(opts, base, surge, ok);
  }
  return ok ? 0 : 1;
}

} // namespace

sku_picker::sku_picker(const checkout_options& o, uint64_t seed)
    : skus_(o.skus)
    , hot_(o.hot_skus)
    , hot_percent_(o.hot_percent)
    , state_(seed) {}

uint64_t sku_picker::rand() {
  // splitmix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<std::string> sku_picker::next() {
  const auto n = 1 + rand() % 3;
  std::vector<int> picked;
  // After 64 tries only cold SKUs: fewer than 3 hot ones at 100 % cannot fill 3 lines.
  for (int tries = 0; picked.size() < n; ++tries) {
    int i = 0;
    if (hot_ > 0 && tries < 64 && static_cast<int>(rand() % 100) < hot_percent_) {
      i = static_cast<int>(rand() % static_cast<uint64_t>(hot_));
    } else {
      i = hot_ + static_cast<int>(rand() % static_cast<uint64_t>(skus_ - hot_));
    }
    if (std::find(picked.begin(), picked.end(), i) == picked.end()) {
      picked.push_back(i);
    }
  }
  std::vector<std::string> out;
  for (int i : picked) {
    out.push_back(name_of(i));
  }
  return out;
}

std::string sku_picker::name_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sku-%05d", i);
  return buf;
}

int checkout_command(const std::vector<std::string>& args) {
  return guarded("checkout", checkout_usage, "surge-bench checkout --help", args, parse_checkout,
                 run_checkout);
}

} // namespace surge::bench
