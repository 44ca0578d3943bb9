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

/// Where one gateway posts its webhook events (--webhook-to, --webhook-secrets).
struct webhook_target {
  std::string gateway; ///< a name of options::gateways
  std::string url;     ///< http(s)://host:port/path (a valid parse_http_url with a path)
  /// As given: form-style events are signed with it as text (Stripe-Signature), json-style ones
  /// with its hex-decoded bytes (hmacSignature; not sent when it is not hex).
  std::string secret;
};

/// The largest capture delay (options::capture_delay, PUT /_faults).
inline constexpr std::chrono::milliseconds max_capture_delay{60000};

struct options {
  std::vector<gateway_address> gateways; ///< in failover order: the first is "the first gateway"
  std::chrono::milliseconds latency{0};  ///< added to every charge/lookup/refund answer
  std::chrono::milliseconds slow{3000};  ///< tok_slow: the answer (and a new refund's) comes later
  double decline_rate = 0.0;             ///< tok_ok declined with this probability
  /// Added to every capture's answer (both styles, new or replayed; not voids), from the start;
  /// PUT /_faults {"capture_delay_ms":N} changes it while running. At most max_capture_delay.
  std::chrono::milliseconds capture_delay{0};
  uint64_t seed = 1;
  /// Both set: every gateway's address serves TLS with this PEM certificate chain and key (its
  /// plain HTTP server moves to a free port of 127.0.0.1, endpoints()' plain_port).
  std::string tls_cert;
  std::string tls_key;
  /// Gateways that post signed events (a charge approved or declined, a 3-D Secure charge
  /// completed or failed, a capture, a void, a refund), each at most once here.
  std::vector<webhook_target> webhooks;
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
