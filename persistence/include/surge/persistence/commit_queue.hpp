#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include <caf/error.hpp>

#include "surge/persistence/batcher.hpp"
#include "surge/persistence/journal.hpp"
#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// Node-wide group commit: requests of many entities that arrive while a transaction is in
/// flight share the next transaction.
///
/// A batcher (batcher.hpp) on a pool of `writers` threads, each owning one journal (made by the
/// factory, remade after the connection broke): up to `writers` transactions are in flight at
/// once, each committing up to `max_batch` queued requests together. When a transaction fails
/// with errc::conflict or errc::fenced, each of its requests is retried alone so that only the
/// conflicting or fenced ones fail. Each request's callback runs exactly once, on a writer thread,
/// with none on success; callbacks must not block.
///
/// Thread-safe. Never blocks the caller of submit().
class commit_queue {
 public:
  using callback = std::function<void(const caf::error&)>;
  using journal_factory = std::function<std::unique_ptr<journal>()>;

  /// journal.writers, journal.max_batch (no defaults of their own).
  struct options {
    std::size_t writers = 0;
    std::size_t max_batch = 0;
  };

  struct counters {
    uint64_t transactions = 0; ///< committed transactions
    uint64_t requests = 0;     ///< committed requests
    uint64_t failures = 0;     ///< requests answered with an error
  };

  /// `observe`, when set, is told each transaction's time and size (on a writer thread).
  commit_queue(journal_factory factory, options opts,
               std::function<void(double seconds, std::size_t batches)> observe = {});
  ~commit_queue(); ///< stop()

  commit_queue(const commit_queue&) = delete;
  commit_queue& operator=(const commit_queue&) = delete;

  /// Queues `req`; `done` is called once it is committed or failed. After stop(), `done` is
  /// called at once with errc::unavailable.
  void submit(commit_request req, callback done);

  /// Finishes what is queued, then joins the writers. Idempotent.
  void stop();

  counters stats() const;

 private:
  struct item {
    commit_request req;
    callback done;
  };
  /// One writer thread's journal, remade by commit_batch when it broke (the pool never remakes
  /// it: a broken connection is found in the middle of a batch's retries).
  struct writer {
    std::unique_ptr<journal> jnl;
    bool healthy() const { return true; }
  };
  /// Commits `batch` on `w`'s journal and answers every callback once; `w` null: the pool could
  /// not make a writer or has stopped.
  void commit_batch(writer* w, std::vector<item>& batch);

  /// Commits `reqs` on `jnl` in one transaction, reported to observe_.
  caf::error commit_timed(journal& jnl, std::span<const commit_request> reqs);

  const journal_factory factory_;
  const std::function<void(double, std::size_t)> observe_;
  mutable std::mutex mtx_;
  bool stopping_ = false; ///< guarded by mtx_
  counters stats_;        ///< guarded by mtx_
  std::mutex stop_mtx_;   ///< serialises stop() callers while the writers are joined
  worker_pool<writer> pool_;
  batcher<writer, item> batches_; ///< after pool_: it is destroyed first, once pool_ stopped
};

} // namespace surge::persistence
