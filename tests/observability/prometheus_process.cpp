#include "prometheus_process.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "api.hpp"
#include "node_process.hpp"
#include "surge/tools/text.hpp"

namespace surge::otest {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// `v` as a double: JSON numbers as they are, strings as Prometheus writes sample values
/// ("42", "0.5", "NaN", "+Inf").
double number_of(const json::value& v) {
  if (const auto* i = std::get_if<int64_t>(&v.get())) {
    return static_cast<double>(*i);
  }
  if (const auto* d = std::get_if<double>(&v.get())) {
    return *d;
  }
  REQUIRE_MESSAGE(v.is_string(), "not a number: " << json::serialize(v));
  return std::stod(std::get<std::string>(v.get()));
}

} // namespace

prometheus_process::prometheus_process(prometheus_options opts)
    : opts_(std::move(opts))
    , port_(tools::pick_free_port())
    , client_(port_, 10s) {
  if (opts_.binary.empty()) {
    throw std::runtime_error("prometheus not found when CMake ran: install Debian's prometheus "
                             "package (scripts/deps.sh) and re-run cmake");
  }
  std::filesystem::create_directories(dir_.path() + "/data");
  std::filesystem::create_directories(SURGE_IT_LOG_DIR);
  log_path_ = std::string{SURGE_IT_LOG_DIR} + "/prometheus-" + std::to_string(port_) + ".log";
  write_config();

  tools::child_spec spec;
  spec.argv = {opts_.binary, "--config.file=" + dir_.path() + "/prometheus.yml",
               "--storage.tsdb.path=" + dir_.path() + "/data",
               "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=info"};
  spec.log_path = log_path_;
  spec.truncate_log = true;
  proc_.start(spec);
  int status = 0;
  if (!wait_ready(30s, status)) {
    const std::string why = status == -1 ? "did not answer 200 on /-/ready within 30 s"
                                         : "exited (" + tools::describe_status(status) + ")";
    throw std::runtime_error("prometheus " + why + "; log " + log_path_ + ":\n" +
                             tools::tail_of(log_path_, 40));
  }
}

prometheus_process::~prometheus_process() {
  proc_.stop(10s);
  if (itest::current_test_failed() || std::uncaught_exceptions() > 0) {
    std::cout << "---- " << log_path_ << " (port " << port_ << "), last lines:\n"
              << tools::tail_of(log_path_, 40) << "---- end of " << log_path_ << std::endl;
  } else {
    std::error_code ignored;
    std::filesystem::remove(log_path_, ignored);
  }
}

void prometheus_process::write_config() const {
  {
    std::ofstream token{dir_.path() + "/admin-token"};
    token << opts_.bearer_token << "\n";
  }
  std::ofstream out{dir_.path() + "/prometheus.yml"};
  const auto interval = std::to_string(opts_.interval.count()) + "s";
  out << "global:\n"
      << "  scrape_interval: " << interval << "\n"
      << "  scrape_timeout: " << interval << "\n"
      << "  evaluation_interval: " << interval << "\n"
      << "rule_files:\n";
  for (const auto& f : opts_.rule_files) {
    out << "  - '" << f << "'\n";
  }
  out << "scrape_configs:\n"
      << "  - job_name: surge\n"
      << "    metrics_path: /metrics\n"
      << "    authorization:\n"
      << "      type: Bearer\n"
      << "      credentials_file: admin-token\n"
      << "    static_configs:\n"
      << "      - targets:\n";
  for (const auto& t : opts_.targets) {
    out << "          - '" << t << "'\n";
  }
  if (!out) {
    throw std::runtime_error("cannot write " + dir_.path() + "/prometheus.yml");
  }
}

bool prometheus_process::wait_ready(std::chrono::milliseconds patience, int& status) {
  const auto deadline = steady::now() + patience;
  itest::http_client probe{port_, 1s};
  while (steady::now() < deadline) {
    if (const auto exited = proc_.wait(0ms)) {
      status = *exited;
      return false;
    }
    if (probe.get("/-/ready").status == 200) {
      return true;
    }
    probe.close();
    std::this_thread::sleep_for(50ms); // polling interval, not synchronisation
  }
  status = -1;
  return false;
}

itest::response prometheus_process::get(const std::string& target) {
  return client_.get(target);
}

std::vector<sample> prometheus_process::query(const std::string& expr) {
  INFO("query: " << expr);
  const auto r = get("/api/v1/query?query=" + tools::path_segment(expr));
  REQUIRE_MESSAGE(r.status == 200, itest::describe(r));
  const auto body = itest::parse_json(r.body);
  REQUIRE(itest::str_of(body, "status") == "success");
  const auto& data = itest::member(body, "data");
  REQUIRE(itest::str_of(data, "resultType") == "vector");
  std::vector<sample> out;
  for (const auto& s : itest::array_of(data, "result")) {
    sample one;
    const auto& metric = itest::member(s, "metric");
    REQUIRE(metric.is_object());
    for (const auto& [k, v] : std::get<json::object>(metric.get())) {
      REQUIRE(v.is_string());
      one.labels[k] = std::get<std::string>(v.get());
    }
    const auto& pair = itest::array_of(s, "value");
    REQUIRE(pair.size() == 2);
    one.time_s = number_of(pair[0]);
    one.value = number_of(pair[1]);
    out.push_back(std::move(one));
  }
  return out;
}

void prometheus_process::wait_scraped_after(int64_t after_ms, std::chrono::milliseconds patience) {
  const auto deadline = steady::now() + patience;
  std::vector<sample> last;
  while (steady::now() < deadline) {
    last = query("timestamp(up{job=\"surge\"})");
    std::size_t fresh = 0;
    for (const auto& s : last) {
      fresh += s.value * 1000 > static_cast<double>(after_ms) ? 1 : 0;
    }
    if (fresh == opts_.targets.size()) {
      return;
    }
    std::this_thread::sleep_for(100ms); // polling interval, not synchronisation
  }
  std::string seen;
  for (const auto& s : last) {
    seen += s.labels.count("instance") != 0 ? s.labels.at("instance") : "?";
    seen += "@" + std::to_string(static_cast<int64_t>(s.value * 1000)) + " ";
  }
  FAIL("not every target scraped after " << after_ms << " ms within " << patience.count()
                                         << " ms: " << seen);
}

std::map<std::string, double> by_labels(const std::vector<sample>& samples,
                                        const std::vector<std::string>& labels) {
  std::map<std::string, double> out;
  for (const auto& s : samples) {
    std::string key;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const auto it = s.labels.find(labels[i]);
      key += (i == 0 ? "" : " ") + (it == s.labels.end() ? std::string{} : it->second);
    }
    out[key] += s.value;
  }
  return out;
}

} // namespace surge::otest
