#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/error.hpp>

#include "surge/persistence/journal.hpp"

namespace surge::persistence {

/// Node-wide group commit: requests of many entities that arrive while a transaction is in
/// flight share the next transaction.
///
/// `writers` threads each own one journal (made by the factory, remade after the connection
/// broke). A writer takes up to `max_batch` queued requests and commits them together. When that
/// transaction fails with errc::conflict or errc::fenced, each request is retried alone so that
/// only the conflicting or fenced ones fail. Each request's callback runs exactly once, on a writer
/// thread, with none on success; callbacks must not block.
///
/// Thread-safe. Never blocks the caller of submit().
class commit_queue {
 public:
  using callback = std::function<void(const caf::error&)>;
  using journal_factory = std::function<std::unique_ptr<journal>()>;

  struct options {
    std::size_t writers = 2;
    std::size_t max_batch = 512;
  };

  struct counters {
    uint64_t transactions = 0; ///< committed transactions
    uint64_t requests = 0;     ///< committed requests
    uint64_t failures = 0;     ///< requests answered with an error
  };

  commit_queue(journal_factory factory, options opts);
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
  void run(std::size_t index);
  /// Commits `batch` on `jnl` (remade when broken) and answers every callback once.
  void commit_batch(std::unique_ptr<journal>& jnl, std::vector<item>& batch);

  const journal_factory factory_;
  const options opts_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<item> queue_;
  bool stopping_ = false;
  counters stats_;
  std::vector<std::thread> threads_;
  std::mutex join_mtx_; ///< serialises stop() callers while they join the writers
};

} // namespace surge::persistence
