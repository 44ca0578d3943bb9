#include "surge/cluster/allocator.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace surge::cluster {

allocation_plan allocate(const std::vector<member_state>& members,
                         const std::vector<lease_state>& leases, const allocator_options& opts) {
  allocation_plan plan;
  std::map<std::string, const member_state*> by_id;
  for (const auto& m : members) {
    by_id[m.node_id] = &m;
  }
  auto alive = [&](const std::string& id) {
    auto i = by_id.find(id);
    return i != by_id.end() && i->second->alive;
  };
  auto holds = [&](const std::string& id) {
    auto i = by_id.find(id);
    return i != by_id.end() && (i->second->alive || i->second->overdue);
  };
  auto eligible = [&](const std::string& id) {
    auto i = by_id.find(id);
    return i != by_id.end() && i->second->alive && !i->second->draining;
  };
  // Load of each eligible member: shards it owns (less those moving away) plus moves into it.
  std::map<std::string, long> load;
  for (const auto& m : members) {
    if (eligible(m.node_id)) {
      load[m.node_id] = 0;
    }
  }
  if (load.empty()) {
    return plan; // nobody can take anything
  }
  auto least = [&](bool mature_only) -> std::string {
    std::string best;
    long best_load = 0;
    for (const auto& [id, l] : load) {
      if (mature_only && by_id[id]->age_ms < opts.min_age_ms) {
        continue;
      }
      if (best.empty() || l < best_load) {
        best = id;
        best_load = l;
      }
    }
    return best;
  };

  std::size_t in_flight = 0;
  std::vector<const lease_state*> orphans;
  for (const auto& l : leases) {
    if (l.owner.empty() || !holds(l.owner)) {
      orphans.push_back(&l);
      continue;
    }
    if (!l.target.empty() && !eligible(l.target) &&
        !(holds(l.target) && !by_id[l.target]->draining)) {
      plan.cancels.push_back({l.shard, l.epoch}); // (an overdue target may still renew)
    }
    const bool moving = !l.target.empty() && eligible(l.target);
    if (moving) {
      ++in_flight;
      ++load[l.target];
    } else if (load.count(l.owner) != 0) {
      ++load[l.owner];
    }
  }
  for (const auto* l : orphans) {
    auto to = least(false);
    plan.assigns.push_back({l->shard, l->owner, l->epoch, to});
    ++load[to];
  }

  std::size_t budget = in_flight >= opts.max_moves ? 0 : opts.max_moves - in_flight;
  std::set<uint32_t> planned;
  // Draining members give everything away first.
  for (const auto& l : leases) {
    if (budget == 0) {
      break;
    }
    if (l.owner.empty() || !alive(l.owner) || !by_id[l.owner]->draining) {
      continue;
    }
    if (!l.target.empty() && eligible(l.target)) {
      continue; // already moving
    }
    auto to = least(false);
    plan.moves.push_back({l.shard, l.owner, l.epoch, to});
    planned.insert(l.shard);
    ++load[to];
    --budget;
  }
  // Then even out the eligible members, one shard at a time.
  while (budget > 0) {
    auto to = least(true);
    if (to.empty()) {
      break;
    }
    std::string from;
    long from_load = -1;
    for (const auto& [id, l] : load) {
      if (l > from_load) {
        from = id;
        from_load = l;
      }
    }
    if (from.empty() || from == to || from_load - load[to] <= 1) {
      break;
    }
    const lease_state* pick = nullptr;
    for (const auto& l : leases) {
      if (l.owner == from && l.target.empty() && planned.count(l.shard) == 0) {
        pick = &l;
        break;
      }
    }
    if (pick == nullptr) {
      break; // its load is moves in flight only
    }
    plan.moves.push_back({pick->shard, from, pick->epoch, to});
    planned.insert(pick->shard);
    --load[from];
    ++load[to];
    --budget;
  }
  return plan;
}

} // namespace surge::cluster
