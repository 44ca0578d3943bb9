#include "faults.hpp"

#include <signal.h>

#include <stdexcept>
#include <thread>

#include "http.hpp"
#include "netns.hpp"

namespace surge::chaos {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

std::size_t node_index(fault_context& ctx, const planned_fault& f) {
  return static_cast<std::size_t>(f.node) % ctx.env.nodes().size();
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
  return out;
}

} // namespace surge::chaos
