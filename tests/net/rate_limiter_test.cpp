// rate_limiter: token buckets per address in a fixed table, with an injected clock.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "on_threads.hpp"
#include "surge/net/address.hpp"
#include "surge/net/rate_limiter.hpp"

using namespace surge::net;
using namespace std::chrono_literals;

namespace {

/// A clock the test moves by hand.
struct manual_clock {
  std::shared_ptr<std::atomic<int64_t>> ns = std::make_shared<std::atomic<int64_t>>(1'000'000'000);
  rate_limiter::clock fn() const {
    return [ns = ns] { return std::chrono::nanoseconds{ns->load()}; };
  }
  void advance(std::chrono::nanoseconds d) const { ns->fetch_add(d.count()); }
};

ip_address v4(uint32_t x) {
  return ip_address::v4(x);
}

/// How many acquires in a row `a` gets before the first refusal (bounded by `cap`).
int allowed_in_a_row(rate_limiter& l, const ip_address& a, int cap = 1000000) {
  int n = 0;
  while (n < cap && l.acquire(a).allowed) {
    ++n;
  }
  return n;
}

} // namespace

TEST_CASE("rate_limiter: the burst passes, then 429 until a token is back") {
  manual_clock clk;
  rate_limiter l{{.rate = 2, .burst = 5, .table = 1024}, clk.fn()};
  const auto a = v4(0xC6120001); // 198.18.0.1

  CHECK(allowed_in_a_row(l, a) == 5);
  auto d = l.acquire(a);
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == 1s); // a token in 0.5 s, rounded up to whole seconds
  // Refused requests take nothing: half a second later exactly one token is there.
  clk.advance(499ms);
  CHECK_FALSE(l.acquire(a).allowed);
  clk.advance(1ms);
  CHECK(l.acquire(a).allowed);
  CHECK_FALSE(l.acquire(a).allowed);
  // Idle long enough to refill: a full burst again, never more.
  clk.advance(100s);
  CHECK(allowed_in_a_row(l, a) == 5);
}

TEST_CASE("rate_limiter: Retry-After is whole seconds, at least 1, until the next token") {
  manual_clock clk;
  rate_limiter slow{{.rate = 1, .burst = 1, .table = 1024}, clk.fn()};
  const auto a = v4(0x0A000001);
  CHECK(slow.acquire(a).allowed);
  CHECK(slow.acquire(a).retry_after == 1s);
  clk.advance(300ms);
  CHECK(slow.acquire(a).retry_after == 1s); // 0.7 s rounds up
  clk.advance(700ms);
  CHECK(slow.acquire(a).allowed);

  rate_limiter fast{{.rate = 1000, .burst = 1, .table = 1024}, clk.fn()};
  CHECK(fast.acquire(a).allowed);
  CHECK(fast.acquire(a).retry_after == 1s); // 1 ms rounds up to the minimum
}

TEST_CASE("rate_limiter: addresses have their own buckets; mapped IPv4 is IPv4") {
  manual_clock clk;
  rate_limiter l{{.rate = 1, .burst = 3, .table = 1024}, clk.fn()};
  const auto a = *parse_ip("203.0.113.7");
  const auto b = *parse_ip("203.0.113.8");
  const auto c = *parse_ip("2001:db8::7");
  CHECK(allowed_in_a_row(l, a) == 3);
  CHECK_FALSE(l.acquire(*parse_ip("::ffff:203.0.113.7")).allowed);
  CHECK(allowed_in_a_row(l, b) == 3);
  CHECK(allowed_in_a_row(l, c) == 3);
}

TEST_CASE("rate_limiter: rate 0 allows everything and tracks nothing") {
  manual_clock clk;
  rate_limiter l{{.rate = 0, .burst = 1, .table = 1024}, clk.fn()};
  CHECK(allowed_in_a_row(l, v4(1), 10000) == 10000);
  CHECK(l.tracked() == 0);
}

TEST_CASE("rate_limiter: a million addresses do not grow it, and do not starve a busy one") {
  manual_clock clk;
  const uint32_t burst = 100;
  rate_limiter l{{.rate = 10, .burst = burst, .table = 4096}, clk.fn()};
  const std::size_t capacity = l.capacity();
  const std::size_t bytes = l.memory_bytes();
  CHECK(capacity >= 4096);
  CHECK(capacity < 4096 + rate_limiter::ways);

  // The victim spends 60 of its 100 tokens; another spends all of them.
  const auto victim = *parse_ip("192.0.2.10");
  const auto drained = *parse_ip("192.0.2.11");
  for (int i = 0; i < 60; ++i) {
    REQUIRE(l.acquire(victim).allowed);
  }
  CHECK(allowed_in_a_row(l, drained) == static_cast<int>(burst));

  // A flood: 1,000,000 distinct addresses (IPv4 and IPv6), one write each, time advancing a
  // little (less than one token's worth for the victim).
  for (uint32_t i = 0; i < 1'000'000; ++i) {
    ip_address a = (i % 2 == 0) ? v4(0x0B000000 + i) : *parse_ip("2001:db8::1");
    if (i % 2 == 1) {
      a.bytes[12] = static_cast<uint8_t>(i >> 24);
      a.bytes[13] = static_cast<uint8_t>(i >> 16);
      a.bytes[14] = static_cast<uint8_t>(i >> 8);
      a.bytes[15] = static_cast<uint8_t>(i);
    }
    if (!l.acquire(a).allowed) {
      FAIL("a fresh address was refused: " << a.to_string());
    }
    if (i % 100'000 == 0) {
      clk.advance(1ms);
    }
  }
  CHECK(l.capacity() == capacity);
  CHECK(l.memory_bytes() == bytes);
  CHECK(l.tracked() <= capacity);
  CHECK(l.tracked() >= capacity * 9 / 10); // the table is in use, not bypassed

  // Neither busy address was forgotten: the victim has exactly its 40 tokens left (not a
  // fresh 100, not none), the drained one is still refused.
  CHECK(allowed_in_a_row(l, victim) == 40);
  CHECK_FALSE(l.acquire(drained).allowed);
  // And their own refill still applies.
  clk.advance(100ms);
  CHECK(l.acquire(victim).allowed);
  CHECK(l.acquire(drained).allowed);
  CHECK_FALSE(l.acquire(drained).allowed);
}

TEST_CASE("rate_limiter: several threads share one bucket per address") {
  manual_clock clk; // frozen: exactly the burst is allowed, however the threads interleave
  const uint32_t burst = 500;
  rate_limiter l{{.rate = 1, .burst = burst, .table = 1024}, clk.fn()};
  const auto shared = v4(0xC0000201);
  std::atomic<int> allowed{0};
  std::atomic<int> own_allowed{0};
  surge::test::on_threads(4, [&](int t) {
    for (int i = 0; i < 1000; ++i) {
      if (l.acquire(shared).allowed) {
        allowed.fetch_add(1);
      }
      // Other addresses at the same time, in the same and other sets.
      if (l.acquire(v4(0x0A000000 + static_cast<uint32_t>(t) * 100000 + static_cast<uint32_t>(i)))
              .allowed) {
        own_allowed.fetch_add(1);
      }
    }
  });
  CHECK(allowed.load() == static_cast<int>(burst));
  CHECK(own_allowed.load() == 4000); // each of those addresses made one write
}
