#pragma once

// The real surge-paysim binary as a child process for the payment tests, plus a small HTTP client
// for its control endpoints. Gateways listen on port 0: the ports are read from its start lines.

#include <chrono>
#include <cstdint>
#include <string>
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
};

/// One request on a new loopback connection, bounded by `timeout`.
http_result http_call(uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds{5});

/// A surge-paysim child: started by the constructor (which waits until every gateway answers
/// /healthz), SIGTERMed by stop() or the destructor. Output goes to a log file, printed when the
/// start fails.
class paysim_process {
 public:
  paysim_process(std::vector<std::string> gateways, std::vector<std::string> extra_args = {});
  ~paysim_process();
  paysim_process(const paysim_process&) = delete;
  paysim_process& operator=(const paysim_process&) = delete;

  uint16_t port(std::size_t i) const { return ports_.at(i); }
  const std::vector<std::string>& names() const { return names_; }

  /// `payments.gateways` for these gateways, every one of `kind` ("form" or "json").
  std::string setting(const std::string& kind) const;

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
  std::string log_path_;
  tools::child proc_;
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
