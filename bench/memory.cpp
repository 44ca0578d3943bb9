// `memory` and `activation`: what an idle entity costs and how fast one comes back.
//
// memory      activates --carts carts ((create_atom) on the cart directory) and then --skus SKUs
//             ((product_atom, record)) in one in-process node (runtime::entity_layer, as
//             surge-node wires it) with entity.idle_timeout at its maximum, so that they all stay;
//             RSS growth (VmRSS after malloc_trim) per live actor.
// activation  SKUs with --batches journal batches each; the time to the first answer of a new
//             incarnation (a fresh node) loading from the Redis snapshot, from the PostgreSQL
//             snapshot, and from the PostgreSQL journal alone (replaying every batch).

#include <caf/all.hpp>

#include <malloc.h>

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

/// RSS after giving freed memory back to the kernel: what the live objects hold. malloc_trim
/// walks the whole heap with the arena locked: on a heap of gigabytes every thread that
/// allocates waits, for seconds (printed when it is longer than 100 ms).
uint64_t settled_rss() {
  const auto t0 = clock::now();
  ::malloc_trim(0);
  const auto took = std::chrono::duration<double>(clock::now() - t0).count();
  if (took > 0.1) {
    std::cerr << "[memory] malloc_trim took " << fixed(took * 1000, 0) << " ms\n";
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
  std::chrono::milliseconds duration{90000}; ///< time budget per entity kind
  int carts = 1'000'000;
  int skus = 100'000;
  int concurrency = 2000;
  int batches = 2000;      ///< activation: journal batches per SKU
  int samples = 3;         ///< activation: SKUs per path
  int caf_floor = 100'000; ///< memory: bare CAF actors for the reference figure
  std::string json_path;
};

constexpr const char* memory_usage =
    R"(usage: surge-bench memory [--carts=1000000] [--skus=100000] [--concurrency=2000]
                          [--duration=90s] [--caf-floor=100000] [--pg-url=URL]
                          [--redis-url=URL] [--json=FILE]

Activates --carts cart actors ((create_atom): a new cart, written to Redis) and then --skus SKU
actors ((product_atom, record): a new product, journaled in PostgreSQL) in one in-process node
with entity.idle_timeout=1d, --concurrency requests in flight, each kind for at most --duration;
prints the RSS growth (VmRSS after malloc_trim) per live actor of each kind. For reference, the
same for --caf-floor bare CAF actors (7 message handlers, one pending timer, no state): what
any actor of this CAF version costs before its own state.

usage: surge-bench activation [--batches=2000] [--samples=3] [--pg-url=URL] [--redis-url=URL]
                              [--json=FILE]

Writes --batches journal batches (--batches/2 holds, then their releases, one per batch, no
snapshot) to 2 x --samples SKUs, takes a snapshot of half of them, then measures in fresh in-process nodes the time to the first answer
of a SKU activated from the Redis snapshot, from the PostgreSQL snapshot (Redis empty), and from
the PostgreSQL journal alone (replaying every batch).
)";

std::optional<memory_options> parse_memory(const std::vector<std::string>& args) {
  memory_options o;
  const auto flags = storage_flags(o, {json_flag(o), int_flag("carts", o.carts, 0, 10'000'000),
                                       int_flag("skus", o.skus, 0, 10'000'000),
                                       int_flag("concurrency", o.concurrency, 1, 100'000),
                                       int_flag("batches", o.batches, 1, 100'000),
                                       int_flag("samples", o.samples, 1, 20),
                                       int_flag("caf-floor", o.caf_floor, 0, 10'000'000)});
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  return o;
}

// ---------------------------------------------------------------------------------- memory

struct floor_state {
  static inline const char* name = "surge.bench.floor";
};

/// The smallest actor shaped like an entity: a few handlers and a pending idle timer.
caf::behavior floor_actor(caf::stateful_actor<floor_state>* self) {
  self->delayed_send(self, std::chrono::hours{24}, actors::tick_atom::value);
  return {
      [](actors::tick_atom) {}, [](caf::get_atom) {}, [](int32_t) {}, [](int64_t) {}, [](double) {},
      [](std::string&) {},      [](float) {}};
}

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

/// Prints the table of `memory` (and writes its JSON); the exit status.
int report_memory(const memory_options& o, const kind_figures& carts, const kind_figures& skus,
                  const kind_figures& floor, const std::string& failure) {
  std::cout << "\n| entity | activated | activations/s | RSS before | RSS after | bytes per idle "
               "actor |\n"
            << "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [name, k] : {std::pair{"cart", &carts}, std::pair{"SKU", &skus},
                                std::pair{"bare CAF actor (reference)", &floor}}) {
    std::cout << "| " << name << " | " << grouped(k->activated) << " | "
              << grouped(static_cast<uint64_t>(k->seconds > 0 ? k->activated / k->seconds : 0))
              << " | " << mib(k->rss_before) << " | " << mib(k->rss_after) << " | "
              << fixed(k->per_actor(), 0) << " |\n";
  }
  std::cout << "\nsizeof(caf::scheduled_actor) = " << sizeof(caf::scheduled_actor)
            << " B (the CAF part of every actor, before its state)\n";
  const bool ok = failure.empty();
  std::cout << (ok ? "OK: every activation answered\n" : "FAIL: " + failure + "\n");
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"carts\": " << json_of(carts) << ",\n  \"skus\": " << json_of(skus)
            << ",\n  \"caf_floor\": " << json_of(floor)
            << ",\n  \"sizeof_scheduled_actor\": " << sizeof(caf::scheduled_actor);
    write_json_file(o.json_path, "memory", members.str(), ok);
  }
  return ok ? 0 : 1;
}

int run_memory(const memory_options& o) {
  const std::string prefix = "surge_bench:" + std::to_string(::getpid()) + ":";
  kind_figures carts;
  kind_figures skus;
  kind_figures floor;
  std::string failure;
  {
    bench_db db{o.pg_admin_url};
    auto settings = bench_node_options(node_settings(), db.url(), o.redis_url, prefix, "");
    settings.entity_idle = std::chrono::hours{24}; // the maximum: every actor stays
    // The only member: a long lease, so that a stall of the process (malloc_trim on a heap of
    // gigabytes, see settled_rss) does not fence it; with the default 2 s it lost its shards.
    settings.cluster_lease = std::chrono::seconds{120};
    std::cerr << "surge-bench memory: database " << db.url() << ", " << o.carts << " carts then "
              << o.skus << " SKUs, " << o.concurrency << " in flight, at most "
              << fixed(std::chrono::duration<double>(o.duration).count(), 0) << " s each\n";
    try {
      instance inst{settings};
      // Warm the paths once (pools, first allocations) before the baseline reading.
      ask_sku<actors::product_view>(inst, "MEM-WARM", actors::product_atom::value,
                                    product_of("MEM-WARM"));
      carts.requested = static_cast<uint64_t>(o.carts);
      carts.rss_before = settled_rss();
      const auto cr = pump(
          *inst.sys, carts.requested, o.concurrency, o.duration,
          [&inst](caf::event_based_actor* self, uint64_t i,
                  std::function<void(const std::string*)> done) {
            request_then<actors::cart_actor, actors::cart_view>(
                self, inst.carts->acquire("mem-" + std::to_string(i)), std::move(done),
                actors::create_atom::value, std::string{});
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

      skus.requested = static_cast<uint64_t>(o.skus);
      const auto skus_before = inst.skus->size();
      skus.rss_before = settled_rss();
      const auto sr = pump(
          *inst.sys, skus.requested, o.concurrency, o.duration,
          [&inst](caf::event_based_actor* self, uint64_t i,
                  std::function<void(const std::string*)> done) {
            const auto sku = "MEM-" + std::to_string(i);
            request_then<actors::sku_actor, actors::product_view>(
                self, inst.skus->acquire(sku), std::move(done), actors::product_atom::value,
                product_of(sku));
          },
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
          bare.push_back(inst.sys->spawn(floor_actor));
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
      const int code = interrupted().load() ? 1 : report_memory(o, carts, skus, floor, failure);
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
