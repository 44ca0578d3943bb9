#include "surge/net/payments/payment_router.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <random>

#include "surge/config/log.hpp"
#include "surge/config/names.hpp"

namespace surge::net::payments {

namespace {

std::shared_ptr<spdlog::logger> logger();

using actors::charge_request;
using actors::charge_result;
using actors::charge_status;
using actors::refund_request;
using actors::refund_result;
using actors::refund_status;
using actors::settle_request;
using actors::settle_result;
using actors::settle_status;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// Consecutive-failure breaker with a half-open probe. Thread-safe.
class circuit_breaker {
 public:
  circuit_breaker(int threshold, milliseconds cooldown)
      : threshold_(std::max(1, threshold))
      , cooldown_(cooldown) {}

  /// True when a call may go out now. In half-open state only one probe is let through until it
  /// has been reported; a caller that got true must report().
  bool allow() {
    std::lock_guard lock{mu_};
    switch (state_) {
    case state::closed:
      return true;
    case state::open:
      if (steady::now() < open_until_) {
        return false;
      }
      state_ = state::half_open;
      return true; // the probe
    case state::half_open:
      return false; // a probe is out
    }
    return false;
  }

  /// closed, open or half_open.
  const char* state_name() {
    static constexpr const char* names[] = {"closed", "open", "half_open"};
    static_assert(std::size(names) == config::count_of(state::closed, state::half_open));
    std::lock_guard lock{mu_};
    return config::name_of(state_, names, "closed");
  }

  /// 0 closed, 1 half-open, 2 open (an open one past its cooldown counts as open until a call
  /// asks).
  int state_number() const {
    std::lock_guard lock{mu_};
    return state_ == state::closed ? 0 : state_ == state::half_open ? 1 : 2;
  }

  /// The outcome of a call allow() let through; true when this failure opened the breaker.
  bool report(bool ok) {
    std::lock_guard lock{mu_};
    if (ok) {
      if (state_ != state::open) {
        state_ = state::closed;
        failures_ = 0;
      }
      return false;
    }
    if (state_ == state::half_open || (state_ == state::closed && ++failures_ >= threshold_)) {
      state_ = state::open;
      open_until_ = steady::now() + cooldown_;
      failures_ = 0;
      return true;
    }
    return false;
  }

  milliseconds cooldown() const { return cooldown_; }

 private:
  enum class state { closed, open, half_open };
  const int threshold_;
  const milliseconds cooldown_;
  mutable std::mutex mu_;
  state state_ = state::closed; // guarded by mu_
  int failures_ = 0;            // guarded by mu_
  steady::time_point open_until_;
};

/// Call latencies in buckets growing by 2^(1/4) (about 19 %) from 0.1 ms; the last bucket takes
/// everything above about 100 s. Lock-free (relaxed atomics): a quantile read while calls are
/// recorded is off by those calls at most.
class latency_histogram {
 public:
  void record(steady::duration d) {
    const double ms = std::chrono::duration<double, std::milli>(d).count();
    std::size_t i = 0;
    if (ms > first_ms) {
      i = std::min(buckets_.size() - 1,
                   static_cast<std::size_t>(std::ceil(std::log2(ms / first_ms) * per_octave)));
    }
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
  }

  /// The upper bound of the bucket holding quantile `q` (0..1); nullopt with no call recorded.
  std::optional<double> quantile(double q) const {
    std::array<uint64_t, bucket_count> n{};
    uint64_t total = 0;
    for (std::size_t i = 0; i < n.size(); ++i) {
      n[i] = buckets_[i].load(std::memory_order_relaxed);
      total += n[i];
    }
    if (total == 0) {
      return std::nullopt;
    }
    const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * total)));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < n.size(); ++i) {
      seen += n[i];
      if (seen >= rank) {
        return first_ms * std::exp2(static_cast<double>(i) / per_octave);
      }
    }
    return first_ms * std::exp2(static_cast<double>(n.size() - 1) / per_octave);
  }

 private:
  static constexpr double first_ms = 0.1;
  static constexpr double per_octave = 4;
  static constexpr std::size_t bucket_count = 82; // 0.1 ms * 2^(81/4): about 125 s
  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
};

struct gateway_slot {
  gateway_slot(std::unique_ptr<gateway> gw, const router_options& o)
      : g(std::move(gw))
      , breaker(o.breaker_threshold, o.breaker_cooldown) {}
  const std::unique_ptr<gateway> g;
  circuit_breaker breaker;

  // What stats() reports (relaxed atomics: figures, not synchronisation).
  latency_histogram latency;
  std::atomic<uint64_t> approved{0};
  std::atomic<uint64_t> declined{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> unknown{0};
  std::atomic<uint64_t> refunds{0};
  std::atomic<uint64_t> failovers{0};

  /// Counts a charge call's answer (one that requires action is counted once it is decided,
  /// by the lookup that finds it so: not here).
  void count_charge(const attempt& a) {
    if (a.kind == attempt_kind::requires_action) {
      return;
    }
    auto& n = a.kind == attempt_kind::approved   ? approved
              : a.kind == attempt_kind::declined ? declined
              : a.kind == attempt_kind::unknown  ? unknown
                                                 : failed;
    n.fetch_add(1, std::memory_order_relaxed);
  }

  gateway_stats stats() {
    gateway_stats s;
    s.name = g->name();
    s.breaker = breaker.state_name();
    s.approved = approved.load(std::memory_order_relaxed);
    s.declined = declined.load(std::memory_order_relaxed);
    s.failed = failed.load(std::memory_order_relaxed);
    s.unknown = unknown.load(std::memory_order_relaxed);
    s.refunds = refunds.load(std::memory_order_relaxed);
    s.failovers = failovers.load(std::memory_order_relaxed);
    s.p50_ms = latency.quantile(0.5);
    s.p99_ms = latency.quantile(0.99);
    return s;
  }
};

charge_result result(charge_status st, std::string gw, std::string id, std::string msg) {
  return {st, std::move(gw), std::move(id), std::move(msg)};
}

/// The requires_action charge_result of attempt `a` on gateway `gw`: the shopper authenticates
/// at a.action_url.
charge_result action_required(const std::string& gw, attempt& a) {
  charge_result r{charge_status::requires_action, gw, std::move(a.charge_id),
                  "3-D Secure: the shopper must authenticate"};
  r.action_url = std::move(a.action_url);
  return r;
}

/// The approved charge_result of attempt `a` (approved) on gateway `gw`.
charge_result approved(const std::string& gw, attempt& a, std::string msg) {
  charge_result r{charge_status::approved, gw, std::move(a.charge_id), std::move(msg)};
  r.money = a.money;
  return r;
}

} // namespace

/// The outcome label of an attempt of `op` (metrics).
std::string_view outcome_of(attempt_kind k, std::string_view op) {
  switch (k) {
  case attempt_kind::approved:
    return op == "refund" ? "refunded" : "approved";
  case attempt_kind::declined:
    return "declined";
  case attempt_kind::retryable:
    return "failed";
  case attempt_kind::unknown:
    return "unknown";
  case attempt_kind::not_found:
    return "not_found";
  case attempt_kind::rejected:
    return "rejected";
  case attempt_kind::requires_action:
    return "requires_action";
  }
  return "unknown";
}

struct payment_router::impl {
  impl(std::vector<std::unique_ptr<gateway>> gateways, router_options o, payment_observer obs)
      : opts(o)
      , observe(std::move(obs))
      , pool(std::max<std::size_t>(1, o.threads)) {
    for (auto& g : gateways) {
      slots.push_back(std::make_unique<gateway_slot>(std::move(g), opts));
    }
  }

  const router_options opts;
  const payment_observer observe;
  std::vector<std::unique_ptr<gateway_slot>> slots; // fixed after construction

  /// `call()` (one call of `op` to `s`), timed for stats() and the observer.
  template <class Call>
  attempt timed(gateway_slot& s, std::string_view op, Call call) {
    const auto start = steady::now();
    attempt a = call();
    const auto took = steady::now() - start;
    s.latency.record(took);
    if (observe.call) {
      observe.call(s.g->name(), op, outcome_of(a.kind, op),
                   std::chrono::duration<double>(took).count());
    }
    return a;
  }

  /// A call to `s` failed (`why`): counted by its breaker, and said when that opens it (every
  /// charge skips the gateway until the cooldown's probe).
  void failure(gateway_slot& s, std::string_view op, const std::string& why) {
    if (s.breaker.report(false)) {
      logger()->warn("gateway {}: circuit opened for {} ms after a failed {} ({})", s.g->name(),
                     s.breaker.cooldown().count(), op, why);
    }
  }

  /// A charge leaves `s` for the next gateway (counted only when there is one).
  void failed_over(gateway_slot& s) {
    if (&s == slots.back().get()) {
      return;
    }
    s.failovers.fetch_add(1, std::memory_order_relaxed);
    if (observe.failover) {
      observe.failover(s.g->name());
    }
  }
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;         // guarded by mu
  boost::asio::thread_pool pool; // last: joined first

  bool stopped() {
    std::lock_guard lock{mu};
    return stopping;
  }

  /// Sleeps `d` unless stopping; false when stopping.
  bool pause(milliseconds d) {
    std::unique_lock lock{mu};
    return !cv.wait_for(lock, d, [this] { return stopping; });
  }

  /// Exponential backoff with equal jitter for retry number `n` (0-based).
  milliseconds backoff(int n) const {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const int64_t base = std::max<int64_t>(1, opts.backoff_base.count());
    const int64_t cap = std::max<int64_t>(base, opts.backoff_cap.count());
    const int64_t d = std::min<int64_t>(cap, base << std::min(n, 20));
    std::uniform_int_distribution<int64_t> jitter{0, d / 2};
    return milliseconds{d - d / 2 + jitter(rng)};
  }

  /// Looks `key` up on one gateway a few times (not subject to its breaker: learning whether a
  /// charge happened matters more). approved, declined or not_found, else the last failure.
  attempt resolve(gateway_slot& s, const std::string& key) {
    attempt a{attempt_kind::unknown, {}, "stopped before the lookup", 0, false, {}};
    const int tries = std::max(1, opts.lookup_tries);
    for (int i = 0; i < tries; ++i) {
      if (stopped()) {
        return a;
      }
      a = timed(s, "lookup", [&] { return s.g->lookup(key, opts.timeout); });
      if (a.kind == attempt_kind::approved || a.kind == attempt_kind::declined ||
          a.kind == attempt_kind::not_found || a.kind == attempt_kind::requires_action) {
        return a;
      }
      if (i + 1 < tries && !pause(backoff(i))) {
        return a;
      }
    }
    return a;
  }

  charge_result charge(const charge_request& req) {
    std::string last_error = "no gateway configured";
    for (auto& sp : slots) {
      gateway_slot& s = *sp;
      const std::string& name = s.g->name();
      bool maybe_charged = false; // a request reached this gateway with no definitive answer
      const int tries = std::max(1, opts.max_tries);
      for (int t = 0; t < tries; ++t) {
        if (stopped()) {
          last_error = "payment service stopped";
          break;
        }
        if (req.may_send && !req.may_send()) {
          // Whatever was sent before may still land: only the order's next owner may go on.
          return result(charge_status::unknown, name, {},
                        "not sent: this node no longer holds the order's lease");
        }
        if (!s.breaker.allow()) {
          last_error = name + ": circuit open";
          break;
        }
        attempt a = timed(s, "charge", [&] { return s.g->charge(req, opts.timeout); });
        s.count_charge(a);
        switch (a.kind) {
        case attempt_kind::approved:
          s.breaker.report(true);
          return approved(name, a, "approved");
        case attempt_kind::declined:
          s.breaker.report(true);
          return result(charge_status::declined, name, std::move(a.charge_id),
                        a.message.empty() ? "declined" : a.message);
        case attempt_kind::rejected:
          s.breaker.report(true);
          return result(charge_status::failed, name, {}, name + " rejected: " + a.message);
        case attempt_kind::requires_action:
          // Open at this gateway until the shopper is done: never failed over.
          s.breaker.report(true);
          return action_required(name, a);
        case attempt_kind::retryable:
          failure(s, "charge", a.message);
          maybe_charged = maybe_charged || a.ambiguous;
          last_error = name + ": " + a.message;
          if (t + 1 < tries && !pause(backoff(t))) {
            t = tries;
          }
          break;
        case attempt_kind::unknown:
        case attempt_kind::not_found:
          failure(s, "charge", a.message);
          maybe_charged = true;
          last_error = name + ": " + a.message;
          t = tries;
          break;
        }
      }
      if (!maybe_charged) {
        if (stopped()) {
          break;
        }
        failed_over(s);
        continue;
      }
      attempt found = resolve(s, req.idempotency_key);
      switch (found.kind) {
      case attempt_kind::approved:
        return approved(name, found, "approved (found by lookup)");
      case attempt_kind::declined:
        return result(charge_status::declined, name, std::move(found.charge_id),
                      found.message.empty() ? "declined" : found.message);
      case attempt_kind::requires_action:
        return action_required(name, found);
      case attempt_kind::not_found:
        failed_over(s);
        continue; // definitively not charged here: the next gateway may charge it
      default:
        return result(charge_status::unknown, name, {},
                      "outcome unknown: " + last_error + "; lookup: " + found.message);
      }
    }
    return result(charge_status::failed, {}, {}, "every gateway failed: " + last_error);
  }

  charge_result lookup(const std::string& key) {
    bool unasked = false;
    std::string why;
    for (auto& sp : slots) {
      gateway_slot& s = *sp;
      if (!s.breaker.allow()) {
        unasked = true;
        why = s.g->name() + ": circuit open";
        continue;
      }
      attempt a = resolve(s, key);
      const bool answered = a.kind == attempt_kind::approved || a.kind == attempt_kind::declined ||
                            a.kind == attempt_kind::not_found ||
                            a.kind == attempt_kind::requires_action;
      if (answered || a.kind == attempt_kind::rejected) {
        s.breaker.report(true);
      } else {
        failure(s, "lookup", a.message);
      }
      if (a.kind == attempt_kind::approved) {
        return approved(s.g->name(), a, "approved");
      }
      if (a.kind == attempt_kind::declined) {
        return result(charge_status::declined, s.g->name(), std::move(a.charge_id), a.message);
      }
      if (a.kind == attempt_kind::requires_action) {
        return action_required(s.g->name(), a);
      }
      if (!answered) {
        unasked = true;
        why = s.g->name() + ": " + a.message;
      }
    }
    if (unasked) {
      return result(charge_status::unknown, {}, {}, "not every gateway answered: " + why);
    }
    return result(charge_status::failed, {}, {}, "no gateway has a charge for the key");
  }

  /// How a refund, capture or void ended after its calls (settle()).
  struct settled {
    enum class end : uint8_t { done, rejected, unknown } how = end::unknown;
    attempt last;        ///< done: the gateway's answer
    std::string message; ///< for logs and the order's reason
  };

  /// A refund, capture or void (`op`, `done_word` its past tense) of `key` through `gateway`
  /// only (no failover: the money is there): `call(slot, timeout)` retried with backoff under the
  /// same key (the gateway replays a key, so a retry is also how a timeout is resolved), at most
  /// refund_tries calls within refund_deadline (each call's timeout cut to what is left). done
  /// and rejected are final; still open at the end: unknown (ask again with the same key).
  template <class Call>
  settled settle(std::string_view op, std::string_view done_word, const std::string& key,
                 const std::string& gateway, const std::function<bool()>& may_send, Call call) {
    using end = settled::end;
    if (key.empty()) {
      return {end::rejected, {}, "not sent: a " + std::string{op} + " needs an idempotency key"};
    }
    gateway_slot* found = nullptr;
    for (auto& sp : slots) {
      if (sp->g->name() == gateway) {
        found = sp.get();
        break;
      }
    }
    if (found == nullptr) {
      return {end::unknown, {}, "not sent: the gateway '" + gateway + "' is not configured"};
    }
    gateway_slot& s = *found;
    const std::string& name = s.g->name();
    const auto deadline = steady::now() + opts.refund_deadline;
    const int tries = std::max(1, opts.refund_tries);
    bool maybe_sent = false;                 // a call reached the gateway with no definitive answer
    std::string last_error = "no call made"; // what the last call ended with
    std::string ended;                       // why the tries ended before `tries` calls
    for (int t = 0; t < tries; ++t) {
      if (stopped()) {
        ended = "payment service stopped";
        break;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) {
        ended = "out of time";
        break;
      }
      if (!s.breaker.allow()) {
        ended = name + ": circuit open";
        break;
      }
      if (may_send && !may_send()) {
        ended = "this node no longer holds the order's lease";
        break;
      }
      attempt a = timed(s, op, [&] { return call(s, std::min(opts.timeout, left)); });
      switch (a.kind) {
      case attempt_kind::approved: {
        s.breaker.report(true);
        std::string msg{done_word};
        if (t > 0) {
          msg += " on try " + std::to_string(t + 1);
        }
        return {end::done, std::move(a), std::move(msg)};
      }
      case attempt_kind::rejected:
      case attempt_kind::declined:
      case attempt_kind::not_found:
      case attempt_kind::requires_action:
        s.breaker.report(true);
        return {end::rejected, {}, name + " rejected the " + std::string{op} + ": " + a.message};
      case attempt_kind::retryable:
        failure(s, op, a.message);
        maybe_sent = maybe_sent || a.ambiguous;
        last_error = name + ": " + a.message;
        break;
      case attempt_kind::unknown:
        failure(s, op, a.message);
        maybe_sent = true;
        last_error = name + ": " + a.message;
        break;
      }
      if (t + 1 < tries) {
        const milliseconds wait = backoff(t);
        if (steady::now() + wait >= deadline) {
          ended = "out of time";
          break;
        }
        if (!pause(wait)) {
          ended = "payment service stopped";
          break;
        }
      }
    }
    if (ended.empty()) {
      ended = std::to_string(tries) + " calls made";
    }
    const std::string head =
        maybe_sent ? std::string{"outcome unknown: "} : "not " + std::string{done_word} + ": ";
    return {
        end::unknown, {}, head + last_error + " (" + ended + "); the same key may be asked again"};
  }

  refund_result refund(const refund_request& req) {
    auto r = settle("refund", "refunded", req.idempotency_key, req.gateway, {},
                    [&](gateway_slot& s, milliseconds timeout) {
                      attempt a = s.g->refund(req, timeout);
                      if (a.kind == attempt_kind::approved) {
                        s.refunds.fetch_add(1, std::memory_order_relaxed);
                      }
                      return a;
                    });
    switch (r.how) {
    case settled::end::done:
      return {refund_status::refunded, std::move(r.last.refund_id), std::move(r.message)};
    case settled::end::rejected:
      return {refund_status::rejected, {}, std::move(r.message)};
    case settled::end::unknown:
      break;
    }
    return {refund_status::unknown, {}, std::move(r.message)};
  }

  /// A capture (`voiding` false) or void of an authorisation.
  settle_result settle_authorization(const settle_request& req, bool voiding) {
    auto r = settle(
        voiding ? "void" : "capture", voiding ? "voided" : "captured", req.idempotency_key,
        req.gateway, req.may_send, [&](gateway_slot& s, milliseconds timeout) {
          return voiding ? s.g->void_authorization(req, timeout) : s.g->capture(req, timeout);
        });
    switch (r.how) {
    case settled::end::done:
      return {settle_status::done, std::move(r.message)};
    case settled::end::rejected:
      return {settle_status::rejected, std::move(r.message)};
    case settled::end::unknown:
      break;
    }
    return {settle_status::unknown, std::move(r.message)};
  }
};

payment_router::payment_router(std::vector<std::unique_ptr<gateway>> gateways, router_options opts,
                               payment_observer observe)
    : impl_(std::make_unique<impl>(std::move(gateways), opts, std::move(observe))) {}

std::vector<breaker_status> payment_router::breakers() const {
  std::vector<breaker_status> out;
  for (const auto& s : impl_->slots) {
    out.push_back({s->g->name(), s->breaker.state_number()});
  }
  return out;
}

payment_router::~payment_router() {
  {
    std::lock_guard lock{impl_->mu};
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->pool.join();
}

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("payments");
  return lg;
}

/// One line per charge or lookup outcome (warn when nothing definite was learnt); it carries the
/// request id of the checkout that asked (log::request_scope).
void log_outcome(const char* what, const std::string& key, const charge_result& r) {
  const bool definite = r.status == charge_status::approved || r.status == charge_status::declined;
  logger()->log(definite ? spdlog::level::debug : spdlog::level::warn, "{} {}: {} via {} ({})",
                what, key, actors::to_string(r.status), r.gateway.empty() ? "-" : r.gateway,
                r.message);
}

template <class Callback, class Result>
void deliver(const Callback& done, Result r) {
  try {
    done(std::move(r));
  } catch (...) {
    // The contract says `done` does not throw; a pool thread must survive one that does.
  }
}

} // namespace

std::vector<gateway_stats> payment_router::stats() const {
  std::vector<gateway_stats> out;
  out.reserve(impl_->slots.size());
  for (const auto& s : impl_->slots) {
    out.push_back(s->stats());
  }
  return out;
}

// Each call runs on the pool inside the request id of its caller (the order actor's checkout).

void payment_router::charge(actors::charge_request req, callback done) {
  boost::asio::post(impl_->pool, [this, rid = surge::log::current_request_id(),
                                  req = std::move(req), done = std::move(done)] {
    surge::log::request_scope scope{rid};
    auto r = impl_->charge(req);
    log_outcome("charge", req.idempotency_key, r);
    deliver(done, std::move(r));
  });
}

void payment_router::lookup(std::string idempotency_key, callback done) {
  boost::asio::post(impl_->pool, [this, rid = surge::log::current_request_id(),
                                  key = std::move(idempotency_key), done = std::move(done)] {
    surge::log::request_scope scope{rid};
    auto r = impl_->lookup(key);
    log_outcome("lookup", key, r);
    deliver(done, std::move(r));
  });
}

void payment_router::refund(actors::refund_request req, refund_callback done) {
  boost::asio::post(impl_->pool, [this, rid = surge::log::current_request_id(),
                                  req = std::move(req), done = std::move(done)] {
    surge::log::request_scope scope{rid};
    deliver(done, impl_->refund(req));
  });
}

void payment_router::capture(actors::settle_request req, settle_callback done) {
  boost::asio::post(impl_->pool, [this, rid = surge::log::current_request_id(),
                                  req = std::move(req), done = std::move(done)] {
    surge::log::request_scope scope{rid};
    deliver(done, impl_->settle_authorization(req, false));
  });
}

void payment_router::void_authorization(actors::settle_request req, settle_callback done) {
  boost::asio::post(impl_->pool, [this, rid = surge::log::current_request_id(),
                                  req = std::move(req), done = std::move(done)] {
    surge::log::request_scope scope{rid};
    deliver(done, impl_->settle_authorization(req, true));
  });
}

} // namespace surge::net::payments
