// entity_storage's lifecycle (storage.hpp): drain() stops the commit queue only; stop() lets the
// pools run what they hold, then every part answers unavailable at once; both are idempotent.
// The journal runs on every backend; Redis and the order store are the in-memory fakes.

#include <future>
#include <memory>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "memory_orders.hpp"
#include "memory_redis.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/storage.hpp"

using namespace surge::persistence;
using surge::test::fake_backend;
using surge::test::pg_backend;

namespace {

template <class Backend>
entity_storage::factories factories_on(Backend& backend,
                                       const std::shared_ptr<surge::fakes::memory_redis_state>& r,
                                       const std::shared_ptr<surge::fakes::memory_order_state>& o) {
  return {[&backend] { return backend.connect(); },
          [r] {
            auto c = std::make_unique<redis_conn>();
            c->snapshots = std::make_unique<surge::fakes::memory_snapshot_cache>(r, "t:");
            c->carts = std::make_unique<surge::fakes::memory_cart_store>(r, "t:");
            return c;
          },
          [o]() -> std::unique_ptr<order_store> {
            auto s = surge::fakes::memory_order_store::connect(o);
            return s ? std::move(*s) : nullptr;
          }};
}

caf::error commit(entity_storage& s, std::string stream, uint64_t seq) {
  std::promise<caf::error> answer;
  commit_request req;
  req.batch = journal_batch{std::move(stream), seq, "payload"};
  s.journal().submit(std::move(req), [&](const caf::error& e) { answer.set_value(e); });
  return answer.get_future().get();
}

caf::error write_cart(entity_storage& s, const std::string& id) {
  std::promise<caf::error> answer;
  s.cart_writes().push(cart_write{id, "cart " + id, std::chrono::seconds{60},
                                  [&](caf::error e) { answer.set_value(std::move(e)); }});
  return answer.get_future().get();
}

/// Whether a job on `pool` got a resource.
template <class Pool>
bool got_resource(Pool& pool) {
  std::promise<bool> answer;
  pool.submit([&](auto* r) { answer.set_value(r != nullptr); });
  return answer.get_future().get();
}

} // namespace

TEST_CASE_TEMPLATE("entity_storage: drain refuses commits only; stop ends every part", B,
                   fake_backend, pg_backend) {
  B backend;
  auto redis = std::make_shared<surge::fakes::memory_redis_state>();
  auto orders = std::make_shared<surge::fakes::memory_order_state>();
  entity_storage s{factories_on(backend, redis, orders), {2, 2, {2, 64}, 8}};

  CHECK(!commit(s, "sku:a", 1));
  CHECK(!write_cart(s, "c1"));
  CHECK(got_resource(s.pg()));
  CHECK(got_resource(s.orders()));

  s.drain();
  s.drain(); // idempotent
  CHECK(is(commit(s, "sku:a", 2), errc::unavailable));
  // The pools still serve: actors finishing after the drain may still read and write carts.
  CHECK(!write_cart(s, "c2"));
  CHECK(got_resource(s.pg()));
  CHECK(got_resource(s.redis()));
  CHECK(got_resource(s.orders()));

  s.stop();
  s.stop(); // idempotent
  CHECK(!got_resource(s.pg()));
  CHECK(!got_resource(s.redis()));
  CHECK(!got_resource(s.orders()));
  CHECK(is(write_cart(s, "c3"), errc::unavailable));
  CHECK(is(commit(s, "sku:a", 3), errc::unavailable));

  // What was acknowledged is stored; nothing refused is.
  auto j = backend.connect();
  CHECK(j->read("sku:a", 0)->size() == 1);
  surge::fakes::memory_cart_store carts{redis, "t:"};
  CHECK(carts.get("c1")->has_value());
  CHECK(carts.get("c2")->has_value());
  CHECK(!carts.get("c3")->has_value());
}
