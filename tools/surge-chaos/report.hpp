#pragma once

// The end of a run: the table of promises (stdout), the JSON report and the SVG plot of
// throughput, errors and latency per second with the faults marked (gnuplot).

#include <string>
#include <vector>

#include "checker.hpp"
#include "model.hpp"

namespace surge::chaos {

struct run_info {
  uint64_t seed = 0;
  int nodes = 0;
  int64_t duration_ms = 0;
  std::string mode; ///< "loopback" or "netns"
  std::vector<std::string> notes;
  std::vector<std::string> faults_requested;
  int64_t load_start_ms = 0;
  int64_t load_end_ms = 0;
};

/// The table: one row per promise, then counter-examples and details.
std::string promise_table(const std::vector<promise_result>& results);

std::string json_report(const run_info& info, const run_data& d,
                        const std::vector<promise_result>& results);

/// One JSON object per line per operation (the history, for post-mortems).
std::string history_jsonl(const std::vector<operation>& history);

/// Writes `svg_path` with gnuplot (data and script beside it). Returns "" or what went wrong.
std::string write_plot(const run_info& info, const run_data& d, const std::string& svg_path);

} // namespace surge::chaos
