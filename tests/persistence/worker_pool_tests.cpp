// worker_pool: blocking storage calls on dedicated threads.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "memory_journal.hpp"
#include "surge/persistence/batcher.hpp"
#include "surge/persistence/worker_pool.hpp"

using namespace surge::persistence;

namespace {

/// The factory of a pool's journals: memory journals over `state`, counted in `made`.
auto journals_of(const std::shared_ptr<surge::fakes::memory_journal_state>& state,
                 std::atomic<int>& made) {
  return [state, &made] {
    ++made;
    return std::make_unique<surge::fakes::memory_journal>(state);
  };
}

} // namespace

TEST_CASE("worker_pool: runs every job on a per-thread resource, drains on stop") {
  auto state = std::make_shared<surge::fakes::memory_journal_state>();
  std::atomic<int> made{0};
  worker_pool<journal> pool{"test", 2, journals_of(state, made)};
  std::atomic<int> ok{0};
  for (uint64_t i = 1; i <= 200; ++i) {
    pool.submit([&, i](journal* j) {
      REQUIRE(j != nullptr);
      commit_request r;
      r.batch = journal_batch{"sku:w", i, "x"};
      if (!j->commit(std::span<const commit_request>{&r, 1})) {
        ++ok;
      }
    });
  }
  pool.stop();
  CHECK(ok == 200);
  CHECK(made <= 2);
  CHECK(state->batches("sku:w").size() == 200);
  bool ran = false;
  pool.submit([&](journal* j) { ran = j == nullptr; });
  CHECK(ran); // after stop(): at once, on the caller's thread, without a resource
}

TEST_CASE("worker_pool: a broken resource is remade for the next job") {
  auto state = std::make_shared<surge::fakes::memory_journal_state>();
  std::atomic<int> made{0};
  worker_pool<journal> pool{"test", 1, journals_of(state, made)};
  state->fail_next(errc::unavailable);
  std::atomic<int> failed{0};
  for (uint64_t i = 1; i <= 3; ++i) {
    pool.submit([&, i](journal* j) {
      commit_request r;
      r.batch = journal_batch{"sku:b", i, "x"};
      if (j->commit(std::span<const commit_request>{&r, 1})) {
        ++failed;
      }
    });
  }
  pool.stop();
  CHECK(failed == 1);
  CHECK(made == 2);
}

namespace {

/// A resource that records the batches it was given.
struct batch_sink {
  std::mutex mtx;
  std::vector<std::vector<int>> batches;
  bool healthy() const { return true; }
};

} // namespace

TEST_CASE("batcher: every item flushed exactly once, in bounded batches, in push order") {
  batch_sink sink;
  worker_pool<batch_sink> pool{"batch", 2, [] { return std::make_unique<batch_sink>(); }};
  std::atomic<int> done{0};
  std::atomic<int> without_resource{0};
  std::vector<std::atomic<int>> seen(4000);
  batcher<batch_sink, int> b{pool,
                             [&](batch_sink* r, std::vector<int>& items) {
                               without_resource += r == nullptr ? 1 : 0;
                               std::this_thread::sleep_for(std::chrono::microseconds{200});
                               std::lock_guard<std::mutex> guard{sink.mtx};
                               sink.batches.push_back(items);
                               for (int i : items) {
                                 ++seen[static_cast<std::size_t>(i)];
                                 ++done;
                               }
                             },
                             64};
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&b, t] {
      for (int i = 0; i < 1000; ++i) {
        b.push(t * 1000 + i);
      }
    });
  }
  for (auto& p : producers) {
    p.join();
  }
  pool.stop(); // runs every queued flush
  CHECK(done == 4000);
  CHECK(without_resource == 0);
  for (const auto& s : seen) {
    REQUIRE(s == 1);
  }
  // Items were coalesced (far fewer flushes than items), never above max_batch, and each
  // producer's items appear in its push order, within a batch and across batches.
  CHECK(sink.batches.size() < 4000);
  std::array<int, 4> last{-1, -1, -1, -1};
  for (const auto& batch : sink.batches) {
    CHECK(batch.size() <= 64);
    for (int i : batch) {
      CHECK(i > last[static_cast<std::size_t>(i / 1000)]);
      last[static_cast<std::size_t>(i / 1000)] = i;
    }
  }
}

TEST_CASE("batcher: without a resource, the flush is told so (and must fail its items)") {
  worker_pool<batch_sink> pool{"batch", 1, [] { return std::unique_ptr<batch_sink>{}; }};
  std::atomic<int> failed{0};
  batcher<batch_sink, int> b{pool, [&](batch_sink* r, std::vector<int>& items) {
                               if (r == nullptr) {
                                 failed += static_cast<int>(items.size());
                               }
                             }};
  for (int i = 0; i < 10; ++i) {
    b.push(i);
  }
  pool.stop();
  b.push(10); // after stop: flushed at once on this thread, without a resource
  CHECK(failed == 11);
}

TEST_CASE("batcher: max_drains batches in flight at once, never more, each item once") {
  // Two drains: while one flush is held, the next push gets a flush of its own (as two
  // journal writers commit two transactions at once); a third flush waits for one of them.
  worker_pool<batch_sink> pool{"batch", 3, [] { return std::make_unique<batch_sink>(); }};
  std::mutex mtx;
  std::condition_variable cv;
  int in_flight = 0;
  int most = 0;
  bool release = false;
  std::vector<int> flushed;
  batcher<batch_sink, int> b{pool,
                             [&](batch_sink*, std::vector<int>& items) {
                               std::unique_lock<std::mutex> lock{mtx};
                               most = std::max(most, ++in_flight);
                               cv.notify_all();
                               cv.wait_for(lock, std::chrono::seconds{10}, [&] { return release; });
                               flushed.insert(flushed.end(), items.begin(), items.end());
                               --in_flight;
                             },
                             64, 2};
  b.push(1);
  {
    std::unique_lock<std::mutex> lock{mtx};
    REQUIRE(cv.wait_for(lock, std::chrono::seconds{10}, [&] { return in_flight == 1; }));
  }
  b.push(2); // the first flush is held: a second drain takes it
  {
    std::unique_lock<std::mutex> lock{mtx};
    REQUIRE(cv.wait_for(lock, std::chrono::seconds{10}, [&] { return in_flight == 2; }));
  }
  for (int i = 3; i <= 50; ++i) {
    b.push(i); // both drains busy: these wait for one of them
  }
  {
    std::lock_guard<std::mutex> lock{mtx};
    release = true;
  }
  cv.notify_all();
  pool.stop();
  CHECK(most == 2);
  std::sort(flushed.begin(), flushed.end());
  REQUIRE(flushed.size() == 50);
  for (int i = 0; i < 50; ++i) {
    CHECK(flushed[static_cast<std::size_t>(i)] == i + 1);
  }
}
