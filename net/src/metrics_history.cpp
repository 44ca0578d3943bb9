#include "surge/net/metrics_history.hpp"

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "surge/net/json_writer.hpp"

namespace surge::net {

namespace {

/// Three decimals are plenty for a chart, and keep the body small.
double rounded(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

/// `to` - `from` per second of `secs`; 0 when no time passed or the counter went back.
double rate(uint64_t from, uint64_t to, double secs) {
  return secs > 0 && to >= from ? rounded(static_cast<double>(to - from) / secs) : 0.0;
}

void write_optional(json::writer& w, const std::optional<double>& v) {
  if (v) {
    w.number(rounded(*v));
  } else {
    w.null();
  }
}

/// Mean of what a histogram recorded between two samples: Δsum / Δcount, nullopt without data.
std::optional<double> mean_between(const histogram_figures& from, const histogram_figures& to) {
  if (to.count <= from.count) {
    return std::nullopt;
  }
  return (to.sum - from.sum) / static_cast<double>(to.count - from.count);
}

/// An array of one value per consecutive pair of samples.
template <class F>
void series(json::writer& w, std::string_view key, const std::deque<metrics_sample>& s, F point) {
  w.key(key).begin_array();
  for (std::size_t i = 1; i < s.size(); ++i) {
    point(s[i - 1], s[i], static_cast<double>(s[i].t_ms - s[i - 1].t_ms) / 1000.0);
  }
  w.end_array();
}

/// Two arrays, `p50` and `p99`, of the quantiles in ms of the histogram `of(sample)` picks.
template <class Of>
void quantile_series(json::writer& w, std::string_view p50, std::string_view p99,
                     const std::deque<metrics_sample>& s, Of of) {
  for (auto [key, q] : {std::pair{p50, 0.5}, std::pair{p99, 0.99}}) {
    series(w, key, s, [&, q = q](const metrics_sample& a, const metrics_sample& b, double) {
      auto v = quantile_between(q, of(a), of(b));
      write_optional(w, v ? std::optional<double>{*v * 1000.0} : std::nullopt);
    });
  }
}

/// The figures of (route, method) in `s`, or nullptr when it had none yet.
const histogram_figures* route_in(const metrics_sample& s, const std::string& route,
                                  const std::string& method) {
  for (const auto& r : s.routes) {
    if (r.route == route && r.method == method) {
      return &r.duration;
    }
  }
  return nullptr;
}

} // namespace

std::optional<double> quantile_between(double q, const histogram_figures& from,
                                       const histogram_figures& to) {
  if (to.count <= from.count || to.bounds.empty()) {
    return std::nullopt;
  }
  auto delta = [&](std::size_t i) -> double {
    const uint64_t before = i < from.buckets.size() ? from.buckets[i] : 0;
    return static_cast<double>(to.buckets[i] >= before ? to.buckets[i] - before : 0);
  };
  const double total = static_cast<double>(to.count - from.count);
  const double rank = q * total;
  double below = 0; // observations in the buckets under bucket i
  for (std::size_t i = 0; i < to.bounds.size(); ++i) {
    const double upto = delta(i);
    if (upto >= rank && upto > 0) {
      const double lower = i == 0 ? 0.0 : to.bounds[i - 1];
      const double in_bucket = upto - below;
      if (in_bucket <= 0) {
        return to.bounds[i];
      }
      return lower + (to.bounds[i] - lower) * (rank - below) / in_bucket;
    }
    below = upto;
  }
  return to.bounds.back(); // in the +Inf bucket
}

metrics_history::metrics_history(std::size_t points, int step_s)
    : points_(points == 0 ? 1 : points)
    , step_s_(step_s) {}

void metrics_history::add(metrics_sample s) {
  std::lock_guard<std::mutex> guard{mu_};
  samples_.push_back(std::move(s));
  while (samples_.size() > points_ + 1) {
    samples_.pop_front();
  }
}

std::string metrics_history::body(std::string_view node_id) const {
  std::deque<metrics_sample> s;
  {
    std::lock_guard<std::mutex> guard{mu_};
    s = samples_;
  }
  // Every (route, method) seen in any sample, in order; a sample before its first request has
  // none of it (zero).
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& x : s) {
    for (const auto& r : x.routes) {
      keys.emplace(r.route, r.method);
    }
  }
  const histogram_figures none;
  json::writer w{4096};
  w.begin_object().member("node_id", node_id).member("step_s", step_s_);
  series(w, "t", s, [&](const auto&, const metrics_sample& b, double) { w.integer(b.t_ms); });
  w.key("routes").begin_array();
  for (const auto& [route, method] : keys) {
    // The route's figures in a sample; none (zero) before its first request.
    auto of = [&](const metrics_sample& x) -> const histogram_figures& {
      const auto* f = route_in(x, route, method);
      return f != nullptr ? *f : none;
    };
    w.begin_object().member("route", route).member("method", method);
    series(w, "rate", s, [&](const auto& a, const auto& b, double secs) {
      w.number(rate(of(a).count, of(b).count, secs));
    });
    quantile_series(w, "p50_ms", "p99_ms", s, of);
    w.end_object();
  }
  w.end_array();
  using counter = uint64_t metrics_sample::*;
  /// An object of per-second rates of the counters named in `members`.
  auto rates = [&](std::string_view key,
                   std::initializer_list<std::pair<const char*, counter>> members) {
    w.key(key).begin_object();
    for (auto [name, c] : members) {
      series(w, name, s, [&, c = c](const auto& a, const auto& b, double secs) {
        w.number(rate(a.*c, b.*c, secs));
      });
    }
    w.end_object();
  };
  rates("status", {{"4xx", &metrics_sample::status_4xx}, {"5xx", &metrics_sample::status_5xx}});
  w.key("journal").begin_object();
  series(w, "batch_size", s, [&](const auto& a, const auto& b, double) {
    write_optional(w, mean_between(a.journal_batch, b.journal_batch));
  });
  quantile_series(
      w, "commit_p50_ms", "commit_p99_ms", s,
      [](const metrics_sample& x) -> const auto& { return x.journal_commit; });
  w.end_object();
  w.key("redis").begin_object();
  series(w, "batch_size", s, [&](const auto& a, const auto& b, double) {
    write_optional(w, mean_between(a.redis_batch, b.redis_batch));
  });
  w.end_object();
  rates("holds", {{"placed", &metrics_sample::holds_placed},
                  {"expired", &metrics_sample::holds_expired},
                  {"confirmed", &metrics_sample::holds_confirmed}});
  w.end_object();
  return w.take();
}

history_sampler::history_sampler(node_metrics& metrics, metrics_history& history,
                                 std::chrono::milliseconds step, std::function<int64_t()> now_ms)
    : metrics_(metrics)
    , history_(history)
    , step_(step)
    , now_ms_(std::move(now_ms))
    , thread_([this] {
      std::unique_lock<std::mutex> lock{mu_};
      while (!stopping_) {
        lock.unlock();
        history_.add(metrics_.sample(now_ms_()));
        lock.lock();
        cv_.wait_for(lock, step_, [this] { return stopping_; });
      }
    }) {}

history_sampler::~history_sampler() {
  stop();
}

void history_sampler::stop() {
  {
    std::lock_guard<std::mutex> guard{mu_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    thread_.join();
  }
}

} // namespace surge::net
