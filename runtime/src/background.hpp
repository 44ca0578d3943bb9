#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "surge/actors/order.hpp"
#include "surge/actors/sale.hpp"
#include "surge/actors/sales.hpp"
#include "surge/actors/sku.hpp"
#include "surge/persistence/redis.hpp"
#include "surge/persistence/sales.hpp"

namespace surge::runtime {

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

/// A thread that runs `step` every `interval` until stopped. stop() wakes it and joins.
class periodic {
 public:
  periodic(std::string name, std::chrono::milliseconds interval, std::function<void()> step);
  ~periodic(); ///< stop()
  periodic(const periodic&) = delete;
  periodic& operator=(const periodic&) = delete;
  void stop();
  /// Runs the next step now instead of at the end of the interval (once however often it is
  /// called meanwhile). Never blocks; any thread.
  void wake();

 private:
  void run();
  const std::string name_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> step_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

/// Reads the sales not ended for an hour (sale_scheduler::look_back_ms) from `store` into
/// `index`, on the calling thread (blocks). An error leaves `index` as it was.
caf::error load_sales(persistence::sale_store& store, actors::sale_index& index, int64_t now_ms);

/// The node's sales, kept fresh and warmed. Every `refresh` (and at once after wake(), e.g. an
/// admin's put on this node) it reads the sales not ended for an hour into `index` (a failure
/// keeps the old index and is logged once per outage); then, for every sale in its prewarm
/// window [starts_at - prewarm, ends_at + 60 s), it sends (warm_atom) to its waiting room
/// through `queues` (the owner activates it; the sale actor reads its SKUs, which activate and
/// load) and, once per sale version (updated_at), has `warm` render its SKUs' product pages on
/// this node, recording when they are in (pages_warm()). Logs (logger "sales") when a prewarm
/// starts, when this node's pages are warm, and when a sale living here reports itself warm on
/// `board`. Blocking calls run on its own thread with its own connection.
class sale_scheduler {
 public:
  struct options {
    std::string pg_url;
    std::chrono::milliseconds refresh{}; ///< sales.refresh
    std::chrono::milliseconds prewarm{}; ///< sales.prewarm
  };
  /// Renders the pages of `skus` and calls `done(rendered)` once, on any thread (net::warm_pages).
  using warm_fn = std::function<void(const std::vector<std::string>& skus,
                                     std::function<void(std::size_t rendered)> done)>;

  /// REQUIRES: `queues` and `board` outlive the scheduler; `warm` may be empty (no pages).
  sale_scheduler(options opts, std::shared_ptr<actors::sale_index> index,
                 actors::sale_directory* queues, const actors::sale_board* board, warm_fn warm,
                 std::function<int64_t()> now_ms);
  ~sale_scheduler(); ///< stop()
  sale_scheduler(const sale_scheduler&) = delete;
  sale_scheduler& operator=(const sale_scheduler&) = delete;

  /// Refresh and schedule now (sales_changed). Never blocks.
  void wake() { loop_.wake(); }
  void stop() { loop_.stop(); }

  /// (sale id, this node's page cache holds its pages) for every sale in its prewarm window,
  /// by sale id: surge_sale_pages_warm. Any thread.
  std::vector<std::pair<std::string, bool>> pages_warm() const;

  /// How long after its end a sale is still warmed (late shoppers' pages, its queue's answers).
  static constexpr int64_t linger_ms = 60'000;
  /// How long after its end a sale stays in the index (its SKUs answer sale_ended meanwhile).
  static constexpr int64_t look_back_ms = 3'600'000;

 private:
  /// What the scheduler did for one sale in its window.
  struct warming {
    int64_t version = 0;      ///< the sale's updated_at_ms the pages were asked for
    bool pages_asked = false; ///< a warm() of `version` is under way
    bool pages_warm = false;  ///< the last warm() rendered every page
    bool queue_warm = false;  ///< its sale actor here said warm (logged once)
  };
  /// Shared with warm()'s callbacks, which may outlive the scheduler.
  struct shared_state {
    mutable std::mutex mtx;
    std::map<std::string, warming> sales;
  };

  void step();
  void schedule(int64_t now);

  const options opts_;
  const std::shared_ptr<actors::sale_index> index_;
  actors::sale_directory* const queues_;
  const actors::sale_board* const board_;
  const warm_fn warm_;
  const std::function<int64_t()> now_ms_;
  const std::shared_ptr<shared_state> state_ = std::make_shared<shared_state>();
  std::unique_ptr<persistence::sale_store> store_; ///< owned by the thread
  bool failing_ = false;                           ///< owned by the thread: logged the outage
  periodic loop_;                                  ///< last: starts the thread
};

/// Settles orders left pending or paid (a crash between charge and confirm, a payment outcome
/// that was unknown): asks PostgreSQL for such orders older than `settle_after`, and for orders
/// waiting for 3-D Secure longer than `action_after` (their actor's timer was lost with it), and
/// sends each order actor `reconcile`, which looks the charge up by its key and carries on.
/// Blocking calls run on its own thread with its own connection.
class order_reconciler {
 public:
  order_reconciler(std::string pg_url, actors::order_directory* orders,
                   std::chrono::milliseconds interval, std::chrono::milliseconds settle_after,
                   std::chrono::milliseconds action_after);

 private:
  void step();
  const std::string pg_url_;
  actors::order_directory* const orders_;
  const std::chrono::milliseconds settle_after_;
  const std::chrono::milliseconds action_after_;
  std::unique_ptr<persistence::order_store> store_; ///< owned by the thread
  periodic loop_;
};

/// Makes sure that every hold is released in time (G6) even when nobody asks for its SKU: a SKU
/// actor expires its holds by a timer while it is active, but a SKU whose shard changed hands
/// (or whose node died) with live holds stays inactive until its next command. Every
/// `interval` this asks PostgreSQL which SKUs hold stock (a partial index) and activates those
/// this node serves (acquire_local) that are not active; activation releases what expired and
/// arms the timer.
class hold_sweeper {
 public:
  hold_sweeper(std::string pg_url, actors::sku_directory* skus, std::chrono::milliseconds interval);

 private:
  void step();
  const std::string pg_url_;
  actors::sku_directory* const skus_;
  std::unique_ptr<persistence::journal> pg_; ///< owned by the thread
  periodic loop_;
};

/// Delivers outbox events to the Redis stream `<prefix><topic>`: `<prefix>orders` (topic
/// "orders"), `<prefix>refunds` and `<prefix>catalog` (product changes), at least once and in id
/// order, then marks them delivered. Only the holder of the relay lock relays, so nodes do not
/// deliver the same events side by side; after a crash the next holder resumes with what is not
/// marked. Each entry carries the event id and the order id so that consumers de-duplicate.
class outbox_relay {
 public:
  outbox_relay(std::string pg_url, persistence::redis_options redis,
               std::chrono::milliseconds interval);

 private:
  void step();
  const std::string pg_url_;
  const persistence::redis_options redis_;
  std::unique_ptr<persistence::order_store> store_;   ///< owned by the thread
  std::unique_ptr<persistence::event_stream> stream_; ///< owned by the thread
  bool leader_ = false;
  periodic loop_;
};

} // namespace surge::runtime
