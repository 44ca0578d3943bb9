// surge-bench: load generators that measure Surge against what a typical shop does.
//
//   surge-bench hot-sku [flags]   one hot SKU: PostgreSQL row UPDATEs vs. the SKU actor
//   surge-bench checkout [flags]  full checkouts with payment: row locks vs. the actors
//   surge-bench cross-node        a request on the owner vs. one hop away
//   surge-bench memory            RSS per idle cart and SKU actor
//   surge-bench activation        time to the first answer from a Redis/PostgreSQL snapshot or
//                                 the journal alone
//   surge-bench http              closed-loop HTTP load (the same client for nginx and Surge)
//   surge-bench failover          kill -9 of a SKU's owner: time to the next reservation
//   surge-bench queue             a sale's waiting room: bytes per ticket, ns per position
//
// Exit status: 0 success, 1 a check failed or the run could not be set up, 2 bad flags.

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>
#include <pqxx/pqxx>
#include <unistd.h>

#include "common.hpp"
#include "surge/config/log.hpp"
#include "surge/config/settings.hpp"
#include "surge/persistence/pg.hpp"

namespace surge::bench {

using namespace std::chrono_literals;

std::atomic<bool>& interrupted() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

void on_signal(int) {
  interrupted().store(true);
}

} // namespace

void sleep_until(clock::time_point t) {
  for (auto now = clock::now(); !interrupted().load() && now < t; now = clock::now()) {
    std::this_thread::sleep_for(std::min<clock::duration>(t - now, 50ms));
  }
}

// ---------------------------------------------------------------------------------- flags

namespace {

constexpr const char* usage_text =
    R"(usage: surge-bench <command> [flags]

commands:
  hot-sku   one hot SKU, reserved one unit at a time, back to back:
              baseline  --clients threads, each on its own PostgreSQL connection, running
                        UPDATE stock SET qty = qty - 1 WHERE sku = $1 AND qty > 0
                        (autocommit: one durable transaction per reservation)
              Redis Lua --clients connections, --concurrency/--clients EVALSHA each pipelined,
                        of a check-and-decrement script on one key (not durable)
              Surge     the SKU actor in-process (actor system, directory, commit queue and
                        storage pools as the node wires them) with --concurrency hold requests
                        in flight; a reply is sent only after the hold's group commit
            then prints reservations/s, p50/p99 latency, the ratio and the journal figures,
            and checks that the SKU holds exactly the acknowledged holds (also after
            re-activating it from PostgreSQL).
  cross-node  the hop between nodes: two members of one cluster in-process (each with its
            actor system, middleman, gateway and membership); hold requests on a SKU owned by
            the first, sent first on the owner, then on the other member (stub -> gateway ->
            CAF/BASP over loopback -> the owner's gateway -> SKU actor); prints both figures
            and the ratio, and checks the SKU holds every acknowledged hold. Flags as hot-sku
            (--clients is not used).
  checkout  full checkouts (cart holds, payment through surge-paysim, order): Surge's cart,
            SKU and order actors vs. the typical shop's row locks held across the payment
            call; see surge-bench checkout --help
  memory    RSS per idle cart and SKU actor (see surge-bench memory --help)
  activation  time to the first answer of a SKU from a Redis snapshot, a PostgreSQL
            snapshot, or its PostgreSQL journal alone (see surge-bench activation --help)
  http      closed-loop HTTP load, GET a URL or add-to-cart (see surge-bench http --help)
  failover  kill -9 of a SKU's owner, PUTs through a survivor every 20 ms: time to the next
            successful reservation (see surge-bench failover --help)
  queue     a sale's waiting room in-process: heap bytes per ticket and ns per position lookup,
            the naive unordered_map + vector queue vs sale_model (see surge-bench queue --help)
  streams   node RSS per open stock stream (Server-Sent Events) with --count streams on one
            SKU, and the fan-out of one stock change to all of them (see surge-bench streams
            --help)
  journal   the ceiling of one PostgreSQL primary as the shared journal: 1..N nodes' group
            commits on one database, journal transactions/s and reservations/s per step (see
            surge-bench journal --help)

flags of hot-sku:
  --pg-url=URL        admin URL; a database surge_bench_<pid> is created and dropped
                      (default $SURGE_TEST_PG_URL, else postgresql://surge@127.0.0.1:5432/postgres)
  --redis-url=URL     (default $SURGE_TEST_REDIS_URL, else redis://127.0.0.1:6379/0); keys use prefix surge_bench:<pid>:
  --duration=D        measured time per system, e.g. 10s, 1500ms, 2m; 1s..600s (default 10s)
                      each system warms up for min(1s, D/2) first
  --clients=N         baseline connections, 1..512 (default 16)
  --concurrency=N     Surge requests in flight, 1..100000 (default 1000)
  --json=FILE         also write the figures as JSON to FILE
  --help              this text

exit status: 0 ok, 1 a check failed (FAIL) or set-up failed, 2 bad flags
)";

} // namespace

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
  const auto x = cli::to_integer<int>(v);
  if (!x || *x < lo || *x > hi) {
    throw bad_flag("--" + flag + " expects an integer in " + std::to_string(lo) + ".." +
                   std::to_string(hi) + ", got '" + v + "'");
  }
  return *x;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool parse_flags(const std::vector<std::string>& args, std::vector<cli::flag> flags) {
  flags.push_back({"help", cli::takes::nothing, {}, true});
  cli::syntax syntax;
  syntax.help_aliases = {"-h"};
  syntax.wording = [](cli::problem p, const cli::argument& a) {
    if (p == cli::problem::unexpected_word) {
      return a.text == "--" ? std::string{"unknown flag --"}
                            : "unexpected argument '" + a.text + "'";
    }
    if (p == cli::problem::unexpected_value) {
      return "unknown flag " + a.text; // --help=...: the only flag that takes no value
    }
    return cli::message(p, a);
  };
  return !cli::parse(args, flags, syntax).stopped;
}

cli::flag int_flag(const char* name, int& out, int lo, int hi) {
  return {name, cli::takes::value, [name, &out, lo, hi](const std::optional<std::string>& v) {
            out = parse_int(name, *v, lo, hi);
          }};
}

namespace {

/// nullopt: --help was asked for.
std::optional<hot_sku_options> parse_hot_sku(const std::vector<std::string>& args) {
  hot_sku_options o;
  const auto flags =
      storage_flags(o, {int_flag("clients", o.clients, 1, 512),
                        int_flag("concurrency", o.concurrency, 1, 100000), json_flag(o)});
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  return o;
}

} // namespace

// ------------------------------------------------------------------------ the run's storage

/// `url` (a libpq URI) naming database `db` instead of its own.
std::string with_database(const std::string& url, const std::string& db) {
  const auto scheme_end = url.find("://");
  const auto query = url.find('?', scheme_end + 3);
  const auto path = url.find('/', scheme_end + 3);
  const auto authority_end = std::min(path, query);
  std::string out = url.substr(0, authority_end == std::string::npos ? url.size() : authority_end);
  out += '/' + db;
  if (query != std::string::npos) {
    out += url.substr(query);
  }
  return out;
}

bench_db::bench_db(std::string admin_url)
    : admin_url_(std::move(admin_url))
    , name_("surge_bench_" + std::to_string(::getpid()))
    , url_(with_database(admin_url_, name_)) {
  try {
    pqxx::connection admin{admin_url_};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
    tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot create database " + name_ + " via " + admin_url_ +
                             " (is PostgreSQL running? scripts/services.sh start): " + e.what());
  }
  created_ = true;
  if (auto err = persistence::migrate(url_)) {
    throw std::runtime_error("migrate(" + url_ + ") failed: " + caf::to_string(err));
  }
}

bench_db::~bench_db() {
  drop();
}

void bench_db::drop() {
  if (!created_) {
    return;
  }
  created_ = false;
  try {
    pqxx::connection admin{admin_url_};
    pqxx::nontransaction tx{admin};
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::cerr << "surge-bench: warning: cannot drop database " << name_ << ": " << e.what() << "\n";
  }
}

redis_context connect_redis(const std::string& url) {
  if (!starts_with(url, "redis://")) {
    throw std::runtime_error("not a redis:// URL: " + url);
  }
  std::string rest = url.substr(8); // after redis://
  std::string password;
  int port = 6379;
  int db = 0;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    auto auth = rest.substr(0, at);
    auto colon = auth.find(':');
    password = colon == std::string::npos ? auth : auth.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    db = rest.size() > slash + 1 ? std::stoi(rest.substr(slash + 1)) : 0;
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    port = std::stoi(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  const timeval tv{5, 0};
  redis_context c{redisConnectWithTimeout(rest.c_str(), port, tv), &redisFree};
  if (!c || c->err != 0) {
    throw std::runtime_error("cannot reach Redis at " + url);
  }
  redisSetTimeout(c.get(), tv);
  auto check = [&](void* raw) {
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> r{static_cast<redisReply*>(raw),
                                                              &freeReplyObject};
    if (!r || r->type == REDIS_REPLY_ERROR) {
      throw std::runtime_error("Redis AUTH/SELECT failed on " + url);
    }
  };
  if (!password.empty()) {
    check(redisCommand(c.get(), "AUTH %b", password.data(), password.size()));
  }
  if (db != 0) {
    check(redisCommand(c.get(), "SELECT %d", db));
  }
  return c;
}

redis_reply checked_reply(void* raw, const std::string& url) {
  redis_reply r{static_cast<redisReply*>(raw), &freeReplyObject};
  if (!r || r->type == REDIS_REPLY_ERROR) {
    throw std::runtime_error("Redis command failed on " + url);
  }
  return r;
}

void scan_keys(redisContext* c, const std::string& url, const std::string& prefix,
               const std::function<void(const redisReply& keys)>& page) {
  const std::string pattern = prefix + "*";
  std::string cursor = "0";
  // A SCAN cursor visits every key once; the iteration cap bounds the loop regardless.
  for (int round = 0; round < 10'000'000; ++round) {
    auto r = checked_reply(redisCommand(c, "SCAN %s MATCH %b COUNT 1000", cursor.c_str(),
                                        pattern.data(), pattern.size()),
                           url);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      throw std::runtime_error("unexpected SCAN reply from " + url);
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    page(*r->element[1]);
    if (cursor == "0") {
      break;
    }
  }
}

void delete_redis_keys(const std::string& url, const std::string& prefix) {
  auto c = connect_redis(url);
  scan_keys(c.get(), url, prefix, [&](const redisReply& keys) {
    if (keys.elements == 0) {
      return;
    }
    // One UNLINK per page: a run may leave a million keys.
    std::vector<const char*> argv{"UNLINK"};
    std::vector<std::size_t> lens{6};
    for (std::size_t i = 0; i < keys.elements; ++i) {
      argv.push_back(keys.element[i]->str);
      lens.push_back(keys.element[i]->len);
    }
    checked_reply(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data()), url);
  });
}

uint64_t rss_bytes(int pid) {
  std::ifstream f{pid == 0 ? std::string{"/proc/self/status"}
                           : "/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(f, line)) {
    if (starts_with(line, "VmRSS:")) {
      return std::stoull(line.substr(6)) * 1024; // "VmRSS:   12345 kB"
    }
  }
  return 0;
}

void write_json_file(const std::string& path, const std::string& command,
                     const std::string& members, bool ok) {
  std::ofstream f{path};
  f << "{\n  \"command\": \"" << command << '"' << members
    << ",\n  \"ok\": " << (ok ? "true" : "false") << "\n}\n";
  f.close();
  if (!f) {
    throw std::runtime_error("cannot write " + path);
  }
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string json_of(const run_result& r, const std::string& rate_key, bool with_failure) {
  std::ostringstream o;
  o << "{\"system\": \"" << json_escape(r.system) << "\", \"" << rate_key
    << "\": " << fixed(r.per_second(), 1) << ", \"p50_ms\": " << fixed(r.p_ms(50), 3)
    << ", \"p99_ms\": " << fixed(r.p_ms(99), 3) << ", \"measured\": " << r.measured
    << ", \"seconds\": " << fixed(r.seconds, 3) << ", \"total_ok\": " << r.total_ok
    << ", \"errors\": " << r.errors;
  if (with_failure) {
    o << ", \"failure\": \"" << json_escape(r.failure) << "\"";
  }
  o << "}";
  return o.str();
}

namespace {

// ---------------------------------------------------------------------------------- output

void print_table(const run_result& base, const run_result& lua, const run_result& surge,
                 const surge_extra& extra) {
  print_rows({&base, &lua, &surge}, "reservations/s", "reservations");
  const double per_tx = extra.transactions > 0 ? static_cast<double>(extra.requests) /
                                                     static_cast<double>(extra.transactions)
                                               : 0;
  const double per_batch =
      extra.requests > 0 ? static_cast<double>(surge.total_ok) / static_cast<double>(extra.requests)
                         : 0;
  std::cout << "journal: " << grouped(extra.transactions) << " transactions, "
            << grouped(extra.requests) << " requests (SKU journal batches), " << fixed(per_tx, 2)
            << " requests per transaction, " << fixed(per_batch, 1) << " holds per journal batch, "
            << extra.failures << " failures\n";
  std::cout << "check: SKU held " << extra.held << ", re-activated from PostgreSQL "
            << extra.held_reloaded << ", acknowledged holds " << surge.total_ok << "\n";
}

void write_json(const std::string& path, const hot_sku_options& opts, const run_result& base,
                const run_result& lua, const run_result& surge, const surge_extra& extra, bool ok) {
  const double ratio = base.per_second() > 0 ? surge.per_second() / base.per_second() : 0;
  const double ratio_lua = lua.per_second() > 0 ? surge.per_second() / lua.per_second() : 0;
  std::ostringstream members;
  members << ",\n  \"duration_s\": "
          << fixed(std::chrono::duration<double>(opts.duration).count(), 3)
          << ",\n  \"clients\": " << opts.clients << ",\n  \"concurrency\": " << opts.concurrency
          << ",\n  \"hardware_threads\": " << std::thread::hardware_concurrency()
          << ",\n  \"baseline\": " << json_of(base) << ",\n  \"redis_lua\": " << json_of(lua)
          << ",\n  \"surge\": " << json_of(surge) << ",\n  \"ratio\": " << fixed(ratio, 2)
          << ",\n  \"ratio_redis_lua\": " << fixed(ratio_lua, 3)
          << ",\n  \"journal\": {\"transactions\": " << extra.transactions
          << ", \"requests\": " << extra.requests << ", \"failures\": " << extra.failures
          << "},\n  \"held\": " << extra.held << ",\n  \"held_reloaded\": " << extra.held_reloaded;
  write_json_file(path, "hot-sku", members.str(), ok);
}

// ------------------------------------------------------------------------------- commands

int hot_sku(const hot_sku_options& opts) {
  const std::string redis_prefix = "surge_bench:" + std::to_string(::getpid()) + ":";
  run_result base;
  run_result lua;
  run_result surge;
  surge_extra extra;
  {
    bench_db db{opts.pg_admin_url};
    std::cerr << "surge-bench hot-sku: database " << db.url() << ", " << opts.clients
              << " baseline clients, " << opts.concurrency << " Surge requests in flight, "
              << std::chrono::duration<double>(opts.duration).count() << " s each after "
              << std::chrono::duration<double>(warmup_for(opts.duration)).count() << " s warm-up\n";
    base = run_baseline(opts, db.url());
    if (!interrupted().load()) {
      with_redis_prefix(opts.redis_url, redis_prefix, [&] {
        lua = run_redis_lua(opts, redis_prefix);
        surge = run_surge(opts, db.url(), redis_prefix, extra);
      });
    }
  }
  if (interrupted().load()) {
    std::cerr << "surge-bench: interrupted\n";
    return 1;
  }
  print_table(base, lua, surge, extra);
  bool ok = print_verdict(base, surge, "every acknowledged reservation is accounted for");
  if (!lua.failure.empty()) {
    std::cout << "FAIL: " << lua.failure << "\n";
    ok = false;
  }
  if (!opts.json_path.empty()) {
    write_json(opts.json_path, opts, base, lua, surge, extra, ok);
  }
  return ok ? 0 : 1;
}

int cross_node(const hot_sku_options& opts) {
  const std::string redis_prefix = "surge_bench:" + std::to_string(::getpid()) + ":";
  cross_node_result r;
  {
    bench_db db{opts.pg_admin_url};
    std::cerr << "surge-bench cross-node: database " << db.url() << ", " << opts.concurrency
              << " requests in flight, " << std::chrono::duration<double>(opts.duration).count()
              << " s each after "
              << std::chrono::duration<double>(warmup_for(opts.duration)).count() << " s warm-up\n";
    with_redis_prefix(opts.redis_url, redis_prefix,
                      [&] { r = run_cross_node(opts, db.url(), redis_prefix); });
  }
  if (interrupted().load()) {
    std::cerr << "surge-bench: interrupted\n";
    return 1;
  }
  print_comparison(r.same, r.cross, "reservations/s", "reservations");
  std::cout << "(the ratio above is cross-node / same-node)\n";
  std::cout << "check: the two SKUs (one per phase) hold " << r.held << ", acknowledged holds "
            << r.same.total_ok + r.cross.total_ok << "\n";
  const bool ok = print_verdict(r.same, r.cross, "every acknowledged reservation is accounted for");
  if (!opts.json_path.empty()) {
    const double ratio = r.same.per_second() > 0 ? r.cross.per_second() / r.same.per_second() : 0;
    std::ostringstream members;
    members << ",\n  \"concurrency\": " << opts.concurrency
            << ",\n  \"same_node\": " << json_of(r.same)
            << ",\n  \"cross_node\": " << json_of(r.cross) << ",\n  \"ratio\": " << fixed(ratio, 3)
            << ",\n  \"held\": " << r.held;
    write_json_file(opts.json_path, "cross-node", members.str(), ok);
  }
  return ok ? 0 : 1;
}

} // namespace

void report_progress(const std::string& label, const phases& p,
                     const std::atomic<uint64_t>& measured, const std::string& unit) {
  uint64_t prev = 0;
  for (auto tick = p.warm_from + 1s; !interrupted().load(); tick += 1s) {
    const auto at = std::min(tick, p.measure_until);
    sleep_until(at);
    if (interrupted().load()) {
      return;
    }
    char buf[160];
    if (at <= p.measure_from) {
      std::snprintf(buf, sizeof buf, "[%s] warm-up %.1f s", label.c_str(),
                    std::chrono::duration<double>(at - p.warm_from).count());
    } else {
      const double elapsed = std::chrono::duration<double>(at - p.measure_from).count();
      const uint64_t n = measured.load(std::memory_order_relaxed);
      std::snprintf(buf, sizeof buf, "[%s] %5.1f s  %10.0f %s/s so far  (%llu in last tick)",
                    label.c_str(), elapsed, static_cast<double>(n) / elapsed, unit.c_str(),
                    static_cast<unsigned long long>(n - prev));
      prev = n;
    }
    std::cerr << buf << std::endl;
    if (at >= p.measure_until) {
      return;
    }
  }
}

void print_comparison(const run_result& base, const run_result& surge, const std::string& rate,
                      const std::string& what) {
  print_rows({&base, &surge}, rate, what);
}

void print_rows(const std::vector<const run_result*>& results, const std::string& rate,
                const std::string& what) {
  std::vector<std::vector<std::string>> rows = {{"system", rate, "p50 ms", "p99 ms"}};
  for (const auto* r : results) {
    rows.push_back({r->system, grouped(static_cast<uint64_t>(r->per_second() + 0.5)),
                    fixed(r->p_ms(50), 2), fixed(r->p_ms(99), 2)});
  }
  std::vector<std::size_t> w(4, 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < 4; ++i) {
      w[i] = std::max(w[i], row[i].size());
    }
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string s = "|";
    for (std::size_t i = 0; i < 4; ++i) {
      const auto pad = std::string(w[i] - row[i].size(), ' ');
      s += ' ' + (i == 0 ? row[i] + pad : pad + row[i]) + " |";
    }
    std::cout << s << "\n";
  };
  std::cout << "\n";
  line(rows[0]);
  std::string sep = "|";
  for (std::size_t i = 0; i < 4; ++i) {
    sep += (i == 0 ? std::string(w[i] + 2, '-') : std::string(w[i] + 1, '-') + ":") + "|";
  }
  std::cout << sep << "\n";
  for (std::size_t i = 1; i < rows.size(); ++i) {
    line(rows[i]);
  }
  std::cout << "\n";
  const auto* last = results.back();
  for (std::size_t i = 0; i + 1 < results.size(); ++i) {
    const double ratio =
        results[i]->per_second() > 0 ? last->per_second() / results[i]->per_second() : 0;
    std::cout << "ratio " << last->system << " / " << results[i]->system << ": "
              << fixed(ratio, ratio < 10 ? 2 : 1) << "x\n";
  }
  for (const auto* r : results) {
    std::cout << r->system << ": " << grouped(r->measured) << " " << what << " in "
              << fixed(r->seconds, 2) << " s (" << grouped(r->total_ok)
              << " with warm-up and drain), " << r->errors << " errors, latency min "
              << fixed(static_cast<double>(r->latency.min()) / 1e6, 2) << " mean "
              << fixed(r->latency.mean() / 1e6, 2) << " max "
              << fixed(static_cast<double>(r->latency.max()) / 1e6, 2) << " ms\n";
  }
}

bool print_verdict(const run_result& base, const run_result& surge, const std::string& ok_text) {
  bool ok = true;
  for (const auto* r : {&base, &surge}) {
    if (!r->failure.empty()) {
      std::cout << "FAIL: " << r->failure << "\n";
      ok = false;
    }
  }
  if (ok) {
    std::cout << "OK: " << ok_text << "\n";
  }
  return ok;
}

} // namespace surge::bench

int main(int argc, char** argv) {
  using namespace surge::bench;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << "surge-bench: missing command\n\n" << usage_text;
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage_text;
    return 0;
  }
  if (args[0] == "checkout" || args[0] == "memory" || args[0] == "activation" ||
      args[0] == "http" || args[0] == "failover" || args[0] == "streams" || args[0] == "queue" ||
      args[0] == "journal") {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    surge::log::setup("warn", "text");
    const std::vector<std::string> rest{args.begin() + 1, args.end()};
    if (args[0] == "memory") {
      return memory_command(rest);
    }
    if (args[0] == "activation") {
      return activation_command(rest);
    }
    if (args[0] == "http") {
      return http_command(rest);
    }
    if (args[0] == "failover") {
      return failover_command(rest);
    }
    if (args[0] == "streams") {
      return streams_command(rest);
    }
    if (args[0] == "queue") {
      return queue_command(rest);
    }
    if (args[0] == "journal") {
      return journal_command(rest);
    }
    return checkout_command(rest);
  }
  if (args[0] != "hot-sku" && args[0] != "cross-node") {
    std::cerr << "surge-bench: unknown command '" << args[0] << "' (see surge-bench --help)\n";
    return 2;
  }
  return guarded(args[0], usage_text, "surge-bench --help", {args.begin() + 1, args.end()},
                 parse_hot_sku, [&](const hot_sku_options& opts) {
                   std::signal(SIGINT, on_signal);
                   std::signal(SIGTERM, on_signal);
                   surge::log::setup("warn", "text");
                   return args[0] == "hot-sku" ? hot_sku(opts) : cross_node(opts);
                 });
}
