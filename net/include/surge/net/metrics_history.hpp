#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "surge/net/metrics.hpp"

namespace surge::net {

/// The `q` quantile (0..1) of what a histogram recorded between two samples of it (`from`
/// earlier, `to` later), interpolated linearly inside the bucket it falls in, as Prometheus'
/// histogram_quantile() does (lower bound of the first bucket 0; in the +Inf bucket: the
/// highest finite bound). nullopt when nothing was recorded in between.
std::optional<double> quantile_between(double q, const histogram_figures& from,
                                       const histogram_figures& to);

/// The last `points` steps of this node's metrics (samples of node_metrics), answering the
/// local body of GET /admin/v1/metrics/history (net/README.md "Metrics history"): each point is
/// what happened between two consecutive samples — rates from counter deltas (per second of
/// the samples' own time difference; 0 without data), quantiles from bucket deltas (null
/// without data), mean batch sizes from sum/count deltas (null without batches). Keeps
/// `points + 1` samples. Thread-safe.
class metrics_history {
 public:
  explicit metrics_history(std::size_t points = 180, int step_s = 5);

  void add(metrics_sample s);
  /// The JSON body for `node_id`.
  std::string body(std::string_view node_id) const;

 private:
  const std::size_t points_;
  const int step_s_;
  mutable std::mutex mu_;
  std::deque<metrics_sample> samples_; ///< guarded by mu_, oldest first
};

/// Samples `metrics` into `history` every `step` (the first at once) on a thread of its own,
/// stamped with `now_ms()`, until stop(). Never runs on an I/O or actor thread.
class history_sampler {
 public:
  history_sampler(node_metrics& metrics, metrics_history& history, std::chrono::milliseconds step,
                  std::function<int64_t()> now_ms);
  ~history_sampler(); ///< stop()
  history_sampler(const history_sampler&) = delete;
  history_sampler& operator=(const history_sampler&) = delete;

  /// Ends the thread (at once, not after the current wait). Idempotent.
  void stop();

 private:
  node_metrics& metrics_;
  metrics_history& history_;
  const std::chrono::milliseconds step_;
  const std::function<int64_t()> now_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false; ///< guarded by mu_
  std::thread thread_;    ///< last: starts once the rest is made
};

} // namespace surge::net
