// The commit queue, once, against every backend.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"

using namespace surge::persistence;
using surge::test::fake_backend;
using surge::test::pg_backend;

namespace {

commit_request req(std::string stream, uint64_t seq) {
  commit_request r;
  r.batch = journal_batch{std::move(stream), seq, "payload " + std::to_string(seq)};
  return r;
}

/// Counts answers per request and lets the test wait for all of them (bounded).
class answers {
 public:
  explicit answers(std::size_t n)
      : calls_(n)
      , errors_(n) {}

  commit_queue::callback on(std::size_t i) {
    return [this, i](const caf::error& err) {
      std::lock_guard<std::mutex> guard{mtx_};
      ++calls_[i];
      errors_[i] = err;
      ++total_;
      cv_.notify_all();
    };
  }

  bool wait_all(std::chrono::seconds limit = std::chrono::seconds{60}) {
    std::unique_lock<std::mutex> lock{mtx_};
    return cv_.wait_for(lock, limit, [this] { return total_ >= calls_.size(); });
  }

  std::size_t total() {
    std::lock_guard<std::mutex> guard{mtx_};
    return total_;
  }
  int calls(std::size_t i) {
    std::lock_guard<std::mutex> guard{mtx_};
    return calls_[i];
  }
  caf::error error(std::size_t i) {
    std::lock_guard<std::mutex> guard{mtx_};
    return errors_[i];
  }

 private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<int> calls_;
  std::vector<caf::error> errors_;
  std::size_t total_ = 0;
};

/// Wraps a journal: records the size of every commit and holds the first commit until the
/// gate opens, so that tests can make requests queue up behind it deterministically.
class gated_journal final : public journal {
 public:
  struct shared {
    std::promise<void> entered; ///< set when the first commit arrived
    std::shared_future<void> gate;
    std::atomic<bool> first{true};
    std::mutex mtx;
    std::vector<std::size_t> sizes;
  };

  gated_journal(std::unique_ptr<journal> inner, std::shared_ptr<shared> s)
      : inner_(std::move(inner))
      , s_(std::move(s)) {}

  bool healthy() const override { return inner_->healthy(); }
  caf::error commit(std::span<const commit_request> reqs) override {
    if (s_->first.exchange(false)) {
      s_->entered.set_value();
      s_->gate.wait();
    }
    {
      std::lock_guard<std::mutex> guard{s_->mtx};
      s_->sizes.push_back(reqs.size());
    }
    return inner_->commit(reqs);
  }
  caf::expected<std::vector<journal_batch>> read(const std::string& s, uint64_t a) override {
    return inner_->read(s, a);
  }
  caf::expected<std::optional<snapshot>> load_snapshot(const std::string& s) override {
    return inner_->load_snapshot(s);
  }
  caf::expected<std::optional<product_record>> load_product(const std::string& s) override {
    return inner_->load_product(s);
  }
  caf::expected<std::vector<std::string>> skus_holding(std::size_t limit) override {
    return inner_->skus_holding(limit);
  }

 private:
  const std::unique_ptr<journal> inner_;
  const std::shared_ptr<shared> s_;
};

} // namespace

#define BACKENDS fake_backend, pg_backend

TEST_CASE_TEMPLATE("commit_queue: 2000 requests from 8 threads over 50 streams", B, BACKENDS) {
  B backend;
  backend.simulate_latency();
  constexpr std::size_t threads = 8;
  constexpr std::size_t streams = 50;
  constexpr std::size_t per_stream = 40; // 2000 requests
  constexpr std::size_t total = streams * per_stream;
  answers ans{total};
  std::atomic<int> factory_calls{0};
  {
    commit_queue q{[&] {
                     ++factory_calls;
                     return backend.connect();
                   },
                   commit_queue::options{2, 512}};
    std::vector<std::thread> producers;
    for (std::size_t t = 0; t < threads; ++t) {
      producers.emplace_back([&, t] {
        for (std::size_t s = t; s < streams; s += threads) {
          for (std::size_t seq = 1; seq <= per_stream; ++seq) {
            const auto i = s * per_stream + (seq - 1);
            q.submit(req("sku:" + std::to_string(s), seq), ans.on(i));
          }
        }
      });
    }
    for (auto& p : producers) {
      p.join();
    }
    REQUIRE(ans.wait_all());
    const auto st = q.stats();
    CHECK(st.requests == total);
    CHECK(st.failures == 0);
    CHECK(st.transactions >= 1);
    CHECK(st.transactions < total); // batching happened
    MESSAGE(std::string{B::name} << ": " << total << " requests in " << st.transactions
                                 << " transactions");
  }
  CHECK(factory_calls <= 2);
  for (std::size_t i = 0; i < total; ++i) {
    CHECK_MESSAGE(ans.calls(i) == 1, "request " << i);
    CHECK_MESSAGE(!ans.error(i), caf::to_string(ans.error(i)));
  }
  auto j = backend.connect();
  for (std::size_t s = 0; s < streams; ++s) {
    auto batches = j->read("sku:" + std::to_string(s), 0);
    REQUIRE(batches);
    REQUIRE(batches->size() == per_stream);
    CHECK(batches->front().seq == 1);
    CHECK(batches->back().seq == per_stream);
  }
}

TEST_CASE_TEMPLATE("commit_queue: a conflicting request fails alone", B, BACKENDS) {
  B backend;
  {
    auto j = backend.connect();
    REQUIRE(!j->commit(std::vector<commit_request>{req("sku:dup", 1)}));
  }
  auto gate = std::make_shared<gated_journal::shared>();
  std::promise<void> open;
  gate->gate = open.get_future().share();
  auto entered = gate->entered.get_future();
  constexpr std::size_t mates = 10;
  answers ans{mates + 2};
  commit_queue q{[&] { return std::make_unique<gated_journal>(backend.connect(), gate); },
                 commit_queue::options{1, 512}};
  q.submit(req("sku:first", 1), ans.on(0));
  REQUIRE(entered.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  // The only writer is held in its first commit: everything below queues into one batch.
  for (std::size_t i = 0; i < mates; ++i) {
    q.submit(req("sku:mate" + std::to_string(i), 1), ans.on(1 + i));
    if (i == mates / 2) {
      q.submit(req("sku:dup", 1), ans.on(mates + 1));
    }
  }
  open.set_value();
  REQUIRE(ans.wait_all());
  for (std::size_t i = 0; i <= mates; ++i) {
    CHECK_MESSAGE(!ans.error(i), i << ": " << caf::to_string(ans.error(i)));
  }
  CHECK(is(ans.error(mates + 1), errc::conflict));
  for (std::size_t i = 0; i < mates + 2; ++i) {
    CHECK(ans.calls(i) == 1);
  }
  {
    std::lock_guard<std::mutex> guard{gate->mtx};
    REQUIRE(gate->sizes.size() >= 2);
    CHECK(gate->sizes[0] == 1);
    CHECK(gate->sizes[1] == mates + 1); // the batch, then each request alone
  }
  const auto st = q.stats();
  CHECK(st.requests == mates + 1);
  CHECK(st.failures == 1);
  auto j = backend.connect();
  for (std::size_t i = 0; i < mates; ++i) {
    CHECK(j->read("sku:mate" + std::to_string(i), 0)->size() == 1);
  }
  CHECK(j->read("sku:dup", 0)->front().payload == "payload 1");
}

TEST_CASE_TEMPLATE("commit_queue: stop drains, then refuses at once", B, BACKENDS) {
  B backend;
  constexpr std::size_t n = 500;
  answers ans{n + 1};
  commit_queue q{[&] { return backend.connect(); }, commit_queue::options{2, 64}};
  for (std::size_t i = 0; i < n; ++i) {
    q.submit(req("sku:" + std::to_string(i % 7), i / 7 + 1), ans.on(i));
  }
  q.stop();
  CHECK(ans.total() == n); // drained before stop() returned
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(ans.calls(i) == 1);
    CHECK(!ans.error(i));
  }
  q.submit(req("sku:late", 1), ans.on(n));
  CHECK(ans.calls(n) == 1); // answered before submit() returned
  CHECK(is(ans.error(n), errc::unavailable));
  q.stop(); // idempotent
  CHECK(q.stats().requests == n);
  CHECK(backend.connect()->read("sku:late", 0)->empty());
}

TEST_CASE_TEMPLATE("commit_queue: a broken connection is remade", B, BACKENDS) {
  B backend;
  std::atomic<int> factory_calls{0};
  commit_queue q{[&] {
                   ++factory_calls;
                   return backend.connect();
                 },
                 commit_queue::options{1, 512}};
  answers first{1};
  q.submit(req("sku:r", 1), first.on(0));
  REQUIRE(first.wait_all());
  REQUIRE(!first.error(0));
  CHECK(factory_calls == 1);

  backend.break_connections();
  answers second{1};
  q.submit(req("sku:r", 2), second.on(0));
  REQUIRE(second.wait_all());
  CHECK(second.calls(0) == 1);
  if (second.error(0)) {
    CHECK_MESSAGE(is(second.error(0), errc::unavailable), caf::to_string(second.error(0)));
  }
  answers third{1};
  q.submit(req("sku:r", 3), third.on(0));
  REQUIRE(third.wait_all());
  CHECK_MESSAGE(!third.error(0), caf::to_string(third.error(0)));
  CHECK(factory_calls == 2);
  q.stop();
}

TEST_CASE("commit_queue: a factory that cannot connect answers unavailable") {
  commit_queue q{[] { return std::unique_ptr<journal>{}; }, commit_queue::options{1, 8}};
  answers ans{3};
  for (std::size_t i = 0; i < 3; ++i) {
    q.submit(req("sku:x", i + 1), ans.on(i));
  }
  REQUIRE(ans.wait_all());
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(is(ans.error(i), errc::unavailable));
  }
  CHECK(q.stats().failures == 3);
}
