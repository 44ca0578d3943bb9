#include <exception>
#include <set>
#include <string>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/membership_store.hpp"

namespace surge::persistence {

namespace {

/// Advisory lock key of the allocator ("SurgeAl"), taken per round (transaction-scoped).
constexpr long long allocator_lock_key = 0x53757267654163;

std::string interval_ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " milliseconds";
}

/// Members as member_record, by node id (the columns to_member() reads).
constexpr const char* members_sql =
    "SELECT node_id, address, http_address, admin_address, incarnation, status, "
    "lease_until > now(), actors, (extract(epoch FROM now() - started_at) * 1000)::bigint, "
    "(extract(epoch FROM now() - heartbeat_at) * 1000)::bigint, version, "
    "CASE WHEN protocol_incarnation = incarnation THEN protocol ELSE 0 END, "
    "(extract(epoch FROM lease_until - now()) * 1000)::bigint FROM members ORDER BY node_id";

constexpr const char* leases_sql = "SELECT shard, coalesce(owner, ''), epoch, coalesce(target, '') "
                                   "FROM shard_leases ORDER BY shard";

std::vector<member_record> to_members(const pqxx::result& rows) {
  std::vector<member_record> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    // In the order of members_sql and of member_record's fields.
    out.push_back(member_record{
        row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
        row[3].as<std::string>(), row[4].as<int64_t>(), row[5].as<std::string>(), row[6].as<bool>(),
        row[7].as<uint64_t>(), row[8].as<int64_t>(), row[9].as<int64_t>(),
        row[10].as<std::string>(), row[11].as<uint32_t>(0), row[12].as<int64_t>()});
  }
  return out;
}

std::vector<shard_lease_record> to_leases(const pqxx::result& rows) {
  std::vector<shard_lease_record> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    out.push_back(shard_lease_record{row[0].as<uint32_t>(), row[1].as<std::string>(),
                                     row[2].as<uint64_t>(), row[3].as<std::string>()});
  }
  return out;
}

/// "{1,2,3}": an int[] literal of `shards`.
std::string int_array(const std::set<uint32_t>& shards) {
  std::string list = "{";
  for (auto s : shards) {
    list += (list.size() > 1 ? "," : "") + std::to_string(s);
  }
  return list + "}";
}

/// Locks the lease rows of `shards` FOR UPDATE in shard order, as every lease writer does (and
/// after journal commits in flight, which hold them FOR SHARE).
void lock_in_shard_order(pqxx::work& tx, const std::set<uint32_t>& shards) {
  tx.exec_params("SELECT shard FROM shard_leases WHERE shard = ANY($1::int[]) ORDER BY shard "
                 "FOR UPDATE",
                 int_array(shards));
}

void record_history(pqxx::work& tx, uint32_t shard, int64_t epoch, const std::string& owner,
                    const std::string& reason) {
  tx.exec_params("INSERT INTO shard_history(shard, epoch, owner, reason) VALUES ($1, $2, $3, $4)",
                 static_cast<int>(shard), epoch, owner, reason);
}

/// Membership, leases and history on one libpqxx connection. Owned and used by one thread at a
/// time. A broken connection is never used again (guarded() fails at once), so the session
/// settings of configure() hold for every statement.
class pg_membership_store final : public membership_store {
 public:
  explicit pg_membership_store(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {}

  /// The session settings of make_pg_membership_store().
  caf::error configure();

  bool healthy() const override { return healthy_; }

  caf::expected<uint32_t> register_member(const member_registration& r) override;
  caf::expected<heartbeat_outcome> heartbeat(const std::string& node_id, int64_t incarnation,
                                             std::chrono::milliseconds lease, uint64_t actors,
                                             std::chrono::milliseconds cut_off_grace) override;
  caf::error report_unreachable(const std::string& by,
                                const std::vector<std::string>& nodes) override;
  caf::expected<bool> expire_if_gone(const std::string& node_id, int64_t incarnation) override;
  caf::expected<drain_outcome> set_draining(const std::string& node_id) override;
  caf::expected<bool> clear_draining(const std::string& node_id) override;
  caf::expected<bool> mark_left(const std::string& node_id, int64_t incarnation) override;
  caf::expected<std::vector<member_record>> members() override;
  caf::expected<std::vector<shard_lease_record>> leases() override;
  caf::expected<std::optional<allocation_result>> allocation_round(const planner& plan) override;
  caf::expected<std::optional<uint64_t>> complete_handover(const std::string& owner, uint32_t shard,
                                                           uint64_t epoch,
                                                           const std::string& target) override;
  caf::expected<std::vector<std::string>> skus_holding() override;
  caf::expected<std::vector<shard_history_record>> history(uint32_t shard) override;

 private:
  /// Runs `f` at the adapter's edge: a libpqxx exception becomes an error (and marks the store
  /// unhealthy when the connection is gone); a broken store fails at once.
  template <class F>
  auto guarded(F&& f) -> decltype(f()) {
    if (!healthy_) {
      return make_error(errc::unavailable, "connection to PostgreSQL is broken");
    }
    try {
      return f();
    } catch (...) {
      return detail::translate_current(*conn_, healthy_);
    }
  }

  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
};

caf::error pg_membership_store::configure() {
  return guarded([&]() -> caf::error {
    pqxx::nontransaction tx{*conn_};
    tx.exec("SET synchronous_commit = off");
    tx.exec("SET lock_timeout = '1s'");
    tx.exec("SET statement_timeout = '5s'");
    tx.exec("SET idle_in_transaction_session_timeout = '3s'");
    return caf::none;
  });
}

caf::expected<uint32_t> pg_membership_store::register_member(const member_registration& r) {
  return guarded([&]() -> caf::expected<uint32_t> {
    pqxx::work tx{*conn_};
    tx.exec_params("INSERT INTO shard_leases(shard) SELECT generate_series(0, $1 - 1) "
                   "ON CONFLICT DO NOTHING",
                   static_cast<int>(r.shards));
    const auto n = tx.exec1("SELECT count(*) FROM shard_leases")[0].as<int64_t>();
    if (n != static_cast<int64_t>(r.shards)) {
      return static_cast<uint32_t>(n); // the transaction rolls back: nothing written
    }
    tx.exec_params(
        "INSERT INTO members(node_id,address,http_address,admin_address,incarnation,status,"
        "started_at,heartbeat_at,lease_until,version,protocol,protocol_incarnation) VALUES ($1,$2,"
        "$3,$4,$5,'up',now(),now(),now() + $6::interval,$7,$8,$5) ON CONFLICT (node_id) DO UPDATE "
        "SET address=excluded.address,http_address=excluded.http_address,"
        "admin_address=excluded.admin_address,incarnation=excluded.incarnation,status='up',"
        "started_at=now(),heartbeat_at=now(),lease_until=excluded.lease_until,heartbeat_pid=NULL,"
        "version=excluded.version,protocol=excluded.protocol,"
        "protocol_incarnation=excluded.protocol_incarnation",
        r.node_id, r.address, r.http_address, r.admin_address, r.incarnation, interval_ms(r.lease),
        r.version, static_cast<int64_t>(r.protocol));
    // Shards an older incarnation of this node id still owns: new epoch, so that it (if it
    // still runs somewhere) is fenced. In shard order, as every lease writer.
    tx.exec_params("SELECT shard FROM shard_leases WHERE owner = $1 ORDER BY shard FOR UPDATE",
                   r.node_id);
    tx.exec_params("WITH up AS (UPDATE shard_leases SET epoch = epoch + 1, target = NULL, "
                   "assigned_at = now() WHERE owner = $1 RETURNING shard, epoch) "
                   "INSERT INTO shard_history(shard, epoch, owner, reason) "
                   "SELECT shard, epoch, $1, 'restart' FROM up",
                   r.node_id);
    tx.commit();
    return r.shards;
  });
}

caf::expected<heartbeat_outcome>
pg_membership_store::heartbeat(const std::string& node_id, int64_t incarnation,
                               std::chrono::milliseconds lease, uint64_t actors,
                               std::chrono::milliseconds cut_off_grace) {
  return guarded([&]() -> caf::expected<heartbeat_outcome> {
    pqxx::nontransaction tx{*conn_};
    // Cut off: more than half of the live members (this one counted) are live members that
    // reported within a lease that they cannot reach it.
    auto rows = tx.exec_params(
        "WITH live AS (SELECT node_id FROM members WHERE status <> 'left' AND lease_until > "
        "now()), "
        "cut AS (SELECT 2 * (SELECT count(*) FROM member_suspicions s JOIN live l ON "
        "l.node_id = s.suspected_by WHERE s.suspect = $1 AND s.at > now() - $3::interval) > "
        "(SELECT count(*) FROM live) AS yes) "
        "UPDATE members SET heartbeat_at = now(), lease_until = CASE WHEN (SELECT yes FROM cut) "
        "THEN least(lease_until, now() + $5::interval) ELSE now() + $3::interval END, "
        "actors = $4, heartbeat_pid = pg_backend_pid() WHERE node_id = $1 AND incarnation = $2 "
        "RETURNING (SELECT yes FROM cut)",
        node_id, incarnation, interval_ms(lease), static_cast<int64_t>(actors),
        interval_ms(cut_off_grace));
    if (rows.empty()) {
      return heartbeat_outcome::fenced;
    }
    return rows[0][0].as<bool>() ? heartbeat_outcome::cut_off : heartbeat_outcome::renewed;
  });
}

caf::error pg_membership_store::report_unreachable(const std::string& by,
                                                   const std::vector<std::string>& nodes) {
  return guarded([&]() -> caf::error {
    pqxx::work tx{*conn_};
    tx.exec_params("DELETE FROM member_suspicions WHERE suspected_by = $1", by);
    for (const auto& n : nodes) {
      tx.exec_params("INSERT INTO member_suspicions(suspect, suspected_by) VALUES ($1, $2)", n, by);
    }
    tx.commit();
    return caf::none;
  });
}

caf::expected<bool> pg_membership_store::expire_if_gone(const std::string& node_id,
                                                        int64_t incarnation) {
  return guarded([&]() -> caf::expected<bool> {
    pqxx::nontransaction tx{*conn_};
    // A backend leaves pg_stat_activity when its client's connection closes; a process that
    // died closed them all.
    auto rows = tx.exec_params(
        "UPDATE members m SET lease_until = now() WHERE node_id = $1 AND incarnation = $2 AND "
        "status <> 'left' AND lease_until > now() AND heartbeat_pid IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM pg_stat_activity a WHERE a.pid = m.heartbeat_pid) RETURNING 1",
        node_id, incarnation);
    return !rows.empty();
  });
}

caf::expected<drain_outcome> pg_membership_store::set_draining(const std::string& node_id) {
  return guarded([&]() -> caf::expected<drain_outcome> {
    pqxx::work tx{*conn_};
    // Every member row locked, in node id order: two drains decide one after the other.
    tx.exec("SELECT node_id FROM members ORDER BY node_id FOR UPDATE");
    auto me =
        tx.exec_params("SELECT 1 FROM members WHERE node_id = $1 AND status <> 'left'", node_id);
    if (me.empty()) {
      return drain_outcome::not_found;
    }
    auto others = tx.exec_params("SELECT 1 FROM members WHERE node_id <> $1 AND status = 'up' "
                                 "AND lease_until > now() LIMIT 1",
                                 node_id);
    if (others.empty()) {
      return drain_outcome::last_serving; // rolls back: nothing changed
    }
    tx.exec_params("UPDATE members SET status = 'draining' WHERE node_id = $1", node_id);
    tx.commit();
    return drain_outcome::draining;
  });
}

caf::expected<bool> pg_membership_store::clear_draining(const std::string& node_id) {
  return guarded([&]() -> caf::expected<bool> {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params("UPDATE members SET status = 'up' WHERE node_id = $1 AND "
                               "status <> 'left' RETURNING node_id",
                               node_id);
    return !rows.empty();
  });
}

caf::expected<bool> pg_membership_store::mark_left(const std::string& node_id,
                                                   int64_t incarnation) {
  return guarded([&]() -> caf::expected<bool> {
    pqxx::nontransaction tx{*conn_};
    auto rows = tx.exec_params("UPDATE members SET status = 'left', lease_until = now() WHERE "
                               "node_id = $1 AND incarnation = $2 RETURNING node_id",
                               node_id, incarnation);
    return !rows.empty();
  });
}

caf::expected<std::vector<member_record>> pg_membership_store::members() {
  return guarded([&]() -> caf::expected<std::vector<member_record>> {
    pqxx::nontransaction tx{*conn_};
    return to_members(tx.exec(members_sql));
  });
}

caf::expected<std::vector<shard_lease_record>> pg_membership_store::leases() {
  return guarded([&]() -> caf::expected<std::vector<shard_lease_record>> {
    pqxx::nontransaction tx{*conn_};
    return to_leases(tx.exec(leases_sql));
  });
}

caf::expected<std::optional<allocation_result>>
pg_membership_store::allocation_round(const planner& plan) {
  return guarded([&]() -> caf::expected<std::optional<allocation_result>> {
    pqxx::work tx{*conn_};
    if (!tx.exec_params1("SELECT pg_try_advisory_xact_lock($1)", allocator_lock_key)[0]
             .as<bool>()) {
      return std::optional<allocation_result>{};
    }
    const auto changes = plan(to_members(tx.exec(members_sql)), to_leases(tx.exec(leases_sql)));
    allocation_result done;
    if (changes.empty()) {
      tx.commit();
      return done;
    }
    // Lock the rows in shard order (as commits do), then guarded updates: a row that changed
    // since it was read is left alone.
    std::set<uint32_t> touched;
    for (const auto& c : changes) {
      touched.insert(c.shard);
    }
    lock_in_shard_order(tx, touched);
    for (const auto& c : changes) {
      const auto shard = static_cast<int>(c.shard);
      const auto epoch = static_cast<int64_t>(c.epoch);
      switch (c.what) {
      case lease_change::kind::assign: {
        auto r = tx.exec_params(
            "UPDATE shard_leases SET owner = $2, epoch = epoch + 1, target = NULL, assigned_at = "
            "now() WHERE shard = $1 AND epoch = $3 AND coalesce(owner, '') = $4 RETURNING epoch",
            shard, c.to, epoch, c.from);
        if (!r.empty()) {
          ++done.assigned;
          record_history(tx, c.shard, r[0][0].as<int64_t>(), c.to,
                         c.from.empty() ? "unassigned" : "failover from " + c.from);
        }
        break;
      }
      case lease_change::kind::move:
        done.moved += tx.exec_params("UPDATE shard_leases SET target = $2 WHERE shard = $1 AND "
                                     "epoch = $3 AND owner = $4 AND target IS NULL",
                                     shard, c.to, epoch, c.from)
                          .affected_rows();
        break;
      case lease_change::kind::cancel:
        done.cancelled +=
            tx.exec_params("UPDATE shard_leases SET target = NULL WHERE shard = $1 AND epoch = $2",
                           shard, epoch)
                .affected_rows();
        break;
      }
    }
    tx.commit();
    return done;
  });
}

caf::expected<std::optional<uint64_t>>
pg_membership_store::complete_handover(const std::string& owner, uint32_t shard, uint64_t epoch,
                                       const std::string& target) {
  return guarded([&]() -> caf::expected<std::optional<uint64_t>> {
    pqxx::work tx{*conn_};
    auto r = tx.exec_params("UPDATE shard_leases SET owner = target, epoch = epoch + 1, "
                            "target = NULL, assigned_at = now() WHERE shard = $1 AND owner = $2 "
                            "AND epoch = $3 AND target = $4 RETURNING epoch",
                            static_cast<int>(shard), owner, static_cast<int64_t>(epoch), target);
    std::optional<uint64_t> now_at;
    if (!r.empty()) {
      now_at = r[0][0].as<uint64_t>();
      record_history(tx, shard, r[0][0].as<int64_t>(), target, "handover from " + owner);
    }
    tx.commit();
    return now_at;
  });
}

caf::expected<std::vector<std::string>> pg_membership_store::skus_holding() {
  return guarded([&]() -> caf::expected<std::vector<std::string>> {
    pqxx::nontransaction tx{*conn_};
    return detail::first_column(tx.exec("SELECT sku FROM stock WHERE held > 0"));
  });
}

caf::expected<std::vector<shard_history_record>> pg_membership_store::history(uint32_t shard) {
  return guarded([&]() -> caf::expected<std::vector<shard_history_record>> {
    pqxx::nontransaction tx{*conn_};
    std::vector<shard_history_record> out;
    for (const auto& row : tx.exec_params("SELECT shard, epoch, coalesce(owner, ''), reason FROM "
                                          "shard_history WHERE shard = $1 ORDER BY id",
                                          static_cast<int>(shard))) {
      out.push_back(shard_history_record{row[0].as<uint32_t>(), row[1].as<uint64_t>(),
                                         row[2].as<std::string>(), row[3].as<std::string>()});
    }
    return out;
  });
}

} // namespace

caf::expected<std::unique_ptr<membership_store>> make_pg_membership_store(const std::string& url) {
  auto conn = detail::connect(url);
  if (!conn) {
    return std::move(conn.error());
  }
  auto store = std::make_unique<pg_membership_store>(std::move(*conn));
  if (auto err = store->configure()) {
    return err;
  }
  return std::unique_ptr<membership_store>{std::move(store)};
}

} // namespace surge::persistence
