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

#include "ask.hpp"
#include "common.hpp"
#include "instance.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/sku.hpp"
#include "surge/actors/sku_model.hpp"
#include "surge/config/log.hpp"
#include "surge/config/settings.hpp"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

constexpr const char* hot_sku = "HOT";
// Never sells out: the most a SKU may have on hand (10^12 units).
constexpr int64_t initial_on_hand = actors::sku_model::max_on_hand;
constexpr auto request_timeout = 30s; // bounds the drain after the run
constexpr int max_drivers = 4;

/// What the drivers share with the main thread.
struct drive_shared {
  actors::sku_directory* skus = nullptr; ///< the requests enter the cluster here
  std::string sku;
  std::string label; ///< of the run
  phases p;
  std::atomic<uint64_t> measured{0}; ///< progress counter
  std::mutex mtx;
  std::condition_variable cv;
  int running = 0;
  run_result result; ///< merged by each driver when it finishes
};

struct driver_state : client_figures {
  static inline const char* name = "surge.bench.driver";
  std::string prefix; ///< of cart ids: unique per driver
  uint64_t next = 0;
  int outstanding = 0;
};

using driver_ptr = caf::stateful_actor<driver_state>*;

void send_hold(driver_ptr self, const std::shared_ptr<drive_shared>& sh);

void finish(driver_ptr self, const std::shared_ptr<drive_shared>& sh) {
  auto& st = self->state;
  {
    std::lock_guard<std::mutex> guard{sh->mtx};
    sh->result.add(st);
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
    st.succeeded(sh->p, t0, t1, sh->measured);
  } else {
    st.failed(*error);
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
  self->request(sh->skus->acquire(sh->sku), request_timeout, actors::hold_atom::value,
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
  // Cart ids unique per run and driver: a hold per cart, never one cart's hold set twice.
  self->state.prefix = "bench-" + sh->label + "-" + std::to_string(id) + "-";
  for (int i = 0; i < quota; ++i) {
    send_hold(self, sh);
  }
  return {[](actors::tick_atom) {}}; // everything arrives as responses
}

/// --concurrency hold requests in flight on `sku`, entering through `via` (a directory of an
/// instance of `sys`), for the warm-up and --duration. Throws when the drivers do not finish.
run_result drive_holds(caf::actor_system& sys, actors::sku_directory* via, const std::string& sku,
                       const hot_sku_options& opts, const std::string& label) {
  run_result res;
  auto sh = std::make_shared<drive_shared>();
  sh->skus = via;
  sh->sku = sku;
  sh->label = label;
  const int drivers = std::min(max_drivers, opts.concurrency);
  sh->running = drivers;
  sh->p = phases::starting_now(warmup_for(opts.duration), opts.duration);
  for (int i = 0; i < drivers; ++i) {
    const int quota = opts.concurrency / drivers + (i < opts.concurrency % drivers ? 1 : 0);
    sys.spawn(driver, sh, i, quota);
  }
  report_progress(label, sh->p, sh->measured);
  {
    // Requests still in flight at the end are answered or time out within request_timeout.
    std::unique_lock<std::mutex> lock{sh->mtx};
    if (!sh->cv.wait_for(lock, request_timeout + 10s, [&] { return sh->running == 0; })) {
      throw std::runtime_error("the drivers did not finish within " +
                               std::to_string((request_timeout + 10s).count()) + " s");
    }
    sh->result.system = res.system;
    res = std::move(sh->result);
  }
  res.seconds = sh->p.seconds();
  if (res.errors > 0) {
    res.failure = label + ": " + std::to_string(res.errors) +
                  " hold requests failed, first: " + res.first_error;
  }
  return res;
}

/// Creates `sku` (never sells out) through `inst`; throws when it already holds something.
void create_hot_sku(instance& inst, const std::string& sku) {
  persistence::product_record rec;
  rec.sku = sku;
  rec.name = "Hot item";
  rec.description = "surge-bench";
  rec.category = "bench";
  rec.price_cents = 1999;
  ask_sku<actors::product_view>(inst, sku, actors::product_atom::value, std::move(rec));
  auto before = ask_sku<actors::stock_view>(inst, sku, actors::stock_atom::value,
                                            actors::stock_change{true, initial_on_hand});
  if (before.held != 0) {
    throw std::runtime_error("a fresh SKU holds " + std::to_string(before.held));
  }
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
  {
    instance inst{bench_node_options(settings, db_url, opts.redis_url, redis_prefix, "")};
    create_hot_sku(inst, hot_sku);
    res = drive_holds(*inst.sys, inst.skus.get(), hot_sku, opts, "surge");
    res.system = "Surge (SKU actor + group commit)";
    auto after = ask_sku<actors::stock_view>(inst, hot_sku, actors::stock_atom::value);
    extra.held = after.held;
    inst.stop();
    const auto s = inst.storage->journal().stats();
    extra.transactions = s.transactions;
    extra.requests = s.requests;
    extra.failures = s.failures;
    if (res.failure.empty() && after.held != static_cast<int64_t>(res.total_ok)) {
      res.failure = "surge: the SKU holds " + std::to_string(after.held) + " but " +
                    std::to_string(res.total_ok) + " holds were acknowledged";
    }
  }
  // A new incarnation from storage: a fresh actor system and directory, and a Redis prefix
  // without the cached snapshot, so that the SKU loads its PostgreSQL snapshot and replays the
  // journal after it. Every acknowledged hold must be there.
  {
    instance inst{
        bench_node_options(settings, db_url, opts.redis_url, redis_prefix + "reload:", "")};
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

cross_node_result run_cross_node(const hot_sku_options& opts, const std::string& db_url,
                                 const std::string& redis_prefix) {
  const auto settings = node_settings();
  cross_node_result out;
  instance a{bench_node_options(settings, db_url, opts.redis_url, redis_prefix, "", "bench-a")};
  instance b{bench_node_options(settings, db_url, opts.redis_url, redis_prefix, "", "bench-b")};
  // Let the allocator give b its half and finish moving, so that no shard moves mid-run.
  std::cerr << "[cross-node] waiting for the two members to balance their shards\n";
  const auto deadline = clock::now() + 60s;
  for (;;) {
    std::size_t of_b = 0;
    bool moving = false;
    for (const auto& s : a.members->shard_map()) {
      of_b += s.owner == "bench-b" ? 1 : 0;
      moving |= !s.target.empty();
    }
    if (!moving && of_b >= settings.cluster_shards / 2 - 1) {
      break;
    }
    if (clock::now() > deadline || interrupted().load()) {
      throw std::runtime_error("the two members did not balance within 60 s");
    }
    std::this_thread::sleep_for(100ms);
  }
  // Two SKUs that a owns and b reaches through a's gateway: one per phase, so that both phases
  // start from an empty SKU (a SKU's per-hold cost grows with the holds it already has).
  std::vector<std::string> skus;
  for (int i = 0; i < 100000 && skus.size() < 2; ++i) {
    auto candidate = "XHOT-" + std::to_string(i);
    const auto shard = a.table->shard_of("sku:" + candidate);
    if (a.table->get(shard).st == cluster::shard_table::state::local &&
        b.table->resolve(shard).at == actors::placement::where::remote) {
      skus.push_back(candidate);
    }
  }
  if (skus.size() < 2) {
    throw std::runtime_error("no two SKUs are owned by bench-a and reachable from bench-b");
  }
  for (const auto& sku : skus) {
    create_hot_sku(a, sku);
  }
  out.same = drive_holds(*a.sys, a.skus.get(), skus[0], opts, "same node");
  out.same.system = "request on the owner";
  if (!interrupted().load()) {
    out.cross = drive_holds(*b.sys, b.skus.get(), skus[1], opts, "cross node");
    out.cross.system = "request on another node (1 CAF hop)";
  }
  out.held = 0;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    const auto held = ask_sku<actors::stock_view>(a, skus[i], actors::stock_atom::value).held;
    auto& phase = i == 0 ? out.same : out.cross;
    out.held += held;
    if (phase.failure.empty() && held != static_cast<int64_t>(phase.total_ok)) {
      phase.failure = "SKU " + skus[i] + " holds " + std::to_string(held) + " but " +
                      std::to_string(phase.total_ok) + " holds were acknowledged";
    }
  }
  return out;
}

} // namespace surge::bench
