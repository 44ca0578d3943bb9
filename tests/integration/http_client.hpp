#pragma once

// HTTP/1.1 clients for the end-to-end tests (Boost.Beast), only ever to 127.0.0.1:
// - http_client: blocking, one keep-alive connection, every call bounded by a timeout;
// - send_all: many requests at once, one connection each, all connected before any is written
//   so that they are in flight together.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace surge::itest {

struct request {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct response {
  int status = 0;                             ///< 0: no response (see `error`)
  std::map<std::string, std::string> headers; ///< lower-case names
  std::string body;
  std::string error; ///< the transport failure when there is no response

  /// The header `lower_case_name`, or "" when absent.
  std::string header(const std::string& lower_case_name) const;
};

/// `method` `target` with a JSON body (Content-Type: application/json).
request json_request(std::string method, std::string target, std::string body);

/// `r` with one more header `name` per entry of `values`, in their order.
request with_headers(request r, const std::string& name, std::vector<std::string> values);

/// A blocking client for one port of 127.0.0.1 that keeps its connection between requests (and
/// reconnects once when a kept connection turns out closed). A request that does not complete
/// within `timeout` closes the connection and returns a response with `error` set.
class http_client {
 public:
  explicit http_client(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds{15});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  response send(const request& r);
  response get(const std::string& target) { return send(request{"GET", target, {}, {}}); }
  response put(const std::string& target, std::string body) {
    return send(json_request("PUT", target, std::move(body)));
  }
  response post(const std::string& target, std::string body) {
    return send(json_request("POST", target, std::move(body)));
  }
  response del(const std::string& target) { return send(request{"DELETE", target, {}, {}}); }

  /// Adds "Authorization: Bearer <token>" to every request that has no Authorization header.
  void set_bearer(std::string token);
  /// Closes the connection (the next request opens a new one).
  void close();
  uint16_t port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Writes `raw` bytes as they are on a new connection and reads one response (bounded by
/// `timeout`): for requests a well-behaved client cannot produce.
response raw_exchange(uint16_t port, const std::string& raw,
                      std::chrono::milliseconds timeout = std::chrono::seconds{15});

/// Raises the soft limit of open files to at least `n` when the hard limit allows; throws
/// std::runtime_error naming both limits when it does not.
void require_open_files(std::size_t n);

struct batch_options {
  std::size_t threads = 2;
  std::chrono::milliseconds timeout{60000}; ///< for connecting, and again for the exchange
};

/// Sends every request of `reqs` on its own connection: first all connections are opened, then
/// all requests are written, then the responses are read. `on_response(i, r)` runs on an I/O
/// thread as soon as response i (or its failure) is known. Returns the responses in order of
/// `reqs`. Needs one file descriptor per request (require_open_files is called).
std::vector<response>
send_all(uint16_t port, const std::vector<request>& reqs,
         const std::function<void(std::size_t, const response&)>& on_response = {},
         const batch_options& opts = {});

} // namespace surge::itest
