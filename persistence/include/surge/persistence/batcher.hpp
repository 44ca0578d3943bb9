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
/// pushed while a flush is under way joins the next one, so N concurrent writers cost about one
/// round trip per batch instead of one each (and one thread hand-off instead of N).
///
/// At most `max_drains` drain jobs are queued or running at a time (1: strictly one batch after
/// the other; more: that many batches in flight at once, each on its own pool thread). A drain
/// flushes up to `max_batch` items at once and goes on until nothing is pending. `flush(resource,
/// items)` runs on a pool thread with the thread's resource (nullptr when it could not be made,
/// or when the pool has stopped: it must then fail every item) and must complete every item.
/// Items of one batch keep their push order. Thread-safe; push() never blocks on storage.
///
/// Must outlive the pool's queued jobs: stop the pool before destroying the batcher.
template <class Resource, class Item>
class batcher {
 public:
  using flush_fn = std::function<void(Resource*, std::vector<Item>&)>;

  batcher(worker_pool<Resource>& pool, flush_fn flush, std::size_t max_batch = 256,
          std::size_t max_drains = 1)
      : pool_(pool)
      , flush_(std::move(flush))
      , max_batch_(max_batch == 0 ? 1 : max_batch)
      , max_drains_(max_drains == 0 ? 1 : max_drains) {}
  batcher(const batcher&) = delete;
  batcher& operator=(const batcher&) = delete;

  void push(Item item) {
    bool schedule = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      pending_.push_back(std::move(item));
      schedule = draining_ < max_drains_;
      draining_ += schedule ? 1 : 0;
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
          --draining_;
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
  const std::size_t max_drains_;
  std::mutex mtx_;
  std::vector<Item> pending_;
  std::size_t draining_ = 0; ///< drain jobs queued or running (each takes what is pending)
};

} // namespace surge::persistence
