#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "surge/net/address.hpp"

namespace surge::net {

/// A parsed, size-checked HTTP request, independent of Beast.
struct http_request {
  std::string method;                            ///< "GET", "PUT", ...
  std::string path;                              ///< percent-decoded path, without the query
  std::vector<std::string> segments;             ///< path split on '/', each percent-decoded
  std::multimap<std::string, std::string> query; ///< decoded query parameters
  /// Lower-case names. Repeated lines of one name are joined with ", " in the order received
  /// (empty lines add nothing), as RFC 9110 allows for list-valued fields.
  std::map<std::string, std::string> headers;
  std::string body;
  bool keep_alive = true;
  /// The remote address of the connection (not X-Forwarded-For: see client_address()); ::
  /// when the request did not come from a socket (parse_request).
  ip_address peer;
  /// X-Request-Id (request_id.hpp): the client's when valid, else a new one. Set by the server
  /// for every request it hands to a handler (and echoed in the response); empty when the
  /// request did not come from a server (parse_request).
  std::string request_id;

  /// The header `name` (lower-case), or nullopt.
  std::optional<std::string_view> header(const std::string& name) const;
  /// The first query parameter `name`, or nullopt.
  std::optional<std::string_view> param(const std::string& name) const;
};

struct ready_response;

/// The write side of a streamed response (http_response::stream), handed to the producer once
/// the response head is on its way. Thread-safe: any thread may call any member, at any time,
/// also after the connection has gone (then they do nothing). Holding it keeps the connection's
/// few bytes of state alive, nothing of the server.
class stream_sink {
 public:
  virtual ~stream_sink() = default;
  /// Queues `data` as the next piece of the body (one chunk on HTTP/1.1; empty data sends
  /// nothing); pieces go out in the order of the calls. A client that lets more than
  /// server_options::stream_queue_limit bytes queue up, or does not take a write within
  /// read_timeout, is dropped. False when the stream has ended (then `data` is dropped).
  virtual bool send(std::string data) = 0;
  /// Ends the body after what is queued (the last chunk on HTTP/1.1) and closes the connection.
  virtual void close() = 0;
  /// False once the stream has ended: closed by the client, dropped, closed by close() or by
  /// the server's stop().
  virtual bool open() const = 0;
  /// Runs `f` once when the stream ends (at once, on this thread, when it has ended already;
  /// else on an I/O thread, where it must not block). Replaces a callback set before.
  virtual void on_close(std::function<void()> f) = 0;
};

/// A streamed body's producer: called once, on an I/O thread (must not block), right after the
/// response head has been queued.
using stream_fn = std::function<void(std::shared_ptr<stream_sink>)>;

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers; ///< extra headers
  std::string body;
  /// When set, the server sends this instead of the fields above, which then carry only
  /// `status` (== ready->status, for wrappers that count or log it). See with_ready().
  std::shared_ptr<const ready_response> ready;
  /// When set (and `ready` is not), the body is streamed: the server writes the head with no
  /// Content-Length (HTTP/1.1: `Transfer-Encoding: chunked`; HTTP/1.0: delimited by the close),
  /// ignores `body`, and hands `stream` the sink that writes the body. The connection carries no
  /// further request; it no longer counts as in flight for stop(), which closes it. A HEAD gets
  /// the head alone and `stream` is not called. Never called when the response is not sent.
  stream_fn stream;

  /// The size of the body sent to a GET (ready's when set).
  std::size_t body_size() const;
};

/// A response made once and sent as it is to many requests (cached product pages and
/// listings): the response, and its status line and fixed headers serialized once. The server
/// writes it with one gather write of [head, the request's own header lines (X-Request-Id,
/// Connection, Content-Length), body], copying neither; the bytes are those it writes for the
/// plain response. Immutable and shared: any thread may send it, for as long as it holds it.
struct ready_response {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body; ///< empty for 204 and 304 (which have no body)
  /// "HTTP/1.1 <status> <reason>\r\nServer: surge\r\n", Content-Type (unless 204/304), the
  /// extra headers in order; no blank line.
  std::string head;
  /// "Content-Length: <body size>\r\n" (0 for 204 and 304, as the server writes for them).
  std::string length_line;
};

/// The ready form of `resp` (its status, content type, extra headers and body; headers the
/// server would drop as unsafe are dropped here too). REQUIRES: resp.ready is null.
std::shared_ptr<const ready_response> make_ready(http_response resp);

/// An http_response that sends `r` (status set to r->status, nothing else).
inline http_response with_ready(std::shared_ptr<const ready_response> r) {
  http_response out;
  out.status = r->status;
  out.ready = std::move(r);
  return out;
}

/// `r` with its ready response (if any) as plain fields, ready unset: for code that reads the
/// fields rather than sending the response (tests, proxies).
inline http_response plain(http_response r) {
  if (r.ready) {
    r.status = r.ready->status;
    r.content_type = r.ready->content_type;
    r.headers = r.ready->headers;
    r.body = r.ready->body;
    r.ready.reset();
  }
  return r;
}

inline std::size_t http_response::body_size() const {
  return ready ? ready->body.size() : body.size();
}

/// API.md's error shape: {"error":{"code":...,"message":...}} with `status`.
http_response error_response(int status, std::string_view code, std::string_view message);

/// Call exactly once, from any thread. Holding it keeps nothing of the server alive: once the
/// connection has gone, calling it is a no-op.
using responder = std::function<void(http_response)>;

/// Runs on an I/O thread; must not block: it hands the work on and returns.
using handler = std::function<void(http_request&&, responder)>;

/// Limits and timeouts of one listener (the settings http.*). No defaults of their own: the
/// node fills them from its settings (runtime/wiring.hpp: storefront_server_of), tools and
/// tests from the node's defaults or explicitly.
struct server_options {
  std::string host;
  uint16_t port = 0; ///< 0: pick a free one (see http_server::port())
  std::size_t io_threads = 0;
  std::string thread_name = "surge-http"; ///< of the I/O threads (top -H, perf); 15 bytes at most
  std::size_t body_limit = 0;             ///< larger: 413 too_large
  std::size_t header_limit = 0;           ///< larger: 431 too_large
  std::size_t target_limit = 0;           ///< longer URL: 414 too_large
  /// A request must arrive whole within this (from its first byte on a kept-alive connection,
  /// from the connect otherwise), or it is answered 408 `timeout` and the connection closed.
  std::chrono::milliseconds read_timeout{};
  std::chrono::milliseconds handler_timeout{}; ///< no answer by then: 503 unavailable
  /// A kept-alive connection with no byte of a next request this long: closed without answer.
  std::chrono::milliseconds idle_timeout{};
  std::size_t max_connections = 0;
  /// Bytes a streamed response (http_response::stream) may have queued and unwritten; a client
  /// that lets more pile up is dropped.
  std::size_t stream_queue_limit = 64 * 1024;
};

} // namespace surge::net
