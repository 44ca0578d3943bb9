// The cluster commands: status, nodes, shards, drain, undrain. They read GET /admin/v1/cluster
// and GET /admin/v1/shards (shared/API.md) and post POST /admin/v1/nodes/{id}/drain or /undrain;
// every node answers for the whole cluster (membership lives in PostgreSQL), so any node's admin
// API will do.

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <string_view>
#include <thread>

#include "surge/tools/cluster_rows.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// How often `drain --wait` asks.
constexpr auto poll_interval = 500ms;

using tools::cluster_view;
using tools::node_row;
using tools::shard_row;

/// `read(a.v)` (tools/common's cluster_rows.hpp): an answer of another shape is an error of the
/// server (exit 1) that names `target`.
template <class Read>
auto read_answer(const json_answer& a, const char* target, Read read) {
  try {
    return read(a.v);
  } catch (const std::runtime_error& e) {
    throw cli_error(exit_server_error, std::string{"GET "} + target + ": " + e.what() + ": " +
                                           a.raw.body.substr(0, 200));
  }
}

cluster_view read_cluster(const json_answer& a) {
  return read_answer(a, "/admin/v1/cluster", tools::read_cluster);
}

std::vector<shard_row> read_shards(const json_answer& a) {
  return read_answer(a, "/admin/v1/shards", tools::read_shards);
}

std::string dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

/// "n2, n3": the nodes whose status is `status`, or "".
std::string names_with(const cluster_view& c, const std::string& status) {
  std::string out;
  for (const auto& n : c.nodes) {
    if (n.status == status) {
      out += (out.empty() ? "" : ", ") + n.node_id;
    }
  }
  return out;
}

/// `{"cluster":A,"shards":B}` from two raw bodies (each a JSON object, as checked).
void print_pair(const http_answer& cluster, const http_answer& shards) {
  auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
      s.pop_back();
    }
    return s;
  };
  std::cout << "{\"cluster\":" << trim(cluster.body) << ",\"shard_map\":" << trim(shards.body)
            << "}\n";
}

} // namespace

int cmd_status(const admin_session& s) {
  const auto ca = admin_json(s, "GET", "/admin/v1/cluster");
  const auto sa = admin_json(s, "GET", "/admin/v1/shards");
  const auto c = read_cluster(ca);
  const auto shards = read_shards(sa);
  if (s.json) {
    print_pair(ca.raw, sa.raw);
    return exit_ok;
  }
  std::map<std::string, const node_row*> by_id;
  std::map<std::string, int> by_status;
  int64_t actors = 0;
  for (const auto& n : c.nodes) {
    by_id[n.node_id] = &n;
    ++by_status[n.status];
    actors += n.actors;
  }
  int64_t assigned = 0;
  int64_t unassigned = 0;
  int64_t moving = 0;
  int64_t on_dead = 0;
  for (const auto& sh : shards) {
    if (sh.owner.empty()) {
      ++unassigned;
      continue;
    }
    ++assigned;
    if (!sh.target.empty()) {
      ++moving;
    }
    const auto it = by_id.find(sh.owner);
    if (it == by_id.end() || it->second->status == "down" || it->second->status == "left") {
      ++on_dead;
    }
  }

  std::string this_node = dash(c.this_node);
  if (const auto it = by_id.find(c.this_node); it != by_id.end()) {
    const auto& n = *it->second;
    this_node += " (" + n.status + ", " + std::to_string(n.shards) + " shards, cluster " +
                 dash(n.address) + ", http " + dash(n.http_address) + ", admin " +
                 dash(n.admin_address) + ")";
  }
  std::string members = std::to_string(c.nodes.size()) + ": ";
  bool first = true;
  for (const char* st : {"up", "draining", "down", "left"}) {
    members += (first ? "" : ", ") + std::to_string(by_status[st]) + " " + st;
    first = false;
    if (std::string_view{st} != "up" && by_status[st] > 0) {
      members += " (" + names_with(c, st) + ")";
    }
  }
  for (const auto& [st, n] : by_status) {
    if (st != "up" && st != "draining" && st != "down" && st != "left") {
      members += ", " + std::to_string(n) + " " + st;
    }
  }
  std::string shard_line = std::to_string(c.shards) + ": " + std::to_string(assigned) +
                           " assigned, " + std::to_string(unassigned) + " unassigned, " +
                           std::to_string(moving) + " moving";
  if (on_dead > 0) {
    shard_line += ", " + std::to_string(on_dead) + " on nodes that are down or left";
  }
  if (static_cast<int64_t>(shards.size()) != c.shards) {
    shard_line += " (the shard map has " + std::to_string(shards.size()) + " rows)";
  }
  print_table({{"this node", this_node},
               {"members", members},
               {"shards", shard_line},
               {"actors", std::to_string(actors) + " live entity actors"}},
              {});
  return exit_ok;
}

int cmd_nodes(const admin_session& s) {
  const auto a = admin_json(s, "GET", "/admin/v1/cluster");
  const auto c = read_cluster(a);
  if (s.json) {
    print_raw(a.raw);
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "STATUS", "SHARDS", "ACTORS", "HEARTBEAT", "ADDRESS", "HTTP", "ADMIN"}};
  for (const auto& n : c.nodes) {
    rows.push_back({dash(n.node_id), dash(n.status), std::to_string(n.shards),
                    std::to_string(n.actors),
                    n.heartbeat_age_ms < 0 ? "-" : human_duration(n.heartbeat_age_ms),
                    dash(n.address), dash(n.http_address), dash(n.admin_address)});
  }
  print_table(rows, {false, false, true, true, true, false, false, false});
  return exit_ok;
}

int cmd_shards(const admin_session& s, bool all) {
  const auto sa = admin_json(s, "GET", "/admin/v1/shards");
  const auto shards = read_shards(sa);
  if (s.json) {
    print_raw(sa.raw);
    return exit_ok;
  }
  if (all) {
    std::vector<std::vector<std::string>> rows = {{"SHARD", "OWNER", "EPOCH", "TARGET"}};
    for (const auto& sh : shards) {
      rows.push_back(
          {std::to_string(sh.shard), dash(sh.owner), std::to_string(sh.epoch), dash(sh.target)});
    }
    print_table(rows, {true, false, true, false});
    return exit_ok;
  }
  const auto c = read_cluster(admin_json(s, "GET", "/admin/v1/cluster"));

  struct counts {
    std::string status = "?";
    int64_t owned = 0;
    int64_t out = 0;
    int64_t in = 0;
  };
  std::map<std::string, counts> per_node;
  std::vector<std::string> order; // the cluster's order, then owners it does not list
  for (const auto& n : c.nodes) {
    if (per_node.emplace(n.node_id, counts{n.status}).second) {
      order.push_back(n.node_id);
    }
  }
  int64_t unassigned = 0;
  std::vector<const shard_row*> moves;
  for (const auto& sh : shards) {
    if (sh.owner.empty()) {
      ++unassigned;
      continue;
    }
    if (per_node.emplace(sh.owner, counts{}).second) {
      order.push_back(sh.owner);
    }
    ++per_node[sh.owner].owned;
    if (!sh.target.empty()) {
      ++per_node[sh.owner].out;
      if (per_node.emplace(sh.target, counts{}).second) {
        order.push_back(sh.target);
      }
      ++per_node[sh.target].in;
      moves.push_back(&sh);
    }
  }
  std::vector<std::vector<std::string>> rows = {{"NODE", "STATUS", "SHARDS", "OUT", "IN"}};
  for (const auto& id : order) {
    const auto& k = per_node[id];
    if (k.status == "left" && k.owned == 0 && k.in == 0) {
      continue; // gone for good, owns nothing
    }
    rows.push_back(
        {id, k.status, std::to_string(k.owned), std::to_string(k.out), std::to_string(k.in)});
  }
  if (unassigned > 0) {
    rows.push_back({"-", "unassigned", std::to_string(unassigned), "0", "0"});
  }
  print_table(rows, {false, false, true, true, true});
  std::cout << "\n"
            << shards.size() << " shards, " << unassigned << " unassigned, " << moves.size()
            << (moves.size() == 1 ? " move" : " moves") << " under way\n";
  if (!moves.empty()) {
    std::vector<std::vector<std::string>> mv = {{"SHARD", "FROM", "TO", "EPOCH"}};
    for (const auto* m : moves) {
      mv.push_back({std::to_string(m->shard), m->owner, m->target, std::to_string(m->epoch)});
    }
    std::cout << "\n";
    print_table(mv, {true, false, false, true});
  }
  return exit_ok;
}

int cmd_undrain(const admin_session& s, const std::string& node) {
  const auto a = admin_json(s, "POST", "/admin/v1/nodes/" + path_segment(node) + "/undrain");
  if (s.json) {
    print_raw(a.raw);
  } else {
    std::cout << "node " << node << ": " << text_of(a.v, "status") << "\n";
  }
  return exit_ok;
}

int cmd_drain(const admin_session& s, const std::string& node,
              std::optional<std::chrono::milliseconds> wait) {
  const auto a = admin_json(s, "POST", "/admin/v1/nodes/" + path_segment(node) + "/drain");
  if (s.json) {
    print_raw(a.raw);
  } else {
    std::cout << "node " << node << ": " << text_of(a.v, "status") << "\n" << std::flush;
  }
  if (!wait) {
    return exit_ok;
  }

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const auto t0 = steady::now();
  const auto deadline = t0 + *wait;
  auto elapsed = [&] {
    return human_duration(
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count());
  };
  int64_t last_count = -1;
  auto last_print = steady::time_point{};
  bool warned_alone = false;
  std::optional<cli_error> last_failure;
  for (;;) {
    int64_t owned = -1;
    try {
      const auto c = read_cluster(admin_json(s, "GET", "/admin/v1/cluster"));
      last_failure.reset();
      owned = 0; // a node the cluster does not list any more owns nothing
      bool others_up = false;
      for (const auto& n : c.nodes) {
        if (n.node_id == node) {
          owned = n.shards;
        } else if (n.status == "up") {
          others_up = true;
        }
      }
      if (!others_up && owned > 0 && !warned_alone) {
        warned_alone = true;
        std::cerr << (tty ? "\n" : "") << "surgectl: no other member is up to take the shards of "
                  << node << "; waiting for one\n";
      }
    } catch (const cli_error& e) {
      if (e.code == exit_usage) {
        throw;
      }
      last_failure = e; // a node restarting behind the admin URL: ask again
    }
    const auto now = steady::now();
    if (owned == 0) {
      if (tty && last_count >= 0) {
        std::cerr << "\n";
      }
      std::cerr << "surgectl: " << node << " drained: it owns no shards (after " << elapsed()
                << ")\n";
      if (!s.json) {
        std::cout << "node " << node << ": drained\n";
      }
      return exit_ok;
    }
    if (owned > 0 && (owned != last_count || now - last_print >= 5s)) {
      std::string line = "surgectl: draining " + node + ": " + std::to_string(owned) +
                         (owned == 1 ? " shard" : " shards") + " left (" + elapsed() + ")";
      if (tty) {
        std::cerr << "\r" << line << "\033[K" << std::flush;
      } else {
        std::cerr << line << "\n";
      }
      last_count = owned;
      last_print = now;
    } else if (last_failure && now - last_print >= 5s) {
      std::cerr << (tty ? "\n" : "") << "surgectl: " << last_failure->what() << "; retrying\n";
      last_print = now;
    }
    if (interrupted()) {
      if (tty) {
        std::cerr << "\n";
      }
      throw cli_error(exit_server_error,
                      "interrupted after " + elapsed() + "; the drain of " + node + " goes on");
    }
    if (now >= deadline) {
      if (tty && last_count >= 0) {
        std::cerr << "\n";
      }
      if (last_failure && last_count < 0) {
        throw cli_error(last_failure->code, last_failure->what());
      }
      throw cli_error(exit_server_error,
                      "timed out after " + elapsed() + ": " + node + " still owns " +
                          (last_count < 0 ? std::string{"?"} : std::to_string(last_count)) +
                          " shards (the drain goes on)");
    }
    std::this_thread::sleep_for(
        std::min<steady::duration>(poll_interval, std::max<steady::duration>(deadline - now, 0ms)));
  }
}

} // namespace surge::ctl
