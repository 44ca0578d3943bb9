#include "surge/tools/roll.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace surge::tools::roll {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) {
    return {};
  }
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

const node_row* find_node(const cluster_view& c, const std::string& id) {
  for (const auto& n : c.nodes) {
    if (n.node_id == id) {
      return &n;
    }
  }
  return nullptr;
}

} // namespace

std::vector<std::string> split_nodes(const std::string& list) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  std::size_t start = 0;
  for (;;) {
    const auto comma = list.find(',', start);
    const auto name =
        trim(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (name.empty()) {
      throw plan_error("--nodes: an empty node name in '" + list + "'");
    }
    if (!seen.insert(name).second) {
      throw plan_error("--nodes: " + name + " is named twice");
    }
    out.push_back(name);
    if (comma == std::string::npos) {
      return out;
    }
    start = comma + 1;
  }
}

std::vector<std::string> plan(const cluster_view& c, const std::vector<std::string>& order) {
  const auto up = std::count_if(c.nodes.begin(), c.nodes.end(),
                                [](const node_row& n) { return n.status == "up"; });
  if (up < 2) {
    throw plan_error("the cluster has " + std::to_string(up) +
                     " member(s) up; a rolling upgrade needs at least two (the others take the "
                     "shards of the node being restarted)");
  }
  if (!order.empty()) {
    for (const auto& id : order) {
      const auto* n = find_node(c, id);
      if (n == nullptr) {
        throw plan_error("node " + id + " is not a member of the cluster");
      }
      if (n->status == "left" || n->status == "down") {
        throw plan_error("node " + id + " is " + n->status + "; start it first or leave it out");
      }
    }
    return order;
  }
  std::vector<std::string> out;
  for (const auto& n : c.nodes) {
    if (n.status == "up" || n.status == "draining") {
      out.push_back(n.node_id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool safe_node_id(const std::string& node) {
  if (node.empty() || node[0] == '-') {
    return false;
  }
  return std::all_of(node.begin(), node.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
  });
}

std::string restart_command(const std::string& tmpl, const std::string& node) {
  static const std::string placeholder = "{node}";
  if (tmpl.find(placeholder) == std::string::npos) {
    throw plan_error("--restart must name the node as {node}, e.g. "
                     "--restart='scripts/restart-node.sh {node}'");
  }
  if (!safe_node_id(node)) {
    throw plan_error("node id '" + node +
                     "' cannot stand in a shell command (letters, digits, '.', '_', '-' only)");
  }
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto at = tmpl.find(placeholder, pos);
    if (at == std::string::npos) {
      out += tmpl.substr(pos);
      return out;
    }
    out += tmpl.substr(pos, at - pos) + node;
    pos = at + placeholder.size();
  }
}

int64_t shard_counts::owned_by(const std::string& node) const {
  for (const auto& [id, n] : owners) {
    if (id == node) {
      return n;
    }
  }
  return 0;
}

shard_counts count_shards(const cluster_view& c, const std::vector<shard_row>& shards) {
  shard_counts k;
  std::map<std::string, int64_t> by_owner;
  for (const auto& s : shards) {
    ++k.total;
    if (s.owner.empty()) {
      ++k.unassigned;
      continue;
    }
    ++by_owner[s.owner];
    if (!s.target.empty()) {
      ++k.moving;
    }
  }
  k.owners.assign(by_owner.begin(), by_owner.end());
  for (const auto& n : c.nodes) {
    if (n.status == "up") {
      k.up.push_back(n.node_id);
      k.owned_by_up.push_back(k.owned_by(n.node_id));
    }
  }
  return k;
}

verdict drained(const shard_counts& k, const std::string& node) {
  const auto owned = k.owned_by(node);
  if (owned > 0) {
    return {false, node + " owns " + std::to_string(owned) + (owned == 1 ? " shard" : " shards")};
  }
  if (k.moving > 0) {
    return {false, std::to_string(k.moving) + (k.moving == 1 ? " move" : " moves") + " under way"};
  }
  return {true, {}};
}

verdict settled(const shard_counts& k) {
  if (k.total == 0) {
    return {false, "the shard map is empty"};
  }
  if (k.unassigned > 0) {
    return {false, std::to_string(k.unassigned) + " shards unassigned"};
  }
  if (k.moving > 0) {
    return {false, std::to_string(k.moving) + (k.moving == 1 ? " move" : " moves") + " under way"};
  }
  return {true, {}};
}

verdict balanced(const cluster_view& c, const shard_counts& k, const std::string& node) {
  const auto* n = find_node(c, node);
  if (n == nullptr) {
    return {false, node + " is not listed in the cluster yet"};
  }
  if (n->status != "up") {
    return {false, node + " is " + (n->status.empty() ? std::string{"?"} : n->status)};
  }
  if (auto s = settled(k); !s.ok) {
    return s;
  }
  const auto [lo, hi] = std::minmax_element(k.owned_by_up.begin(), k.owned_by_up.end());
  const auto up = static_cast<int64_t>(k.up.size());
  const auto share = up > 0 ? k.total / up : 0;
  const auto mine = k.owned_by(node);
  if (mine < share || (lo != k.owned_by_up.end() && *hi - *lo > 1)) {
    return {false, node + " owns " + std::to_string(mine) + " of " + std::to_string(k.total) +
                       " (its share: " + std::to_string(share) +
                       (k.total % up != 0 ? "-" + std::to_string(share + 1) : std::string{}) + ")"};
  }
  return {true, {}};
}

std::pair<std::string, uint16_t> reach(const std::string& address,
                                       const std::string& fallback_host) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    throw plan_error("address '" + address + "' has no port");
  }
  std::string host = address.substr(0, colon);
  const auto port_text = address.substr(colon + 1);
  uint32_t port = 0;
  for (char ch : port_text) {
    if (ch < '0' || ch > '9' || port > 65535) {
      throw plan_error("address '" + address + "' has a bad port");
    }
    port = port * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (port == 0 || port > 65535) {
    throw plan_error("address '" + address + "' has a bad port");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    host = fallback_host;
  }
  return {host, static_cast<uint16_t>(port)};
}

} // namespace surge::tools::roll
