#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace surge::paysim {

struct gateway_address {
  std::string name;
  std::string host;
  uint16_t port = 0; ///< 0: any free port (see simulator::endpoints())
  /// endpoints() with TLS on: the port of the gateway's plain HTTP server behind its TLS front
  /// (on 127.0.0.1), for tests and local tools; 0 without TLS.
  uint16_t plain_port = 0;
};

struct options {
  std::vector<gateway_address> gateways; ///< in failover order: the first is "the first gateway"
  std::chrono::milliseconds latency{0};  ///< added to every charge/lookup/refund answer
  std::chrono::milliseconds slow{3000};  ///< tok_slow: the answer (and a new refund's) comes later
  double decline_rate = 0.0;             ///< tok_ok declined with this probability
  uint64_t seed = 1;
  /// Both set: every gateway's address serves TLS with this PEM certificate chain and key (its
  /// plain HTTP server moves to a free port of 127.0.0.1, endpoints()' plain_port).
  std::string tls_cert;
  std::string tls_key;
};

/// Simulated payment gateways: one HTTP server per gateway (behind a TLS front with TLS on), each
/// speaking both wire styles (see tools/README.md), sharing one charge log and one refund log. All
/// state lives in memory behind one mutex; the servers' I/O threads never block (delayed answers go
/// through a timer thread).
///
/// Lifecycle: start() binds every gateway (all or none); stop() stops the servers, then the
/// timer thread. Not copyable.
class simulator {
 public:
  explicit simulator(options opts);
  ~simulator();
  simulator(const simulator&) = delete;
  simulator& operator=(const simulator&) = delete;

  /// Binds and serves. On failure returns a message naming the gateway and stops what started.
  std::string start();

  /// "name host:port" of each gateway, with the bound ports. Valid after start().
  std::vector<gateway_address> endpoints() const;

  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace surge::paysim
