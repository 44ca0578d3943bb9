// surge-chaos: starts a cluster on private database servers, drives shoppers, injects faults on
// a schedule drawn from the seed, quiesces and checks the promises G1-G6 (README.md).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "checker.hpp"
#include "cluster.hpp"
#include "collect.hpp"
#include "faults.hpp"
#include "load.hpp"
#include "netns.hpp"
#include "report.hpp"
#include "schedule.hpp"
#include "surge/tools/cli.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace surge::chaos;
using steady = std::chrono::steady_clock;

namespace {

constexpr const char* usage =
    R"(usage: surge-chaos run [options]
  --nodes=N            surge-node processes (default 3, 1..9)
  --duration=D         load time: 90s, 2m, 500ms (default 120s)
  --seed=S             seed of the fault schedule and the shoppers (default 1)
  --faults=LIST        kill,pause,partition,latency,loss,redis-restart,pg-restart,gateway-outage,
                       gateway-slow-capture,rolling-restart,scale or all (default all: every
                       kind but the long rolling-restart and scale, which are asked for by
                       name, e.g. all,rolling-restart), or none; kinds the mode cannot inject
                       are skipped with a note (gateway-slow-capture needs
                       --capture=after_confirm)
  --capture=MODE       the nodes' payments.capture: at_checkout (default: the charge is taken
                       at checkout) or after_confirm (authorised at checkout, captured once the
                       order is confirmed, voided when it is cancelled)
  --zero-downtime      also exit 1 when a shopper's request failed (no answer or 5xx) or a
                       fault could not be carried out (for rolling-restart and scale runs)
  --clients=N          shopper threads (default 8, 1..64)
  --net=MODE           auto | loopback | netns (default auto: netns when network
                       namespaces can be built here, else loopback with partition,
                       latency and loss skipped); netns exits 3 when they cannot
  --report=FILE        JSON report (default <work-dir>/report.json); the plot is FILE.svg
  --plot=FILE          SVG plot (default: the report's name with .svg)
  --work-dir=DIR       logs and database files (default: beside the binary, chaos-work/)
  --keep               keep the work dir's database files (logs are always kept)
  --node-binary=PATH   surge-node (default: the one built with surge-chaos)
  --paysim-binary=PATH surge-paysim (default: the one built with surge-chaos)
  --holds-ttl=D        the nodes' holds.ttl (default 5s)
  --lease=D            the nodes' cluster.lease (default 2s, the nodes' own default); a
                       pause lasts 1-3 s longer than this
  --burners=N          N threads that spin on the CPU beside the cluster for the whole load
                       (default 0, 0..16): a starved machine must not move shards by itself
                       (G5 reports every failover without a fault)
Exit status: 0 every promise holds (PASS or WARN), 1 a promise FAILed, 2 usage, 3 the run
could not be set up (servers or nodes did not start).
)";

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted = true;
}

[[noreturn]] void bad_usage(const std::string& msg) {
  std::cerr << "surge-chaos: " << msg << "\n" << usage;
  std::exit(2);
}

namespace cli = surge::tools::cli;

int64_t parse_ms(const std::string& flag, const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  const std::string unit{p, end};
  if (ec != std::errc{} || v < 0) {
    throw cli::usage_error(flag + ": '" + text + "' is not a duration");
  }
  if (unit.empty() || unit == "s") {
    return v * 1000;
  }
  if (unit == "ms") {
    return v;
  }
  if (unit == "m") {
    return v * 60000;
  }
  throw cli::usage_error(flag + ": '" + text + "' is not a duration (90s, 2m, 500ms)");
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  const auto v = cli::to_integer<int64_t>(text);
  if (!v || *v < lo || *v > hi) {
    throw cli::usage_error(flag + ": '" + text + "' is not a number in [" + std::to_string(lo) +
                           ", " + std::to_string(hi) + "]");
  }
  return *v;
}

/// surge-chaos's own wording of a bad flag (it takes "--name value" too).
std::string wording(cli::problem p, const cli::argument& a) {
  if (p == cli::problem::missing_value || (p == cli::problem::unknown_flag && !a.value)) {
    return "flag " + a.text + " needs a value";
  }
  return "unknown flag '" + a.text + "'"; // also --keep=... and --help=...
}

struct options {
  int nodes = 3;
  int64_t duration_ms = 120000;
  uint64_t seed = 1;
  std::string faults = "all";
  int clients = 8;
  std::string net = "auto";
  std::string report;
  std::string plot;
  std::string work_dir;
  bool keep = false;
  bool zero_downtime = false;
  std::string node_binary = SURGE_CHAOS_NODE_BINARY;
  std::string paysim_binary = SURGE_CHAOS_PAYSIM_BINARY;
  std::string holds_ttl = "5s";
  std::string lease = "2s";
  int burners = 0;
  std::string capture; ///< "": the nodes' default (at_checkout)
};

options parse_args(int argc, char** argv) {
  if (argc < 2 || std::string{argv[1]} == "--help" || std::string{argv[1]} == "-h") {
    std::cout << usage;
    std::exit(argc < 2 ? 2 : 0);
  }
  if (std::string{argv[1]} != "run") {
    bad_usage("unknown command '" + std::string{argv[1]} + "'");
  }
  using cli::takes;
  options o;
  bool help = false;
  const auto integer = [](const char* name, auto& out, int64_t lo, int64_t hi) {
    return cli::flag{name, takes::value, [name, &out, lo, hi](const std::optional<std::string>& v) {
                       out = static_cast<std::remove_reference_t<decltype(out)>>(
                           parse_int(std::string{"--"} + name, *v, lo, hi));
                     }};
  };
  const std::vector<cli::flag> flags = {
      {"help", takes::nothing, cli::enable(help), true},
      {"keep", takes::nothing, cli::enable(o.keep)},
      {"zero-downtime", takes::nothing, cli::enable(o.zero_downtime)},
      integer("nodes", o.nodes, 1, 9),
      {"duration", takes::value,
       [&o](const std::optional<std::string>& v) {
         o.duration_ms = parse_ms("--duration", *v);
         if (o.duration_ms < 20000 || o.duration_ms > 86400000) {
           throw cli::usage_error("--duration must be between 20s and 24h");
         }
       }},
      integer("seed", o.seed, 0, INT64_MAX),
      {"faults", takes::value, cli::assign(o.faults)},
      integer("clients", o.clients, 1, 64),
      {"net", takes::value,
       [&o](const std::optional<std::string>& v) {
         if (*v != "auto" && *v != "loopback" && *v != "netns") {
           throw cli::usage_error("--net must be auto, loopback or netns");
         }
         o.net = *v;
       }},
      {"report", takes::value, cli::assign(o.report)},
      {"plot", takes::value, cli::assign(o.plot)},
      {"work-dir", takes::value, cli::assign(o.work_dir)},
      {"node-binary", takes::value, cli::assign(o.node_binary)},
      {"paysim-binary", takes::value, cli::assign(o.paysim_binary)},
      {"capture", takes::value,
       [&o](const std::optional<std::string>& v) {
         if (*v != "at_checkout" && *v != "after_confirm") {
           throw cli::usage_error("--capture must be at_checkout or after_confirm");
         }
         o.capture = *v;
       }},
      {"holds-ttl", takes::value,
       [&o](const std::optional<std::string>& v) {
         parse_ms("--holds-ttl", *v);
         o.holds_ttl = *v;
       }},
      {"lease", takes::value,
       [&o](const std::optional<std::string>& v) {
         parse_ms("--lease", *v);
         o.lease = *v;
       }},
      integer("burners", o.burners, 0, 16),
  };
  cli::syntax syntax;
  syntax.value_after_space = true; // "--nodes 3"
  syntax.empty_is_missing = false;
  syntax.wording = wording;
  try {
    cli::parse({argv + 2, argv + argc}, flags, syntax);
  } catch (const cli::usage_error& e) {
    bad_usage(e.what());
  }
  if (help) {
    std::cout << usage;
    std::exit(0);
  }
  return o;
}

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path().string() : p.parent_path().string();
}

/// Sleeps until `deadline` or an interrupt, in small steps.
void sleep_until(steady::time_point deadline) {
  while (!g_interrupted && steady::now() < deadline) {
    std::this_thread::sleep_for(std::min<steady::duration>(50ms, deadline - steady::now()));
  }
}

} // namespace

int main(int argc, char** argv) {
  options opt = parse_args(argc, argv);
  std::vector<std::string> requested;
  try {
    requested = parse_fault_list(opt.faults);
  } catch (const std::invalid_argument& e) {
    bad_usage(std::string{"--faults: "} + e.what());
  }
  if (opt.work_dir.empty()) {
    opt.work_dir = self_dir() + "/chaos-work/seed-" + std::to_string(opt.seed) + "-" +
                   std::to_string(::getpid());
  }
  opt.work_dir = fs::absolute(opt.work_dir).string();
  if (opt.report.empty()) {
    opt.report = opt.work_dir + "/report.json";
  }
  if (opt.plot.empty()) {
    opt.plot = opt.report + ".svg";
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  run_info info;
  info.seed = opt.seed;
  info.nodes = opt.nodes;
  info.duration_ms = opt.duration_ms;
  info.faults_requested = requested;

  // ---- network mode: a namespace per node when possible (and asked for)
  // A scale fault adds a node (and removes one): one spare node, prepared but not started.
  const int spare_nodes =
      std::find(requested.begin(), requested.end(), "scale") != requested.end() ? 1 : 0;
  net_layout layout;
  layout.nodes = opt.nodes + spare_nodes;
  netns_network network{layout};
  std::string loopback_reason;
  std::string shaper_why;
  link_shaper shaper = link_shaper::none;
  if (opt.net == "loopback") {
    loopback_reason = "--net=loopback";
  } else if (auto why = network.setup(); !why.empty()) {
    if (opt.net == "netns") {
      std::cerr << "surge-chaos: --net=netns: network namespaces cannot be used: " << why << "\n";
      return 3;
    }
    loopback_reason = "network namespaces not available: " + why;
  }
  const bool netns = network.up();
  if (netns) {
    shaper = network.probe_shaper(shaper_why);
    info.mode = "netns";
    info.notes.push_back("network mode: netns (node nK in namespace " + layout.prefix + "nK on " +
                         layout.subnet + ".(10+K), bridge " + layout.bridge() + " with " +
                         layout.hub_address() + " (Redis, paysim, the harness) and " +
                         layout.pg_address() +
                         " (PostgreSQL)); partition by blackhole rules in the node's namespace");
    if (!network.leftovers().empty()) {
      info.notes.push_back("netns: " + network.leftovers());
    }
    if (shaper == link_shaper::tbf) {
      info.notes.push_back("tc netem is not available (" + shaper_why +
                           "); latency and loss degrade the node's link with tbf instead: a "
                           "slow link that queues packets up to a bound and drops beyond it");
    } else if (shaper == link_shaper::none) {
      info.notes.push_back("no tc qdisc can degrade a link (" + shaper_why +
                           "); latency and loss are skipped");
    }
  } else {
    info.mode = "loopback";
    info.notes.push_back("network mode: loopback (" + loopback_reason +
                         "); partition, latency and loss are skipped");
  }
  info.notes.push_back(std::string{"databases: a private PostgreSQL 15 and redis-server started "
                                   "for this run on free ports of "} +
                       (netns ? "127.0.0.1 and the bridge" : "127.0.0.1") +
                       " (so that pg-restart and redis-restart disturb nobody else)");
  info.notes.push_back(
      "payments.capture=" + (opt.capture.empty() ? std::string{"at_checkout"} : opt.capture) +
      (opt.capture == "after_confirm" ? " (charges are authorisations, captured once the order is "
                                        "confirmed, voided when it is cancelled)"
                                      : " (charges are taken at checkout)"));
  for (const auto& n : info.notes) {
    std::cout << "surge-chaos: " << n << "\n";
  }

  cluster_options co;
  co.nodes = opt.nodes;
  co.spare_nodes = spare_nodes;
  co.work_dir = opt.work_dir;
  co.node_binary = opt.node_binary;
  co.paysim_binary = opt.paysim_binary;
  co.holds_ttl = opt.holds_ttl;
  co.lease = opt.lease;
  co.capture = opt.capture;
  if (netns) {
    co.net = &network.layout();
    // A non-loopback admin.host needs admin.token (config/settings.cpp): one per run.
    std::random_device rd;
    char token[33];
    std::snprintf(token, sizeof(token), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
    co.admin_token = token;
  }
  cluster_env env{co};
  fault_context ctx{env,    netns,      netns ? &network.layout() : nullptr,
                    shaper, shaper_why, loopback_reason};
  auto kinds = make_fault_kinds();
  std::map<std::string, fault_kind*> by_name;
  for (auto& k : kinds) {
    by_name[k->name()] = k.get();
  }
  run_data data;
  data.hold_ttl_ms = parse_ms("--holds-ttl", opt.holds_ttl);
  std::vector<std::string> runnable;
  for (const auto& k : requested) {
    const auto why = by_name.at(k)->unavailable(ctx);
    if (why.empty()) {
      runnable.push_back(k);
    } else {
      data.faults.push_back({k, "", "", 0, 0, true, why});
      std::cout << "surge-chaos: fault " << k << " skipped: " << why << "\n";
    }
  }
  schedule_options so;
  so.seed = opt.seed;
  so.duration_ms = opt.duration_ms;
  so.kinds = runnable;
  so.nodes = opt.nodes;
  so.lease_ms = parse_ms("--lease", opt.lease);
  const auto schedule = make_schedule(so);
  std::cout << "surge-chaos: schedule (seed " << opt.seed << "):";
  for (const auto& f : schedule) {
    std::cout << " " << f.at_ms / 1000.0 << "s " << f.kind
              << (f.variant.empty() ? "" : "/" + f.variant) << "@" << f.node;
  }
  std::cout << "\nsurge-chaos: work dir " << opt.work_dir << std::endl;

  // ---- set up
  std::vector<std::string> hot{"HOT-1", "HOT-2", "HOT-3"};
  std::vector<std::string> cold;
  for (int i = 1; i <= 120; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "COLD-%03d", i);
    cold.emplace_back(name);
  }
  load_options lo;
  lo.clients = opt.clients;
  lo.seed = opt.seed;
  lo.hot = hot;
  lo.cold = cold;
  load shoppers{env, lo};
  try {
    env.start();
    std::cout << "surge-chaos: " << opt.nodes << " nodes up, loading the catalog" << std::endl;
    shoppers.load_catalog(40, 100000);
  } catch (const std::exception& e) {
    std::cerr << "surge-chaos: setting up failed: " << e.what() << "\n";
    env.stop();
    return 3;
  }
  data.node_ids = env.node_ids();

  // ---- load and faults
  info.load_start_ms = now_ms();
  const auto t0 = steady::now();
  const auto end = t0 + std::chrono::milliseconds{opt.duration_ms};
  shoppers.start();
  // CPU burners: busy threads for the whole load (the machine starved of CPU by others).
  std::atomic<bool> burning{opt.burners > 0};
  std::vector<std::thread> burners;
  for (int i = 0; i < opt.burners; ++i) {
    burners.emplace_back([&burning] {
      volatile uint64_t spin = 0;
      while (burning.load(std::memory_order_relaxed)) {
        spin = spin + 1;
      }
    });
  }
  if (opt.burners > 0) {
    info.notes.push_back(std::to_string(opt.burners) +
                         " CPU burner thread(s) spun beside the cluster for the whole load");
  }
  std::mutex faults_mtx;
  std::atomic<int> faults_done{0};
  std::atomic<int> faults_failed{0};
  std::string current_fault;
  std::thread fault_thread{[&] {
    for (const auto& f : schedule) {
      sleep_until(std::max(t0 + std::chrono::milliseconds{f.at_ms}, steady::now()));
      if (g_interrupted || steady::now() >= end) {
        break;
      }
      fault_record rec;
      rec.kind = f.kind;
      rec.start_ms = now_ms();
      {
        std::lock_guard<std::mutex> g{faults_mtx};
        current_fault = f.kind;
      }
      try {
        by_name.at(f.kind)->inject(ctx, f, rec);
        if (!by_name.at(f.kind)->timed_by_inject()) {
          sleep_until(steady::now() + std::chrono::milliseconds{f.duration_ms});
        }
        by_name.at(f.kind)->heal(ctx, f, rec);
      } catch (const std::exception& e) {
        ++faults_failed;
        rec.note += (rec.note.empty() ? "" : "; ") + std::string{"FAILED: "} + e.what();
        std::cerr << "surge-chaos: fault " << f.kind << " failed: " << e.what() << std::endl;
      }
      rec.end_ms = now_ms();
      {
        std::lock_guard<std::mutex> g{faults_mtx};
        current_fault.clear();
        data.faults.push_back(rec);
      }
      ++faults_done;
    }
  }};
  uint64_t last_ops = shoppers.ops(); // the catalog's requests are not load
  for (int s = 1; !g_interrupted && steady::now() < end; ++s) {
    sleep_until(std::min(end, t0 + std::chrono::seconds{s}));
    // A node that dies without a planned fault is a finding: noted, avoided by the shoppers,
    // restarted when the run quiesces.
    for (auto& n : env.nodes()) {
      if (n->up.load() && n->proc.dead()) {
        n->up = false;
        const std::string note = n->id + " exited unexpectedly (" + n->proc.how_it_ended() +
                                 ") at " + std::to_string((now_ms() - info.load_start_ms) / 1000) +
                                 "s (no fault of surge-chaos); see " + n->log;
        std::cout << "surge-chaos: " << note << std::endl;
        std::lock_guard<std::mutex> g{faults_mtx};
        info.notes.push_back(note);
        data.faults.push_back({"crash", n->id, "unplanned exit", now_ms(), now_ms(), false, note});
      }
    }
    const uint64_t ops = shoppers.ops();
    std::string cur;
    {
      std::lock_guard<std::mutex> g{faults_mtx};
      cur = current_fault;
    }
    std::printf("[%4llds] %5llu ops/s  requests %llu  errors %llu  faults %d/%zu%s%s\n",
                static_cast<long long>(s), static_cast<unsigned long long>(ops - last_ops),
                static_cast<unsigned long long>(ops),
                static_cast<unsigned long long>(shoppers.errors()), faults_done.load(),
                schedule.size(), cur.empty() ? "" : "  now: ", cur.c_str());
    std::fflush(stdout);
    last_ops = ops;
  }
  fault_thread.join(); // a fault under way is healed first
  shoppers.stop();
  burning = false;
  for (auto& b : burners) {
    b.join();
  }
  info.load_end_ms = now_ms();
  for (auto& f : data.faults) {
    if (f.kind == "crash") {
      f.end_ms = info.load_end_ms; // down (to the shoppers) until the run quiesced
    }
  }
  data.history = shoppers.history();
  {
    std::ofstream out{opt.work_dir + "/history.jsonl"};
    out << history_jsonl(data.history);
  }
  std::cout << "surge-chaos: load stopped after " << data.history.size() << " requests ("
            << shoppers.meddled() << " meddling with a running checkout); quiescing" << std::endl;
  info.notes.push_back(std::to_string(shoppers.meddled()) +
                       " cart edits or second checkouts were sent during a running checkout, "
                       "through another node than the checkout's");

  // ---- quiesce: every node running and ready, every shard owned, gateways up
  int exit_code = 0;
  try {
    for (std::size_t g = 0; g < env.gateway_names().size(); ++g) {
      env.set_gateway_down(g, false);
    }
    env.set_capture_delay(std::chrono::milliseconds{0});
    for (std::size_t i = 0; i < env.nodes().size(); ++i) {
      auto& n = *env.nodes()[i];
      if (!n.member.load()) {
        continue; // a spare, or removed by a scale-in
      }
      n.proc.signal(SIGCONT);
      if (n.proc.exited() && !env.start_node(i)) {
        info.notes.push_back(n.id + " did not restart during quiescing");
      }
    }
    std::string why;
    const auto settle_deadline = steady::now() + 120s;
    while (!env.settled(why) && steady::now() < settle_deadline) {
      std::this_thread::sleep_for(250ms);
    }
    if (!env.settled(why)) {
      info.notes.push_back("cluster not settled 120 s after the load: " + why);
      std::cout << "surge-chaos: " << info.notes.back() << std::endl;
    }
    const auto orders_deadline = steady::now() + 60s;
    int64_t unsettled = 0;
    while ((unsettled = unsettled_orders(env.pg().url())) > 0 && steady::now() < orders_deadline) {
      std::this_thread::sleep_for(500ms);
    }
    if (unsettled > 0) {
      info.notes.push_back(std::to_string(unsettled) +
                           " orders still pending/paid or with a refund pending");
    }
    // Every hold taken during the load is past its TTL (plus the checker's margin) by now.
    const int64_t wait_until = info.load_end_ms + data.hold_ttl_ms + 4000;
    while (now_ms() < wait_until) {
      std::this_thread::sleep_for(100ms);
    }
    data.checked_at_ms = now_ms();
    collect_database(env.pg().url(), data);
    data.charges = env.charges();
    data.refunds = env.refunds();
  } catch (const std::exception& e) {
    std::cerr << "surge-chaos: collecting the results failed: " << e.what() << "\n";
    env.stop();
    return 3;
  }
  env.stop();

  // ---- check and report
  check_options chk;
  const auto results = check_all(data, chk);
  // --zero-downtime: shoppers' requests only (the prober's asks after a failure are not
  // shoppers'), and every fault carried out. A 503 with Surge-Error-Cause: payment is the
  // payment simulation's doing (tok_slow and tok_down_first fail on purpose; when they open the
  // circuit breakers of every gateway on a node, its checkouts fail for the cooldown): counted
  // apart, not against the cluster.
  bool zero_downtime_failed = false;
  if (opt.zero_downtime) {
    uint64_t failed = 0;
    uint64_t payment = 0;
    for (const auto& op : data.history) {
      if (op.kind == operation::kind_t::probe || (op.status != 0 && op.status < 500)) {
        continue;
      }
      if (op.status == 503 && op.cause == "payment") {
        ++payment;
        continue;
      }
      if (++failed <= 10) {
        std::cout << "  failed: op#" << op.id << " to "
                  << (op.node >= 0 && static_cast<std::size_t>(op.node) < data.node_ids.size()
                          ? data.node_ids[static_cast<std::size_t>(op.node)]
                          : "?")
                  << " at " << (op.start_ms - info.load_start_ms) / 1000.0 << "s for "
                  << op.end_ms - op.start_ms << " ms: status " << op.status << " " << op.error_code
                  << " (sku " << op.sku << ", cart " << op.cart_id << ")\n";
      }
    }
    info.notes.push_back(
        "zero downtime: " + std::to_string(failed) + " of " + std::to_string(data.history.size()) +
        " requests failed (no answer or 5xx), " + std::to_string(faults_failed.load()) +
        " faults could not be carried out; " + std::to_string(payment) +
        " checkouts answered 503 because the payment gateways failed (not "
        "counted)");
    zero_downtime_failed = failed > 0 || faults_failed.load() > 0;
  }
  std::cout << "\n" << promise_table(results);
  for (const auto& f : data.faults) {
    std::cout << "  fault " << f.kind << " " << f.target << " " << f.detail;
    if (!f.skipped) {
      std::cout << " at " << (f.start_ms - info.load_start_ms) / 1000.0 << "s for "
                << (f.end_ms - f.start_ms) << " ms";
    }
    std::cout << (f.note.empty() ? "" : " (" + f.note + ")") << "\n";
  }
  for (const auto& n : info.notes) {
    std::cout << "  note: " << n << "\n";
  }
  fs::create_directories(fs::absolute(opt.report).parent_path());
  std::ofstream{opt.report} << json_report(info, data, results);
  const auto plot_error = write_plot(info, data, opt.plot);
  std::cout << "surge-chaos: report " << opt.report << ", plot "
            << (plot_error.empty() ? opt.plot : "not written: " + plot_error) << "\n";
  if (!opt.keep) {
    std::error_code ec;
    fs::remove_all(opt.work_dir + "/pg", ec);
    fs::remove_all(opt.work_dir + "/redis", ec);
  }
  exit_code = all_passed(results) ? 0 : 1;
  std::cout << (exit_code == 0 ? "surge-chaos: every promise holds\n"
                               : "surge-chaos: a promise FAILED\n");
  if (zero_downtime_failed) {
    std::cout << "surge-chaos: zero downtime FAILED\n";
    exit_code = 1;
  }
  return exit_code;
}
