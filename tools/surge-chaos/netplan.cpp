#include "netplan.hpp"

#include <algorithm>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "surge/config/names.hpp"

namespace surge::chaos {

std::vector<argv_t> net_setup_commands(const net_layout& l) {
  const std::string br = l.bridge();
  std::vector<argv_t> out{
      {"ip", "link", "add", br, "type", "bridge"},
      {"ip", "addr", "add", l.hub_address() + "/24", "dev", br},
      {"ip", "addr", "add", l.pg_address() + "/32", "dev", br},
      {"ip", "link", "set", br, "up"},
  };
  for (int i = 0; i < l.nodes; ++i) {
    const std::string ns = l.ns(i);
    const std::string veth = l.veth(i);
    out.push_back({"ip", "netns", "add", ns});
    out.push_back({"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns});
    out.push_back({"ip", "link", "set", veth, "master", br});
    out.push_back({"ip", "link", "set", veth, "up"});
    out.push_back({"ip", "-n", ns, "link", "set", "lo", "up"});
    out.push_back({"ip", "-n", ns, "addr", "add", l.node_address(i) + "/24", "dev", "eth0"});
    out.push_back({"ip", "-n", ns, "link", "set", "eth0", "up"});
    // Cut rules (pref 100) must come before the local table, or packets addressed to the node
    // would be delivered before any rule looked at their source.
    out.push_back({"ip", "-n", ns, "rule", "add", "pref", "1000", "lookup", "local"});
    out.push_back({"ip", "-n", ns, "rule", "del", "pref", "0"});
  }
  return out;
}

std::vector<argv_t> net_teardown_commands(const net_layout& l,
                                          const std::vector<std::string>& leftover_namespaces) {
  std::vector<std::string> names;
  for (int i = 0; i < l.nodes; ++i) {
    names.push_back(l.ns(i));
  }
  for (const auto& n : leftover_namespaces) {
    if (n.rfind(l.prefix, 0) == 0 && std::find(names.begin(), names.end(), n) == names.end()) {
      names.push_back(n);
    }
  }
  std::vector<argv_t> out;
  for (const auto& n : names) {
    out.push_back({"ip", "netns", "del", n});
  }
  for (int i = 0; i < l.nodes; ++i) {
    out.push_back({"ip", "link", "del", l.veth(i)}); // normally gone with its namespace
  }
  out.push_back({"ip", "link", "del", l.bridge()});
  return out;
}

std::vector<std::string> namespaces_with_prefix(const std::string& ip_netns_list,
                                                const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in{ip_netns_list};
  std::string line;
  while (std::getline(in, line)) {
    // "schaosn1 (id: 3)" or "schaosn1"
    const std::string name = line.substr(0, line.find(' '));
    if (!name.empty() && !prefix.empty() && name.rfind(prefix, 0) == 0) {
      out.push_back(name);
    }
  }
  return out;
}

argv_t in_node_ns(const net_layout& l, int i, const argv_t& argv) {
  argv_t out{"ip", "netns", "exec", l.ns(i)};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

const std::vector<std::string>& partition_variants() {
  static const std::vector<std::string> v{"peers", "pg",     "all",    "peers-in", "peers-out",
                                          "pg-in", "pg-out", "all-in", "all-out"};
  return v;
}

partition_plan plan_partition(const net_layout& l, int node, const std::string& variant) {
  if (node < 0 || node >= l.nodes) {
    throw std::invalid_argument("partition: no node " + std::to_string(node));
  }
  if (std::find(partition_variants().begin(), partition_variants().end(), variant) ==
      partition_variants().end()) {
    throw std::invalid_argument("partition: unknown variant '" + variant + "'");
  }
  partition_plan p;
  const auto dash = variant.find('-');
  const std::string scope = variant.substr(0, dash);
  const std::string dir = dash == std::string::npos ? "" : variant.substr(dash + 1);
  p.peers = scope == "peers" || scope == "all";
  p.pg = scope == "pg" || scope == "all";
  p.in = dir.empty() || dir == "in";
  p.out = dir.empty() || dir == "out";
  std::string names;
  if (p.peers) {
    for (int j = 0; j < l.nodes; ++j) {
      if (j != node) {
        p.cut_off.push_back(l.node_address(j));
        names += (names.empty() ? "" : ",") + std::string{"n"} + std::to_string(j + 1);
      }
    }
  }
  if (p.pg) {
    p.cut_off.push_back(l.pg_address());
  }
  const std::string ns = l.ns(node);
  for (const auto& addr : p.cut_off) {
    if (p.out) {
      p.cut.push_back(
          {"ip", "-n", ns, "rule", "add", "pref", "100", "to", addr + "/32", "blackhole"});
    }
    if (p.in) {
      p.cut.push_back(
          {"ip", "-n", ns, "rule", "add", "pref", "100", "from", addr + "/32", "blackhole"});
    }
  }
  for (auto it = p.cut.rbegin(); it != p.cut.rend(); ++it) {
    auto del = *it;
    del[4] = "del";
    p.heal.push_back(std::move(del));
  }
  std::string what;
  if (p.peers) {
    what = "peers " + (names.empty() ? std::string{"(none)"} : names);
  }
  if (p.pg) {
    what += (what.empty() ? "" : " and ") + std::string{"PostgreSQL"};
  }
  p.describe = "n" + std::to_string(node + 1) + " cut off from " + what +
               (p.in && p.out ? " (both ways)"
                : p.in        ? " (one way: receives nothing from them, still sends)"
                              : " (one way: sends nothing to them, still receives)");
  return p;
}

const char* to_string(link_shaper x) {
  static constexpr const char* names[] = {"netem", "tbf", "none"};
  static_assert(std::size(names) == config::count_of(link_shaper::netem, link_shaper::none));
  return config::name_of(x, names, "none");
}

std::vector<argv_t> shape_add_commands(const net_layout& l, int i, const argv_t& qdisc) {
  argv_t inside{"ip", "netns", "exec", l.ns(i), "tc", "qdisc", "add", "dev", "eth0", "root"};
  argv_t outside{"tc", "qdisc", "add", "dev", l.veth(i), "root"};
  inside.insert(inside.end(), qdisc.begin(), qdisc.end());
  outside.insert(outside.end(), qdisc.begin(), qdisc.end());
  return {inside, outside};
}

std::vector<argv_t> shape_del_commands(const net_layout& l, int i) {
  return {{"ip", "netns", "exec", l.ns(i), "tc", "qdisc", "del", "dev", "eth0", "root"},
          {"tc", "qdisc", "del", "dev", l.veth(i), "root"}};
}

std::vector<argv_t> shape_stats_commands(const net_layout& l, int i) {
  return {{"ip", "netns", "exec", l.ns(i), "tc", "-s", "qdisc", "show", "dev", "eth0"},
          {"tc", "-s", "qdisc", "show", "dev", l.veth(i)}};
}

std::string qdisc_stats_line(const std::string& tc_output) {
  // The first qdisc listed is the root one; its statistics follow on the next "Sent" line.
  const auto at = tc_output.find("Sent ");
  if (at == std::string::npos) {
    return {};
  }
  const auto end = tc_output.find_first_of("\r\n", at);
  std::string line = tc_output.substr(at, end == std::string::npos ? std::string::npos : end - at);
  while (!line.empty() && line.back() == ' ') {
    line.pop_back();
  }
  return line;
}

argv_t shape_args(link_shaper s, const std::string& kind, const std::string& variant) {
  if (kind != "latency" && kind != "loss") {
    throw std::invalid_argument("link shaping: unknown kind '" + kind + "'");
  }
  if (s == link_shaper::none) {
    throw std::invalid_argument("link shaping: no shaper");
  }
  if (kind == "latency") {
    const std::string delay = variant.empty() ? "150ms" : variant;
    const long ms = std::stol(delay);
    if (s == link_shaper::netem) {
      return {"netem", "delay", delay, std::to_string(std::max(1L, ms / 4)) + "ms"};
    }
    return {"tbf", "rate", "512kbit", "burst", "8kb", "latency", delay};
  }
  const std::string loss = variant.empty() ? "15%" : variant;
  if (s == link_shaper::netem) {
    return {"netem", "loss", loss};
  }
  const long pct = std::max(1L, std::stol(loss));
  return {"tbf",
          "rate",
          "1mbit",
          "burst",
          "4kb",
          "limit",
          std::to_string(1500 * std::max(1L, 30 / pct))};
}

std::vector<argv_t> shaper_probe_commands(const std::string& scratch_ns, link_shaper s) {
  argv_t qdisc = s == link_shaper::netem
                     ? argv_t{"netem", "delay", "1ms"}
                     : argv_t{"tbf", "rate", "1mbit", "burst", "4kb", "latency", "50ms"};
  argv_t add{"ip", "netns", "exec", scratch_ns, "tc", "qdisc", "add", "dev", "lo", "root"};
  add.insert(add.end(), qdisc.begin(), qdisc.end());
  return {{"ip", "netns", "add", scratch_ns}, add};
}

std::string join_argv(const argv_t& argv) {
  std::string out;
  for (const auto& a : argv) {
    out += (out.empty() ? "" : " ") + a;
  }
  return out;
}

} // namespace surge::chaos
