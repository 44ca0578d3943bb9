#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

namespace boost::asio::ssl {
class context;
}

namespace surge::paysim {

/// TLS in front of one simulated gateway: accepts TLS connections on host:port (the server
/// certificate and key of `tls`) and relays the bytes of each, both ways, to its own plain
/// connection to the gateway's HTTP server on 127.0.0.1:`backend_port`. The gateway therefore
/// behaves over TLS exactly as over plain HTTP (delays, outages, keep-alive): when either side
/// closes, so does the other. A handshake must finish within 10 s.
///
/// Lifecycle: start() binds and starts its I/O thread; stop() (also the destructor) closes
/// everything and joins it. `tls` must outlive the front.
class tls_front {
 public:
  tls_front(boost::asio::ssl::context& tls, std::string host, uint16_t port, uint16_t backend_port);
  ~tls_front();
  tls_front(const tls_front&) = delete;
  tls_front& operator=(const tls_front&) = delete;

  /// Binds and listens; the error when the address cannot be bound.
  std::error_code start();

  /// The bound port (useful with port 0). Valid after a successful start().
  uint16_t port() const;

  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A server-side TLS context (TLS 1.2 or later) with the PEM certificate chain `cert_file` and
/// private key `key_file`. Throws std::runtime_error naming the file that cannot be used.
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const std::string& cert_file,
                                                           const std::string& key_file);

} // namespace surge::paysim
