#pragma once

// The blocking HTTP/1.1 client the gateway adapters and the outgoing webhooks
// (runtime/src/fulfilment.hpp) share: kept-alive connections, one deadline per exchange, TLS.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "surge/net/text.hpp"

namespace boost::asio::ssl {
class context;
}

namespace surge::net::payments::detail {

struct exchange_result {
  enum class outcome {
    answered,  ///< a whole response arrived: `status` and `body` are set
    not_sent,  ///< the request certainly did not reach the server (connect failed or timed out)
    no_answer, ///< the request may have reached the server, but no whole response came back
  };
  outcome what = outcome::not_sent;
  int status = 0;
  std::string body;
  std::string error; ///< for not_sent/no_answer
};

/// Blocking HTTP/1.1 client for one host:port with a pool of kept-alive connections.
/// Thread-safe: each exchange() uses its own connection (its own io_context), taken from the pool
/// or newly opened, and returns it to the pool when the server keeps it alive.
///
/// With `tls` set every connection is TLS (1.2 or later), the server's certificate verified
/// against `tls`'s trust store and for `host` (its DNS name, or IP address, in the
/// subjectAltName), with SNI for names. A connection whose handshake fails is `not_sent`: no
/// byte of the request left. Kept-alive TLS connections are reused like plain ones.
class http_client {
 public:
  http_client(std::string host, uint16_t port,
              std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// One request/response within `timeout` (connect, write and read together). A kept-alive
  /// connection that turns out closed by the server before it answered is replaced once by a new
  /// one within the same deadline. Never throws.
  exchange_result exchange(const std::string& method, const std::string& target,
                           const std::string& content_type, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::chrono::milliseconds timeout);

 private:
  struct connection;
  std::unique_ptr<connection> take_idle();
  /// TLS only: the handshake of a connected `c`, verifying the server. nullopt when it is done,
  /// else why it failed.
  std::optional<std::string> handshake(connection& c) const;
  void give_back(std::unique_ptr<connection> c);

  const std::string host_;
  const uint16_t port_;
  const std::shared_ptr<boost::asio::ssl::context> tls_;
  std::mutex mu_;
  std::vector<std::unique_ptr<connection>> idle_; // guarded by mu_
};

/// A client-side TLS context: TLS 1.2 or later, peers verified against `ca_file` (a PEM bundle)
/// or, when it is empty, the system's trust store. Throws std::runtime_error naming the file
/// when it cannot be read or holds no certificate.
std::shared_ptr<boost::asio::ssl::context> make_client_tls(const std::string& ca_file);

using text::url_encode;

} // namespace surge::net::payments::detail
