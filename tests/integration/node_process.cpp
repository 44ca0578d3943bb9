#include "node_process.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "http_client.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::atomic<bool> g_failed{false};

/// Notes failed assertions and exceptions of the running test case for current_test_failed().
struct failure_listener : doctest::IReporter {
  explicit failure_listener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { g_failed.store(false); }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override { g_failed.store(true); }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& ad) override {
    if (ad.m_failed) {
      g_failed.store(true);
    }
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("surge_failure_listener", 1, failure_listener);

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out{path, std::ios::app};
  out << line << '\n';
}

} // namespace

bool current_test_failed() {
  return g_failed.load();
}

node_process::node_process(node_config cfg)
    : cfg_(std::move(cfg)) {
  std::filesystem::create_directories(SURGE_IT_LOG_DIR);
  log_path_ = std::string{SURGE_IT_LOG_DIR} + "/" + db_.name() + ".log";
  pick_ports();
  start();
}

node_process::~node_process() {
  if (running()) {
    proc_.signal(SIGKILL);
    proc_.wait(10s);
  }
  if (current_test_failed() || std::uncaught_exceptions() > 0) {
    // On stdout, where doctest reports, so that the tail follows the failures it explains.
    std::cout << "---- " << log_path_ << " (http " << http_port_ << ", admin " << admin_port_
              << ", database " << db_.name() << "), last lines:\n"
              << log_tail() << "---- end of " << log_path_ << std::endl;
  } else {
    std::error_code ignored;
    std::filesystem::remove(log_path_, ignored); // kept only when the test fails
  }
}

std::string node_process::node_id() const {
  return cfg_.node_id.empty() ? "it-" + db_.name() : cfg_.node_id;
}

std::string node_process::redis_prefix() const {
  return cfg_.cluster_with != nullptr ? cfg_.cluster_with->redis_prefix() : redis_.prefix();
}

void node_process::signal(int sig) noexcept {
  proc_.signal(sig);
}

void node_process::pick_ports() {
  for (int i = 0; i < 100; ++i) {
    http_port_ = pick_free_port();
    admin_port_ = pick_free_port();
    cluster_port_ = pick_free_port();
    if (http_port_ != admin_port_ && http_port_ != cluster_port_ && admin_port_ != cluster_port_) {
      return;
    }
  }
  throw std::runtime_error("cannot pick three distinct free ports");
}

void node_process::spawn() {
  std::vector<std::string> args{
      cfg_.binary.empty() ? std::string{SURGE_NODE_BINARY} : cfg_.binary,
      "--node.id=" + node_id(),
      "--http.port=" + std::to_string(http_port_),
      "--admin.port=" + std::to_string(admin_port_),
      "--cluster.port=" + std::to_string(cluster_port_),
      "--pg.url=" + database_url(),
      "--redis.url=" + redis_.url(),
      "--redis.prefix=" + redis_prefix(),
      "--holds.ttl=" + cfg_.holds_ttl,
      "--entity.idle_timeout=" + cfg_.idle_timeout,
      "--log.level=info",
  };
  if (!cfg_.admin_token.empty()) {
    args.push_back("--admin.token=" + cfg_.admin_token);
  }
  if (!cfg_.limits) {
    args.emplace_back("--limits.ip_rate=0");
  }
  if (!cfg_.read_replicas.empty()) {
    const auto db = cfg_.cluster_with != nullptr ? cfg_.cluster_with->database() : database();
    std::string urls;
    for (const auto& r : cfg_.read_replicas) {
      urls += (urls.empty() ? "" : ",") + surge::test::pg_url_with_database(r, db);
    }
    args.push_back("--pg.read_urls=" + urls);
  }
  // No wait for a load balancer at stop (there is none), unless the test asks for one. A previous
  // release's binary (tests/upgrade) has no such setting: it would refuse it.
  if (cfg_.binary.empty() &&
      std::none_of(cfg_.extra.begin(), cfg_.extra.end(),
                   [](const std::string& a) { return a.starts_with("--http.drain_grace="); })) {
    args.emplace_back("--http.drain_grace=0s");
  }
  args.insert(args.end(), cfg_.extra.begin(), cfg_.extra.end());

  // The node refuses unknown SURGE_* variables; it gets none but the test-only ones.
  auto env = tools::environment([](std::string_view kv) {
    return !kv.starts_with("SURGE_") || kv.starts_with("SURGE_TEST_");
  });

  std::string cmdline;
  for (const auto& a : args) {
    cmdline += a + ' ';
  }
  append_line(log_path_, "==== start #" + std::to_string(starts_ + 1) + ": " + cmdline);

  tools::child_spec spec;
  spec.argv = std::move(args);
  spec.env = std::move(env);
  spec.log_path = log_path_; // stdout and stderr; an exec failure is said there too
  proc_.start(spec);
}

bool node_process::wait_ready(std::chrono::milliseconds patience, int& status) {
  const auto deadline = steady::now() + patience;
  http_client probe{http_port_, 1s};
  for (int i = 0; steady::now() < deadline && i < 100000; ++i) {
    if (const auto exited = proc_.wait(0ms)) {
      status = *exited;
      return false;
    }
    auto r = probe.get("/readyz");
    if (r.status == 200) {
      return true;
    }
    probe.close();
    std::this_thread::sleep_for(20ms);
  }
  status = -1;
  return false;
}

void node_process::start() {
  if (running()) {
    throw std::logic_error("node_process::start: already running");
  }
  constexpr int attempts = 3;
  for (int attempt = 1;; ++attempt) {
    const auto t0 = steady::now();
    spawn();
    int status = 0;
    if (wait_ready(30s, status)) {
      ++starts_;
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
      append_line(log_path_, "==== ready after " + std::to_string(ms) + " ms");
      return;
    }
    std::string why;
    if (status == -1) {
      proc_.signal(SIGKILL);
      proc_.wait(10s);
      why = "did not answer 200 on /readyz within 30 s";
    } else {
      why = "exited (" + tools::describe_status(status) + ") before it was ready";
    }
    // Another process may have taken a port between pick_free_port() and the node's bind; a
    // first start may pick new ones. A restart keeps its ports.
    const bool port_taken = log_tail(20).find("cannot listen") != std::string::npos;
    if (starts_ == 0 && port_taken && attempt < attempts) {
      append_line(log_path_, "==== port taken, picking new ports");
      pick_ports();
      continue;
    }
    throw std::runtime_error("surge-node " + why + "; log " + log_path_ + ":\n" + log_tail());
  }
}

void node_process::stop(std::chrono::milliseconds patience) {
  if (!running()) {
    return;
  }
  const auto t0 = steady::now();
  proc_.signal(SIGTERM);
  const auto status = proc_.wait(patience);
  if (!status) {
    proc_.signal(SIGKILL);
    proc_.wait(10s);
    FAIL_CHECK("surge-node did not stop within " << patience.count() << " ms of SIGTERM");
    return;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  append_line(log_path_, "==== stopped after " + std::to_string(ms) +
                             " ms: " + tools::describe_status(*status));
  CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 0),
                "graceful stop ended with " << tools::describe_status(*status));
}

void node_process::kill9() {
  if (!running()) {
    return;
  }
  const pid_t pid = proc_.pid();
  proc_.signal(SIGKILL);
  const auto status = proc_.wait(10s);
  if (!status) {
    FAIL("surge-node (pid " << pid << ") did not die on SIGKILL within 10 s");
  }
  append_line(log_path_, "==== killed (SIGKILL): " + tools::describe_status(*status));
}

void node_process::signal_kill() noexcept {
  proc_.signal(SIGKILL);
}

void node_process::signal_term() noexcept {
  proc_.signal(SIGTERM);
}

std::string node_process::log_tail(std::size_t lines) const {
  return tools::tail_of(log_path_, lines, 2000);
}

std::optional<std::string> start_failure(node_config cfg) {
  try {
    node_process node{std::move(cfg)};
  } catch (const std::runtime_error& e) {
    return std::string{e.what()};
  }
  return std::nullopt;
}

} // namespace surge::itest
