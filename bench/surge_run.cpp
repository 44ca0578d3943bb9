// Surge's side of `hot-sku`: the real write path in-process. An actor system with the SKU actor
// behind an sku_directory, a real commit_queue on PostgreSQL and real PostgreSQL/Redis worker
// pools, wired as runtime/src/node.cpp wires them. A few driver actors keep --concurrency hold
// requests in flight; every reply is a reservation the actor acknowledged after its group commit.

#include <caf/all.hpp>

#include "surge/runtime/entity_layer.hpp"

#include <thread>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <variant>

#include "ask.hpp"
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
/// The node's entity layer (runtime/entity_layer.hpp), as surge-node wires it, on the bench's
/// database and Redis prefix.
struct instance : runtime::entity_layer {
  instance(config::node_options opts, const std::string& pg_url, const std::string& redis_url,
           const std::string& redis_prefix)
      : runtime::entity_layer(
            bench_node_options(std::move(opts), pg_url, redis_url, redis_prefix, "")) {}
};

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
    ask_sku<actors::product_view>(inst, hot_sku, actors::product_atom::value, std::move(rec));
    auto before = ask_sku<actors::stock_view>(inst, hot_sku, actors::stock_atom::value,
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

    auto after = ask_sku<actors::stock_view>(inst, hot_sku, actors::stock_atom::value);
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
    auto reloaded = ask_sku<actors::stock_view>(inst, hot_sku, actors::stock_atom::value);
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
