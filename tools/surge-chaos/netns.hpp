#pragma once

// netns mode: builds the network of netplan.hpp (bridge, one namespace per node, veths) and
// removes it again (at the end, on failure, and at the start: leftovers of a crashed run with
// the same prefix). One run at a time per prefix: a lock file guards it.

#include <string>
#include <vector>

#include "netplan.hpp"

namespace surge::chaos {

class netns_network {
 public:
  explicit netns_network(net_layout l);
  ~netns_network();
  netns_network(const netns_network&) = delete;
  netns_network& operator=(const netns_network&) = delete;

  /// Checks that namespaces can be used here (root, iproute2, the lock, the subnet free),
  /// removes leftovers and builds the network. "" on success, else why not (nothing is left
  /// behind then).
  std::string setup();
  /// Removes namespaces, veths and the bridge; idempotent.
  void teardown();
  bool up() const { return up_; }
  const net_layout& layout() const { return l_; }
  /// What setup() found and removed from an earlier run ("" when nothing).
  const std::string& leftovers() const { return leftovers_; }

  /// The best link shaper that works here (a qdisc on lo in a scratch namespace: netem, else
  /// tbf); `why` says why netem (and tbf) could not be used.
  link_shaper probe_shaper(std::string& why);
  /// Runs the commands in order; throws std::runtime_error naming the first that fails.
  static void run_all(const std::vector<argv_t>& commands);

 private:
  void remove_everything();
  net_layout l_;
  int lock_fd_ = -1;
  bool up_ = false;
  std::string leftovers_;
};

} // namespace surge::chaos
