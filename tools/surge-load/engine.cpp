// The load engine. Threading: every shard's state (users, connections, scheduler) is touched
// only on the shard's strand; the counters a reporter reads (shard::stats_) only under
// shard::mu_; shared_state is immutable after start except for its atomics.

#include "engine.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cmath>
#include <cstdio>
#include <deque>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include "surge/config/names.hpp"
#include "surge/net/beast.hpp"
#include "surge/net/customer_auth.hpp"
#include "surge/net/json.hpp"
#include "zipf.hpp"

namespace surge::load {

namespace json = surge::net::json;
using clk = std::chrono::steady_clock;
using strand_t = asio::strand<asio::io_context::executor_type>;

const char* kind_name(req_kind x) {
  static constexpr const char* names[] = {"listing",  "page",     "product",       "cart",
                                          "add_item", "checkout", "checkout_retry"};
  static_assert(std::size(names) == config::count_of(req_kind::listing, req_kind::checkout_retry));
  return config::name_of(x, names, "?");
}

namespace {

constexpr uint32_t no_user = UINT32_MAX;
constexpr int status_timeout = -1;
constexpr int status_connect = -2;
constexpr int status_io = -3;
constexpr std::size_t body_limit = 4 * 1024 * 1024;
constexpr int max_etags = 8; // product pages a shopper remembers
constexpr int burst = 4096;  // timer events handled per wake-up before yielding
constexpr auto error_backoff = std::chrono::milliseconds{10};

std::string status_key(int status) {
  switch (status) {
  case status_timeout:
    return "timeout";
  case status_connect:
    return "connect";
  case status_io:
    return "io";
  default:
    return std::to_string(status);
  }
}

/// The X-Forwarded-For of shopper number `n`: a stable address of its own in 198.18.0.0/15 (RFC
/// 2544's benchmarking range; 131,072 addresses, then they repeat), so that a node that trusts
/// this machine as a proxy (http.trusted_proxies) gives each shopper its own limits.ip_* bucket
/// instead of throttling the whole run as one client.
std::string shopper_address(uint64_t n) {
  const uint32_t a = 0xC6120000U + static_cast<uint32_t>(n % 131072);
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xFF) + "." +
         std::to_string((a >> 8) & 0xFF) + "." + std::to_string(a & 0xFF);
}

bool is_error(int status) {
  return status <= 0 || status >= 500 || (status >= 400 && status != 402 && status != 409);
}

/// Immutable after run_load set it up, except for the atomics.
struct shared_state {
  shared_state(const options& o, const run_setup& s)
      : o(o)
      , setup(s)
      , catalog(s.skus.size(), o.zipf)
      , hot(std::min<std::size_t>(o.hot_skus, s.skus.size()), o.zipf) {}

  const options& o;
  const run_setup& setup;
  const zipf_sampler catalog;
  const zipf_sampler hot;
  std::unordered_map<std::string, uint32_t> sku_index;
  std::vector<tcp::endpoint> targets;
  std::vector<asio::ip::address_v4> sources;
  clk::time_point start;
  clk::time_point end;
  std::atomic<uint64_t> reserved{0}; ///< requests admitted (bounded by max_requests)
  std::atomic<bool> stopping{false};
  std::atomic<bool> hit_max{false};
  std::atomic<int64_t> stop_at_us{-1}; ///< when stopping was first set, since start
};

/// A simulated shopper: a state machine driven by the shard's timer and by answers.
struct user {
  bool in_journey = false;
  bool slot_used = false; ///< open model: a journey occupies this slot
  scenario sc = scenario::browse;
  uint32_t step = 0;
  uint64_t journeys = 0;
  std::string customer;
  std::string authorization; ///< "Bearer <token>" for `customer` (run_setup::customer_secret)
  std::string forwarded_for; ///< this shopper's synthetic client address (shopper_address)
  std::string cart;
  std::vector<uint32_t> plan;                          ///< SKUs of this journey
  std::vector<std::pair<uint32_t, int64_t>> holds;     ///< acknowledged (sku, qty) in the cart
  std::vector<std::pair<uint32_t, std::string>> etags; ///< product pages seen
  std::string key;
  bool decline = false;
  bool retry = false;
  std::string order_id;
  // The request in flight (or about to be).
  req_kind kind = req_kind::listing;
  http::verb verb = http::verb::get;
  std::string target;
  std::string body;
  std::string header_name;
  std::string header_value;
  uint32_t sku = 0;
  clk::time_point intended;
  bool resent = false;
};

struct answer {
  int status = 0; ///< HTTP status, or status_timeout/_connect/_io
  std::string body;
  std::string etag;
};

/// One keep-alive connection of a shard's pool.
struct conn {
  explicit conn(const strand_t& ex)
      : stream(ex) {}
  enum class state { down, connecting, idle, busy };
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  uint32_t target = 0;
  int source = -1;
  state st = state::down;
  bool reused = false; ///< has answered before: a failure may be the server's idle close
  uint32_t user = no_user;
};

/// Counters a reporter reads; guarded by shard::mu_.
struct shard_stats {
  std::array<kind_stats, kind_count> kinds;
  histogram all;
  histogram interval;
  uint64_t interval_requests = 0;
  uint64_t interval_errors = 0;
  std::map<int, uint64_t> statuses;
  outcomes out;
  std::unordered_map<uint32_t, sku_tally> skus;
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t unsent = 0;
  uint64_t stale_retries = 0;
  std::optional<clk::time_point> first_hold;
  uint64_t active = 0;
};

struct heap_entry {
  clk::time_point t;
  uint32_t user;
  bool operator>(const heap_entry& o) const { return t > o.t; }
};

class shard {
 public:
  shard(shared_state& g, asio::io_context& io, uint32_t index, uint32_t conn_first,
        uint32_t conn_count, uint64_t closed_users, std::function<void()> on_done)
      : g_(g)
      , index_(index)
      , strand_(asio::make_strand(io))
      , timer_(strand_)
      , arrival_timer_(strand_)
      , on_done_(std::move(on_done))
      , rng_(g.o.seed * 0x9E3779B97F4A7C15ULL + index + 1) {
    for (uint32_t i = 0; i < conn_count; ++i) {
      auto c = std::make_unique<conn>(strand_);
      const uint32_t n = conn_first + i;
      c->target = n % static_cast<uint32_t>(g.targets.size());
      if (!g.sources.empty()) {
        c->source = static_cast<int>((n / g.targets.size()) % g.sources.size());
      }
      conns_.push_back(std::move(c));
      down_.push_back(conn_count - 1 - i);
    }
    users_.resize(closed_users);
    for (uint64_t u = 0; u < closed_users; ++u) {
      users_[u].customer =
          "shopper-" + g.setup.run_id + "-" + std::to_string(index_) + "-" + std::to_string(u);
      users_[u].forwarded_for = shopper_address(u * g.o.threads + index_);
      users_[u].authorization = bearer_for(users_[u].customer);
    }
    if (g.o.rate) {
      per_shard_rate_ = *g.o.rate / g.o.threads;
      max_slots_ = std::max<uint64_t>(1, g.o.max_users / g.o.threads);
    }
  }

  void start() {
    asio::post(strand_, [this] {
      const auto think = g_.o.think;
      for (uint32_t u = 0; u < users_.size(); ++u) {
        const double ms =
            std::uniform_real_distribution<double>{0.0, static_cast<double>(think.count())}(rng_);
        schedule(u, g_.start + std::chrono::microseconds{static_cast<int64_t>(ms * 1000)});
      }
      if (per_shard_rate_ > 0) {
        next_arrival_ = g_.start + exp_delay(1.0 / per_shard_rate_);
        arrive();
      }
    });
  }

  /// Posted: no more requests; in-flight ones finish (bounded by the timeout).
  void stop() {
    asio::post(strand_, [this] { begin_stop(); });
  }

  std::mutex& mu() { return mu_; }
  shard_stats& stats() { return stats_; } // REQUIRES: mu() held

 private:
  // ------------------------------------------------------------------------ scheduling

  clk::duration exp_delay(double mean_s) {
    if (mean_s <= 0) {
      return clk::duration::zero();
    }
    // Exponential, capped at 20 means so that one draw cannot stall a shopper for a run.
    const double x = std::min(std::exponential_distribution<double>{1.0}(rng_), 20.0);
    return std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>{x * mean_s});
  }

  clk::duration think() { return exp_delay(std::chrono::duration<double>(g_.o.think).count()); }

  void schedule(uint32_t u, clk::time_point t) {
    if (stopping_) {
      return;
    }
    heap_.push({t, u});
    if (!armed_ || t < armed_at_) {
      arm(t);
    }
  }

  void arm(clk::time_point t) {
    armed_ = true;
    armed_at_ = t;
    timer_.expires_at(t);
    timer_.async_wait([this, gen = ++gen_](beast::error_code ec) {
      if (ec || gen != gen_) {
        return;
      }
      armed_ = false;
      on_timer();
    });
  }

  void on_timer() {
    const auto now = clk::now();
    int n = 0;
    while (!stopping_ && !heap_.empty() && heap_.top().t <= now && n < burst) {
      const auto e = heap_.top();
      heap_.pop();
      act(e.user, e.t);
      ++n;
    }
    if (!stopping_ && !heap_.empty()) {
      // Steps scheduled meanwhile may have armed the timer for later than what is still due.
      const auto next = n == burst ? now : heap_.top().t;
      if (!armed_ || next < armed_at_) {
        arm(next);
      }
    }
  }

  void arrive() {
    if (stopping_) {
      return;
    }
    const auto now = clk::now();
    int n = 0;
    while (next_arrival_ <= now && n < burst) {
      if (next_arrival_ >= g_.end) {
        return;
      }
      launch(next_arrival_);
      next_arrival_ += exp_delay(1.0 / per_shard_rate_);
      ++n;
    }
    if (next_arrival_ >= g_.end || stopping_) {
      return;
    }
    arrival_timer_.expires_at(n == burst ? now : next_arrival_);
    arrival_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        arrive();
      }
    });
  }

  /// Open model: a new shopper arrives at `t` for one journey.
  void launch(clk::time_point t) {
    uint32_t u = no_user;
    if (!free_.empty()) {
      u = free_.back();
      free_.pop_back();
    } else if (users_.size() < max_slots_) {
      u = static_cast<uint32_t>(users_.size());
      users_.emplace_back();
    } else {
      std::lock_guard lk{mu_};
      ++stats_.out.dropped_arrivals;
      return;
    }
    auto& us = users_[u];
    us.slot_used = true;
    us.customer = "shopper-" + g_.setup.run_id + "-" + std::to_string(index_) + "-" +
                  std::to_string(++arrivals_);
    us.forwarded_for = shopper_address(arrivals_ * g_.o.threads + index_);
    us.authorization = bearer_for(us.customer);
    act(u, t);
  }

  // ---------------------------------------------------------------------- the journeys

  uint32_t pick_catalog() { return static_cast<uint32_t>(g_.catalog(rng_)); }

  /// "Bearer <token>" of `customer` for the whole run, or "" when shoppers name their customer
  /// in the cart's body (run_setup::customer_secret is empty).
  std::string bearer_for(const std::string& customer) const {
    if (g_.setup.customer_secret.empty()) {
      return {};
    }
    net::token_claims claims;
    claims.subject = customer;
    claims.ttl =
        std::chrono::duration_cast<std::chrono::seconds>(g_.o.duration) + std::chrono::hours{1};
    auto token =
        net::mint_hs256_token(g_.setup.customer_secret, claims, std::chrono::system_clock::now());
    return std::holds_alternative<std::string>(token) ? "Bearer " + std::get<std::string>(token)
                                                      : std::string{};
  }

  void begin_journey(uint32_t u) {
    auto& us = users_[u];
    us.in_journey = true;
    us.step = 0;
    us.cart.clear();
    us.holds.clear();
    us.plan.clear();
    us.order_id.clear();
    ++us.journeys;
    int total = 0;
    for (int w : g_.o.weights) {
      total += w;
    }
    int pick = std::uniform_int_distribution<int>{0, total - 1}(rng_);
    us.sc = scenario::browse;
    for (int s = 0; s < scenario_count; ++s) {
      if (pick < g_.o.weights[s]) {
        us.sc = static_cast<scenario>(s);
        break;
      }
      pick -= g_.o.weights[s];
    }
    const int k = std::uniform_int_distribution<int>{1, 3}(rng_);
    switch (us.sc) {
    case scenario::browse:
      for (int i = 0; i < k; ++i) {
        us.plan.push_back(pick_catalog());
      }
      break;
    case scenario::hot_item:
      us.plan.push_back(static_cast<uint32_t>(g_.hot(rng_)));
      break;
    case scenario::checkout:
      // 1-3 distinct SKUs (fewer when the catalog is that small).
      for (int tries = 0; tries < 20 && us.plan.size() < static_cast<std::size_t>(k); ++tries) {
        const auto s = pick_catalog();
        if (std::find(us.plan.begin(), us.plan.end(), s) == us.plan.end()) {
          us.plan.push_back(s);
        }
      }
      break;
    }
    us.key = "load-" + g_.setup.run_id + "-" + std::to_string(index_) + "-" + std::to_string(u) +
             "-" + std::to_string(us.journeys);
    us.decline = std::bernoulli_distribution{g_.o.decline_rate}(rng_);
    us.retry = std::bernoulli_distribution{g_.o.retry_rate}(rng_);
    std::lock_guard lk{mu_};
    ++stats_.out.journeys;
    ++stats_.active;
  }

  void end_journey(uint32_t u, bool after_error) {
    auto& us = users_[u];
    us.in_journey = false;
    {
      std::lock_guard lk{mu_};
      --stats_.active;
    }
    if (us.slot_used) { // open model: the shopper leaves
      us.slot_used = false;
      free_.push_back(u);
      return;
    }
    auto next = clk::now() + think();
    if (after_error) {
      next = std::max(next, clk::now() + error_backoff);
    }
    schedule(u, next);
  }

  void next_step(uint32_t u, bool at_once = false) {
    ++users_[u].step;
    schedule(u, at_once ? clk::now() : clk::now() + think());
  }

  void set_request(user& us, req_kind k, http::verb v, std::string target, std::string body = {}) {
    us.kind = k;
    us.verb = v;
    us.target = std::move(target);
    us.body = std::move(body);
    us.header_name.clear();
    us.header_value.clear();
  }

  /// The shopper's timer is due (at `t`): the next step of its journey.
  void act(uint32_t u, clk::time_point t) {
    if (g_.stopping.load()) {
      begin_stop();
      return;
    }
    auto& us = users_[u];
    if (!us.in_journey) {
      begin_journey(u);
    }
    const auto& skus = g_.setup.skus;
    const auto k = static_cast<uint32_t>(us.plan.size());
    switch (us.sc) {
    case scenario::browse:
      if (us.step == 0) {
        set_request(us, req_kind::listing, http::verb::get,
                    std::bernoulli_distribution{0.3}(rng_)
                        ? "/api/v1/products?limit=20&in_stock=true"
                        : "/api/v1/products?limit=20");
      } else {
        const uint32_t s = us.plan[(us.step - 1) / 2];
        us.sku = s;
        if ((us.step - 1) % 2 == 0) {
          set_request(us, req_kind::page, http::verb::get, "/p/" + skus[s]);
          for (const auto& [sku, tag] : us.etags) {
            if (sku == s) {
              us.header_name = "If-None-Match";
              us.header_value = tag;
            }
          }
        } else {
          set_request(us, req_kind::product, http::verb::get, "/api/v1/products/" + skus[s]);
        }
      }
      break;
    case scenario::hot_item:
    case scenario::checkout:
      if (us.step == 0) {
        // With a token the token names the customer; a body customer_id would need it too.
        set_request(us, req_kind::cart, http::verb::post, "/api/v1/carts",
                    us.authorization.empty() ? "{\"customer_id\":\"" + us.customer + "\"}"
                                             : std::string{"{}"});
      } else if (us.step <= k) {
        us.sku = us.plan[us.step - 1];
        set_request(us, req_kind::add_item, http::verb::put,
                    "/api/v1/carts/" + us.cart + "/items/" + skus[us.sku], "{\"qty\":1}");
      } else {
        if (us.step == k + 1 && us.holds.empty()) {
          {
            std::lock_guard lk{mu_};
            ++stats_.out.empty_cart;
          }
          end_journey(u, false);
          return;
        }
        set_request(us, us.step == k + 1 ? req_kind::checkout : req_kind::checkout_retry,
                    http::verb::post, "/api/v1/carts/" + us.cart + "/checkout",
                    std::string{"{\"payment\":{\"method\":\"card\",\"token\":\""} +
                        (us.decline ? "tok_decline" : "tok_ok") + "\"}}");
        us.header_name = "Idempotency-Key";
        us.header_value = us.key;
      }
      break;
    }
    us.intended = t;
    us.resent = false;
    submit(u);
  }

  /// Updates the counters and moves the shopper on. REQUIRES: mu_ held by the caller.
  /// Returns what to do next: 0 end the journey, 1 next step after thinking, 2 next at once.
  int judge(user& us, const answer& a) {
    auto& st = stats_;
    const int s = a.status;
    const bool unknown = s <= 0 || s >= 500;
    const uint32_t k = static_cast<uint32_t>(us.plan.size());
    switch (us.kind) {
    case req_kind::listing:
      return s > 0 ? 1 : 0;
    case req_kind::product:
      return s > 0 && us.step < 2 * k ? 1 : 0;
    case req_kind::page:
      if (s == 200) {
        ++st.out.pages;
        remember_etag(us, a.etag);
      } else if (s == 304) {
        ++st.out.not_modified;
      }
      return s > 0 ? 1 : 0;
    case req_kind::cart: {
      if (s != 201) {
        return 0;
      }
      us.cart = string_member(a.body, "cart_id");
      if (us.cart.empty()) {
        return 0;
      }
      ++st.out.carts;
      return 1;
    }
    case req_kind::add_item: {
      auto& t = st.skus[us.sku];
      ++t.puts;
      if (!st.first_hold || us.intended < *st.first_hold) {
        st.first_hold = us.intended;
      }
      if (s == 200) {
        ++st.out.held;
        ++t.live_holds;
        us.holds.emplace_back(us.sku, 1);
      } else if (s == 409) {
        const auto code = error_code(a.body);
        if (code == "sold_out") {
          ++st.out.sold_out;
        } else if (code == "limit_exceeded") {
          ++st.out.limit_exceeded;
        }
      } else if (unknown) {
        ++t.uncertain;
      }
      if (s <= 0) {
        return 0;
      }
      return us.sc == scenario::hot_item ? 0 : 1;
    }
    case req_kind::checkout:
      return judge_checkout(us, a);
    case req_kind::checkout_retry: {
      if (s == 201) {
        if (string_member(a.body, "order_id") == us.order_id) {
          ++st.out.replays;
        } else {
          ++st.out.replay_mismatch;
        }
      } else if (!unknown && s != 429) {
        ++st.out.replay_mismatch;
      }
      return 0;
    }
    }
    return 0;
  }

  int judge_checkout(user& us, const answer& a) {
    auto& st = stats_;
    const int s = a.status;
    // The holds leave the "live" count when they are (or may have been) consumed.
    const auto drop_holds = [&](bool uncertain) {
      for (const auto& [sku, qty] : us.holds) {
        auto& t = st.skus[sku];
        t.live_holds -= qty;
        if (uncertain) {
          ++t.uncertain;
        }
      }
      us.holds.clear();
    };
    if (s == 201) {
      ++st.out.orders;
      auto parsed = json::parse(a.body);
      const auto* order = std::get_if<json::value>(&parsed);
      std::string status;
      if (order != nullptr && order->is_object()) {
        if (const auto* v = order->find("order_id"); v != nullptr && v->is_string()) {
          us.order_id = std::get<std::string>(v->get());
        }
        if (const auto* v = order->find("status"); v != nullptr && v->is_string()) {
          status = std::get<std::string>(v->get());
        }
      }
      if (status == "confirmed") {
        const auto* lines = order->find("lines");
        if (lines != nullptr && lines->is_array()) {
          for (const auto& l : std::get<json::array>(lines->get())) {
            const auto* sku = l.find("sku");
            const auto* qty = l.find("qty");
            if (sku == nullptr || qty == nullptr || !sku->is_string() || !qty->is_int()) {
              continue;
            }
            const auto it = g_.sku_index.find(std::get<std::string>(sku->get()));
            if (it != g_.sku_index.end()) {
              const auto q = std::get<int64_t>(qty->get());
              st.skus[it->second].confirmed_units += q;
              st.out.confirmed_units += static_cast<uint64_t>(q);
            }
          }
        }
        drop_holds(false);
      } else {
        drop_holds(true);
      }
      return us.retry && !us.order_id.empty() ? 2 : 0;
    }
    if (s == 402) {
      ++st.out.declines; // the cart and its holds stay
    } else if (s == 409) {
      const auto code = error_code(a.body);
      if (code == "hold_expired") {
        ++st.out.hold_expired;
        drop_holds(false);
      } else if (code == "empty_cart") {
        ++st.out.empty_cart;
      }
    } else if (s <= 0 || s >= 500 || s == 404) {
      ++st.out.checkout_unknown;
      drop_holds(true);
    }
    return 0;
  }

  static void remember_etag(user& us, const std::string& tag) {
    if (tag.empty()) {
      return;
    }
    for (auto& [sku, t] : us.etags) {
      if (sku == us.sku) {
        t = tag;
        return;
      }
    }
    if (us.etags.size() >= max_etags) {
      us.etags.erase(us.etags.begin());
    }
    us.etags.emplace_back(us.sku, tag);
  }

  static std::string string_member(const std::string& body, std::string_view key) {
    auto parsed = json::parse(body);
    const auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || !v->is_object()) {
      return {};
    }
    const auto* m = v->find(key);
    return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
  }

  static std::string error_code(const std::string& body) {
    auto parsed = json::parse(body);
    const auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || !v->is_object()) {
      return {};
    }
    const auto* e = v->find("error");
    if (e == nullptr || !e->is_object()) {
      return {};
    }
    const auto* c = e->find("code");
    return c != nullptr && c->is_string() ? std::get<std::string>(c->get()) : std::string{};
  }

  /// The answer (or failure) for shopper `u`'s request.
  void deliver(uint32_t u, answer a) {
    auto& us = users_[u];
    const auto now = clk::now();
    const auto lat_us = static_cast<uint64_t>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(now - us.intended).count()));
    int next = 0;
    {
      std::lock_guard lk{mu_};
      auto& ks = stats_.kinds[static_cast<int>(us.kind)];
      ++ks.count;
      const bool err = is_error(a.status);
      if (err) {
        ++ks.errors;
        ++stats_.interval_errors;
      }
      if (a.status > 0 || a.status == status_timeout) {
        ks.latency.record(lat_us);
        stats_.all.record(lat_us);
        stats_.interval.record(lat_us);
      }
      if (a.status > 0) {
        ++stats_.answered;
      }
      ++stats_.interval_requests;
      ++stats_.statuses[a.status];
      next = judge(us, a);
    }
    if (next == 0) {
      end_journey(u, a.status <= 0);
    } else {
      next_step(u, next == 2);
    }
  }

  // ------------------------------------------------------------------ connection pool

  void submit(uint32_t u) {
    if (g_.reserved.fetch_add(1) >= g_.o.max_requests) {
      g_.hit_max.store(true);
      request_global_stop();
      begin_stop();
      return;
    }
    ++in_flight_;
    {
      std::lock_guard lk{mu_};
      ++stats_.sent;
    }
    if (!idle_.empty()) {
      const auto c = idle_.back();
      idle_.pop_back();
      exchange(c, u);
    } else if (!down_.empty()) {
      const auto c = down_.back();
      down_.pop_back();
      connect(c, u);
    } else {
      queue_.push_back(u);
    }
  }

  void request_global_stop() {
    bool expected = false;
    if (g_.stopping.compare_exchange_strong(expected, true)) {
      g_.stop_at_us.store(
          std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - g_.start).count());
    }
  }

  void connect(uint32_t ci, uint32_t u) {
    auto& c = *conns_[ci];
    c.st = conn::state::connecting;
    c.reused = false;
    c.user = u;
    beast::error_code ec;
    auto& sock = c.stream.socket();
    sock.open(tcp::v4(), ec);
    if (!ec && c.source >= 0) {
#ifdef IP_BIND_ADDRESS_NO_PORT
      // Pick the port at connect time, per destination: many more connections per source.
      const int one = 1;
      ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
      sock.bind(tcp::endpoint{g_.sources[static_cast<std::size_t>(c.source)], 0}, ec);
    }
    if (ec) {
      // Posted, so that a queue of shoppers failing at once does not recurse.
      asio::post(strand_, [this, ci] { fail(ci, status_connect); });
      return;
    }
    c.stream.expires_after(g_.o.timeout);
    c.stream.async_connect(g_.targets[c.target], [this, ci](beast::error_code ec) {
      if (ec) {
        fail(ci, ec == beast::error::timeout ? status_timeout : status_connect);
        return;
      }
      beast::error_code ignored;
      conns_[ci]->stream.socket().set_option(tcp::no_delay{true}, ignored);
      exchange(ci, conns_[ci]->user);
    });
  }

  void exchange(uint32_t ci, uint32_t u) {
    auto& c = *conns_[ci];
    auto& us = users_[u];
    c.st = conn::state::busy;
    c.user = u;
    c.req = {};
    c.req.version(11);
    c.req.method(us.verb);
    c.req.target(us.target);
    const auto& ep = g_.o.targets[c.target];
    c.req.set(http::field::host, ep.host + ":" + std::to_string(ep.port));
    c.req.set(http::field::user_agent, "surge-load");
    c.req.set("X-Forwarded-For", us.forwarded_for);
    if (!us.authorization.empty()) {
      c.req.set(http::field::authorization, us.authorization);
    }
    c.req.set(http::field::accept, us.kind == req_kind::page ? "text/html" : "application/json");
    if (!us.header_name.empty()) {
      c.req.set(us.header_name, us.header_value);
    }
    c.req.keep_alive(true);
    if (us.verb != http::verb::get) {
      c.req.set(http::field::content_type, "application/json");
      c.req.body() = us.body;
      c.req.prepare_payload();
    }
    c.parser.emplace();
    c.parser->body_limit(body_limit);
    c.stream.expires_after(g_.o.timeout);
    http::async_write(c.stream, c.req, [this, ci](beast::error_code ec, std::size_t) {
      if (ec) {
        on_failure(ci, ec);
        return;
      }
      auto& c = *conns_[ci];
      http::async_read(c.stream, c.buf, *c.parser, [this, ci](beast::error_code ec, std::size_t) {
        if (ec) {
          on_failure(ci, ec);
          return;
        }
        on_response(ci);
      });
    });
  }

  void on_response(uint32_t ci) {
    auto& c = *conns_[ci];
    const auto u = c.user;
    c.user = no_user;
    auto res = c.parser->release();
    answer a;
    a.status = static_cast<int>(res.result_int());
    a.body = std::move(res.body());
    if (auto it = res.find(http::field::etag); it != res.end()) {
      a.etag = std::string{it->value()};
    }
    if (res.keep_alive()) {
      c.st = conn::state::idle;
      c.reused = true;
    } else {
      close(c);
    }
    --in_flight_;
    release(ci);
    deliver(u, std::move(a));
    maybe_finish();
  }

  void on_failure(uint32_t ci, beast::error_code ec) {
    auto& c = *conns_[ci];
    const auto u = c.user;
    auto& us = users_[u];
    const bool header_seen = c.parser && c.parser->is_header_done();
    const bool was_reused = c.reused;
    close(c);
    const bool closed_by_peer = ec == http::error::end_of_stream || ec == asio::error::eof ||
                                ec == asio::error::connection_reset ||
                                ec == asio::error::broken_pipe;
    if (was_reused && closed_by_peer && !header_seen && !us.resent && !stopping_) {
      // The server closed a kept connection as we reused it: send once more on a new one.
      us.resent = true;
      {
        std::lock_guard lk{mu_};
        ++stats_.stale_retries;
      }
      connect(ci, u);
      return;
    }
    c.user = no_user;
    --in_flight_;
    release(ci);
    deliver(u, answer{ec == beast::error::timeout ? status_timeout : status_io, {}, {}});
    maybe_finish();
  }

  /// A connection attempt for `ci` failed before the request was written.
  void fail(uint32_t ci, int status) {
    auto& c = *conns_[ci];
    const auto u = c.user;
    close(c);
    c.user = no_user;
    --in_flight_;
    release(ci);
    deliver(u, answer{status, {}, {}});
    maybe_finish();
  }

  void close(conn& c) {
    beast::error_code ec;
    c.stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    c.stream.close();
    c.buf.consume(c.buf.size());
    c.st = conn::state::down;
    c.reused = false;
  }

  /// Connection `ci` is free: it serves the next queued shopper or waits.
  void release(uint32_t ci) {
    auto& c = *conns_[ci];
    if (!queue_.empty()) {
      const auto u = queue_.front();
      queue_.pop_front();
      if (c.st == conn::state::idle) {
        exchange(ci, u);
      } else {
        connect(ci, u);
      }
      return;
    }
    (c.st == conn::state::idle ? idle_ : down_).push_back(ci);
  }

  // -------------------------------------------------------------------------- stopping

  void begin_stop() {
    if (stopping_) {
      return;
    }
    stopping_ = true;
    {
      std::lock_guard lk{mu_};
      stats_.unsent += queue_.size();
    }
    in_flight_ -= queue_.size();
    queue_.clear();
    heap_ = {};
    ++gen_;
    timer_.cancel();
    arrival_timer_.cancel();
    maybe_finish();
  }

  void maybe_finish() {
    if (!stopping_ || in_flight_ != 0 || finished_) {
      return;
    }
    finished_ = true;
    for (auto& c : conns_) {
      if (c->st != conn::state::down) {
        close(*c);
      }
    }
    on_done_();
  }

  shared_state& g_;
  const uint32_t index_;
  strand_t strand_;
  asio::steady_timer timer_;
  asio::steady_timer arrival_timer_;
  const std::function<void()> on_done_;
  std::mt19937_64 rng_;
  double per_shard_rate_ = 0;
  uint64_t max_slots_ = 0;

  // Owned by the strand.
  std::vector<user> users_;
  std::vector<uint32_t> free_;
  uint64_t arrivals_ = 0;
  clk::time_point next_arrival_;
  std::vector<std::unique_ptr<conn>> conns_;
  std::vector<uint32_t> idle_;
  std::vector<uint32_t> down_;
  std::deque<uint32_t> queue_;
  std::priority_queue<heap_entry, std::vector<heap_entry>, std::greater<>> heap_;
  bool armed_ = false;
  clk::time_point armed_at_;
  uint64_t gen_ = 0;
  uint64_t in_flight_ = 0; ///< shoppers queued for or using a connection
  bool stopping_ = false;
  bool finished_ = false;

  std::mutex mu_;
  shard_stats stats_; ///< guarded by mu_
};

std::string fmt_ms(uint64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(us) / 1000.0);
  return buf;
}

} // namespace

run_result run_load(const options& o, const run_setup& setup) {
  shared_state g{o, setup};
  for (uint32_t i = 0; i < setup.skus.size(); ++i) {
    g.sku_index.emplace(setup.skus[i], i);
  }
  for (const auto& t : o.targets) {
    g.targets.emplace_back(asio::ip::make_address_v4(t.address), t.port);
  }
  for (uint32_t i = 0; i < o.source_addrs; ++i) {
    g.sources.push_back(asio::ip::address_v4{(127u << 24) + i + 1});
  }

  asio::io_context io{static_cast<int>(o.threads)};
  strand_t control = asio::make_strand(io);
  asio::steady_timer report_timer{control};
  asio::steady_timer end_timer{control};
  asio::steady_timer deadline_timer{control};
  asio::signal_set signals{control, SIGINT, SIGTERM};
  uint32_t done = 0;      // on the control strand
  bool stop_sent = false; // on the control strand
  const uint32_t nshards = o.threads;

  const auto all_done = [&] {
    asio::post(control, [&] {
      if (++done == nshards) {
        report_timer.cancel();
        end_timer.cancel();
        deadline_timer.cancel();
        beast::error_code ignored;
        signals.cancel(ignored);
      }
    });
  };

  std::vector<std::unique_ptr<shard>> shards;
  g.start = clk::now() + std::chrono::milliseconds{20};
  g.end = g.start + o.duration;
  uint32_t conn_first = 0;
  for (uint32_t i = 0; i < nshards; ++i) {
    const uint32_t nc = setup.connections / nshards + (i < setup.connections % nshards ? 1 : 0);
    const uint64_t users = o.users ? *o.users / nshards + (i < *o.users % nshards ? 1 : 0) : 0;
    shards.push_back(
        std::make_unique<shard>(g, io, i, conn_first, std::max<uint32_t>(nc, 1), users, all_done));
    conn_first += nc;
  }

  run_result r;
  uint64_t last_total = 0;
  std::function<void()> stop_all = [&] { // on the control strand
    if (stop_sent || done == nshards) {
      return;
    }
    stop_sent = true;
    for (auto& s : shards) {
      s->stop();
    }
    deadline_timer.expires_after(o.timeout + std::chrono::seconds{2});
    deadline_timer.async_wait([&](beast::error_code ec) {
      if (!ec) {
        std::cerr << "surge-load: requests still in flight " << o.timeout.count() + 2000
                  << " ms after the end; giving up on them\n";
        io.stop();
      }
    });
  };

  std::function<void(int)> tick = [&](int n) {
    report_timer.expires_at(g.start + std::chrono::seconds{n});
    report_timer.async_wait([&, n](beast::error_code ec) {
      if (ec) {
        return;
      }
      histogram interval;
      histogram cumulative;
      uint64_t reqs = 0;
      uint64_t errs = 0;
      uint64_t active = 0;
      std::map<int, uint64_t> statuses;
      for (auto& s : shards) {
        std::lock_guard lk{s->mu()};
        auto& st = s->stats();
        interval.merge(st.interval);
        st.interval.reset();
        cumulative.merge(st.all);
        reqs += st.interval_requests;
        errs += st.interval_errors;
        st.interval_requests = 0;
        st.interval_errors = 0;
        active += st.active;
        for (const auto& [k, v] : st.statuses) {
          statuses[k] += v;
        }
      }
      last_total += reqs;
      second_point p;
      p.t = n;
      p.requests = reqs;
      p.errors = errs;
      p.p50_ms = static_cast<double>(interval.percentile(50)) / 1000.0;
      p.p99_ms = static_cast<double>(interval.percentile(99)) / 1000.0;
      p.active = active;
      r.series.push_back(p);
      if (!o.quiet) {
        std::string errors;
        for (const auto& [k, v] : statuses) {
          if (k <= 0 || k >= 400) {
            errors += " " + status_key(k) + ":" + std::to_string(v);
          }
        }
        char line[256];
        std::snprintf(line, sizeof line, "[%4ds] %s %-7llu %7llu req/s", n,
                      o.users ? "users" : "active",
                      static_cast<unsigned long long>(o.users ? *o.users : active),
                      static_cast<unsigned long long>(reqs));
        std::cerr << line << "  p50 " << fmt_ms(cumulative.percentile(50)) << " p99 "
                  << fmt_ms(cumulative.percentile(99)) << "  total " << last_total << "  non-2xx"
                  << (errors.empty() ? " none" : errors) << "\n";
      }
      if (g.stopping.load()) {
        stop_all();
      }
      tick(n + 1);
    });
  };

  end_timer.expires_at(g.end);
  end_timer.async_wait([&](beast::error_code ec) {
    if (ec) {
      return;
    }
    bool expected = false;
    if (g.stopping.compare_exchange_strong(expected, true)) {
      g.stop_at_us.store(std::chrono::duration_cast<std::chrono::microseconds>(o.duration).count());
    }
    stop_all();
  });
  // Ctrl-C ends the run early, with its report.
  signals.async_wait([&](beast::error_code ec, int) {
    if (ec) {
      return;
    }
    std::cerr << "surge-load: interrupted; finishing the requests in flight\n";
    bool expected = false;
    if (g.stopping.compare_exchange_strong(expected, true)) {
      g.stop_at_us.store(
          std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - g.start).count());
    }
    stop_all();
  });
  asio::post(control, [&] { tick(1); });
  for (auto& s : shards) {
    s->start();
  }

  std::vector<std::thread> extra;
  for (uint32_t i = 1; i < o.threads; ++i) {
    extra.emplace_back([&] { io.run(); });
  }
  io.run();
  for (auto& t : extra) {
    t.join();
  }

  const auto stop_us = g.stop_at_us.load();
  r.elapsed_s = stop_us > 0 ? static_cast<double>(stop_us) / 1e6
                            : std::chrono::duration<double>(clk::now() - g.start).count();
  r.hit_max_requests = g.hit_max.load();
  std::optional<clk::time_point> first_hold;
  for (auto& s : shards) {
    std::lock_guard lk{s->mu()};
    auto& st = s->stats();
    for (int k = 0; k < kind_count; ++k) {
      r.kinds[k].latency.merge(st.kinds[k].latency);
      r.kinds[k].count += st.kinds[k].count;
      r.kinds[k].errors += st.kinds[k].errors;
    }
    r.all.merge(st.all);
    for (const auto& [k, v] : st.statuses) {
      r.statuses[status_key(k)] += v;
    }
    auto& a = r.out;
    const auto& b = st.out;
    a.journeys += b.journeys;
    a.dropped_arrivals += b.dropped_arrivals;
    a.carts += b.carts;
    a.held += b.held;
    a.sold_out += b.sold_out;
    a.limit_exceeded += b.limit_exceeded;
    a.orders += b.orders;
    a.confirmed_units += b.confirmed_units;
    a.declines += b.declines;
    a.replays += b.replays;
    a.replay_mismatch += b.replay_mismatch;
    a.hold_expired += b.hold_expired;
    a.empty_cart += b.empty_cart;
    a.checkout_unknown += b.checkout_unknown;
    a.not_modified += b.not_modified;
    a.pages += b.pages;
    for (const auto& [i, t] : st.skus) {
      auto& x = r.skus[setup.skus[i]];
      x.live_holds += t.live_holds;
      x.confirmed_units += t.confirmed_units;
      x.uncertain += t.uncertain;
      x.puts += t.puts;
    }
    r.sent += st.sent;
    r.answered += st.answered;
    r.unsent += st.unsent;
    r.stale_retries += st.stale_retries;
    if (st.first_hold && (!first_hold || *st.first_hold < *first_hold)) {
      first_hold = st.first_hold;
    }
  }
  r.first_hold = first_hold;
  r.sent -= r.unsent; // issued, but never written
  shards.clear();     // sockets before the io_context
  return r;
}

} // namespace surge::load
