#include "sink.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <iostream>
#include <thread>
#include <utility>
#include <vector>

#include "signature.hpp"
#include "surge/net/beast.hpp"
#include "surge/net/json.hpp"
#include "surge/net/json_writer.hpp"
#include "surge/tools/cli.hpp"

namespace surge::webhook_sink {

namespace json = surge::net::json;
using namespace std::chrono_literals;

const char* to_string(mode m) {
  switch (m) {
  case mode::ok:
    return "ok";
  case mode::fail:
    return "fail";
  case mode::timeout:
    return "timeout";
  case mode::slow:
    return "slow";
  case mode::down:
    return "down";
  }
  return "?";
}

std::optional<mode> mode_named(std::string_view name) {
  for (const mode m : {mode::ok, mode::fail, mode::timeout, mode::slow, mode::down}) {
    if (name == to_string(m)) {
      return m;
    }
  }
  return std::nullopt;
}

namespace {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

constexpr std::size_t body_limit = 1 << 20;
/// A request must arrive whole within this (from the connect, or from the previous answer on a
/// kept-alive connection); an answer must be written within it.
constexpr std::chrono::seconds io_timeout{30};

/// One webhook POST answered 200.
struct event {
  int64_t seq = 0;
  std::string event_id;       ///< Surge-Event-Id
  std::string type;           ///< Surge-Event-Type
  std::string order_id;       ///< the body's "order_id" (a JSON object's string member), else ""
  int64_t attempt = 0;        ///< Surge-Delivery-Attempt; 0 when absent or not an integer
  int64_t received_at_ms = 0; ///< unix milliseconds when answered
  std::string body;           ///< as received
};

/// Webhook POSTs by outcome.
struct counts {
  uint64_t received = 0;  ///< answered 200 (recorded)
  uint64_t rejected = 0;  ///< answered 400: bad signature
  uint64_t failed = 0;    ///< answered 500 (mode fail)
  uint64_t timed_out = 0; ///< held unanswered, then closed (mode timeout)
  uint64_t dropped = 0;   ///< closed unanswered (mode down)
};

std::string_view header(const request& req, std::string_view name) {
  const auto v = req[beast::string_view{name.data(), name.size()}];
  return {v.data(), v.size()};
}

response make(http::status status, std::string body) {
  response res{status, 11};
  if (status != http::status::no_content) {
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
  }
  return res;
}

response error(http::status status, std::string_view message) {
  return make(status, json::writer{}.begin_object().member("error", message).end_object().take());
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The mode, the log and the counts of one sink. Owned by its I/O thread: only that thread's
/// handlers touch it, so it needs no lock.
class state {
 public:
  explicit state(const options& o)
      : secret_(o.secret)
      , tolerance_(o.tolerance)
      , mode_(o.initial)
      , delay_(o.delay) {}

  mode current() const { return mode_; }
  std::chrono::milliseconds delay() const { return delay_; }

  /// A request to a control path, or nullopt when `path` is not one.
  std::optional<response> control(const request& req, std::string_view path) {
    const http::verb v = req.method();
    if (path == "/_events") {
      if (v == http::verb::get) {
        return events();
      }
      if (v == http::verb::delete_) {
        log_.clear();
        return make(http::status::no_content, {});
      }
      return not_allowed("GET, DELETE");
    }
    if (path == "/_stats") {
      return v == http::verb::get ? stats() : not_allowed("GET");
    }
    if (path == "/_mode") {
      return v == http::verb::put ? set_mode(req.body()) : not_allowed("PUT");
    }
    return std::nullopt;
  }

  /// A webhook POST answered now (mode ok, or slow once its delay has passed): 400 when its
  /// signature does not pass, else recorded and 200.
  response deliver(const request& req, std::string_view path) {
    const std::string_view event_id = header(req, "Surge-Event-Id");
    if (!secret_.empty()) {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      const signature_check c =
          check_signature(header(req, "Surge-Signature"), req.body(), secret_, now, tolerance_);
      if (c != signature_check::ok) {
        ++counts_.rejected;
        say(path, event_id, std::string{"rejected: signature "} + to_string(c));
        return error(http::status::bad_request, "bad signature");
      }
    }
    event e;
    e.seq = next_seq_++;
    e.event_id = std::string{event_id};
    e.type = std::string{header(req, "Surge-Event-Type")};
    e.attempt = tools::cli::to_integer<int64_t>(header(req, "Surge-Delivery-Attempt")).value_or(0);
    e.received_at_ms = unix_ms();
    e.body = req.body();
    const auto parsed = json::parse(e.body);
    if (const auto* body = std::get_if<json::value>(&parsed); body != nullptr) {
      if (const json::value* o = body->find("order_id"); o != nullptr && o->is_string()) {
        e.order_id = std::get<std::string>(o->get());
      }
    }
    log_.push_back(std::move(e));
    ++counts_.received;
    say(path, event_id, "received");
    return make(http::status::ok, R"({"received":true})");
  }

  /// Counts a webhook POST that is not answered 200 or 400, and logs it.
  void count_failed(std::string_view path, const request& req) {
    ++counts_.failed;
    say(path, header(req, "Surge-Event-Id"), "failed (500)");
  }
  void count_timed_out(std::string_view path, const request& req) {
    ++counts_.timed_out;
    say(path, header(req, "Surge-Event-Id"), "held without an answer (timeout)");
  }
  void count_dropped(std::string_view path, const request& req) {
    ++counts_.dropped;
    say(path, header(req, "Surge-Event-Id"), "closed without an answer (down)");
  }

 private:
  response events() const {
    json::writer w{256 * log_.size() + 2};
    w.begin_array();
    for (const event& e : log_) {
      w.begin_object()
          .member("seq", e.seq)
          .member("event_id", e.event_id)
          .member("type", e.type)
          .member("order_id", e.order_id)
          .member("attempt", e.attempt)
          .member("received_at_ms", e.received_at_ms)
          .member("body", e.body)
          .end_object();
    }
    w.end_array();
    return make(http::status::ok, w.take());
  }

  response stats() const {
    return make(http::status::ok, json::writer{}
                                      .begin_object()
                                      .member("received", counts_.received)
                                      .member("rejected", counts_.rejected)
                                      .member("failed", counts_.failed)
                                      .member("timed_out", counts_.timed_out)
                                      .member("dropped", counts_.dropped)
                                      .end_object()
                                      .take());
  }

  /// PUT /_mode {"mode":"fail","delay_ms":5000}: delay_ms optional (the delay stays).
  response set_mode(const std::string& body) {
    const auto parsed = json::parse(body);
    const auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || !v->is_object()) {
      return error(http::status::bad_request, "the body must be a JSON object");
    }
    const json::value* m = v->find("mode");
    const auto named =
        m != nullptr && m->is_string() ? mode_named(std::get<std::string>(m->get())) : std::nullopt;
    if (!named) {
      return error(http::status::bad_request,
                   "\"mode\" must be one of ok, fail, timeout, slow, down");
    }
    std::chrono::milliseconds delay = delay_;
    if (const json::value* d = v->find("delay_ms"); d != nullptr) {
      if (!d->is_int() || std::get<int64_t>(d->get()) < 0 ||
          std::get<int64_t>(d->get()) > max_delay.count()) {
        return error(http::status::bad_request, "\"delay_ms\" must be an integer from 0 to " +
                                                    std::to_string(max_delay.count()));
      }
      delay = std::chrono::milliseconds{std::get<int64_t>(d->get())};
    }
    mode_ = *named;
    delay_ = delay;
    std::cerr << "webhook-sink: mode " << to_string(mode_) << ", delay " << delay_.count()
              << " ms\n";
    return make(http::status::ok, json::writer{}
                                      .begin_object()
                                      .member("mode", to_string(mode_))
                                      .member("delay_ms", static_cast<int64_t>(delay_.count()))
                                      .end_object()
                                      .take());
  }

  static response not_allowed(const char* allow) {
    response res = error(http::status::method_not_allowed, "method not allowed");
    res.set(http::field::allow, allow);
    return res;
  }

  static void say(std::string_view path, std::string_view event_id, const std::string& what) {
    std::string line = "webhook-sink: POST ";
    line += path;
    line += ' ';
    line += event_id.empty() ? std::string_view{"(no Surge-Event-Id)"} : event_id;
    line += ": ";
    line += what;
    line += '\n';
    std::cerr << line;
  }

  const std::string secret_;
  const std::chrono::seconds tolerance_;

  mode mode_;
  std::chrono::milliseconds delay_;
  std::vector<event> log_;
  counts counts_;
  int64_t next_seq_ = 1; ///< never reused, also after DELETE /_events
};

/// One client connection: reads requests one at a time and answers each as `state` says, on
/// the I/O thread (one thread: no strand needed). Its handlers hold it alive.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(tcp::socket s, state& st)
      : stream_(std::move(s))
      , timer_(stream_.get_executor())
      , state_(st) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(body_limit);
    stream_.expires_after(io_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) {
                         return self->close();
                       }
                       self->stream_.expires_never();
                       self->on_request(self->parser_->release());
                     });
  }

 private:
  void on_request(request req) {
    req_ = std::move(req);
    const std::string_view target{req_.target().data(), req_.target().size()};
    path_ = std::string{target.substr(0, target.find('?'))};
    if (auto res = state_.control(req_, path_)) {
      return send(std::move(*res));
    }
    if (req_.method() != http::verb::post) {
      response res = error(http::status::method_not_allowed, "method not allowed");
      res.set(http::field::allow, "POST");
      return send(std::move(res));
    }
    switch (state_.current()) {
    case mode::ok:
      return send(state_.deliver(req_, path_));
    case mode::fail:
      state_.count_failed(path_, req_);
      return send(error(http::status::internal_server_error, "failing on demand"));
    case mode::slow:
      return after(state_.delay(),
                   [](connection& c) { c.send(c.state_.deliver(c.req_, c.path_)); });
    case mode::timeout:
      state_.count_timed_out(path_, req_);
      return after(state_.delay(), [](connection& c) { c.close(); });
    case mode::down:
      state_.count_dropped(path_, req_);
      return close();
    }
  }

  /// Runs `then` on this connection after `delay`, unless it has been closed by then.
  template <class F>
  void after(std::chrono::milliseconds delay, F then) {
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this(), then](beast::error_code ec) {
      if (!ec && !self->closed_) {
        then(*self);
      }
    });
  }

  void send(response res) {
    res_ = std::move(res);
    res_.keep_alive(req_.keep_alive());
    res_.prepare_payload();
    stream_.expires_after(io_timeout);
    http::async_write(stream_, res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec || !self->res_.keep_alive()) {
                          return self->close();
                        }
                        self->read();
                      });
  }

  void close() {
    if (std::exchange(closed_, true)) {
      return;
    }
    beast::error_code ignored;
    timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  state& state_;

  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  request req_;      ///< the request being answered
  std::string path_; ///< its path, without the query
  response res_;     ///< the answer being written
  bool closed_ = false;
};

} // namespace

struct sink::impl {
  explicit impl(options o)
      : opts(std::move(o))
      , st(opts) {}

  const options opts;

  state st; ///< owned by the I/O thread once it runs
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  uint16_t bound = 0; ///< set by start() before the thread runs
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        return;
      }
      if (!ec) {
        std::make_shared<connection>(std::move(s), st)->read();
      }
      accept(); // a failed accept (e.g. out of descriptors) does not stop the sink
    });
  }
};

sink::sink(options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}

sink::~sink() {
  stop();
}

std::error_code sink::start() {
  impl& s = *impl_;
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.opts.host, ec);
  if (ec) {
    return ec;
  }
  if (auto failed = net::listen_on(s.acceptor, tcp::endpoint{address, s.opts.port})) {
    return failed;
  }
  s.bound = s.acceptor.local_endpoint().port();
  s.accept();
  s.thread = std::thread{[&s] { s.ioc.run(); }};
  return {};
}

uint16_t sink::port() const {
  return impl_->bound;
}

void sink::stop() {
  impl& s = *impl_;
  if (!s.thread.joinable()) {
    return;
  }
  asio::post(s.ioc, [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
  });
  s.ioc.stop();
  s.thread.join();
}

} // namespace surge::webhook_sink
