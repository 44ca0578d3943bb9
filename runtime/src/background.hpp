#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "surge/actors/order.hpp"
#include "surge/actors/sku.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::runtime {

/// A thread that runs `step` every `interval` until stopped. stop() wakes it and joins.
class periodic {
 public:
  periodic(std::string name, std::chrono::milliseconds interval, std::function<void()> step);
  ~periodic(); ///< stop()
  periodic(const periodic&) = delete;
  periodic& operator=(const periodic&) = delete;
  void stop();

 private:
  void run();
  const std::string name_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> step_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

/// Settles orders left pending or paid (a crash between charge and confirm, a payment outcome
/// that was unknown): asks PostgreSQL for such orders older than `settle_after` and sends each
/// order actor `reconcile`, which looks the charge up by its key and carries on. Blocking calls
/// run on its own thread with its own connection.
class order_reconciler {
 public:
  order_reconciler(std::string pg_url, actors::order_directory* orders,
                   std::chrono::milliseconds interval, std::chrono::milliseconds settle_after);

 private:
  void step();
  const std::string pg_url_;
  actors::order_directory* const orders_;
  const std::chrono::milliseconds settle_after_;
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
/// "orders"), `<prefix>refunds` and `<prefix>catalog` (product changes), at least once and in id order, then marks them delivered. Only the holder
/// of the relay lock relays, so nodes do not deliver the same events side by side; after a
/// crash the next holder resumes with what is not marked. Each entry carries the event id and
/// the order id so that consumers de-duplicate.
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
