#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace surge::net {

/// Who an HTTP request served: label `kind` of surge_http_request_duration_seconds.
enum class http_kind { shopper, admin, probe };

/// The figures /metrics has always shown, read from the bridge at scrape time.
struct legacy_figures {
  bool up = false;                 ///< surge_up
  std::vector<uint64_t> by_status; ///< surge_http_responses_total{code}: index = status
  uint64_t rate_limited = 0;       ///< surge_http_rate_limited_total
  uint64_t skus = 0;               ///< surge_entities_active{kind="sku"}
  uint64_t carts = 0;              ///< surge_entities_active{kind="cart"}
};

/// Cumulative figures of one histogram series at one instant (bucket counts cumulative, as
/// Prometheus exposes them; `bounds` are the finite upper bounds, the +Inf bucket is `count`).
struct histogram_figures {
  std::vector<double> bounds;
  std::vector<uint64_t> buckets; ///< same size as `bounds`
  uint64_t count = 0;
  double sum = 0;
};

/// What the metrics history keeps of the registry every step (metrics_history.hpp).
struct metrics_sample {
  int64_t t_ms = 0;
  struct route_figures {
    std::string route;
    std::string method;
    histogram_figures duration; ///< summed over codes; shopper and admin kinds, not probes
  };
  std::vector<route_figures> routes;
  uint64_t status_4xx = 0; ///< requests answered 4xx so far (every kind)
  uint64_t status_5xx = 0;
  histogram_figures journal_commit; ///< seconds
  histogram_figures journal_batch;  ///< entity batches per transaction
  histogram_figures redis_batch;    ///< writes per round trip
  uint64_t holds_placed = 0;
  uint64_t holds_expired = 0;
  uint64_t holds_confirmed = 0;
};

/// The node's Prometheus registry (prometheus-cpp) with every family of the /metrics contract
/// (net/README.md "Metrics"), and the only place that knows prometheus-cpp. Layers below net
/// never see it: they report through plain hooks and counters that the runtime connects to the
/// recording calls here.
///
/// Recording calls are thread-safe and never block beyond prometheus-cpp's own per-series
/// atomics and histogram lock: each series is looked up in its family once, on its first use,
/// then reached through a cached pointer. Label values are fixed sets (kinds, route templates,
/// methods, codes, pools, gateways, ops, outcomes): never an entity id.
///
/// Pulled figures (gauges, counters kept below net) are read by collectors, which run before
/// every render() and sample(), serialised by one lock (scrapes and the sampler are rare).
class node_metrics {
 public:
  /// `node_id` and `version` label surge_build_info. Creates every unlabelled series (zero)
  /// and the pool series, so that they show before their first observation.
  node_metrics(std::string node_id, std::string version);
  ~node_metrics();
  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;

  /// Most routes (with their unmatched slots) that may be registered.
  static constexpr std::size_t max_routes = 256;

  /// Registers a route's series slot: `route` is the router's template ("unmatched" when no
  /// route matched), `method` its method. Returns the slot for observe_http(); the same
  /// (kind, route, method) gives the same slot. REQUIRES: at wiring, before requests; at most
  /// max_routes slots (more throw std::length_error).
  std::size_t http_route(http_kind kind, std::string_view route, std::string_view method);
  /// One answered request of `slot` (surge_http_request_duration_seconds). Statuses outside
  /// 100-599 are not recorded.
  void observe_http(std::size_t slot, int status, double seconds);

  /// One journal transaction: its time and how many entity batches it carried.
  void journal_commit(double seconds, std::size_t batches);
  /// One Redis round trip of batched writes: its time and how many writes it carried.
  void redis_batch(double seconds, std::size_t writes);
  /// A hook that records a job's wait in `pool`'s queue (pool = pg, redis, orders, catalog).
  std::function<void(double seconds)> pool_wait(std::string_view pool);
  /// One call to payment gateway `gateway` (op charge|lookup|refund; outcome approved|declined|
  /// failed|unknown|refunded|rejected|not_found; another op or outcome is not recorded).
  void payment_call(std::string_view gateway, std::string_view op, std::string_view outcome,
                    double seconds);
  /// A charge moved on from `gateway` to the next one.
  void payment_failover(std::string_view gateway);
  /// One lease renewal (heartbeat): its time when it succeeded, else a failure.
  void lease_renewal(double seconds, bool ok);
  /// A probe of read replica `replica` (1-based, the order of pg.read_urls): usable or not,
  /// and how far behind the primary it was (seconds; only set while usable).
  void replica_probe(std::size_t replica, bool up, double lag_seconds);
  /// One catalog read served by read replica `replica` (1-based), or by the primary (0).
  void catalog_read(std::size_t replica);

  // For collectors (under the collect lock).
  void set_breaker(std::string_view gateway, int state); ///< 0 closed, 1 half-open, 2 open
  void set_shards_owned(uint64_t n);
  void set_actors(std::string_view kind, uint64_t n); ///< kind = sku|cart|order
  /// Totals since start of the holds counted below net; the counters move by the difference.
  void set_holds(uint64_t placed, uint64_t expired, uint64_t confirmed, uint64_t released);

  /// Adds a collector. REQUIRES: at wiring, before render() or sample() run.
  void on_collect(std::function<void(node_metrics&)> collector);

  /// Runs the collectors, sets the legacy families from `legacy`, and returns the registry in
  /// the Prometheus text format: legacy families first, in their old order, then the others in
  /// the order they were made; series of a family sorted by labels.
  std::string render(const legacy_figures& legacy);
  /// Runs the collectors and takes what the history keeps, stamped `t_ms`.
  metrics_sample sample(int64_t t_ms);

  /// The legacy families alone through prometheus-cpp, for a bridge without node_metrics.
  static std::string render_legacy(const legacy_figures& legacy);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace surge::net
