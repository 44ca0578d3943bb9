// The Redis stores, against the in-memory fakes and a real Redis (own key prefix per case).

#include <chrono>
#include <memory>
#include <thread>

#include <doctest/doctest.h>

#include "memory_redis.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/redis.hpp"
#include "test_env.hpp"

using namespace surge::persistence;

namespace {

struct fake_redis {
  std::shared_ptr<surge::fakes::memory_redis_state> state =
      std::make_shared<surge::fakes::memory_redis_state>();
  std::unique_ptr<snapshot_cache> snapshots() {
    return std::make_unique<surge::fakes::memory_snapshot_cache>(state, "t:");
  }
  std::unique_ptr<cart_store> carts() {
    return std::make_unique<surge::fakes::memory_cart_store>(state, "t:");
  }
  /// Waits until `gone()` holds, moving the fake clock instead of sleeping.
  template <class F>
  bool expire(F gone) {
    state->advance(std::chrono::seconds{2});
    return gone();
  }
};

struct real_redis {
  surge::test::redis_test_keys keys;
  redis_options opts() const { return keys.options(); }
  std::unique_ptr<snapshot_cache> snapshots() {
    auto x = make_redis_snapshot_cache(opts());
    REQUIRE_MESSAGE(x, caf::to_string(x.error()));
    return std::move(*x);
  }
  std::unique_ptr<cart_store> carts() {
    auto x = make_redis_cart_store(opts());
    REQUIRE_MESSAGE(x, caf::to_string(x.error()));
    return std::move(*x);
  }
  /// Polls until `gone()` holds, at most 5 s.
  template <class F>
  bool expire(F gone) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    while (std::chrono::steady_clock::now() < deadline) {
      if (gone()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return false;
  }
};

const std::string binary = std::string{"\0\x01zero\0\xff\r\n%b end", 16};

} // namespace

TEST_CASE_TEMPLATE("redis: snapshots round trip binary bytes", B, fake_redis, real_redis) {
  B backend;
  auto c = backend.snapshots();
  CHECK(c->healthy());
  auto none = c->get("sku:a");
  REQUIRE(none);
  CHECK(!*none);
  REQUIRE(!c->put(snapshot{"sku:a", 0x0102030405060708ULL, binary}));
  auto got = c->get("sku:a");
  REQUIRE(got);
  REQUIRE(*got);
  CHECK((*got)->stream == "sku:a");
  CHECK((*got)->seq == 0x0102030405060708ULL);
  CHECK((*got)->payload == binary);
  REQUIRE(!c->put(snapshot{"sku:a", 9, ""}));
  got = backend.snapshots()->get("sku:a"); // another connection sees it
  REQUIRE(got);
  CHECK((*got)->seq == 9);
  CHECK((*got)->payload.empty());
}

TEST_CASE_TEMPLATE("redis: carts round trip and expire", B, fake_redis, real_redis) {
  B backend;
  auto c = backend.carts();
  auto none = c->get("c1");
  REQUIRE(none);
  CHECK(!*none);
  REQUIRE(!c->put("c1", binary, std::chrono::seconds{60}));
  REQUIRE(!c->put("c2", "short", std::chrono::seconds{1}));
  auto got = c->get("c1");
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == binary);
  CHECK(is(c->put("c3", "x", std::chrono::seconds{0}), errc::invalid));
  CHECK(backend.expire([&] {
    auto x = c->get("c2");
    REQUIRE(x);
    return !*x;
  }));
  CHECK(**c->get("c1") == binary);
}

TEST_CASE_TEMPLATE("redis: put_many stores every cart; a bad one fails alone", B, fake_redis,
                   real_redis) {
  B backend;
  auto c = backend.carts();
  std::vector<std::string> ids;
  std::vector<std::string> values;
  for (int i = 0; i < 300; ++i) {
    ids.push_back("m" + std::to_string(i));
    values.push_back(i % 7 == 0 ? binary : "v" + std::to_string(i));
  }
  std::vector<cart_put> puts;
  for (int i = 0; i < 300; ++i) {
    puts.push_back({ids[i], values[i], std::chrono::seconds{i == 150 ? 0 : 60}});
  }
  auto errs = c->put_many(puts);
  REQUIRE(errs.size() == 300);
  for (int i = 0; i < 300; ++i) {
    if (i == 150) {
      CHECK(is(errs[i], errc::invalid));
      auto x = c->get(ids[i]);
      REQUIRE(x);
      CHECK(!*x);
      continue;
    }
    CHECK_MESSAGE(!errs[i], i);
    auto x = c->get(ids[i]);
    REQUIRE(x);
    REQUIRE(*x);
    CHECK(**x == values[i]);
  }
  CHECK(c->healthy()); // the pipeline left the connection usable
  CHECK(c->put_many({}).empty());
}

TEST_CASE("redis: a malformed URL is errc::invalid") {
  for (const char* url :
       {"", "http://127.0.0.1:6379", "redis://", "redis://:6379", "redis://host:port",
        "redis://host:70000", "redis://host:6379/x", "redis://host:-1", "garbage"}) {
    const auto o = surge::test::redis_test_options(url);
    auto s = make_redis_snapshot_cache(o);
    REQUIRE_MESSAGE(!s, url);
    CHECK_MESSAGE(is(s.error(), errc::invalid), url << ": " << caf::to_string(s.error()));
    auto c = make_redis_cart_store(o);
    REQUIRE(!c);
    CHECK(is(c.error(), errc::invalid));
  }
}

TEST_CASE("redis: an unreachable server is errc::unavailable") {
  redis_options o;
  o.timeout = std::chrono::seconds{2};
  o.url = "redis://127.0.0.1:1/0";
  o.timeout = std::chrono::milliseconds{500};
  auto s = make_redis_snapshot_cache(o);
  REQUIRE(!s);
  CHECK_MESSAGE(is(s.error(), errc::unavailable), caf::to_string(s.error()));
  auto c = make_redis_cart_store(o);
  REQUIRE(!c);
  CHECK(is(c.error(), errc::unavailable));
}

TEST_CASE("redis: a database number in the URL is selected") {
  surge::test::redis_test_keys keys; // checks that Redis answers
  auto base = keys.url();
  if (auto slash = base.find('/', std::string{"redis://"}.size()); slash != std::string::npos) {
    base.resize(slash);
  }
  auto o = surge::test::redis_test_options(base + "/3", keys.prefix());
  auto db3 = make_redis_cart_store(o);
  REQUIRE_MESSAGE(db3, caf::to_string(db3.error()));
  REQUIRE(!(*db3)->put("c", "in db 3", std::chrono::seconds{30}));
  o.url = keys.url();
  auto db0 = make_redis_cart_store(o);
  REQUIRE(db0);
  CHECK(!*(*db0)->get("c")); // not in the default database
  CHECK(**(*db3)->get("c") == "in db 3");
  surge::test::delete_redis_keys(base + "/3", keys.prefix());
}
