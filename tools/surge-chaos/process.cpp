#include "process.hpp"

#include <sys/wait.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace surge::chaos {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

command_result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
  tools::child_spec spec;
  spec.argv = argv;
  spec.own_process_group = true;
  tools::command_output r;
  try {
    r = tools::run(spec, limit, true, 65536);
  } catch (const std::exception& e) {
    return {-1, e.what()};
  }
  if (r.timed_out) {
    return {-1, r.out + "\n(killed after " + std::to_string(limit.count()) + " ms)"};
  }
  return {tools::exit_code(r.status), r.out};
}

void child::start(const std::vector<std::string>& argv, const std::string& log_path) {
  if (running()) {
    throw std::logic_error("child::start: already running");
  }
  std::string line = "==== surge-chaos starts:";
  for (const auto& a : argv) {
    line += " " + a;
  }
  std::ofstream{log_path, std::ios::app} << line << "\n";
  tools::child_spec spec;
  spec.argv = argv;
  spec.log_path = log_path;
  spec.own_process_group = true;
  start(spec);
}

bool child::dead() const {
  const pid_t p = pid();
  if (p <= 0) {
    return false;
  }
  std::ifstream stat{"/proc/" + std::to_string(p) + "/stat"};
  std::string text;
  std::getline(stat, text);
  const auto paren = text.rfind(')');
  return !stat || paren == std::string::npos || paren + 2 >= text.size() ||
         text[paren + 2] == 'Z' || text[paren + 2] == 'X';
}

std::string child::how_it_ended() const {
  const pid_t p = pid();
  siginfo_t info{};
  if (p <= 0 || ::waitid(P_PID, static_cast<id_t>(p), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != p) {
    return {};
  }
  if (info.si_code == CLD_EXITED) {
    return "exit status " + std::to_string(info.si_status);
  }
  return std::string{"signal "} + sigabbrev_np(info.si_status);
}

} // namespace surge::chaos
