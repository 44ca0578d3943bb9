#pragma once

// In-memory twin of the PostgreSQL journal, for unit tests. Header-only.

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fake_server.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/journal.hpp"

namespace surge::fakes {

/// The "server" that memory_journal instances connect to: share one between instances (one per
/// thread) to have them see the same data (memory_catalog.hpp reads it too). Its writes are
/// commits. Thread-safe.
class memory_journal_state : public fake_server {
 public:
  /// Every commit takes at least this long (outside the lock), like a round trip + fsync.
  void set_commit_delay(std::chrono::microseconds delay) {
    std::lock_guard<std::mutex> guard{mtx_};
    commit_delay_ = delay;
  }

  /// Committed transactions so far.
  uint64_t transactions() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return transactions_;
  }

  /// Snapshot of the whole journal of `stream` (for assertions).
  std::vector<persistence::journal_batch> batches(const std::string& stream) const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<persistence::journal_batch> out;
    if (auto i = journal_.find(stream); i != journal_.end()) {
      for (const auto& [seq, payload] : i->second) {
        out.push_back({stream, seq, payload});
      }
    }
    return out;
  }

 private:
  friend class memory_journal;
  friend class memory_catalog;

  std::map<std::string, std::map<uint64_t, std::string>> journal_;
  std::map<std::string, persistence::snapshot> snapshots_;
  std::map<std::string, persistence::product_record> products_;
  std::map<std::string, persistence::stock_record> stock_;
  uint64_t transactions_ = 0;
  std::chrono::microseconds commit_delay_{0};
};

/// One "connection" to a memory_journal_state, with the semantics of the PostgreSQL journal:
/// all-or-nothing commits, errc::conflict on a duplicate (stream, seq), newest snapshot kept. Not
/// thread-safe (like a connection); the state is.
class memory_journal final : public persistence::journal {
 public:
  explicit memory_journal(std::shared_ptr<memory_journal_state> state)
      : state_(std::move(state)) {}

  /// A journal on `state`, or errc::unavailable while the state is down (like connecting).
  static caf::expected<std::unique_ptr<persistence::journal>>
  connect(const std::shared_ptr<memory_journal_state>& state) {
    std::lock_guard<std::mutex> guard{state->mtx_};
    if (state->down_locked()) {
      return persistence::make_error(persistence::errc::unavailable, "memory journal is down");
    }
    return std::unique_ptr<persistence::journal>{new memory_journal(state)};
  }

  bool healthy() const override { return healthy_; }

  caf::error commit(std::span<const persistence::commit_request> reqs) override {
    using persistence::errc;
    if (reqs.empty()) {
      return caf::none;
    }
    if (!healthy_) {
      return persistence::make_error(errc::unavailable, "connection is broken");
    }
    std::chrono::microseconds delay;
    {
      std::lock_guard<std::mutex> guard{state_->mtx_};
      delay = state_->commit_delay_;
    }
    if (delay.count() > 0) {
      std::this_thread::sleep_for(delay);
    }
    auto& st = *state_;
    std::lock_guard<std::mutex> guard{st.mtx_};
    if (auto err = check_down_locked()) {
      return err;
    }
    const auto injected = st.take_fault_locked();
    if (injected && !injected->applied) {
      return injected_error(injected->code);
    }
    std::set<std::pair<std::string_view, uint64_t>> seen;
    for (const auto& r : reqs) {
      auto i = st.journal_.find(r.batch.stream);
      const bool exists = i != st.journal_.end() && i->second.count(r.batch.seq) > 0;
      if (exists || !seen.emplace(r.batch.stream, r.batch.seq).second) {
        return persistence::make_error(errc::conflict, "duplicate key (" + r.batch.stream + ", " +
                                                           std::to_string(r.batch.seq) + ")");
      }
    }
    for (const auto& r : reqs) {
      st.journal_[r.batch.stream][r.batch.seq] = r.batch.payload;
      if (r.stock) {
        st.stock_[r.stock->sku] = *r.stock;
      }
      if (r.product) {
        st.products_[r.product->sku] = *r.product;
      }
      if (r.snap) {
        auto i = st.snapshots_.find(r.snap->stream);
        if (i == st.snapshots_.end() || i->second.seq <= r.snap->seq) {
          st.snapshots_[r.snap->stream] = *r.snap;
        }
      }
    }
    ++st.transactions_;
    if (injected) {
      return injected_error(injected->code);
    }
    return caf::none;
  }

  caf::expected<std::vector<persistence::journal_batch>> read(const std::string& stream,
                                                              uint64_t after) override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_down_locked()) {
      return err;
    }
    std::vector<persistence::journal_batch> out;
    if (auto i = state_->journal_.find(stream); i != state_->journal_.end()) {
      for (auto j = i->second.upper_bound(after); j != i->second.end(); ++j) {
        out.push_back({stream, j->first, j->second});
      }
    }
    return out;
  }

  caf::expected<std::optional<persistence::snapshot>>
  load_snapshot(const std::string& stream) override {
    return load_entry(state_->snapshots_, stream);
  }

  caf::expected<std::optional<persistence::product_record>>
  load_product(const std::string& sku) override {
    return load_entry(state_->products_, sku);
  }

  caf::expected<std::vector<std::string>> skus_holding(std::size_t limit) override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_down_locked()) {
      return err;
    }
    std::vector<std::string> out;
    for (const auto& [sku, s] : state_->stock_) {
      if (s.held > 0 && out.size() < limit) {
        out.push_back(sku);
      }
    }
    return out;
  }

 private:
  caf::error injected_error(persistence::errc code) {
    if (code == persistence::errc::unavailable) {
      healthy_ = false;
      return persistence::make_error(code, "commit outcome unknown (injected)");
    }
    return persistence::make_error(code, "injected fault");
  }

  /// The entry `key` of `table`, one of the state's maps (taking its mutex); nothing when there
  /// is none.
  template <class Map>
  caf::expected<std::optional<typename Map::mapped_type>> load_entry(const Map& table,
                                                                     const std::string& key) {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_down_locked()) {
      return err;
    }
    if (auto i = table.find(key); i != table.end()) {
      return std::optional<typename Map::mapped_type>{i->second};
    }
    return std::optional<typename Map::mapped_type>{};
  }

  /// REQUIRES: state_->mtx_ held.
  caf::error check_down_locked() { return state_->check_connection_locked(healthy_); }

  const std::shared_ptr<memory_journal_state> state_;
  bool healthy_ = true;
};

} // namespace surge::fakes
