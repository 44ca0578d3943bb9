#include "surge/persistence/commit_queue.hpp"

#include <algorithm>
#include <exception>
#include <iterator>

#include "surge/persistence/errors.hpp"

namespace surge::persistence {

namespace {

/// A journal from `factory`, or nullptr when it throws or cannot connect.
std::unique_ptr<journal> make_journal(const commit_queue::journal_factory& factory) {
  try {
    return factory();
  } catch (const std::exception&) {
    return nullptr;
  }
}

} // namespace

commit_queue::commit_queue(journal_factory factory, options opts)
    : factory_(std::move(factory))
    , opts_(opts) {
  const auto writers = std::max<std::size_t>(opts_.writers, 1);
  threads_.reserve(writers);
  for (std::size_t i = 0; i < writers; ++i) {
    threads_.emplace_back([this, i] { run(i); });
  }
}

commit_queue::~commit_queue() {
  stop();
}

void commit_queue::submit(commit_request req, callback done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stopping_) {
      queue_.push_back(item{std::move(req), std::move(done)});
      cv_.notify_one();
      return;
    }
    ++stats_.failures;
  }
  done(make_error(errc::unavailable, "commit queue stopped"));
}

void commit_queue::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  std::lock_guard<std::mutex> guard{join_mtx_};
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

commit_queue::counters commit_queue::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

void commit_queue::run(std::size_t) {
  const auto max_batch = std::max<std::size_t>(opts_.max_batch, 1);
  std::unique_ptr<journal> jnl;
  std::deque<item> taken;
  std::vector<item> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return; // stopping and drained
      }
      if (queue_.size() <= max_batch) {
        taken.swap(queue_); // O(1) under the lock
      } else {
        auto last = queue_.begin() + static_cast<std::ptrdiff_t>(max_batch);
        std::move(queue_.begin(), last, std::back_inserter(taken));
        queue_.erase(queue_.begin(), last);
        cv_.notify_one(); // more work for another writer
      }
    }
    batch.clear();
    batch.reserve(taken.size());
    std::move(taken.begin(), taken.end(), std::back_inserter(batch));
    taken.clear();
    commit_batch(jnl, batch);
  }
}

void commit_queue::commit_batch(std::unique_ptr<journal>& jnl, std::vector<item>& batch) {
  if (!jnl || !jnl->healthy()) {
    jnl = make_journal(factory_);
  }
  std::vector<caf::error> results(batch.size());
  uint64_t transactions = 0;
  uint64_t committed = 0;
  if (!jnl) {
    for (auto& r : results) {
      r = make_error(errc::unavailable, "cannot connect to the journal");
    }
  } else {
    std::vector<commit_request> reqs;
    reqs.reserve(batch.size());
    for (auto& x : batch) {
      reqs.push_back(std::move(x.req));
    }
    auto err = jnl->commit(reqs);
    if (!err) {
      transactions = 1;
      committed = reqs.size();
    } else if ((is(err, errc::conflict) || is(err, errc::fenced)) && reqs.size() > 1) {
      // Only the conflicting (or fenced) requests fail: retry each one alone.
      for (std::size_t i = 0; i < reqs.size(); ++i) {
        if (!jnl || !jnl->healthy()) {
          jnl = make_journal(factory_);
        }
        if (!jnl) {
          results[i] = make_error(errc::unavailable, "cannot connect to the journal");
          continue;
        }
        results[i] = jnl->commit(std::span<const commit_request>{&reqs[i], 1});
        if (!results[i]) {
          ++transactions;
          ++committed;
        }
      }
    } else {
      // unavailable (outcome maybe unknown): never retried here, the callers re-read.
      for (auto& r : results) {
        r = err;
      }
    }
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stats_.transactions += transactions;
    stats_.requests += committed;
    stats_.failures += batch.size() - committed;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(results[i]);
  }
}

} // namespace surge::persistence
