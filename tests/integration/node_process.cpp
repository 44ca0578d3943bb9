#include "node_process.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <stdexcept>
#include <thread>

#include "http_client.hpp"

extern char** environ;

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

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return std::string{"signal "} + strsignal(WTERMSIG(status));
  }
  return "wait status " + std::to_string(status);
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out{path, std::ios::app};
  out << line << '\n';
}

} // namespace

bool current_test_failed() {
  return g_failed.load();
}

namespace {

/// Binds 127.0.0.1:`port` (0: any) without SO_REUSEADDR and closes again; the bound port, or 0.
uint16_t try_bind(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  socklen_t len = sizeof(addr);
  uint16_t out = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    out = ntohs(addr.sin_port);
  }
  ::close(fd);
  return out;
}

} // namespace

uint16_t pick_free_port() {
  // Outgoing connections take their local ports from the ephemeral range; a port from there may
  // be taken by a client socket (of a parallel test) when the node binds it again on a restart.
  // So pick outside that range when there is room.
  unsigned lo = 32768;
  unsigned hi = 60999;
  if (std::ifstream range{"/proc/sys/net/ipv4/ip_local_port_range"}; range) {
    range >> lo >> hi;
  }
  unsigned from = 0;
  unsigned to = 0;
  if (lo > 12000) {
    from = 10000;
    to = lo - 1;
  } else if (hi < 64000) {
    from = hi + 1;
    to = 65535;
  }
  if (to > from) {
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<unsigned> pick{from, to};
    for (int i = 0; i < 200; ++i) {
      if (const auto p = try_bind(static_cast<uint16_t>(pick(rng))); p != 0) {
        return p;
      }
    }
  }
  if (const auto p = try_bind(0); p != 0) {
    return p;
  }
  throw std::runtime_error(std::string{"cannot bind 127.0.0.1:0: "} + std::strerror(errno));
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
    signal_kill();
    int status = 0;
    reap(10s, status);
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
  if (const pid_t pid = pid_.load(); pid > 0) {
    ::kill(pid, sig);
  }
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

pid_t node_process::spawn() {
  std::vector<std::string> args{
      SURGE_NODE_BINARY,
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
  args.insert(args.end(), cfg_.extra.begin(), cfg_.extra.end());

  // The node refuses unknown SURGE_* variables; it gets none but the test-only ones.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv{*e};
    if (kv.rfind("SURGE_", 0) == 0 && kv.rfind("SURGE_TEST_", 0) != 0) {
      continue;
    }
    env.emplace_back(kv);
  }

  std::string cmdline;
  for (const auto& a : args) {
    cmdline += a + ' ';
  }
  append_line(log_path_, "==== start #" + std::to_string(starts_ + 1) + ": " + cmdline);

  // Everything the child needs is prepared before fork: it only calls async-signal-safe
  // functions until execve.
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error("cannot open " + log_path_ + ": " + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(log_fd);
    throw std::runtime_error(std::string{"fork: "} + std::strerror(e));
  }
  if (pid == 0) {
    // The node dies with the test process, even when that one crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(126);
    }
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
    }
    // No client socket of the test may live on in the node.
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
    {
      for (int fd = 3; fd < 65536; ++fd) {
        ::close(fd);
      }
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    // Only async-signal-safe calls here: say why on the log (stderr) and leave.
    const int e = errno;
    char msg[64] = "execve failed, errno ";
    std::size_t len = std::strlen(msg);
    char digits[12];
    std::size_t nd = 0;
    for (int v = e; nd == 0 || v > 0; v /= 10) {
      digits[nd++] = static_cast<char>('0' + v % 10);
    }
    while (nd > 0 && len < sizeof(msg) - 2) {
      msg[len++] = digits[--nd];
    }
    msg[len++] = '\n';
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, msg, len);
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

bool node_process::reap(std::chrono::milliseconds patience, int& status) {
  const pid_t pid = pid_.load();
  if (pid <= 0) {
    return true;
  }
  const auto deadline = steady::now() + patience;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      pid_.store(-1);
      return true;
    }
    if (steady::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
}

bool node_process::wait_ready(pid_t pid, std::chrono::milliseconds patience, int& status) {
  const auto deadline = steady::now() + patience;
  http_client probe{http_port_, 1s};
  for (int i = 0; steady::now() < deadline && i < 100000; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid_.store(-1);
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
    pid_.store(spawn());
    int status = 0;
    if (wait_ready(pid_.load(), 30s, status)) {
      ++starts_;
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
      append_line(log_path_, "==== ready after " + std::to_string(ms) + " ms");
      return;
    }
    std::string why;
    if (status == -1) {
      signal_kill();
      reap(10s, status);
      why = "did not answer 200 on /readyz within 30 s";
    } else {
      why = "exited (" + describe_status(status) + ") before it was ready";
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
  const pid_t pid = pid_.load();
  if (pid <= 0) {
    return;
  }
  const auto t0 = steady::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  if (!reap(patience, status)) {
    signal_kill();
    reap(10s, status);
    FAIL_CHECK("surge-node did not stop within " << patience.count() << " ms of SIGTERM");
    return;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  append_line(log_path_,
              "==== stopped after " + std::to_string(ms) + " ms: " + describe_status(status));
  CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0),
                "graceful stop ended with " << describe_status(status));
}

void node_process::kill9() {
  if (!running()) {
    return;
  }
  signal_kill();
  int status = 0;
  if (!reap(10s, status)) {
    FAIL("surge-node (pid " << pid_.load() << ") did not die on SIGKILL within 10 s");
  }
  append_line(log_path_, "==== killed (SIGKILL): " + describe_status(status));
}

void node_process::signal_kill() noexcept {
  const pid_t pid = pid_.load();
  if (pid > 0) {
    ::kill(pid, SIGKILL);
  }
}

void node_process::signal_term() noexcept {
  const pid_t pid = pid_.load();
  if (pid > 0) {
    ::kill(pid, SIGTERM);
  }
}

std::string node_process::log_tail(std::size_t lines) const {
  std::ifstream in{log_path_};
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(std::move(line));
    if (tail.size() > lines) {
      tail.pop_front();
    }
  }
  std::string out;
  for (const auto& l : tail) {
    out += l.size() > 2000 ? l.substr(0, 2000) + "..." : l;
    out += '\n';
  }
  return out;
}

} // namespace surge::itest
