#include <algorithm>
#include <exception>
#include <limits>
#include <map>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

#include "pg_products.hpp"
#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/pg.hpp"

namespace surge::persistence {

namespace {

constexpr int64_t to_bigint(uint64_t x) {
  return x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(x);
}

/// The journal on one libpqxx connection. Owned and used by one thread at a time.
class pg_journal final : public journal {
 public:
  explicit pg_journal(std::unique_ptr<pqxx::connection> conn)
      : conn_(std::move(conn)) {}

  bool healthy() const override { return healthy_; }

  caf::error commit(std::span<const commit_request> reqs) override;
  caf::expected<std::vector<journal_batch>> read(const std::string& stream,
                                                 uint64_t after) override;
  caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream) override;
  caf::expected<std::optional<product_record>> load_product(const std::string& sku) override;
  caf::expected<std::vector<std::string>> skus_holding(std::size_t limit) override;

 private:
  /// Translates the exception in flight into an error; marks the journal unhealthy when the
  /// connection is gone. `during_commit`: the failure may have hit after the server committed.
  caf::error translate(bool during_commit = false) noexcept;

  std::string build_commit_sql(pqxx::transaction_base& tx,
                               std::span<const commit_request> reqs) const;

  /// Runs `body(tx)` on a non-transaction of the connection and returns what it returns:
  /// errc::unavailable at once when the connection is broken, and any exception translated.
  template <class T, class Body>
  caf::expected<T> query(Body body) {
    if (!healthy_) {
      return make_error(errc::unavailable, "connection to PostgreSQL is broken");
    }
    try {
      pqxx::nontransaction tx{*conn_};
      return body(tx);
    } catch (...) {
      return translate();
    }
  }

  const std::unique_ptr<pqxx::connection> conn_;
  bool healthy_ = true;
};

caf::error pg_journal::translate(bool during_commit) noexcept {
  return detail::translate_current(*conn_, healthy_, {during_commit, false});
}

/// Appends one multi-row statement to `sql`: `head`, then "(...)" for each element of `rows`
/// (comma-separated; `row(sql, element)` appends what stands inside the parentheses), then
/// `tail`.
template <class Rows, class Row>
void append_rows(std::string& sql, std::string_view head, const Rows& rows, Row row,
                 std::string_view tail) {
  sql += head;
  bool first = true;
  for (const auto& e : rows) {
    if (!first) {
      sql += ',';
    }
    first = false;
    sql += '(';
    row(sql, e);
    sql += ')';
  }
  sql += tail;
}

std::string pg_journal::build_commit_sql(pqxx::transaction_base& tx,
                                         std::span<const commit_request> reqs) const {
  // One simple-protocol query of several statements: PostgreSQL runs it as ONE implicit
  // transaction (all or nothing) in ONE round trip. Every value is escaped by libpq
  // (PQescapeStringConn / PQescapeByteaConn), so no value can change the statements.
  std::string sql;
  std::size_t bytes = 0;
  for (const auto& r : reqs) {
    bytes += r.batch.stream.size() + 2 * r.batch.payload.size() + 64;
    if (r.snap) {
      bytes += r.snap->stream.size() + 2 * r.snap->payload.size() + 64;
    }
  }
  sql.reserve(bytes + 512);
  // Fencing (G4): the first statement locks the lease rows of the shards committed here (FOR
  // SHARE, in shard order) and raises SF001 unless this node still owns each at the epoch the
  // committer holds. A lease that moves waits for this transaction; a stale one aborts it.
  std::map<int32_t, uint64_t> fences;
  const std::string* fence_node = nullptr;
  for (const auto& r : reqs) {
    if (r.shard >= 0) {
      fences.emplace(r.shard, r.epoch);
      fence_node = &r.node;
    }
  }
  if (fence_node != nullptr) {
    std::string shards = "'{";
    std::string epochs = "'{";
    for (const auto& [shard, epoch] : fences) {
      if (shards.size() > 2) {
        shards += ',';
        epochs += ',';
      }
      shards += std::to_string(shard);
      epochs += std::to_string(to_bigint(epoch));
    }
    sql += "SELECT surge_fence(" + tx.quote(*fence_node) + ',' + shards + "}'::int[]," + epochs +
           "}'::bigint[]);";
  }
  append_rows(
      sql, "INSERT INTO sku_journal(stream,seq,payload,shard,epoch,node_id) VALUES ", reqs,
      [&](std::string& out, const commit_request& r) {
        out += tx.quote(r.batch.stream);
        out += ',';
        out += std::to_string(to_bigint(r.batch.seq));
        out += ',';
        out += tx.quote_raw(r.batch.payload);
        if (r.shard >= 0) {
          out += ',' + std::to_string(r.shard) + ',' + std::to_string(to_bigint(r.epoch)) + ',' +
                 tx.quote(r.node);
        } else {
          out += ",NULL,NULL,NULL";
        }
      },
      ";");
  // One row per key: ON CONFLICT DO UPDATE may not touch a row twice in one statement. Later
  // requests of the batch win for stock and products; the highest seq wins for snapshots.
  std::map<std::string_view, const stock_record*> stocks;
  std::map<std::string_view, const product_record*> products;
  std::map<std::string_view, const snapshot*> snaps;
  for (const auto& r : reqs) {
    if (r.stock) {
      stocks[r.stock->sku] = &*r.stock;
    }
    if (r.product) {
      products[r.product->sku] = &*r.product;
    }
    if (r.snap) {
      auto& slot = snaps[r.snap->stream];
      if (slot == nullptr || slot->seq <= r.snap->seq) {
        slot = &*r.snap;
      }
    }
  }
  if (!stocks.empty()) {
    append_rows(
        sql, "INSERT INTO stock(sku,on_hand,held,sold,updated_at) VALUES ", stocks,
        [&](std::string& out, const auto& row) {
          const stock_record& s = *row.second;
          out += tx.quote(s.sku);
          out += ',' + std::to_string(s.on_hand) + ',' + std::to_string(s.held) + ',' +
                 std::to_string(s.sold) + ",now()";
        },
        " ON CONFLICT (sku) DO UPDATE SET on_hand=excluded.on_hand,held=excluded.held,"
        "sold=excluded.sold,updated_at=excluded.updated_at;");
  }
  if (!products.empty()) {
    const auto product_row = [&](std::string& out, const auto& row) {
      const product_record& p = *row.second;
      out += tx.quote(p.sku) + ',' + tx.quote(p.name) + ',' + tx.quote(p.description) + ',' +
             tx.quote(p.category) + ',' + std::to_string(p.price_cents) + ',' +
             tx.quote(p.currency) + ',' + std::to_string(p.per_customer_limit);
    };
    // The catalog event (topic "catalog", relayed to the Redis stream <prefix>catalog) of each
    // product this transaction really changes: new, or any stored field differs. It reads the
    // rows before the upsert below, in the same transaction, so a product written again as it
    // is (a repeated PUT or import) makes no event, and an event exists iff its change commits.
    append_rows(sql,
                "INSERT INTO outbox(topic,key,payload) SELECT 'catalog',v.sku,"
                "json_build_object('sku',v.sku,'name',v.name,'category',v.category,"
                "'price_cents',v.price_cents::bigint,'currency',v.currency)::text FROM (VALUES ",
                products, product_row,
                ") AS v(sku,name,description,category,price_cents,currency,per_customer_limit) "
                "LEFT JOIN products p ON p.sku=v.sku WHERE p.sku IS NULL OR "
                "(p.name,p.description,p.category,p.price_cents,p.currency,p.per_customer_limit) "
                "IS DISTINCT FROM (v.name,v.description,v.category,v.price_cents::bigint,"
                "v.currency,v.per_customer_limit::bigint) ORDER BY v.sku;");
    append_rows(
        sql,
        "INSERT INTO products(sku,name,description,category,price_cents,currency,"
        "per_customer_limit,updated_at) VALUES ",
        products,
        [&](std::string& out, const auto& row) {
          product_row(out, row);
          out += ",now()";
        },
        " ON CONFLICT (sku) DO UPDATE SET name=excluded.name,description=excluded.description,"
        "category=excluded.category,price_cents=excluded.price_cents,"
        "currency=excluded.currency,per_customer_limit=excluded.per_customer_limit,"
        "updated_at=excluded.updated_at;");
  }
  if (!snaps.empty()) {
    append_rows(
        sql, "INSERT INTO snapshots(stream,seq,payload,updated_at) VALUES ", snaps,
        [&](std::string& out, const auto& row) {
          const snapshot& s = *row.second;
          out += tx.quote(s.stream) + ',' + std::to_string(to_bigint(s.seq)) + ',' +
                 tx.quote_raw(s.payload) + ",now()";
        },
        " ON CONFLICT (stream) DO UPDATE SET seq=excluded.seq,payload=excluded.payload,"
        "updated_at=excluded.updated_at WHERE snapshots.seq <= excluded.seq;");
  }
  return sql;
}

caf::error pg_journal::commit(std::span<const commit_request> reqs) {
  if (reqs.empty()) {
    return caf::none;
  }
  if (!healthy_) {
    return make_error(errc::unavailable, "connection to PostgreSQL is broken");
  }
  bool sent = false;
  try {
    pqxx::nontransaction tx{*conn_};
    auto sql = build_commit_sql(tx, reqs);
    sent = true;
    tx.exec(sql);
    tx.commit();
    return caf::none;
  } catch (...) {
    return translate(sent);
  }
}

caf::expected<std::vector<journal_batch>> pg_journal::read(const std::string& stream,
                                                           uint64_t after) {
  return query<std::vector<journal_batch>>([&](pqxx::nontransaction& tx) {
    auto rows = tx.exec_params(
        "SELECT seq, payload FROM sku_journal WHERE stream = $1 AND seq > $2 ORDER BY seq", stream,
        to_bigint(after));
    std::vector<journal_batch> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
      pqxx::binarystring payload{row[1]};
      out.push_back(journal_batch{stream, row[0].as<uint64_t>(), payload.str()});
    }
    return out;
  });
}

caf::expected<std::optional<snapshot>> pg_journal::load_snapshot(const std::string& stream) {
  return query<std::optional<snapshot>>([&](pqxx::nontransaction& tx) {
    auto rows = tx.exec_params("SELECT seq, payload FROM snapshots WHERE stream = $1", stream);
    if (rows.empty()) {
      return std::optional<snapshot>{};
    }
    pqxx::binarystring payload{rows[0][1]};
    return std::optional<snapshot>{snapshot{stream, rows[0][0].as<uint64_t>(), payload.str()}};
  });
}

caf::expected<std::optional<product_record>> pg_journal::load_product(const std::string& sku) {
  return query<std::optional<product_record>>([&](pqxx::nontransaction& tx) {
    auto rows = tx.exec_params("SELECT sku, name, description, category, price_cents, currency,"
                               " per_customer_limit FROM products WHERE sku = $1",
                               sku);
    if (rows.empty()) {
      return std::optional<product_record>{};
    }
    return std::optional<product_record>{detail::product_of(rows[0])};
  });
}

caf::expected<std::vector<std::string>> pg_journal::skus_holding(std::size_t limit) {
  return query<std::vector<std::string>>([&](pqxx::nontransaction& tx) {
    return detail::first_column(tx.exec_params(
        "SELECT sku FROM stock WHERE held > 0 ORDER BY sku LIMIT $1", static_cast<int64_t>(limit)));
  });
}

} // namespace

caf::expected<std::unique_ptr<journal>> make_pg_journal(const std::string& url) {
  return detail::open_adapter<journal, pg_journal>(url);
}

} // namespace surge::persistence
