#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "histogram.hpp"

namespace surge::bench {

using clock = std::chrono::steady_clock;

/// Longest --duration accepted; every loop of the tool is bounded by it.
constexpr std::chrono::seconds max_duration{600};

/// Set by SIGINT/SIGTERM: every loop stops early and the tool still cleans up.
std::atomic<bool>& interrupted();

/// Settings of `surge-bench hot-sku`.
struct hot_sku_options {
  std::string pg_admin_url = "postgresql://surge@127.0.0.1:5432/postgres";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::chrono::milliseconds duration{10000};
  int clients = 16;
  int concurrency = 1000;
  std::string json_path; ///< empty: no JSON
};

/// When a run warms up and when it measures: [warm_from, measure_from) is warm-up,
/// [measure_from, measure_until) is measured.
struct phases {
  clock::time_point warm_from;
  clock::time_point measure_from;
  clock::time_point measure_until;

  static phases starting_now(std::chrono::milliseconds warmup, std::chrono::milliseconds run) {
    phases p;
    p.warm_from = clock::now();
    p.measure_from = p.warm_from + warmup;
    p.measure_until = p.measure_from + run;
    return p;
  }
  bool measured(clock::time_point t) const { return t >= measure_from && t < measure_until; }
  double seconds() const {
    return std::chrono::duration<double>(measure_until - measure_from).count();
  }
};

/// The warm-up before each system: a second, or half the duration when that is shorter.
inline std::chrono::milliseconds warmup_for(std::chrono::milliseconds duration) {
  return std::min(std::chrono::milliseconds{1000}, duration / 2);
}

/// Figures of one system.
struct run_result {
  std::string system;
  uint64_t measured = 0; ///< successful reservations completed in the measured window
  uint64_t total_ok = 0; ///< successful reservations over the whole run (warm-up and drain too)
  uint64_t errors = 0;   ///< failed requests over the whole run
  double seconds = 0;    ///< length of the measured window
  histogram latency;     ///< nanoseconds, measured window only
  std::string failure;   ///< non-empty: the correctness check failed (why)

  double per_second() const { return seconds > 0 ? static_cast<double>(measured) / seconds : 0; }
  double p_ms(double p) const { return static_cast<double>(latency.percentile(p)) / 1e6; }
};

/// Prints a progress line on stderr every second from `p.warm_from` until `p.measure_until`
/// (or an interruption): elapsed measured time, reservations/s so far and in the last second.
/// `measured` counts the reservations completed in the measured window so far.
void report_progress(const std::string& label, const phases& p,
                     const std::atomic<uint64_t>& measured);

/// The two systems of `hot-sku`. Both throw std::runtime_error on set-up failures.
run_result run_baseline(const hot_sku_options& opts, const std::string& db_url);

struct surge_extra {
  uint64_t transactions = 0;  ///< commit_queue::stats()
  uint64_t requests = 0;      ///< journal batches committed (one per SKU flush)
  uint64_t failures = 0;      ///< requests answered with an error
  int64_t held = -1;          ///< stock held after the run, from the live SKU actor
  int64_t held_reloaded = -1; ///< the same after re-activating the SKU from PostgreSQL
};

/// `redis_prefix` is a key prefix no one else uses (the caller deletes its keys afterwards).
run_result run_surge(const hot_sku_options& opts, const std::string& db_url,
                     const std::string& redis_prefix, surge_extra& extra);

} // namespace surge::bench
