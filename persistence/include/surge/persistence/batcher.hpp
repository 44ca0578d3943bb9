#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <mutex>
#include <utility>
#include <vector>

#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// Coalesces many small, independent storage writes into batches on a worker_pool: an item
/// pushed while a flush is queued joins it, so N concurrent writers cost about one round trip
/// per batch instead of one each (and one thread hand-off instead of N).
///
/// At most one drain job is queued or running at a time; it flushes up to `max_batch` items at
/// once and goes on until nothing is pending (what arrives meanwhile joins the next flush).
/// `flush(resource, items)` runs on a pool thread with the thread's resource (nullptr when it
/// could not be made: it must then fail every item) and must complete every item. Items keep
/// their push order. Thread-safe; push() never blocks on storage.
///
/// Must outlive the pool's queued jobs: stop the pool before destroying the batcher.
template <class Resource, class Item>
class batcher {
 public:
  using flush_fn = std::function<void(Resource*, std::vector<Item>&)>;

  batcher(worker_pool<Resource>& pool, flush_fn flush, std::size_t max_batch = 256)
      : pool_(pool)
      , flush_(std::move(flush))
      , max_batch_(max_batch == 0 ? 1 : max_batch) {}
  batcher(const batcher&) = delete;
  batcher& operator=(const batcher&) = delete;

  void push(Item item) {
    bool schedule = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      pending_.push_back(std::move(item));
      schedule = !queued_;
      queued_ = true;
    }
    if (schedule) {
      pool_.submit([this](Resource* r) { drain(r); });
    }
  }

 private:
  void drain(Resource* r) {
    std::vector<Item> batch;
    for (;;) {
      batch.clear();
      {
        std::lock_guard<std::mutex> guard{mtx_};
        if (pending_.empty()) {
          queued_ = false;
          return;
        }
        if (pending_.size() <= max_batch_) {
          batch.swap(pending_);
        } else {
          auto end = pending_.begin() + static_cast<std::ptrdiff_t>(max_batch_);
          std::move(pending_.begin(), end, std::back_inserter(batch));
          pending_.erase(pending_.begin(), end);
        }
      }
      flush_(r, batch);
    }
  }

  worker_pool<Resource>& pool_;
  const flush_fn flush_;
  const std::size_t max_batch_;
  std::mutex mtx_;
  std::vector<Item> pending_;
  bool queued_ = false; ///< a drain job is queued (or about to take what is pending)
};

} // namespace surge::persistence
