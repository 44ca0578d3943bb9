#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

namespace surge::persistence {

/// Dedicated threads for blocking storage calls, so that no CAF scheduler thread or HTTP I/O
/// thread ever waits on PostgreSQL or Redis.
///
/// Each of the `threads` threads owns one `Resource` (a connection), made lazily by `factory`
/// on that thread; a job that finds its resource broken may call `reset()` on the job context to
/// have it remade for the next job. Jobs run in FIFO order per pool (not per thread).
/// Thread-safe; submit() never blocks. When `on_wait` is set, it is told on the pool thread how
/// long each job waited in the queue (seconds; for the node's metrics; must not block).
template <class Resource>
class worker_pool {
 public:
  using factory_fn = std::function<std::unique_ptr<Resource>()>;
  /// A job gets the thread's resource, or nullptr when the factory failed to make one (the job
  /// must then answer its caller with errc::unavailable).
  using job = std::function<void(Resource*)>;
  using wait_observer = std::function<void(double seconds)>;

  worker_pool(std::string name, std::size_t threads, factory_fn factory, wait_observer on_wait = {})
      : name_(std::move(name))
      , factory_(std::move(factory))
      , on_wait_(std::move(on_wait)) {
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~worker_pool() { stop(); }
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  /// Queues `j`. After stop() the job runs at once on the caller's thread with nullptr.
  void submit(job j) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!stopping_) {
        jobs_.push_back(queued{std::move(j), on_wait_ ? clock::now() : clock::time_point{}});
        cv_.notify_one();
        return;
      }
    }
    j(nullptr);
  }

  /// Runs what is queued, then joins the threads. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

  const std::string& name() const { return name_; }

 private:
  using clock = std::chrono::steady_clock;
  struct queued {
    job j;
    clock::time_point at; ///< when it was queued (only when on_wait_ is set)
  };

  void run() {
    // Named for top -H and perf: "surge-pg", "surge-redis", "surge-orders" (15 bytes at most).
    pthread_setname_np(pthread_self(), ("surge-" + name_).substr(0, 15).c_str());
    std::unique_ptr<Resource> res;
    for (;;) {
      queued q;
      {
        std::unique_lock<std::mutex> lock{mtx_};
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) {
          return;
        }
        q = std::move(jobs_.front());
        jobs_.pop_front();
      }
      if (on_wait_) {
        on_wait_(std::chrono::duration<double>(clock::now() - q.at).count());
      }
      if (!res || !res->healthy()) {
        res = factory_();
      }
      q.j(res.get());
    }
  }

  const std::string name_;
  const factory_fn factory_;
  const wait_observer on_wait_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<queued> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace surge::persistence
