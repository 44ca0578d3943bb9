#pragma once

// The load engine: simulated shoppers (state machines scheduled by timers) sharing a pool of
// keep-alive HTTP/1.1 connections (Boost.Beast) on one io_context run by options::threads
// threads. Each thread's worth of work is a shard: its own strand, connections, shoppers and
// counters, so shards never share mutable state; the per-second reporter reads a shard's
// counters under that shard's mutex.
//
// Latency is measured from the intended start of each request: the moment its shopper's timer
// was due (for the first request of an open-model journey, its Poisson arrival time), so time
// spent waiting for a free connection or behind a late event loop counts (no coordinated
// omission).

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "options.hpp"
#include "surge/tools/histogram.hpp"

namespace surge::load {

using tools::histogram;

enum class req_kind { listing, page, product, cart, add_item, checkout, checkout_retry };
constexpr int kind_count = 7;
const char* kind_name(req_kind k);

/// What the storefront told the shoppers.
struct outcomes {
  uint64_t journeys = 0;         ///< journeys started
  uint64_t dropped_arrivals = 0; ///< open model: arrivals with --max-users journeys in flight
  uint64_t carts = 0;            ///< 201 carts created
  uint64_t held = 0;             ///< 200 on PUT item
  uint64_t sold_out = 0;         ///< 409 sold_out
  uint64_t limit_exceeded = 0;   ///< 409 limit_exceeded
  uint64_t orders = 0;           ///< 201 on a first checkout
  uint64_t confirmed_units = 0;  ///< units in those orders with status confirmed
  uint64_t declines = 0;         ///< 402 payment_declined
  uint64_t replays = 0;          ///< a resubmitted checkout answered with the same order
  uint64_t replay_mismatch = 0;  ///< ... answered with anything else (a contract violation)
  uint64_t hold_expired = 0;     ///< 409 hold_expired
  uint64_t empty_cart = 0;       ///< journeys that had nothing to check out (all sold out)
  uint64_t checkout_unknown = 0; ///< checkouts without an answer or with 5xx
  uint64_t not_modified = 0;     ///< 304 on product pages
  uint64_t pages = 0;            ///< 200 on product pages
};

/// What this run believes about one SKU's stock.
struct sku_tally {
  int64_t live_holds = 0;      ///< units acknowledged held (200) in carts not (known) checked out
  int64_t confirmed_units = 0; ///< units in confirmed orders answered 201
  uint64_t uncertain = 0;      ///< hold or checkout requests whose outcome is unknown
  uint64_t puts = 0;           ///< PUT item requests that reached a node's decision (or not)
};

struct kind_stats {
  histogram latency; ///< microseconds, from the intended start
  uint64_t count = 0;
  uint64_t errors = 0; ///< no answer, 5xx, or a 4xx other than 402/409
};

/// One second of the run.
struct second_point {
  double t = 0; ///< seconds since the start
  uint64_t requests = 0;
  uint64_t errors = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t active = 0; ///< journeys in progress
};

struct run_result {
  std::array<kind_stats, kind_count> kinds;
  histogram all;
  std::map<std::string, uint64_t> statuses; ///< "200", "409", ..., "timeout", "connect", "io"
  outcomes out;
  std::map<std::string, sku_tally> skus; ///< by SKU, every SKU a PUT was sent for
  std::vector<second_point> series;
  double elapsed_s = 0;
  uint64_t sent = 0;     ///< requests given a connection (issued minus unsent)
  uint64_t answered = 0; ///< requests with an HTTP answer
  bool hit_max_requests = false;
  uint64_t unsent = 0; ///< requests still waiting for a connection when the run ended: never sent
  /// The intended start of the earliest PUT item that was answered; a hold it made cannot
  /// expire before first_hold + holds.ttl.
  std::optional<std::chrono::steady_clock::time_point> first_hold;
  uint64_t stale_retries = 0; ///< requests resent once because a kept connection was closed
};

/// Environment facts the engine is given (main reads them).
struct run_setup {
  std::vector<std::string> skus; ///< catalog_skus(options)
  uint32_t connections = 0;      ///< after the file-descriptor bound
  std::string run_id;            ///< unique per run: in customer ids and idempotency keys
  /// HS256 secret of customer tokens: each shopper carries a token for its customer (empty:
  /// the cart's body names the customer, for nodes that do not verify customers).
  std::string customer_secret;
};

/// Runs the load (blocking) and returns what it saw. Bounded: journeys start for
/// options::duration, at most options::max_requests requests are sent, and in-flight requests
/// are waited for at most options::timeout + 2 s after that.
run_result run_load(const options& o, const run_setup& setup);

} // namespace surge::load
