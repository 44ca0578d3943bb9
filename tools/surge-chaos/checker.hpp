#pragma once

// The promises of DESIGN.md (G1-G6) checked on a finished run (model.hpp). Pure functions of
// their input: no servers, no clocks. Each result names the operations, journal rows, orders or
// charges that break the promise (counter-examples), so that a FAIL can be followed up.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model.hpp"

namespace surge::chaos {

enum class verdict {
  pass,
  warn, ///< G5 only: a shard was unavailable longer than the goal, but came back
  fail,
};

const char* to_string(verdict v);

struct check_options {
  int64_t g5_goal_ms = 3000;   ///< DESIGN.md's availability goal after a node fault
  int64_t g5_limit_ms = 30000; ///< longer than this (or never back) after a node fault: FAIL
  int64_t g5_slow_ms = 1000;   ///< a successful request slower than this counts as unavailable
  int64_t g5_attribution_ms = 15000; ///< unavailability this long after a heal is the fault's
  int64_t g6_margin_ms = 2000;       ///< a hold may outlive its expiry by this much
  std::size_t max_examples = 5;
};

struct promise_result {
  std::string id;    ///< "G1"...
  std::string title; ///< "no oversell"...
  verdict result = verdict::pass;
  std::string summary;                       ///< one line: what was checked, how much
  std::vector<std::string> counter_examples; ///< at most check_options::max_examples
  std::vector<std::string> details;          ///< more lines for the report (G5: per fault)
  std::map<std::string, double> metrics;     ///< numbers for the JSON report
};

/// A SKU's state as replayed from its journal.
struct replayed_sku {
  int64_t on_hand = 0;
  int64_t held = 0;
  int64_t sold = 0;
  /// Open holds by hold id, each as its last hold_set event left it (qty, expiry, cart).
  std::map<std::string, journal_event> holds;
  struct sale {
    std::string order_id;
    int64_t qty = 0;
    bool returned = false;
  };
  std::map<std::string, sale> sales; ///< confirmed holds by hold id
};

/// Applies `ev` as the SKU actor does (actors/src/sku_model.cpp `apply`).
void apply(replayed_sku& s, const journal_event& ev);

/// "sku:ABC" -> "ABC"; other names unchanged.
std::string sku_of_stream(const std::string& stream);

promise_result check_g1(const run_data& d, const check_options& o = {});
promise_result check_g2(const run_data& d, const check_options& o = {});
promise_result check_g3(const run_data& d, const check_options& o = {});
promise_result check_g4(const run_data& d, const check_options& o = {});
promise_result check_g5(const run_data& d, const check_options& o = {});
promise_result check_g6(const run_data& d, const check_options& o = {});

/// G1..G6 in order.
std::vector<promise_result> check_all(const run_data& d, const check_options& o = {});

/// True when no result is verdict::fail.
bool all_passed(const std::vector<promise_result>& results);

/// The `q` quantile (0..1) of `v` (nearest rank); 0 for an empty vector.
int64_t quantile(std::vector<int64_t> v, double q);

} // namespace surge::chaos
