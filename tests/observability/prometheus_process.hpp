#pragma once

// Debian's /usr/bin/prometheus as a child process of a test: its own temporary directory (config,
// token file, TSDB), a free loopback port, scraping given targets' /metrics with a bearer token
// and evaluating given rule files, all every `interval`; and the calls of its HTTP API the tests
// need (instant queries, the rules). Output goes to a log file under the test's log directory,
// printed when the test that owns it fails.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "surge/net/json.hpp"
#include "surge/tools/process.hpp"
#include "temp_path.hpp"

namespace surge::otest {

namespace json = surge::net::json;

struct prometheus_options {
  std::string binary;                  ///< path of the prometheus executable
  std::vector<std::string> targets;    ///< "127.0.0.1:port" of each node's admin API (job "surge")
  std::string bearer_token;            ///< sent on every scrape (authorization: credentials_file)
  std::vector<std::string> rule_files; ///< absolute paths
  std::chrono::seconds interval{1};    ///< scrape and rule evaluation interval
};

/// One sample of an instant vector: its labels (with __name__ when it has one) and value.
struct sample {
  std::map<std::string, std::string> labels;
  double value = 0;
  double time_s = 0; ///< the evaluation time, seconds since the epoch
};

/// A running Prometheus. The constructor writes its configuration, starts it and waits (bounded)
/// until GET /-/ready answers 200; it throws std::runtime_error with the log's tail when the
/// process exits first or is not ready in time. The destructor stops it (SIGTERM, then SIGKILL)
/// and removes its directory.
class prometheus_process {
 public:
  explicit prometheus_process(prometheus_options opts);
  ~prometheus_process();
  prometheus_process(const prometheus_process&) = delete;
  prometheus_process& operator=(const prometheus_process&) = delete;

  uint16_t port() const { return port_; }
  const std::string& log_path() const { return log_path_; }

  /// GET `target` on its HTTP API.
  itest::response get(const std::string& target);

  /// GET /api/v1/query?query=`expr` (evaluated now). REQUIREs HTTP 200, status "success" and a
  /// vector result; returns its samples.
  std::vector<sample> query(const std::string& expr);

  /// Waits (bounded by `patience`) until every target has a scrape that started after
  /// `after_ms` (milliseconds since the epoch; timestamp(up) > after_ms), so that what the
  /// targets counted before `after_ms` is in the latest samples. REQUIREs it.
  void wait_scraped_after(int64_t after_ms,
                          std::chrono::milliseconds patience = std::chrono::seconds{30});

 private:
  void write_config() const;
  bool wait_ready(std::chrono::milliseconds patience, int& status);

  const prometheus_options opts_;
  test::temp_path dir_{"surge-prometheus"};
  uint16_t port_ = 0;
  std::string log_path_;
  itest::http_client client_;
  tools::child proc_; // last: stopped before the directory goes
};

/// sum over `samples` of value, grouped by the values of `labels` joined by ' ' (the key of a
/// sample without a label is its value ""): a map such as {"GET /api/v1/products/{sku}": 30}.
std::map<std::string, double> by_labels(const std::vector<sample>& samples,
                                        const std::vector<std::string>& labels);

} // namespace surge::otest
