// `surgectl roll`: a rolling upgrade, one node at a time. For each node of the plan: drain it
// (POST /admin/v1/nodes/{id}/drain), wait until it owns no shard and no move is under way, run
// the operator's restart command (which stops the old process and starts the new binary), wait
// until the node is up in the cluster and its /readyz answers 200, and until the shards are
// balanced again; then the next. The rules (plan, drained, balanced) are tools/common's roll.hpp.
// Every wait is bounded; a failure stops the roll with exit 1 and says where it stopped.

#include <algorithm>
#include <iostream>
#include <sstream>
#include <thread>

#include "surge/tools/process.hpp"
#include "surge/tools/roll.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
namespace roll = tools::roll;

constexpr const char* roll_usage_text =
    R"(usage: surgectl roll --restart='COMMAND {node}' [--nodes=N1,N2,...] [--dry-run]
                     [--drain-timeout=300s] [--restart-timeout=120s] [--ready-timeout=120s]
                     [--balance-timeout=300s] [--admin=URL] [--token=T]

a rolling upgrade, one node at a time; for each node:
  1. drain     POST /admin/v1/nodes/{node}/drain, then wait until it owns no shard and no move
               is under way (it keeps serving, by forwarding, meanwhile)
  2. restart   run COMMAND with {node} replaced by the node id (through /bin/sh): it stops the
               old process (SIGTERM: /readyz 503, then the listeners close) and starts the new
               binary with the same node.id, and returns; its output goes to stderr
  3. ready     wait until the node is up in GET /admin/v1/cluster and GET /readyz on its
               storefront address answers 200
  4. balanced  wait until every shard has an owner, no move is under way and the up members'
               shard counts differ by at most one (the node owns its share again)
then the next node. Progress and timings on stderr, a summary table on stdout.

flags:
  --restart=COMMAND      the restart command; must contain {node}
  --nodes=N1,N2,...      the nodes in this order (default: every member up or draining, by id)
  --dry-run              print the plan (the nodes and their restart commands) and exit
  --drain-timeout=T      per node, for step 1 (default 300s)
  --restart-timeout=T    per node, for COMMAND to exit (default 120s)
  --ready-timeout=T      per node, for step 3 (default 120s)
  --balance-timeout=T    per node, for step 4 (default 300s); also how long the roll waits
                         for a settled cluster before it starts
  --admin=URL, --token=T as for every command; the admin URL should reach a node that stays up
                         or a load balancer over the nodes' admin ports (failed polls are
                         retried until the step's timeout)

exit status: 0 every node rolled; 1 a step failed or timed out (the message names the node and
the step; nodes before it are done, the ones after it untouched); 2 usage error; 3 the admin
API cannot be reached at the start
)";

struct roll_options {
  std::string restart;
  std::vector<std::string> nodes;
  bool dry_run = false;
  std::chrono::milliseconds drain_timeout = 300s;
  std::chrono::milliseconds restart_timeout = 120s;
  std::chrono::milliseconds ready_timeout = 120s;
  std::chrono::milliseconds balance_timeout = 300s;
};

/// How often the waits ask.
constexpr auto poll_interval = 250ms;

int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

struct snapshot {
  tools::cluster_view cluster;
  roll::shard_counts counts;
};

/// GET /admin/v1/cluster and /admin/v1/shards. Throws cli_error.
snapshot look(const admin_session& s) {
  const auto ca = admin_json(s, "GET", "/admin/v1/cluster");
  const auto sa = admin_json(s, "GET", "/admin/v1/shards");
  snapshot out;
  try {
    out.cluster = tools::read_cluster(ca.v);
    out.counts = roll::count_shards(out.cluster, tools::read_shards(sa.v));
  } catch (const std::runtime_error& e) {
    throw cli_error(exit_server_error, std::string{"the admin API's answer: "} + e.what());
  }
  return out;
}

/// Polls `check` (a roll::verdict of a snapshot) until it is ok or `limit` runs out; admin
/// failures meanwhile (the node behind the URL restarting) are retried. Prints the reason on
/// stderr when it changes (and every 5 s). Throws cli_error(exit_server_error) on timeout with
/// `step` and the last reason.
template <class Check>
void wait_for(const admin_session& s, const std::string& prefix, const std::string& step,
              std::chrono::milliseconds limit, Check check) {
  const auto t0 = steady::now();
  std::string last_why;
  auto last_print = steady::time_point{};
  for (;;) {
    std::string why;
    try {
      const auto v = check(look(s));
      if (v.ok) {
        return;
      }
      why = v.why;
    } catch (const cli_error& e) {
      if (e.code == exit_usage) {
        throw;
      }
      why = std::string{"admin API: "} + e.what();
    }
    const auto now = steady::now();
    if (why != last_why || now - last_print >= 5s) {
      std::cerr << prefix << step << ": waiting: " << why << " (" << human_duration(ms_since(t0))
                << ")\n";
      last_why = why;
      last_print = now;
    }
    if (interrupted()) {
      throw cli_error(exit_server_error, "interrupted during " + step + ": " + why);
    }
    if (now - t0 >= limit) {
      throw cli_error(exit_server_error,
                      step + " timed out after " + human_duration(ms_since(t0)) + ": " + why);
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

/// GET /readyz at the node's storefront address is 200 (the same check a load balancer makes).
roll::verdict node_ready(const admin_session& s, const snapshot& snap, const std::string& node) {
  const tools::node_row* row = nullptr;
  for (const auto& n : snap.cluster.nodes) {
    if (n.node_id == node) {
      row = &n;
    }
  }
  if (row == nullptr) {
    return {false, node + " is not listed in the cluster"};
  }
  if (row->status != "up") {
    return {false, node + " is " + (row->status.empty() ? std::string{"?"} : row->status)};
  }
  const auto address = row->http_address.empty() ? row->admin_address : row->http_address;
  std::pair<std::string, uint16_t> where;
  try {
    where = roll::reach(address, s.ep.host);
  } catch (const roll::plan_error& e) {
    return {false, node + ": " + e.what()};
  }
  try {
    const auto a = admin_call({where.first, where.second}, {}, "GET", "/readyz", {}, 2s);
    if (a.status != 200) {
      return {false, "GET /readyz on " + address + ": " + std::to_string(a.status)};
    }
  } catch (const cli_error& e) {
    return {false, "GET /readyz on " + address + ": " + e.what()};
  }
  return {true, {}};
}

/// Runs the restart command through /bin/sh; its output goes to our stderr. Throws cli_error.
void run_restart(const std::string& command, std::chrono::milliseconds limit) {
  tools::child_spec spec;
  spec.argv = {"/bin/sh", "-c", command};
  spec.out_fd = 2;
  spec.err_fd = 2;
  tools::child c;
  try {
    c.start(spec);
  } catch (const std::exception& e) {
    throw cli_error(exit_server_error, std::string{"cannot run the restart command: "} + e.what());
  }
  const auto status = c.wait(limit);
  if (!status) {
    c.kill9();
    throw cli_error(exit_server_error, "the restart command did not exit within " +
                                           human_duration(limit.count()) + ": " + command);
  }
  if (*status != 0) {
    throw cli_error(exit_server_error, "the restart command failed (" +
                                           tools::describe_status(*status) + "): " + command);
  }
}

struct node_timing {
  std::string node;
  int64_t drain_ms = -1;
  int64_t restart_ms = -1;
  int64_t ready_ms = -1;
  int64_t balance_ms = -1;
  int64_t total_ms = -1;
  int64_t shards_after = -1;
};

void print_summary(const std::vector<node_timing>& done) {
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "DRAIN", "RESTART", "READY", "BALANCE", "TOTAL", "SHARDS"}};
  for (const auto& t : done) {
    rows.push_back({t.node, human_duration(t.drain_ms), human_duration(t.restart_ms),
                    human_duration(t.ready_ms), human_duration(t.balance_ms),
                    human_duration(t.total_ms),
                    t.shards_after < 0 ? "-" : std::to_string(t.shards_after)});
  }
  print_table(rows, {false, true, true, true, true, true, true});
}

roll_options parse_roll(const std::vector<std::string>& args, bool& help,
                        std::optional<std::string>& admin, std::optional<std::string>& token) {
  roll_options o;
  std::map<std::string, std::string> values;
  std::vector<cli::flag> table = {{"help", cli::takes::optional, cli::enable(help), true},
                                  {"dry-run", cli::takes::nothing, cli::enable(o.dry_run)}};
  for (const char* name : {"admin", "token", "restart", "nodes", "drain-timeout", "restart-timeout",
                           "ready-timeout", "balance-timeout"}) {
    table.push_back({name, cli::takes::value,
                     [&values, name](const std::optional<std::string>& v) { values[name] = *v; }});
  }
  auto syntax = command_line();
  syntax.unique = true;
  syntax.wording = [](cli::problem p, const cli::argument& a) {
    return p == cli::problem::unknown_flag ? a.text + " is not a flag of 'roll'"
                                           : cli::message(p, a);
  };
  const auto words = cli::parse(args, table, syntax).words;
  if (help) {
    return o;
  }
  if (words.size() != 1) {
    throw cli_error(exit_usage, "too many arguments: surgectl roll takes flags only (--nodes=...)");
  }
  for (const auto& [name, value] : values) {
    if (name == "admin") {
      admin = value;
    } else if (name == "token") {
      token = value;
    } else if (name == "restart") {
      o.restart = value;
    } else if (name == "nodes") {
      try {
        o.nodes = roll::split_nodes(value);
      } catch (const roll::plan_error& e) {
        throw cli_error(exit_usage, e.what());
      }
    } else {
      const auto d = parse_duration("--" + name, value);
      if (d.count() <= 0) {
        throw cli_error(exit_usage, "--" + name + " must be more than 0, got '" + value + "'");
      }
      (name == "drain-timeout"     ? o.drain_timeout
       : name == "restart-timeout" ? o.restart_timeout
       : name == "ready-timeout"   ? o.ready_timeout
                                   : o.balance_timeout) = d;
    }
  }
  if (o.restart.empty()) {
    throw cli_error(exit_usage, "roll needs --restart='COMMAND {node}' (e.g. "
                                "--restart='scripts/restart-node.sh {node}')");
  }
  try {
    roll::restart_command(o.restart, "n1"); // has {node}
    for (const auto& n : o.nodes) {
      roll::restart_command(o.restart, n); // a node id a shell may see
    }
  } catch (const roll::plan_error& e) {
    throw cli_error(exit_usage, e.what());
  }
  return o;
}

} // namespace

int cmd_roll(const std::vector<std::string>& args) {
  bool help = false;
  std::optional<std::string> admin;
  std::optional<std::string> token;
  const auto o = parse_roll(args, help, admin, token);
  if (help) {
    std::cout << roll_usage_text;
    return exit_ok;
  }
  const auto s = open_session(admin, token);

  const auto first = look(s); // exit 3 when unreachable, at the start
  std::vector<std::string> nodes;
  std::vector<std::string> commands;
  try {
    nodes = roll::plan(first.cluster, o.nodes);
    for (const auto& n : nodes) {
      commands.push_back(roll::restart_command(o.restart, n));
    }
  } catch (const roll::plan_error& e) {
    throw cli_error(exit_server_error, e.what());
  }
  const auto total = nodes.size();
  if (o.dry_run) {
    std::vector<std::vector<std::string>> rows = {{"STEP", "NODE", "STATUS", "SHARDS", "RESTART"}};
    for (std::size_t i = 0; i < total; ++i) {
      std::string status = "?";
      for (const auto& n : first.cluster.nodes) {
        if (n.node_id == nodes[i]) {
          status = n.status;
        }
      }
      rows.push_back({std::to_string(i + 1) + "/" + std::to_string(total), nodes[i], status,
                      std::to_string(first.counts.owned_by(nodes[i])), commands[i]});
    }
    print_table(rows, {false, false, false, true, false});
    std::cout << "\neach: drain (<= " << human_duration(o.drain_timeout.count())
              << "), restart (<= " << human_duration(o.restart_timeout.count())
              << "), ready (<= " << human_duration(o.ready_timeout.count())
              << "), balanced (<= " << human_duration(o.balance_timeout.count())
              << "); nothing done (--dry-run)\n";
    return exit_ok;
  }

  const auto roll_t0 = steady::now();
  std::cerr << "surgectl roll: " << total << (total == 1 ? " node: " : " nodes: ");
  for (std::size_t i = 0; i < total; ++i) {
    std::cerr << (i == 0 ? "" : ", ") << nodes[i];
  }
  std::cerr << "\n";
  wait_for(s, "surgectl roll: ", "settled before the roll", o.balance_timeout,
           [](const snapshot& snap) { return roll::settled(snap.counts); });

  std::vector<node_timing> done;
  for (std::size_t i = 0; i < total; ++i) {
    const auto& node = nodes[i];
    const auto prefix = "surgectl roll: [" + std::to_string(i + 1) + "/" + std::to_string(total) +
                        "] " + node + ": ";
    node_timing t;
    t.node = node;
    const auto node_t0 = steady::now();
    // One step: `body` timed; a failure names the node, the step and how far the roll got.
    auto step = [&](const char* name, auto body) -> int64_t {
      const auto t0 = steady::now();
      try {
        body();
      } catch (const cli_error& e) {
        print_summary(done);
        throw cli_error(e.code, node + ": " + name + ": " + e.what() +
                                    " (nodes rolled: " + std::to_string(done.size()) + " of " +
                                    std::to_string(total) + ")");
      }
      return ms_since(t0);
    };
    t.drain_ms = step("drain", [&] {
      const auto a = admin_json(s, "POST", "/admin/v1/nodes/" + path_segment(node) + "/drain");
      std::cerr << prefix << "drain asked (" << text_of(a.v, "status") << ")\n";
      wait_for(s, prefix, "drain", o.drain_timeout,
               [&node](const snapshot& snap) { return roll::drained(snap.counts, node); });
    });
    std::cerr << prefix << "drained in " << human_duration(t.drain_ms) << "\n";

    t.restart_ms = step("restart", [&] {
      std::cerr << prefix << "restart: " << commands[i] << "\n";
      run_restart(commands[i], o.restart_timeout);
    });
    std::cerr << prefix << "restart command done in " << human_duration(t.restart_ms) << "\n";

    t.ready_ms = step("ready", [&] {
      wait_for(s, prefix, "ready", o.ready_timeout,
               [&](const snapshot& snap) { return node_ready(s, snap, node); });
    });
    std::cerr << prefix << "ready in " << human_duration(t.ready_ms) << "\n";

    t.balance_ms = step("balanced", [&] {
      wait_for(s, prefix, "balanced", o.balance_timeout, [&](const snapshot& snap) {
        auto v = roll::balanced(snap.cluster, snap.counts, node);
        if (v.ok) {
          t.shards_after = snap.counts.owned_by(node);
        }
        return v;
      });
    });
    t.total_ms = ms_since(node_t0);
    std::cerr << prefix << "balanced in " << human_duration(t.balance_ms) << " (owns "
              << t.shards_after << " shards); node done in " << human_duration(t.total_ms) << "\n";
    done.push_back(t);
  }
  print_summary(done);
  std::cout << "\nrolled " << total << (total == 1 ? " node" : " nodes") << " in "
            << human_duration(ms_since(roll_t0)) << "\n";
  return exit_ok;
}

} // namespace surge::ctl
