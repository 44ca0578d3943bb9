// The drop scenario. Threading: run_drop's set-up and checks are blocking calls on the calling
// thread; in between, every shopper, both connection pools and the monitor live on one
// io_context run by that same thread, so no state here is shared between threads.

#include "drop.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <random>
#include <stdexcept>
#include <tuple>

#include "surge/config/names.hpp"
#include "surge/net/beast.hpp"
#include "surge/net/customer_auth.hpp"
#include "surge/net/json.hpp"
#include "surge/tools/text.hpp"

namespace surge::load {

namespace json = surge::net::json;
using clk = std::chrono::steady_clock;
using tools::fixed;

const char* drop_kind_name(drop_kind x) {
  static constexpr const char* names[] = {"join",     "ticket",   "cart",
                                          "add_item", "checkout", "bot_add"};
  static_assert(std::size(names) == config::count_of(drop_kind::join, drop_kind::bot_add));
  return config::name_of(x, names, "?");
}

// ------------------------------------------------------------------------- pure functions

std::optional<double> kendall_tau_b(std::vector<std::pair<double, double>> xy) {
  const auto n = static_cast<int64_t>(xy.size());
  if (n < 2) {
    return std::nullopt;
  }
  std::sort(xy.begin(), xy.end());
  const auto pairs = [](int64_t t) { return t * (t - 1) / 2; };
  const int64_t n0 = pairs(n);
  int64_t n1 = 0; // pairs tied in x
  int64_t n3 = 0; // pairs tied in both
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && xy[j].first == xy[i].first) {
      ++j;
    }
    n1 += pairs(j - i);
    for (int64_t k = i; k < j;) {
      int64_t l = k;
      while (l < j && xy[l].second == xy[k].second) {
        ++l;
      }
      n3 += pairs(l - k);
      k = l;
    }
    i = j;
  }
  // Discordant pairs: the swaps a stable merge sort by y makes (equal y never swap).
  std::vector<double> y(xy.size());
  for (std::size_t i = 0; i < xy.size(); ++i) {
    y[i] = xy[i].second;
  }
  std::vector<double> tmp(y.size());
  int64_t swaps = 0;
  for (int64_t width = 1; width < n; width *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * width) {
      const int64_t mid = std::min(lo + width, n);
      const int64_t hi = std::min(lo + 2 * width, n);
      int64_t a = lo;
      int64_t b = mid;
      int64_t k = lo;
      while (a < mid && b < hi) {
        if (y[b] < y[a]) {
          swaps += mid - a;
          tmp[k++] = y[b++];
        } else {
          tmp[k++] = y[a++];
        }
      }
      while (a < mid) {
        tmp[k++] = y[a++];
      }
      while (b < hi) {
        tmp[k++] = y[b++];
      }
    }
    std::swap(y, tmp);
  }
  int64_t n2 = 0; // pairs tied in y (y is sorted now)
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && y[j] == y[i]) {
      ++j;
    }
    n2 += pairs(j - i);
    i = j;
  }
  if (n1 == n0 || n2 == n0) {
    return std::nullopt;
  }
  const double num = static_cast<double>(n0 - n1 - n2 + n3 - 2 * swaps);
  return num / std::sqrt(static_cast<double>(n0 - n1) * static_cast<double>(n0 - n2));
}

std::optional<int64_t> parse_rfc3339_ms(const std::string& s) {
  int y = 0;
  int mo = 0;
  int d = 0;
  int h = 0;
  int mi = 0;
  int sec = 0;
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
      used != 19) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int64_t ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) {
        ms = ms * 10 + (s[pos] - '0');
      }
      ++digits;
      ++pos;
    }
    if (digits == 0) {
      return std::nullopt;
    }
    for (; digits < 3; ++digits) {
      ms *= 10;
    }
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

double drop_result::bot_share_arrivals() const {
  return users > 0 ? static_cast<double>(bots) / static_cast<double>(users) : 0.0;
}

double drop_result::bot_share_buyers() const {
  return bought > 0 ? static_cast<double>(bot_buyers) / static_cast<double>(bought) : 0.0;
}

double drop_result::admitted_p99_ms() const {
  const auto p99 = [&](drop_kind k) {
    return static_cast<double>(kinds[static_cast<int>(k)].latency.percentile(99)) / 1000.0;
  };
  return std::max(p99(drop_kind::add_item), p99(drop_kind::checkout));
}

namespace {

constexpr int status_timeout = -1;
constexpr int status_connect = -2;
constexpr int status_io = -3;
constexpr int status_cancelled = -4; ///< never sent: the run ended first
constexpr std::size_t body_limit = 1024 * 1024;
constexpr std::size_t max_failures_kept = 8;
constexpr int max_retries = 4; ///< a step without an answer (or with 5xx) is sent again this often

std::string status_key(int status) {
  switch (status) {
  case status_timeout:
    return "timeout";
  case status_connect:
    return "connect";
  case status_io:
    return "io";
  case status_cancelled:
    return "cancelled";
  default:
    return std::to_string(status);
  }
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

/// Same scheme as engine.cpp's: shopper n's X-Forwarded-For in 198.18.0.0/15.
std::string shopper_address(uint64_t n) {
  const uint32_t a = 0xC6120000U + static_cast<uint32_t>(n % 131072);
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xFF) + "." +
         std::to_string((a >> 8) & 0xFF) + "." + std::to_string(a & 0xFF);
}

std::optional<json::value> parse_object(const std::string& body) {
  auto parsed = json::parse(body);
  auto* v = std::get_if<json::value>(&parsed);
  if (v == nullptr || !v->is_object()) {
    return std::nullopt;
  }
  return std::move(*v);
}

std::string str_member(const json::value& v, std::string_view key) {
  const auto* m = v.find(key);
  return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
}

std::optional<int64_t> int_of(const json::value& v, std::string_view key) {
  const auto* m = v.find(key);
  if (m == nullptr || !m->is_int()) {
    return std::nullopt;
  }
  return std::get<int64_t>(m->get());
}

std::optional<double> number_of(const json::value& v, std::string_view key) {
  const auto* m = v.find(key);
  if (m == nullptr || !m->is_number()) {
    return std::nullopt;
  }
  return m->is_int() ? static_cast<double>(std::get<int64_t>(m->get()))
                     : std::get<double>(m->get());
}

/// The join number of a ticket "t<seq>-<mac>" (actors/ids.hpp ticket_for), or nullopt.
std::optional<uint64_t> ticket_seq(const std::string& t) {
  const auto dash = t.find('-');
  if (t.size() < 2 || t[0] != 't' || dash == std::string::npos || dash < 2) {
    return std::nullopt;
  }
  uint64_t seq = 0;
  for (std::size_t k = 1; k < dash; ++k) {
    if (t[k] < '0' || t[k] > '9' || seq > UINT64_MAX / 10 - 1) {
      return std::nullopt;
    }
    seq = seq * 10 + static_cast<uint64_t>(t[k] - '0');
  }
  return seq;
}

std::string error_code(const std::string& body) {
  const auto v = parse_object(body);
  if (!v) {
    return {};
  }
  const auto* e = v->find("error");
  return e != nullptr && e->is_object() ? str_member(*e, "code") : std::string{};
}

// ------------------------------------------------------------------------------ the pool

struct answer {
  int status = 0; ///< HTTP status, or status_timeout/_connect/_io/_cancelled
  std::string body;
};

struct request {
  http::verb verb = http::verb::get;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Keep-alive connections to `endpoints` (connection i to endpoint i mod n) and a FIFO of the
/// requests waiting for one. Each request's callback runs exactly once, on the io_context's
/// thread, after its connection is free again (so it may send at once).
class pool {
 public:
  using callback = std::function<void(answer)>;

  pool(asio::io_context& io, const std::vector<endpoint>& endpoints, uint32_t connections,
       std::chrono::milliseconds timeout)
      : timeout_(timeout) {
    for (const auto& e : endpoints) {
      addrs_.emplace_back(asio::ip::make_address_v4(e.address), e.port);
      hosts_.push_back(e.host + ":" + std::to_string(e.port));
    }
    for (uint32_t i = 0; i < connections; ++i) {
      conns_.push_back(std::make_unique<conn>(io));
      conns_.back()->target = i % static_cast<uint32_t>(addrs_.size());
      free_.push_back(connections - 1 - i);
    }
  }

  void send(request r, callback cb) {
    ++in_flight_;
    if (cancelled_) {
      finish_item(item{std::move(r), std::move(cb), false}, answer{status_cancelled, {}});
      return;
    }
    if (free_.empty()) {
      queue_.push_back(item{std::move(r), std::move(cb), false});
      return;
    }
    const auto ci = free_.back();
    free_.pop_back();
    start(ci, item{std::move(r), std::move(cb), false});
  }

  /// Requests not sent yet are answered status_cancelled, as are later ones; those on the wire
  /// finish (bounded by the timeout).
  void cancel_queued() {
    cancelled_ = true;
    while (!queue_.empty()) {
      auto it = std::move(queue_.front());
      queue_.pop_front();
      finish_item(std::move(it), answer{status_cancelled, {}});
    }
  }

  uint64_t in_flight() const { return in_flight_; }

  void close() {
    for (auto& c : conns_) {
      beast::error_code ec;
      c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      c->stream.close();
    }
  }

 private:
  struct item {
    request req;
    callback cb;
    bool resent = false;
  };
  struct conn {
    explicit conn(asio::io_context& io)
        : stream(io) {}
    beast::tcp_stream stream;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    std::optional<http::response_parser<http::string_body>> parser;
    uint32_t target = 0;
    bool up = false;
    bool reused = false;
    item cur;
  };

  void start(uint32_t ci, item it) {
    auto& c = *conns_[ci];
    c.cur = std::move(it);
    if (c.up) {
      exchange(ci);
      return;
    }
    beast::error_code ec;
    c.stream.socket().open(tcp::v4(), ec);
    if (ec) {
      done(ci, answer{status_connect, {}});
      return;
    }
    c.reused = false;
    c.stream.expires_after(timeout_);
    c.stream.async_connect(addrs_[c.target], [this, ci](beast::error_code ec) {
      if (ec) {
        drop(*conns_[ci]);
        done(ci, answer{ec == beast::error::timeout ? status_timeout : status_connect, {}});
        return;
      }
      auto& c = *conns_[ci];
      c.up = true;
      beast::error_code ignored;
      c.stream.socket().set_option(tcp::no_delay{true}, ignored);
      exchange(ci);
    });
  }

  void exchange(uint32_t ci) {
    auto& c = *conns_[ci];
    const auto& r = c.cur.req;
    c.req = {};
    c.req.version(11);
    c.req.method(r.verb);
    c.req.target(r.target);
    c.req.set(http::field::host, hosts_[c.target]);
    c.req.set(http::field::user_agent, "surge-load");
    c.req.set(http::field::accept, "application/json");
    for (const auto& [k, v] : r.headers) {
      c.req.set(k, v);
    }
    c.req.keep_alive(true);
    if (r.verb != http::verb::get) {
      c.req.set(http::field::content_type, "application/json");
      c.req.body() = r.body;
      c.req.prepare_payload();
    }
    c.parser.emplace();
    c.parser->body_limit(body_limit);
    c.stream.expires_after(timeout_);
    http::async_write(c.stream, c.req, [this, ci](beast::error_code ec, std::size_t) {
      if (ec) {
        failure(ci, ec);
        return;
      }
      auto& c = *conns_[ci];
      http::async_read(c.stream, c.buf, *c.parser, [this, ci](beast::error_code ec, std::size_t) {
        if (ec) {
          failure(ci, ec);
          return;
        }
        auto& c = *conns_[ci];
        auto res = c.parser->release();
        if (res.keep_alive()) {
          c.reused = true;
        } else {
          drop(c);
        }
        done(ci, answer{static_cast<int>(res.result_int()), std::move(res.body())});
      });
    });
  }

  void failure(uint32_t ci, beast::error_code ec) {
    auto& c = *conns_[ci];
    const bool header_seen = c.parser && c.parser->is_header_done();
    const bool was_reused = c.reused;
    drop(c);
    const bool closed_by_peer = ec == http::error::end_of_stream || ec == asio::error::eof ||
                                ec == asio::error::connection_reset ||
                                ec == asio::error::broken_pipe;
    if (was_reused && closed_by_peer && !header_seen && !c.cur.resent) {
      // The server closed a kept connection as we reused it: once more on a new one.
      c.cur.resent = true;
      start(ci, std::move(c.cur));
      return;
    }
    done(ci, answer{ec == beast::error::timeout ? status_timeout : status_io, {}});
  }

  void drop(conn& c) {
    beast::error_code ec;
    c.stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    c.stream.close();
    c.buf.consume(c.buf.size());
    c.up = false;
    c.reused = false;
  }

  /// Connection `ci` has the answer to its request: it takes the next one, then the callback.
  void done(uint32_t ci, answer a) {
    auto it = std::move(conns_[ci]->cur);
    if (!queue_.empty()) {
      auto next = std::move(queue_.front());
      queue_.pop_front();
      start(ci, std::move(next));
    } else {
      free_.push_back(ci);
    }
    finish_item(std::move(it), std::move(a));
  }

  void finish_item(item it, answer a) {
    --in_flight_;
    it.cb(std::move(a));
  }

  const std::chrono::milliseconds timeout_;
  std::vector<tcp::endpoint> addrs_;
  std::vector<std::string> hosts_;
  std::vector<std::unique_ptr<conn>> conns_;
  std::vector<uint32_t> free_;
  std::deque<item> queue_;
  uint64_t in_flight_ = 0;
  bool cancelled_ = false;
};

// ---------------------------------------------------------------------------- shoppers

enum class outcome { none, bought, sold_out, expired, failed };

struct shopper {
  bool bot = false;
  double arrive_s = 0; ///< from the start
  std::string customer;
  std::string authorization;
  std::string forwarded_for;
  std::string ticket;
  std::string pass;
  int64_t pass_expires_ms = 0;
  int64_t admitted_ms = 0; ///< the server's admission time (pass expiry - pass_ttl); 0: never
  std::optional<clk::time_point> joined;   ///< the join's answer
  std::optional<clk::time_point> admitted; ///< first seen admitted
  std::optional<clk::time_point> decided;
  std::optional<clk::time_point> told_sold_out; ///< a ticket said sold_out
  std::optional<uint64_t> seq;                  ///< the join number in the ticket "t<seq>-<mac>"
  outcome out = outcome::none;
  std::string cart;
  std::string bot_cart;
  std::array<uint8_t, 3> order{0, 1, 2};
  uint8_t sku_try = 0;
  int attempts = 0;
  bool checkout_sent = false;
  bool hammer_next = false;
  bool buying = false;
  std::unique_ptr<asio::steady_timer> timer;
};

/// The admin set-up's facts a run needs.
struct sale_setup {
  std::string sale_id;
  std::vector<std::string> skus;
  std::vector<int64_t> stock;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  int64_t pass_ttl_ms = 0;
};

/// One drop on one io_context. Every member is touched on the io_context's thread only.
class drop_run {
 public:
  drop_run(const options& o, const run_setup& setup, const sale_setup& sale, uint64_t users,
           const std::string& tag, drop_result& r)
      : o_(o)
      , setup_(setup)
      , sale_(sale)
      , r_(r)
      , queue_pool_(io_, o.targets, o.connections, o.timeout)
      , buy_pool_(io_, o.targets, o.buy_connections, o.timeout)
      , admin_pool_(io_, {o.admin}, 1, o.timeout)
      , monitor_timer_(io_)
      , end_timer_(io_)
      , hard_timer_(io_)
      , rng_(o.seed * 0x9E3779B97F4A7C15ULL + 17) {
    const auto now_ms = unix_ms_now();
    start_ = clk::now() + std::chrono::milliseconds{sale.start_ms - now_ms};
    created_ = clk::now();
    end_ = start_ + o.arrive_after + o.drain;
    const double before = std::chrono::duration<double>(o.arrive_before).count();
    const double after = std::chrono::duration<double>(o.arrive_after).count();
    shoppers_.resize(users);
    const auto nbots = static_cast<uint64_t>(std::llround(static_cast<double>(users) * o.bots));
    std::vector<uint64_t> ids(users);
    for (uint64_t i = 0; i < users; ++i) {
      ids[i] = i;
    }
    std::shuffle(ids.begin(), ids.end(), rng_);
    for (uint64_t i = 0; i < nbots; ++i) {
      shoppers_[ids[i]].bot = true;
    }
    std::uniform_real_distribution<double> when{-before, after};
    for (uint64_t i = 0; i < users; ++i) {
      auto& s = shoppers_[i];
      s.arrive_s = before + after > 0 ? when(rng_) : 0.0;
      s.customer = "drop-" + setup.run_id + "-" + tag + "-" + std::to_string(i);
      s.forwarded_for = shopper_address(i);
      std::shuffle(s.order.begin(), s.order.end(), rng_);
    }
    r_.users = users;
    r_.bots = nbots;
    sku_confirmed_.assign(sale.skus.size(), 0);
    sku_uncertain_.assign(sale.skus.size(), 0);
  }

  void run() {
    for (uint32_t i = 0; i < shoppers_.size(); ++i) {
      auto& s = shoppers_[i];
      s.timer = std::make_unique<asio::steady_timer>(io_);
      s.timer->expires_at(
          start_ + std::chrono::microseconds{static_cast<int64_t>(std::llround(s.arrive_s * 1e6))});
      s.timer->async_wait([this, i](beast::error_code ec) {
        if (!ec) {
          arrive(i);
        }
      });
    }
    end_timer_.expires_at(end_);
    end_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        stop();
      }
    });
    monitor();
    io_.run();
    for (uint64_t c = 0; c < sale_.skus.size(); ++c) {
      r_.skus[c].confirmed_units = sku_confirmed_[c];
      r_.skus[c].uncertain = sku_uncertain_[c];
    }
    summarise();
  }

 private:
  double since_start(clk::time_point t) const {
    return std::chrono::duration<double>(t - start_).count();
  }

  // --------------------------------------------------------------------------- requests

  std::vector<std::pair<std::string, std::string>> headers_of(const shopper& s) const {
    std::vector<std::pair<std::string, std::string>> h{{"X-Forwarded-For", s.forwarded_for}};
    if (!s.authorization.empty()) {
      h.emplace_back("Authorization", s.authorization);
    }
    return h;
  }

  /// Sends `req` for shopper `i` through `p`; `then` gets the answer unless the run stopped.
  /// The latency (from `intended`) goes to `kind`.
  void send(pool& p, drop_kind kind, request req, clk::time_point intended,
            std::function<void(const answer&)> then) {
    p.send(std::move(req), [this, kind, intended, then = std::move(then)](answer a) {
      if (a.status == status_cancelled) {
        ++r_.statuses[status_key(a.status)];
        maybe_finish();
        return;
      }
      const auto now = clk::now();
      auto& ks = r_.kinds[static_cast<int>(kind)];
      ++ks.count;
      ++r_.statuses[status_key(a.status)];
      if (a.status <= 0 || a.status >= 500) {
        ++ks.errors;
      }
      if (a.status > 0 || a.status == status_timeout) {
        ks.latency.record(static_cast<uint64_t>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::microseconds>(now - intended).count())));
      }
      then(a);
      maybe_finish();
    });
  }

  void later(uint32_t i, clk::duration d, std::function<void()> what) {
    if (stopping_) {
      return;
    }
    auto& t = *shoppers_[i].timer;
    t.expires_after(d);
    t.async_wait([this, what = std::move(what)](beast::error_code ec) {
      if (!ec && !stopping_) {
        what();
      }
    });
  }

  void fail(uint32_t i, const std::string& why) {
    if (r_.failures.size() < max_failures_kept) {
      r_.failures.push_back(shoppers_[i].customer + ": " + why);
    }
    decide(i, outcome::failed);
  }

  void decide(uint32_t i, outcome out) {
    auto& s = shoppers_[i];
    if (s.out != outcome::none) {
      return;
    }
    s.out = out;
    s.decided = clk::now();
    ++decided_;
    if (decided_ == shoppers_.size()) {
      stop();
    }
  }

  /// A transient failure of step `what` of shopper i: again after `pause`, at most max_retries
  /// times; then the shopper fails.
  void retry(uint32_t i, const answer& a, const char* what, clk::duration pause,
             std::function<void()> again) {
    auto& s = shoppers_[i];
    if (++s.attempts > max_retries) {
      fail(i, std::string{what} + ": " + status_key(a.status) + " " + a.body.substr(0, 120));
      return;
    }
    later(i, pause, std::move(again));
  }

  // ------------------------------------------------------------------------------ steps

  void arrive(uint32_t i) {
    auto& s = shoppers_[i];
    if (!setup_.customer_secret.empty()) {
      net::token_claims claims;
      claims.subject = s.customer;
      claims.ttl = std::chrono::duration_cast<std::chrono::seconds>(end_ - clk::now()) +
                   std::chrono::hours{1};
      auto token =
          net::mint_hs256_token(setup_.customer_secret, claims, std::chrono::system_clock::now());
      if (auto* t = std::get_if<std::string>(&token)) {
        s.authorization = "Bearer " + *t;
      }
    }
    join(i);
  }

  std::string customer_body(const shopper& s) const {
    return s.authorization.empty() ? "{\"customer_id\":\"" + s.customer + "\"}" : std::string{"{}"};
  }

  void join(uint32_t i) {
    auto& s = shoppers_[i];
    request req{http::verb::post, "/api/v1/sales/" + sale_.sale_id + "/queue", customer_body(s),
                headers_of(s)};
    send(queue_pool_, drop_kind::join, std::move(req), clk::now(), [this, i](const answer& a) {
      auto& s = shoppers_[i];
      if (a.status == 200 || a.status == 201) {
        s.attempts = 0;
        s.joined = clk::now();
        ++r_.joined;
        on_ticket(i, a.body);
      } else if (a.status == 404 && clk::now() < created_ + std::chrono::seconds{5}) {
        // Other nodes learn of a new sale within sales.refresh (1 s by default).
        later(i, std::chrono::milliseconds{250}, [this, i] { join(i); });
      } else if (a.status == 409 && error_code(a.body) == "sale_ended") {
        decide(i, outcome::expired);
      } else if (a.status == 429) {
        later(i, std::chrono::seconds{1}, [this, i] { join(i); });
      } else if (a.status <= 0 || a.status >= 500) {
        retry(i, a, "join", std::chrono::milliseconds{500}, [this, i] { join(i); });
      } else {
        fail(i, "join: " + status_key(a.status) + " " + a.body.substr(0, 160));
      }
    });
  }

  void poll(uint32_t i) {
    auto& s = shoppers_[i];
    request req{http::verb::get,
                "/api/v1/sales/" + sale_.sale_id + "/queue/" + s.ticket,
                {},
                headers_of(s)};
    send(queue_pool_, drop_kind::ticket, std::move(req), clk::now(), [this, i](const answer& a) {
      if (a.status == 200) {
        shoppers_[i].attempts = 0;
        on_ticket(i, a.body);
      } else if (a.status == 429) {
        later(i, std::chrono::seconds{1}, [this, i] { poll(i); });
      } else if (a.status <= 0 || a.status >= 500) {
        retry(i, a, "ticket", o_.poll, [this, i] { poll(i); });
      } else {
        fail(i, "ticket: " + status_key(a.status) + " " + a.body.substr(0, 160));
      }
    });
  }

  void on_ticket(uint32_t i, const std::string& body) {
    auto& s = shoppers_[i];
    const auto v = parse_object(body);
    if (!v) {
      fail(i, "ticket: not a JSON object: " + body.substr(0, 160));
      return;
    }
    if (const auto t = str_member(*v, "ticket"); !t.empty() && t != s.ticket) {
      s.ticket = t;
      s.seq = ticket_seq(t);
    }
    const auto state = str_member(*v, "state");
    if (s.ticket.empty()) {
      fail(i, "ticket: no ticket in " + body.substr(0, 160));
    } else if (state == "waiting") {
      if (s.bot) {
        later(i, o_.bot_interval, [this, i] { bot_step(i); });
      } else {
        later(i, o_.poll, [this, i] { poll(i); });
      }
    } else if (state == "admitted") {
      s.pass = str_member(*v, "pass");
      const auto exp = parse_rfc3339_ms(str_member(*v, "pass_expires_at"));
      if (s.pass.empty() || !exp) {
        fail(i, "ticket: admitted without a pass or its expiry: " + body.substr(0, 200));
        return;
      }
      s.pass_expires_ms = *exp;
      s.admitted_ms = *exp - sale_.pass_ttl_ms;
      s.admitted = clk::now();
      ++r_.admitted;
      s.buying = true;
      s.attempts = 0;
      create_cart(i);
    } else if (state == "sold_out") {
      s.told_sold_out = clk::now();
      decide(i, outcome::sold_out);
    } else if (state == "expired") {
      decide(i, outcome::expired);
    } else {
      fail(i, "ticket: unknown state in " + body.substr(0, 160));
    }
  }

  void create_cart(uint32_t i) {
    auto& s = shoppers_[i];
    request req{http::verb::post, "/api/v1/carts", customer_body(s), headers_of(s)};
    send(buy_pool_, drop_kind::cart, std::move(req), clk::now(), [this, i](const answer& a) {
      auto& s = shoppers_[i];
      if (a.status == 201) {
        const auto v = parse_object(a.body);
        s.cart = v ? str_member(*v, "cart_id") : std::string{};
        if (s.cart.empty()) {
          fail(i, "cart: no cart_id in " + a.body.substr(0, 160));
          return;
        }
        s.attempts = 0;
        add_item(i);
      } else if (a.status <= 0 || a.status >= 500 || a.status == 429) {
        retry(i, a, "cart", std::chrono::milliseconds{200}, [this, i] { create_cart(i); });
      } else {
        fail(i, "cart: " + status_key(a.status) + " " + a.body.substr(0, 160));
      }
    });
  }

  void add_item(uint32_t i) {
    auto& s = shoppers_[i];
    const uint8_t c = s.order[s.sku_try];
    auto h = headers_of(s);
    h.emplace_back("Surge-Pass", s.pass);
    request req{http::verb::put, "/api/v1/carts/" + s.cart + "/items/" + sale_.skus[c],
                "{\"qty\":1}", std::move(h)};
    send(buy_pool_, drop_kind::add_item, std::move(req), clk::now(), [this, i, c](const answer& a) {
      auto& s = shoppers_[i];
      const auto code = a.status >= 400 ? error_code(a.body) : std::string{};
      if (a.status == 200) {
        s.attempts = 0;
        checkout(i);
      } else if (a.status == 409 && code == "sold_out") {
        if (++s.sku_try < s.order.size()) {
          add_item(i);
        } else {
          decide(i, outcome::sold_out);
        }
      } else if ((a.status == 403 && code == "queue_required") ||
                 (a.status == 409 && code == "sale_ended")) {
        if (a.status == 403 && unix_ms_now() < s.pass_expires_ms) {
          ++r_.pass_refused;
          fail(i, "add_item: a pass " + std::to_string((s.pass_expires_ms - unix_ms_now()) / 1000) +
                      " s from expiry refused: " + a.body.substr(0, 160));
        } else {
          decide(i, outcome::expired);
        }
      } else if (a.status <= 0 || a.status >= 500 || a.status == 429) {
        if (a.status <= 0 || a.status >= 500) {
          ++sku_uncertain_[c]; // the hold may have been made
        }
        retry(i, a, "add_item", std::chrono::milliseconds{200}, [this, i] { add_item(i); });
      } else {
        fail(i, "add_item: " + status_key(a.status) + " " + a.body.substr(0, 160));
      }
    });
  }

  void checkout(uint32_t i) {
    auto& s = shoppers_[i];
    auto h = headers_of(s);
    h.emplace_back("Idempotency-Key", "drop-" + s.customer);
    request req{http::verb::post, "/api/v1/carts/" + s.cart + "/checkout",
                "{\"payment\":{\"method\":\"card\",\"token\":\"tok_ok\"}}", std::move(h)};
    s.checkout_sent = true;
    send(buy_pool_, drop_kind::checkout, std::move(req), clk::now(), [this, i](const answer& a) {
      auto& s = shoppers_[i];
      const uint8_t c = s.order[s.sku_try];
      if (a.status == 201) {
        const auto v = parse_object(a.body);
        const auto status = v ? str_member(*v, "status") : std::string{};
        s.checkout_sent = false;
        if (status != "confirmed") {
          ++sku_uncertain_[c];
          fail(i, "checkout: order " + (status.empty() ? std::string{"?"} : status));
          return;
        }
        int64_t units = 0;
        if (const auto* lines = v->find("lines"); lines != nullptr && lines->is_array()) {
          for (const auto& l : std::get<json::array>(lines->get())) {
            const auto sku = str_member(l, "sku");
            const auto qty = int_of(l, "qty").value_or(0);
            for (std::size_t k = 0; k < sale_.skus.size(); ++k) {
              if (sale_.skus[k] == sku) {
                sku_confirmed_[k] += qty;
                units += qty;
              }
            }
          }
        }
        confirmed_ += units;
        ++r_.bought;
        if (s.bot) {
          ++r_.bot_buyers;
        }
        if (confirmed_ >= r_.units && !last_sold_) {
          last_sold_ = clk::now();
        }
        decide(i, outcome::bought);
      } else if (a.status <= 0 || a.status >= 500 || a.status == 429) {
        // The same Idempotency-Key: at most one order, whatever happened to this one.
        if (s.attempts + 1 > max_retries) {
          ++r_.checkouts_unanswered;
          ++sku_uncertain_[c];
        }
        retry(i, a, "checkout", std::chrono::milliseconds{500}, [this, i] { checkout(i); });
      } else {
        s.checkout_sent = false;
        fail(i, "checkout: " + status_key(a.status) + " " + a.body.substr(0, 160));
      }
    });
  }

  /// A waiting bot: its ticket and, in between, an add to cart without a pass.
  void bot_step(uint32_t i) {
    auto& s = shoppers_[i];
    s.hammer_next = !s.hammer_next;
    if (!s.hammer_next) {
      poll(i);
      return;
    }
    if (s.bot_cart.empty()) {
      request req{http::verb::post, "/api/v1/carts", customer_body(s), headers_of(s)};
      send(queue_pool_, drop_kind::cart, std::move(req), clk::now(), [this, i](const answer& a) {
        auto& s = shoppers_[i];
        if (a.status == 201) {
          const auto v = parse_object(a.body);
          s.bot_cart = v ? str_member(*v, "cart_id") : std::string{};
        }
        later(i, o_.bot_interval, [this, i] { bot_step(i); });
      });
      return;
    }
    const uint8_t c = s.order[(bot_tries_++) % s.order.size()];
    request req{http::verb::put, "/api/v1/carts/" + s.bot_cart + "/items/" + sale_.skus[c],
                "{\"qty\":1}", headers_of(s)};
    send(queue_pool_, drop_kind::bot_add, std::move(req), clk::now(), [this, i](const answer& a) {
      const auto code = error_code(a.body);
      if (a.status == 200) {
        ++r_.bot_holds;
      } else if (a.status == 403 && code == "queue_required") {
        ++r_.bot_refused;
      } else if (a.status == 409 && code == "sale_not_started") {
        ++r_.bot_not_started;
      } else {
        ++r_.bot_other;
      }
      later(i, o_.bot_interval, [this, i] { bot_step(i); });
    });
  }

  // -------------------------------------------------------------------- monitor, stopping

  void monitor() {
    if (stopping_) {
      return;
    }
    request req{http::verb::get, "/admin/v1/sales/" + sale_.sale_id, {}, {}};
    if (!o_.admin_token.empty()) {
      req.headers.emplace_back("Authorization", "Bearer " + o_.admin_token);
    }
    admin_pool_.send(std::move(req), [this](answer a) {
      if (a.status == 200) {
        if (const auto v = parse_object(a.body)) {
          if (const auto* st = v->find("stats"); st != nullptr && st->is_object()) {
            drop_point p;
            p.t_s = since_start(clk::now());
            p.tickets = int_of(*st, "tickets").value_or(0);
            p.waiting = int_of(*st, "waiting").value_or(0);
            p.admitted = int_of(*st, "admitted").value_or(0);
            p.sold = int_of(*st, "sold").value_or(0);
            p.admit_rate = number_of(*st, "admit_rate").value_or(0);
            for (const auto& s : shoppers_) {
              p.told_sold_out += s.told_sold_out ? 1 : 0;
            }
            r_.max_waiting = std::max(r_.max_waiting, p.waiting);
            r_.max_admit_rate = std::max(r_.max_admit_rate, p.admit_rate);
            r_.series.push_back(p);
          }
        }
      }
      if (stopping_) {
        maybe_finish();
        return;
      }
      monitor_timer_.expires_after(std::chrono::milliseconds{500});
      monitor_timer_.async_wait([this](beast::error_code ec) {
        if (!ec) {
          monitor();
        }
      });
    });
  }

  void stop() {
    if (stopping_) {
      return;
    }
    stopping_ = true;
    for (auto& s : shoppers_) {
      if (s.timer) {
        s.timer->cancel();
      }
    }
    monitor_timer_.cancel();
    end_timer_.cancel();
    queue_pool_.cancel_queued();
    buy_pool_.cancel_queued();
    admin_pool_.cancel_queued();
    hard_timer_.expires_after(o_.timeout + std::chrono::seconds{2});
    hard_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        std::cerr << "surge-load: drop: requests still in flight " << (o_.timeout.count() + 2000)
                  << " ms after the end; giving up on them\n";
        finish();
      }
    });
    asio::post(io_, [this] { maybe_finish(); });
  }

  void maybe_finish() {
    if (stopping_ && queue_pool_.in_flight() == 0 && buy_pool_.in_flight() == 0 &&
        admin_pool_.in_flight() == 0) {
      finish();
    }
  }

  void finish() {
    if (finished_) {
      return;
    }
    finished_ = true;
    ended_ = clk::now();
    hard_timer_.cancel();
    queue_pool_.close();
    buy_pool_.close();
    admin_pool_.close();
    io_.stop();
  }

  // ---------------------------------------------------------------------------- figures

  void summarise() {
    for (const auto& s : shoppers_) {
      switch (s.out) {
      case outcome::none:
        ++r_.undecided;
        if (s.checkout_sent) {
          ++r_.checkouts_unanswered;
        }
        break;
      case outcome::bought:
        break;
      case outcome::sold_out:
        ++r_.sold_out;
        break;
      case outcome::expired:
        ++r_.expired;
        break;
      case outcome::failed:
        ++r_.failed;
        break;
      }
    }
    if (last_sold_) {
      r_.last_sold_s = since_start(*last_sold_);
      double worst = 0;
      for (const auto& s : shoppers_) {
        const bool waiting = s.joined && *s.joined <= *last_sold_ &&
                             (!s.admitted || *s.admitted > *last_sold_) &&
                             (!s.decided || *s.decided > *last_sold_);
        if (!waiting) {
          continue;
        }
        ++r_.notify_waiting;
        if (!s.told_sold_out) {
          ++r_.notify_missed;
          continue;
        }
        worst =
            std::max(worst, std::chrono::duration<double>(*s.told_sold_out - *last_sold_).count());
      }
      if (r_.notify_missed == 0 && r_.notify_waiting > 0) {
        r_.notify_s = worst;
      }
    }
    int64_t first_adm = 0;
    int64_t last_adm = 0;
    // Shoppers who arrived after the start and were admitted: (admitted ms, join number, arrival).
    std::vector<std::tuple<int64_t, uint64_t, double>> after;
    for (const auto& s : shoppers_) {
      if (s.admitted_ms > 0) {
        first_adm = first_adm == 0 ? s.admitted_ms : std::min(first_adm, s.admitted_ms);
        last_adm = std::max(last_adm, s.admitted_ms);
        if (s.arrive_s >= 0) {
          after.emplace_back(s.admitted_ms, s.seq.value_or(UINT64_MAX), s.arrive_s);
        }
      }
    }
    if (last_adm > first_adm) {
      r_.admission_rate_seen =
          static_cast<double>(r_.admitted) / (static_cast<double>(last_adm - first_adm) / 1000.0);
    }
    r_.tau_n = after.size();
    if (after.size() >= 2) {
      // Admission order: the admission instant, and within one (a round admits a prefix of
      // ranks at once) the join number, which ranks arrivals after the start.
      std::sort(after.begin(), after.end());
      std::vector<std::pair<double, double>> xy;
      std::vector<std::pair<double, double>> strict;
      double rank = 0;
      uint64_t tied = 0;
      uint64_t run = 0;
      for (std::size_t k = 0; k < after.size(); ++k) {
        const auto& [ms, seq, arrive] = after[k];
        if (k > 0) {
          const auto& [pms, pseq, parrive] = after[k - 1];
          (void)parrive;
          rank += ms == pms && seq == pseq ? 0 : 1;
          run = ms == pms ? run + 1 : 0;
          tied += run;
        }
        xy.emplace_back(arrive, rank);
        strict.emplace_back(arrive, static_cast<double>(ms));
      }
      const double n = static_cast<double>(after.size());
      r_.tau_tied_share = static_cast<double>(tied) / (n * (n - 1) / 2);
      r_.tau_b = kendall_tau_b(std::move(xy));
      r_.tau_b_strict = kendall_tau_b(std::move(strict));
    }
    r_.elapsed_s = std::chrono::duration<double>(ended_ - created_).count();
  }

  const options& o_;
  const run_setup& setup_;
  const sale_setup& sale_;
  drop_result& r_;
  asio::io_context io_;
  pool queue_pool_;
  pool buy_pool_;
  pool admin_pool_;
  asio::steady_timer monitor_timer_;
  asio::steady_timer end_timer_;
  asio::steady_timer hard_timer_;
  std::mt19937_64 rng_;
  clk::time_point start_;
  clk::time_point created_;
  clk::time_point end_;
  clk::time_point ended_;
  std::vector<shopper> shoppers_;
  std::vector<int64_t> sku_confirmed_;
  std::vector<uint64_t> sku_uncertain_;
  int64_t confirmed_ = 0;
  std::optional<clk::time_point> last_sold_;
  uint64_t decided_ = 0;
  uint64_t bot_tries_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
};

// ---------------------------------------------------------------------- set-up, checks

/// Creates the SKUs and the sale; an error text, or "" with `sale` filled in.
std::string set_up(const options& o, admin_client& admin, uint64_t users, const std::string& tag,
                   const std::string& run_id, sale_setup& sale) {
  const std::string prefix = o.sku_prefix.empty() ? "DROP-" : o.sku_prefix;
  sale.sale_id = "drop-" + run_id + "-" + tag;
  const int64_t units = static_cast<int64_t>(o.units);
  for (int64_t k = 0; k < 3; ++k) {
    sale.skus.push_back(prefix + run_id + "-" + tag + "-" + std::to_string(k + 1));
    sale.stock.push_back(units / 3 + (k < units % 3 ? 1 : 0));
  }
  const auto expect = [](const admin_answer& a, const std::string& what) -> std::string {
    if (a.status == 0) {
      return what + ": " + a.error + " (--admin=URL)";
    }
    if (a.status != 200 && a.status != 201) {
      return what + " answered " + std::to_string(a.status) + ": " + a.body.substr(0, 300) +
             (a.status == 401 ? " (--admin-token or $SURGE_ADMIN_TOKEN)" : "");
    }
    return {};
  };
  for (std::size_t k = 0; k < sale.skus.size(); ++k) {
    const auto& sku = sale.skus[k];
    json::object product{
        {"name", "Drop " + sku},           {"description", std::string{"surge-load drop"}},
        {"category", std::string{"drop"}}, {"price_cents", int64_t{4999}},
        {"currency", std::string{"USD"}},  {"per_customer_limit", int64_t{0}}};
    if (auto e = expect(admin.send("PUT", "/admin/v1/products/" + sku,
                                   json::serialize(json::value{std::move(product)})),
                        "PUT /admin/v1/products/" + sku);
        !e.empty()) {
      return e;
    }
    if (auto e = expect(admin.send("POST", "/admin/v1/products/" + sku + "/stock",
                                   "{\"set\":" + std::to_string(sale.stock[k]) + "}"),
                        "POST /admin/v1/products/" + sku + "/stock");
        !e.empty()) {
      return e;
    }
  }
  const auto now_ms = unix_ms_now();
  sale.start_ms = (now_ms + o.lead.count() + 999) / 1000 * 1000;
  // The sale ends early enough in the drain that shoppers still waiting see `expired` at their
  // next polls before the run ends, and late enough that a sale sold out in the drain tells them
  // `sold_out` first.
  const int64_t drain = o.drain.count();
  sale.end_ms = sale.start_ms + o.arrive_after.count() +
                std::max<int64_t>({drain - 2 * o.poll.count() - 1000, drain / 2, 1000});
  json::array skus;
  for (const auto& s : sale.skus) {
    skus.emplace_back(s);
  }
  json::object queue{{"enabled", true},
                     {"pass_ttl", static_cast<int64_t>(o.pass_ttl.count() / 1000)}};
  if (o.admission_rate) {
    queue.emplace_back("admission_rate", *o.admission_rate);
  } else {
    queue.emplace_back("admission_rate", std::string{"auto"});
  }
  json::object body{
      {"name", "surge-load drop " + tag + " (" + std::to_string(users) + " shoppers)"},
      {"skus", std::move(skus)},
      {"starts_at", rfc3339(sale.start_ms)},
      {"ends_at", rfc3339(sale.end_ms)},
      {"per_customer_limit", int64_t{0}},
      {"queue", std::move(queue)}};
  const auto a = admin.send("PUT", "/admin/v1/sales/" + sale.sale_id,
                            json::serialize(json::value{std::move(body)}));
  if (auto e = expect(a, "PUT /admin/v1/sales/" + sale.sale_id); !e.empty()) {
    return e;
  }
  sale.pass_ttl_ms = o.pass_ttl.count() / 1000 * 1000;
  if (const auto v = parse_object(a.body)) {
    if (const auto* q = v->find("queue"); q != nullptr && q->is_object()) {
      if (const auto ttl = number_of(*q, "pass_ttl")) {
        sale.pass_ttl_ms = static_cast<int64_t>(std::llround(*ttl * 1000));
      }
    }
  }
  return {};
}

void check_after(const options& o, admin_client& admin, drop_result& r) {
  const auto add = [&](bool ok, std::string name, std::string detail) {
    r.checks.push_back({ok ? "PASS" : "FAIL", std::move(name), std::move(detail)});
    r.passed = r.passed && ok;
  };
  r.passed = true;
  std::string problems;
  int64_t confirmed = 0;
  bool exact = true;
  for (auto& s : r.skus) {
    confirmed += s.confirmed_units;
    exact = exact && s.uncertain == 0;
    const auto a = admin.get("/admin/v1/products/" + tools::path_segment(s.sku) + "/stock");
    const auto v = a.status == 200 ? parse_object(a.body) : std::nullopt;
    if (!v || !int_of(*v, "on_hand") || !int_of(*v, "held") || !int_of(*v, "sold")) {
      problems +=
          (problems.empty() ? "" : "; ") + s.sku + ": " +
          (a.status == 0 ? a.error : std::to_string(a.status) + " " + a.body.substr(0, 160));
      continue;
    }
    s.admin = stock_view{*int_of(*v, "on_hand"), *int_of(*v, "held"), *int_of(*v, "sold"), true};
  }
  if (!problems.empty()) {
    add(false, "admin stock readable", problems);
    return;
  }
  r.oversell = std::max<int64_t>(0, confirmed - r.units);
  std::string over;
  std::string mismatch;
  for (const auto& s : r.skus) {
    const auto& st = *s.admin;
    r.oversell += std::max<int64_t>(0, st.held + st.sold - st.on_hand);
    if (st.held + st.sold > st.on_hand) {
      over += (over.empty() ? "" : "; ") + s.sku + ": held " + std::to_string(st.held) +
              " + sold " + std::to_string(st.sold) + " > on_hand " + std::to_string(st.on_hand);
    }
    if (st.on_hand != s.stock) {
      over += (over.empty() ? "" : "; ") + s.sku + ": on_hand " + std::to_string(st.on_hand) +
              " != " + std::to_string(s.stock) + " set";
    }
    const bool ok = s.uncertain == 0 ? st.sold == s.confirmed_units : st.sold >= s.confirmed_units;
    if (!ok) {
      mismatch += (mismatch.empty() ? "" : "; ") + s.sku + ": sold " + std::to_string(st.sold) +
                  " vs " + std::to_string(s.confirmed_units) + " in confirmed orders";
    }
  }
  add(over.empty() && r.oversell == 0, "held + sold <= on_hand (0 oversell)",
      over.empty() ? std::to_string(r.skus.size()) + " SKUs, " + std::to_string(confirmed) +
                         " of " + std::to_string(r.units) + " units in confirmed orders"
                   : over);
  add(mismatch.empty(),
      exact ? "sold == units of the confirmed orders" : "sold >= units of the confirmed orders",
      mismatch.empty() ? std::to_string(r.bought) + " orders" : mismatch);
  add(r.bot_holds == 0, "no hold without a pass",
      std::to_string(r.bot_refused) + " bot adds 403 queue_required, " +
          std::to_string(r.bot_not_started) + " 409 sale_not_started, " +
          std::to_string(r.bot_other) + " other, " + std::to_string(r.bot_holds) + " holds");
  add(r.checkouts_unanswered == 0, "every admitted buyer's checkout answered",
      std::to_string(r.checkouts_unanswered) + " without a final answer");
  add(r.undecided == 0 && r.failed == 0, "every shopper knows: bought, sold_out or expired",
      std::to_string(r.bought) + " bought, " + std::to_string(r.sold_out) + " sold out, " +
          std::to_string(r.expired) + " expired, " + std::to_string(r.failed) + " failed, " +
          std::to_string(r.undecided) + " undecided");
  add(r.pass_refused == 0, "fresh passes accepted",
      std::to_string(r.pass_refused) + " refused before their expiry");

  const auto a = admin.get("/admin/v1/sales/" + r.sale_id);
  const auto v = a.status == 200 ? parse_object(a.body) : std::nullopt;
  const auto* st = v ? v->find("stats") : nullptr;
  if (st == nullptr || !st->is_object()) {
    add(false, "sale stats",
        "GET /admin/v1/sales/" + r.sale_id + " answered " +
            (a.status == 0 ? a.error : std::to_string(a.status)));
    return;
  }
  r.tickets = int_of(*st, "tickets").value_or(0);
  r.lottery_seed = str_member(*st, "lottery_seed");
  if (const auto* so = st->find("sold_out_at"); so != nullptr && so->is_string()) {
    r.sold_out_at = std::get<std::string>(so->get());
  }
  const auto sold = int_of(*st, "sold");
  add(sold && *sold <= r.units, "the sale's sold <= units",
      "stats.sold " + (sold ? std::to_string(*sold) : std::string{"missing"}) + " of " +
          std::to_string(r.units));
  (void)o;
}

std::string pct(double x) {
  return fixed(100.0 * x, 1) + " %";
}

std::string opt_s(const std::optional<double>& x, int decimals = 2) {
  return x ? fixed(*x, decimals) + " s" : std::string{"n/a"};
}

} // namespace

drop_result run_drop(const options& o, const run_setup& setup, uint64_t users,
                     const std::string& tag) {
  drop_result r;
  r.units = static_cast<int64_t>(o.units);
  admin_client admin{o};
  sale_setup sale;
  r.error = set_up(o, admin, users, tag, setup.run_id, sale);
  r.sale_id = sale.sale_id;
  for (std::size_t k = 0; k < sale.skus.size(); ++k) {
    r.skus.push_back(drop_sku{sale.skus[k], sale.stock[k], 0, 0, std::nullopt});
  }
  if (!r.error.empty()) {
    r.users = users;
    r.checks.push_back({"FAIL", "set-up", r.error});
    return r;
  }
  if (!o.quiet) {
    std::cerr << "surge-load: drop " << sale.sale_id << ": " << users << " shoppers, " << o.units
              << " units of " << sale.skus.size() << " SKUs, starts at " << rfc3339(sale.start_ms)
              << "\n";
  }
  {
    drop_run run{o, setup, sale, users, tag, r};
    run.run();
  }
  if (o.check) {
    check_after(o, admin, r);
  } else {
    r.passed = true;
  }
  return r;
}

bool capacity_step_passed(const options& o, const drop_result& r) {
  return r.passed && r.admitted > 0 && r.admitted_p99_ms() < o.capacity_p99_ms;
}

void print_drop(std::ostream& out, const options& o, const drop_result& r) {
  out << "surge-load drop " << r.sale_id << ": " << grouped(r.users) << " shoppers ("
      << grouped(r.bots) << " bots), " << grouped(static_cast<uint64_t>(r.units)) << " units over "
      << r.skus.size() << " SKUs; ran " << fixed(r.elapsed_s, 1) << " s\n";
  if (!r.error.empty()) {
    out << "FAIL  set-up: " << r.error << "\n";
    return;
  }
  std::vector<std::vector<std::string>> skus = {
      {"SKU", "STOCK", "SOLD_TO_SHOPPERS", "UNCERTAIN", "ON_HAND", "HELD", "SOLD"}};
  for (const auto& s : r.skus) {
    skus.push_back({s.sku, std::to_string(s.stock), std::to_string(s.confirmed_units),
                    std::to_string(s.uncertain), s.admin ? std::to_string(s.admin->on_hand) : "?",
                    s.admin ? std::to_string(s.admin->held) : "?",
                    s.admin ? std::to_string(s.admin->sold) : "?"});
  }
  out << "\n" << tools::format_table(skus, {false, true, true, true, true, true, true});
  out << "\nlatency from the intended start, ms\n";
  std::vector<std::vector<std::string>> rows = {
      {"KIND", "COUNT", "ERRORS", "p50", "p90", "p99", "max"}};
  for (int k = 0; k < drop_kind_count; ++k) {
    const auto& ks = r.kinds[k];
    if (ks.count == 0) {
      continue;
    }
    const auto ms = [&](double p) {
      return fixed(static_cast<double>(ks.latency.percentile(p)) / 1000.0, 2);
    };
    rows.push_back({drop_kind_name(static_cast<drop_kind>(k)), grouped(ks.count),
                    grouped(ks.errors), ms(50), ms(90), ms(99),
                    fixed(static_cast<double>(ks.latency.max()) / 1000.0, 2)});
  }
  out << tools::format_table(rows, {false, true, true, true, true, true, true});
  out << "status:";
  for (const auto& [k, v] : r.statuses) {
    out << "  " << k << " " << grouped(v);
  }
  out << "\n\nshoppers: " << grouped(r.joined) << " joined, " << grouped(r.admitted)
      << " admitted, " << grouped(r.bought) << " bought, " << grouped(r.sold_out) << " sold out, "
      << grouped(r.expired) << " expired, " << grouped(r.failed) << " failed, "
      << grouped(r.undecided) << " undecided\n";
  for (const auto& f : r.failures) {
    out << "  failure: " << f << "\n";
  }
  out << "oversell: " << r.oversell << "\n";
  out << "admitted shoppers: add to cart p50 "
      << fixed(static_cast<double>(
                   r.kinds[static_cast<int>(drop_kind::add_item)].latency.percentile(50)) /
                   1000.0,
               1)
      << " ms, p99 "
      << fixed(static_cast<double>(
                   r.kinds[static_cast<int>(drop_kind::add_item)].latency.percentile(99)) /
                   1000.0,
               1)
      << " ms; checkout p50 "
      << fixed(static_cast<double>(
                   r.kinds[static_cast<int>(drop_kind::checkout)].latency.percentile(50)) /
                   1000.0,
               1)
      << " ms, p99 "
      << fixed(static_cast<double>(
                   r.kinds[static_cast<int>(drop_kind::checkout)].latency.percentile(99)) /
                   1000.0,
               1)
      << " ms\n";
  if (r.last_sold_s) {
    out << "sold out: last unit sold " << opt_s(r.last_sold_s) << " after the start; every one of "
        << grouped(r.notify_waiting) << " shoppers then waiting told within " << opt_s(r.notify_s);
    if (r.notify_missed > 0) {
      out << " (" << grouped(r.notify_missed) << " never told)";
    }
    if (r.notify_waiting == 0) {
      out << " (no shopper was waiting then)";
    }
    out << " (polling every " << o.poll.count() << " ms)\n";
  } else {
    out << "sold out: no (the shoppers were told of " << r.skus.size() << " SKUs' units sold in "
        << grouped(r.bought) << " orders)\n";
  }
  out << "bots: " << pct(r.bot_share_arrivals()) << " of arrivals, " << pct(r.bot_share_buyers())
      << " of buyers; without a pass: " << grouped(r.bot_refused) << " refused 403, "
      << grouped(r.bot_not_started) << " not started 409, " << grouped(r.bot_other) << " other, "
      << r.bot_holds << " holds\n";
  out << "FIFO after the start: Kendall tau-b "
      << (r.tau_b ? fixed(*r.tau_b, 4) : std::string{"n/a"}) << " over " << grouped(r.tau_n)
      << " admitted shoppers (arrival vs admission: time, then join number within a round; "
      << "with same-ms admissions as ties "
      << (r.tau_b_strict ? fixed(*r.tau_b_strict, 4) : std::string{"n/a"}) << ", "
      << pct(r.tau_tied_share) << " of pairs)\n";
  out << "queue: " << grouped(static_cast<uint64_t>(r.tickets)) << " tickets, at most "
      << grouped(static_cast<uint64_t>(r.max_waiting)) << " waiting, admission "
      << fixed(r.admission_rate_seen, 1) << "/s first to last admission (admit_rate at most "
      << fixed(r.max_admit_rate, 1) << "/s), lottery seed "
      << (r.lottery_seed.empty() ? "-" : r.lottery_seed) << ", sold out at "
      << r.sold_out_at.value_or("-") << "\n";
  out << "\nchecks against " << o.admin.url() << ":\n";
  for (const auto& l : r.checks) {
    out << l.verdict << "  " << l.name << ": " << l.detail << "\n";
  }
  out << (r.passed ? "PASS" : "FAIL") << "  drop\n";
}

void print_capacity(std::ostream& out, const options& o, const std::vector<drop_result>& runs) {
  std::vector<std::vector<std::string>> rows = {
      {"SHOPPERS", "MAX_WAITING", "ADMITTED", "ADD_p99_ms", "CHECKOUT_p99_ms", "CHECKS", "STEP"}};
  uint64_t best = 0;
  int64_t best_waiting = 0;
  for (const auto& r : runs) {
    const bool ok = capacity_step_passed(o, r);
    if (ok && r.users > best) {
      best = r.users;
      best_waiting = r.max_waiting;
    }
    rows.push_back(
        {grouped(r.users), grouped(static_cast<uint64_t>(r.max_waiting)), grouped(r.admitted),
         fixed(static_cast<double>(
                   r.kinds[static_cast<int>(drop_kind::add_item)].latency.percentile(99)) /
                   1000.0,
               1),
         fixed(static_cast<double>(
                   r.kinds[static_cast<int>(drop_kind::checkout)].latency.percentile(99)) /
                   1000.0,
               1),
         r.passed ? "pass" : "FAIL", ok ? "pass" : "miss"});
  }
  out << "\ncapacity (admitted p99 < " << fixed(o.capacity_p99_ms, 0) << " ms):\n"
      << tools::format_table(rows, {true, true, true, true, true, false, false});
  out << "most shoppers queued with admitted p99 < " << fixed(o.capacity_p99_ms, 0)
      << " ms: " << grouped(best) << " (at most " << grouped(static_cast<uint64_t>(best_waiting))
      << " waiting at once)\n";
}

namespace {

json::value drop_json(const drop_result& r) {
  const auto i = [](uint64_t v) { return json::value{static_cast<int64_t>(v)}; };
  const auto opt = [](const std::optional<double>& x) {
    return x ? json::value{*x} : json::value{nullptr};
  };
  json::array skus;
  for (const auto& s : r.skus) {
    json::object o{{"sku", s.sku},
                   {"stock", s.stock},
                   {"confirmed_units", s.confirmed_units},
                   {"uncertain", i(s.uncertain)}};
    if (s.admin) {
      o.emplace_back("on_hand", s.admin->on_hand);
      o.emplace_back("held", s.admin->held);
      o.emplace_back("sold", s.admin->sold);
    }
    skus.emplace_back(std::move(o));
  }
  json::object latency;
  for (int k = 0; k < drop_kind_count; ++k) {
    const auto& ks = r.kinds[k];
    const auto ms = [&](double p) {
      return static_cast<double>(ks.latency.percentile(p)) / 1000.0;
    };
    latency.emplace_back(drop_kind_name(static_cast<drop_kind>(k)),
                         json::object{{"count", i(ks.count)},
                                      {"errors", i(ks.errors)},
                                      {"p50_ms", ms(50)},
                                      {"p90_ms", ms(90)},
                                      {"p99_ms", ms(99)},
                                      {"max_ms", static_cast<double>(ks.latency.max()) / 1000.0}});
  }
  json::object statuses;
  for (const auto& [k, v] : r.statuses) {
    statuses.emplace_back(k, i(v));
  }
  json::array checks;
  for (const auto& l : r.checks) {
    checks.emplace_back(
        json::object{{"verdict", l.verdict}, {"name", l.name}, {"detail", l.detail}});
  }
  json::array failures;
  for (const auto& f : r.failures) {
    failures.emplace_back(f);
  }
  json::array series;
  for (const auto& p : r.series) {
    series.emplace_back(json::object{{"t_s", p.t_s},
                                     {"tickets", p.tickets},
                                     {"waiting", p.waiting},
                                     {"admitted", p.admitted},
                                     {"sold", p.sold},
                                     {"admit_rate", p.admit_rate},
                                     {"told_sold_out", i(p.told_sold_out)}});
  }
  return json::object{
      {"sale_id", r.sale_id},
      {"users", i(r.users)},
      {"bots", i(r.bots)},
      {"units", r.units},
      {"error", r.error},
      {"skus", std::move(skus)},
      {"shoppers", json::object{{"joined", i(r.joined)},
                                {"admitted", i(r.admitted)},
                                {"bought", i(r.bought)},
                                {"bot_buyers", i(r.bot_buyers)},
                                {"sold_out", i(r.sold_out)},
                                {"expired", i(r.expired)},
                                {"failed", i(r.failed)},
                                {"undecided", i(r.undecided)},
                                {"checkouts_unanswered", i(r.checkouts_unanswered)},
                                {"pass_refused", i(r.pass_refused)},
                                {"failures", std::move(failures)}}},
      {"bots_without_pass", json::object{{"refused", i(r.bot_refused)},
                                         {"not_started", i(r.bot_not_started)},
                                         {"other", i(r.bot_other)},
                                         {"holds", i(r.bot_holds)}}},
      {"latency", std::move(latency)},
      {"statuses", std::move(statuses)},
      {"oversell", r.oversell},
      {"admitted_p99_ms", r.admitted_p99_ms()},
      {"last_sold_s", opt(r.last_sold_s)},
      {"notify_s", opt(r.notify_s)},
      {"notify_waiting", i(r.notify_waiting)},
      {"notify_missed", i(r.notify_missed)},
      {"bot_share_arrivals", r.bot_share_arrivals()},
      {"bot_share_buyers", r.bot_share_buyers()},
      {"tau_b", opt(r.tau_b)},
      {"tau_b_strict", opt(r.tau_b_strict)},
      {"tau_n", i(r.tau_n)},
      {"tau_tied_share", r.tau_tied_share},
      {"queue", json::object{{"tickets", r.tickets},
                             {"max_waiting", r.max_waiting},
                             {"max_admit_rate", r.max_admit_rate},
                             {"admission_rate_seen", r.admission_rate_seen},
                             {"lottery_seed", r.lottery_seed},
                             {"sold_out_at",
                              r.sold_out_at ? json::value{*r.sold_out_at} : json::value{nullptr}}}},
      {"elapsed_s", r.elapsed_s},
      {"passed", r.passed},
      {"checks", std::move(checks)},
      {"series", std::move(series)}};
}

} // namespace

std::string drop_json_report(const options& o, const run_facts& f,
                             const std::vector<drop_result>& runs) {
  json::array targets;
  for (const auto& t : o.targets) {
    targets.emplace_back(t.url());
  }
  json::object doc{
      {"tool", std::string{"surge-load"}},
      {"version", int64_t{1}},
      {"run_id", f.run_id},
      {"scenario", std::string{"drop"}},
      {"targets", std::move(targets)},
      {"seed", static_cast<int64_t>(o.seed)},
      {"settings",
       json::object{{"units", static_cast<int64_t>(o.units)},
                    {"admission_rate", o.admission_rate ? json::value{*o.admission_rate}
                                                        : json::value{std::string{"auto"}}},
                    {"pass_ttl_s", static_cast<double>(o.pass_ttl.count()) / 1000},
                    {"lead_s", static_cast<double>(o.lead.count()) / 1000},
                    {"arrive_before_s", static_cast<double>(o.arrive_before.count()) / 1000},
                    {"arrive_after_s", static_cast<double>(o.arrive_after.count()) / 1000},
                    {"drain_s", static_cast<double>(o.drain.count()) / 1000},
                    {"poll_ms", static_cast<int64_t>(o.poll.count())},
                    {"bot_interval_ms", static_cast<int64_t>(o.bot_interval.count())},
                    {"bots", o.bots},
                    {"connections", int64_t{o.connections}},
                    {"buy_connections", int64_t{o.buy_connections}}}}};
  bool passed = !runs.empty();
  for (const auto& r : runs) {
    passed = passed && r.passed;
  }
  if (o.capacity.empty()) {
    doc.emplace_back("drop", runs.empty() ? json::value{nullptr} : drop_json(runs.front()));
  } else {
    json::array steps;
    uint64_t best = 0;
    int64_t best_waiting = 0;
    for (const auto& r : runs) {
      const bool ok = capacity_step_passed(o, r);
      if (ok && r.users > best) {
        best = r.users;
        best_waiting = r.max_waiting;
      }
      auto j = drop_json(r);
      std::get<json::object>(j.get()).emplace_back("step_passed", ok);
      steps.emplace_back(std::move(j));
    }
    json::array asked;
    for (auto c : o.capacity) {
      asked.emplace_back(static_cast<int64_t>(c));
    }
    doc.emplace_back("capacity", json::object{{"steps_asked", std::move(asked)},
                                              {"p99_limit_ms", o.capacity_p99_ms},
                                              {"max_shoppers_ok", static_cast<int64_t>(best)},
                                              {"max_waiting_ok", best_waiting},
                                              {"steps", std::move(steps)}});
  }
  doc.emplace_back("passed", passed);
  return json::serialize(json::value{std::move(doc)}) + "\n";
}

std::vector<std::string> write_drop_plot(const std::string& prefix, const drop_result& r) {
  std::vector<std::string> said;
  const auto tsv = prefix + ".tsv";
  {
    std::ofstream f{tsv};
    f << "# t_s\ttickets\twaiting\tadmitted\tsold\tadmit_rate\ttold_sold_out\n";
    for (const auto& p : r.series) {
      f << fixed(p.t_s, 2) << "\t" << p.tickets << "\t" << p.waiting << "\t" << p.admitted << "\t"
        << p.sold << "\t" << fixed(p.admit_rate, 2) << "\t" << p.told_sold_out << "\n";
    }
    if (!f) {
      throw std::runtime_error("cannot write " + tsv);
    }
  }
  said.push_back("wrote " + tsv);
  const auto skus = prefix + "-skus.tsv";
  {
    std::ofstream f{skus};
    f << "# sku\tstock\tsold_to_shoppers\ton_hand\theld\tsold\n";
    for (const auto& s : r.skus) {
      f << s.sku << "\t" << s.stock << "\t" << s.confirmed_units << "\t"
        << (s.admin ? std::to_string(s.admin->on_hand) : "?") << "\t"
        << (s.admin ? std::to_string(s.admin->held) : "?") << "\t"
        << (s.admin ? std::to_string(s.admin->sold) : "?") << "\n";
    }
    if (!f) {
      throw std::runtime_error("cannot write " + skus);
    }
  }
  said.push_back("wrote " + skus);
  const auto gp = prefix + ".gp";
  {
    std::ofstream f{gp};
    f << "# surge-load drop: gnuplot " << gp << "\n"
      << "set terminal svg size 960,480 dynamic font 'sans,11'\n"
      << "set datafile separator '\\t'\n"
      << "set grid\nset key left top\nset xlabel 'seconds from the start'\n"
      << "set output '" << prefix << "-queue.svg'\n"
      << "set title 'surge-load drop " << r.sale_id << ": the waiting room'\n"
      << "set ylabel 'shoppers / units'\n"
      << "plot '" << tsv << "' using 1:3 with lines lw 2 title 'waiting', '' using 1:4 with "
      << "lines lw 2 title 'admitted', '' using 1:5 with lines lw 2 title 'sold', '' using 1:7 "
      << "with lines lw 2 title 'told sold out'\n";
    if (!f) {
      throw std::runtime_error("cannot write " + gp);
    }
  }
  said.push_back("wrote " + gp);
  if (r.series.empty()) {
    said.push_back("no stats of the sale were read: no SVG");
  } else if (auto err = run_plot_script(gp); !err.empty()) {
    said.push_back(err + ": no SVG");
  } else {
    said.push_back("wrote " + prefix + "-queue.svg");
  }
  return said;
}

} // namespace surge::load
