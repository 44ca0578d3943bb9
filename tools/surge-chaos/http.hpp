#pragma once

// A blocking HTTP/1.1 client for one loopback or namespace address (Boost.Beast): one keep-alive
// connection, every exchange bounded by a timeout. Not thread-safe: one per thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace surge::chaos {

struct http_answer {
  int status = 0; ///< 0: no answer (see error)
  std::string body;
  std::string error; ///< transport failure
  std::string cause; ///< header Surge-Error-Cause ("payment": the gateways failed), if any
};

class http_client {
 public:
  /// REQUIRES: `host` is a loopback or namespace-private address.
  http_client(std::string host, uint16_t port,
              std::chrono::milliseconds timeout = std::chrono::seconds{10});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  http_answer call(const std::string& method, const std::string& target,
                   const std::string& body = {},
                   const std::vector<std::pair<std::string, std::string>>& headers = {});
  void close();
  uint16_t port() const { return port_; }
  /// A header sent with every request from now on (e.g. the admin API's bearer token).
  void set_header(std::string name, std::string value);

 private:
  struct impl;
  const std::string host_;
  const uint16_t port_;
  const std::chrono::milliseconds timeout_;
  std::vector<std::pair<std::string, std::string>> defaults_;
  std::unique_ptr<impl> impl_;
};

/// True for 127.0.0.0/8 and the private subnet surge-chaos gives its namespaces (10.77.0.0/24,
/// netplan.hpp): nothing else ever receives a request from surge-chaos.
bool allowed_address(const std::string& host);

} // namespace surge::chaos
