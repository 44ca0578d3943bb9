// `memory` and `activation`: what an idle entity costs and how fast one comes back.
//
// memory      what an idle entity costs: --carts carts (each holding one unit of a few SKUs)
//             and --skus SKUs go dormant after a short entity.idle_timeout in one in-process
//             node (runtime::entity_layer, as surge-node wires it); node RSS growth (VmRSS after
//             malloc_trim) plus Redis growth per dormant entity, and a sample of each must come
//             back with its content. For reference, RSS growth per live actor (idle 1d).
// activation  SKUs with --batches journal batches each; the time to the first answer of a new
//             incarnation (a fresh node) loading from the Redis snapshot, from the PostgreSQL
//             snapshot, and from the PostgreSQL journal alone (replaying every batch).

#include <caf/all.hpp>

#include <malloc.h>
#ifdef SURGE_MALLOC_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>
#include <unistd.h>

#include "ask.hpp"
#include "common.hpp"
#include "instance.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/sku.hpp"

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

constexpr auto request_timeout = 60s;
constexpr int pump_drivers = 4;

// ---------------------------------------------------------------------------------- the pump

/// Issues request `i` from `self` and calls `done` (nullptr: success, else the error) once.
using issue_fn = std::function<void(caf::event_based_actor* self, uint64_t i,
                                    std::function<void(const std::string*)> done)>;

struct pump_shared {
  issue_fn issue;
  uint64_t total = 0;
  clock::time_point deadline;
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> errors{0};
  std::mutex mtx;
  std::condition_variable cv;
  int running = 0;
  std::string first_error;
};

struct pump_state {
  static inline const char* name = "surge.bench.pump";
  int outstanding = 0;
};

using pump_ptr = caf::stateful_actor<pump_state>*;

void pump_next(pump_ptr self, const std::shared_ptr<pump_shared>& sh) {
  const uint64_t i = sh->next.fetch_add(1);
  if (i >= sh->total || clock::now() >= sh->deadline || interrupted().load()) {
    if (self->state.outstanding == 0) {
      {
        std::lock_guard<std::mutex> guard{sh->mtx};
        --sh->running;
      }
      sh->cv.notify_all();
      self->quit();
    }
    return;
  }
  ++self->state.outstanding;
  sh->issue(self, i, [self, sh](const std::string* err) {
    --self->state.outstanding;
    if (err == nullptr) {
      sh->ok.fetch_add(1, std::memory_order_relaxed);
    } else if (sh->errors.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> guard{sh->mtx};
      sh->first_error = *err;
    }
    pump_next(self, sh);
  });
}

caf::behavior pump_driver(pump_ptr self, std::shared_ptr<pump_shared> sh, int quota) {
  for (int i = 0; i < quota; ++i) {
    pump_next(self, sh);
  }
  return {[](actors::tick_atom) {}}; // everything arrives as responses
}

struct pump_result {
  uint64_t ok = 0;
  uint64_t errors = 0;
  double seconds = 0;
  std::string first_error;
};

/// Requests 0..total-1 with `concurrency` in flight, until done or `budget` is spent; a progress
/// line per second (with `extra()` appended). Throws when the drivers do not finish.
pump_result pump(caf::actor_system& sys, uint64_t total, int concurrency,
                 std::chrono::milliseconds budget, issue_fn issue, const std::string& label,
                 const std::function<std::string()>& extra) {
  auto sh = std::make_shared<pump_shared>();
  sh->issue = std::move(issue);
  sh->total = total;
  const auto t0 = clock::now();
  sh->deadline = t0 + budget;
  const int drivers = std::max(1, std::min(pump_drivers, concurrency));
  sh->running = drivers;
  for (int i = 0; i < drivers; ++i) {
    sys.spawn(pump_driver, sh, concurrency / drivers + (i < concurrency % drivers ? 1 : 0));
  }
  std::unique_lock<std::mutex> lock{sh->mtx};
  const auto give_up = sh->deadline + request_timeout + 10s;
  for (auto tick = t0 + 1s; sh->running > 0; tick += 1s) {
    if (sh->cv.wait_until(lock, std::min(tick, give_up), [&] { return sh->running == 0; })) {
      break;
    }
    if (clock::now() >= give_up) {
      throw std::runtime_error(label + ": the drivers did not finish in time");
    }
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    std::cerr << "[" << label << "] " << fixed(s, 0) << " s  " << grouped(sh->ok.load())
              << " done (" << grouped(static_cast<uint64_t>(static_cast<double>(sh->ok.load()) / s))
              << "/s)" << extra() << std::endl;
  }
  pump_result r;
  r.ok = sh->ok.load();
  r.errors = sh->errors.load();
  r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  r.first_error = sh->first_error;
  return r;
}

template <class Handle, class Result, class... Ts>
void request_then(caf::event_based_actor* self, const Handle& h,
                  std::function<void(const std::string*)> done, Ts&&... xs) {
  self->request(h, request_timeout, std::forward<Ts>(xs)...)
      .then([done](Result&) { done(nullptr); },
            [done](caf::error& e) {
              const std::string s = actors::message_of(e) + " (" + caf::to_string(e) + ")";
              done(&s);
            });
}

/// RSS after giving freed memory back to the kernel: what the live objects hold. With jemalloc
/// (the node's allocator, linked here too) every arena's unused dirty pages are purged; with
/// glibc, malloc_trim walks the whole heap with the arena locked: on a heap of gigabytes every
/// thread that allocates waits, for seconds (printed when it is longer than 100 ms).
uint64_t settled_rss() {
  const auto t0 = clock::now();
#ifdef SURGE_MALLOC_JEMALLOC
  ::mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  const std::string purge = "arena." + std::to_string(MALLCTL_ARENAS_ALL) + ".purge";
  if (::mallctl(purge.c_str(), nullptr, nullptr, nullptr, 0) != 0) {
    std::cerr << "[memory] jemalloc: " << purge << " failed; RSS includes unused pages\n";
  }
  const char* how = "jemalloc purge";
#else
  ::malloc_trim(0);
  const char* how = "malloc_trim";
#endif
  const auto took = std::chrono::duration<double>(clock::now() - t0).count();
  if (took > 0.1) {
    std::cerr << "[memory] " << how << " took " << fixed(took * 1000, 0) << " ms\n";
  }
  return rss_bytes();
}

std::string mib(uint64_t bytes) {
  return fixed(static_cast<double>(bytes) / (1024.0 * 1024.0), 1) + " MiB";
}

persistence::product_record product_of(const std::string& sku) {
  persistence::product_record rec;
  rec.sku = sku;
  rec.name = "Bench item " + sku;
  rec.description = "surge-bench";
  rec.category = "bench";
  rec.price_cents = 1999;
  return rec;
}

// ---------------------------------------------------------------------------------- flags

struct memory_options {
  std::string pg_admin_url =
      env_or("SURGE_TEST_PG_URL", "postgresql://surge@127.0.0.1:5432/postgres");
  std::string redis_url = env_or("SURGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
  std::chrono::milliseconds duration{90000}; ///< time budget per entity kind and phase
  int carts = 1'000'000;
  int skus = 100'000;
  int live_carts = -1; ///< memory: live carts for the reference figure (-1: --carts)
  int live_skus = -1;  ///< memory: live SKUs for the reference figure (-1: --skus)
  int hold_skus = 8;   ///< memory: the SKUs the dormant carts hold one unit of
  int lines = 1;       ///< memory: lines per dormant cart (0: an empty cart)
  int check = 1000;    ///< memory: dormant entities of each kind asked to come back
  std::chrono::milliseconds idle{2000}; ///< memory: entity.idle_timeout of the dormant phase
  int concurrency = 2000;
  int batches = 2000;      ///< activation: journal batches per SKU
  int samples = 3;         ///< activation: SKUs per path
  int caf_floor = 100'000; ///< memory: bare CAF actors for the reference figure
  std::string json_path;
};

constexpr const char* memory_usage =
    R"(usage: surge-bench memory [--carts=1000000] [--skus=100000] [--idle=2s] [--hold-skus=8] [--lines=1]
                          [--check=1000] [--live-carts=N] [--live-skus=N] [--concurrency=2000]
                          [--duration=90s] [--caf-floor=100000] [--pg-url=URL]
                          [--redis-url=URL] [--json=FILE]

Dormant entities (the figure): in one in-process node (runtime::entity_layer, as surge-node
wires it) with entity.idle_timeout=--idle, creates --carts carts as a shopper leaves them (a new
cart, then, with --lines=1, one unit of one of --hold-skus SKUs: a hold journaled in
PostgreSQL, the cart written to Redis), waits until every cart has passivated, then creates --skus SKUs ((product_atom,
record): journaled in PostgreSQL) and waits until they have passivated too (the SKUs that keep
the carts' holds stay). Per dormant entity: the node's RSS growth (VmRSS after malloc_trim) and
the Redis growth (the run's keys: MEMORY USAGE plus the dictionary entries it leaves out; and
used_memory, which other clients of the same Redis disturb). PostgreSQL is durable storage, not
memory: not counted. Then --check dormant carts and SKUs of each kind are asked for their content
(each must be dormant before, and answer what it was given) and each hold SKU's held count must
equal the carts that hold it.

Live actors (for reference): a second node with entity.idle_timeout=1d activates --live-carts
carts ((create_atom)) and --live-skus SKUs, and --caf-floor bare CAF actors (7 message handlers,
one pending timer, no state): RSS growth per live actor of each kind.

Each kind of each phase runs for at most --duration with --concurrency requests in flight.

usage: surge-bench activation [--batches=2000] [--samples=3] [--pg-url=URL] [--redis-url=URL]
                              [--json=FILE]

Writes --batches journal batches (--batches/2 holds, then their releases, one per batch, no
snapshot) to 2 x --samples SKUs, takes a snapshot of half of them, then measures in fresh in-process nodes the time to the first answer
of a SKU activated from the Redis snapshot, from the PostgreSQL snapshot (Redis empty), and from
the PostgreSQL journal alone (replaying every batch).
)";

std::optional<memory_options> parse_memory(const std::vector<std::string>& args) {
  memory_options o;
  const auto flags = storage_flags(
      o, {json_flag(o),
          int_flag("carts", o.carts, 0, 10'000'000),
          int_flag("skus", o.skus, 0, 10'000'000),
          int_flag("live-carts", o.live_carts, 0, 10'000'000),
          int_flag("live-skus", o.live_skus, 0, 10'000'000),
          int_flag("hold-skus", o.hold_skus, 1, 1000),
          int_flag("lines", o.lines, 0, 1),
          int_flag("check", o.check, 0, 100'000),
          {"idle", cli::takes::value,
           [&o](const std::optional<std::string>& v) {
             std::chrono::milliseconds d{0};
             if (!config::parse_duration(*v, d) || d < std::chrono::milliseconds{100} ||
                 d > std::chrono::minutes{10}) {
               throw bad_flag("--idle expects 100ms..10m (e.g. 2s), got '" + *v + "'");
             }
             o.idle = d;
           }},
          int_flag("concurrency", o.concurrency, 1, 100'000),
          int_flag("batches", o.batches, 1, 100'000),
          int_flag("samples", o.samples, 1, 20),
          int_flag("caf-floor", o.caf_floor, 0, 10'000'000)});
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  if (o.live_carts < 0) {
    o.live_carts = o.carts;
  }
  if (o.live_skus < 0) {
    o.live_skus = o.skus;
  }
  return o;
}

// ----------------------------------------------------------------------------- Redis memory

struct redis_reading {
  uint64_t used_memory = 0; ///< INFO memory: the whole server, other clients included
  uint64_t keys = 0;        ///< keys of the run's prefix
  uint64_t key_bytes = 0;   ///< what they cost (see read_redis)
};

/// Reads `url`'s used_memory and, for the keys starting with `prefix`, their count and cost:
/// MEMORY USAGE (value, key, main dictionary entry) plus what it leaves out per key — a slot of
/// the main hash table (8 B) and, for a key with a TTL, the entry and slot of the expires
/// dictionary (24 + 8 B).
redis_reading read_redis(const std::string& url, const std::string& prefix) {
  auto c = connect_redis(url);
  redis_reading out;
  {
    auto r = checked_reply(redisCommand(c.get(), "INFO memory"), url);
    const std::string info{r->str, r->len};
    const auto at = info.find("used_memory:");
    if (at == std::string::npos) {
      throw std::runtime_error("no used_memory in INFO memory of " + url);
    }
    out.used_memory = std::stoull(info.substr(at + 12));
  }
  scan_keys(c.get(), url, prefix, [&](const redisReply& keys) {
    for (std::size_t i = 0; i < keys.elements; ++i) { // pipelined: two commands a key
      const auto* k = keys.element[i];
      redisAppendCommand(c.get(), "MEMORY USAGE %b SAMPLES 0", k->str, k->len);
      redisAppendCommand(c.get(), "PTTL %b", k->str, k->len);
    }
    for (std::size_t i = 0; i < keys.elements; ++i) {
      void* raw = nullptr;
      for (int j = 0; j < 2; ++j) {
        if (redisGetReply(c.get(), &raw) != REDIS_OK) {
          throw std::runtime_error("Redis pipeline failed on " + url);
        }
        auto rep = checked_reply(raw, url);
        if (rep->type != REDIS_REPLY_INTEGER) {
          continue; // the key went meanwhile (MEMORY USAGE answers nil)
        }
        if (j == 0) {
          ++out.keys;
          out.key_bytes += static_cast<uint64_t>(rep->integer) + 8;
        } else if (rep->integer >= 0) {
          out.key_bytes += 24 + 8;
        }
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------- memory

struct floor_state {
  static inline const char* name = "surge.bench.floor";
};

/// The smallest actor shaped like an entity: a few handlers and a pending idle timer.
/// Takes an unused int: CAF 0.17.6 dereferences a null argument tuple when a function actor takes
/// none (UBSan reports it).
caf::behavior floor_actor(caf::stateful_actor<floor_state>* self, int) {
  self->delayed_send(self, std::chrono::hours{24}, actors::tick_atom::value);
  return {
      [](actors::tick_atom) {}, [](caf::get_atom) {}, [](int32_t) {}, [](int64_t) {}, [](double) {},
      [](std::string&) {},      [](float) {}};
}

/// Live actors of one kind.
struct kind_figures {
  uint64_t requested = 0;
  uint64_t activated = 0; ///< live actors of the kind after the run
  uint64_t errors = 0;
  double seconds = 0;
  uint64_t rss_before = 0;
  uint64_t rss_after = 0;
  double per_actor() const {
    return activated > 0 ? static_cast<double>(rss_after - std::min(rss_after, rss_before)) /
                               static_cast<double>(activated)
                         : 0;
  }
};

std::string json_of(const kind_figures& k) {
  std::ostringstream o;
  o << "{\"requested\": " << k.requested << ", \"activated\": " << k.activated
    << ", \"errors\": " << k.errors << ", \"seconds\": " << fixed(k.seconds, 2)
    << ", \"per_second\": " << fixed(k.seconds > 0 ? k.activated / k.seconds : 0, 0)
    << ", \"rss_before\": " << k.rss_before << ", \"rss_after\": " << k.rss_after
    << ", \"bytes_per_actor\": " << fixed(k.per_actor(), 0) << "}";
  return o.str();
}

/// Dormant entities of one kind: created, passivated, and what stays of them.
struct dormant_figures {
  uint64_t requested = 0;
  uint64_t created = 0;
  uint64_t errors = 0;
  double seconds = 0;        ///< creating them
  double settle_seconds = 0; ///< from the last creation until every one had passivated
  uint64_t live_after = 0;   ///< live actors of the kind once settled (SKUs keeping holds)
  uint64_t rss_before = 0;
  uint64_t rss_after = 0;
  redis_reading redis_before;
  redis_reading redis_after;
  uint64_t checked = 0;   ///< asked to come back
  uint64_t came_back = 0; ///< of those: dormant before, and answered their content
  double per(uint64_t after, uint64_t before) const {
    return created > 0 ? (static_cast<double>(after) - static_cast<double>(before)) /
                             static_cast<double>(created)
                       : 0;
  }
  double node_per() const { return per(rss_after, rss_before); }
  double redis_per() const { return per(redis_after.key_bytes, redis_before.key_bytes); }
  double redis_used_per() const { return per(redis_after.used_memory, redis_before.used_memory); }
  /// The figure: node + Redis (the run's keys) per dormant entity.
  double total_per() const { return node_per() + redis_per(); }
};

std::string json_of(const dormant_figures& k) {
  std::ostringstream o;
  o << "{\"requested\": " << k.requested << ", \"created\": " << k.created
    << ", \"errors\": " << k.errors << ", \"seconds\": " << fixed(k.seconds, 2)
    << ", \"per_second\": " << fixed(k.seconds > 0 ? k.created / k.seconds : 0, 0)
    << ", \"settle_seconds\": " << fixed(k.settle_seconds, 2)
    << ", \"live_after\": " << k.live_after << ", \"rss_before\": " << k.rss_before
    << ", \"rss_after\": " << k.rss_after
    << ", \"redis_used_before\": " << k.redis_before.used_memory
    << ", \"redis_used_after\": " << k.redis_after.used_memory
    << ", \"redis_keys_before\": " << k.redis_before.keys
    << ", \"redis_keys_after\": " << k.redis_after.keys
    << ", \"redis_key_bytes_before\": " << k.redis_before.key_bytes
    << ", \"redis_key_bytes_after\": " << k.redis_after.key_bytes
    << ", \"node_bytes\": " << fixed(k.node_per(), 0)
    << ", \"redis_bytes\": " << fixed(k.redis_per(), 0)
    << ", \"redis_used_bytes\": " << fixed(k.redis_used_per(), 0)
    << ", \"bytes_per_entity\": " << fixed(k.total_per(), 0) << ", \"checked\": " << k.checked
    << ", \"came_back\": " << k.came_back << "}";
  return o.str();
}

struct dormant_run {
  dormant_figures carts;
  dormant_figures skus;
  std::string failure;
};

struct live_run {
  kind_figures carts;
  kind_figures skus;
  kind_figures floor;
  std::string failure;
};

/// Prints the tables of `memory` (and writes its JSON); the exit status.
int report_memory(const memory_options& o, const dormant_run& d, const live_run& l) {
  std::cout << "\n| dormant entity (entity.idle_timeout=" << o.idle.count()
            << " ms) | created | creations/s | s to dormant | node RSS B | Redis B (keys) | "
               "Redis B (used_memory) | B per dormant entity | came back |\n"
            << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [name, k] :
       {std::pair{"cart, 1 line held", &d.carts}, std::pair{"SKU", &d.skus}}) {
    std::cout << "| " << name << " | " << grouped(k->created) << " | "
              << grouped(static_cast<uint64_t>(k->seconds > 0 ? k->created / k->seconds : 0))
              << " | " << fixed(k->settle_seconds, 1) << " | " << fixed(k->node_per(), 0) << " | "
              << fixed(k->redis_per(), 0) << " | " << fixed(k->redis_used_per(), 0) << " | "
              << fixed(k->total_per(), 0) << " | " << k->came_back << " of " << k->checked
              << " |\n";
  }
  std::cout << "\n| live actor (reference, entity.idle_timeout=1d) | activated | activations/s | "
               "RSS before | RSS after | bytes per live actor |\n"
            << "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [name, k] : {std::pair{"cart", &l.carts}, std::pair{"SKU", &l.skus},
                                std::pair{"bare CAF actor (reference)", &l.floor}}) {
    std::cout << "| " << name << " | " << grouped(k->activated) << " | "
              << grouped(static_cast<uint64_t>(k->seconds > 0 ? k->activated / k->seconds : 0))
              << " | " << mib(k->rss_before) << " | " << mib(k->rss_after) << " | "
              << fixed(k->per_actor(), 0) << " |\n";
  }
  std::cout << "\nsizeof(caf::scheduled_actor) = " << sizeof(caf::scheduled_actor)
            << " B (the CAF part of every actor, before its state)\n";
  const std::string failure = !d.failure.empty() ? d.failure : l.failure;
  const bool ok = failure.empty();
  std::cout << (ok ? "OK: every creation answered, every dormant entity checked came back with "
                     "its content, every hold is still held\n"
                   : "FAIL: " + failure + "\n");
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"dormant\": {\"idle_ms\": " << o.idle.count()
            << ", \"hold_skus\": " << o.hold_skus << ", \"carts\": " << json_of(d.carts)
            << ", \"skus\": " << json_of(d.skus) << "}"
            << ",\n  \"carts\": " << json_of(l.carts) << ",\n  \"skus\": " << json_of(l.skus)
            << ",\n  \"caf_floor\": " << json_of(l.floor)
            << ",\n  \"sizeof_scheduled_actor\": " << sizeof(caf::scheduled_actor);
    write_json_file(o.json_path, "memory", members.str(), ok);
  }
  return ok ? 0 : 1;
}

/// A cart id shaped like the bridge's (actors::random_id("c_"): 34 characters), unique per run.
std::string cart_name(uint64_t i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "c_%08x%024llx", static_cast<unsigned>(::getpid()),
                static_cast<unsigned long long>(i));
  return buf;
}

/// Polls `done()` (every 100 ms) until it is true or `limit` has passed; the seconds it took, or
/// nullopt.
std::optional<double> wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto t0 = clock::now();
  while (!done()) {
    if (clock::now() - t0 > limit || interrupted().load()) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(100ms);
  }
  return std::chrono::duration<double>(clock::now() - t0).count();
}

template <class Result, class Handle, class... Ts>
std::optional<Result> ask(caf::actor_system& sys, const Handle& h, Ts&&... xs) {
  caf::scoped_actor self{sys};
  std::optional<Result> out;
  self->request(h, request_timeout, std::forward<Ts>(xs)...)
      .receive([&](Result& r) { out = std::move(r); }, [](caf::error&) {});
  return out;
}

/// Request i of a pump: the product of SKU MEM-<i> (a new SKU, journaled in PostgreSQL).
issue_fn create_product(instance& inst) {
  return [&inst](caf::event_based_actor* self, uint64_t i,
                 std::function<void(const std::string*)> done) {
    const auto sku = "MEM-" + std::to_string(i);
    request_then<actors::sku_actor, actors::product_view>(
        self, inst.skus->acquire(sku), std::move(done), actors::product_atom::value,
        product_of(sku));
  };
}

/// The dormant phase (see memory_usage), in its own database and Redis prefix.
dormant_run run_dormant(const memory_options& o, const std::string& prefix) {
  dormant_run d;
  bench_db db{o.pg_admin_url};
  auto settings = bench_node_options(node_settings(), db.url(), o.redis_url, prefix, "");
  settings.entity_idle = o.idle;
  settings.cluster_lease = std::chrono::seconds{120}; // see run_live
  const auto k = static_cast<uint64_t>(o.hold_skus);
  std::vector<std::string> hold_skus;
  for (uint64_t j = 0; j < k; ++j) {
    hold_skus.push_back("MEM-HOLD-" + std::to_string(j));
  }
  std::cerr << "surge-bench memory (dormant): database " << db.url() << ", " << o.carts
            << " carts holding one of " << k << " SKUs, then " << o.skus
            << " SKUs; entity.idle_timeout " << o.idle.count() << " ms\n";
  const auto settle_limit = o.idle + std::chrono::milliseconds{120'000};
  instance inst{settings};
  // The SKUs the carts hold (live all along: their holds keep them), and one cart through
  // every path (pools, first allocations) before the baseline reading.
  for (const auto& sku : hold_skus) {
    ask_sku<actors::product_view>(inst, sku, actors::product_atom::value, product_of(sku));
    ask_sku<actors::stock_view>(
        inst, sku, actors::stock_atom::value,
        actors::stock_change{true, static_cast<int64_t>(o.carts / o.hold_skus + 1000)});
  }
  ask_sku<actors::product_view>(inst, "MEM-WARM", actors::product_atom::value,
                                product_of("MEM-WARM"));
  {
    const auto warm = "w_" + cart_name(0).substr(2);
    ask<actors::cart_view>(*inst.sys, inst.carts->acquire(warm), actors::create_atom::value,
                           std::string{});
    ask<actors::cart_view>(*inst.sys, inst.carts->acquire(warm), actors::item_atom::value,
                           hold_skus[0], int64_t{1}, false, std::string{}, int64_t{0},
                           std::string{}, std::string{});
    ask<actors::cart_view>(*inst.sys, inst.carts->acquire(warm), actors::item_atom::value,
                           hold_skus[0], int64_t{0}, false, std::string{}, int64_t{0},
                           std::string{}, std::string{});
  }
  if (!wait_for([&] { return inst.carts->size() == 0 && inst.skus->size() <= k; }, settle_limit)) {
    d.failure = "the warm-up entities did not passivate";
    return d;
  }

  // 1. Carts, as a shopper leaves them: created, one unit of one SKU held.
  auto& c = d.carts;
  c.requested = static_cast<uint64_t>(o.carts);
  c.rss_before = settled_rss();
  c.redis_before = read_redis(o.redis_url, prefix);
  const auto cr = pump(
      *inst.sys, c.requested, o.concurrency, o.duration,
      [&inst, &hold_skus, k, lines = o.lines](caf::event_based_actor* self, uint64_t i,
                                              std::function<void(const std::string*)> done) {
        const auto id = cart_name(i);
        if (lines == 0) {
          request_then<actors::cart_actor, actors::cart_view>(
              self, inst.carts->acquire(id), std::move(done), actors::create_atom::value,
              std::string{});
          return;
        }
        self->request(inst.carts->acquire(id), request_timeout, actors::create_atom::value,
                      std::string{})
            .then(
                [self, &inst, &hold_skus, k, id, i, done](actors::cart_view&) {
                  request_then<actors::cart_actor, actors::cart_view>(
                      self, inst.carts->acquire(id), done, actors::item_atom::value,
                      hold_skus[i % k], int64_t{1}, false, std::string{}, int64_t{0}, std::string{},
                      std::string{});
                },
                [done](caf::error& e) {
                  const std::string s = actors::message_of(e) + " (" + caf::to_string(e) + ")";
                  done(&s);
                });
      },
      "carts",
      [&inst] {
        return "  RSS " + mib(rss_bytes()) + ", " + grouped(inst.carts->size()) + " live";
      });
  c.created = cr.ok;
  c.errors = cr.errors;
  c.seconds = cr.seconds;
  if (cr.errors > 0) {
    d.failure = std::to_string(cr.errors) + " cart requests failed, first: " + cr.first_error;
  }
  if (auto s = wait_for([&] { return inst.carts->size() == 0; }, settle_limit)) {
    c.settle_seconds = *s;
  } else if (d.failure.empty()) {
    d.failure = std::to_string(inst.carts->size()) + " carts still live " +
                std::to_string(settle_limit.count()) + " ms after the last was created";
  }
  c.live_after = inst.carts->size();
  c.rss_after = settled_rss();
  c.redis_after = read_redis(o.redis_url, prefix);
  std::cerr << "[carts] " << grouped(c.created) << " dormant after " << fixed(c.settle_seconds, 1)
            << " s: node " << fixed(c.node_per(), 0) << " B + Redis " << fixed(c.redis_per(), 0)
            << " B per cart (used_memory " << fixed(c.redis_used_per(), 0) << " B)\n";

  // 2. SKUs: a product each, no holds.
  auto& s = d.skus;
  s.requested = static_cast<uint64_t>(o.skus);
  s.rss_before = c.rss_after;
  s.redis_before = c.redis_after;
  const auto sr = pump(
      *inst.sys, s.requested, o.concurrency, o.duration, create_product(inst), "skus", [&inst] {
        return "  RSS " + mib(rss_bytes()) + ", " + grouped(inst.skus->size()) + " live";
      });
  s.created = sr.ok;
  s.errors = sr.errors;
  s.seconds = sr.seconds;
  if (sr.errors > 0 && d.failure.empty()) {
    d.failure = std::to_string(sr.errors) + " SKU requests failed, first: " + sr.first_error;
  }
  if (auto t = wait_for([&] { return inst.skus->size() <= k; }, settle_limit)) {
    s.settle_seconds = *t;
  } else if (d.failure.empty()) {
    d.failure = std::to_string(inst.skus->size() - k) + " SKUs still live " +
                std::to_string(settle_limit.count()) + " ms after the last was created";
  }
  s.live_after = inst.skus->size() - std::min<std::size_t>(inst.skus->size(), k);
  s.rss_after = settled_rss();
  s.redis_after = read_redis(o.redis_url, prefix);
  std::cerr << "[skus] " << grouped(s.created) << " dormant after " << fixed(s.settle_seconds, 1)
            << " s: node " << fixed(s.node_per(), 0) << " B + Redis " << fixed(s.redis_per(), 0)
            << " B per SKU (used_memory " << fixed(s.redis_used_per(), 0) << " B)\n";

  // 3. The honesty check: a sample of each comes back with what it was given, and every hold
  // of a dormant cart is still held by its SKU.
  const auto sample = [&](uint64_t created, uint64_t j, uint64_t n) {
    return n >= created ? j : j * created / n;
  };
  c.checked = std::min<uint64_t>(static_cast<uint64_t>(o.check), c.created);
  for (uint64_t j = 0; j < c.checked; ++j) {
    const uint64_t i = sample(c.created, j, c.checked);
    const auto id = cart_name(i);
    const bool dormant = !inst.carts->active(id);
    auto v = ask<actors::cart_view>(*inst.sys, inst.carts->acquire(id), caf::get_atom::value,
                                    std::string{});
    const bool content = v && v->cart_id == id &&
                         v->items.size() == static_cast<std::size_t>(o.lines) &&
                         (o.lines == 0 || (v->items[0].sku == hold_skus[i % k] &&
                                           v->items[0].qty == 1 && !v->items[0].hold_id.empty()));
    if (dormant && content) {
      ++c.came_back;
    } else if (d.failure.empty()) {
      d.failure =
          "cart " + id + (dormant ? " did not come back with its line" : " was not dormant");
    }
  }
  int64_t held = 0;
  for (const auto& sku : hold_skus) {
    held += ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value).held;
  }
  if (held != static_cast<int64_t>(c.created) * o.lines && d.failure.empty()) {
    d.failure = "the hold SKUs hold " + std::to_string(held) + " units for " +
                std::to_string(c.created) + " carts";
  }
  s.checked = std::min<uint64_t>(static_cast<uint64_t>(o.check), s.created);
  for (uint64_t j = 0; j < s.checked; ++j) {
    const auto sku = "MEM-" + std::to_string(sample(s.created, j, s.checked));
    const bool dormant = !inst.skus->active(sku);
    auto v =
        ask<actors::product_view>(*inst.sys, inst.skus->acquire(sku), actors::product_atom::value);
    if (dormant && v && v->product.sku == sku && v->product.name == product_of(sku).name) {
      ++s.came_back;
    } else if (d.failure.empty()) {
      d.failure =
          "SKU " + sku + (dormant ? " did not come back with its product" : " was not dormant");
    }
  }
  std::cerr << "[check] " << c.came_back << " of " << c.checked << " carts and " << s.came_back
            << " of " << s.checked << " SKUs came back; " << held << " units held for " << c.created
            << " carts\n";
  inst.stop();
  return d;
}

/// The live phase (see memory_usage): run last, it leaves the process without stopping its
/// actors; fills `l` and returns through report().
[[noreturn]] void run_live(const memory_options& o, const std::string& prefix, live_run& l,
                           const std::function<int()>& report) {
  auto& carts = l.carts;
  auto& skus = l.skus;
  auto& floor = l.floor;
  auto& failure = l.failure;
  bench_db db{o.pg_admin_url};
  auto settings = bench_node_options(node_settings(), db.url(), o.redis_url, prefix, "");
  settings.entity_idle = std::chrono::hours{24}; // the maximum: every actor stays
  // The only member: a long lease, so that a stall of the process (malloc_trim on a heap of
  // gigabytes, see settled_rss) does not fence it; with the default 2 s it lost its shards.
  settings.cluster_lease = std::chrono::seconds{120};
  std::cerr << "surge-bench memory (live): database " << db.url() << ", " << o.live_carts
            << " carts then " << o.live_skus << " SKUs, " << o.concurrency << " in flight, at most "
            << fixed(std::chrono::duration<double>(o.duration).count(), 0) << " s each\n";
  try {
    instance inst{settings};
    // Warm the paths once (pools, first allocations) before the baseline reading.
    ask_sku<actors::product_view>(inst, "MEM-WARM", actors::product_atom::value,
                                  product_of("MEM-WARM"));
    carts.requested = static_cast<uint64_t>(o.live_carts);
    carts.rss_before = settled_rss();
    const auto cr = pump(
        *inst.sys, carts.requested, o.concurrency, o.duration,
        [&inst](caf::event_based_actor* self, uint64_t i,
                std::function<void(const std::string*)> done) {
          request_then<actors::cart_actor, actors::cart_view>(
              self, inst.carts->acquire(cart_name(i)), std::move(done), actors::create_atom::value,
              std::string{});
        },
        "carts", [] { return "  RSS " + mib(rss_bytes()); });
    carts.errors = cr.errors;
    carts.seconds = cr.seconds;
    carts.rss_after = settled_rss();
    carts.activated = inst.carts->size();
    if (cr.errors > 0) {
      failure = std::to_string(cr.errors) + " cart requests failed, first: " + cr.first_error;
    }
    std::cerr << "[carts] " << grouped(carts.activated) << " live, RSS " << mib(carts.rss_before)
              << " -> " << mib(carts.rss_after) << ", " << fixed(carts.per_actor(), 0)
              << " B per cart\n";

    skus.requested = static_cast<uint64_t>(o.live_skus);
    const auto skus_before = inst.skus->size();
    skus.rss_before = settled_rss();
    const auto sr = pump(*inst.sys, skus.requested, o.concurrency, o.duration, create_product(inst),
                         "skus", [] { return "  RSS " + mib(rss_bytes()); });
    skus.errors = sr.errors;
    skus.seconds = sr.seconds;
    skus.rss_after = settled_rss();
    skus.activated = inst.skus->size() - skus_before;
    if (sr.errors > 0 && failure.empty()) {
      failure = std::to_string(sr.errors) + " SKU requests failed, first: " + sr.first_error;
    }
    std::cerr << "[skus] " << grouped(skus.activated) << " live, RSS " << mib(skus.rss_before)
              << " -> " << mib(skus.rss_after) << ", " << fixed(skus.per_actor(), 0)
              << " B per SKU\n";
    if (carts.activated < cr.ok && failure.empty()) {
      failure = "only " + std::to_string(carts.activated) + " of " + std::to_string(cr.ok) +
                " created carts are live: some passivated during the run";
    }
    if (o.caf_floor > 0) {
      floor.requested = static_cast<uint64_t>(o.caf_floor);
      floor.rss_before = settled_rss();
      const auto t0 = clock::now();
      std::vector<caf::actor> bare;
      bare.reserve(floor.requested);
      for (uint64_t i = 0; i < floor.requested; ++i) {
        bare.push_back(inst.sys->spawn(floor_actor, 0));
      }
      floor.seconds = std::chrono::duration<double>(clock::now() - t0).count();
      floor.rss_after = settled_rss();
      floor.activated = bare.size();
      std::cerr << "[caf] " << grouped(floor.activated) << " bare actors, "
                << fixed(floor.per_actor(), 0) << " B each\n";
      for (auto& a : bare) {
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      }
    }
    // Tearing down ~1M actors takes minutes and tells nothing: report, drop the run's data
    // (the database WITH (FORCE) closes the pools' connections) and leave.
    const int code = interrupted().load() ? 1 : report();
    std::cerr << "[memory] dropping the run's data and exiting without stopping "
              << grouped(carts.activated + skus.activated) << " actors\n";
    std::cout.flush();
    delete_redis_keys(o.redis_url, prefix);
    db.drop();
    std::cerr.flush();
    std::_Exit(code);
  } catch (...) {
    delete_redis_keys(o.redis_url, prefix);
    throw;
  }
}

int run_memory(const memory_options& o) {
  const std::string prefix = "surge_bench:" + std::to_string(::getpid()) + ":";
  // Redis keys as long as a node's (redis.prefix defaults to "surge:"): each dormant cart is a
  // key, and its length counts in the row's figure. Still unique to this process.
  const std::string dormant_prefix = "sb" + std::to_string(::getpid()) + ":";
  dormant_run d;
  with_redis_prefix(o.redis_url, dormant_prefix, [&] { d = run_dormant(o, dormant_prefix); });
  live_run l;
  run_live(o, prefix + "live:", l, [&] { return report_memory(o, d, l); });
}

// ------------------------------------------------------------------------------ activation

struct timed {
  std::string sku;
  double ms = 0;
  int64_t held = 0;
  int64_t on_hand = 0;
};

/// Activates a SKU that does not exist, so that the pools' connections and statements of a fresh
/// node are warm before anything is timed.
void warm_node(instance& inst) {
  try {
    ask_sku<actors::stock_view>(inst, "ACT-WARM-UP", actors::stock_atom::value);
  } catch (const std::runtime_error&) {
    // not_found: expected, the load went through both stores
  }
}

/// The time to the first answer of `sku` on a node that has never seen it.
timed first_answer(instance& inst, const std::string& sku) {
  const auto t0 = clock::now();
  auto v = ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value);
  return {sku, std::chrono::duration<double>(clock::now() - t0).count() * 1000.0, v.held,
          v.on_hand};
}

double median_ms(std::vector<timed> xs) {
  std::sort(xs.begin(), xs.end(), [](const timed& a, const timed& b) { return a.ms < b.ms; });
  return xs.empty() ? 0 : xs[xs.size() / 2].ms;
}

constexpr int64_t journal_on_hand = 1'000'000'007;
constexpr int64_t snap_on_hand = 1'000'000'008;

int run_activation(const memory_options& o) {
  const std::string prefix = "surge_bench:" + std::to_string(::getpid()) + ":";
  std::vector<std::string> journal_skus;
  std::vector<std::string> snap_skus;
  for (int s = 0; s < o.samples; ++s) {
    journal_skus.push_back("ACT-J-" + std::to_string(s));
    snap_skus.push_back("ACT-S-" + std::to_string(s));
  }
  std::vector<timed> from_redis;
  std::vector<timed> from_pg_snapshot;
  std::vector<timed> from_journal;
  int64_t batches = 0;
  int64_t snapshot_bytes = 0;
  std::string failure;
  {
    bench_db db{o.pg_admin_url};
    const auto base = node_settings();
    std::cerr << "surge-bench activation: database " << db.url() << ", " << 2 * o.samples
              << " SKUs with " << o.batches << " journal batches each\n";
    with_redis_prefix(o.redis_url, prefix, [&] {
      // 1. The journals, no snapshot: --batches/2 holds then as many releases, one per batch
      // (so that no hold is live: a node that gains a shard activates at once the SKUs with
      // live holds, to run their expiry), then a last stock change to check the replay by.
      {
        auto settings = bench_node_options(base, db.url(), o.redis_url, prefix, "");
        settings.sku_snapshot_every = 1'000'000;
        instance inst{settings};
        std::vector<std::string> all = journal_skus;
        all.insert(all.end(), snap_skus.begin(), snap_skus.end());
        for (const auto& sku : all) {
          ask_sku<actors::product_view>(inst, sku, actors::product_atom::value, product_of(sku));
          ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value,
                                      actors::stock_change{true, 1'000'000'000});
        }
        const auto n = all.size();
        const auto half = static_cast<uint64_t>(o.batches / 2);
        for (const int64_t qty : {1, 0}) {
          const auto r = pump(
              *inst.sys, half * n, static_cast<int>(n), 10min,
              [&inst, &all, n, qty](caf::event_based_actor* self, uint64_t i,
                                    std::function<void(const std::string*)> done) {
                request_then<actors::sku_actor, actors::hold_view>(
                    self, inst.skus->acquire(all[i % n]), std::move(done), actors::hold_atom::value,
                    actors::hold_request{"act-" + std::to_string(i), "", qty});
              },
              qty == 1 ? "holds" : "releases", [] { return std::string{}; });
          if (r.errors > 0) {
            throw std::runtime_error("holds failed: " + r.first_error);
          }
        }
        for (const auto& sku : journal_skus) {
          ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value,
                                      actors::stock_change{true, journal_on_hand});
        }
        inst.stop();
      }
      // 2. A snapshot of the ACT-S SKUs (PostgreSQL and Redis): a node that snapshots at every
      // batch replays their journal once and takes one with the next change.
      {
        auto settings = bench_node_options(base, db.url(), o.redis_url, prefix, "");
        settings.sku_snapshot_every = 1;
        instance inst{settings};
        for (const auto& sku : snap_skus) {
          ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value,
                                      actors::stock_change{true, snap_on_hand});
        }
        // The Redis copy is written after the commit, best effort: wait (bounded) for it.
        auto redis = connect_redis(o.redis_url);
        for (const auto& sku : snap_skus) {
          const std::string key = prefix + "snap:sku:" + sku;
          bool there = false;
          for (int i = 0; i < 100 && !there; ++i) {
            auto* raw = redisCommand(redis.get(), "EXISTS %b", key.data(), key.size());
            auto* r = static_cast<redisReply*>(raw);
            there = r != nullptr && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
            freeReplyObject(r);
            if (!there) {
              std::this_thread::sleep_for(50ms);
            }
          }
          if (!there) {
            throw std::runtime_error("no Redis snapshot of " + sku + " after 5 s");
          }
        }
        inst.stop();
      }
      {
        pqxx::connection c{db.url()};
        pqxx::nontransaction tx{c};
        batches = tx.exec("SELECT min(n) FROM (SELECT count(*) AS n FROM sku_journal WHERE "
                          "stream LIKE 'sku:ACT-J-%' GROUP BY stream) t")
                      .at(0)
                      .at(0)
                      .as<int64_t>(0);
        snapshot_bytes = tx.exec("SELECT coalesce(max(length(payload)), 0) FROM snapshots "
                                 "WHERE stream LIKE 'sku:ACT-S-%'")
                             .at(0)
                             .at(0)
                             .as<int64_t>(0);
      }
      // 3. Fresh nodes: the Redis snapshot path, then (another Redis prefix) PostgreSQL only.
      {
        instance inst{bench_node_options(base, db.url(), o.redis_url, prefix, "")};
        warm_node(inst);
        for (const auto& sku : snap_skus) {
          from_redis.push_back(first_answer(inst, sku));
        }
        inst.stop();
      }
      {
        instance inst{bench_node_options(base, db.url(), o.redis_url, prefix + "cold:", "")};
        warm_node(inst);
        for (int s = 0; s < o.samples; ++s) {
          from_pg_snapshot.push_back(first_answer(inst, snap_skus[static_cast<std::size_t>(s)]));
          from_journal.push_back(first_answer(inst, journal_skus[static_cast<std::size_t>(s)]));
        }
        inst.stop();
      }
    });
  }
  for (const auto* xs : {&from_redis, &from_pg_snapshot, &from_journal}) {
    for (const auto& t : *xs) {
      const auto want = xs == &from_journal ? journal_on_hand : snap_on_hand;
      if (t.held != 0 || t.on_hand != want) {
        failure = t.sku + " came back with on_hand " + std::to_string(t.on_hand) + ", held " +
                  std::to_string(t.held) + "; expected " + std::to_string(want) + ", 0";
      }
    }
  }
  auto list = [](const std::vector<timed>& xs) {
    std::string s;
    for (const auto& t : xs) {
      s += (s.empty() ? "" : ", ") + fixed(t.ms, 1);
    }
    return s;
  };
  std::cout << "\nSKUs with " << o.batches << " hold changes in " << batches
            << " journal batches (snapshot " << snapshot_bytes << " B):\n\n"
            << "| activation from | median ms to first answer | samples ms |\n|---|---:|---|\n"
            << "| Redis snapshot (+ PostgreSQL check of its batch) | "
            << fixed(median_ms(from_redis), 1) << " | " << list(from_redis) << " |\n"
            << "| PostgreSQL snapshot (Redis empty) | " << fixed(median_ms(from_pg_snapshot), 1)
            << " | " << list(from_pg_snapshot) << " |\n"
            << "| PostgreSQL journal replay (" << batches << " batches) | "
            << fixed(median_ms(from_journal), 1) << " | " << list(from_journal) << " |\n";
  const bool ok = failure.empty();
  std::cout << (ok ? "OK: every activation holds exactly what was journaled\n"
                   : "FAIL: " + failure + "\n");
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"holds\": " << o.batches << ",\n  \"samples\": " << o.samples
            << ",\n  \"journal_batches\": " << batches
            << ",\n  \"snapshot_bytes\": " << snapshot_bytes
            << ",\n  \"redis_snapshot_ms\": " << fixed(median_ms(from_redis), 3)
            << ",\n  \"pg_snapshot_ms\": " << fixed(median_ms(from_pg_snapshot), 3)
            << ",\n  \"pg_journal_ms\": " << fixed(median_ms(from_journal), 3);
    write_json_file(o.json_path, "activation", members.str(), ok);
  }
  return ok ? 0 : 1;
}

} // namespace

int memory_command(const std::vector<std::string>& args) {
  return guarded("memory", memory_usage, "--help", args, parse_memory, run_memory);
}

int activation_command(const std::vector<std::string>& args) {
  return guarded("activation", memory_usage, "--help", args, parse_memory, run_activation);
}

} // namespace surge::bench
