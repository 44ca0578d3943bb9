#pragma once

// Concurrency for unit tests: the same work on several threads at once.

#include <thread>
#include <vector>

namespace surge::test {

/// Runs `body(t)` on `n` threads, t = 0 .. n-1, and returns once all of them have.
template <class Body>
void on_threads(int n, Body body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&body, t] { body(t); });
  }
  for (auto& th : threads) {
    th.join();
  }
}

} // namespace surge::test
