#include <algorithm>
#include <optional>
#include <pthread.h>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/replicas.hpp"

namespace surge::persistence {

namespace {

using clock = replica_health::clock;

/// A probing connection to `url`, with short connect and statement timeouts so that one dead
/// server delays a round by seconds at most; nullptr when it cannot connect.
std::unique_ptr<pqxx::connection> probe_connect(const std::string& url) {
  try {
    auto c = std::make_unique<pqxx::connection>(detail::with_connect_timeout(url, 2));
    pqxx::nontransaction tx{*c};
    tx.exec("SET statement_timeout = 2000");
    return c;
  } catch (...) {
    return nullptr;
  }
}

} // namespace

/// The probing thread's connections (under probe_mtx_).
struct replica_health::probe_conns {
  std::unique_ptr<pqxx::connection> primary;
  std::vector<std::unique_ptr<pqxx::connection>> replicas;
};

replica_health::replica_health(std::string primary_url, std::vector<std::string> replica_urls,
                               std::chrono::milliseconds max_lag,
                               std::chrono::milliseconds interval, observers obs)
    : primary_url_(std::move(primary_url))
    , urls_(std::move(replica_urls))
    , max_lag_(max_lag)
    , interval_(interval)
    , obs_(std::move(obs))
    , states_(urls_.size())
    , conns_(std::make_unique<probe_conns>()) {
  conns_->replicas.resize(urls_.size());
  if (interval_.count() > 0 && !urls_.empty()) {
    thread_ = std::thread{[this] { run(); }};
  }
}

replica_health::~replica_health() {
  {
    std::lock_guard<std::mutex> guard{stop_mtx_};
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void replica_health::run() {
  pthread_setname_np(pthread_self(), "surge-replicas");
  std::unique_lock<std::mutex> lock{stop_mtx_};
  while (!stopping_) {
    lock.unlock();
    probe_once();
    lock.lock();
    stop_cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

void replica_health::probe_once() {
  std::lock_guard<std::mutex> probing{probe_mtx_};
  std::vector<state> next(urls_.size());
  const auto t0 = clock::now();
  std::optional<std::string> primary_lsn;
  double primary_now = 0; // epoch seconds on the primary's clock, read after t0
  if (!conns_->primary || !conns_->primary->is_open()) {
    conns_->primary = probe_connect(primary_url_);
  }
  if (conns_->primary) {
    try {
      pqxx::nontransaction tx{*conns_->primary};
      auto row = tx.exec1("SELECT pg_current_wal_lsn()::text,"
                          " extract(epoch FROM clock_timestamp())::float8");
      primary_lsn = row[0].as<std::string>();
      primary_now = row[1].as<double>();
    } catch (...) {
      conns_->primary.reset();
    }
  }
  for (std::size_t i = 0; primary_lsn && i < urls_.size(); ++i) {
    // A connection the server dropped since the last round fails its first query: one more
    // attempt on a new connection.
    for (int attempt = 0; attempt < 2 && !next[i].reachable; ++attempt) {
      auto& conn = conns_->replicas[i];
      if (!conn || !conn->is_open()) {
        conn = probe_connect(urls_[i]);
      }
      if (!conn) {
        break;
      }
      try {
        pqxx::nontransaction tx{*conn};
        auto row = tx.exec_params1(
            "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),"
            " extract(epoch FROM pg_last_xact_replay_timestamp())::float8",
            *primary_lsn);
        if (!row[0].as<bool>()) {
          break; // promoted: no longer a replica of this primary
        }
        auto& s = next[i];
        if (row[1].as<bool>()) {
          s.reachable = s.caught_up = true;
          s.fresh_as_of = t0;
        } else if (!row[2].is_null()) {
          const double behind = std::max(0.0, primary_now - row[2].as<double>());
          s.reachable = true;
          s.fresh_as_of = t0 - std::chrono::duration_cast<clock::duration>(
                                   std::chrono::duration<double>(behind));
        }
        break;
      } catch (...) {
        conn.reset();
      }
    }
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    states_ = next;
  }
  if (obs_.lag) {
    for (std::size_t i = 0; i < next.size(); ++i) {
      obs_.lag(i, next[i].reachable
                      ? std::chrono::duration<double>(t0 - next[i].fresh_as_of).count()
                      : -1.0);
    }
  }
}

bool replica_health::usable(std::size_t i, clock::time_point now) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (i >= states_.size()) {
    return false;
  }
  const auto& s = states_[i];
  return s.reachable && !s.down && now - s.fresh_as_of <= max_lag_;
}

void replica_health::mark_down(std::size_t i) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (i < states_.size()) {
    states_[i].down = true;
  }
}

replica_health::state replica_health::state_of(std::size_t i) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return i < states_.size() ? states_[i] : state{};
}

void replica_health::count_read(std::size_t target) const {
  if (obs_.read) {
    obs_.read(target);
  }
}

namespace {

/// See make_routed_catalog().
class routed_catalog final : public catalog {
 public:
  routed_catalog(std::shared_ptr<replica_health> health, catalog_opener open)
      : health_(std::move(health))
      , open_(std::move(open))
      , replicas_(health_->replica_urls().size()) {}

  bool healthy() const override { return true; }

  caf::expected<std::vector<product_listing>> list_products(const product_query& q) override {
    return route([&](catalog& c) { return c.list_products(q); });
  }
  caf::expected<search_page> search(const search_query& q) override {
    return route([&](catalog& c) { return c.search(q); });
  }
  caf::expected<std::vector<category_count>> categories() override {
    return route([&](catalog& c) { return c.categories(); });
  }
  std::optional<clock::time_point> last_read_fresh_as_of() const override { return last_fresh_; }

 private:
  struct replica_conn {
    std::unique_ptr<catalog> conn;
    clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
  };

  static constexpr std::chrono::milliseconds first_backoff{200};
  static constexpr std::chrono::milliseconds max_backoff{5000};

  /// Replica i's connection, made now when it has none and its backoff is over; nullptr when
  /// it has none (the connect failed: backoff doubled, the replica marked down).
  catalog* replica(std::size_t i, clock::time_point now) {
    auto& r = replicas_[i];
    if (r.conn && !r.conn->healthy()) {
      r.conn.reset();
    }
    if (r.conn || now < r.retry_at) {
      return r.conn.get();
    }
    auto made = open_(health_->replica_urls()[i]);
    if (!made) {
      r.backoff = r.backoff.count() == 0 ? first_backoff : std::min(max_backoff, 2 * r.backoff);
      r.retry_at = now + r.backoff;
      health_->mark_down(i);
      return nullptr;
    }
    r.conn = std::move(*made);
    r.backoff = std::chrono::milliseconds{0};
    return r.conn.get();
  }

  template <class F>
  auto route(F&& f) -> decltype(f(std::declval<catalog&>())) {
    const auto n = replicas_.size();
    const auto now = clock::now();
    const auto start = n > 0 ? health_->next_start() : 0;
    for (std::size_t k = 0; k < n; ++k) {
      const auto i = (start + k) % n;
      if (!health_->usable(i, now)) {
        continue;
      }
      auto* c = replica(i, now);
      if (!c) {
        continue;
      }
      // The replica holds at least what its last round saw: the answer is that fresh.
      last_fresh_ = health_->state_of(i).fresh_as_of;
      auto r = f(*c);
      if (r || !is(r.error(), errc::unavailable)) {
        health_->count_read(i);
        return r;
      }
      // The replica could not answer: the primary answers this call (once).
      if (!c->healthy()) {
        health_->mark_down(i);
        replicas_[i].conn.reset();
      }
      break;
    }
    if (!primary_ || !primary_->healthy()) {
      auto made = open_(health_->primary_url());
      if (!made) {
        primary_.reset();
        return std::move(made.error());
      }
      primary_ = std::move(*made);
    }
    health_->count_read(replica_health::primary);
    last_fresh_.reset();
    return f(*primary_);
  }

  const std::shared_ptr<replica_health> health_;
  const catalog_opener open_;
  std::vector<replica_conn> replicas_;
  std::unique_ptr<catalog> primary_;
  std::optional<clock::time_point> last_fresh_; ///< of the last call; nullopt: the primary
};

} // namespace

std::unique_ptr<catalog> make_routed_catalog(std::shared_ptr<replica_health> health,
                                             catalog_opener open) {
  return std::make_unique<routed_catalog>(std::move(health), std::move(open));
}

} // namespace surge::persistence
