#pragma once

// The node's storage pools and what runs on them: the blocking clients of PostgreSQL and Redis
// each live on worker_pool threads of their own (STYLE rule 7), and cart writes are batched on
// the Redis pool. A node owns them together as an entity_storage (storage.hpp).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <caf/error.hpp>

#include "surge/persistence/batcher.hpp"
#include "surge/persistence/journal.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// One Redis connection's worth of stores, owned by one redis pool thread.
struct redis_conn {
  std::unique_ptr<snapshot_cache> snapshots;
  std::unique_ptr<cart_store> carts;
  bool healthy() const { return snapshots && carts && snapshots->healthy() && carts->healthy(); }
};

using pg_pool = worker_pool<journal>;
using redis_pool = worker_pool<redis_conn>;
using order_pool = worker_pool<order_store>;

/// A cart value for Redis, and what to do once it is stored (no error) or not.
struct cart_write {
  std::string cart_id;
  std::string payload;
  std::chrono::seconds ttl{0};
  std::function<void(caf::error)> done;
};

/// Cart writes coalesced on the Redis pool: carts change often and independently, and a batch
/// of them is one pipelined round trip (cart_store::put_many) instead of one each. Every write's
/// `done` runs once, on a Redis pool thread (errc::unavailable without a connection).
using cart_writer = batcher<redis_conn, cart_write>;

/// How many cart writes a node sends in one round trip (not a setting).
inline constexpr std::size_t default_cart_batch = 256;

/// A cart_writer on `pool`, up to `max_batch` carts per round trip. `observe`, when set, is told
/// each round trip's time and size (on a Redis pool thread).
std::unique_ptr<cart_writer>
make_cart_writer(redis_pool& pool, std::size_t max_batch,
                 std::function<void(double seconds, std::size_t writes)> observe = {});

} // namespace surge::persistence
