#include "surge/tools/process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace surge::tools {

namespace {

using steady = std::chrono::steady_clock;

/// Writes `parts` on `fd` with write(2) only: async-signal-safe, for a forked child.
void write_raw(int fd, std::initializer_list<const char*> parts) {
  for (const char* p : parts) {
    [[maybe_unused]] auto ignored = ::write(fd, p, std::strlen(p));
  }
}

/// What the child runs, prepared before fork: after it, the child calls only async-signal-safe
/// functions (and execvpe for a name without '/', which glibc runs without allocating).
struct prepared {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv;
  std::vector<char*> envp; ///< empty: this process's environment
  std::string cwd;         ///< empty: this process's
  int out_fd;
  int err_fd;
  bool own_group;

  explicit prepared(const child_spec& s)
      : args(s.argv)
      , env(s.env ? *s.env : std::vector<std::string>{})
      , cwd(s.cwd)
      , out_fd(s.out_fd)
      , err_fd(s.err_fd >= 0 ? s.err_fd : s.out_fd)
      , own_group(s.own_process_group) {
    if (args.empty()) {
      throw std::runtime_error("spawn: no program");
    }
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    if (s.env) {
      for (auto& e : env) {
        envp.push_back(e.data());
      }
      envp.push_back(nullptr);
    }
  }
};

pid_t fork_exec(const prepared& p) {
  const pid_t parent = ::getpid();
  // Every signal blocked across fork: none may run one of this process's handlers (a test
  // framework's crash reporter) in the child before exec.
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  const pid_t pid = ::fork();
  if (pid != 0) {
    const int e = errno;
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (pid < 0) {
      throw std::runtime_error(std::string{"fork: "} + std::strerror(e));
    }
    return pid;
  }
  // The child: the default action for every signal this process handles (ignored ones stay
  // ignored, as across exec); it dies with this process, even when that one crashes.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (::sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL &&
        sa.sa_handler != SIG_IGN) {
      sa = {};
      sa.sa_handler = SIG_DFL;
      ::sigaction(sig, &sa, nullptr);
    }
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    ::_exit(126);
  }
  if (p.own_group) {
    ::setpgid(0, 0);
  }
  if (p.out_fd >= 0) {
    ::dup2(p.out_fd, STDOUT_FILENO);
  }
  if (p.err_fd >= 0) {
    ::dup2(p.err_fd, STDERR_FILENO);
  }
  const int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
  }
  // No descriptor of this process (a test's client socket, a listening port) lives on in it.
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
  {
    for (int fd = 3; fd < 65536; ++fd) {
      ::close(fd);
    }
  }
  if (!p.cwd.empty() && ::chdir(p.cwd.c_str()) != 0) {
    write_raw(STDERR_FILENO, {"cannot change to ", p.cwd.c_str(), "\n"});
    ::_exit(127);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  char* const* envp = p.envp.empty() ? environ : p.envp.data();
  if (std::strchr(p.argv[0], '/') != nullptr) {
    ::execve(p.argv[0], p.argv.data(), envp);
  } else {
    ::execvpe(p.argv[0], p.argv.data(), envp);
  }
  const int e = errno;
  char digits[12];
  std::size_t n = sizeof digits;
  digits[--n] = '\0';
  for (int v = e; n == sizeof digits - 1 || v > 0; v /= 10) {
    digits[--n] = static_cast<char>('0' + v % 10);
  }
  write_raw(STDERR_FILENO, {"exec ", p.argv[0], " failed, errno ", digits + n, "\n"});
  ::_exit(127);
}

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: a child
/// started by a short-lived thread (surge-chaos's fault thread restarting a node) would get
/// SIGKILL when that thread ends. So every child is forked on this one thread, which lives as
/// long as the process (detached; it ends with the process, and the children with it).
class forker {
 public:
  static forker& instance() {
    static auto* f = new forker; // never destroyed: its thread must outlive every caller
    return *f;
  }

  pid_t spawn(const prepared& p) {
    std::packaged_task<pid_t()> task{[&p] { return fork_exec(p); }};
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

/// An anonymous file (unlinked from the start) for a child's output. Throws std::runtime_error.
int anonymous_file() {
  const auto dir = std::filesystem::temp_directory_path().string();
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) { // a file system without O_TMPFILE
    std::string path = dir + "/surge-child-XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd >= 0) {
      ::unlink(path.c_str());
    }
  }
  if (fd < 0) {
    throw std::runtime_error("cannot create a file in " + dir + ": " + std::strerror(errno));
  }
  return fd;
}

/// At most `max` bytes of `fd` from its start.
std::string contents(int fd, std::size_t max) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    const auto n =
        ::pread(fd, buf, std::min(sizeof buf, max - out.size()), static_cast<off_t>(out.size()));
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

/// Binds 127.0.0.1:`port` (0: any) without SO_REUSEADDR and closes again; the bound port, or 0.
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

} // namespace

pid_t spawn(const child_spec& spec) {
  if (spec.log_path.empty()) {
    const prepared p{spec};
    return forker::instance().spawn(p);
  }
  const int fd =
      ::open(spec.log_path.c_str(),
             O_WRONLY | O_CREAT | O_CLOEXEC | (spec.truncate_log ? O_TRUNC : O_APPEND), 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot open " + spec.log_path + ": " + std::strerror(errno));
  }
  auto logged = spec;
  logged.log_path.clear();
  logged.out_fd = fd;
  logged.err_fd = fd;
  try {
    const pid_t pid = spawn(logged);
    ::close(fd);
    return pid;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

std::vector<std::string> environment(const std::function<bool(std::string_view entry)>& keep) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!keep || keep(*e)) {
      out.emplace_back(*e);
    }
  }
  return out;
}

std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds patience) {
  if (pid <= 0) {
    return -1;
  }
  const auto deadline = steady::now() + patience;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  std::optional<int> result;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      result = status;
      break;
    }
    if (r < 0 && errno != EINTR) {
      result = -1; // not a child of this process (any more)
      break;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) {
      break;
    }
    if (pidfd >= 0) {
      pollfd readable{pidfd, POLLIN, 0};
      ::poll(&readable, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    } else { // a kernel without pidfd_open (before 5.3): look again shortly
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds{5}));
    }
  }
  if (pidfd >= 0) {
    ::close(pidfd);
  }
  return result;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return std::string{"signal "} + ::strsignal(WTERMSIG(status));
  }
  return "wait status " + std::to_string(status);
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

child::~child() {
  if (running()) {
    kill9();
  }
}

void child::start(const child_spec& spec) {
  if (running()) {
    throw std::logic_error("child::start: already running");
  }
  pid_.store(spawn(spec));
}

void child::signal(int sig) const noexcept {
  if (const pid_t pid = pid_.load(); pid > 0) {
    ::kill(pid, sig);
  }
}

std::optional<int> child::wait(std::chrono::milliseconds patience) {
  const auto status = wait_exit(pid_.load(), patience);
  if (status) {
    pid_.store(-1);
  }
  return status;
}

std::optional<int> child::stop(std::chrono::milliseconds patience) {
  if (!running()) {
    return -1;
  }
  signal(SIGCONT);
  signal(SIGTERM);
  if (auto status = wait(patience)) {
    return status;
  }
  kill9();
  return std::nullopt;
}

int child::kill9() {
  const pid_t pid = pid_.load();
  if (pid <= 0) {
    return -1;
  }
  ::kill(pid, SIGKILL);
  int status = -1;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid_.store(-1);
  return status;
}

command_output run(child_spec spec, std::chrono::milliseconds limit, bool merge,
                   std::size_t max_output) {
  const int out_fd = anonymous_file();
  const int err_fd = merge ? out_fd : anonymous_file();
  const auto close_files = [&] {
    ::close(out_fd);
    if (err_fd != out_fd) {
      ::close(err_fd);
    }
  };
  spec.out_fd = out_fd;
  spec.err_fd = err_fd;
  command_output r;
  try {
    child c;
    c.start(spec);
    if (auto status = c.wait(limit)) {
      r.status = *status;
    } else {
      c.kill9();
      r.timed_out = true;
    }
  } catch (...) {
    close_files();
    throw;
  }
  r.out = contents(out_fd, max_output);
  if (!merge) {
    r.err = contents(err_fd, max_output);
  }
  close_files();
  return r;
}

uint16_t pick_free_port() {
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
    static thread_local std::mt19937 rng{std::random_device{}()};
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

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tail_of(const std::string& path, std::size_t lines, std::size_t max_line) {
  std::ifstream in{path};
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line.size() > max_line ? line.substr(0, max_line) + "..." : std::move(line));
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

} // namespace surge::tools
