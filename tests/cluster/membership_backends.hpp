#pragma once

// The membership stores every membership case runs against: the in-memory fake and real
// PostgreSQL (a fresh migrated database per case), both on a manual clock. Time passes when a
// test says so: the fake reads the manual clock; on PostgreSQL, whose clock cannot be moved,
// every stored time of the members is moved back by as much (which is the same to every
// question the store asks: lease_until > now(), now() - started_at, now() - heartbeat_at).
// Cases keep a margin of seconds around every expiry they test, so that the real time a case
// takes on PostgreSQL never decides it.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <pqxx/pqxx>

#include "memory_membership.hpp"
#include "surge/cluster/membership_driver.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/membership_store.hpp"
#include "test_env.hpp"

namespace surge::test {

/// What the backends share: the manual clock, and a store to inspect the rows with.
template <class Derived>
class membership_backend_base {
 public:
  cluster::membership_clock clock() const {
    return [c = clock_] { return c->now(); };
  }

  /// A store for assertions (one connection, remade after a break).
  persistence::membership_store& inspect() {
    if (!inspector_ || !inspector_->healthy()) {
      auto made = static_cast<Derived*>(this)->factory()();
      REQUIRE_MESSAGE(made, "cannot connect: " << caf::to_string(made.error()));
      inspector_ = std::move(*made);
    }
    return *inspector_;
  }

 protected:
  const std::shared_ptr<fakes::manual_clock> clock_ = std::make_shared<fakes::manual_clock>();
  std::unique_ptr<persistence::membership_store> inspector_;
};

struct memory_membership_backend : membership_backend_base<memory_membership_backend> {
  const std::shared_ptr<fakes::memory_membership_state> state =
      std::make_shared<fakes::memory_membership_state>(clock_);

  cluster::membership_store_factory factory() const {
    return [s = state] { return fakes::memory_membership_store::connect(s); };
  }

  void advance(std::chrono::milliseconds d) { clock_->advance(d); }

  /// Every heartbeat takes `d` (of the manual clock) from now on.
  void slow_heartbeats(std::chrono::milliseconds d) {
    state->before_heartbeat([c = clock_, d] { c->advance(d); });
  }

  /// While down, nothing reaches the store (live connections break).
  void set_down(bool down) { state->set_down(down); }

  /// The SKUs whose stock shows live holds (and no others).
  void set_holding(const std::vector<std::string>& skus) { state->set_holding(skus); }

  /// Whether a journal commit of `node` for `shard` at `epoch` passes the fence: the fake
  /// journal does not fence, so this asks the lease row as surge_fence() does.
  bool fence_passes(const std::string& node, uint32_t shard, uint64_t epoch) {
    auto leases = inspect().leases();
    REQUIRE(leases);
    for (const auto& l : *leases) {
      if (l.shard == shard) {
        return l.owner == node && l.epoch == epoch;
      }
    }
    return false;
  }
};

struct pg_membership_backend : membership_backend_base<pg_membership_backend> {
  pg_test_db db;
  const std::shared_ptr<std::atomic<bool>> down = std::make_shared<std::atomic<bool>>(false);

  cluster::membership_store_factory factory() const {
    return [url = db.url(),
            d = down]() -> caf::expected<std::unique_ptr<persistence::membership_store>> {
      if (d->load()) {
        return persistence::make_error(persistence::errc::unavailable, "PostgreSQL is down");
      }
      return persistence::make_pg_membership_store(url);
    };
  }

  void advance(std::chrono::milliseconds d) {
    clock_->advance(d);
    pqxx::connection c{db.url()};
    pqxx::nontransaction tx{c};
    tx.exec_params("UPDATE members SET started_at = started_at - $1::interval, heartbeat_at = "
                   "heartbeat_at - $1::interval, lease_until = lease_until - $1::interval",
                   std::to_string(d.count()) + " milliseconds");
  }

  void set_down(bool now_down) {
    down->store(now_down);
    if (now_down) { // as a restart of PostgreSQL does to the connections
      pqxx::connection admin{test_pg_admin_url()};
      pqxx::nontransaction tx{admin};
      tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = $1 AND pid <> pg_backend_pid()",
                     db.name());
    }
  }

  void set_holding(const std::vector<std::string>& skus) {
    pqxx::connection c{db.url()};
    pqxx::work tx{c};
    tx.exec("DELETE FROM stock");
    for (const auto& sku : skus) {
      tx.exec_params("INSERT INTO stock(sku, on_hand, held) VALUES ($1, 10, 1)", sku);
    }
    tx.commit();
  }

  /// Whether a journal commit of `node` for `shard` at `epoch` passes surge_fence().
  bool fence_passes(const std::string& node, uint32_t shard, uint64_t epoch) {
    pqxx::connection c{db.url()};
    pqxx::work tx{c};
    try {
      tx.exec_params("SELECT surge_fence($1, ARRAY[$2::int], ARRAY[$3::bigint])", node,
                     static_cast<int>(shard), static_cast<int64_t>(epoch));
      return true;
    } catch (const pqxx::sql_error& e) {
      REQUIRE(e.sqlstate() == "SF001");
      return false;
    }
  }
};

} // namespace surge::test

TYPE_TO_STRING_AS("memory", surge::test::memory_membership_backend);
TYPE_TO_STRING_AS("postgresql", surge::test::pg_membership_backend);
