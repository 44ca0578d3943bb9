#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

#include "surge/config/settings.hpp"
#include "surge/tools/cli.hpp"
#include "surge/tools/histogram.hpp"
#include "surge/tools/text.hpp"

namespace surge::bench {

using tools::histogram;

/// The default of --pg-url / --redis-url: the test suite's servers when scripts/test.sh set
/// SURGE_TEST_PG_URL / SURGE_TEST_REDIS_URL (so the ctest smoke runs use them), else the local
/// defaults of scripts/services.sh.
inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string{v} : std::string{fallback};
}

/// surge-node's settings: defaults with SURGE_* environment variables applied, as the node
/// applies them (SURGE_BENCH_* are the bench's own). Throws std::runtime_error when invalid.
inline config::node_options node_settings() {
  auto loaded = config::load({}, config::process_environment(), {"SURGE_BENCH_"});
  if (auto* err = std::get_if<config::load_error>(&loaded)) {
    throw std::runtime_error("cannot load the node settings: " + err->message);
  }
  return std::get<config::invocation>(loaded).options;
}

/// The node's settings pointed at the bench's database, Redis prefix and gateways, as member
/// `node_id` of the bench's cluster. Holds must outlive the longest run: an expiry would change
/// `held` under the checks.
inline config::node_options bench_node_options(config::node_options opts, std::string pg_url,
                                               std::string redis_url, std::string redis_prefix,
                                               std::string gateways,
                                               std::string node_id = "bench") {
  opts.node_id = std::move(node_id);
  opts.cluster_port = 0; // any free port: several instances may run side by side
  opts.pg_url = std::move(pg_url);
  opts.redis_url = std::move(redis_url);
  opts.redis_prefix = std::move(redis_prefix);
  opts.payments_gateways = std::move(gateways);
  opts.holds_ttl = std::max<std::chrono::milliseconds>(opts.holds_ttl,
                                                       std::chrono::milliseconds{2 * 600 * 1000});
  return opts;
}

using clock = std::chrono::steady_clock;

/// Longest --duration accepted; every loop of the tool is bounded by it.
constexpr std::chrono::seconds max_duration{600};

/// Set by SIGINT/SIGTERM: every loop stops early and the tool still cleans up.
std::atomic<bool>& interrupted();

/// Settings of `surge-bench hot-sku`.
struct hot_sku_options {
  std::string pg_admin_url =
      env_or("SURGE_TEST_PG_URL", "postgresql://surge@127.0.0.1:5432/postgres");
  std::string redis_url = env_or("SURGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
  std::chrono::milliseconds duration{10000};
  int clients = 16;
  int concurrency = 1000;
  std::string json_path; ///< empty: no JSON
};

/// When a run warms up and when it measures: [warm_from, measure_from) is warm-up,
/// [measure_from, measure_until) is measured.
struct phases {
  clock::time_point warm_from;
  clock::time_point measure_from;
  clock::time_point measure_until;

  static phases starting_now(std::chrono::milliseconds warmup, std::chrono::milliseconds run) {
    phases p;
    p.warm_from = clock::now();
    p.measure_from = p.warm_from + warmup;
    p.measure_until = p.measure_from + run;
    return p;
  }
  bool measured(clock::time_point t) const { return t >= measure_from && t < measure_until; }
  double seconds() const {
    return std::chrono::duration<double>(measure_until - measure_from).count();
  }
};

/// The warm-up before each system: a second, or half the duration when that is shorter.
inline std::chrono::milliseconds warmup_for(std::chrono::milliseconds duration) {
  return std::min(std::chrono::milliseconds{1000}, duration / 2);
}

/// What one client (a load thread or a driver actor) counted; merged into its run_result at the
/// end (run_result::add).
struct client_figures {
  histogram latency;       ///< nanoseconds, measured window only
  uint64_t ok = 0;         ///< successful operations over the whole run
  uint64_t errors = 0;     ///< failed ones
  uint64_t measured = 0;   ///< successful operations completed in the measured window
  std::string first_error; ///< "" when none failed

  /// One success that ran from `t0` to `t1`: counted; when it ended in `p`'s measured window, its
  /// latency is recorded and `progress` (report_progress's counter) advances.
  void succeeded(const phases& p, clock::time_point t0, clock::time_point t1,
                 std::atomic<uint64_t>& progress) {
    ++ok;
    if (p.measured(t1)) {
      ++measured;
      latency.record(static_cast<uint64_t>((t1 - t0).count()));
      progress.fetch_add(1, std::memory_order_relaxed);
    }
  }

  /// `n` failures; `what` becomes the first error unless there is one.
  void failed(const std::string& what, uint64_t n = 1) {
    errors += n;
    if (first_error.empty()) {
      first_error = what;
    }
  }
};

/// Figures of one system.
struct run_result {
  std::string system;
  uint64_t measured = 0;   ///< successful reservations completed in the measured window
  uint64_t total_ok = 0;   ///< successful reservations over the whole run (warm-up and drain too)
  uint64_t errors = 0;     ///< failed requests over the whole run
  double seconds = 0;      ///< length of the measured window
  histogram latency;       ///< nanoseconds, measured window only
  std::string failure;     ///< non-empty: the correctness check failed (why)
  std::string first_error; ///< the first error of the first client that had one

  double per_second() const { return seconds > 0 ? static_cast<double>(measured) / seconds : 0; }
  double p_ms(double p) const { return static_cast<double>(latency.percentile(p)) / 1e6; }

  /// Adds what one client counted.
  void add(const client_figures& f) {
    latency.merge(f.latency);
    total_ok += f.ok;
    errors += f.errors;
    measured += f.measured;
    if (first_error.empty()) {
      first_error = f.first_error;
    }
  }
};

/// Prints a progress line on stderr every second from `p.warm_from` until `p.measure_until`
/// (or an interruption): elapsed measured time, reservations/s so far and in the last second.
/// `measured` counts the reservations completed in the measured window so far.
/// `unit` names what is counted ("reservations", "checkouts").
void report_progress(const std::string& label, const phases& p,
                     const std::atomic<uint64_t>& measured,
                     const std::string& unit = "reservations");

/// Runs `client(i)` for i in [0, n) on a thread each, prints progress as `label` until `p`'s
/// measured window ends (report_progress), then joins them.
template <class Client>
void run_clients(int n, const std::string& label, const phases& p,
                 const std::atomic<uint64_t>& measured, const std::string& unit, Client client) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&client, i] { client(i); });
  }
  report_progress(label, p, measured, unit);
  for (auto& t : threads) {
    t.join();
  }
}

/// The two systems of `hot-sku`. Both throw std::runtime_error on set-up failures.
run_result run_baseline(const hot_sku_options& opts, const std::string& db_url);

struct surge_extra {
  uint64_t transactions = 0;  ///< commit_queue::stats()
  uint64_t requests = 0;      ///< journal batches committed (one per SKU flush)
  uint64_t failures = 0;      ///< requests answered with an error
  int64_t held = -1;          ///< stock held after the run, from the live SKU actor
  int64_t held_reloaded = -1; ///< the same after re-activating the SKU from PostgreSQL
};

/// The Redis baseline: --clients connections, each with concurrency/clients EVALSHA of a Lua
/// check-and-decrement script pipelined on one key under `redis_prefix`. Not durable.
run_result run_redis_lua(const hot_sku_options& opts, const std::string& redis_prefix);

/// `redis_prefix` is a key prefix no one else uses (the caller deletes its keys afterwards).
run_result run_surge(const hot_sku_options& opts, const std::string& db_url,
                     const std::string& redis_prefix, surge_extra& extra);

/// `cross-node`: the same hold requests on one SKU, first sent on the node that owns it, then
/// on another member (stub -> gateway -> one CAF hop -> the owner's gateway -> the SKU actor).
struct cross_node_result {
  run_result same;  ///< requests enter at the owner
  run_result cross; ///< requests enter at the other node
  int64_t held = -1;
};
cross_node_result run_cross_node(const hot_sku_options& opts, const std::string& db_url,
                                 const std::string& redis_prefix);

// ------------------------------------------------------- shared by the commands (surge_bench.cpp)

/// Sleeps until `t`, waking early when interrupted.
void sleep_until(clock::time_point t);

using tools::fixed;
using tools::grouped;

/// `s` escaped for a JSON string (without the quotes).
std::string json_escape(const std::string& s);

/// Writes the --json file `path`: the object {"command": `command`, ..., "ok": `ok`}, one member a
/// line, with `members` (each starting with ",\n  ") in between. Throws std::runtime_error
/// "cannot write `path`" when the file cannot be written.
void write_json_file(const std::string& path, const std::string& command,
                     const std::string& members, bool ok);

/// One system's figures as a JSON object for --json: system, `rate_key` (per second), p50_ms,
/// p99_ms, measured, seconds, total_ok, errors (and failure when `with_failure`).
std::string json_of(const run_result& r, const std::string& rate_key = "reservations_per_s",
                    bool with_failure = false);

// ---------------------------------------------------------------------------------- flags

namespace cli = tools::cli;

/// A bad command line: exit status 2.
using bad_flag = cli::usage_error;

/// `v` as an integer in lo..hi, or bad_flag naming --`flag`.
int parse_int(const std::string& flag, const std::string& v, int lo, int hi);

bool starts_with(std::string_view s, std::string_view p);

/// Reads `args` as surge-bench's commands take them (tools/common's cli.hpp): only
/// `--name=value` flags of `flags`, each with a value, in any order; --help (or -h) anywhere
/// ends them. Returns false when --help was asked for. Throws bad_flag.
bool parse_flags(const std::vector<std::string>& args, std::vector<cli::flag> flags);

/// --NAME=N: an integer in lo..hi into `out`.
cli::flag int_flag(const char* name, int& out, int lo, int hi);

/// --json=FILE: also write the figures as JSON to FILE.
template <class Options>
cli::flag json_flag(Options& o) {
  return {"json", cli::takes::value, cli::assign(o.json_path)};
}

/// --pg-url=URL, --redis-url=URL and --duration=D (1s..600s), the flags of the commands that
/// create their own database and Redis prefix, followed by `more`.
template <class Options>
std::vector<cli::flag> storage_flags(Options& o, std::vector<cli::flag> more) {
  using namespace std::chrono_literals;
  std::vector<cli::flag> flags{
      {"pg-url", cli::takes::value,
       [&o](const std::optional<std::string>& v) {
         if (!starts_with(*v, "postgresql://") && !starts_with(*v, "postgres://")) {
           throw bad_flag("--pg-url expects a postgresql:// URI, got '" + *v + "'");
         }
         o.pg_admin_url = *v;
       }},
      {"redis-url", cli::takes::value,
       [&o](const std::optional<std::string>& v) {
         if (!starts_with(*v, "redis://")) {
           throw bad_flag("--redis-url expects a redis:// URL, got '" + *v + "'");
         }
         o.redis_url = *v;
       }},
      {"duration", cli::takes::value,
       [&o](const std::optional<std::string>& v) {
         std::chrono::milliseconds d{0};
         if (!config::parse_duration(*v, d) || d < 1s || d > max_duration) {
           throw bad_flag("--duration expects 1s..600s (e.g. 10s, 1500ms, 2m), got '" + *v + "'");
         }
         o.duration = d;
       }},
  };
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

/// One command of surge-bench: `parse(args)` (nullopt: --help, which prints `usage`; a bad_flag
/// prints "surge-bench COMMAND: MESSAGE (see HINT)": exit 2), then `run(options)` (an exception
/// prints "surge-bench COMMAND: error: ...": exit 1). Returns the exit status.
template <class Parse, class Run>
int guarded(const std::string& command, const char* usage, const std::string& hint,
            const std::vector<std::string>& args, Parse parse, Run run) {
  decltype(parse(args)) opts;
  try {
    opts = parse(args);
  } catch (const bad_flag& e) {
    std::cerr << "surge-bench " << command << ": " << e.what() << " (see " << hint << ")\n";
    return 2;
  }
  if (!opts) {
    std::cout << usage;
    return 0;
  }
  try {
    return run(*opts);
  } catch (const std::exception& e) {
    std::cerr << "surge-bench " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}

/// `url` (a libpq URI) naming database `db` instead of its own.
std::string with_database(const std::string& url, const std::string& db);

/// The database of one run, surge_bench_<pid>: created and migrated, dropped (WITH (FORCE)) on
/// destruction.
class bench_db {
 public:
  explicit bench_db(std::string admin_url);
  ~bench_db();
  bench_db(const bench_db&) = delete;
  bench_db& operator=(const bench_db&) = delete;

  const std::string& url() const { return url_; }

  /// Drops the database now (the destructor then does nothing).
  void drop();

 private:
  const std::string admin_url_;
  const std::string name_;
  const std::string url_;
  bool created_ = false;
};

/// A hiredis connection (blocking, 5 s timeouts).
using redis_context = std::unique_ptr<redisContext, decltype(&redisFree)>;

/// Connects to redis://[:password@]host[:port][/db] (AUTH and SELECT as the URL says); throws
/// std::runtime_error when it cannot.
redis_context connect_redis(const std::string& url);

/// A hiredis reply, owned.
using redis_reply = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

/// Owns `raw` (what redisCommand or redisGetReply gave); throws std::runtime_error naming `url`
/// when it is missing or a Redis error.
redis_reply checked_reply(void* raw, const std::string& url);

/// Calls `page(keys)` with each page of the keys starting with `prefix` on `c` (SCAN MATCH,
/// COUNT 1000: every key that stays is seen at least once; the rounds are bounded).
void scan_keys(redisContext* c, const std::string& url, const std::string& prefix,
               const std::function<void(const redisReply& keys)>& page);

/// Deletes every key starting with `prefix` (SCAN + UNLINK) on the Redis of `url`.
void delete_redis_keys(const std::string& url, const std::string& prefix);

/// Runs `f()`, then deletes every Redis key starting with `prefix` — also when `f` throws.
template <class F>
void with_redis_prefix(const std::string& url, const std::string& prefix, F&& f) {
  try {
    f();
  } catch (...) {
    delete_redis_keys(url, prefix);
    throw;
  }
  delete_redis_keys(url, prefix);
}

/// VmRSS of process `pid` (0: this one) in bytes, from /proc/PID/status (0 when unreadable).
uint64_t rss_bytes(int pid = 0);

/// `surge-bench memory ARGS` / `activation ARGS` / `http ARGS` / `failover ARGS`: exit status.
int memory_command(const std::vector<std::string>& args);
int activation_command(const std::vector<std::string>& args);
int http_command(const std::vector<std::string>& args);
int failover_command(const std::vector<std::string>& args);
int streams_command(const std::vector<std::string>& args);
/// `surge-bench queue ARGS` (queue.cpp): a sale's waiting room, bytes per ticket and position cost.
int queue_command(const std::vector<std::string>& args);

/// `surge-bench journal ARGS` (journal.cpp): the ceiling of one PostgreSQL primary as the shared
/// journal.
int journal_command(const std::vector<std::string>& args);

// ---------------------------------------------------------------------------------- checkout

/// Settings of `surge-bench checkout`.
struct checkout_options {
  std::string pg_admin_url =
      env_or("SURGE_TEST_PG_URL", "postgresql://surge@127.0.0.1:5432/postgres");
  std::string redis_url = env_or("SURGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
  std::string paysim_path; ///< the surge-paysim binary
  std::chrono::milliseconds duration{10000};
  int clients = 16;            ///< baseline threads/connections
  int concurrency = 64;        ///< Surge checkouts in flight
  int gateway_latency_ms = 20; ///< paysim --latency-ms
  int skus = 200;              ///< catalog size
  int hot_skus = 5;            ///< the first hot_skus SKUs are hot ...
  int hot_percent = 20;        ///< ... and get this share of the picks
  std::string json_path;
};

/// The SKUs of one checkout: 1..3 distinct SKUs, one unit each, hot ones with hot_percent.
class sku_picker {
 public:
  sku_picker(const checkout_options& o, uint64_t seed);
  std::vector<std::string> next();
  static std::string name_of(int i);
  static int64_t price_of(int i) { return 100 + 7 * i; }

 private:
  int skus_;
  int hot_;
  int hot_percent_;
  uint64_t state_;
  uint64_t rand();
};

/// What the checks of `checkout` compare.
struct checkout_extra {
  std::map<std::string, int64_t> lines; ///< units per SKU over the acknowledged checkouts
  int64_t orders_confirmed = -1;        ///< Surge: confirmed orders in PostgreSQL
  uint64_t charges = 0;                 ///< baseline: approved gateway calls
};

/// The typical shop: row locks held across the gateway call.
run_result run_checkout_baseline(const checkout_options& opts, const std::string& db_url,
                                 uint16_t gateway_port, checkout_extra& extra);

/// Surge in-process: carts, SKUs, orders, payment router.
run_result run_checkout_surge(const checkout_options& opts, const std::string& db_url,
                              const std::string& redis_prefix, uint16_t gateway_port,
                              checkout_extra& extra);

/// `surge-bench checkout ARGS`: exit status.
int checkout_command(const std::vector<std::string>& args);

/// Prints the Markdown table of both systems (rate, p50, p99), the ratio surge/baseline, and a
/// line per system with counts and latency extremes; `rate` heads the rate column ("checkouts/s"),
/// `what` names the operations ("checkouts").
void print_comparison(const run_result& base, const run_result& surge, const std::string& rate,
                      const std::string& what);

/// The same for any number of systems; the ratios printed are of the last one to each other.
void print_rows(const std::vector<const run_result*>& rows, const std::string& rate,
                const std::string& what);

/// Prints "FAIL: ..." for each system whose checks failed, else "OK: <ok_text>"; true when OK.
bool print_verdict(const run_result& base, const run_result& surge, const std::string& ok_text);

} // namespace surge::bench
