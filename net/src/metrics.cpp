#include "surge/net/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace surge::net {

namespace {

namespace prom = prometheus;

/// Latencies from 0.5 ms to 10 s (seconds).
const prom::Histogram::BucketBoundaries& seconds_buckets() {
  static const prom::Histogram::BucketBoundaries b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

/// Batch sizes, powers of two up to 1024.
const prom::Histogram::BucketBoundaries& size_buckets() {
  static const prom::Histogram::BucketBoundaries b{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  return b;
}

constexpr std::array<std::string_view, 3> payment_ops{"charge", "lookup", "refund"};
constexpr std::array<std::string_view, 7> payment_outcomes{
    "approved", "declined", "failed", "unknown", "refunded", "rejected", "not_found"};
constexpr std::size_t max_gateways = 16;
constexpr int first_status = 100;
constexpr int statuses = 500; // 100..599

template <std::size_t N>
std::size_t index_of(const std::array<std::string_view, N>& names, std::string_view v) {
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), v) - names.begin());
}

/// The series `slot` points to, made by `make` on its first use (a race makes it twice: a
/// family returns the same series for the same labels, so both store the same pointer).
template <class T, class Make>
T& cached(std::atomic<T*>& slot, Make make) {
  T* p = slot.load(std::memory_order_acquire);
  if (p == nullptr) {
    p = &make();
    slot.store(p, std::memory_order_release);
  }
  return *p;
}

/// Moves a counter up to `total` (a total kept elsewhere, which only grows).
void set_total(prom::Counter& c, uint64_t total) {
  const double now = c.Value();
  if (static_cast<double>(total) > now) {
    c.Increment(static_cast<double>(total) - now);
  }
}

const char* kind_name(http_kind k) {
  switch (k) {
  case http_kind::shopper:
    return "shopper";
  case http_kind::admin:
    return "admin";
  case http_kind::probe:
    return "probe";
  }
  return "shopper";
}

histogram_figures figures_of(const prom::ClientMetric& m) {
  histogram_figures f;
  f.count = m.histogram.sample_count;
  f.sum = m.histogram.sample_sum;
  for (const auto& b : m.histogram.bucket) {
    if (b.upper_bound == std::numeric_limits<double>::infinity()) {
      continue;
    }
    f.bounds.push_back(b.upper_bound);
    f.buckets.push_back(b.cumulative_count);
  }
  return f;
}

/// Adds `m`'s figures to `into` (same bounds; `into` empty takes them).
void add_figures(histogram_figures& into, const histogram_figures& m) {
  if (into.bounds.empty()) {
    into = m;
    return;
  }
  for (std::size_t i = 0; i < into.buckets.size() && i < m.buckets.size(); ++i) {
    into.buckets[i] += m.buckets[i];
  }
  into.count += m.count;
  into.sum += m.sum;
}

/// The families /metrics showed before prometheus-cpp, with their names, help and meaning.
struct legacy_families {
  explicit legacy_families(prom::Registry& reg)
      : up(prom::BuildGauge().Name("surge_up").Help("1 while the node serves.").Register(reg))
      , responses(prom::BuildCounter()
                      .Name("surge_http_responses_total")
                      .Help("HTTP responses by status.")
                      .Register(reg))
      , rate_limited(prom::BuildCounter()
                         .Name("surge_http_rate_limited_total")
                         .Help("Storefront writes refused 429 rate_limited.")
                         .Register(reg))
      , entities(prom::BuildGauge()
                     .Name("surge_entities_active")
                     .Help("Live entity actors on this node.")
                     .Register(reg)) {}

  static constexpr std::array<std::string_view, 4> names{"surge_up", "surge_http_responses_total",
                                                         "surge_http_rate_limited_total",
                                                         "surge_entities_active"};

  /// REQUIRES: one caller at a time.
  void set(const legacy_figures& f) {
    up.Add({}).Set(f.up ? 1 : 0);
    for (std::size_t s = first_status; s < f.by_status.size() && s < first_status + statuses; ++s) {
      if (f.by_status[s] > 0) {
        set_total(responses.Add({{"code", std::to_string(s)}}), f.by_status[s]);
      }
    }
    set_total(rate_limited.Add({}), f.rate_limited);
    entities.Add({{"kind", "sku"}}).Set(static_cast<double>(f.skus));
    entities.Add({{"kind", "cart"}}).Set(static_cast<double>(f.carts));
  }

  prom::Family<prom::Gauge>& up;
  prom::Family<prom::Counter>& responses;
  prom::Family<prom::Counter>& rate_limited;
  prom::Family<prom::Gauge>& entities;
};

/// `families` in the text format: those named in `first` in that order, then the rest as
/// they came; the series of each family sorted by their labels (prometheus-cpp keeps them in a
/// hash map), so that the text is the same for the same figures.
std::string serialize(std::vector<prom::MetricFamily> families,
                      const std::vector<std::string>& first) {
  auto rank = [&](const prom::MetricFamily& f) {
    return static_cast<std::size_t>(std::find(first.begin(), first.end(), f.name) - first.begin());
  };
  std::stable_sort(families.begin(), families.end(),
                   [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  for (auto& f : families) {
    // surge_entities_active has always listed sku before cart.
    const bool descending = f.name == "surge_entities_active";
    std::sort(f.metric.begin(), f.metric.end(), [descending](const auto& a, const auto& b) {
      return descending ? b.label < a.label : a.label < b.label;
    });
  }
  return prom::TextSerializer().Serialize(families);
}

} // namespace

struct node_metrics::impl {
  impl(std::string node_id, std::string version)
      : legacy(reg)
      , http(prom::BuildHistogram()
                 .Name("surge_http_request_duration_seconds")
                 .Help("HTTP requests by kind (shopper, admin, probe), route template, method and "
                       "status code.")
                 .Register(reg))
      , journal_commit(prom::BuildHistogram()
                           .Name("surge_journal_commit_duration_seconds")
                           .Help("Journal transactions (group commits), seconds.")
                           .Register(reg)
                           .Add({}, seconds_buckets()))
      , journal_batch(prom::BuildHistogram()
                          .Name("surge_journal_batch_size")
                          .Help("Entity batches per journal transaction.")
                          .Register(reg)
                          .Add({}, size_buckets()))
      , redis_batch(prom::BuildHistogram()
                        .Name("surge_redis_batch_duration_seconds")
                        .Help("Redis round trips of batched writes, seconds.")
                        .Register(reg)
                        .Add({}, seconds_buckets()))
      , redis_size(prom::BuildHistogram()
                       .Name("surge_redis_batch_size")
                       .Help("Writes per Redis round trip.")
                       .Register(reg)
                       .Add({}, size_buckets()))
      , pool_wait(prom::BuildHistogram()
                      .Name("surge_pool_wait_seconds")
                      .Help("Time a job waited for a thread of a storage pool.")
                      .Register(reg))
      , payment_calls(prom::BuildHistogram()
                          .Name("surge_payment_call_duration_seconds")
                          .Help("Calls to payment gateways by gateway, op and outcome, seconds.")
                          .Register(reg))
      , breaker(prom::BuildGauge()
                    .Name("surge_payment_breaker_state")
                    .Help("Circuit breaker of a payment gateway: 0 closed, 1 half-open, 2 open.")
                    .Register(reg))
      , failovers(prom::BuildCounter()
                      .Name("surge_payment_failovers_total")
                      .Help("Charges that moved on from this gateway to the next.")
                      .Register(reg))
      , holds(prom::BuildCounter()
                  .Name("surge_holds_total")
                  .Help("Hold events decided on this node (placed, expired, confirmed, released).")
                  .Register(reg))
      , shards_owned(prom::BuildGauge()
                         .Name("surge_shards_owned")
                         .Help("Shards this node owns.")
                         .Register(reg)
                         .Add({}))
      , lease_renewal(prom::BuildHistogram()
                          .Name("surge_lease_renewal_duration_seconds")
                          .Help("Member lease renewals (heartbeats) that succeeded, seconds.")
                          .Register(reg)
                          .Add({}, seconds_buckets()))
      , lease_failures(prom::BuildCounter()
                           .Name("surge_lease_renewal_failures_total")
                           .Help("Member lease renewals that failed.")
                           .Register(reg)
                           .Add({}))
      , actors(prom::BuildGauge()
                   .Name("surge_actors")
                   .Help("Live entity actors on this node by kind.")
                   .Register(reg))
      , replica_up(prom::BuildGauge()
                       .Name("surge_pg_replica_up")
                       .Help("1 when a read replica (pg.read_urls) answered its last probe as a "
                             "standby of the primary.")
                       .Register(reg))
      , replica_lag(prom::BuildGauge()
                        .Name("surge_pg_replica_lag_seconds")
                        .Help("How far a usable read replica was behind the primary at its last "
                              "probe, seconds.")
                        .Register(reg))
      , catalog_reads(prom::BuildCounter()
                          .Name("surge_catalog_reads_total")
                          .Help("Catalog reads by the server that answered (primary, replica N).")
                          .Register(reg)) {
    for (auto p : {"pg", "redis", "orders", "catalog"}) {
      pool_wait.Add({{"pool", p}}, seconds_buckets());
    }
    for (auto e : {"placed", "expired", "confirmed", "released"}) {
      hold_events.push_back(&holds.Add({{"event", e}}));
    }
    for (auto k : {"sku", "cart", "order"}) {
      actors.Add({{"kind", k}});
    }
    prom::BuildGauge()
        .Name("surge_build_info")
        .Help("1, labelled with the build's version and the node id.")
        .Register(reg)
        .Add({{"version", std::move(version)}, {"node", std::move(node_id)}})
        .Set(1);
    order.assign(legacy_families::names.begin(), legacy_families::names.end());
  }

  struct route_slot {
    http_kind kind;
    std::string route;
    std::string method;
    std::array<std::atomic<prom::Histogram*>, statuses> by_status{};
  };

  struct gateway_slot {
    std::string name;
    std::array<std::atomic<prom::Histogram*>, payment_ops.size() * payment_outcomes.size()> calls{};
    std::atomic<prom::Counter*> failovers{nullptr};
  };

  /// The cached slot of `name`, made on its first use; nullptr when the table is full.
  gateway_slot* gateway(std::string_view name) {
    const std::size_t n = gateway_count.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
      if (gateways[i]->name == name) {
        return gateways[i].get();
      }
    }
    std::lock_guard<std::mutex> guard{slots_mu};
    const std::size_t m = gateway_count.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < m; ++i) {
      if (gateways[i]->name == name) {
        return gateways[i].get();
      }
    }
    if (m == max_gateways) {
      return nullptr;
    }
    gateways[m] = std::make_unique<gateway_slot>();
    gateways[m]->name = std::string{name};
    gateway_count.store(m + 1, std::memory_order_release);
    return gateways[m].get();
  }

  prom::Registry reg;
  legacy_families legacy;
  prom::Family<prom::Histogram>& http;
  prom::Histogram& journal_commit;
  prom::Histogram& journal_batch;
  prom::Histogram& redis_batch;
  prom::Histogram& redis_size;
  prom::Family<prom::Histogram>& pool_wait;
  prom::Family<prom::Histogram>& payment_calls;
  prom::Family<prom::Gauge>& breaker;
  prom::Family<prom::Counter>& failovers;
  prom::Family<prom::Counter>& holds;
  std::vector<prom::Counter*> hold_events; ///< placed, expired, confirmed, released
  prom::Gauge& shards_owned;
  prom::Histogram& lease_renewal;
  prom::Counter& lease_failures;
  prom::Family<prom::Gauge>& actors;
  prom::Family<prom::Gauge>& replica_up;
  prom::Family<prom::Gauge>& replica_lag;
  prom::Family<prom::Counter>& catalog_reads;
  std::vector<std::string> order; ///< families rendered first (the legacy ones)

  std::mutex slots_mu; ///< registers route and gateway slots
  std::array<std::unique_ptr<route_slot>, max_routes> routes;
  std::atomic<std::size_t> route_count{0};
  std::array<std::unique_ptr<gateway_slot>, max_gateways> gateways;
  std::atomic<std::size_t> gateway_count{0};

  std::mutex collect_mu; ///< serialises collectors, render() and sample()
  std::vector<std::function<void(node_metrics&)>> collectors;
};

node_metrics::node_metrics(std::string node_id, std::string version)
    : impl_(std::make_unique<impl>(std::move(node_id), std::move(version))) {}

node_metrics::~node_metrics() = default;

std::size_t node_metrics::http_route(http_kind kind, std::string_view route,
                                     std::string_view method) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> guard{d.slots_mu};
  const std::size_t n = d.route_count.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    if (d.routes[i]->kind == kind && d.routes[i]->route == route && d.routes[i]->method == method) {
      return i;
    }
  }
  if (n == max_routes) {
    throw std::length_error("node_metrics: more than max_routes HTTP route slots");
  }
  d.routes[n] = std::make_unique<impl::route_slot>();
  d.routes[n]->kind = kind;
  d.routes[n]->route = std::string{route};
  d.routes[n]->method = std::string{method};
  d.route_count.store(n + 1, std::memory_order_release);
  return n;
}

void node_metrics::observe_http(std::size_t slot, int status, double seconds) {
  auto& d = *impl_;
  if (slot >= d.route_count.load(std::memory_order_acquire) || status < first_status ||
      status >= first_status + statuses) {
    return;
  }
  auto& r = *d.routes[slot];
  cached(r.by_status[static_cast<std::size_t>(status - first_status)], [&]() -> prom::Histogram& {
    return d.http.Add({{"kind", kind_name(r.kind)},
                       {"route", r.route},
                       {"method", r.method},
                       {"code", std::to_string(status)}},
                      seconds_buckets());
  }).Observe(seconds);
}

void node_metrics::journal_commit(double seconds, std::size_t batches) {
  impl_->journal_commit.Observe(seconds);
  impl_->journal_batch.Observe(static_cast<double>(batches));
}

void node_metrics::redis_batch(double seconds, std::size_t writes) {
  impl_->redis_batch.Observe(seconds);
  impl_->redis_size.Observe(static_cast<double>(writes));
}

std::function<void(double)> node_metrics::pool_wait(std::string_view pool) {
  auto* h = &impl_->pool_wait.Add({{"pool", std::string{pool}}}, seconds_buckets());
  return [h](double seconds) { h->Observe(seconds); };
}

void node_metrics::payment_call(std::string_view gateway, std::string_view op,
                                std::string_view outcome, double seconds) {
  auto& d = *impl_;
  const std::size_t o = index_of(payment_ops, op);
  const std::size_t k = index_of(payment_outcomes, outcome);
  if (o == payment_ops.size() || k == payment_outcomes.size()) {
    return;
  }
  auto make = [&]() -> prom::Histogram& {
    return d.payment_calls.Add({{"gateway", std::string{gateway}},
                                {"op", std::string{op}},
                                {"outcome", std::string{outcome}}},
                               seconds_buckets());
  };
  auto* g = d.gateway(gateway);
  if (g == nullptr) {
    make().Observe(seconds);
    return;
  }
  cached(g->calls[o * payment_outcomes.size() + k], make).Observe(seconds);
}

void node_metrics::payment_failover(std::string_view gateway) {
  auto& d = *impl_;
  auto make = [&]() -> prom::Counter& {
    return d.failovers.Add({{"gateway", std::string{gateway}}});
  };
  auto* g = d.gateway(gateway);
  (g == nullptr ? make() : cached(g->failovers, make)).Increment();
}

void node_metrics::lease_renewal(double seconds, bool ok) {
  if (ok) {
    impl_->lease_renewal.Observe(seconds);
  } else {
    impl_->lease_failures.Increment();
  }
}

void node_metrics::set_breaker(std::string_view gateway, int state) {
  impl_->breaker.Add({{"gateway", std::string{gateway}}}).Set(state);
}

void node_metrics::set_shards_owned(uint64_t n) {
  impl_->shards_owned.Set(static_cast<double>(n));
}

void node_metrics::replica_probe(std::size_t replica, bool up, double lag_seconds) {
  const std::map<std::string, std::string> labels{{"replica", std::to_string(replica)}};
  impl_->replica_up.Add(labels).Set(up ? 1 : 0);
  if (up) {
    impl_->replica_lag.Add(labels).Set(lag_seconds);
  }
}

void node_metrics::catalog_read(std::size_t replica) {
  impl_->catalog_reads
      .Add(
          {{"target", replica == 0 ? std::string{"primary"} : "replica" + std::to_string(replica)}})
      .Increment();
}

void node_metrics::set_actors(std::string_view kind, uint64_t n) {
  impl_->actors.Add({{"kind", std::string{kind}}}).Set(static_cast<double>(n));
}

void node_metrics::set_holds(uint64_t placed, uint64_t expired, uint64_t confirmed,
                             uint64_t released) {
  auto& h = impl_->hold_events;
  set_total(*h[0], placed);
  set_total(*h[1], expired);
  set_total(*h[2], confirmed);
  set_total(*h[3], released);
}

void node_metrics::on_collect(std::function<void(node_metrics&)> collector) {
  std::lock_guard<std::mutex> guard{impl_->collect_mu};
  impl_->collectors.push_back(std::move(collector));
}

std::string node_metrics::render(const legacy_figures& legacy) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> guard{d.collect_mu};
  for (auto& c : d.collectors) {
    c(*this);
  }
  d.legacy.set(legacy);
  return serialize(d.reg.Collect(), d.order);
}

metrics_sample node_metrics::sample(int64_t t_ms) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> guard{d.collect_mu};
  for (auto& c : d.collectors) {
    c(*this);
  }
  metrics_sample s;
  s.t_ms = t_ms;
  std::map<std::pair<std::string, std::string>, histogram_figures> routes;
  const std::size_t n = d.route_count.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = *d.routes[i];
    if (r.kind == http_kind::probe) {
      continue;
    }
    auto& into = routes[{r.route, r.method}];
    for (std::size_t c = 0; c < r.by_status.size(); ++c) {
      const auto* h = r.by_status[c].load(std::memory_order_acquire);
      if (h == nullptr) {
        continue;
      }
      auto f = figures_of(h->Collect());
      const auto status = static_cast<int>(c) + first_status;
      s.status_4xx += status / 100 == 4 ? f.count : 0;
      s.status_5xx += status / 100 == 5 ? f.count : 0;
      add_figures(into, f);
    }
  }
  for (auto& [key, f] : routes) {
    if (f.bounds.empty()) {
      f.bounds.assign(seconds_buckets().begin(), seconds_buckets().end());
      f.buckets.assign(f.bounds.size(), 0);
    }
    s.routes.push_back({key.first, key.second, std::move(f)});
  }
  s.journal_commit = figures_of(d.journal_commit.Collect());
  s.journal_batch = figures_of(d.journal_batch.Collect());
  s.redis_batch = figures_of(d.redis_size.Collect());
  s.holds_placed = static_cast<uint64_t>(d.hold_events[0]->Value());
  s.holds_expired = static_cast<uint64_t>(d.hold_events[1]->Value());
  s.holds_confirmed = static_cast<uint64_t>(d.hold_events[2]->Value());
  return s;
}

std::string node_metrics::render_legacy(const legacy_figures& legacy) {
  prom::Registry reg;
  legacy_families f{reg};
  f.set(legacy);
  return serialize(reg.Collect(), {legacy_families::names.begin(), legacy_families::names.end()});
}

} // namespace surge::net
