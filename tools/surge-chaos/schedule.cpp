#include "schedule.hpp"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "netplan.hpp"

namespace surge::chaos {

const std::vector<std::string>& fault_kinds() {
  static const std::vector<std::string> kinds{"kill",
                                              "pause",
                                              "partition",
                                              "latency",
                                              "loss",
                                              "redis-restart",
                                              "pg-restart",
                                              "gateway-outage",
                                              "gateway-slow-capture",
                                              "rolling-restart",
                                              "scale"};
  return kinds;
}

const std::vector<std::string>& long_fault_kinds() {
  static const std::vector<std::string> kinds{"rolling-restart", "scale"};
  return kinds;
}

std::vector<std::string> parse_fault_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const auto comma = list.find(',', pos);
    const std::string item =
        list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (item.empty()) {
      continue;
    }
    if (item == "none") {
      continue; // no fault: a run that only checks the promises (and G5's failovers)
    }
    if (item == "all") {
      for (const auto& k : fault_kinds()) {
        const bool long_kind = std::find(long_fault_kinds().begin(), long_fault_kinds().end(), k) !=
                               long_fault_kinds().end();
        if (!long_kind && std::find(out.begin(), out.end(), k) == out.end()) {
          out.push_back(k);
        }
      }
      continue;
    }
    if (std::find(fault_kinds().begin(), fault_kinds().end(), item) == fault_kinds().end()) {
      throw std::invalid_argument("unknown fault kind '" + item + "'");
    }
    if (std::find(out.begin(), out.end(), item) == out.end()) {
      out.push_back(item);
    }
  }
  return out;
}

namespace {

/// Uniform in [lo, hi] from `rng`, without the implementation-defined distributions (the same
/// schedule on every standard library).
int64_t draw(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  if (hi <= lo) {
    return lo;
  }
  const auto span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(rng() % span);
}

/// How long a fault of `kind` lasts (drawn) and what variant it is.
void shape(planned_fault& f, std::mt19937_64& rng, const schedule_options& o) {
  if (f.kind == "kill") {
    f.duration_ms = draw(rng, 500, 2500); // dead time before the restart
  } else if (f.kind == "pause") {
    f.duration_ms = o.lease_ms + draw(rng, 1000, 2500); // past the lease
  } else if (f.kind == "partition") {
    // Both ways (peers, pg, all) or one way (-in / -out), uniformly: netplan.hpp.
    const auto& variants = partition_variants();
    f.variant = variants[static_cast<std::size_t>(draw(rng, 0, int64_t(variants.size()) - 1))];
    f.duration_ms = o.lease_ms + draw(rng, 1000, 3000);
  } else if (f.kind == "latency") {
    f.variant =
        std::to_string(draw(rng, 2, 6) * 50) + "ms"; // delay 100..300 ms (netplan.hpp shape_args)
    f.duration_ms = draw(rng, 3000, 6000);
  } else if (f.kind == "loss") {
    f.variant = std::to_string(draw(rng, 1, 6) * 5) + "%"; // loss 5..30 %
    f.duration_ms = draw(rng, 3000, 6000);
  } else if (f.kind == "redis-restart") {
    f.variant = draw(rng, 0, 1) == 0 ? "keep" : "flush";
    f.duration_ms = draw(rng, 500, 2000);
  } else if (f.kind == "pg-restart") {
    f.duration_ms = draw(rng, 0, 1000); // extra time between stop and start
  } else if (f.kind == "rolling-restart") {
    // inject() runs the whole roll; this is the schedule's estimate of it (drain, stop, start,
    // shards back: about 12 s a node on a loaded 2-core machine), not waited out again.
    f.node = 0;
    f.duration_ms = int64_t{12000} * o.nodes;
  } else if (f.kind == "scale") {
    f.duration_ms = draw(rng, 4000, 8000); // with one node more, between scale-out and scale-in
  } else if (f.kind == "gateway-outage") {
    f.variant = draw(rng, 0, 3) == 0 ? "all" : "first";
    f.node = 0;
    f.duration_ms = draw(rng, 3000, 6000);
  } else if (f.kind == "gateway-slow-capture") {
    // Every capture answered 2000..4500 ms late: at or past the nodes' payments.timeout (2 s),
    // so a capture's outcome is unknown to the node until a retry of its key is answered.
    f.variant = std::to_string(draw(rng, 4, 9) * 500) + "ms";
    f.node = 0;
    f.duration_ms = draw(rng, 4000, 8000);
  }
}

} // namespace

std::vector<planned_fault> make_schedule(const schedule_options& o) {
  std::vector<std::string> kinds;
  for (const auto& k : o.kinds) {
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) {
      kinds.push_back(k);
    }
  }
  std::vector<planned_fault> out;
  if (kinds.empty() || o.nodes <= 0) {
    return out;
  }
  std::mt19937_64 rng{o.seed};
  // Fisher-Yates with draw(): a deterministic order of the kinds.
  for (std::size_t i = kinds.size(); i > 1; --i) {
    std::swap(kinds[i - 1], kinds[static_cast<std::size_t>(draw(rng, 0, int64_t(i) - 1))]);
  }
  const int64_t window_end = o.duration_ms - o.cooldown_ms;
  // Plan with shapes first, then compress the gaps when the kinds would not all fit.
  std::vector<planned_fault> plan;
  int64_t busy = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    planned_fault f;
    f.kind = kinds[i % kinds.size()];
    f.node = static_cast<int>(draw(rng, 0, o.nodes - 1));
    shape(f, rng, o);
    const int64_t jitter = draw(rng, 0, o.gap_ms / 2);
    const int64_t need = f.duration_ms + o.gap_ms + jitter;
    if (i >= kinds.size() && o.warmup_ms + busy + f.duration_ms > window_end) {
      break;
    }
    f.at_ms = need - f.duration_ms; // gap before it, relative; made absolute below
    busy += need;
    plan.push_back(f);
  }
  // Scale the gaps so that the first round of kinds fits into the window when it would not.
  int64_t first_round = 0;
  int64_t first_round_gaps = 0;
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    first_round += plan[i].duration_ms + plan[i].at_ms;
    first_round_gaps += plan[i].at_ms;
  }
  const int64_t room = window_end - o.warmup_ms;
  double scale = 1.0;
  if (first_round > room && first_round_gaps > 0) {
    const int64_t durations = first_round - first_round_gaps;
    scale = std::max(0.0, double(room - durations) / double(first_round_gaps));
  }
  int64_t t = o.warmup_ms;
  for (auto& f : plan) {
    const auto gap = static_cast<int64_t>(double(f.at_ms) * scale);
    f.at_ms = t + (out.empty() ? 0 : gap);
    if (out.size() >= kinds.size() && f.at_ms + f.duration_ms > window_end) {
      break;
    }
    t = f.at_ms + f.duration_ms;
    out.push_back(f);
  }
  return out;
}

} // namespace surge::chaos
