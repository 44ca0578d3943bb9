#pragma once

// The end-of-run output: the human summary (stdout), the JSON report (--json) and the plot data
// and SVGs (--plot).

#include <ostream>
#include <string>
#include <vector>

#include "check.hpp"
#include "engine.hpp"
#include "options.hpp"
#include "surge/tools/text.hpp"

namespace surge::load {

/// Facts about the process the report states.
struct run_facts {
  uint64_t fd_soft = 0; ///< RLIMIT_NOFILE soft limit after raising it
  uint64_t fd_hard = 0;
  uint32_t connections = 0; ///< after the file-descriptor bound
  std::string run_id;
};

/// The summary, the latency table per request kind, the outcomes and (when performed) the
/// cross-check's PASS/FAIL/SKIP lines.
void print_report(std::ostream& out, const options& o, const run_facts& f, const run_result& r,
                  const check_result& c);

/// The whole report as one JSON document (see tools/README.md for its members).
std::string json_report(const options& o, const run_facts& f, const run_result& r,
                        const check_result& c);

/// Writes PREFIX.tsv (one row per second: t, requests/s, p50, p99, errors/s, active journeys)
/// and PREFIX.gp, then runs gnuplot on it for PREFIX-latency.svg and PREFIX-throughput.svg.
/// Returns one line per file written, or saying why the SVGs are missing; throws
/// std::runtime_error when the data file cannot be written.
std::vector<std::string> write_plot(const std::string& prefix, const run_result& r);

/// Runs `gnuplot script` (bounded by 30 s); returns "" or why there is no plot (gnuplot not
/// found, failed, too slow).
std::string run_plot_script(const std::string& script);

/// "1234567" -> "1,234,567".
using tools::grouped;

} // namespace surge::load
