#pragma once

// Fault kinds, pluggable: each kind is a class with a name, a reason it cannot run in this
// environment (empty when it can), inject and heal. make_fault_kinds() is the registry; a new
// kind is a new class there plus its name in schedule.cpp's fault_kinds().
// inject/heal run on the fault thread, one fault at a time; they block until done.
// Node ids are never reused for another node: a restarted node keeps its node.id (kill,
// rolling-restart), a node removed by a scale-in may join again later under its own id.

#include <memory>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "model.hpp"
#include "netplan.hpp"
#include "schedule.hpp"

namespace surge::chaos {

struct fault_context {
  cluster_env& env;
  bool netns = false;                     ///< nodes in network namespaces (partition possible)
  const net_layout* net = nullptr;        ///< netns mode: the network (netplan.hpp)
  link_shaper shaper = link_shaper::none; ///< how latency and loss degrade a link
  std::string shaper_note;     ///< why netem (or any shaper) cannot be used ("" when netem works)
  std::string loopback_reason; ///< why the run is in loopback mode
};

class fault_kind {
 public:
  virtual ~fault_kind() = default;
  virtual std::string name() const = 0;
  /// Why this kind cannot run here ("" when it can).
  virtual std::string unavailable(const fault_context&) const { return {}; }
  /// Starts the fault; fills `rec.target`/`rec.detail`. Throws std::runtime_error on failure.
  virtual void inject(fault_context& ctx, const planned_fault& f, fault_record& rec) = 0;
  /// Ends it (restart, resume, heal) and returns once the target serves again (bounded).
  virtual void heal(fault_context& ctx, const planned_fault& f, fault_record& rec) = 0;
  /// True when inject() itself runs the whole fault (rolling-restart): the planned duration is
  /// the schedule's estimate and the run does not wait it out again before heal().
  virtual bool timed_by_inject() const { return false; }
};

/// One instance of every known kind.
std::vector<std::unique_ptr<fault_kind>> make_fault_kinds();

} // namespace surge::chaos
