#include "background.hpp"

#include <caf/all.hpp>

#include <pthread.h>

#include <algorithm>

#include "surge/config/log.hpp"
#include "surge/persistence/journal.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/sales.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("orders");
  return lg;
}

std::shared_ptr<spdlog::logger> sales_logger() {
  static auto lg = surge::log::get("sales");
  return lg;
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

void periodic::wake() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    woken_ = true;
  }
  cv_.notify_all();
}

void periodic::run() {
  pthread_setname_np(pthread_self(), ("surge-" + name_).substr(0, 15).c_str());
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    step_();
    lock.lock();
    cv_.wait_for(lock, interval_, [this] { return stopping_ || woken_; });
  }
}

order_reconciler::order_reconciler(std::string pg_url, actors::order_directory* orders,
                                   std::chrono::milliseconds interval,
                                   std::chrono::milliseconds settle_after,
                                   std::chrono::milliseconds action_after)
    : pg_url_(std::move(pg_url))
    , orders_(orders)
    , settle_after_(settle_after)
    , action_after_(action_after)
    , loop_("reconciler", interval, [this] { step(); }) {}

void order_reconciler::step() {
  if (!reconnect(store_, [this] { return persistence::make_pg_order_store(pg_url_); })) {
    return; // PostgreSQL down: next round
  }
  auto ids = store_->unsettled(settle_after_, action_after_, 500);
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

caf::error load_sales(persistence::sale_store& store, actors::sale_index& index, int64_t now_ms) {
  auto all = store.list(now_ms - sale_scheduler::look_back_ms);
  if (!all) {
    return std::move(all.error());
  }
  index.replace(std::move(*all));
  return caf::none;
}

sale_scheduler::sale_scheduler(options opts, std::shared_ptr<actors::sale_index> index,
                               actors::sale_directory* queues, const actors::sale_board* board,
                               warm_fn warm, std::function<int64_t()> now_ms)
    : opts_(std::move(opts))
    , index_(std::move(index))
    , queues_(queues)
    , board_(board)
    , warm_(std::move(warm))
    , now_ms_(std::move(now_ms))
    , loop_("sales", opts_.refresh, [this] { step(); }) {}

sale_scheduler::~sale_scheduler() {
  stop();
}

void sale_scheduler::step() {
  if (!store_ || !store_->healthy()) {
    store_ = persistence::make_pg_sale_store(opts_.pg_url);
  }
  const int64_t now = now_ms_();
  if (auto err = load_sales(*store_, *index_, now)) {
    if (!failing_) {
      sales_logger()->warn("cannot read the sales ({}): serving the sales as last read until "
                           "PostgreSQL answers",
                           caf::to_string(err));
      failing_ = true;
    }
  } else if (failing_) {
    sales_logger()->info("sales read again");
    failing_ = false;
  }
  schedule(now);
}

void sale_scheduler::schedule(int64_t now) {
  const int64_t prewarm = opts_.prewarm.count();
  std::vector<actors::sale_index::sale_ptr> due;
  for (auto& s : index_->all()) {
    if (s->starts_at_ms - prewarm <= now && now < s->ends_at_ms + linger_ms) {
      due.push_back(std::move(s));
    }
  }
  // This node's sale actors that report themselves warm (the owner's view).
  std::map<std::string, bool> queue_warm;
  if (board_ != nullptr) {
    for (const auto& q : board_->all()) {
      queue_warm[q.sale_id] = q.warm;
    }
  }
  std::vector<actors::sale_index::sale_ptr> to_render;
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    auto& sales = state_->sales;
    // Sales out of their window (or gone) are forgotten: a later prewarm starts afresh.
    for (auto it = sales.begin(); it != sales.end();) {
      const bool kept = std::any_of(due.begin(), due.end(),
                                    [&](const auto& s) { return s->sale_id == it->first; });
      it = kept ? std::next(it) : sales.erase(it);
    }
    for (const auto& s : due) {
      auto [it, fresh] = sales.try_emplace(s->sale_id);
      auto& w = it->second;
      if (fresh) {
        sales_logger()->info("prewarm of sale {} ({} SKUs, starts in {} s): activating its "
                             "waiting room and SKUs, rendering its pages",
                             s->sale_id, s->skus.size(),
                             std::max<int64_t>(0, (s->starts_at_ms - now + 999) / 1000));
      }
      if (w.version != s->updated_at_ms) {
        w = warming{.version = s->updated_at_ms,
                    .pages_asked = false,
                    .pages_warm = false,
                    .queue_warm = w.queue_warm};
      }
      // Rendered pages live only http.page_cache: they are rendered again on every step of the
      // window (one page per SKU per sales.refresh), not once, so that the cache still holds
      // them when the sale starts. One render at a time per sale.
      if (!w.pages_asked) {
        w.pages_asked = true;
        to_render.push_back(s);
      }
      if (auto q = queue_warm.find(s->sale_id); q != queue_warm.end() && q->second) {
        if (!w.queue_warm) {
          sales_logger()->info("sale {} is warm: its waiting room and every SKU answer on their "
                               "owners",
                               s->sale_id);
        }
        w.queue_warm = true;
      }
    }
  }
  if (queues_ != nullptr) {
    for (const auto& s : due) {
      caf::anon_send(queues_->acquire(s->sale_id), actors::warm_atom::value);
    }
  }
  for (const auto& s : to_render) {
    if (!warm_) {
      continue;
    }
    warm_(s->skus, [state = state_, id = s->sale_id, version = s->updated_at_ms,
                    total = s->skus.size()](std::size_t rendered) {
      std::lock_guard<std::mutex> guard{state->mtx};
      auto it = state->sales.find(id);
      if (it == state->sales.end() || it->second.version != version) {
        return; // out of its window meanwhile, or changed: asked again
      }
      it->second.pages_asked = false; // render again on the next step
      if (!it->second.pages_warm) {
        sales_logger()->info("sale {}: {} of {} product pages rendered on this node", id, rendered,
                             total);
      }
      it->second.pages_warm = rendered == total;
    });
  }
}

std::vector<std::pair<std::string, bool>> sale_scheduler::pages_warm() const {
  std::vector<std::pair<std::string, bool>> out;
  std::lock_guard<std::mutex> guard{state_->mtx};
  for (const auto& [id, w] : state_->sales) {
    out.emplace_back(id, w.pages_warm);
  }
  return out;
}

} // namespace surge::runtime
