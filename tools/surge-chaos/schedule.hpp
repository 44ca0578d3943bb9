#pragma once

// The fault schedule: a pure function of the seed, the run's length, the fault kinds asked for
// and the number of nodes. The same inputs give the same schedule (unit-tested), so a failing
// run can be replayed with its seed.

#include <cstdint>
#include <string>
#include <vector>

namespace surge::chaos {

/// One planned fault. Times are offsets from the start of the load.
struct planned_fault {
  std::string kind;        ///< a name from fault_kinds()
  int64_t at_ms = 0;       ///< inject
  int64_t duration_ms = 0; ///< heal after this long
  int node = 0;            ///< target node index (node faults), or the gateway index
  std::string variant;     ///< kind-specific: "flush" / "keep" (redis-restart), "peers" / "pg"
                           ///< / "all" [-in / -out] (partition, netplan.hpp), "150ms"
                           ///< (latency), "15%" (loss), "first" / "all" (gateway-outage),
                           ///< "3000ms" (gateway-slow-capture: the capture answers' delay);
                           ///< node: for scale, which member the scale-in removes
};

struct schedule_options {
  uint64_t seed = 1;
  int64_t duration_ms = 120000;
  std::vector<std::string> kinds; ///< requested kinds (duplicates ignored)
  int nodes = 3;
  int gateways = 2;
  int64_t warmup_ms = 8000;   ///< no fault before this
  int64_t cooldown_ms = 8000; ///< every fault healed this long before the end
  int64_t gap_ms = 6000;      ///< at least this long between a heal and the next fault
  int64_t lease_ms = 2000;    ///< cluster.lease: a pause lasts longer than this
};

/// Every fault kind surge-chaos knows, in a fixed order.
const std::vector<std::string>& fault_kinds();

/// The kinds that take long (tens of seconds: rolling-restart, scale): asked for by name only,
/// not part of "all" (which has to fit a two-minute run).
const std::vector<std::string>& long_fault_kinds();

/// Splits "kill,pause" or "all" (every kind but the long ones) into known kind names; throws
/// std::invalid_argument naming an unknown one.
std::vector<std::string> parse_fault_list(const std::string& list);

/// Faults one at a time, in order of time. Every requested kind appears at least once when the
/// window (duration - warmup - cooldown) has room for it; the kinds are cycled in an order
/// shuffled by the seed, targets and durations are drawn from the seed.
std::vector<planned_fault> make_schedule(const schedule_options& o);

} // namespace surge::chaos
