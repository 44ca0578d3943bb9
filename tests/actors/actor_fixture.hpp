#pragma once

// A node's entity layer without HTTP: storage (persistence::entity_storage), actor system and
// the SKU, cart, order and sale directories (with the node's sale index, filled by the test, and
// its sale board) over a storage backend — in-memory fakes or the real
// PostgreSQL and Redis — for actor tests. Payments go to scripted fake gateways on both backends.

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "fake_payments.hpp"
#include "memory_journal.hpp"
#include "memory_orders.hpp"
#include "memory_redis.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/order.hpp"
#include "surge/actors/sale.hpp"
#include "surge/actors/sales.hpp"
#include "surge/actors/sku.hpp"
#include "surge/config/settings.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"
#include "surge/persistence/storage.hpp"
#include "surge/runtime/wiring.hpp"
#include "test_env.hpp"

namespace surge::test {

/// Where entities keep their state, and the payment gateways they pay through. Outlives the
/// fixtures built on it (restarts).
class backend {
 public:
  virtual ~backend() = default;
  virtual std::unique_ptr<persistence::journal> journal() = 0;
  virtual std::unique_ptr<actors::redis_conn> redis() = 0;
  /// A connection to the order store (nullptr when it cannot connect).
  virtual std::unique_ptr<persistence::order_store> orders() = 0;
  /// Test hooks on the fakes; nullptr on the real servers.
  virtual fakes::memory_journal_state* fake_journal() { return nullptr; }
  virtual fakes::memory_order_state* fake_orders() { return nullptr; }
  /// Payments are scripted on both backends (they are not storage).
  fakes::fake_gateways& gateways() { return *gateways_; }
  const std::shared_ptr<fakes::fake_gateways>& gateway_state() { return gateways_; }

 private:
  const std::shared_ptr<fakes::fake_gateways> gateways_ = std::make_shared<fakes::fake_gateways>();
};

class fake_backend : public backend {
 public:
  std::unique_ptr<persistence::journal> journal() override {
    auto j = fakes::memory_journal::connect(journal_);
    return j ? std::move(*j) : nullptr;
  }
  std::unique_ptr<actors::redis_conn> redis() override {
    auto c = std::make_unique<actors::redis_conn>();
    c->snapshots = std::make_unique<fakes::memory_snapshot_cache>(redis_, "t:");
    c->carts = std::make_unique<fakes::memory_cart_store>(redis_, "t:");
    return c;
  }
  std::unique_ptr<persistence::order_store> orders() override {
    auto s = fakes::memory_order_store::connect(orders_);
    return s ? std::move(*s) : nullptr;
  }
  fakes::memory_journal_state* fake_journal() override { return journal_.get(); }
  fakes::memory_order_state* fake_orders() override { return orders_.get(); }

 private:
  std::shared_ptr<fakes::memory_journal_state> journal_ =
      std::make_shared<fakes::memory_journal_state>();
  std::shared_ptr<fakes::memory_redis_state> redis_ = std::make_shared<fakes::memory_redis_state>();
  std::shared_ptr<fakes::memory_order_state> orders_ =
      std::make_shared<fakes::memory_order_state>();
};

class real_backend : public backend {
 public:
  std::unique_ptr<persistence::journal> journal() override {
    auto j = persistence::make_pg_journal(db_.url());
    return j ? std::move(*j) : nullptr;
  }
  std::unique_ptr<actors::redis_conn> redis() override {
    const auto o = keys_.options();
    auto s = persistence::make_redis_snapshot_cache(o);
    auto c = persistence::make_redis_cart_store(o);
    if (!s || !c) {
      return nullptr;
    }
    auto conn = std::make_unique<actors::redis_conn>();
    conn->snapshots = std::move(*s);
    conn->carts = std::move(*c);
    return conn;
  }
  std::unique_ptr<persistence::order_store> orders() override {
    auto s = persistence::make_pg_order_store(db_.url());
    return s ? std::move(*s) : nullptr;
  }

 private:
  pg_test_db db_;
  redis_test_keys keys_;
};

/// One "node" on a backend. Destroying it is a clean stop; a new one on the same backend is a
/// restart. Payment answers still on their way when it is destroyed are lost, as in a crash.
class entity_node {
 public:
  entity_node(backend& be, actors::entity_options opts, int64_t clock_offset_ms = 0)
      : clock_offset_(clock_offset_ms)
      , storage_({[&be] { return be.journal(); }, [&be] { return be.redis(); },
                  [&be] { return be.orders(); }},
                 // small cart batches: several per burst
                 {2, 2, persistence::commit_queue::options{2, 512}, 8})
      , payments_(std::make_unique<fakes::fake_payment_service>(be.gateway_state()))
      , env_(with_sales(actors::make_entity_env(
                            std::move(opts), storage_, payments_.get(), nullptr,
                            [this] { return actors::system_now_ms() + clock_offset_.load(); }),
                        &sale_index, &sale_board, ids_)) {
    actors::register_message_types(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    skus = std::make_unique<actors::sku_directory>(
        [this](const std::string& id) { return actors::spawn_sku(*sys_, id, env_, skus.get()); });
    carts = std::make_unique<actors::cart_directory>([this](const std::string& id) {
      return actors::spawn_cart(*sys_, id, env_, carts.get(), skus.get());
    });
    orders = std::make_unique<actors::order_directory>([this](const std::string& id) {
      return actors::spawn_order(*sys_, id, env_,
                                 actors::order_links{orders.get(), carts.get(), skus.get()});
    });
    sales = std::make_unique<actors::sale_directory>([this](const std::string& id) {
      return actors::spawn_sale(*sys_, id, env_, sales.get(), skus.get());
    });
  }

  ~entity_node() {
    const bool stopped =
        actors::stop_entities(std::chrono::seconds{30}, *sales, *orders, *carts, *skus);
    CHECK_MESSAGE(stopped, "entities still running 30 s after the node was told to stop");
    sys_->await_all_actors_done(); // nobody calls the payment service any more
    payments_.reset();
    storage_.drain();
    sys_.reset();
    storage_.stop();
  }

  caf::actor_system& sys() { return *sys_; }
  persistence::commit_queue& journal() { return storage_.journal(); }
  void advance_clock(int64_t ms) { clock_offset_ += ms; }
  int64_t now_ms() const { return env_->now_ms(); }

  /// Sends (xs...) to the SKU through the directory and waits for the answer.
  template <class T, class... Ts>
  caf::expected<T> ask_sku(const std::string& sku, Ts&&... xs) {
    return ask<T>(skus->acquire(sku), std::forward<Ts>(xs)...);
  }

  template <class T, class... Ts>
  caf::expected<T> ask_cart(const std::string& id, Ts&&... xs) {
    return ask<T>(carts->acquire(id), std::forward<Ts>(xs)...);
  }

  /// The order id of Idempotency-Key `key` (as the bridge derives it).
  std::string order_id_for(const std::string& key) const { return ids_->order_id_for(key); }

  /// The id keys of the node (tickets and passes are signed with them).
  const actors::id_keys& ids() const { return *ids_; }

  /// Sends (xs...) to the sale's queue through the directory and waits for the answer.
  template <class T, class... Ts>
  caf::expected<T> ask_sale(const std::string& sale_id, Ts&&... xs) {
    return ask<T>(sales->acquire(sale_id), std::forward<Ts>(xs)...);
  }

  /// POST checkout of `cart` with Idempotency-Key `key`, paying with `token`, answered by
  /// `deadline_ms` (actors/deadline.hpp; 0: none); waits for it.
  caf::expected<actors::order_view> checkout(const std::string& cart, const std::string& key,
                                             const std::string& token,
                                             const std::string& principal = "",
                                             int64_t deadline_ms = 0) {
    return ask<actors::order_view>(
        orders->acquire(order_id_for(key)), actors::checkout_atom::value,
        actors::checkout_request{key, cart, "card", token, principal, deadline_ms});
  }

  /// GET of the order of `key`.
  caf::expected<actors::order_view> order_of(const std::string& key,
                                             const std::string& principal = "") {
    return ask<actors::order_view>(orders->acquire(order_id_for(key)), caf::get_atom::value,
                                   principal);
  }

  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& h, Ts&&... xs) {
    caf::scoped_actor self{*sys_};
    caf::expected<T> out{caf::sec::request_timeout};
    self->request(h, std::chrono::seconds{20}, std::forward<Ts>(xs)...)
        .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// The node's view of the sales (the test fills it: sale_index.replace / put) and where its
  /// sale actors publish their queues. Declared before env_, which points at them.
  actors::sale_index sale_index;
  actors::sale_board sale_board;
  std::unique_ptr<actors::sku_directory> skus;
  std::unique_ptr<actors::cart_directory> carts;
  std::unique_ptr<actors::order_directory> orders;
  std::unique_ptr<actors::sale_directory> sales;

 private:
  static std::shared_ptr<const actors::entity_env>
  with_sales(actors::entity_env env, const actors::sale_index* index, actors::sale_board* board,
             std::shared_ptr<const actors::id_keys> ids) {
    env.sales = index;
    env.sale_stats = board;
    env.ids = std::move(ids);
    return std::make_shared<const actors::entity_env>(std::move(env));
  }

  const std::shared_ptr<const actors::id_keys> ids_ =
      std::make_shared<const actors::id_keys>("surge-actor-tests");
  std::atomic<int64_t> clock_offset_;
  persistence::entity_storage storage_;
  std::unique_ptr<fakes::fake_payment_service> payments_;
  std::shared_ptr<const actors::entity_env> env_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

/// Entity settings for tests: a node's defaults (runtime/wiring.hpp), with 10 min holds (a 5 s
/// payment margin) and nothing passivating by itself.
inline actors::entity_options default_opts() {
  auto o = runtime::entity_options_of(config::defaults());
  o.node_id = "test";
  o.holds_ttl = std::chrono::minutes{10};
  o.idle_timeout = std::chrono::minutes{10};
  o.snapshot_every = 4;
  return o;
}

/// default_opts() with `change` applied to it (one test's own settings).
template <class Change>
actors::entity_options opts_with(Change change) {
  auto o = default_opts();
  change(o);
  return o;
}

/// Creates SKU `sku` with `stock` on hand, priced `price_cents` in `currency`.
inline void create_sku(entity_node& n, const std::string& sku, int64_t stock, int64_t limit = 0,
                       int64_t price_cents = 1000, const std::string& currency = "USD") {
  persistence::product_record p{sku, "name of " + sku, "", "cat", price_cents, currency, limit};
  auto v = n.ask_sku<actors::product_view>(sku, actors::product_atom::value, p);
  REQUIRE_MESSAGE(v, caf::to_string(v.error()));
  auto s = n.ask_sku<actors::stock_view>(sku, actors::stock_atom::value,
                                         actors::stock_change{true, stock});
  REQUIRE_MESSAGE(s, caf::to_string(s.error()));
  REQUIRE(s->on_hand == stock);
}

inline actors::stock_view stock_of(entity_node& n, const std::string& sku) {
  auto s = n.ask_sku<actors::stock_view>(sku, actors::stock_atom::value);
  REQUIRE_MESSAGE(s, caf::to_string(s.error()));
  return *s;
}

/// Polls `pred` every 20 ms for at most `limit` (for outcomes nobody is answered about).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20}); // polling interval
  }
  return pred();
}

} // namespace surge::test
