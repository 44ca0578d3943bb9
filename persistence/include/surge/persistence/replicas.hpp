#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/expected.hpp>

#include "surge/persistence/catalog.hpp"

namespace surge::persistence {

/// What the node learns about its PostgreSQL read replicas (pg.read_urls), shared by every
/// routed catalog of the node. Thread-safe.
///
/// A probe round (every `interval` on the thread "surge-replicas", or probe_once()) takes the
/// node's clock T0, then reads the primary's pg_current_wal_lsn() and clock_timestamp(), then
/// on each replica pg_last_wal_replay_lsn() and pg_last_xact_replay_timestamp():
/// - replay LSN >= the primary's LSN: the replica holds every commit made before T0, so it is
///   fresh as of T0;
/// - otherwise it holds every commit up to its last replayed one, so it is fresh as of
///   T0 - (primary clock - last replayed commit's timestamp), both read on the primary's clock
///   (no comparison across hosts' clocks; the primary's clock is read after T0, so the bound
///   errs on the stale side);
/// - a replica that never replayed a commit while behind, that is not in recovery (promoted),
///   or that cannot be reached, or any round in which the primary cannot be reached: not
///   usable until a later round says otherwise.
/// A replica is usable at time t when its last round succeeded, no call marked it down since,
/// and t - fresh_as_of <= max_lag. So a read it serves misses no commit older than max_lag.
class replica_health {
 public:
  using clock = std::chrono::steady_clock;

  /// Hooks for the node's metrics (each may be empty; called on the probing thread or the
  /// reading thread; must not block).
  struct observers {
    /// After each round, per replica: its index and its age (t - fresh_as_of, seconds) at the
    /// probe, or a negative value when it is not usable for another reason (unreachable...).
    std::function<void(std::size_t replica, double lag_seconds)> lag;
    /// One catalog read served: by replica `replica`, or by the primary when `replica` is
    /// npos.
    std::function<void(std::size_t replica)> read;
  };
  static constexpr std::size_t primary = static_cast<std::size_t>(-1);

  /// What one replica looked like at its last round (for tests and logs).
  struct state {
    bool reachable = false; ///< the last round read it (and the primary)
    bool caught_up = false; ///< ... and it had replayed the primary's LSN of T0
    bool down = false;      ///< a call failed on it since that round
    clock::time_point fresh_as_of{};
  };

  /// `replica_urls` are libpq URIs. `interval` 0: no thread; rounds run only in probe_once().
  replica_health(std::string primary_url, std::vector<std::string> replica_urls,
                 std::chrono::milliseconds max_lag,
                 std::chrono::milliseconds interval = std::chrono::milliseconds{200},
                 observers obs = {});
  /// Stops and joins the probing thread.
  ~replica_health();
  replica_health(const replica_health&) = delete;
  replica_health& operator=(const replica_health&) = delete;

  const std::string& primary_url() const { return primary_url_; }
  const std::vector<std::string>& replica_urls() const { return urls_; }
  std::chrono::milliseconds max_lag() const { return max_lag_; }

  /// One probe round now (blocks on PostgreSQL: never on a CAF or HTTP I/O thread).
  void probe_once();

  /// May replica `i` serve a read at `now`?
  bool usable(std::size_t i, clock::time_point now = clock::now()) const;
  /// Replica `i` failed a call: not usable until its next successful round.
  void mark_down(std::size_t i);
  /// Where a round-robin pass starts (advances on every call).
  std::size_t next_start() { return rr_.fetch_add(1, std::memory_order_relaxed); }
  state state_of(std::size_t i) const;
  /// Reports one read to observers.read.
  void count_read(std::size_t target) const;

 private:
  void run();

  const std::string primary_url_;
  const std::vector<std::string> urls_;
  const std::chrono::milliseconds max_lag_;
  const std::chrono::milliseconds interval_;
  const observers obs_;
  std::atomic<std::size_t> rr_{0};

  mutable std::mutex mtx_; ///< guards states_
  std::vector<state> states_;

  struct probe_conns;
  std::mutex probe_mtx_; ///< one round at a time; guards conns_
  std::unique_ptr<probe_conns> conns_;

  std::mutex stop_mtx_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

/// Opens one catalog connection on a URL (make_pg_catalog, or a test's).
using catalog_opener = std::function<caf::expected<std::unique_ptr<catalog>>(const std::string&)>;

/// A catalog that sends each call to a usable replica of `health` (round robin), else to the
/// primary. A call that fails on a replica with errc::unavailable is made once more on the
/// primary within the same call (the replica is marked down when its connection broke), so a
/// replica's failure never reaches the caller. Its connections (the primary's, one per
/// replica) are made on first use and remade after a failure; a replica whose connect failed is
/// not tried again by this catalog for a backoff (200 ms doubling to 5 s). Like every catalog,
/// one thread at a time; healthy() is always true (it remakes its own connections). Only the
/// catalog pool uses it: nothing that decides stock or orders may read a replica.
std::unique_ptr<catalog> make_routed_catalog(std::shared_ptr<replica_health> health,
                                             catalog_opener open);

} // namespace surge::persistence
