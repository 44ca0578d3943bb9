#include "process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace surge::chaos {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

uint16_t try_bind(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
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

/// fork + exec with stdout/stderr on `out_fd`; every other descriptor closed in the child.
pid_t fork_exec(const std::vector<std::string>& args, int out_fd) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(126);
    }
    ::setpgid(0, 0); // its own process group: a terminal's Ctrl-C goes to surge-chaos only
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
    }
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
    {
      for (int fd = 3; fd < 4096; ++fd) {
        ::close(fd);
      }
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process. The
/// fault thread restarts redis-server and killed nodes and ends after the last fault: its
/// children got SIGKILL then. So every child is forked on this one thread, which lives as long
/// as surge-chaos (detached; it ends with the process, and the children with it).
class forker {
 public:
  static forker& instance() {
    static auto* f = new forker; // never destroyed: its thread must outlive every caller
    return *f;
  }

  pid_t spawn(const std::vector<std::string>& args, int out_fd) {
    std::packaged_task<pid_t()> task{[&] { return fork_exec(args, out_fd); }};
    auto result = task.get_future();
    {
      std::lock_guard<std::mutex> guard{mtx_};
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result.get(); // rethrows fork_exec's exception
  }

 private:
  forker() {
    std::thread{[this] { run(); }}.detach();
  }

  [[noreturn]] void run() {
    for (;;) {
      std::packaged_task<pid_t()> task;
      {
        std::unique_lock<std::mutex> lock{mtx_};
        cv_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<pid_t()>> tasks_;
};

pid_t spawn(const std::vector<std::string>& args, int out_fd) {
  return forker::instance().spawn(args, out_fd);
}

} // namespace

uint16_t pick_free_port() {
  unsigned lo = 32768;
  unsigned hi = 60999;
  if (std::ifstream range{"/proc/sys/net/ipv4/ip_local_port_range"}; range) {
    range >> lo >> hi;
  }
  static std::mt19937 rng{std::random_device{}()};
  if (lo > 12000) {
    std::uniform_int_distribution<unsigned> pick{10000, lo - 1};
    for (int i = 0; i < 200; ++i) {
      if (const auto p = try_bind(static_cast<uint16_t>(pick(rng))); p != 0) {
        return p;
      }
    }
  }
  if (const auto p = try_bind(0); p != 0) {
    return p;
  }
  throw std::runtime_error("cannot find a free port on 127.0.0.1");
}

command_result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return {-1, std::string{"pipe: "} + std::strerror(errno)};
  }
  pid_t pid = -1;
  try {
    pid = spawn(argv, fds[1]);
  } catch (const std::exception& e) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {-1, e.what()};
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  command_result r;
  const auto deadline = steady::now() + limit;
  int status = 0;
  bool reaped = false;
  for (;;) {
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) {
      if (r.output.size() < 65536) {
        r.output.append(buf, static_cast<std::size_t>(n));
      }
    }
    if (!reaped && ::waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
    }
    if (reaped && n <= 0) {
      break; // exited and (as far as it wrote) drained; daemons may keep the pipe: don't wait
    }
    if (steady::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ::close(fds[0]);
      r.exit_code = -1;
      r.output += "\n(killed after " + std::to_string(limit.count()) + " ms)";
      return r;
    }
    std::this_thread::sleep_for(10ms);
  }
  ::close(fds[0]);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

child::~child() {
  if (running()) {
    kill9();
  }
}

void child::start(const std::vector<std::string>& argv, const std::string& log_path) {
  if (running()) {
    throw std::logic_error("child::start: already running");
  }
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot open " + log_path + ": " + std::strerror(errno));
  }
  std::string line = "==== surge-chaos starts:";
  for (const auto& a : argv) {
    line += " " + a;
  }
  line += "\n";
  [[maybe_unused]] auto ignored = ::write(fd, line.data(), line.size());
  try {
    pid_ = spawn(argv, fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

bool child::dead() const {
  const pid_t pid = pid_.load();
  if (pid <= 0) {
    return false;
  }
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text;
  std::getline(stat, text);
  const auto paren = text.rfind(')');
  return !stat || paren == std::string::npos || paren + 2 >= text.size() ||
         text[paren + 2] == 'Z' || text[paren + 2] == 'X';
}

std::string child::how_it_ended() const {
  const pid_t pid = pid_.load();
  siginfo_t info{};
  if (pid <= 0 ||
      ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != pid) {
    return {};
  }
  if (info.si_code == CLD_EXITED) {
    return "exit status " + std::to_string(info.si_status);
  }
  return std::string{"signal "} + sigabbrev_np(info.si_status);
}

void child::signal(int sig) const {
  if (const pid_t pid = pid_.load(); pid > 0) {
    ::kill(pid, sig);
  }
}

bool child::exited() {
  if (pid_ <= 0) {
    return true;
  }
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return true;
  }
  return false;
}

int child::stop(std::chrono::milliseconds patience) {
  if (pid_ <= 0) {
    return -1;
  }
  ::kill(pid_, SIGCONT); // a paused child cannot handle SIGTERM
  ::kill(pid_, SIGTERM);
  const auto deadline = steady::now() + patience;
  int status = 0;
  while (steady::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(10ms);
  }
  kill9();
  return -1;
}

void child::kill9() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string tail_of(const std::string& path, std::size_t lines) {
  std::ifstream in{path};
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line.size() > 1000 ? line.substr(0, 1000) + "..." : line);
    if (tail.size() > lines) {
      tail.pop_front();
    }
  }
  std::string out;
  for (const auto& l : tail) {
    out += l + "\n";
  }
  return out;
}

} // namespace surge::chaos
