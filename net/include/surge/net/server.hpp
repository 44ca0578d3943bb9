#pragma once

#include <memory>
#include <system_error>

#include "surge/net/http.hpp"

namespace surge::net {

/// An asynchronous HTTP/1.1 server (Boost.Beast) on its own I/O threads, with keep-alive.
///
/// Each request is read within `read_timeout` under the size limits of server_options; a
/// request that breaks a limit or HTTP/1.1's framing rules (exactly one Host; no
/// Transfer-Encoding but `chunked`) gets its 4xx in API.md's error shape, one that is not whole
/// in time gets 408 `timeout`, and the connection is closed. A kept-alive connection with no
/// byte of a next request within `idle_timeout` is closed without an answer. Each request
/// carries its connection's remote address (`http_request::peer`) and its id
/// (`http_request::request_id`: the X-Request-Id sent when valid, else a new one, request_id.hpp);
/// once a request's header is whole, every response to it (the server's own 4xx, 408, 500 and
/// 503 too) carries `X-Request-Id`.
/// A good request goes to the handler; its responder may be called from any thread, and is
/// answered 503 `unavailable` if not called within `handler_timeout`. Responses on one
/// connection go out in request order (no pipelining: one request at a time per connection).
///
/// Lifecycle: start() binds and starts the threads; stop() stops accepting, lets in-flight
/// requests finish for up to `grace`, closes the rest and joins the threads. Not copyable.
class http_server {
 public:
  http_server(server_options opts, handler h);
  ~http_server(); ///< stop()
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and listens. Returns the error when the address cannot be bound.
  std::error_code start();

  /// The bound port (useful with port 0). Valid after a successful start().
  uint16_t port() const;

  /// From now on every response carries `Connection: close`, so that a client (a load balancer)
  /// opens its next connection afresh, to a member that is still ready, rather than reusing one
  /// that stop() will close. Still accepts and serves; kept-alive connections stay open until
  /// their next response. Idempotent; any thread.
  void drain();

  /// Idempotent; also run by the destructor (with no grace). Responses written during the grace
  /// period carry `Connection: close`; after stop() returns, responders do nothing.
  /// REQUIRES: not called from a handler or other I/O-thread code (it joins those threads).
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds{5000});

  /// Connections open right now, and responses sent so far (including 4xx/503 from the server
  /// itself). Both are safe to read from any thread.
  std::size_t open_connections() const;
  uint64_t requests_served() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace surge::net
