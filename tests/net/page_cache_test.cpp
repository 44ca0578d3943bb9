// page_cache: rendered product pages served from memory for a bounded time.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "surge/net/page_cache.hpp"

using surge::net::page_cache;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<const page_cache::page> page_at(page_cache::clock::time_point t, std::string body) {
  return std::make_shared<page_cache::page>(page_cache::page{std::move(body), "\"e\"", t});
}

} // namespace

TEST_CASE("page_cache: a page is served until it is ttl old") {
  page_cache c{1000ms};
  const auto t0 = page_cache::clock::now();
  CHECK(c.get("a", t0) == nullptr);
  c.put("a", page_at(t0, "A1"), c.generation());
  REQUIRE(c.get("a", t0 + 999ms) != nullptr);
  CHECK(c.get("a", t0 + 999ms)->body == "A1");
  CHECK(c.get("b", t0) == nullptr);
  CHECK(c.get("a", t0 + 1000ms) == nullptr); // stale: gone
  CHECK(c.size() == 0);
}

TEST_CASE("page_cache: a drop removes the page and refuses pages rendered before it") {
  page_cache c{10s};
  const auto t0 = page_cache::clock::now();
  const auto before = c.generation();
  c.put("a", page_at(t0, "old"), before);
  c.drop("a");
  CHECK(c.get("a", t0) == nullptr);
  // A render that started before the drop (its data may predate the change) is not kept.
  c.put("a", page_at(t0, "old again"), before);
  CHECK(c.get("a", t0) == nullptr);
  c.put("a", page_at(t0, "new"), c.generation());
  REQUIRE(c.get("a", t0) != nullptr);
  CHECK(c.get("a", t0)->body == "new");
}

TEST_CASE("page_cache: ttl 0 caches nothing; the size stays bounded") {
  page_cache off{0ms};
  CHECK_FALSE(off.enabled());
  off.put("a", page_at(page_cache::clock::now(), "x"), off.generation());
  CHECK(off.get("a") == nullptr);

  page_cache c{60s, 64};
  const auto t0 = page_cache::clock::now();
  for (int i = 0; i < 10000; ++i) {
    c.put("s" + std::to_string(i), page_at(t0, "p"), c.generation());
  }
  CHECK(c.size() <= 64);
  CHECK(c.get("s9999", t0) != nullptr); // the newest is kept
}

TEST_CASE("page_cache: concurrent readers, writers and drops") {
  page_cache c{60s, 1024};
  std::vector<std::thread> ts;
  std::atomic<int> hits{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&c, &hits, t] {
      for (int i = 0; i < 5000; ++i) {
        const auto sku = "s" + std::to_string(i % 50);
        if (auto p = c.get(sku)) {
          hits += p->body == sku ? 1 : 0;
        } else {
          c.put(sku, page_at(page_cache::clock::now(), sku), c.generation());
        }
        if (t == 0 && i % 100 == 0) {
          c.drop(sku);
        }
      }
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  CHECK(hits > 0);
  CHECK(c.size() <= 50);
}

TEST_CASE("page_cache: single flight per key and generation") {
  page_cache c{60s, 1024};
  std::vector<std::string> told;
  auto waiter = [&told](std::string who) {
    return [&told, who](std::shared_ptr<const page_cache::page> made,
                        const surge::net::http_response* failed) {
      told.push_back(who + ":" + (made ? made->body : "failed " + std::to_string(failed->status)));
    };
  };
  const auto g = c.generation();
  CHECK(c.lead("k", g, waiter("leader")));   // leads: not queued
  CHECK_FALSE(c.lead("k", g, waiter("w1"))); // waits for the leader
  CHECK_FALSE(c.lead("k", g, waiter("w2")));
  CHECK(c.lead("other", g, waiter("o"))); // another key leads its own read
  c.drop("x");                            // after a drop, no joining an older read
  CHECK(c.lead("k", c.generation(), waiter("new")));
  auto waiters = c.finish("k", g);
  REQUIRE(waiters.size() == 2);
  auto made = page_at(page_cache::clock::now(), "body");
  for (auto& w : waiters) {
    w(made, nullptr);
  }
  CHECK(told == std::vector<std::string>{"w1:body", "w2:body"});
  CHECK(c.finish("k", g).empty()); // once
  CHECK(c.finish("k", c.generation()).empty());
  // The read of the new generation leads again once finished.
  CHECK(c.lead("k", c.generation(), waiter("again")));
  CHECK_FALSE(c.lead("k", c.generation(), waiter("w3")));
  surge::net::http_response failed;
  failed.status = 503;
  for (auto& w : c.finish("k", c.generation())) {
    w(nullptr, &failed);
  }
  CHECK(told.back() == "w3:failed 503");
}
