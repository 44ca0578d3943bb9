#pragma once

// A node's entity layer without HTTP: pools, commit queue, actor system and directories over a
// storage backend — in-memory fakes or the real PostgreSQL and Redis — for actor tests.

#include <caf/all.hpp>

#include <atomic>
#include <memory>
#include <string>

#include "memory_journal.hpp"
#include "memory_redis.hpp"
#include "surge/actors/cart.hpp"
#include "surge/actors/sku.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/persistence/redis.hpp"
#include "test_env.hpp"

namespace surge::test {

/// Where entities keep their state. Outlives the fixtures built on it (restarts).
class backend {
 public:
  virtual ~backend() = default;
  virtual std::unique_ptr<persistence::journal> journal() = 0;
  virtual std::unique_ptr<actors::redis_conn> redis() = 0;
  /// Test hooks on the fake; nullptr on the real servers.
  virtual fakes::memory_journal_state* fake_journal() { return nullptr; }
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
  fakes::memory_journal_state* fake_journal() override { return journal_.get(); }

 private:
  std::shared_ptr<fakes::memory_journal_state> journal_ =
      std::make_shared<fakes::memory_journal_state>();
  std::shared_ptr<fakes::memory_redis_state> redis_ = std::make_shared<fakes::memory_redis_state>();
};

class real_backend : public backend {
 public:
  std::unique_ptr<persistence::journal> journal() override {
    auto j = persistence::make_pg_journal(db_.url());
    return j ? std::move(*j) : nullptr;
  }
  std::unique_ptr<actors::redis_conn> redis() override {
    persistence::redis_options o;
    o.url = keys_.url();
    o.prefix = keys_.prefix();
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

 private:
  pg_test_db db_;
  redis_test_keys keys_;
};

/// One "node" on a backend. Destroying it is a clean stop; a new one on the same backend is a
/// restart.
class entity_node {
 public:
  entity_node(backend& be, actors::entity_options opts, int64_t clock_offset_ms = 0)
      : clock_offset_(clock_offset_ms) {
    pg_ = std::make_unique<actors::pg_pool>("pg", 2, [&be] { return be.journal(); });
    redis_ = std::make_unique<actors::redis_pool>("redis", 2, [&be] { return be.redis(); });
    cart_writes_ = persistence::make_cart_writer(*redis_, 8); // small batches: several per burst
    journal_ = std::make_unique<persistence::commit_queue>(
        [&be] { return be.journal(); }, persistence::commit_queue::options{2, 512});
    auto env = std::make_shared<actors::entity_env>();
    env->opts = opts;
    env->journal = journal_.get();
    env->pg = pg_.get();
    env->redis = redis_.get();
    env->cart_writes = cart_writes_.get();
    env->now_ms = [this] { return actors::system_now_ms() + clock_offset_.load(); };
    env_ = env;
    actors::register_message_types(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    skus = std::make_unique<actors::sku_directory>(
        [this](const std::string& id) { return actors::spawn_sku(*sys_, id, env_, skus.get()); });
    carts = std::make_unique<actors::cart_directory>([this](const std::string& id) {
      return actors::spawn_cart(*sys_, id, env_, carts.get(), skus.get());
    });
  }

  ~entity_node() {
    auto stop = [](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); };
    skus->for_each(stop);
    carts->for_each(stop);
    journal_->stop();
    sys_.reset();
    pg_->stop();
    redis_->stop();
  }

  caf::actor_system& sys() { return *sys_; }
  persistence::commit_queue& journal() { return *journal_; }
  void advance_clock(int64_t ms) { clock_offset_ += ms; }

  /// Sends (xs...) to the SKU through the directory and waits for the answer.
  template <class T, class... Ts>
  caf::expected<T> ask_sku(const std::string& sku, Ts&&... xs) {
    return ask<T>(skus->acquire(sku), std::forward<Ts>(xs)...);
  }

  template <class T, class... Ts>
  caf::expected<T> ask_cart(const std::string& id, Ts&&... xs) {
    return ask<T>(carts->acquire(id), std::forward<Ts>(xs)...);
  }

  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& h, Ts&&... xs) {
    caf::scoped_actor self{*sys_};
    caf::expected<T> out{caf::sec::request_timeout};
    self->request(h, std::chrono::seconds{20}, std::forward<Ts>(xs)...)
        .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  std::unique_ptr<actors::sku_directory> skus;
  std::unique_ptr<actors::cart_directory> carts;

 private:
  std::atomic<int64_t> clock_offset_;
  std::unique_ptr<actors::pg_pool> pg_;
  std::unique_ptr<actors::redis_pool> redis_;
  std::unique_ptr<actors::cart_writer> cart_writes_;
  std::unique_ptr<persistence::commit_queue> journal_;
  std::shared_ptr<const actors::entity_env> env_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
};

} // namespace surge::test
