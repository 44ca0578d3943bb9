#include "faults.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <thread>

#include "http.hpp"
#include "netns.hpp"

namespace surge::chaos {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// The fault's target among the members (a spare or a node removed by a scale-in is none).
std::size_t node_index(fault_context& ctx, const planned_fault& f) {
  std::vector<std::size_t> members;
  for (std::size_t i = 0; i < ctx.env.nodes().size(); ++i) {
    if (ctx.env.nodes()[i]->member.load()) {
      members.push_back(i);
    }
  }
  if (members.empty()) {
    return static_cast<std::size_t>(f.node) % ctx.env.nodes().size();
  }
  return members[static_cast<std::size_t>(f.node) % members.size()];
}

/// Waits (bounded) until node `i` answers /readyz with 200.
bool wait_ready(fault_context& ctx, std::size_t i, std::chrono::seconds patience) {
  auto& n = *ctx.env.nodes()[i];
  http_client probe{n.host, n.http, 1s};
  const auto deadline = steady::now() + patience;
  while (steady::now() < deadline) {
    if (probe.call("GET", "/readyz").status == 200) {
      return true;
    }
    probe.close();
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

/// SIGKILL, and after the fault's duration a restart.
class kill_fault : public fault_kind {
 public:
  std::string name() const override { return "kill"; }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = node_index(ctx, f);
    rec.target = ctx.env.nodes()[i]->id;
    rec.detail = "SIGKILL, restart after " + std::to_string(f.duration_ms) + " ms";
    ctx.env.kill_node(i);
  }
  void heal(fault_context& ctx, const planned_fault& f, fault_record&) override {
    const auto i = node_index(ctx, f);
    if (!ctx.env.start_node(i, 90s)) {
      throw std::runtime_error(ctx.env.nodes()[i]->id + " did not restart:\n" +
                               tail_of(ctx.env.nodes()[i]->log));
    }
  }
};

/// SIGSTOP for longer than the lease, then SIGCONT: the node wakes up fenced.
class pause_fault : public fault_kind {
 public:
  std::string name() const override { return "pause"; }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = node_index(ctx, f);
    auto& n = *ctx.env.nodes()[i];
    rec.target = n.id;
    rec.detail = "SIGSTOP for " + std::to_string(f.duration_ms) + " ms";
    n.up = false;
    n.proc.signal(SIGSTOP);
  }
  void heal(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = node_index(ctx, f);
    auto& n = *ctx.env.nodes()[i];
    n.proc.signal(SIGCONT);
    if (!wait_ready(ctx, i, 60s)) {
      rec.note = n.id + " not ready within 60 s after SIGCONT";
    }
    n.up = true;
  }
};

std::string loopback_why(const fault_context& ctx) {
  return "needs network namespaces; this run is in loopback mode" +
         (ctx.loopback_reason.empty() ? std::string{} : " (" + ctx.loopback_reason + ")");
}

/// netns mode: blackhole rules in the node's namespace (netplan.hpp's plan_partition) cut it
/// off from its peers, from PostgreSQL or from both, both ways or one way. The node stays in
/// the shoppers' rotation (its HTTP port is still reachable from the harness): what it
/// acknowledges while cut off is what G1-G4 look at.
class partition_fault : public fault_kind {
 public:
  std::string name() const override { return "partition"; }
  std::string unavailable(const fault_context& ctx) const override {
    return ctx.netns ? std::string{} : loopback_why(ctx);
  }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = node_index(ctx, f);
    const auto plan = plan_partition(*ctx.net, static_cast<int>(i), f.variant);
    rec.target = ctx.env.nodes()[i]->id;
    rec.detail = f.variant + ": " + plan.describe + " for " + std::to_string(f.duration_ms) + " ms";
    ctx.env.nodes()[i]->cut_off = true;
    try {
      netns_network::run_all(plan.cut);
    } catch (...) {
      heal_rules(plan);
      throw;
    }
  }
  void heal(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = node_index(ctx, f);
    const auto plan = plan_partition(*ctx.net, static_cast<int>(i), f.variant);
    if (!heal_rules(plan)) {
      rec.note = "could not delete every cut rule";
    }
    if (!wait_ready(ctx, i, 60s)) {
      rec.note += (rec.note.empty() ? "" : "; ") + ctx.env.nodes()[i]->id +
                  " not ready within 60 s after the partition healed";
    }
    ctx.env.nodes()[i]->cut_off = false;
  }

 private:
  static bool heal_rules(const partition_plan& plan) {
    bool ok = true;
    for (const auto& c : plan.heal) {
      ok = run_command(c, 20s).exit_code == 0 && ok;
    }
    return ok;
  }
};

/// netns mode: a degraded link (netem delay/loss, or a tbf slow link where the kernel has no
/// netem) on both ends of the node's link (its eth0 and the veth in the root namespace), so
/// everything it sends and receives is affected.
class link_fault : public fault_kind {
 public:
  explicit link_fault(std::string name)
      : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string unavailable(const fault_context& ctx) const override {
    if (!ctx.netns) {
      return loopback_why(ctx);
    }
    return ctx.shaper != link_shaper::none
               ? std::string{}
               : "no tc qdisc to degrade a link here: " + ctx.shaper_note;
  }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = static_cast<int>(node_index(ctx, f));
    const auto args = shape_args(ctx.shaper, name_, f.variant);
    rec.target = ctx.env.nodes()[static_cast<std::size_t>(i)]->id;
    rec.detail = join_argv(args) + " both ways for " + std::to_string(f.duration_ms) + " ms";
    if (ctx.shaper != link_shaper::netem) {
      rec.detail += " (for " + f.variant + "; netem unavailable)";
    }
    try {
      netns_network::run_all(shape_add_commands(*ctx.net, i, args));
    } catch (...) {
      for (const auto& c : shape_del_commands(*ctx.net, i)) {
        run_command(c, 20s);
      }
      throw;
    }
  }
  void heal(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto i = node_index(ctx, f);
    const auto node = static_cast<int>(i);
    auto add_note = [&rec](const std::string& text) {
      rec.note += (rec.note.empty() ? "" : "; ") + text;
    };
    // What the qdisc did to the node's traffic, at both ends, before it goes.
    const std::string ends[] = {"eth0 in " + ctx.net->ns(node), ctx.net->veth(node)};
    const auto stats = shape_stats_commands(*ctx.net, node);
    for (std::size_t e = 0; e < stats.size(); ++e) {
      if (auto r = run_command(stats[e], 20s); r.exit_code == 0) {
        const auto line = qdisc_stats_line(r.output);
        add_note(ends[e] + ": " + (line.empty() ? "no stats" : line));
      }
    }
    for (const auto& c : shape_del_commands(*ctx.net, node)) {
      if (run_command(c, 20s).exit_code != 0) {
        add_note("'" + join_argv(c) + "' failed");
      }
    }
    if (!wait_ready(ctx, i, 60s)) {
      add_note(ctx.env.nodes()[i]->id + " not ready");
    }
  }

 private:
  const std::string name_;
};

/// redis-server stopped and started again on the same port, with its data (SIGTERM saves the
/// dump) or without (SIGKILL, dump deleted: every cart and snapshot gone).
class redis_restart_fault : public fault_kind {
 public:
  std::string name() const override { return "redis-restart"; }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const bool flush = f.variant == "flush";
    rec.target = "redis";
    rec.detail = flush ? "SIGKILL + dump deleted (data lost)" : "SIGTERM (dump saved)";
    rec.detail += ", down " + std::to_string(f.duration_ms) + " ms";
    ctx.env.redis().restart(flush, std::chrono::milliseconds{f.duration_ms});
  }
  void heal(fault_context&, const planned_fault&, fault_record&) override {}
};

/// pg_ctl stop -m fast, then start.
class pg_restart_fault : public fault_kind {
 public:
  std::string name() const override { return "pg-restart"; }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    rec.target = "postgres";
    rec.detail = "pg_ctl stop -m fast; start after " + std::to_string(f.duration_ms) + " ms";
    ctx.env.pg().restart(std::chrono::milliseconds{f.duration_ms});
  }
  void heal(fault_context&, const planned_fault&, fault_record&) override {}
};

/// paysim's POST /_outage on the first gateway (failover to the next) or on all of them.
class gateway_outage_fault : public fault_kind {
 public:
  std::string name() const override { return "gateway-outage"; }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto& names = ctx.env.gateway_names();
    const std::size_t count = f.variant == "all" ? names.size() : 1;
    rec.target = f.variant == "all" ? "all gateways" : names.front();
    rec.detail = "down for " + std::to_string(f.duration_ms) + " ms";
    for (std::size_t g = 0; g < count; ++g) {
      if (!ctx.env.set_gateway_down(g, true)) {
        throw std::runtime_error("POST /_outage failed on " + names[g]);
      }
    }
  }
  void heal(fault_context& ctx, const planned_fault&, fault_record& rec) override {
    for (std::size_t g = 0; g < ctx.env.gateway_names().size(); ++g) {
      if (!ctx.env.set_gateway_down(g, false)) {
        rec.note = "could not end the outage of " + ctx.env.gateway_names()[g];
      }
    }
  }
};

/// paysim's PUT /_faults {"capture_delay_ms":D} (every gateway): each capture is made when it
/// arrives but answered D ms late (the variant, "3000ms"), past the nodes' payments.timeout, so
/// the orders capturing meanwhile do not know whether they were paid; heal sets it back to 0.
/// Only with captures (--capture=after_confirm): otherwise skipped.
class gateway_slow_capture_fault : public fault_kind {
 public:
  std::string name() const override { return "gateway-slow-capture"; }
  std::string unavailable(const fault_context& ctx) const override {
    return ctx.env.options().capture == "after_confirm"
               ? std::string{}
               : "the nodes capture nothing to slow down: needs --capture=after_confirm";
  }
  void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    const auto delay = std::chrono::milliseconds{std::stoll(f.variant)};
    rec.target = "all gateways";
    rec.detail = "captures answered " + std::to_string(delay.count()) + " ms late for " +
                 std::to_string(f.duration_ms) + " ms";
    if (!ctx.env.set_capture_delay(delay)) {
      throw std::runtime_error("PUT /_faults failed on " + ctx.env.gateway_names().front());
    }
  }
  void heal(fault_context& ctx, const planned_fault&, fault_record& rec) override {
    if (!ctx.env.set_capture_delay(std::chrono::milliseconds{0})) {
      rec.note = "could not end the slow captures (PUT /_faults)";
    }
  }
};

// ---- drain and stop: rolling-restart and scale -----------------------------------------------

int64_t ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

std::string seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

/// Shards `id` owns or is about to receive (a planned move's target) in `map`.
std::size_t owned_by(const std::vector<tools::shard_row>& map, const std::string& id) {
  std::size_t n = 0;
  for (const auto& sh : map) {
    n += sh.owner == id || sh.target == id ? 1 : 0;
  }
  return n;
}

/// Reads the shard map (as a member other than `avoid`) until `done` holds for it, at most
/// `patience`; the last map read, and whether `done` held.
template <typename Pred>
bool wait_map(fault_context& ctx, std::size_t avoid, std::chrono::seconds patience, Pred done,
              std::vector<tools::shard_row>& map, std::string& why) {
  const auto deadline = steady::now() + patience;
  for (;;) {
    map = ctx.env.shard_map(avoid, why);
    if (!map.empty() && done(map)) {
      return true;
    }
    if (steady::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(100ms);
  }
}

/// Waits (bounded) until the cluster has settled (every member ready and up, every shard owned
/// by a member, no move under way) and `enough` holds for the shard map.
template <typename Pred>
bool wait_settled(fault_context& ctx, std::size_t avoid, std::chrono::seconds patience, Pred enough,
                  std::vector<tools::shard_row>& map, std::string& why) {
  const auto deadline = steady::now() + patience;
  for (;;) {
    if (ctx.env.settled(why)) {
      map = ctx.env.shard_map(avoid, why);
      if (!map.empty() && enough(map)) {
        return true;
      }
      why = why.empty() ? "the shard map is not there yet" : why;
    }
    if (steady::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(200ms);
  }
}

/// Takes node `i` out of service the way an upgrade or a scale-in does: out of the shoppers'
/// rotation first (a load balancer stops sending once /readyz says 503; requests already on
/// the node finish there), POST /admin/v1/nodes/{id}/drain, wait until the shard map shows it
/// owning no shard, then SIGTERM (the node's own leave, with nothing left to hand over) and
/// wait until it exited. Returns the figures as text; throws std::runtime_error when a step
/// fails (the node is then stopped anyway: SIGTERM, SIGKILL after 40 s).
std::string drain_and_stop(fault_context& ctx, std::size_t i) {
  auto& n = *ctx.env.nodes()[i];
  std::string why;
  auto before = ctx.env.shard_map(i, why);
  const auto owned_before = owned_by(before, n.id);
  n.up = false;
  const auto t0 = steady::now();
  if (auto err = ctx.env.drain_node(i); !err.empty()) {
    n.proc.stop(40s);
    throw std::runtime_error(n.id + ": " + err);
  }
  std::vector<tools::shard_row> map;
  const bool drained = wait_map(
      ctx, i, 60s, [&](const auto& m) { return owned_by(m, n.id) == 0; }, map, why);
  const auto drain_ms = ms_since(t0);
  if (!drained) {
    n.proc.stop(40s);
    throw std::runtime_error(n.id + " still owned " + std::to_string(owned_by(map, n.id)) +
                             " shards 60 s after the drain" +
                             (why.empty() ? "" : " (" + why + ")"));
  }
  const auto t1 = steady::now();
  const auto status = n.proc.stop(40s);
  const auto stop_ms = ms_since(t1);
  std::string text = n.id + " drained " + std::to_string(owned_before) + " shards in " +
                     seconds(drain_ms) + ", exited " + seconds(stop_ms) + " after SIGTERM";
  if (!status) {
    throw std::runtime_error(text + " - no: it did not exit within 40 s of SIGTERM (SIGKILL)");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw std::runtime_error(text + " - with wait status " + std::to_string(*status) +
                             ", not exit 0");
  }
  return text;
}

/// Every member restarted, one at a time, the way an upgrade does it (drain_and_stop, start
/// again with the same node.id, wait until it is ready and the cluster has settled with shards
/// on it again, next). inject() runs the whole roll; heal() only checks the cluster settled.
class rolling_restart_fault : public fault_kind {
 public:
  std::string name() const override { return "rolling-restart"; }
  bool timed_by_inject() const override { return true; }
  void inject(fault_context& ctx, const planned_fault&, fault_record& rec) override {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < ctx.env.nodes().size(); ++i) {
      if (ctx.env.nodes()[i]->member.load()) {
        order.push_back(i);
      }
    }
    for (auto i : order) {
      rec.target += (rec.target.empty() ? "" : ",") + ctx.env.nodes()[i]->id;
    }
    rec.detail = "drain (admin API), SIGTERM, start with the same node.id, ready and shards "
                 "back, one node at a time";
    const auto t0 = steady::now();
    for (auto i : order) {
      auto& n = *ctx.env.nodes()[i];
      const auto step = steady::now();
      std::string text;
      try {
        text = drain_and_stop(ctx, i);
      } catch (const std::runtime_error&) {
        restart(ctx, i); // leave the cluster whole for the rest of the run
        throw;
      }
      const auto t1 = steady::now();
      restart(ctx, i);
      const auto ready_ms = ms_since(t1);
      const auto t2 = steady::now();
      std::vector<tools::shard_row> map;
      std::string why;
      if (!wait_settled(
              ctx, i, 90s, [&](const auto& m) { return owned_by(m, n.id) > 0; }, map, why)) {
        throw std::runtime_error(
            text + "; " + n.id + " ready again in " + seconds(ready_ms) +
            " but the cluster did not settle with shards on it within 90 s: " + why);
      }
      text += ", ready again in " + seconds(ready_ms) + ", got " +
              std::to_string(owned_by(map, n.id)) + " shards back in " + seconds(ms_since(t2)) +
              " (step " + seconds(ms_since(step)) + ")";
      add_note(rec, text);
    }
    add_note(rec, "whole roll " + seconds(ms_since(t0)));
  }
  void heal(fault_context& ctx, const planned_fault&, fault_record& rec) override {
    std::string why;
    if (!ctx.env.settled(why)) {
      add_note(rec, "not settled after the roll: " + why);
    }
  }

 private:
  static void add_note(fault_record& rec, const std::string& text) {
    rec.note += (rec.note.empty() ? "" : "; ") + text;
  }
  static void restart(fault_context& ctx, std::size_t i) {
    auto& n = *ctx.env.nodes()[i];
    if (!n.proc.exited()) {
      return;
    }
    if (!ctx.env.start_node(i, 90s)) {
      throw std::runtime_error(n.id + " did not restart:\n" + tail_of(n.log));
    }
  }
};

/// Scale-out, then scale-in: inject starts a spare node (a new member: it joins, gets shards
/// from the rebalancer), the cluster runs with it for the fault's duration, heal drains one of
/// the members (chosen by the schedule, never the one that just joined) and removes it
/// (drain_and_stop); it becomes the spare for the next round. Both wait until the cluster has
/// settled: the joiner owns shards; the removed node owns none and every shard is owned by a
/// remaining member.
class scale_fault : public fault_kind {
 public:
  std::string name() const override { return "scale"; }
  void inject(fault_context& ctx, const planned_fault&, fault_record& rec) override {
    auto& nodes = ctx.env.nodes();
    joiner_ = nodes.size();
    for (std::size_t i = 0; i < nodes.size() && joiner_ == nodes.size(); ++i) {
      if (!nodes[i]->member.load()) {
        joiner_ = i;
      }
    }
    if (joiner_ == nodes.size()) {
      throw std::runtime_error("no spare node to add (the run starts one with a scale fault)");
    }
    auto& n = *nodes[joiner_];
    rec.target = n.id;
    std::size_t members = 0;
    for (const auto& m : nodes) {
      members += m->member.load() ? 1 : 0;
    }
    rec.detail = "scale-out " + std::to_string(members) + " -> " + std::to_string(members + 1) +
                 " nodes (" + n.id + " joins), then scale-in (drain and remove one)";
    const auto t0 = steady::now();
    n.member = true;
    if (!n.proc.exited() || !ctx.env.start_node(joiner_, 90s)) {
      n.member = false;
      throw std::runtime_error(n.id + " did not start:\n" + tail_of(n.log));
    }
    const auto ready_ms = ms_since(t0);
    std::vector<tools::shard_row> map;
    std::string why;
    if (!wait_settled(
            ctx, joiner_, 90s, [&](const auto& m) { return owned_by(m, n.id) > 0; }, map, why)) {
      throw std::runtime_error(
          n.id + " ready in " + seconds(ready_ms) +
          " but the cluster did not settle with shards on it within 90 s: " + why);
    }
    rec.note = "scale-out: " + n.id + " ready in " + seconds(ready_ms) + ", got " +
               std::to_string(owned_by(map, n.id)) + " shards, cluster settled " +
               seconds(ms_since(t0)) + " after the start";
  }
  void heal(fault_context& ctx, const planned_fault& f, fault_record& rec) override {
    auto& nodes = ctx.env.nodes();
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i]->member.load() && i != joiner_) {
        candidates.push_back(i);
      }
    }
    if (candidates.empty()) {
      throw std::runtime_error("no member to remove");
    }
    const auto victim = candidates[static_cast<std::size_t>(f.node) % candidates.size()];
    auto& n = *nodes[victim];
    rec.target += "+" + n.id;
    const auto t0 = steady::now();
    std::string text;
    try {
      text = drain_and_stop(ctx, victim);
    } catch (...) {
      n.member = false;
      throw;
    }
    n.member = false;
    std::vector<tools::shard_row> map;
    std::string why;
    const auto t1 = steady::now();
    if (!wait_settled(
            ctx, victim, 60s, [&](const auto& m) { return owned_by(m, n.id) == 0; }, map, why)) {
      throw std::runtime_error(text + "; the remaining members did not settle within 60 s: " + why);
    }
    rec.note += "; scale-in: " + text + ", the remaining members own every shard " +
                seconds(ms_since(t1)) + " later (" + seconds(ms_since(t0)) + " in all)";
  }

 private:
  std::size_t joiner_ = 0;
};

} // namespace

std::vector<std::unique_ptr<fault_kind>> make_fault_kinds() {
  std::vector<std::unique_ptr<fault_kind>> out;
  out.push_back(std::make_unique<kill_fault>());
  out.push_back(std::make_unique<pause_fault>());
  out.push_back(std::make_unique<partition_fault>());
  out.push_back(std::make_unique<link_fault>("latency"));
  out.push_back(std::make_unique<link_fault>("loss"));
  out.push_back(std::make_unique<redis_restart_fault>());
  out.push_back(std::make_unique<pg_restart_fault>());
  out.push_back(std::make_unique<gateway_outage_fault>());
  out.push_back(std::make_unique<gateway_slow_capture_fault>());
  out.push_back(std::make_unique<rolling_restart_fault>());
  out.push_back(std::make_unique<scale_fault>());
  return out;
}

} // namespace surge::chaos
