#pragma once

// In-memory twin of the PostgreSQL membership store, on a manual clock, for unit tests.
// Header-only.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "surge/persistence/errors.hpp"
#include "surge/persistence/membership_store.hpp"

namespace surge::fakes {

/// A steady-clock time that moves only when told to. Thread-safe.
class manual_clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// Starts well after the clock's epoch, so that time_point{} is long past.
  explicit manual_clock(time_point start = time_point{std::chrono::hours{1}})
      : ns_(start.time_since_epoch().count()) {}

  time_point now() const { return time_point{std::chrono::steady_clock::duration{ns_.load()}}; }

  void advance(std::chrono::steady_clock::duration d) { ns_ += d.count(); }

 private:
  std::atomic<std::chrono::steady_clock::rep> ns_;
};

/// The "server" that memory_membership_store instances connect to: share one between
/// instances (one per member, or one per thread of a member) to have them see the same rows.
/// Its time is `clock`'s. Thread-safe.
class memory_membership_state {
 public:
  explicit memory_membership_state(std::shared_ptr<const manual_clock> clock)
      : clock_(std::move(clock)) {}

  /// While down, every call fails with errc::unavailable and breaks the instance, and
  /// connect() fails.
  void set_down(bool down) {
    std::lock_guard<std::mutex> guard{mtx_};
    down_ = down;
  }

  bool down() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return down_;
  }

  /// Runs before every heartbeat (e.g. moves the clock: a database slow to answer).
  void before_heartbeat(std::function<void()> f) {
    std::lock_guard<std::mutex> guard{mtx_};
    before_heartbeat_ = std::move(f);
  }

  /// The SKUs the stock projection shows with live holds (held > 0).
  void set_holding(std::vector<std::string> skus) {
    std::lock_guard<std::mutex> guard{mtx_};
    holding_ = std::move(skus);
  }

 private:
  friend class memory_membership_store;
  using time_point = manual_clock::time_point;

  struct member {
    persistence::member_record row; ///< live, ages: computed when read
    time_point started_at;
    time_point heartbeat_at;
    time_point lease_until;
    uint64_t heartbeat_session = 0; ///< the instance its last heartbeat came through; 0: none
  };

  static int64_t ms_between(time_point from, time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
  }

  /// Members as read now, by node id. REQUIRES: mtx_ held.
  std::vector<persistence::member_record> members_locked() const {
    const auto now = clock_->now();
    std::vector<persistence::member_record> out;
    for (const auto& [id, m] : members_) {
      auto r = m.row;
      r.live = m.lease_until > now;
      r.age_ms = ms_between(m.started_at, now);
      r.heartbeat_age_ms = ms_between(m.heartbeat_at, now);
      r.lease_left_ms = -ms_between(m.lease_until, now);
      out.push_back(std::move(r));
    }
    return out;
  }

  /// Leases by shard. REQUIRES: mtx_ held.
  std::vector<persistence::shard_lease_record> leases_locked() const {
    std::vector<persistence::shard_lease_record> out;
    for (const auto& [shard, l] : leases_) {
      out.push_back(l);
    }
    return out;
  }

  /// A new epoch for the lease of `shard`, owned by `owner`, recorded. REQUIRES: mtx_ held.
  uint64_t change_owner_locked(persistence::shard_lease_record& l, const std::string& owner,
                               std::string reason) {
    l.owner = owner;
    l.epoch += 1;
    l.target.clear();
    history_.push_back(
        persistence::shard_history_record{l.shard, l.epoch, owner, std::move(reason)});
    return l.epoch;
  }

  std::function<void()> before_heartbeat_;
  const std::shared_ptr<const manual_clock> clock_;
  mutable std::mutex mtx_;
  std::map<std::string, member> members_;
  std::map<uint32_t, persistence::shard_lease_record> leases_;
  std::vector<persistence::shard_history_record> history_;
  std::vector<std::string> holding_;
  /// The instance in an allocation round: PostgreSQL's transaction-scoped advisory lock.
  const void* allocator_lock_ = nullptr;
  bool down_ = false;
  /// Sessions (instances) open: an instance's session ends when it is destroyed or breaks,
  /// as a backend leaves pg_stat_activity when its connection closes.
  uint64_t last_session_ = 0;
  std::set<uint64_t> sessions_;
  /// (suspect, suspected by) -> when reported (report_unreachable).
  std::map<std::pair<std::string, std::string>, time_point> suspicions_;
};

/// One "connection" to a memory_membership_state, with the semantics of the PostgreSQL store:
/// liveness by the state's clock, guarded changes, an epoch + 1 and a history row for every
/// change of owner, one allocation round at a time (an instance whose plan is being made holds
/// the lock; another instance's round meanwhile reads nothing and gets nullopt, and changes made
/// meanwhile by others make the round's guards fail). Not thread-safe (like a connection); the
/// state is.
class memory_membership_store final : public persistence::membership_store {
 public:
  using errc = persistence::errc;

  explicit memory_membership_store(std::shared_ptr<memory_membership_state> state)
      : state_(std::move(state)) {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    session_ = ++state_->last_session_;
    state_->sessions_.insert(session_);
  }

  ~memory_membership_store() override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    state_->sessions_.erase(session_);
  }

  memory_membership_store(const memory_membership_store&) = delete;
  memory_membership_store& operator=(const memory_membership_store&) = delete;

  /// A store on `state`, or errc::unavailable while the state is down (like connecting).
  static caf::expected<std::unique_ptr<persistence::membership_store>>
  connect(const std::shared_ptr<memory_membership_state>& state) {
    if (state->down()) {
      return persistence::make_error(errc::unavailable, "cannot connect: the server is down");
    }
    return std::unique_ptr<persistence::membership_store>{
        std::make_unique<memory_membership_store>(state)};
  }

  bool healthy() const override { return healthy_; }

  caf::expected<uint32_t> register_member(const persistence::member_registration& r) override {
    return locked([&]() -> caf::expected<uint32_t> {
      auto& s = *state_;
      std::set<uint32_t> shards;
      for (const auto& [shard, l] : s.leases_) {
        shards.insert(shard);
      }
      for (uint32_t i = 0; i < r.shards; ++i) {
        shards.insert(i);
      }
      if (shards.size() != r.shards) {
        return static_cast<uint32_t>(shards.size()); // rolled back: nothing written
      }
      for (uint32_t i = 0; i < r.shards; ++i) {
        s.leases_.try_emplace(i, persistence::shard_lease_record{i, "", 0, ""});
      }
      const auto now = s.clock_->now();
      auto& m = s.members_[r.node_id]; // a new row keeps actors = 0; a replaced one its count
      m.row.node_id = r.node_id;
      m.row.address = r.address;
      m.row.http_address = r.http_address;
      m.row.admin_address = r.admin_address;
      m.row.incarnation = r.incarnation;
      m.row.status = "up";
      m.row.version = r.version;
      m.row.protocol = r.protocol;
      m.started_at = now;
      m.heartbeat_at = now;
      m.lease_until = now + r.lease;
      m.heartbeat_session = 0; // a new incarnation: none recorded yet
      for (auto& [shard, l] : s.leases_) {
        if (l.owner == r.node_id) {
          s.change_owner_locked(l, r.node_id, "restart");
        }
      }
      return r.shards;
    });
  }

  caf::expected<persistence::heartbeat_outcome>
  heartbeat(const std::string& node_id, int64_t incarnation, std::chrono::milliseconds lease,
            uint64_t actors, std::chrono::milliseconds cut_off_grace) override {
    using persistence::heartbeat_outcome;
    std::function<void()> before;
    {
      std::lock_guard<std::mutex> guard{state_->mtx_};
      before = state_->before_heartbeat_;
    }
    if (before) {
      before();
    }
    return locked([&]() -> caf::expected<heartbeat_outcome> {
      auto* m = row_locked(node_id, incarnation);
      if (m == nullptr) {
        return heartbeat_outcome::fenced;
      }
      auto& s = *state_;
      const auto now = s.clock_->now();
      auto live = [&](const std::string& id) {
        auto i = s.members_.find(id);
        return i != s.members_.end() && i->second.row.status != "left" &&
               i->second.lease_until > now;
      };
      std::size_t members = 0;
      for (const auto& [id, other] : s.members_) {
        members += live(id) ? 1 : 0;
      }
      std::size_t accusers = 0;
      for (const auto& [key, at] : s.suspicions_) {
        accusers += key.first == node_id && live(key.second) && at > now - lease ? 1 : 0;
      }
      const bool cut_off = 2 * accusers > members;
      m->heartbeat_at = now;
      m->lease_until = cut_off ? std::min(m->lease_until, now + cut_off_grace) : now + lease;
      m->row.actors = actors;
      m->heartbeat_session = session_;
      return cut_off ? heartbeat_outcome::cut_off : heartbeat_outcome::renewed;
    });
  }

  caf::error report_unreachable(const std::string& by,
                                const std::vector<std::string>& nodes) override {
    return locked([&]() -> caf::error {
      auto& s = *state_;
      for (auto i = s.suspicions_.begin(); i != s.suspicions_.end();) {
        i = i->first.second == by ? s.suspicions_.erase(i) : std::next(i);
      }
      for (const auto& n : nodes) {
        s.suspicions_[{n, by}] = s.clock_->now();
      }
      return caf::none;
    });
  }

  caf::expected<bool> expire_if_gone(const std::string& node_id, int64_t incarnation) override {
    return locked([&]() -> caf::expected<bool> {
      auto* m = row_locked(node_id, incarnation);
      const auto now = state_->clock_->now();
      if (m == nullptr || m->row.status == "left" || m->lease_until <= now ||
          m->heartbeat_session == 0 || state_->sessions_.count(m->heartbeat_session) != 0) {
        return false;
      }
      m->lease_until = now;
      return true;
    });
  }

  caf::expected<persistence::drain_outcome> set_draining(const std::string& node_id) override {
    using persistence::drain_outcome;
    return locked([&]() -> caf::expected<drain_outcome> {
      auto i = state_->members_.find(node_id);
      if (i == state_->members_.end() || i->second.row.status == "left") {
        return drain_outcome::not_found;
      }
      const auto now = state_->clock_->now();
      const bool others =
          std::any_of(state_->members_.begin(), state_->members_.end(), [&](const auto& kv) {
            return kv.first != node_id && kv.second.row.status == "up" &&
                   kv.second.lease_until > now;
          });
      if (!others) {
        return drain_outcome::last_serving;
      }
      i->second.row.status = "draining";
      return drain_outcome::draining;
    });
  }

  caf::expected<bool> clear_draining(const std::string& node_id) override {
    return locked([&]() -> caf::expected<bool> {
      auto i = state_->members_.find(node_id);
      if (i == state_->members_.end() || i->second.row.status == "left") {
        return false;
      }
      i->second.row.status = "up";
      return true;
    });
  }

  caf::expected<bool> mark_left(const std::string& node_id, int64_t incarnation) override {
    return locked([&]() -> caf::expected<bool> {
      auto* m = row_locked(node_id, incarnation);
      if (m == nullptr) {
        return false;
      }
      m->row.status = "left";
      m->lease_until = state_->clock_->now();
      return true;
    });
  }

  caf::expected<std::vector<persistence::member_record>> members() override {
    return locked([&]() -> caf::expected<std::vector<persistence::member_record>> {
      return state_->members_locked();
    });
  }

  caf::expected<std::vector<persistence::shard_lease_record>> leases() override {
    return locked([&]() -> caf::expected<std::vector<persistence::shard_lease_record>> {
      return state_->leases_locked();
    });
  }

  caf::expected<std::optional<persistence::allocation_result>>
  allocation_round(const planner& plan) override {
    std::vector<persistence::member_record> members;
    std::vector<persistence::shard_lease_record> leases;
    {
      std::lock_guard<std::mutex> guard{state_->mtx_};
      if (auto err = check_locked()) {
        return err;
      }
      if (state_->allocator_lock_ != nullptr) {
        return std::optional<persistence::allocation_result>{};
      }
      state_->allocator_lock_ = this;
      members = state_->members_locked();
      leases = state_->leases_locked();
    }
    // The plan is made without the state's mutex, so that other instances may act meanwhile
    // (as other connections do while a transaction holds only the advisory lock).
    const auto changes = plan(members, leases);
    std::lock_guard<std::mutex> guard{state_->mtx_};
    state_->allocator_lock_ = nullptr; // the round's transaction ends here, one way or another
    if (auto err = check_locked()) {
      return err;
    }
    persistence::allocation_result done;
    for (const auto& c : changes) {
      auto i = state_->leases_.find(c.shard);
      if (i == state_->leases_.end() || i->second.epoch != c.epoch) {
        continue;
      }
      auto& l = i->second;
      switch (c.what) {
      case persistence::lease_change::kind::assign:
        if (l.owner == c.from) {
          state_->change_owner_locked(l, c.to,
                                      c.from.empty() ? "unassigned" : "failover from " + c.from);
          ++done.assigned;
        }
        break;
      case persistence::lease_change::kind::move:
        if (l.owner == c.from && !c.from.empty() && l.target.empty()) {
          l.target = c.to;
          ++done.moved;
        }
        break;
      case persistence::lease_change::kind::cancel:
        l.target.clear();
        ++done.cancelled;
        break;
      }
    }
    return done;
  }

  caf::expected<std::optional<uint64_t>> complete_handover(const std::string& owner, uint32_t shard,
                                                           uint64_t epoch,
                                                           const std::string& target) override {
    return locked([&]() -> caf::expected<std::optional<uint64_t>> {
      auto i = state_->leases_.find(shard);
      if (i == state_->leases_.end() || i->second.owner != owner || owner.empty() ||
          i->second.epoch != epoch || i->second.target != target || target.empty()) {
        return std::optional<uint64_t>{};
      }
      return state_->change_owner_locked(i->second, target, "handover from " + owner);
    });
  }

  caf::expected<std::vector<std::string>> skus_holding() override {
    return locked([&]() -> caf::expected<std::vector<std::string>> { return state_->holding_; });
  }

  caf::expected<std::vector<persistence::shard_history_record>> history(uint32_t shard) override {
    return locked([&]() -> caf::expected<std::vector<persistence::shard_history_record>> {
      std::vector<persistence::shard_history_record> out;
      std::copy_if(state_->history_.begin(), state_->history_.end(), std::back_inserter(out),
                   [&](const auto& h) { return h.shard == shard; });
      return out;
    });
  }

 private:
  /// Runs `f` under the state's mutex, as one statement on this connection: a broken instance,
  /// or any instance while the state is down, fails (and breaks) instead.
  template <class F>
  auto locked(F&& f) -> decltype(f()) {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    return f();
  }

  /// REQUIRES: the state's mutex held.
  caf::error check_locked() {
    if (!healthy_) {
      return persistence::make_error(errc::unavailable, "connection is broken");
    }
    if (state_->down_) {
      healthy_ = false;
      state_->sessions_.erase(session_);
      return persistence::make_error(errc::unavailable, "the server is down");
    }
    return caf::none;
  }

  /// The row of (`node_id`, `incarnation`), or nullptr. REQUIRES: the state's mutex held.
  memory_membership_state::member* row_locked(const std::string& node_id, int64_t incarnation) {
    auto i = state_->members_.find(node_id);
    if (i == state_->members_.end() || i->second.row.incarnation != incarnation) {
      return nullptr;
    }
    return &i->second;
  }

  const std::shared_ptr<memory_membership_state> state_;
  bool healthy_ = true;
  uint64_t session_ = 0;
};

} // namespace surge::fakes
