#include "surge/cluster/membership.hpp"

#include <condition_variable>
#include <future>
#include <mutex>
#include <pthread.h>
#include <thread>

#include "log.hpp"
#include "surge/persistence/membership_store.hpp"

namespace surge::cluster {

namespace {

using clock = std::chrono::steady_clock;

using detail::logger;

} // namespace

/// The loop: membership_driver's steps on two threads, timed by the heartbeat.
struct membership::impl {
  impl(membership_options o, shard_table& t, membership_hooks h, membership_store_factory f)
      : table(t)
      , driver(std::move(o), t, std::move(h), std::move(f), [] { return clock::now(); }) {}

  shard_table& table;
  membership_driver driver;
  std::thread thread;    ///< the map round's
  std::thread hb_thread; ///< the heartbeat's

  mutable std::mutex mtx; // guards everything below
  std::condition_variable cv;
  std::condition_variable cv_hb;
  bool stopping = false;
  bool poked = false;

  void heartbeat_loop() {
    uint64_t n = 0;
    uint64_t actors = 0;
    const auto& hooks_actors = driver.hooks().actors;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock{mtx};
        if (cv_hb.wait_for(lock, driver.options().heartbeat, [this] { return stopping; })) {
          return;
        }
      }
      if (n++ % 8 == 0 && hooks_actors) {
        actors = hooks_actors(); // walks the directories: not on every beat
      }
      if (driver.beat(actors)) {
        poke();
      }
    }
  }

  void poke() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      poked = true;
    }
    cv.notify_one();
  }

  void loop() {
    for (;;) {
      // Every heartbeat; sooner during a handover, a failover, or when a member's lease is about
      // to expire (membership_model::next_round).
      const auto next = driver.next_round();
      std::unique_lock<std::mutex> lock{mtx};
      cv.wait_until(lock, next, [this] { return stopping || poked; });
      if (stopping) {
        return;
      }
      poked = false;
      lock.unlock();
      driver.round();
    }
  }
};

membership::membership(membership_options opts, shard_table& table, membership_hooks hooks)
    : membership(opts, table, std::move(hooks),
                 [url = opts.pg_url] { return persistence::make_pg_membership_store(url); }) {}

membership::membership(membership_options opts, shard_table& table, membership_hooks hooks,
                       membership_store_factory connect)
    : impl_(std::make_unique<impl>(std::move(opts), table, std::move(hooks), std::move(connect))) {}

membership::~membership() {
  stop();
}

std::string membership::start() {
  auto& d = *impl_;
  if (auto err = d.driver.start(); !err.empty()) {
    return err;
  }
  d.driver.round();
  d.table.on_refresh_request([this] { poke(); });
  d.thread = std::thread([&d] {
    pthread_setname_np(pthread_self(), "surge-members");
    d.loop();
  });
  d.hb_thread = std::thread([&d] {
    pthread_setname_np(pthread_self(), "surge-heartbeat");
    d.heartbeat_loop();
  });
  logger()->info("member {} (incarnation {}) joined at {}", d.driver.options().node_id,
                 d.driver.incarnation(), d.driver.options().address);
  return {};
}

bool membership::ready() const {
  return impl_->driver.ready();
}

void membership::poke() {
  static thread_local clock::time_point last;
  const auto now = clock::now();
  if (now - last < std::chrono::milliseconds{20}) {
    return;
  }
  last = now;
  impl_->poke();
}

void membership::request_drain(const std::string& node, std::function<void(bool)> done) {
  impl_->driver.request_drain(node, std::move(done));
  impl_->poke();
}

void membership::ask_drain(const std::string& node, drain_done done) {
  impl_->driver.ask_drain(node, std::move(done));
  impl_->poke();
}

void membership::ask_undrain(const std::string& node, undrain_done done) {
  impl_->driver.ask_undrain(node, std::move(done));
  impl_->poke();
}

void membership::leave(std::chrono::milliseconds patience) {
  auto& d = *impl_;
  if (!d.thread.joinable()) {
    return;
  }
  const auto& self = d.driver.options().node_id;
  bool others = false;
  for (const auto& n : nodes()) {
    others |= n.node_id != self && n.status == "up";
  }
  if (!others) {
    return; // nobody to hand the shards to: they move when the lease runs out
  }
  std::promise<bool> p;
  auto f = p.get_future();
  request_drain(self, [&p](bool found) { p.set_value(found); });
  if (f.wait_for(patience) != std::future_status::ready) {
    return;
  }
  logger()->info("leaving: handing over every shard");
  const auto deadline = clock::now() + patience;
  while (clock::now() < deadline) {
    bool any = false;
    for (uint32_t s = 0; s < d.table.shards(); ++s) {
      auto st = d.table.get(s).st;
      any |= st == shard_table::state::local || st == shard_table::state::leaving;
    }
    if (!any) {
      logger()->info("left: no shard is owned here any more");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  logger()->warn("leaving: not every shard was handed over in time");
}

void membership::stop() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard{d.mtx};
    if (d.stopping) {
      return;
    }
    d.stopping = true;
  }
  d.cv.notify_all();
  d.cv_hb.notify_all();
  if (d.thread.joinable()) {
    d.thread.join();
  }
  if (d.hb_thread.joinable()) {
    d.hb_thread.join();
  }
  d.table.on_refresh_request({});
  d.driver.stop();
}

std::vector<node_info> membership::nodes() const {
  return impl_->driver.nodes();
}

std::vector<shard_info> membership::shard_map() const {
  return impl_->driver.shard_map();
}

} // namespace surge::cluster
