#pragma once

#include <cstddef>
#include <functional>

namespace surge::persistence {

/// Timings the storage reports for the node's metrics (the runtime connects them to net's
/// registry; persistence knows no metrics library). Each hook may be empty. Set before the
/// storage is made, read-only afterwards; called on the storage's own threads, so each must be
/// cheap, thread-safe and must not block.
struct storage_observer {
  /// One journal transaction (a group commit, or a request retried alone): its wall time and
  /// how many entity batches it carried.
  std::function<void(double seconds, std::size_t batches)> journal_commit;
  /// One Redis round trip of batched cart writes: its wall time and how many writes it carried.
  std::function<void(double seconds, std::size_t writes)> redis_batch;
  /// How long a job waited in the queue of the PostgreSQL, Redis or order pool.
  std::function<void(double seconds)> pg_wait;
  std::function<void(double seconds)> redis_wait;
  std::function<void(double seconds)> orders_wait;
};

} // namespace surge::persistence
