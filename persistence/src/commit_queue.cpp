#include "surge/persistence/commit_queue.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <span>

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

caf::error no_journal() {
  return make_error(errc::unavailable, "cannot connect to the journal");
}

} // namespace

commit_queue::commit_queue(journal_factory factory, options opts,
                           std::function<void(double, std::size_t)> observe)
    : factory_(std::move(factory))
    , observe_(std::move(observe))
    , pool_("journal", std::max<std::size_t>(opts.writers, 1),
            [this] { return std::make_unique<writer>(writer{make_journal(factory_)}); })
    , batches_(
          pool_, [this](writer* w, std::vector<item>& batch) { commit_batch(w, batch); },
          std::max<std::size_t>(opts.max_batch, 1), std::max<std::size_t>(opts.writers, 1)) {}

commit_queue::~commit_queue() {
  stop();
}

void commit_queue::submit(commit_request req, callback done) {
  bool refused = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    refused = stopping_;
    stats_.failures += refused ? 1 : 0;
  }
  if (refused) {
    done(make_error(errc::unavailable, "commit queue stopped"));
    return;
  }
  // Pushed after a concurrent stop(), it still gets its answer: the batcher's drain then runs
  // without a writer and fails it as unavailable.
  batches_.push(item{std::move(req), std::move(done)});
}

void commit_queue::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  std::lock_guard<std::mutex> guard{stop_mtx_}; // worker_pool::stop joins: one caller at a time
  pool_.stop(); // the drains queued run until nothing is pending, then the writers are joined
}

commit_queue::counters commit_queue::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

caf::error commit_queue::commit_timed(journal& jnl, std::span<const commit_request> reqs) {
  if (!observe_) {
    return jnl.commit(reqs);
  }
  const auto start = std::chrono::steady_clock::now();
  auto err = jnl.commit(reqs);
  observe_(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
           reqs.size());
  return err;
}

void commit_queue::commit_batch(writer* w, std::vector<item>& batch) {
  std::unique_ptr<journal> none;
  auto& jnl = w != nullptr ? w->jnl : none; // none: the pool has stopped, or made no writer
  if (w != nullptr && (!jnl || !jnl->healthy())) {
    jnl = make_journal(factory_);
  }
  std::vector<caf::error> results(batch.size());
  uint64_t transactions = 0;
  uint64_t committed = 0;
  if (!jnl) {
    for (auto& r : results) {
      r = no_journal();
    }
  } else {
    std::vector<commit_request> reqs;
    reqs.reserve(batch.size());
    for (auto& x : batch) {
      reqs.push_back(std::move(x.req));
    }
    auto err = commit_timed(*jnl, reqs);
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
          results[i] = no_journal();
          continue;
        }
        results[i] = commit_timed(*jnl, std::span<const commit_request>{&reqs[i], 1});
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
