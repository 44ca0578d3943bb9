#include "surge/net/server.hpp"
#include "surge/net/beast.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>
#include <unordered_map>
#include <vector>

#include "parser_detail.hpp"
#include "surge/net/request_id.hpp"

namespace surge::net {

namespace {

class session;

/// The session whose handler call (session::handle) is running on this thread, if any: a
/// responder called there runs on that session's strand already, so it answers inline instead
/// of posting to the strand.
thread_local session* handling_here = nullptr;

/// Closed by stop() once the I/O threads have been joined; from then on responders do nothing.
/// Responders lock it while they touch a session, so no session is used after the server's
/// io_context is gone.
struct responder_gate {
  std::mutex mu;
  bool open = true;
};

/// A header name or value the server writes: not empty, no line break.
bool safe_header_text(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos && !s.empty();
}

/// Upper bound on what a lingering close reads and discards after a final error response.
constexpr std::size_t drain_limit = 1024 * 1024;
constexpr std::chrono::milliseconds drain_timeout{1000};

/// Everything one server owns; http_server::impl is this (sessions need to name it).
struct server_state {
  server_state(server_options opts, handler h)
      : opts_(std::move(opts))
      , handler_(std::move(h)) {}

  void do_accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);
  void run_io_thread();
  void release_in_flight();
  template <class F>
  void for_each_session(F f);
  void stop(std::chrono::milliseconds grace);

  // Set at construction, read-only afterwards.
  const server_options opts_;
  const handler handler_;

  // State that sessions touch, also from their destructors: declared before ioc_ so that it
  // outlives the handlers the io_context destroys.
  std::atomic<std::size_t> open_{0};
  std::atomic<uint64_t> served_{0};
  std::atomic<std::size_t> in_flight_{0}; ///< requests handed to the handler, not yet written
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false}; ///< drain(): responses carry Connection: close
  std::mutex in_flight_mu_;
  std::condition_variable in_flight_cv_; ///< notified when in_flight_ drops to 0
  std::mutex sessions_mu_;
  std::unordered_map<session*, std::weak_ptr<session>> sessions_; ///< guarded by sessions_mu_
  const std::shared_ptr<responder_gate> gate_ = std::make_shared<responder_gate>();

  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_{asio::make_strand(ioc_)}; ///< used on its own strand only
  asio::steady_timer accept_retry_{acceptor_.get_executor()};
  std::vector<std::thread> threads_;

  // Lifecycle, guarded by lifecycle_mu_ (start/stop callers, never I/O threads).
  std::mutex lifecycle_mu_;
  bool started_ = false;
  bool stopped_ = false;
  uint16_t port_ = 0;
};

/// The stream_sink of a streamed response: forwards to its session's strand. Thread-safe.
class sink final : public stream_sink {
 public:
  sink(std::weak_ptr<session> s, std::shared_ptr<responder_gate> gate)
      : session_(std::move(s))
      , gate_(std::move(gate)) {}

  bool send(std::string data) override;
  void close() override;
  bool open() const override { return open_.load(); }
  void on_close(std::function<void()> f) override {
    {
      std::lock_guard lk(mu_);
      if (open_.load()) {
        on_close_ = std::move(f);
        return;
      }
    }
    if (f) {
      f();
    }
  }

  /// On the session's strand, once: the stream has ended; runs the on_close callback.
  void ended() {
    std::function<void()> f;
    {
      std::lock_guard lk(mu_);
      open_.store(false);
      f = std::move(on_close_);
    }
    if (f) {
      f();
    }
  }

 private:
  /// Runs `f(session&)` on the session's strand, unless the stream or the server has ended.
  template <class F>
  bool post(F f);

  const std::weak_ptr<session> session_;
  const std::shared_ptr<responder_gate> gate_;
  std::atomic<bool> open_{true};
  std::mutex mu_; ///< guards on_close_ and open_'s change to false
  std::function<void()> on_close_;
};

/// One connection. All members are used on the connection's strand only, except where noted.
/// Owned by the asynchronous operations in flight (shared_ptr); responders hold a weak_ptr.
class session : public std::enable_shared_from_this<session> {
 public:
  session(server_state& srv, tcp::socket&& socket)
      : srv_(srv)
      , peer_(peer_of(socket))
      , stream_(std::move(socket))
      , watchdog_(stream_.get_executor())
      , handler_timer_(stream_.get_executor()) {
    srv_.open_.fetch_add(1);
  }

  ~session() {
    {
      std::lock_guard lk(srv_.sessions_mu_);
      srv_.sessions_.erase(this);
    }
    srv_.open_.fetch_sub(1);
  }

  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Any thread: registers the session and starts reading on its strand.
  void start() {
    {
      std::lock_guard lk(srv_.sessions_mu_);
      srv_.sessions_.emplace(this, weak_from_this());
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_request(); });
  }

  /// Any thread: closes the connection if it is waiting for a next request or streaming a
  /// response (stop() begins).
  void close_if_idle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->state_ == state::idle || self->state_ == state::streaming) {
        self->close();
      }
    });
  }

  /// The connection's strand.
  auto executor() { return stream_.get_executor(); }

  /// Any thread: closes the connection whatever it is doing; `token` is released afterwards.
  void close_now(std::shared_ptr<void> token) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), token = std::move(token)] { self->close(); });
  }

  /// On the strand: the sink's send() (see stream_sink).
  void stream_push(std::string data) {
    if (state_ != state::streaming || stream_ending_ || data.empty()) {
      return;
    }
    std::size_t framed = data.size();
    char size_line[24];
    int size_len = 0;
    if (chunked_) {
      size_len = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
      framed += static_cast<std::size_t>(size_len) + 2;
    }
    if (pending_.size() + writing_.size() + framed > srv_.opts_.stream_queue_limit) {
      close(); // the client does not read: dropped
      return;
    }
    if (chunked_) {
      pending_.append(size_line, static_cast<std::size_t>(size_len)).append(data).append("\r\n");
    } else if (pending_.empty()) {
      pending_ = std::move(data);
    } else {
      pending_.append(data);
    }
    stream_flush();
  }

  /// On the strand: the sink's close(): the last chunk after what is queued, then the close.
  void stream_end() {
    if (state_ != state::streaming || stream_ending_) {
      return;
    }
    stream_ending_ = true;
    if (chunked_) {
      pending_.append("0\r\n\r\n");
    }
    stream_flush();
  }

 private:
  enum class state { idle, reading, handling, writing, draining, streaming, closed };

  static ip_address peer_of(const tcp::socket& socket) {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (ec) {
      return {};
    }
    const auto addr = ep.address();
    if (addr.is_v4()) {
      return ip_address::v4(addr.to_v4().to_uint());
    }
    ip_address out;
    out.bytes = addr.to_v6().to_bytes(); // an IPv4-mapped one is IPv4 by ip_address's form
    return out;
  }

  /// The next request: the first one of a connection must arrive whole within read_timeout; on
  /// a kept-alive connection the wait for its first byte is bounded by idle_timeout instead
  /// (and closes silently), then the request must be whole within read_timeout.
  void read_request() {
    if (state_ == state::closed) {
      return;
    }
    if (srv_.stopping_.load() && !first_) {
      close();
      return;
    }
    if (first_ || buffer_.size() > 0) {
      read_header();
      return;
    }
    state_ = state::idle;
    set_deadline(srv_.opts_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (self->state_ == state::closed) {
                                return;
                              }
                              if (ec) {
                                self->close();
                                return;
                              }
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    state_ = state::reading;
    request_id_.clear();
    parser_.emplace();
    detail::configure_parser(*parser_, srv_.opts_);
    arm_read_deadline();
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  /// The request now being read must be whole by read_timeout from now.
  void arm_read_deadline() {
    read_timed_out_ = false;
    set_deadline(srv_.opts_.read_timeout);
  }

  /// What the session waits for now (idle: a next request's first byte; reading: the rest of
  /// the request; writing; draining) must be done within `d` from now, or on_watchdog() acts.
  /// The stream's own timeouts are not used: each operation would arm and cancel a timer (a
  /// lock of the reactor's timer queue and a completion on the strand, several per request),
  /// and on expiry they close the socket, so that a 408 could not be sent. Instead one timer
  /// per session stays armed no later than the deadline, and moving the deadline later costs
  /// only a clock read: the timer finds it moved when it fires, and waits again.
  void set_deadline(std::chrono::milliseconds d) {
    deadline_ = std::chrono::steady_clock::now() + d;
    if (!watchdog_armed_ || deadline_ < watchdog_.expiry()) {
      arm_watchdog(deadline_);
    }
  }

  /// Nothing is due (a handler has the request; the handler timeout covers it).
  void clear_deadline() { deadline_ = std::chrono::steady_clock::time_point::max(); }

  void arm_watchdog(std::chrono::steady_clock::time_point at) {
    watchdog_armed_ = true;
    ++watchdog_round_;
    watchdog_.expires_at(at); // a pending wait ends with operation_aborted, as an old round
    watchdog_.async_wait(
        [self = shared_from_this(), round = watchdog_round_](const beast::error_code& ec) {
          if (round != self->watchdog_round_) {
            return; // superseded by a re-arm
          }
          self->watchdog_armed_ = false;
          if (ec || self->state_ == state::closed) {
            return;
          }
          self->on_watchdog();
        });
  }

  void on_watchdog() {
    const auto now = std::chrono::steady_clock::now();
    if (now < deadline_) {
      if (deadline_ != std::chrono::steady_clock::time_point::max()) {
        // Not due yet: wake no later than it, nor much later than a next deadline could be.
        arm_watchdog(
            std::min(deadline_, now + std::min(srv_.opts_.read_timeout, srv_.opts_.idle_timeout)));
      }
      return; // nothing due: set_deadline() arms it again
    }
    clear_deadline();
    switch (state_) {
    case state::reading: {
      // Interrupts the read (or the 100 Continue write); its completion answers 408.
      read_timed_out_ = true;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      break;
    }
    case state::idle:      // a kept-alive connection without a next request: closed silently
    case state::writing:   // the client does not read
    case state::streaming: // the client does not read the stream
    case state::draining:  // the lingering close is over
      close();
      break;
    case state::handling:
    case state::closed:
      break;
    }
  }

  /// The request was not whole in time: 408 `timeout`, then the connection closes.
  void answer_timeout() {
    write_response(error_response(408, "timeout",
                                  "the request did not arrive within " +
                                      std::to_string(srv_.opts_.read_timeout.count()) + " ms"),
                   true);
  }

  /// Once the request's header is in: its id (the X-Request-Id sent, when valid and sent once,
  /// else a new one), for the handler and every response to it.
  void take_request_id() {
    if (!request_id_.empty() || !parser_ || !parser_->is_header_done()) {
      return;
    }
    const auto& fields = parser_->get();
    std::optional<std::string_view> sent;
    if (fields.count("X-Request-Id") == 1) {
      const auto v = fields["X-Request-Id"];
      sent = std::string_view{v.data(), v.size()};
    }
    request_id_ = request_id_for(sent);
  }

  /// True when a read completing with `ec` ends here: the session is closed already, or the read
  /// failed (then answered by on_read_error()).
  bool read_ended(const beast::error_code& ec) {
    if (state_ == state::closed) {
      return true;
    }
    take_request_id();
    if (ec) {
      on_read_error(ec);
    }
    return static_cast<bool>(ec);
  }

  void on_header(const beast::error_code& ec) {
    if (read_ended(ec)) {
      return;
    }
    if (auto r = detail::check_header(parser_->get(), srv_.opts_)) {
      write_response(std::move(*r), true);
      return;
    }
    if (parser_->is_done()) {
      on_body({});
      return;
    }
    if (read_timed_out_) {
      answer_timeout(); // the deadline passed as the header came in: the body is late
      return;
    }
    const auto& h = parser_->get();
    if (h.version() >= 11 && beast::iequals(h[http::field::expect], "100-continue")) {
      static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(continue_line.data(), continue_line.size()),
                        [self = shared_from_this()](beast::error_code wec, std::size_t) {
                          if (self->state_ == state::closed) {
                            return;
                          }
                          if (self->read_timed_out_) {
                            self->answer_timeout();
                            return;
                          }
                          if (wec) {
                            self->close();
                            return;
                          }
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  /// Read failures: a broken limit or malformed request gets its 4xx, a request not whole by
  /// its deadline 408, and the connection is closed; end of stream and socket errors just close.
  void on_read_error(const beast::error_code& ec) {
    if (read_timed_out_) {
      answer_timeout();
      return;
    }
    const bool parse_failure =
        ec.category() == http::make_error_code(http::error::need_more).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (!parse_failure) {
      close();
      return;
    }
    const auto data = buffer_.data();
    const std::string_view buffered(static_cast<const char*>(data.data()), data.size());
    write_response(detail::parse_error_response(ec, buffered, srv_.opts_), true);
  }

  void on_body(const beast::error_code& ec) {
    if (read_ended(ec)) {
      return;
    }
    version_ = parser_->get().version();
    head_ = parser_->get().method() == http::verb::head;
    auto converted = detail::to_request(parser_->release());
    parser_.reset();
    if (auto* bad = std::get_if<http_response>(&converted)) {
      write_response(std::move(*bad), true);
      return;
    }
    auto& req = std::get<http_request>(converted);
    req.peer = peer_;
    req.request_id = request_id_;
    keep_alive_ = req.keep_alive;
    handle(std::move(req));
  }

  /// Hands the request to the handler with a responder. An answer given inside the handler
  /// call is written at once; otherwise the handler timeout is armed and the answer is posted
  /// to the strand.
  void handle(http_request&& req) {
    state_ = state::handling;
    clear_deadline();
    ++seq_;
    counted_ = true;
    srv_.in_flight_.fetch_add(1);
    auto answered = std::make_shared<std::atomic<bool>>(false);

    responder respond = [weak = weak_from_this(), raw = this, gate = srv_.gate_, seq = seq_,
                         answered](http_response resp) {
      if (answered->exchange(true)) {
        return; // answered already, or timed out
      }
      if (handling_here == raw) {
        // Inside raw's handle() on this thread: raw is alive and on its strand.
        raw->inline_answer_.emplace(std::move(resp));
        return;
      }
      std::lock_guard lk(gate->mu);
      if (!gate->open) {
        return;
      }
      if (auto s = weak.lock()) {
        auto ex = s->stream_.get_executor();
        asio::post(ex, [s = std::move(s), seq, resp = std::move(resp)]() mutable {
          s->deliver(seq, std::move(resp));
        });
      }
    };

    handling_here = this;
    try {
      srv_.handler_(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      if (!answered->exchange(true)) {
        inline_answer_.emplace(
            error_response(500, "internal", std::string("handler failed: ") + e.what()));
      }
    } catch (...) {
      if (!answered->exchange(true)) {
        inline_answer_.emplace(error_response(500, "internal", "handler failed"));
      }
    }
    handling_here = nullptr;
    if (inline_answer_) {
      auto resp = std::move(*inline_answer_);
      inline_answer_.reset();
      deliver(seq_, std::move(resp));
      return;
    }
    if (answered->load()) {
      return; // answered from another thread: the answer is posted to the strand already
    }
    handler_timer_.expires_after(srv_.opts_.handler_timeout);
    handler_timer_.async_wait(
        [self = shared_from_this(), seq = seq_, answered](const beast::error_code& ec) {
          if (ec || answered->exchange(true)) {
            return;
          }
          self->deliver(seq,
                        error_response(503, "unavailable", "the request was not answered in time"));
        });
  }

  /// On the strand: writes the handler's (or the timeout's) answer to request `seq`.
  void deliver(uint64_t seq, http_response resp) {
    if (seq != seq_ || state_ != state::handling) {
      return; // connection closed meanwhile
    }
    handler_timer_.cancel();
    write_response(std::move(resp), !keep_alive_ || srv_.stopping_.load() || srv_.draining_.load());
  }

  void write_response(http_response resp, bool close_after) {
    state_ = state::writing;
    close_after_ = close_after;
    if (resp.stream && !resp.ready) {
      start_stream(std::move(resp));
      return;
    }
    if (resp.ready) {
      write_ready(std::move(resp.ready));
      return;
    }
    // A plain response is serialized the same way, once, for this request: no Beast serializer
    // and no field allocations per header.
    write_ready(make_ready(std::move(resp)));
  }

  /// write_response() of a ready response: one gather write of [version, the rest of its head,
  /// this request's header lines, its body], the ready parts not copied.
  void write_ready(std::shared_ptr<const ready_response> r) {
    ready_ = std::move(r);
    own_lines_.clear();
    if (!request_id_.empty()) {
      own_lines_.append("X-Request-Id: ").append(request_id_).append("\r\n");
    }
    // What Beast's keep_alive() writes: HTTP/1.1 says close, HTTP/1.0 says keep-alive.
    if (version_ >= 11 && close_after_) {
      own_lines_.append("Connection: close\r\n");
    } else if (version_ < 11 && !close_after_) {
      own_lines_.append("Connection: keep-alive\r\n");
    }
    own_lines_.append(ready_->length_line).append("\r\n");
    static constexpr std::string_view v11 = "HTTP/1.1", v10 = "HTTP/1.0";
    const std::string_view version = version_ >= 11 ? v11 : v10;
    const std::string_view rest = std::string_view{ready_->head}.substr(version.size());
    const std::array<asio::const_buffer, 4> buffers{
        asio::buffer(version.data(), version.size()), asio::buffer(rest.data(), rest.size()),
        asio::buffer(own_lines_),
        head_ ? asio::const_buffer{} : asio::buffer(ready_->body)}; // HEAD: no body
    srv_.served_.fetch_add(1); // counted before the client can see it
    set_deadline(srv_.opts_.read_timeout);
    asio::async_write(stream_, buffers,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->ready_.reset();
                        self->on_write(ec);
                      });
  }

  void on_write(const beast::error_code& ec) {
    release_request();
    if (state_ == state::closed) {
      return;
    }
    if (ec) {
      close();
      return;
    }
    if (close_after_) {
      linger_close();
      return;
    }
    first_ = false;
    read_request();
  }

  /// Half-closes and reads (and drops) what the client still sends, for a bounded time, so that
  /// the final response is not lost to a reset.
  void linger_close() {
    state_ = state::draining;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    set_deadline(drain_timeout);
    discard_input();
  }

  /// Reads and drops what the client sends until it closes the connection or a read fails, then
  /// closes the session; more than drain_limit bytes in all close it too. Holds no buffer while
  /// it waits (a streaming connection waits for hours): it waits for the socket to be readable,
  /// then reads into the stack.
  void discard_input() {
    stream_.socket().async_wait(
        tcp::socket::wait_read, [self = shared_from_this()](const beast::error_code& ec) {
          if (self->state_ == state::closed) {
            return;
          }
          if (ec) {
            self->close();
            return;
          }
          auto& socket = self->stream_.socket();
          beast::error_code rec;
          socket.non_blocking(true, rec);
          std::array<char, 2048> scratch;
          for (;;) {
            const std::size_t n = socket.read_some(asio::buffer(scratch), rec);
            if (rec == asio::error::would_block || rec == asio::error::try_again) {
              break;
            }
            self->drained_ += n;
            if (rec || n == 0 || self->drained_ > drain_limit) {
              self->close(); // the client closed (or failed, or sends too much)
              return;
            }
          }
          self->discard_input();
        });
  }

  /// write_response() of a streamed response: the head (chunked on HTTP/1.1, close-delimited
  /// on HTTP/1.0), then the body from the sink given to resp.stream. The request is no longer
  /// in flight; what the request needed (parser, read buffer, id) is released, so that an open
  /// stream holds little more than its socket, timers and queue.
  void start_stream(http_response resp) {
    auto producer = std::move(resp.stream);
    resp.stream = nullptr;
    const auto r = make_ready(std::move(resp));
    chunked_ = version_ >= 11;
    std::string& head = pending_;
    head.assign(version_ >= 11 ? "HTTP/1.1" : "HTTP/1.0");
    head.append(std::string_view{r->head}.substr(8));
    if (!request_id_.empty()) {
      head.append("X-Request-Id: ").append(request_id_).append("\r\n");
    }
    head.append(chunked_ ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    head.append("\r\n");
    buffer_ = beast::flat_buffer{}; // anything pipelined after the request is dropped
    request_id_ = std::string{};
    own_lines_ = std::string{};
    srv_.served_.fetch_add(1);
    release_request();
    state_ = state::streaming;
    if (head_) {
      stream_ending_ = true; // HEAD: the head alone
      stream_flush();
      return;
    }
    sink_ = std::make_shared<sink>(weak_from_this(), srv_.gate_);
    stream_flush();
    discard_input(); // sees the client close
    try {
      producer(sink_);
    } catch (...) {
      stream_end(); // a producer that throws ends its stream
    }
  }

  /// On the strand: writes what is pending unless a write is running; once all is written,
  /// closes after stream_end(). Each write must finish within read_timeout.
  void stream_flush() {
    if (stream_writing_ || state_ != state::streaming) {
      return;
    }
    if (pending_.empty()) {
      if (stream_ending_) {
        close();
      } else {
        clear_deadline();
      }
      return;
    }
    writing_.swap(pending_);
    pending_.clear();
    stream_writing_ = true;
    set_deadline(srv_.opts_.read_timeout);
    asio::async_write(stream_, asio::buffer(writing_),
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->stream_writing_ = false;
                        if (self->state_ == state::closed) {
                          return;
                        }
                        if (ec) {
                          self->close();
                          return;
                        }
                        if (self->writing_.capacity() > 1024) {
                          self->writing_ = std::string{}; // a burst's buffer is not kept
                        } else {
                          self->writing_.clear();
                        }
                        self->stream_flush();
                      });
  }

  void release_request() {
    if (counted_) {
      counted_ = false;
      srv_.release_in_flight();
    }
  }

  void close() {
    if (state_ == state::closed) {
      return;
    }
    state_ = state::closed;
    release_request();
    if (auto s = std::move(sink_)) {
      s->ended();
    }
    watchdog_.cancel();
    handler_timer_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  server_state& srv_;
  const ip_address peer_; ///< the remote address, for every request of the connection
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<detail::beast_parser> parser_;
  /// X-Request-Id of the request being read or handled (request_id.hpp), echoed in every
  /// response to it; empty until its header is in (a 408 or 400 before that carries none).
  std::string request_id_;
  asio::steady_timer watchdog_; ///< armed no later than deadline_ (set_deadline)
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  uint64_t watchdog_round_ = 0; ///< number of the watchdog's latest wait
  bool watchdog_armed_ = false; ///< a wait of round watchdog_round_ is pending
  asio::steady_timer handler_timer_;
  std::shared_ptr<const ready_response> ready_; ///< being written (write_ready)
  std::string own_lines_;                       ///< the request's own header lines of ready_
  /// The answer given inside the handler call (handle), written when that call returns.
  std::optional<http_response> inline_answer_;
  std::size_t drained_ = 0; ///< bytes dropped by discard_input()
  /// Streaming (start_stream): the sink given to the producer (reset when the stream ends), the
  /// bytes queued and not yet written, and those being written.
  std::shared_ptr<sink> sink_;
  std::string pending_;
  std::string writing_;
  bool chunked_ = false;        ///< the stream's pieces are sent as chunks (HTTP/1.1)
  bool stream_writing_ = false; ///< a write of writing_ is running
  bool stream_ending_ = false;  ///< stream_end() ran (or HEAD): close once all is written
  uint64_t seq_ = 0;            ///< number of the request being handled; responders carry theirs
  unsigned version_ = 11;       ///< HTTP version of the current request
  bool head_ = false;           ///< the current request is a HEAD
  bool keep_alive_ = true;      ///< what the current request asked for
  bool close_after_ = false;
  bool counted_ = false;        ///< the current request is counted in in_flight_
  bool first_ = true;           ///< no request answered yet on this connection
  bool read_timed_out_ = false; ///< the request being read missed its deadline
  state state_ = state::reading;
};

template <class F>
bool sink::post(F f) {
  if (!open_.load()) {
    return false;
  }
  std::lock_guard lk(gate_->mu);
  if (!gate_->open) {
    return false;
  }
  auto s = session_.lock();
  if (!s) {
    return false;
  }
  auto ex = s->executor();
  asio::post(ex, [s = std::move(s), f = std::move(f)]() mutable { f(*s); });
  return true;
}

bool sink::send(std::string data) {
  return post([data = std::move(data)](session& s) mutable { s.stream_push(std::move(data)); });
}

void sink::close() {
  post([](session& s) { s.stream_end(); });
}

} // namespace

std::shared_ptr<const ready_response> make_ready(http_response resp) {
  // The bytes Beast's serializer wrote for the plain response (tests/net/server_test.cpp keeps
  // them pinned): status line, Server, Content-Type, the extra headers in order.
  auto r = std::make_shared<ready_response>();
  r->status = resp.status < 200 || resp.status > 599 ? 500 : resp.status;
  const auto reason = http::obsolete_reason(static_cast<http::status>(r->status));
  r->head.append("HTTP/1.1 ").append(std::to_string(r->status)).append(" ");
  r->head.append(reason.data(), reason.size()).append("\r\nServer: surge\r\n");
  const bool no_body = r->status == 204 || r->status == 304;
  if (!no_body && safe_header_text(resp.content_type)) {
    r->head.append("Content-Type: ").append(resp.content_type).append("\r\n");
  }
  for (const auto& [name, value] : resp.headers) {
    // The server's own lines per request; a handler's would be replaced there.
    const bool own = beast::iequals(name, "X-Request-Id") || beast::iequals(name, "Connection") ||
                     beast::iequals(name, "Content-Length") ||
                     beast::iequals(name, "Transfer-Encoding");
    if (!own && safe_header_text(name) && value.find_first_of("\r\n") == std::string::npos) {
      r->head.append(name).append(": ").append(value).append("\r\n");
    }
  }
  if (!no_body) {
    r->body = std::move(resp.body);
  }
  r->content_type = std::move(resp.content_type);
  r->headers = std::move(resp.headers);
  // Beast's prepare_payload() writes Content-Length: 0 for 204 and 304 too.
  r->length_line = "Content-Length: " + std::to_string(r->body.size()) + "\r\n";
  return r;
}

struct http_server::impl : server_state {
  using server_state::server_state;
};

void server_state::do_accept() {
  acceptor_.async_accept(asio::make_strand(ioc_),
                         [this](const beast::error_code& ec, tcp::socket socket) {
                           on_accept(ec, std::move(socket));
                         });
}

void server_state::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
    return;
  }
  if (ec) {
    // E.g. out of file descriptors: back off briefly instead of spinning.
    accept_retry_.expires_after(std::chrono::milliseconds(50));
    accept_retry_.async_wait([this](const beast::error_code& tec) {
      if (!tec && acceptor_.is_open()) {
        do_accept();
      }
    });
    return;
  }
  beast::error_code ignored;
  if (stopping_.load() || open_.load() >= opts_.max_connections) {
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  } else {
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<session>(*this, std::move(socket))->start();
  }
  do_accept();
}

void server_state::run_io_thread() {
  pthread_setname_np(pthread_self(), opts_.thread_name.substr(0, 15).c_str());
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (...) {
      // A completion handler threw; the connection it belonged to is gone. Keep serving.
    }
  }
}

void server_state::release_in_flight() {
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lk(in_flight_mu_);
    in_flight_cv_.notify_all();
  }
}

template <class F>
void server_state::for_each_session(F f) {
  std::vector<std::shared_ptr<session>> all;
  {
    std::lock_guard lk(sessions_mu_);
    all.reserve(sessions_.size());
    for (auto& [ptr, weak] : sessions_) {
      if (auto s = weak.lock()) {
        all.push_back(std::move(s));
      }
    }
  }
  for (auto& s : all) {
    f(*s);
  }
}

void server_state::stop(std::chrono::milliseconds grace) {
  std::lock_guard lk(lifecycle_mu_);
  if (!started_ || stopped_) {
    return;
  }
  stopped_ = true;
  stopping_.store(true);
  const auto deadline = std::chrono::steady_clock::now() + grace;

  // 1. Stop accepting; close connections that wait for a next request.
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    accept_retry_.cancel();
    acceptor_.close(ignored);
  });
  for_each_session([](session& s) { s.close_if_idle(); });

  // 2. Let requests in flight finish (their responses carry Connection: close).
  {
    std::unique_lock ul(in_flight_mu_);
    while (in_flight_.load() != 0 && std::chrono::steady_clock::now() < deadline) {
      in_flight_cv_.wait_until(
          ul, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(10)));
    }
  }

  // 3. Close everything left, wait (bounded) until the strands have done so, then stop.
  auto closed = std::make_shared<std::promise<void>>();
  auto all_closed = closed->get_future();
  {
    std::shared_ptr<void> token(nullptr, [closed](void*) { closed->set_value(); });
    for_each_session([&](session& s) { s.close_now(token); });
  }
  all_closed.wait_for(std::chrono::seconds(1));
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
  std::lock_guard glk(gate_->mu);
  gate_->open = false;
}

http_server::http_server(server_options opts, handler h)
    : impl_(std::make_unique<impl>(std::move(opts), std::move(h))) {}

http_server::~http_server() {
  stop(std::chrono::milliseconds(0));
}

boost::system::error_code listen_on(tcp::acceptor& acceptor, const tcp::endpoint& at) {
  beast::error_code ec;
  if (!acceptor.open(at.protocol(), ec) &&
      !acceptor.set_option(asio::socket_base::reuse_address(true), ec) && !acceptor.bind(at, ec) &&
      !acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    return {};
  }
  beast::error_code ignored;
  acceptor.close(ignored);
  return ec;
}

std::error_code http_server::start() {
  impl& d = *impl_;
  std::lock_guard lk(d.lifecycle_mu_);
  if (d.started_ || d.stopped_) {
    return std::make_error_code(std::errc::operation_not_permitted);
  }
  beast::error_code ec;
  tcp::endpoint ep;
  const auto addr = asio::ip::make_address(d.opts_.host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, d.opts_.port);
  } else {
    // A host name: resolve it (start() runs on the caller's thread, not an I/O thread).
    tcp::resolver resolver(d.ioc_);
    auto results = resolver.resolve(d.opts_.host, std::to_string(d.opts_.port), ec);
    if (ec) {
      return ec;
    }
    if (results.empty()) {
      return std::make_error_code(std::errc::address_not_available);
    }
    ep = results.begin()->endpoint();
  }
  if (auto failed = listen_on(d.acceptor_, ep)) {
    return failed;
  }
  d.port_ = d.acceptor_.local_endpoint(ec).port();
  d.work_.emplace(d.ioc_.get_executor());
  d.do_accept();
  const std::size_t n = std::max<std::size_t>(1, d.opts_.io_threads);
  for (std::size_t i = 0; i < n; ++i) {
    d.threads_.emplace_back([&d] { d.run_io_thread(); });
  }
  d.started_ = true;
  return {};
}

uint16_t http_server::port() const {
  return impl_->port_;
}

void http_server::drain() {
  impl_->draining_.store(true);
}

void http_server::stop(std::chrono::milliseconds grace) {
  if (impl_) {
    impl_->stop(grace);
  }
}

std::size_t http_server::open_connections() const {
  return impl_->open_.load();
}

uint64_t http_server::requests_served() const {
  return impl_->served_.load();
}

} // namespace surge::net
