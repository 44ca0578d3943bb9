// `queue`: what a sale's waiting room costs per ticket, and what a position costs.
//
// queue  --tickets customers (20-byte ids) join one sale's queue, half before its lottery, and a
//        quarter of them are admitted; then --lookups random customers ask for their position.
//        Two systems in one run, one after the other: the naive queue (an
//        std::unordered_map<std::string, uint64_t> from customer to join number beside a
//        std::vector of tickets {customer, rank, admitted_at}) and Surge's sale_model (ids in one
//        arena, an open-addressing table of join numbers, a rank per pre-queue ticket only).
//        Prints heap bytes per ticket (the allocator's own count of live bytes, before and after
//        building), sale_model's bytes_used(), ns per position lookup by customer and by join
//        number, the ratios, and checks that both give the same position to every ticket looked
//        up and that sale_model stays under 120 bytes per ticket.

#include <malloc.h>
#ifdef SURGE_MALLOC_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <iostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "surge/actors/sale_model.hpp"

namespace surge::bench {

namespace {

struct queue_options {
  int tickets = 1'000'000;
  int lookups = 1'000'000;
  std::string json_path;
};

/// Where the lookups' results go, so that the timed loops are not optimised away.
volatile int64_t lookups_sink = 0;

constexpr const char* queue_usage =
    R"(usage: surge-bench queue [--tickets=1000000] [--lookups=1000000] [--json=FILE]

A sale's waiting room in-process, no servers: --tickets customers (20-byte ids) join, half before
the lottery, a quarter are admitted; then --lookups positions of random customers. The naive queue
(std::unordered_map<std::string, uint64_t> + std::vector of tickets) vs Surge's sale_model: heap
bytes per ticket, ns per position lookup (by customer id, and by join number as a ticket gives
it), the ratios. FAIL when a position differs or sale_model needs 120 bytes per ticket or more.

flags:
  --tickets=N   1000..20000000 (default 1000000)
  --lookups=N   1..100000000 (default 1000000)
  --json=FILE   also write the figures as JSON to FILE
  --help        this text

exit status: 0 ok, 1 a check failed (FAIL), 2 bad flags
)";

std::optional<queue_options> parse_queue(const std::vector<std::string>& args) {
  queue_options o;
  const std::vector<cli::flag> flags = {
      int_flag("tickets", o.tickets, 1000, 20'000'000),
      int_flag("lookups", o.lookups, 1, 100'000'000),
      json_flag(o),
  };
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  return o;
}

/// Live heap bytes as the allocator counts them (jemalloc: stats.allocated; glibc: mallinfo2).
uint64_t heap_bytes() {
#ifdef SURGE_MALLOC_JEMALLOC
  ::mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  uint64_t epoch = 1;
  std::size_t sz = sizeof(epoch);
  ::mallctl("epoch", &epoch, &sz, &epoch, sz);
  std::size_t allocated = 0;
  sz = sizeof(allocated);
  if (::mallctl("stats.allocated", &allocated, &sz, nullptr, 0) != 0) {
    return 0;
  }
  return allocated;
#else
  const auto mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

std::string customer_of(int i) {
  return "customer-" + std::to_string(1'000'000'000 + i); // 20 bytes
}

/// The naive queue: what a first version keeps per ticket.
struct naive_queue {
  struct ticket {
    std::string customer;
    int64_t rank = -1;
    int64_t admitted_at_ms = 0;
  };
  std::unordered_map<std::string, uint64_t> by_customer;
  std::vector<ticket> tickets;
  int64_t admitted = 0;

  void join(const std::string& c) {
    if (by_customer.emplace(c, tickets.size()).second) {
      tickets.push_back(ticket{c});
    }
  }
  int64_t position_of_seq(uint64_t seq) const {
    const int64_t r = tickets[seq].rank;
    return r < admitted ? 0 : r - admitted + 1;
  }
  int64_t position(const std::string& c) const {
    auto i = by_customer.find(c);
    return i == by_customer.end() ? -1 : position_of_seq(i->second);
  }
};

/// Nanoseconds per call of `f(i)` for i in [0, n), and the sum of its results (kept alive).
template <class F>
double ns_per(int n, F f, int64_t& sum) {
  const auto t0 = clock::now();
  for (int i = 0; i < n; ++i) {
    sum += f(i);
  }
  return std::chrono::duration<double, std::nano>(clock::now() - t0).count() / n;
}

int run_queue(const queue_options& o) {
  const int n = o.tickets;
  const uint64_t seed = 0x5eedULL;
  const int64_t admitted = n / 4;
  // The customers looked up, and their join numbers: the same for both systems.
  std::vector<std::string> asked;
  std::vector<uint32_t> asked_seq;
  {
    actors::lottery_rng pick{42};
    asked.reserve(static_cast<std::size_t>(std::min(o.lookups, 1 << 20)));
    for (int i = 0; i < std::min(o.lookups, 1 << 20); ++i) {
      const auto s = static_cast<uint32_t>(pick.below(static_cast<uint64_t>(n)));
      asked.push_back(customer_of(static_cast<int>(s)));
      asked_seq.push_back(s);
    }
  }
  const auto m = asked.size();
  std::cerr << "[queue] " << grouped(static_cast<uint64_t>(n)) << " tickets, "
            << grouped(static_cast<uint64_t>(o.lookups)) << " lookups\n";

  // The naive queue.
  double naive_bytes = 0;
  double naive_ns_customer = 0;
  double naive_ns_seq = 0;
  std::vector<int64_t> naive_positions(m);
  int64_t sink = 0;
  {
    const uint64_t before = heap_bytes();
    auto q = std::make_unique<naive_queue>();
    for (int i = 0; i < n / 2; ++i) {
      q->join(customer_of(i));
    }
    const auto order = actors::lottery_order(seed, static_cast<uint32_t>(n / 2));
    for (uint32_t r = 0; r < order.size(); ++r) {
      q->tickets[order[r]].rank = r;
    }
    for (int i = n / 2; i < n; ++i) {
      q->join(customer_of(i));
      q->tickets.back().rank = i;
    }
    q->admitted = admitted;
    naive_bytes = static_cast<double>(heap_bytes() - before) / n;
    naive_ns_customer = ns_per(
        o.lookups, [&](int i) { return q->position(asked[static_cast<std::size_t>(i) % m]); },
        sink);
    naive_ns_seq = ns_per(
        o.lookups,
        [&](int i) { return q->position_of_seq(asked_seq[static_cast<std::size_t>(i) % m]); },
        sink);
    for (std::size_t i = 0; i < m; ++i) {
      naive_positions[i] = q->position(asked[i]);
    }
  }

  // sale_model, built through its events as the sale actor does.
  double surge_bytes = 0;
  double model_bytes = 0;
  double surge_ns_customer = 0;
  double surge_ns_seq = 0;
  std::size_t mismatches = 0;
  {
    const uint64_t before = heap_bytes();
    auto q = std::make_unique<actors::sale_model>();
    proto::SaleEvent ev;
    for (int i = 0; i < n; ++i) {
      if (i == n / 2) {
        ev.Clear();
        ev.set_lottery(seed);
        q->apply(ev);
      }
      ev.set_joined(customer_of(i));
      q->apply(ev);
    }
    ev.Clear();
    ev.set_admitted(admitted);
    q->apply(ev);
    ev.Clear();
    surge_bytes = static_cast<double>(heap_bytes() - before) / n;
    model_bytes = static_cast<double>(q->bytes_used()) / n;
    auto pos = [&](uint64_t seq) { return q->position(seq).value_or(0); };
    surge_ns_customer = ns_per(
        o.lookups,
        [&](int i) {
          const auto s = q->seq_of(asked[static_cast<std::size_t>(i) % m]);
          return s ? pos(*s) : -1;
        },
        sink);
    surge_ns_seq = ns_per(
        o.lookups, [&](int i) { return pos(asked_seq[static_cast<std::size_t>(i) % m]); }, sink);
    for (std::size_t i = 0; i < m; ++i) {
      const auto s = q->seq_of(asked[i]);
      if (!s || pos(*s) != naive_positions[i]) {
        ++mismatches;
      }
    }
  }

  std::cout << "| system | heap bytes/ticket | ns/position by customer | ns/position by ticket |\n"
            << "|---|---:|---:|---:|\n"
            << "| naive (unordered_map<string> + vector) | " << fixed(naive_bytes, 1) << " | "
            << fixed(naive_ns_customer, 1) << " | " << fixed(naive_ns_seq, 1) << " |\n"
            << "| Surge (sale_model) | " << fixed(surge_bytes, 1) << " | "
            << fixed(surge_ns_customer, 1) << " | " << fixed(surge_ns_seq, 1) << " |\n";
  const double mem_ratio = surge_bytes > 0 ? naive_bytes / surge_bytes : 0;
  const double lookup_ratio = surge_ns_customer > 0 ? naive_ns_customer / surge_ns_customer : 0;
  std::cout << "ratio naive/surge: memory " << fixed(mem_ratio, 2) << "x, position by customer "
            << fixed(lookup_ratio, 2) << "x; sale_model bytes_used " << fixed(model_bytes, 1)
            << " bytes/ticket\n";
  lookups_sink = sink; // the lookups' results stay used
  bool ok = true;
  if (mismatches > 0) {
    std::cout << "FAIL: " << mismatches << " of " << m << " positions differ\n";
    ok = false;
  }
  if (model_bytes >= 120 || surge_bytes >= 120) {
    std::cout << "FAIL: sale_model takes 120 bytes per ticket or more\n";
    ok = false;
  }
  if (ok) {
    std::cout << "OK: " << m << " positions equal in both; sale_model under 120 bytes/ticket\n";
  }
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"tickets\": " << n << ",\n  \"lookups\": " << o.lookups
            << ",\n  \"naive\": {\"bytes_per_ticket\": " << fixed(naive_bytes, 1)
            << ", \"ns_per_position_by_customer\": " << fixed(naive_ns_customer, 1)
            << ", \"ns_per_position_by_ticket\": " << fixed(naive_ns_seq, 1) << "}"
            << ",\n  \"surge\": {\"bytes_per_ticket\": " << fixed(surge_bytes, 1)
            << ", \"bytes_used_per_ticket\": " << fixed(model_bytes, 1)
            << ", \"ns_per_position_by_customer\": " << fixed(surge_ns_customer, 1)
            << ", \"ns_per_position_by_ticket\": " << fixed(surge_ns_seq, 1) << "}"
            << ",\n  \"ratio_memory\": " << fixed(mem_ratio, 2)
            << ",\n  \"ratio_position\": " << fixed(lookup_ratio, 2);
    write_json_file(o.json_path, "queue", members.str(), ok);
  }
  return ok ? 0 : 1;
}

} // namespace

int queue_command(const std::vector<std::string>& args) {
  return guarded("queue", queue_usage, "surge-bench queue --help", args, parse_queue, run_queue);
}

} // namespace surge::bench
