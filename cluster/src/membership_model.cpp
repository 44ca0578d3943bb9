#include "surge/cluster/membership_model.hpp"

#include <algorithm>
#include <set>

namespace surge::cluster {

namespace {

using state = shard_table::state;

/// "host:port" or "[v6]:port" (a member's address) as the host to connect to and the port.
std::pair<std::string, uint16_t> split_address(const std::string& a) {
  auto colon = a.rfind(':');
  if (colon == std::string::npos) {
    return {a, 0};
  }
  auto host = a.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    return {host, static_cast<uint16_t>(std::stoul(a.substr(colon + 1)))};
  } catch (...) {
    return {host, 0};
  }
}

membership_step release(uint32_t shard, bool graceful, membership_step::cause why,
                        const std::string& node = {}, uint64_t epoch = 0) {
  membership_step s;
  s.what = membership_step::kind::release;
  s.shard = shard;
  s.graceful = graceful;
  s.why = why;
  s.node = node;
  s.epoch = epoch;
  return s;
}

} // namespace

membership_model::membership_model(membership_options opts)
    : opts_(std::move(opts))
    , views_(std::max<uint32_t>(opts_.shards, 1)) {}

// -- The lease ---------------------------------------------------------------------------------

membership_model::time_point membership_model::registered(time_point now) {
  deadline_ = now + opts_.lease - opts_.heartbeat;
  return deadline_;
}

membership_model::beat_outcome membership_model::heartbeat_answered(bool ours, time_point sent,
                                                                    time_point now) {
  beat_outcome out;
  if (!ours) {
    fenced_out_ = true;
    deadline_ = time_point{};
    out.deadline = deadline_;
    out.fenced = true;
    return out;
  }
  renewed_at_ = sent;
  if (lease_live(now) && !lapsed_) {
    deadline_ = sent + opts_.lease - opts_.heartbeat;
    out.deadline = deadline_;
  } else if (!lapsed_) {
    lapsed_ = true;
    out.lapsed = true;
  }
  return out;
}

membership_model::time_point membership_model::stopped() {
  deadline_ = time_point{};
  return deadline_;
}

// -- The round ---------------------------------------------------------------------------------

membership_step membership_model::set(uint32_t shard, state st, uint64_t epoch,
                                      const std::string& owner) {
  auto& v = views_[shard];
  v.st = st;
  v.epoch = epoch;
  v.owner = st == state::remote ? owner : st == state::none ? std::string{} : opts_.node_id;
  membership_step s;
  s.what = membership_step::kind::set_shard;
  s.shard = shard;
  s.state = st;
  s.epoch = epoch;
  s.node = st == state::remote ? owner : std::string{};
  return s;
}

std::optional<std::vector<membership_step>> membership_model::drop_if_fenced() {
  if (!fenced_out_ || dropped_) {
    return std::nullopt;
  }
  std::vector<membership_step> steps;
  dropped_ = true;
  for (uint32_t s = 0; s < views_.size(); ++s) {
    const auto v = views_[s];
    if (v.st == state::local || v.st == state::leaving) {
      steps.push_back(release(s, false, membership_step::cause::fenced));
      steps.push_back(set(s, state::none, v.epoch));
    }
  }
  handoffs_.clear();
  return steps;
}

allocation_plan membership_model::plan(const std::vector<persistence::member_record>& members,
                                       const std::vector<persistence::shard_lease_record>& leases,
                                       std::chrono::milliseconds patience) const {
  std::vector<member_state> ms;
  for (const auto& m : members) {
    if (m.status != "left") {
      const bool overdue = !m.live && m.lease_left_ms > -patience.count();
      ms.push_back(member_state{m.node_id, m.live, m.status == "draining", m.age_ms, overdue});
    }
  }
  std::vector<lease_state> ls;
  ls.reserve(leases.size());
  for (const auto& l : leases) {
    ls.push_back(lease_state{l.shard, l.owner, l.epoch, l.target});
  }
  allocator_options ao;
  ao.max_moves = opts_.max_moves;
  ao.min_age_ms = opts_.min_age.count();
  return allocate(ms, ls, ao);
}

std::vector<persistence::lease_change> membership_model::changes_of(const allocation_plan& plan) {
  using change = persistence::lease_change;
  std::vector<change> out;
  for (const auto& a : plan.assigns) {
    out.push_back(change{change::kind::assign, a.shard, a.epoch, a.from, a.to});
  }
  for (const auto& m : plan.moves) {
    out.push_back(change{change::kind::move, m.shard, m.epoch, m.from, m.to});
  }
  for (const auto& c : plan.cancels) {
    out.push_back(change{change::kind::cancel, c.shard, c.epoch, {}, {}});
  }
  return out;
}

membership_model::map_outcome
membership_model::apply_map(const std::vector<persistence::member_record>& members,
                            const std::vector<persistence::shard_lease_record>& leases,
                            time_point now,
                            const std::function<bool(const std::string&)>& connected) {
  map_outcome out;
  std::vector<node_info> nodes;
  std::set<std::string> alive;
  next_expiry_.reset();
  for (const auto& m : members) {
    if (m.node_id == opts_.node_id) {
      draining_ = m.status == "draining";
    }
    if (m.node_id != opts_.node_id && m.live && m.status != "left") {
      // A few milliseconds after the store's expiry: its clock and this one read apart.
      const auto expiry = now + std::chrono::milliseconds{m.lease_left_ms + 5};
      next_expiry_ = next_expiry_ ? std::min(*next_expiry_, expiry) : expiry;
    }
    node_info n;
    n.node_id = m.node_id;
    n.address = m.address;
    n.http_address = m.http_address;
    n.admin_address = m.admin_address;
    n.status = !m.live && m.status != "left" ? "down" : m.status;
    n.actors = m.actors;
    n.heartbeat_age_ms = m.heartbeat_age_ms;
    n.version = m.version;
    n.protocol = m.protocol;
    if (n.status == "up" || n.status == "draining") {
      alive.insert(n.node_id);
    }
    nodes.push_back(std::move(n));
  }
  const auto& me = opts_.node_id;
  for (const auto& s : leases) {
    if (s.shard >= views_.size()) {
      continue;
    }
    const auto prev = views_[s.shard];
    const bool was_ours = prev.st == state::local || prev.st == state::leaving;
    if (s.owner == me && !fenced_out_) {
      if (!s.target.empty() && s.target != me) {
        if (prev.st != state::leaving || prev.epoch != s.epoch) {
          out.steps.push_back(set(s.shard, state::leaving, s.epoch));
          out.steps.push_back(
              release(s.shard, true, membership_step::cause::handover, s.target, s.epoch));
          handoffs_[s.shard] = handoff{s.epoch, s.target, now};
        }
        continue;
      }
      handoffs_.erase(s.shard); // a move that was cancelled
      if (prev.st != state::local || prev.epoch != s.epoch) {
        if (was_ours && prev.epoch != s.epoch) {
          out.steps.push_back(
              release(s.shard, false, membership_step::cause::new_epoch, me, s.epoch));
        }
        out.steps.push_back(set(s.shard, state::local, s.epoch));
        out.taken.push_back(s.shard);
      }
      continue;
    }
    if (was_ours) {
      out.steps.push_back(release(s.shard, false, membership_step::cause::lost, s.owner, s.epoch));
      handoffs_.erase(s.shard);
    }
    const bool remote = !s.owner.empty() && alive.count(s.owner) != 0 && s.owner != me;
    const auto st = remote ? state::remote : state::none;
    const auto& owner = remote ? s.owner : std::string{};
    if (prev.st != st || prev.epoch != s.epoch || prev.owner != owner) {
      out.steps.push_back(set(s.shard, st, s.epoch, owner));
    }
  }
  const bool orphans = std::any_of(leases.begin(), leases.end(), [&](const auto& l) {
    return l.owner.empty() || alive.count(l.owner) == 0;
  });
  if (!orphans) {
    orphaned_.reset();
  } else if (!orphaned_) {
    orphaned_ = now;
  }
  std::vector<shard_info> shards;
  shards.reserve(leases.size());
  for (const auto& l : leases) {
    shards.push_back(shard_info{l.shard, l.owner, l.epoch, l.target});
  }
  for (auto& n : nodes) {
    n.shards = static_cast<uint32_t>(std::count_if(
        shards.begin(), shards.end(), [&](const shard_info& s) { return s.owner == n.node_id; }));
  }
  // Peers: connect to live members this node has no gateway of.
  for (const auto& n : nodes) {
    // One connection per pair: the member with the smaller id connects and says hello.
    if (n.node_id <= me || alive.count(n.node_id) == 0 || connected(n.node_id)) {
      continue;
    }
    auto i = last_connect_.find(n.node_id);
    if (i != last_connect_.end() && now - i->second < std::chrono::seconds{1}) {
      continue;
    }
    last_connect_[n.node_id] = now;
    auto [host, port] = split_address(n.address);
    if (port != 0) {
      membership_step c;
      c.what = membership_step::kind::connect;
      c.node = n.node_id;
      c.host = host;
      c.port = port;
      out.steps.push_back(std::move(c));
    }
  }
  nodes_ = std::move(nodes);
  shards_ = std::move(shards);
  return out;
}

std::optional<membership_model::time_point> membership_model::after_map(time_point now,
                                                                        bool& revived) {
  revived = false;
  if (!lapsed_ || fenced_out_) {
    return std::nullopt;
  }
  deadline_ = renewed_at_ + opts_.lease - opts_.heartbeat;
  if (lease_live(now)) {
    lapsed_ = false;
    revived = true;
  }
  return deadline_;
}

membership_model::time_point membership_model::next_round(time_point now) const {
  if (orphaned_ && now - *orphaned_ < failover_poll_for) {
    return now + failover_poll;
  }
  auto next = now + opts_.heartbeat;
  if (next_expiry_) {
    next = std::min(next, std::max(*next_expiry_, now + failover_poll));
  }
  return next;
}

std::vector<uint32_t> membership_model::handovers() const {
  std::vector<uint32_t> out;
  for (const auto& [shard, h] : handoffs_) {
    out.push_back(shard);
  }
  return out;
}

membership_model::handover_decision
membership_model::decide_handover(uint32_t shard, std::size_t local_count, time_point now) const {
  handover_decision d;
  auto i = handoffs_.find(shard);
  if (i == handoffs_.end()) {
    return d;
  }
  d.epoch = i->second.epoch;
  d.target = i->second.target;
  d.overdue = now - i->second.started >
              (draining_ ? std::max(opts_.drain_handoff_timeout, opts_.handoff_timeout)
                         : opts_.handoff_timeout);
  d.complete = local_count == 0 || d.overdue;
  return d;
}

std::vector<membership_step> membership_model::handover_done(uint32_t shard,
                                                             std::optional<uint64_t> new_epoch) {
  std::vector<membership_step> steps;
  auto i = handoffs_.find(shard);
  if (i == handoffs_.end()) {
    return steps;
  }
  if (new_epoch) {
    steps.push_back(set(shard, state::remote, *new_epoch, i->second.target));
  } else {
    steps.push_back(set(shard, state::none, i->second.epoch));
  }
  handoffs_.erase(i);
  return steps;
}

std::vector<std::string>
membership_model::skus_to_wake(const std::vector<uint32_t>& taken,
                               const std::vector<std::string>& holding) const {
  std::vector<std::string> out;
  if (taken.empty()) {
    return out;
  }
  const std::set<uint32_t> set(taken.begin(), taken.end());
  for (const auto& sku : holding) {
    if (set.count(shard_of("sku", sku, static_cast<uint32_t>(views_.size()))) != 0) {
      out.push_back(sku);
    }
  }
  return out;
}

} // namespace surge::cluster
