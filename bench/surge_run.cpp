// Surge's side of `hot-sku`: the real write path in-process. An actor system with the SKU actor
// behind an sku_directory, a real commit_queue on PostgreSQL and real PostgreSQL/Redis worker
// pools, wired as runtime/src/node.cpp wires them. A few driver actors keep --concurrency hold
// requests in flight; every reply is a reservation the actor acknowledged after its group commit.

#include <caf/all.hpp>

#include <thread>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <variant>

#include "common.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/sku.hpp"
#include "surge/config/log.hpp"
#include "surge/config/settings.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

constexpr const char* hot_sku = "HOT";
constexpr int64_t initial_on_hand = 1'000'000'000'000'000; // never sells out
constexpr auto request_timeout = 30s;                      // bounds the drain after the run
constexpr int max_drivers = 4;

/// The node's settings for everything the entity actors and storage use: its defaults, with
/// the SURGE_* environment variables (and SURGE_CONFIG's file) applied as `surge-node` applies
/// them, so that the bench measures what a node runs (e.g. SURGE_SKU_SNAPSHOT_EVERY=1000).
config::node_options node_settings() {
  auto loaded = config::load({}, config::process_environment(), {"SURGE_BENCH_"});
  if (auto* err = std::get_if<config::load_error>(&loaded)) {
    throw std::runtime_error("cannot load the node settings: " + err->message);
  }
  return std::get<config::invocation>(loaded).options;
}

/// One in-process Surge node without HTTP: storage pools, commit queue, actor system and SKU
/// directory, started and stopped in node.cpp's order.
struct instance {
  std::unique_ptr<actors::pg_pool> pg;
  std::unique_ptr<actors::redis_pool> redis;
  std::unique_ptr<persistence::commit_queue> journal;
  std::shared_ptr<actors::entity_env> env;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<actors::sku_directory> skus;

  instance(const config::node_options& opts, const std::string& pg_url,
           const std::string& redis_url, const std::string& redis_prefix) {
    auto pg_factory = [pg_url]() -> std::unique_ptr<persistence::journal> {
      auto j = persistence::make_pg_journal(pg_url);
      return j ? std::move(*j) : nullptr;
    };
    pg = std::make_unique<actors::pg_pool>("pg", opts.storage_threads, pg_factory);
    persistence::redis_options ropts;
    ropts.url = redis_url;
    ropts.prefix = redis_prefix;
    redis = std::make_unique<actors::redis_pool>(
        "redis", opts.storage_threads, [ropts]() -> std::unique_ptr<actors::redis_conn> {
          auto snaps = persistence::make_redis_snapshot_cache(ropts);
          auto carts = persistence::make_redis_cart_store(ropts);
          if (!snaps || !carts) {
            return nullptr;
          }
          auto conn = std::make_unique<actors::redis_conn>();
          conn->snapshots = std::move(*snaps);
          conn->carts = std::move(*carts);
          return conn;
        });
    journal = std::make_unique<persistence::commit_queue>(
        pg_factory,
        persistence::commit_queue::options{opts.journal_writers, opts.journal_max_batch});

    env = std::make_shared<actors::entity_env>();
    env->opts.node_id = "bench";
    // Holds must outlive the longest run: an expiry would lower `held` under the check.
    env->opts.holds_ttl = std::max<std::chrono::milliseconds>(opts.holds_ttl, 2 * max_duration);
    env->opts.carts_ttl = opts.carts_ttl;
    env->opts.idle_timeout = opts.entity_idle;
    env->opts.snapshot_every = opts.sku_snapshot_every;
    env->journal = journal.get();
    env->pg = pg.get();
    env->redis = redis.get();
    env->now_ms = actors::system_now_ms;
    cfg = std::make_unique<caf::actor_system_config>();
    // As surge-node does (runtime/src/node.cpp): one scheduler thread per core.
    cfg->set("scheduler.max-threads",
             static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
    actors::register_message_types(*cfg);
    sys = std::make_unique<caf::actor_system>(*cfg);
    std::shared_ptr<const actors::entity_env> cenv = env;
    auto* s = sys.get();
    skus = std::make_unique<actors::sku_directory>([s, cenv, this](const std::string& id) {
      return actors::spawn_sku(*s, id, cenv, skus.get());
    });
  }

  ~instance() { stop(); }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;

  void stop() {
    if (sys) {
      skus->for_each(
          [](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); });
    }
    if (journal) {
      journal->stop();
    }
    sys.reset(); // waits for every actor to finish
    if (pg) {
      pg->stop();
    }
    if (redis) {
      redis->stop();
    }
  }
};

/// Asks the SKU `req...` and waits for the reply (bounded by request_timeout).
template <class Result, class... Ts>
Result ask(instance& inst, Ts&&... xs) {
  caf::scoped_actor self{*inst.sys};
  std::optional<Result> out;
  std::string err;
  self->request(inst.skus->acquire(hot_sku), request_timeout, std::forward<Ts>(xs)...)
      .receive(
          [&](Result& r) { out = std::move(r); },
          [&](caf::error& e) { err = actors::message_of(e) + " (" + caf::to_string(e) + ")"; });
  if (!out) {
    throw std::runtime_error("SKU request failed: " + err);
  }
  return std::move(*out);
}

/// What the drivers share with the main thread.
struct drive_shared {
  actors::sku_directory* skus = nullptr;
  phases p;
  std::atomic<uint64_t> measured{0}; ///< progress counter
  std::mutex mtx;
  std::condition_variable cv;
  int running = 0;
  run_result result; ///< merged by each driver when it finishes
  std::string first_error;
};

struct driver_state {
  static inline const char* name = "surge.bench.driver";
  std::string prefix; ///< of cart ids: unique per driver
  uint64_t next = 0;
  int outstanding = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t measured = 0;
  histogram latency;
  std::string first_error;
};

using driver_ptr = caf::stateful_actor<driver_state>*;

void send_hold(driver_ptr self, const std::shared_ptr<drive_shared>& sh);

void finish(driver_ptr self, const std::shared_ptr<drive_shared>& sh) {
  auto& st = self->state;
  {
    std::lock_guard<std::mutex> guard{sh->mtx};
    sh->result.latency.merge(st.latency);
    sh->result.total_ok += st.ok;
    sh->result.errors += st.errors;
    sh->result.measured += st.measured;
    if (sh->first_error.empty()) {
      sh->first_error = st.first_error;
    }
    --sh->running;
  }
  sh->cv.notify_all();
  self->quit();
}

void on_reply(driver_ptr self, const std::shared_ptr<drive_shared>& sh, clock::time_point t0,
              const std::string* error) {
  auto& st = self->state;
  const auto t1 = clock::now();
  --st.outstanding;
  if (error == nullptr) {
    ++st.ok;
    if (sh->p.measured(t1)) {
      ++st.measured;
      st.latency.record(static_cast<uint64_t>((t1 - t0).count()));
      sh->measured.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    ++st.errors;
    if (st.first_error.empty()) {
      st.first_error = *error;
    }
  }
  if (t1 < sh->p.measure_until && !interrupted().load(std::memory_order_relaxed)) {
    send_hold(self, sh);
  } else if (st.outstanding == 0) {
    finish(self, sh);
  }
}

void send_hold(driver_ptr self, const std::shared_ptr<drive_shared>& sh) {
  auto& st = self->state;
  ++st.outstanding;
  actors::hold_request req{st.prefix + std::to_string(st.next++), "", 1};
  const auto t0 = clock::now();
  // Every message to an entity goes to the handle acquire() returns (and is counted by it).
  self->request(sh->skus->acquire(hot_sku), request_timeout, actors::hold_atom::value,
                std::move(req))
      .then(
          [self, sh, t0](actors::hold_view& v) {
            if (v.qty == 1) {
              on_reply(self, sh, t0, nullptr);
            } else {
              const std::string e = "hold answered qty " + std::to_string(v.qty);
              on_reply(self, sh, t0, &e);
            }
          },
          [self, sh, t0](caf::error& err) {
            const std::string e = actors::message_of(err) + " (" + caf::to_string(err) + ")";
            on_reply(self, sh, t0, &e);
          });
}

caf::behavior driver(driver_ptr self, std::shared_ptr<drive_shared> sh, int id, int quota) {
  self->state.prefix = "bench-" + std::to_string(id) + "-";
  for (int i = 0; i < quota; ++i) {
    send_hold(self, sh);
  }
  return {[](actors::tick_atom) {}}; // everything arrives as responses
}

} // namespace

run_result run_surge(const hot_sku_options& opts, const std::string& db_url,
                     const std::string& redis_prefix, surge_extra& extra) {
  const auto settings = node_settings();
  std::cerr << "[surge] settings: sku.snapshot_every=" << settings.sku_snapshot_every
            << " journal.writers=" << settings.journal_writers
            << " journal.max_batch=" << settings.journal_max_batch
            << " storage.threads=" << settings.storage_threads << "\n";
  run_result res;
  res.system = "Surge (SKU actor + group commit)";
  {
    instance inst{settings, db_url, opts.redis_url, redis_prefix};
    persistence::product_record rec;
    rec.sku = hot_sku;
    rec.name = "Hot item";
    rec.description = "surge-bench hot-sku";
    rec.category = "bench";
    rec.price_cents = 1999;
    ask<actors::product_view>(inst, actors::product_atom::value, std::move(rec));
    auto before = ask<actors::stock_view>(inst, actors::stock_atom::value,
                                          actors::stock_change{true, initial_on_hand});
    if (before.held != 0) {
      throw std::runtime_error("a fresh SKU holds " + std::to_string(before.held));
    }

    auto sh = std::make_shared<drive_shared>();
    sh->skus = inst.skus.get();
    const int drivers = std::min(max_drivers, opts.concurrency);
    sh->running = drivers;
    sh->p = phases::starting_now(warmup_for(opts.duration), opts.duration);
    for (int i = 0; i < drivers; ++i) {
      const int quota = opts.concurrency / drivers + (i < opts.concurrency % drivers ? 1 : 0);
      inst.sys->spawn(driver, sh, i, quota);
    }
    report_progress("surge", sh->p, sh->measured);
    {
      // Requests still in flight at the end are answered or time out within request_timeout.
      std::unique_lock<std::mutex> lock{sh->mtx};
      if (!sh->cv.wait_for(lock, request_timeout + 10s, [&] { return sh->running == 0; })) {
        throw std::runtime_error("the drivers did not finish within " +
                                 std::to_string((request_timeout + 10s).count()) + " s");
      }
      res.latency = sh->result.latency;
      res.total_ok = sh->result.total_ok;
      res.errors = sh->result.errors;
      res.measured = sh->result.measured;
    }
    res.seconds = sh->p.seconds();

    auto after = ask<actors::stock_view>(inst, actors::stock_atom::value);
    extra.held = after.held;
    inst.stop();
    const auto s = inst.journal->stats();
    extra.transactions = s.transactions;
    extra.requests = s.requests;
    extra.failures = s.failures;
    if (res.errors > 0) {
      res.failure = "surge: " + std::to_string(res.errors) +
                    " hold requests failed, first: " + sh->first_error;
    } else if (after.held != static_cast<int64_t>(res.total_ok)) {
      res.failure = "surge: the SKU holds " + std::to_string(after.held) + " but " +
                    std::to_string(res.total_ok) + " holds were acknowledged";
    }
  }
  // A new incarnation from storage: a fresh actor system and directory, and a Redis prefix
  // without the cached snapshot, so that the SKU loads its PostgreSQL snapshot and replays the
  // journal after it. Every acknowledged hold must be there.
  {
    instance inst{settings, db_url, opts.redis_url, redis_prefix + "reload:"};
    auto reloaded = ask<actors::stock_view>(inst, actors::stock_atom::value);
    extra.held_reloaded = reloaded.held;
    if (res.failure.empty() && reloaded.held != static_cast<int64_t>(res.total_ok)) {
      res.failure = "surge: re-activated from PostgreSQL the SKU holds " +
                    std::to_string(reloaded.held) + " but " + std::to_string(res.total_ok) +
                    " holds were acknowledged";
    }
  }
  return res;
}

} // namespace surge::bench
