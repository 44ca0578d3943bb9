#include "netns.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "process.hpp"

namespace surge::chaos {

using namespace std::chrono_literals;

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

} // namespace

netns_network::netns_network(net_layout l)
    : l_(std::move(l)) {}

netns_network::~netns_network() {
  teardown();
}

void netns_network::run_all(const std::vector<argv_t>& commands) {
  for (const auto& c : commands) {
    auto r = run_command(c, 20s);
    if (r.exit_code != 0) {
      throw std::runtime_error("'" + join_argv(c) + "' failed (" +
                               (r.exit_code < 0 ? std::string{"did not finish"}
                                                : "exit " + std::to_string(r.exit_code)) +
                               "): " + trimmed(r.output));
    }
  }
}

void netns_network::remove_everything() {
  const auto list = run_command({"ip", "netns", "list"}, 10s);
  const auto found = namespaces_with_prefix(list.output, l_.prefix);
  for (const auto& c : net_teardown_commands(l_, found)) {
    run_command(c, 20s); // a part that is already gone fails: fine
  }
}

std::string netns_network::setup() {
  if (::geteuid() != 0) {
    return "not running as root";
  }
  if (run_command({"ip", "-V"}, 10s).exit_code != 0) {
    return "iproute2's ip not found";
  }
  const std::string dir = std::filesystem::exists("/run/lock") ? "/run/lock" : "/tmp";
  const std::string lock = dir + "/surge-chaos-" + l_.prefix + ".lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd_ >= 0) {
      ::close(lock_fd_);
      lock_fd_ = -1;
    }
    return "another surge-chaos run uses the network namespaces (" + lock + " is locked)";
  }
  // Holding the lock, anything with the prefix is a leftover of a run that died.
  const auto list = run_command({"ip", "netns", "list"}, 10s);
  if (list.exit_code != 0) {
    teardown();
    return "'ip netns list' failed: " + trimmed(list.output);
  }
  const auto found = namespaces_with_prefix(list.output, l_.prefix);
  const bool bridge_left =
      run_command({"ip", "link", "show", "dev", l_.bridge()}, 10s).exit_code == 0;
  if (!found.empty() || bridge_left) {
    leftovers_ = "removed leftovers of an earlier run:";
    for (const auto& n : found) {
      leftovers_ += " netns " + n;
    }
    leftovers_ += bridge_left ? " bridge " + l_.bridge() : "";
    remove_everything();
  }
  const auto used = run_command({"ip", "-4", "-o", "addr", "show", "to", l_.subnet + ".0/24"}, 10s);
  if (used.exit_code != 0 || !trimmed(used.output).empty()) {
    teardown();
    return l_.subnet + ".0/24 is already in use on this machine: " + trimmed(used.output);
  }
  up_ = true; // from here on, teardown() removes what was built
  try {
    run_all(net_setup_commands(l_));
  } catch (const std::exception& e) {
    teardown();
    return e.what();
  }
  return {};
}

void netns_network::teardown() {
  if (up_) {
    remove_everything();
    up_ = false;
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_); // releases the flock
    lock_fd_ = -1;
  }
}

link_shaper netns_network::probe_shaper(std::string& why) {
  const std::string scratch = l_.prefix + "probe";
  why.clear();
  for (auto s : {link_shaper::netem, link_shaper::tbf}) {
    run_command({"ip", "netns", "del", scratch}, 10s);
    bool ok = true;
    for (const auto& c : shaper_probe_commands(scratch, s)) {
      auto r = run_command(c, 20s);
      if (r.exit_code != 0) {
        why += (why.empty() ? "" : "; ") + ("'" + join_argv(c) + "' failed: " + trimmed(r.output));
        ok = false;
        break;
      }
    }
    run_command({"ip", "netns", "del", scratch}, 10s);
    if (ok) {
      return s;
    }
  }
  return link_shaper::none;
}

} // namespace surge::chaos
