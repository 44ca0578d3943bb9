#pragma once

// The network of a run in netns mode, as data: names, addresses and the iproute2/tc commands
// that build it, cut it and heal it. Pure functions (no command is run here), so that the
// layout and every partition plan can be unit-tested; netns.cpp runs them.
//
// Layout: a bridge `<prefix>br` in the root namespace holds 10.77.0.1/24 (Redis, paysim, the
// harness's clients) and 10.77.0.2/32 (PostgreSQL alone, so that it can be cut off without
// Redis); node i (0-based) lives in namespace `<prefix>n<i+1>` with `eth0` = 10.77.0.(11+i)/24,
// joined to the bridge by the veth `<prefix>v<i+1>`. Inside each node namespace the `local`
// routing rule is moved from preference 0 to 1000, so that cut rules at preference 100 see
// incoming packets too.

#include <cstdint>
#include <string>
#include <vector>

namespace surge::chaos {

using argv_t = std::vector<std::string>;

struct net_layout {
  std::string prefix = "schaos";  ///< names: <prefix>br, <prefix>nK, <prefix>vK (<= 15 chars)
  std::string subnet = "10.77.0"; ///< a /24: .1 hub, .2 PostgreSQL, .11.. nodes
  int nodes = 3;

  std::string bridge() const { return prefix + "br"; }
  std::string ns(int i) const { return prefix + "n" + std::to_string(i + 1); }
  std::string veth(int i) const { return prefix + "v" + std::to_string(i + 1); }
  std::string hub_address() const { return subnet + ".1"; }
  std::string pg_address() const { return subnet + ".2"; }
  std::string node_address(int i) const { return subnet + "." + std::to_string(11 + i); }
};

/// Builds the bridge, the namespaces and the veths, in order.
std::vector<argv_t> net_setup_commands(const net_layout& l);

/// Removes what net_setup_commands built (namespace deletion takes its veth along); each may
/// fail when that part is already gone. `leftover_namespaces`: further names with the prefix
/// (a crashed run with more nodes), from `ip netns list`.
std::vector<argv_t> net_teardown_commands(const net_layout& l,
                                          const std::vector<std::string>& leftover_namespaces = {});

/// Namespace names in the output of `ip netns list` that start with the prefix.
std::vector<std::string> namespaces_with_prefix(const std::string& ip_netns_list,
                                                const std::string& prefix);

/// Runs `argv` inside node i's namespace (`ip netns exec NS argv...`).
argv_t in_node_ns(const net_layout& l, int i, const argv_t& argv);

/// A partition of one node, from a schedule variant: "<scope>[-<direction>]" with scope
/// peers | pg | all and direction in | out (none: both ways).
///   in:  packets from the others to the node are dropped on arrival (the node still sends)
///   out: packets from the node to the others are dropped (blackhole route; it still receives)
struct partition_plan {
  bool peers = false;
  bool pg = false;
  bool in = false;
  bool out = false;
  std::vector<std::string> cut_off; ///< the addresses the node loses
  std::vector<argv_t> cut;          ///< `ip -n NS rule add pref 100 ... blackhole`
  std::vector<argv_t> heal;         ///< the same rules deleted, in reverse order
  std::string describe;             ///< "n2 cut off from peers n1,n3 (both ways)"
};

/// Throws std::invalid_argument on an unknown variant or node index.
partition_plan plan_partition(const net_layout& l, int node, const std::string& variant);

/// Every partition variant the schedule draws from.
const std::vector<std::string>& partition_variants();

/// How latency and loss faults degrade a node's link: tc netem (a fixed delay with jitter, a
/// random loss rate) when the kernel has sch_netem; otherwise a token bucket (tbf), which is a
/// real but blunter degradation: a slow link whose queue delays packets up to a bound and drops
/// them beyond it.
enum class link_shaper { netem, tbf, none };

const char* to_string(link_shaper s);

/// A root qdisc on both ends of node i's link (eth0 in its namespace, its veth in the root
/// namespace), so that everything it sends and receives is affected. `qdisc` starts with the
/// qdisc kind, e.g. {"netem", "delay", "150ms", "37ms"}.
std::vector<argv_t> shape_add_commands(const net_layout& l, int i, const argv_t& qdisc);
std::vector<argv_t> shape_del_commands(const net_layout& l, int i);
/// `tc -s qdisc show dev D` for both ends (the device name is the last word).
std::vector<argv_t> shape_stats_commands(const net_layout& l, int i);
/// "Sent 1234 bytes 56 pkt (dropped 7, overlimits 89 requeues 0)" from `tc -s qdisc show`'s
/// output for the root qdisc, or "" when there is none.
std::string qdisc_stats_line(const std::string& tc_output);

/// The qdisc of a latency or loss fault from its schedule variant ("150ms", "15%"):
///   netem latency: {"netem", "delay", D, D/4}          netem loss: {"netem", "loss", P}
///   tbf latency:   a 512 kbit/s link queueing up to D  (packets wait up to D, drop beyond)
///   tbf loss:      a 1 Mbit/s link with a queue of 1500 * max(1, 30 / P) bytes (more tail
///                  drops the higher P; not a random P % loss)
/// Throws std::invalid_argument on another kind or link_shaper::none.
argv_t shape_args(link_shaper s, const std::string& kind, const std::string& variant);

/// "ip netns exec NS tc qdisc add dev lo root <qdisc kind> ..." in a scratch namespace: whether
/// that shaper works here.
std::vector<argv_t> shaper_probe_commands(const std::string& scratch_ns, link_shaper s);

/// One argv as a shell-like line (for logs and notes).
std::string join_argv(const argv_t& argv);

} // namespace surge::chaos
