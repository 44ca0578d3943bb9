#include "run_program.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace surge::test {

std::string read_file(const std::string& path) {
  std::ifstream f{path};
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

program_result run_program(const std::vector<std::string>& argv_in,
                           const std::optional<std::vector<std::string>>& env,
                           std::chrono::milliseconds patience) {
  static int n = 0;
  const auto base = (std::filesystem::temp_directory_path() /
                     ("surge_test_run_" + std::to_string(::getpid()) + "_" + std::to_string(++n)))
                        .string();
  const auto out_path = base + ".out";
  const auto err_path = base + ".err";
  std::vector<std::string> argv_s = argv_in;
  std::vector<char*> argv;
  for (auto& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env ? *env : std::vector<std::string>{};
  std::vector<char*> envp;
  for (auto& e : env_s) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error("cannot fork");
  }
  if (pid == 0) {
    FILE* o = std::fopen(out_path.c_str(), "w");
    FILE* e = std::fopen(err_path.c_str(), "w");
    if (o == nullptr || e == nullptr) {
      ::_exit(127);
    }
    ::dup2(fileno(o), 1);
    ::dup2(fileno(e), 2);
    if (env) {
      ::execve(argv[0], argv.data(), envp.data());
    } else {
      ::execv(argv[0], argv.data());
    }
    ::_exit(127);
  }
  program_result r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  if (WIFEXITED(status)) {
    r.code = WEXITSTATUS(status);
  }
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

} // namespace surge::test
