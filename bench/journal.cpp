// `journal`: the ceiling of one PostgreSQL primary as the cluster's shared journal.
//
// journal  For each --events E (reservations per journal batch) and each --nodes N: N group
//          commits as N nodes run them (a persistence::commit_queue each, --writers connections,
//          --max-batch), each driving --streams SKU streams of its own in a closed loop — one batch
//          in flight per stream, as a SKU actor has — into one database. A batch is what a hot
//          SKU commits: a real EventBatch of E hold_set events, the stock projection row, fenced
//          by its shard's lease (256 shards spread over the N nodes, as the cluster assigns
//          them). Per step: journal transactions/s, batches/s, reservations/s (batches x E),
//          commit p50/p99 as a SKU sees it, WAL MB/s (pg_current_wal_lsn). The ratio: the best
//          step of each E against one node with the same E, in the same run.

#include <pqxx/pqxx>

#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "surge.pb.h"
#include "surge/persistence/commit_queue.hpp"
#include "surge/persistence/pg.hpp"
#include "surge/tools/text.hpp"

namespace surge::bench {

namespace {

struct journal_options {
  std::string pg_admin_url =
      env_or("SURGE_TEST_PG_URL", "postgresql://surge@127.0.0.1:5432/postgres");
  std::string redis_url; ///< storage_flags' --redis-url: this command uses no Redis
  std::chrono::milliseconds duration{5000};
  std::vector<int> nodes{1, 2, 4, 8};
  std::vector<int> events{1, 16, 128};
  int streams = 64;
  int writers = 2;
  int max_batch = 512;
  std::string json_path;
};

constexpr int shards = 256;

constexpr const char* journal_usage =
    R"(usage: surge-bench journal [--pg-url=URL] [--duration=5s] [--nodes=1,2,4,8]
                            [--events=1,16,128] [--streams=64] [--writers=2] [--max-batch=512]
                            [--json=FILE]

The ceiling of one PostgreSQL primary as the shared journal. For each --events E and each --nodes
N: N group commits (one commit_queue per node: --writers connections, --max-batch requests per
transaction) each drive --streams SKU streams of their own, one batch in flight per stream, into
one throw-away database. A batch is a real EventBatch of E hold_set events plus the stock row,
fenced by its shard's lease. Prints per step journal transactions/s, batches/s, reservations/s
(batches x E), commit p50/p99 and WAL MB/s; the ratio is the best step of each E against one node.
FAIL when a commit fails or the journal does not hold exactly the acknowledged batches.

flags:
  --pg-url=URL     PostgreSQL where the throw-away database is made ($SURGE_TEST_PG_URL)
  --duration=D     measured time per step, after a 1 s warm-up (default 5s)
  --nodes=LIST     node counts, ascending, 1..64 (default 1,2,4,8)
  --events=LIST    reservations per journal batch, 1..4096 (default 1,16,128)
  --streams=N      SKU streams per node, 1..4096 (default 64)
  --writers=N      journal.writers per node, 1..32 (default 2, the node's default)
  --max-batch=N    journal.max_batch, 1..100000 (default 512, the node's default)
  --json=FILE      also write the figures as JSON to FILE
  --help           this text

exit status: 0 ok, 1 a check failed (FAIL) or set-up failed, 2 bad flags
)";

/// --NAME=a,b,c: integers in lo..hi, ascending.
cli::flag list_flag(const char* name, std::vector<int>& out, int lo, int hi) {
  return {name, cli::takes::value, [name, &out, lo, hi](const std::optional<std::string>& v) {
            std::vector<int> got;
            std::stringstream in{*v};
            std::string item;
            while (std::getline(in, item, ',')) {
              got.push_back(parse_int(name, item, lo, hi));
              if (got.size() > 1 && got.back() <= got[got.size() - 2]) {
                throw bad_flag(std::string{"--"} + name + " expects ascending values, got '" + *v +
                               "'");
              }
            }
            if (got.empty()) {
              throw bad_flag(std::string{"--"} + name + " expects a list like 1,2,4, got '" + *v +
                             "'");
            }
            out = std::move(got);
          }};
}

std::optional<journal_options> parse_journal(const std::vector<std::string>& args) {
  journal_options o;
  const auto flags = storage_flags(o, {
                                          list_flag("nodes", o.nodes, 1, 64),
                                          list_flag("events", o.events, 1, 4096),
                                          int_flag("streams", o.streams, 1, 4096),
                                          int_flag("writers", o.writers, 1, 32),
                                          int_flag("max-batch", o.max_batch, 1, 100'000),
                                          json_flag(o),
                                      });
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  return o;
}

/// E hold_set events as a hot SKU's batch carries them (ids of the lengths the actors use).
std::string batch_payload(int events) {
  proto::EventBatch b;
  const int64_t now = 1'800'000'000'000;
  for (int i = 0; i < events; ++i) {
    auto* ev = b.add_events();
    ev->set_at_ms(now + i);
    auto* h = ev->mutable_hold_set();
    h->set_hold_id("h_" + std::string(30, static_cast<char>('a' + i % 26)));
    h->set_cart_id("c_" + std::string(30, static_cast<char>('b' + i % 24)));
    h->set_customer_id("customer-" + std::to_string(1000000 + i));
    h->set_qty(1);
    h->set_expires_at_ms(now + 600'000);
    h->set_created_at_ms(now);
  }
  return b.SerializeAsString();
}

/// One step's figures.
struct step_result {
  int nodes = 0;
  int events = 0;
  double seconds = 0;
  uint64_t transactions = 0; ///< committed in the measured window
  uint64_t batches = 0;      ///< committed in the measured window
  uint64_t errors = 0;
  uint64_t acknowledged = 0; ///< committed over the whole step (warm-up and drain too)
  std::string first_error;
  double wal_bytes = 0;
  histogram latency; ///< commit round trips as a stream sees them, ns

  double tx_per_s() const { return static_cast<double>(transactions) / seconds; }
  double batches_per_s() const { return static_cast<double>(batches) / seconds; }
  double reservations_per_s() const { return batches_per_s() * events; }
  double p_ms(double p) const { return static_cast<double>(latency.percentile(p)) / 1e6; }
};

/// One simulated node: its group commit and its streams.
struct sim_node {
  std::string id;
  std::unique_ptr<persistence::commit_queue> queue;
  struct stream {
    std::string sku;
    int32_t shard = 0;
    uint64_t seq = 0;
    clock::time_point sent;
  };
  std::vector<stream> streams;
};

/// Everything the streams' callbacks share (they run on the writer threads).
struct step_shared {
  phases p;
  std::string payload;
  int events = 0;
  std::mutex mtx;
  std::condition_variable cv;
  int running = 0;
  client_figures fig;
  std::atomic<uint64_t> progress{0};
};

void send_next(sim_node& n, std::size_t i, step_shared& sh) {
  auto& s = n.streams[i];
  ++s.seq;
  persistence::commit_request r;
  r.batch = {"sku:" + s.sku, s.seq, sh.payload};
  r.shard = s.shard;
  r.epoch = 1;
  r.node = n.id;
  const auto held = static_cast<int64_t>(s.seq) * sh.events;
  r.stock = persistence::stock_record{s.sku, 1'000'000'000, held, 0};
  s.sent = clock::now();
  n.queue->submit(std::move(r), [&n, i, &sh](const caf::error& err) {
    const auto t1 = clock::now();
    bool again = false;
    {
      std::lock_guard<std::mutex> guard{sh.mtx};
      if (err) {
        sh.fig.failed(caf::to_string(err));
      } else {
        sh.fig.succeeded(sh.p, n.streams[i].sent, t1, sh.progress);
      }
      again = !err && t1 < sh.p.measure_until && !interrupted().load(std::memory_order_relaxed);
      if (!again) {
        --sh.running;
      }
    }
    if (again) {
      send_next(n, i, sh); // submit() never blocks: safe on a writer thread
    } else {
      sh.cv.notify_all();
    }
  });
}

/// The 256 shard leases spread over `nodes` nodes "bn-0".. at epoch 1 (shard s to node s % N).
void assign_leases(const std::string& url, int nodes) {
  pqxx::connection c{url};
  pqxx::work tx{c};
  tx.exec("DELETE FROM shard_leases");
  tx.exec("INSERT INTO shard_leases(shard, owner, epoch) SELECT s, 'bn-' || (s % " +
          std::to_string(nodes) + "), 1 FROM generate_series(0, " + std::to_string(shards - 1) +
          ") AS s");
  tx.commit();
}

double wal_lsn(pqxx::connection& c) {
  pqxx::work tx{c};
  const auto r = tx.exec1("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8");
  tx.commit();
  return r[0].as<double>();
}

step_result run_step(const journal_options& o, const std::string& url, int nodes, int events,
                     int step) {
  assign_leases(url, nodes);
  step_shared sh;
  sh.payload = batch_payload(events);
  sh.events = events;
  std::vector<std::unique_ptr<sim_node>> sim;
  for (int n = 0; n < nodes; ++n) {
    auto node = std::make_unique<sim_node>();
    node->id = "bn-" + std::to_string(n);
    node->queue = std::make_unique<persistence::commit_queue>(
        [url]() -> std::unique_ptr<persistence::journal> {
          auto j = persistence::make_pg_journal(url);
          return j ? std::move(*j) : nullptr;
        },
        persistence::commit_queue::options{static_cast<std::size_t>(o.writers),
                                           static_cast<std::size_t>(o.max_batch)});
    for (int s = 0; s < o.streams; ++s) {
      // A shard this node owns: n, n + N, n + 2N, ...
      const int shard = (n + s * nodes) % shards;
      node->streams.push_back(
          {"jb" + std::to_string(step) + "-" + std::to_string(n) + "-" + std::to_string(s),
           shard,
           0,
           {}});
    }
    sim.push_back(std::move(node));
  }
  pqxx::connection probe{url};
  sh.p = phases::starting_now(warmup_for(o.duration), o.duration);
  sh.running = nodes * o.streams;
  for (auto& n : sim) {
    for (std::size_t i = 0; i < n->streams.size(); ++i) {
      send_next(*n, i, sh);
    }
  }
  // The measured window's transactions and WAL: read at its edges.
  sleep_until(sh.p.measure_from);
  uint64_t tx0 = 0;
  for (auto& n : sim) {
    tx0 += n->queue->stats().transactions;
  }
  const double wal0 = wal_lsn(probe);
  const std::string label =
      std::to_string(nodes) + " node(s), " + std::to_string(events) + " reservation(s) per batch";
  report_progress(label, sh.p, sh.progress, "batches");
  uint64_t tx1 = 0;
  for (auto& n : sim) {
    tx1 += n->queue->stats().transactions;
  }
  const double wal1 = wal_lsn(probe);
  {
    std::unique_lock<std::mutex> lock{sh.mtx};
    if (!sh.cv.wait_for(lock, std::chrono::seconds{60}, [&] { return sh.running == 0; })) {
      throw std::runtime_error("streams still waiting on commits 60 s after the step");
    }
  }
  for (auto& n : sim) {
    n->queue->stop();
  }
  step_result r;
  r.nodes = nodes;
  r.events = events;
  r.seconds = sh.p.seconds();
  r.transactions = tx1 - tx0;
  r.batches = sh.fig.measured;
  r.errors = sh.fig.errors;
  r.acknowledged = sh.fig.ok;
  r.first_error = sh.fig.first_error;
  r.wal_bytes = wal1 - wal0;
  r.latency.merge(sh.fig.latency);
  return r;
}

/// `v` grouped when whole ("12,345"), else with `decimals` digits.
std::string fmt(double v, int decimals = 0) {
  return decimals == 0 ? tools::grouped(static_cast<uint64_t>(v + 0.5)) : tools::fixed(v, decimals);
}

void print_table(const std::vector<step_result>& rows) {
  std::cout << "\n| nodes | reservations per batch | journal transactions/s | batches/s | "
               "reservations/s | batches per transaction | commit p50 ms | commit p99 ms | WAL "
               "MB/s | errors |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    const double per_tx = r.transactions > 0
                              ? static_cast<double>(r.batches) / static_cast<double>(r.transactions)
                              : 0;
    std::cout << "| " << r.nodes << " | " << r.events << " | " << fmt(r.tx_per_s()) << " | "
              << fmt(r.batches_per_s()) << " | " << fmt(r.reservations_per_s()) << " | "
              << fmt(per_tx, 1) << " | " << fmt(r.p_ms(50), 2) << " | " << fmt(r.p_ms(99), 2)
              << " | " << fmt(r.wal_bytes / r.seconds / 1e6, 1) << " | " << r.errors << " |\n";
  }
}

int run_journal(const journal_options& o) {
  bench_db db{o.pg_admin_url};
  std::vector<step_result> rows;
  int step = 0;
  for (const int events : o.events) {
    for (const int nodes : o.nodes) {
      rows.push_back(run_step(o, db.url(), nodes, events, step++));
      if (interrupted().load()) {
        break;
      }
    }
  }
  print_table(rows);
  // Per E: the best step (the ceiling) against one node, the first step of that E.
  std::ostringstream json;
  json << ",\n  \"writers\": " << o.writers << ",\n  \"max_batch\": " << o.max_batch
       << ",\n  \"streams_per_node\": " << o.streams << ",\n  \"steps\": [";
  bool ok = true;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    ok = ok && r.errors == 0;
    json << (i == 0 ? "" : ",") << "\n    {\"nodes\": " << r.nodes << ", \"events\": " << r.events
         << ", \"transactions_per_s\": " << r.tx_per_s()
         << ", \"batches_per_s\": " << r.batches_per_s()
         << ", \"reservations_per_s\": " << r.reservations_per_s() << ", \"p50_ms\": " << r.p_ms(50)
         << ", \"p99_ms\": " << r.p_ms(99)
         << ", \"wal_mb_per_s\": " << r.wal_bytes / r.seconds / 1e6 << ", \"errors\": " << r.errors
         << ", \"first_error\": \"" << json_escape(r.first_error) << "\"}";
  }
  json << "\n  ],\n  \"ceilings\": [";
  std::cout << "\n";
  bool first = true;
  for (const int events : o.events) {
    const step_result* one = nullptr;
    const step_result* best = nullptr;
    for (const auto& r : rows) {
      if (r.events != events) {
        continue;
      }
      one = one == nullptr ? &r : one;
      best = best == nullptr || r.reservations_per_s() > best->reservations_per_s() ? &r : best;
    }
    if (one == nullptr) {
      continue;
    }
    const double ratio = best->reservations_per_s() / std::max(one->reservations_per_s(), 1e-9);
    std::cout << events << " reservation(s) per batch: ceiling " << fmt(best->tx_per_s())
              << " journal transactions/s, " << fmt(best->reservations_per_s())
              << " reservations/s at " << best->nodes << " node(s); " << fmt(ratio, 2)
              << "x one node (" << fmt(one->reservations_per_s()) << " reservations/s)\n";
    json << (first ? "" : ",") << "\n    {\"events\": " << events << ", \"nodes\": " << best->nodes
         << ", \"transactions_per_s\": " << best->tx_per_s()
         << ", \"reservations_per_s\": " << best->reservations_per_s()
         << ", \"one_node_reservations_per_s\": " << one->reservations_per_s()
         << ", \"ratio\": " << ratio << "}";
    first = false;
  }
  json << "\n  ]";
  for (const auto& r : rows) {
    if (r.errors > 0) {
      std::cout << "FAIL: " << r.errors << " commit(s) failed at " << r.nodes << " node(s), "
                << r.events << " per batch: " << r.first_error << "\n";
    }
  }
  // Every acknowledged batch is a journal row, and no other row is there.
  uint64_t acknowledged = 0;
  for (const auto& r : rows) {
    acknowledged += r.acknowledged;
  }
  pqxx::connection c{db.url()};
  pqxx::work tx{c};
  const auto in_journal = tx.exec1("SELECT count(*) FROM sku_journal")[0].as<uint64_t>();
  tx.commit();
  if (in_journal != acknowledged) {
    ok = false;
    std::cout << "FAIL: " << acknowledged << " batches acknowledged, " << in_journal
              << " in the journal\n";
  } else {
    std::cout << "check: all " << acknowledged << " acknowledged batches are in the journal\n";
  }
  json << ",\n  \"acknowledged\": " << acknowledged << ",\n  \"in_journal\": " << in_journal;
  if (!o.json_path.empty()) {
    write_json_file(o.json_path, "journal", json.str(), ok);
  }
  return ok ? 0 : 1;
}

} // namespace

int journal_command(const std::vector<std::string>& args) {
  return guarded("journal", journal_usage, "surge-bench journal --help", args, parse_journal,
                 run_journal);
}

} // namespace surge::bench
