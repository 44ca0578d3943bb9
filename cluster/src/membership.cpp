#include "surge/cluster/membership.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <set>

#include <pqxx/pqxx>

#include "log.hpp"
#include "pg_util.hpp" // persistence/src: connect with a bounded timeout

namespace surge::cluster {

namespace {

using clock = std::chrono::steady_clock;

using detail::logger;

/// Advisory lock key of the allocator ("SurgeAl"), taken per round (transaction-scoped).
constexpr long long allocator_lock_key = 0x53757267654163;

std::string interval_ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " milliseconds";
}

std::pair<std::string, uint16_t> split_address(const std::string& a) {
  auto colon = a.rfind(':');
  if (colon == std::string::npos) {
    return {a, 0};
  }
  try {
    return {a.substr(0, colon), static_cast<uint16_t>(std::stoul(a.substr(colon + 1)))};
  } catch (...) {
    return {a.substr(0, colon), 0};
  }
}

} // namespace

struct membership::impl {
  impl(membership_options o, shard_table& t, membership_hooks h)
      : opts(std::move(o))
      , table(t)
      , hooks(std::move(h)) {}

  const membership_options opts;
  shard_table& table;
  const membership_hooks hooks;

  std::unique_ptr<pqxx::connection> conn;    ///< the map thread's
  std::unique_ptr<pqxx::connection> hb_conn; ///< the heartbeat thread's
  int64_t incarnation = 0;
  std::thread thread;
  std::thread hb_thread;
  /// Steady-clock time (ns) at which the last successful heartbeat was sent.
  std::atomic<int64_t> renewed_at{0};
  /// The lease lapsed (paused, cut off): only the map thread extends it again, after applying
  /// the map, so that shards lost meanwhile are dropped before anything is served.
  std::atomic<bool> lapsed{false};
  std::atomic<bool> fenced_out{false};

  mutable std::mutex mtx; // guards everything below
  std::condition_variable cv;
  std::condition_variable cv_hb;
  bool stopping = false;
  bool dropped = false; ///< drop_everything() ran after fenced_out
  bool poked = false;
  bool have_map = false;
  std::vector<node_info> last_nodes;
  std::vector<shard_info> last_shards;
  std::vector<std::pair<std::string, std::function<void(bool)>>> drains;
  bool leaving = false;

  // Owned by the loop thread.
  struct handoff {
    uint64_t epoch;
    std::string target;
    clock::time_point started;
  };
  std::map<uint32_t, handoff> handoffs;
  std::map<std::string, clock::time_point> last_connect;

  /// (Re)connects `c`. Membership writes are not synchronous commits: a heartbeat lost in a
  /// crash of PostgreSQL only shortens a lease, and whoever acts on a lease change commits its
  /// journal synchronously later, which flushes the change first. So a slow disk (fsync) never
  /// delays a heartbeat. Lock waits are bounded: a round that cannot get a row gives up and
  /// tries again in the next one.
  bool ensure_conn(std::unique_ptr<pqxx::connection>& c) {
    if (c && c->is_open()) {
      return true;
    }
    auto made = persistence::detail::connect(opts.pg_url);
    if (!made) {
      logger()->warn("membership: {}", caf::to_string(made.error()));
      c.reset();
      return false;
    }
    c = std::move(*made);
    try {
      pqxx::nontransaction tx{*c};
      tx.exec("SET synchronous_commit = off");
      tx.exec("SET lock_timeout = '1s'");
      tx.exec("SET statement_timeout = '5s'");
      // A member paused inside a transaction must not hold lease rows for long.
      tx.exec("SET idle_in_transaction_session_timeout = '3s'");
    } catch (const std::exception& e) {
      logger()->warn("membership: {}", e.what());
      c.reset();
      return false;
    }
    return true;
  }
  bool ensure_conn() { return ensure_conn(conn); }

  std::string register_member() {
    if (!ensure_conn()) {
      return "cannot reach PostgreSQL at " + opts.pg_url;
    }
    incarnation = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    try {
      pqxx::work tx{*conn};
      tx.exec_params("INSERT INTO shard_leases(shard) SELECT generate_series(0, $1 - 1) "
                     "ON CONFLICT DO NOTHING",
                     static_cast<int>(opts.shards));
      auto n = tx.exec1("SELECT count(*) FROM shard_leases")[0].as<long>();
      if (n != static_cast<long>(opts.shards)) {
        return "setting 'cluster.shards' is " + std::to_string(opts.shards) +
               " but the database has " + std::to_string(n) +
               " shards (fixed for the life of a database)";
      }
      tx.exec_params(
          "INSERT INTO members(node_id,address,http_address,admin_address,incarnation,status,"
          "started_at,heartbeat_at,lease_until) VALUES ($1,$2,$3,$4,$5,'up',now(),now(),"
          "now() + $6::interval) ON CONFLICT (node_id) DO UPDATE SET address=excluded.address,"
          "http_address=excluded.http_address,admin_address=excluded.admin_address,"
          "incarnation=excluded.incarnation,status='up',started_at=now(),heartbeat_at=now(),"
          "lease_until=excluded.lease_until",
          opts.node_id, opts.address, opts.http_address, opts.admin_address, incarnation,
          interval_ms(opts.lease));
      // Shards an older incarnation of this node id still owns: new epoch, so that it (if it
      // still runs somewhere) is fenced. In shard order, as every lease writer.
      tx.exec_params("SELECT shard FROM shard_leases WHERE owner = $1 ORDER BY shard FOR UPDATE",
                     opts.node_id);
      tx.exec_params("WITH up AS (UPDATE shard_leases SET epoch = epoch + 1, target = NULL, "
                     "assigned_at = now() WHERE owner = $1 RETURNING shard, epoch) "
                     "INSERT INTO shard_history(shard, epoch, owner, reason) "
                     "SELECT shard, epoch, $1, 'restart' FROM up",
                     opts.node_id);
      tx.commit();
    } catch (const std::exception& e) {
      conn.reset();
      return std::string{"cannot register the member: "} + e.what();
    }
    table.set_lease_deadline(clock::now() + opts.lease - opts.heartbeat);
    return {};
  }

  /// Renews the member lease. False when the row is not ours any more.
  bool heartbeat(uint64_t actors) {
    pqxx::nontransaction tx{*hb_conn};
    auto rows = tx.exec_params(
        "UPDATE members SET heartbeat_at = now(), lease_until = now() + $3::interval, "
        "actors = $4 WHERE node_id = $1 AND incarnation = $2 RETURNING status",
        opts.node_id, incarnation, interval_ms(opts.lease), static_cast<int64_t>(actors));
    return !rows.empty();
  }

  void run_drain_requests() {
    decltype(drains) todo;
    {
      std::lock_guard<std::mutex> guard{mtx};
      todo.swap(drains);
    }
    for (auto& [node, done] : todo) {
      bool found = false;
      try {
        pqxx::nontransaction tx{*conn};
        auto r = tx.exec_params("UPDATE members SET status = 'draining' WHERE node_id = $1 AND "
                                "status <> 'left' RETURNING node_id",
                                node);
        found = !r.empty();
      } catch (const std::exception& e) {
        logger()->warn("drain of {}: {}", node, e.what());
      }
      if (found) {
        logger()->info("node {} is draining", node);
      }
      done(found);
    }
  }

  /// One allocator round if this member wins the lock for it.
  void allocate_round() {
    pqxx::work tx{*conn};
    if (!tx.exec_params1("SELECT pg_try_advisory_xact_lock($1)", allocator_lock_key)[0]
             .as<bool>()) {
      return;
    }
    std::vector<member_state> members;
    for (const auto& row : tx.exec("SELECT node_id, lease_until > now(), status, "
                                   "(extract(epoch FROM now() - started_at) * 1000)::bigint "
                                   "FROM members WHERE status <> 'left'")) {
      member_state m;
      m.node_id = row[0].as<std::string>();
      m.alive = row[1].as<bool>();
      m.draining = row[2].as<std::string>() == "draining";
      m.age_ms = row[3].as<int64_t>();
      members.push_back(std::move(m));
    }
    std::vector<lease_state> leases;
    for (const auto& row :
         tx.exec("SELECT shard, coalesce(owner, ''), epoch, coalesce(target, '') FROM "
                 "shard_leases ORDER BY shard")) {
      leases.push_back(lease_state{row[0].as<uint32_t>(), row[1].as<std::string>(),
                                   row[2].as<uint64_t>(), row[3].as<std::string>()});
    }
    allocator_options ao;
    ao.max_moves = opts.max_moves;
    ao.min_age_ms = opts.min_age.count();
    auto plan = allocate(members, leases, ao);
    if (plan.empty()) {
      tx.commit();
      return;
    }
    // Lock the rows in shard order (as commits do), then guarded updates: a row that changed
    // since it was read is left alone.
    std::set<uint32_t> touched;
    for (const auto& a : plan.assigns) {
      touched.insert(a.shard);
    }
    for (const auto& m : plan.moves) {
      touched.insert(m.shard);
    }
    for (const auto& c : plan.cancels) {
      touched.insert(c.shard);
    }
    std::string list = "{";
    for (auto s : touched) {
      list += (list.size() > 1 ? "," : "") + std::to_string(s);
    }
    list += "}";
    tx.exec_params("SELECT shard FROM shard_leases WHERE shard = ANY($1::int[]) ORDER BY shard "
                   "FOR UPDATE",
                   list);
    std::size_t assigned = 0;
    for (const auto& a : plan.assigns) {
      auto r = tx.exec_params(
          "UPDATE shard_leases SET owner = $2, epoch = epoch + 1, target = NULL, assigned_at = "
          "now() WHERE shard = $1 AND epoch = $3 AND coalesce(owner, '') = $4 RETURNING epoch",
          static_cast<int>(a.shard), a.to, static_cast<int64_t>(a.epoch), a.from);
      if (!r.empty()) {
        ++assigned;
        tx.exec_params("INSERT INTO shard_history(shard, epoch, owner, reason) VALUES "
                       "($1, $2, $3, $4)",
                       static_cast<int>(a.shard), r[0][0].as<int64_t>(), a.to,
                       a.from.empty() ? "unassigned" : "failover from " + a.from);
      }
    }
    for (const auto& m : plan.moves) {
      tx.exec_params("UPDATE shard_leases SET target = $2 WHERE shard = $1 AND epoch = $3 AND "
                     "owner = $4 AND target IS NULL",
                     static_cast<int>(m.shard), m.to, static_cast<int64_t>(m.epoch), m.from);
    }
    for (const auto& c : plan.cancels) {
      tx.exec_params("UPDATE shard_leases SET target = NULL WHERE shard = $1 AND epoch = $2",
                     static_cast<int>(c.shard), static_cast<int64_t>(c.epoch));
    }
    tx.commit();
    if (assigned > 0 || !plan.moves.empty()) {
      logger()->info("allocator: {} shard(s) assigned, {} move(s) planned, {} cancelled", assigned,
                     plan.moves.size(), plan.cancels.size());
    }
  }

  /// Reads members and leases; applies them to the table. Returns shards newly taken.
  std::vector<uint32_t> read_and_apply() {
    std::vector<node_info> nodes;
    std::vector<shard_info> shards;
    {
      pqxx::nontransaction tx{*conn};
      for (const auto& row :
           tx.exec("SELECT node_id, address, http_address, admin_address, status, "
                   "lease_until > now(), actors, "
                   "(extract(epoch FROM now() - heartbeat_at) * 1000)::bigint FROM members "
                   "ORDER BY node_id")) {
        node_info n;
        n.node_id = row[0].as<std::string>();
        n.address = row[1].as<std::string>();
        n.http_address = row[2].as<std::string>();
        n.admin_address = row[3].as<std::string>();
        n.status = row[4].as<std::string>();
        if (!row[5].as<bool>() && n.status != "left") {
          n.status = "down";
        }
        n.actors = row[6].as<uint64_t>();
        n.heartbeat_age_ms = row[7].as<int64_t>();
        nodes.push_back(std::move(n));
      }
      for (const auto& row : tx.exec("SELECT shard, coalesce(owner, ''), epoch, "
                                     "coalesce(target, '') FROM shard_leases ORDER BY shard")) {
        shards.push_back(shard_info{row[0].as<uint32_t>(), row[1].as<std::string>(),
                                    row[2].as<uint64_t>(), row[3].as<std::string>()});
      }
    }
    std::set<std::string> alive;
    for (auto& n : nodes) {
      if (n.status == "up" || n.status == "draining") {
        alive.insert(n.node_id);
      }
    }
    std::vector<uint32_t> taken;
    for (const auto& s : shards) {
      if (s.shard >= table.shards()) {
        continue;
      }
      const auto prev = table.get(s.shard);
      const bool was_ours =
          prev.st == shard_table::state::local || prev.st == shard_table::state::leaving;
      if (s.owner == opts.node_id && !fenced_out) {
        if (!s.target.empty() && s.target != opts.node_id) {
          if (prev.st != shard_table::state::leaving || prev.epoch != s.epoch) {
            table.set(s.shard, shard_table::state::leaving, s.epoch);
            hooks.release(s.shard, true);
            handoffs[s.shard] = handoff{s.epoch, s.target, clock::now()};
          }
          continue;
        }
        handoffs.erase(s.shard); // a move that was cancelled
        if (prev.st != shard_table::state::local || prev.epoch != s.epoch) {
          if (was_ours && prev.epoch != s.epoch) {
            hooks.release(s.shard, false);
          }
          table.set(s.shard, shard_table::state::local, s.epoch);
          taken.push_back(s.shard);
        }
        continue;
      }
      if (was_ours) {
        logger()->warn("shard {} lost (now {} at epoch {})", s.shard,
                       s.owner.empty() ? "unassigned" : s.owner, s.epoch);
        hooks.release(s.shard, false);
        handoffs.erase(s.shard);
      }
      if (!s.owner.empty() && alive.count(s.owner) != 0 && s.owner != opts.node_id) {
        table.set(s.shard, shard_table::state::remote, s.epoch, s.owner);
      } else {
        table.set(s.shard, shard_table::state::none, s.epoch);
      }
    }
    for (auto& n : nodes) {
      n.shards = static_cast<uint32_t>(std::count_if(
          shards.begin(), shards.end(), [&](const shard_info& s) { return s.owner == n.node_id; }));
    }
    // Peers: connect to live members this node has no gateway of.
    const auto now = clock::now();
    for (const auto& n : nodes) {
      // One connection per pair: the member with the smaller id connects and says hello.
      if (n.node_id <= opts.node_id || alive.count(n.node_id) == 0 || table.peer(n.node_id)) {
        continue;
      }
      auto& last = last_connect[n.node_id];
      if (now - last < std::chrono::seconds{1}) {
        continue;
      }
      last = now;
      auto [host, port] = split_address(n.address);
      if (port != 0 && hooks.connect) {
        hooks.connect(n.node_id, host, port);
      }
    }
    {
      std::lock_guard<std::mutex> guard{mtx};
      last_nodes = std::move(nodes);
      last_shards = std::move(shards);
      have_map = true;
    }
    return taken;
  }

  /// Hands over shards whose entities are gone (or took too long).
  void finish_handoffs() {
    for (auto i = handoffs.begin(); i != handoffs.end();) {
      const auto shard = i->first;
      auto& h = i->second;
      const bool overdue = clock::now() - h.started > opts.handoff_timeout;
      if (hooks.local_count(shard) > 0 && !overdue) {
        ++i;
        continue;
      }
      if (overdue) {
        logger()->warn("handover of shard {} overdue: stopping its entities", shard);
        hooks.release(shard, false);
      }
      pqxx::work tx{*conn};
      auto r = tx.exec_params("UPDATE shard_leases SET owner = target, epoch = epoch + 1, "
                              "target = NULL, assigned_at = now() WHERE shard = $1 AND owner = $2 "
                              "AND epoch = $3 AND target = $4 RETURNING epoch",
                              static_cast<int>(shard), opts.node_id, static_cast<int64_t>(h.epoch),
                              h.target);
      if (!r.empty()) {
        tx.exec_params("INSERT INTO shard_history(shard, epoch, owner, reason) VALUES ($1, $2, "
                       "$3, $4)",
                       static_cast<int>(shard), r[0][0].as<int64_t>(), h.target,
                       "handover from " + opts.node_id);
        tx.commit();
        table.set(shard, shard_table::state::remote, r[0][0].as<uint64_t>(), h.target);
        logger()->debug("shard {} handed over to {}", shard, h.target);
      } else {
        tx.commit();
        table.set(shard, shard_table::state::none, h.epoch);
      }
      i = handoffs.erase(i);
    }
  }

  void wake_holds(const std::vector<uint32_t>& taken) {
    if (taken.empty() || !hooks.wake_sku) {
      return;
    }
    std::set<uint32_t> set(taken.begin(), taken.end());
    pqxx::nontransaction tx{*conn};
    for (const auto& row : tx.exec("SELECT sku FROM stock WHERE held > 0")) {
      auto sku = row[0].as<std::string>();
      if (set.count(table.shard_of("sku", sku)) != 0) {
        hooks.wake_sku(sku);
      }
    }
  }

  void drop_everything(const char* why) {
    for (uint32_t s = 0; s < table.shards(); ++s) {
      auto e = table.get(s);
      if (e.st == shard_table::state::local || e.st == shard_table::state::leaving) {
        hooks.release(s, false);
        table.set(s, shard_table::state::none, e.epoch);
      }
    }
    handoffs.clear();
    logger()->error("membership: {}: this node serves no shard", why);
  }

  /// The heartbeat thread's step: renew the lease (one row), then move this node's deadline
  /// unless the lease lapsed meanwhile (see `lapsed`).
  void beat(uint64_t actors) {
    const auto t0 = clock::now();
    if (fenced_out || !ensure_conn(hb_conn)) {
      return; // the lease deadline passes by itself
    }
    try {
      if (!heartbeat(actors)) {
        fenced_out = true;
        table.set_lease_deadline(clock::time_point{});
        poke();
        return;
      }
      renewed_at = t0.time_since_epoch().count();
      if (table.lease_live() && !lapsed) {
        table.set_lease_deadline(t0 + opts.lease - opts.heartbeat);
      } else if (!lapsed.exchange(true)) {
        logger()->warn("membership: the lease lapsed; serving again once the map is applied");
        poke();
      }
    } catch (const std::exception& e) {
      logger()->warn("heartbeat failed: {}", e.what());
      if (!hb_conn->is_open()) {
        hb_conn.reset();
      }
    }
  }

  void heartbeat_loop() {
    uint64_t n = 0;
    uint64_t actors = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock{mtx};
        if (cv_hb.wait_for(lock, opts.heartbeat, [this] { return stopping; })) {
          return;
        }
      }
      if (n++ % 8 == 0 && hooks.actors) {
        actors = hooks.actors(); // walks the directories: not on every beat
      }
      beat(actors);
    }
  }

  void poke() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      poked = true;
    }
    cv.notify_one();
  }

  void round() {
    if (!ensure_conn()) {
      return; // the lease deadline passes by itself
    }
    try {
      if (fenced_out && !dropped) {
        dropped = true;
        drop_everything("another incarnation registered this node id");
      }
      run_drain_requests();
      if (table.lease_live()) {
        allocate_round();
      }
      auto taken = read_and_apply();
      // After a lapse: the map is applied (lost shards dropped), so the lease renewed by the
      // heartbeat thread may count again, from when that heartbeat was sent.
      if (lapsed && !fenced_out) {
        const clock::time_point t0{clock::duration{renewed_at.load()}};
        table.set_lease_deadline(t0 + opts.lease - opts.heartbeat);
        if (table.lease_live()) {
          lapsed = false;
          logger()->info("membership: the lease is live again");
        }
      }
      finish_handoffs();
      wake_holds(taken);
    } catch (const std::exception& e) {
      logger()->warn("membership round failed: {}", e.what());
      if (!conn->is_open()) {
        conn.reset();
      }
    }
  }

  void loop() {
    for (;;) {
      std::unique_lock<std::mutex> lock{mtx};
      const auto wait = handoffs.empty() ? opts.heartbeat : std::chrono::milliseconds{10};
      cv.wait_for(lock, wait, [this] { return stopping || poked; });
      if (stopping) {
        return;
      }
      poked = false;
      lock.unlock();
      round();
    }
  }
};

membership::membership(membership_options opts, shard_table& table, membership_hooks hooks)
    : impl_(std::make_unique<impl>(std::move(opts), table, std::move(hooks))) {}

membership::~membership() {
  stop();
}

std::string membership::start() {
  auto& d = *impl_;
  if (auto err = d.register_member(); !err.empty()) {
    return err;
  }
  d.round();
  d.table.on_refresh_request([this] { poke(); });
  d.thread = std::thread([&d] { d.loop(); });
  d.hb_thread = std::thread([&d] { d.heartbeat_loop(); });
  logger()->info("member {} (incarnation {}) joined at {}", d.opts.node_id, d.incarnation,
                 d.opts.address);
  return {};
}

bool membership::ready() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->have_map && impl_->table.lease_live() && !impl_->fenced_out;
}

void membership::poke() {
  static thread_local clock::time_point last;
  const auto now = clock::now();
  if (now - last < std::chrono::milliseconds{20}) {
    return;
  }
  last = now;
  impl_->poke();
}

void membership::request_drain(const std::string& node, std::function<void(bool)> done) {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard{d.mtx};
    d.drains.emplace_back(node, std::move(done));
    d.poked = true;
  }
  d.cv.notify_one();
}

void membership::leave(std::chrono::milliseconds patience) {
  auto& d = *impl_;
  if (!d.thread.joinable()) {
    return;
  }
  bool others = false;
  for (const auto& n : nodes()) {
    others |= n.node_id != d.opts.node_id && n.status == "up";
  }
  if (!others) {
    return; // nobody to hand the shards to: they move when the lease runs out
  }
  std::promise<bool> p;
  auto f = p.get_future();
  request_drain(d.opts.node_id, [&p](bool found) { p.set_value(found); });
  if (f.wait_for(patience) != std::future_status::ready) {
    return;
  }
  logger()->info("leaving: handing over every shard");
  const auto deadline = clock::now() + patience;
  while (clock::now() < deadline) {
    bool any = false;
    for (uint32_t s = 0; s < d.table.shards(); ++s) {
      auto st = d.table.get(s).st;
      any |= st == shard_table::state::local || st == shard_table::state::leaving;
    }
    if (!any) {
      logger()->info("left: no shard is owned here any more");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  logger()->warn("leaving: not every shard was handed over in time");
}

void membership::stop() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard{d.mtx};
    if (d.stopping) {
      return;
    }
    d.stopping = true;
  }
  d.cv.notify_all();
  d.cv_hb.notify_all();
  if (d.thread.joinable()) {
    d.thread.join();
  }
  if (d.hb_thread.joinable()) {
    d.hb_thread.join();
  }
  d.table.on_refresh_request({});
  // Mark the member left so that its shards (if any) are reassigned at once.
  try {
    if (d.conn && d.conn->is_open() && !d.fenced_out) {
      pqxx::nontransaction tx{*d.conn};
      tx.exec_params("UPDATE members SET status = 'left', lease_until = now() WHERE node_id = "
                     "$1 AND incarnation = $2",
                     d.opts.node_id, d.incarnation);
    }
  } catch (const std::exception& e) {
    logger()->warn("membership: could not mark the member left: {}", e.what());
  }
  d.table.set_lease_deadline(clock::time_point{});
}

std::vector<node_info> membership::nodes() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->last_nodes;
}

std::vector<shard_info> membership::shard_map() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->last_shards;
}

} // namespace surge::cluster
