#pragma once

// The real surge-paysim binary as a child process for the payment tests, plus a small HTTP client
// for its control endpoints. Gateways listen on port 0: the ports are read from its start lines.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "surge/tools/process.hpp"

namespace surge::ptest {

/// One line of GET /_charges.
struct logged_charge {
  std::string gateway;
  std::string key;
  int64_t amount_cents = 0;
  std::string currency;
  std::string status; ///< approved, declined or failed
  int64_t refunded_cents = 0;
};

/// One line of GET /_refunds.
struct logged_refund {
  std::string gateway;
  std::string key;
  std::string charge_key;
  int64_t amount_cents = 0;
  std::string currency;
  std::string status; ///< refunded, rejected or failed
};

struct http_result {
  int status = 0; ///< 0: no answer
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {}; ///< as received

  /// The first header `name` (case-insensitive), "" when absent.
  std::string header(std::string_view name) const;
};

/// One request on a new loopback connection (Host: 127.0.0.1:`port`), bounded by `timeout`.
http_result http_call(uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds{5});

/// A surge-paysim child: started by the constructor (which waits until every gateway answers
/// /healthz), SIGTERMed by stop() or the destructor. Output goes to a log file, printed when the
/// start fails. With --tls-cert/--tls-key among `extra_args` the gateways speak TLS; the control
/// calls below go to their plain servers.
class paysim_process {
 public:
  paysim_process(std::vector<std::string> gateways, std::vector<std::string> extra_args = {});
  ~paysim_process();
  paysim_process(const paysim_process&) = delete;
  paysim_process& operator=(const paysim_process&) = delete;

  uint16_t port(std::size_t i) const { return ports_.at(i); }
  const std::vector<std::string>& names() const { return names_; }
  /// Started with --tls-cert: port(i) speaks TLS only.
  bool tls() const { return !plain_ports_.empty(); }
  /// Where gateway `i` speaks plain HTTP: port(i), or with TLS its plain server behind the front.
  uint16_t plain_port(std::size_t i) const { return tls() ? plain_ports_.at(i) : ports_.at(i); }

  /// `payments.gateways` for these gateways, every one of `kind` ("form" or "json"), https://
  /// with TLS on (at `host`, 127.0.0.1 unless given).
  std::string setting(const std::string& kind, const std::string& host = "127.0.0.1") const;

  /// GET /_charges.
  std::vector<logged_charge> charges() const;

  /// GET /_refunds.
  std::vector<logged_refund> refunds() const;

  /// POST /_outage on gateway `i`.
  void set_down(std::size_t i, bool down) const;

  /// SIGTERM and wait (bounded); returns the exit status (or -1 when it had to be killed).
  int stop();

 private:
  std::vector<std::string> names_;
  std::vector<uint16_t> ports_;
  std::vector<uint16_t> plain_ports_; ///< with TLS only
  std::string log_path_;
  tools::child proc_;
};

/// A private CA and server certificates signed by it, made with scripts/cluster-certs.sh (the
/// openssl CLI) in a fresh temporary directory that the destructor removes. Throws
/// std::runtime_error with the script's output when it fails.
class test_certs {
 public:
  test_certs();
  ~test_certs();
  test_certs(const test_certs&) = delete;
  test_certs& operator=(const test_certs&) = delete;

  /// dir()/NAME.pem + dir()/NAME.key, a certificate for `addresses` (comma-separated IP
  /// addresses and DNS names: its subjectAltName) signed by ca().
  void make(const std::string& name, const std::string& addresses = "127.0.0.1,localhost");

  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.pem"; } ///< the CA's certificate (PEM)

  /// surge-paysim's --tls-cert and --tls-key for NAME's certificate.
  std::vector<std::string> paysim_flags(const std::string& name) const;

 private:
  std::string dir_;
};

struct paysim_run {
  int status = -1;    ///< the exit status, or -1 when it did not exit in time
  std::string output; ///< stdout and stderr
};

/// Runs surge-paysim with `args` and waits (bounded) for its exit.
paysim_run run_paysim(const std::vector<std::string>& args);

/// run_paysim(args).status.
int run_paysim_to_exit(const std::vector<std::string>& args);

} // namespace surge::ptest
