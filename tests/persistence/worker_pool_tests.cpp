// worker_pool: blocking storage calls on dedicated threads.

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "memory_journal.hpp"
#include "surge/persistence/worker_pool.hpp"

using namespace surge::persistence;

TEST_CASE("worker_pool: runs every job on a per-thread resource, drains on stop") {
  auto state = std::make_shared<surge::fakes::memory_journal_state>();
  std::atomic<int> made{0};
  worker_pool<journal> pool{"test", 2, [&] {
                              ++made;
                              return std::make_unique<surge::fakes::memory_journal>(state);
                            }};
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
  worker_pool<journal> pool{"test", 1, [&] {
                              ++made;
                              return std::make_unique<surge::fakes::memory_journal>(state);
                            }};
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
