#pragma once

// One node's storage for its entities, owned as one piece: the PostgreSQL pool of journals
// (activation reads), the Redis pool of redis_conn (snapshots, carts) with the cart writer
// batched on it, the pool of order stores, and the node-wide commit queue on journal writers.
//
// Threads: every blocking call runs on the parts' own threads (storage threads for the PostgreSQL
// and Redis pools, order threads for the order pool, journal writers for the commit queue); the
// parts are thread-safe and never block their callers, so actors submit to them from scheduler
// threads. The factories run on those threads and may block (they connect).
//
// Lifecycle: the constructor starts every part. Stopping is two-phase, because the actor system
// that submits to the parts must go in between: drain() lets the commit queue finish what it
// holds (actors waiting on a commit get their answer), then the owner stops the actor system,
// then stop() closes the cart writer's and the pools' work (queued jobs run, threads are joined).
// The parts stay valid until destruction: what is submitted after stop() is answered at once
// with errc::unavailable (nullptr resource). Not copyable.

#include <cstddef>
#include <memory>

#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/observer.hpp"
#include "surge/persistence/pools.hpp"

namespace surge::persistence {

class entity_storage {
 public:
  /// How each part connects. A factory makes one connection on the thread that will own it, or
  /// returns nullptr when it cannot: the job then gets nullptr (errc::unavailable) and the next
  /// job tries again.
  struct factories {
    pg_pool::factory_fn journal; ///< the PostgreSQL pool's and the commit queue's journals
    redis_pool::factory_fn redis;
    order_pool::factory_fn orders;
  };

  /// How many threads and how large a batch; no defaults of their own.
  struct sizes {
    std::size_t storage_threads = 0; ///< threads of the PostgreSQL pool and of the Redis pool each
    std::size_t order_threads = 0;   ///< threads of the order pool
    commit_queue::options commits;   ///< the commit queue's writers and batch size
    std::size_t cart_batch = 0;      ///< most cart writes in one Redis round trip
  };

  /// `obs` (optional hooks, observer.hpp) is handed to the parts it times.
  entity_storage(factories make, sizes n, storage_observer obs = {});
  ~entity_storage(); ///< stop()
  entity_storage(const entity_storage&) = delete;
  entity_storage& operator=(const entity_storage&) = delete;

  /// The commit queue finishes what it holds and refuses what comes after (errc::unavailable).
  /// Idempotent. REQUIRES: called by the owner, not concurrently with stop().
  void drain();

  /// drain(), then the pools run what is queued (the cart writer's batches among it) and join
  /// their threads. Idempotent. REQUIRES: called by the owner, not concurrently with drain().
  void stop();

  pg_pool& pg() { return pg_; }
  redis_pool& redis() { return redis_; }
  /// Batched on redis(); destroyed before it.
  cart_writer& cart_writes() { return *cart_writes_; }
  order_pool& orders() { return orders_; }
  commit_queue& journal() { return journal_; }

 private:
  // Declared in start order; destroyed in reverse (the cart writer before the pool it runs on).
  pg_pool pg_;
  redis_pool redis_;
  const std::unique_ptr<cart_writer> cart_writes_;
  order_pool orders_;
  commit_queue journal_;
};

} // namespace surge::persistence
