#include "background.hpp"

#include <caf/all.hpp>

#include <pthread.h>

#include "surge/config/log.hpp"
#include "surge/persistence/journal.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("orders");
  return lg;
}

/// Leaves a healthy `conn` alone and replaces any other by `connect()`'s; false when that
/// fails (`conn` is then unchanged).
template <class Ptr, class Connect>
bool reconnect(Ptr& conn, Connect connect) {
  if (conn && conn->healthy()) {
    return true;
  }
  auto fresh = connect();
  if (!fresh) {
    return false;
  }
  conn = std::move(*fresh);
  return true;
}

} // namespace

periodic::periodic(std::string name, std::chrono::milliseconds interval, std::function<void()> step)
    : name_(std::move(name))
    , interval_(interval)
    , step_(std::move(step)) {
  thread_ = std::thread([this] { run(); });
}

periodic::~periodic() {
  stop();
}

void periodic::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void periodic::run() {
  pthread_setname_np(pthread_self(), ("surge-" + name_).substr(0, 15).c_str());
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    lock.unlock();
    step_();
    lock.lock();
    cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

order_reconciler::order_reconciler(std::string pg_url, actors::order_directory* orders,
                                   std::chrono::milliseconds interval,
                                   std::chrono::milliseconds settle_after)
    : pg_url_(std::move(pg_url))
    , orders_(orders)
    , settle_after_(settle_after)
    , loop_("reconciler", interval, [this] { step(); }) {}

void order_reconciler::step() {
  if (!reconnect(store_, [this] { return persistence::make_pg_order_store(pg_url_); })) {
    return; // PostgreSQL down: next round
  }
  auto ids = store_->unsettled(settle_after_, 500);
  if (!ids) {
    logger()->warn("reconciler: {}", caf::to_string(ids.error()));
    return;
  }
  for (const auto& id : *ids) {
    caf::anon_send(orders_->acquire(id), actors::reconcile_atom::value);
  }
}

hold_sweeper::hold_sweeper(std::string pg_url, actors::sku_directory* skus,
                           std::chrono::milliseconds interval)
    : pg_url_(std::move(pg_url))
    , skus_(skus)
    , loop_("hold-sweeper", interval, [this] { step(); }) {}

void hold_sweeper::step() {
  if (!reconnect(pg_, [this] { return persistence::make_pg_journal(pg_url_); })) {
    return; // PostgreSQL down: next round
  }
  auto skus = pg_->skus_holding(100000);
  if (!skus) {
    logger()->warn("hold sweeper: {}", caf::to_string(skus.error()));
    return;
  }
  for (const auto& sku : *skus) {
    if (!skus_->active(sku)) {
      if (auto h = skus_->acquire_local(sku)) {
        caf::anon_send(*h, actors::stock_atom::value);
      }
    }
  }
}

outbox_relay::outbox_relay(std::string pg_url, persistence::redis_options redis,
                           std::chrono::milliseconds interval)
    : pg_url_(std::move(pg_url))
    , redis_(std::move(redis))
    , loop_("outbox", interval, [this] { step(); }) {}

void outbox_relay::step() {
  if (!store_ || !store_->healthy()) {
    leader_ = false; // a new session must take the lock anew
    auto s = persistence::make_pg_order_store(pg_url_);
    if (!s) {
      return;
    }
    store_ = std::move(*s);
  }
  if (!leader_) {
    auto got = store_->try_relay_lock();
    if (!got || !*got) {
      return; // another node relays
    }
    leader_ = true;
    logger()->info("outbox relay: this node relays order and catalog events");
  }
  if (!stream_ || !stream_->healthy()) {
    auto s = persistence::make_redis_event_stream(redis_);
    if (!s) {
      return;
    }
    stream_ = std::move(*s);
  }
  for (int round = 0; round < 20; ++round) { // bounded per tick
    auto events = store_->pending_events(200);
    if (!events || events->empty()) {
      return;
    }
    std::vector<int64_t> done;
    for (const auto& ev : *events) {
      auto id = stream_->append(
          ev.topic,
          {{"event_id", std::to_string(ev.id)}, {"key", ev.key}, {"payload", ev.payload}});
      if (!id) {
        logger()->warn("outbox relay: Redis: {}", caf::to_string(id.error()));
        break;
      }
      done.push_back(ev.id);
    }
    if (!done.empty()) {
      if (auto err = store_->mark_delivered(done)) {
        logger()->warn("outbox relay: marking delivered: {}", caf::to_string(err));
        return; // delivered again next time: consumers de-duplicate by event id
      }
    }
    if (done.size() < events->size()) {
      return;
    }
  }
}

} // namespace surge::runtime
