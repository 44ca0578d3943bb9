#pragma once

// The drop scenario (--scenario=drop, issue 17): a flash sale with a waiting room, driven end to
// end through the storefront and admin APIs (shared/API.md, "Sales and the waiting room").
//
// run_drop sets up 3 SKUs holding options::units and a sale over them with its queue enabled
// (admin API), starting options::lead later; then options::users shoppers arrive uniformly
// (seeded by options::seed) from start - arrive_before to start + arrive_after. Each joins the
// queue (POST /api/v1/sales/{id}/queue) and polls its ticket every options::poll; when admitted
// it creates a cart, adds 1 unit of a sale SKU (in a random order of the 3, the next on
// sold_out) with its Surge-Pass and checks out with tok_ok; `sold_out` or `expired` ends it. A
// options::bots share are bots: they poll every options::bot_interval and, between polls, add
// to a cart of their own without a pass (every answer counted; a hold is a failure). Everything
// is bounded: the run ends at start + arrive_after + drain, or as soon as every shopper knows
// its outcome and nothing is in flight; the sale ends 2 polls + 1 s before that (at least half a
// drain after the last arrival), so that shoppers still waiting are told `expired` in time.
//
// The result holds what the shoppers were told, the latencies, the admin API's view after the
// run (stock per SKU, the sale's stats) and the checks drawn from both (see drop_result).
//
// Threading: run_drop blocks; the shoppers run on one io_context run by the calling thread.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "check.hpp"
#include "engine.hpp"
#include "options.hpp"
#include "report.hpp"

namespace surge::load {

/// Kendall's tau-b of the pairs (x, y) (ties allowed on both sides), in O(n log n) (Knight's
/// algorithm: sort by x then y, count the swaps a merge sort by y needs). nullopt with fewer
/// than 2 pairs or when every x or every y is the same.
std::optional<double> kendall_tau_b(std::vector<std::pair<double, double>> xy);

/// Unix milliseconds of an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fff]Z"; nullopt otherwise.
std::optional<int64_t> parse_rfc3339_ms(const std::string& text);

enum class drop_kind { join, ticket, cart, add_item, checkout, bot_add };
constexpr int drop_kind_count = 6;
const char* drop_kind_name(drop_kind k);

/// One sale SKU: what the shoppers were told and, after the run, the admin stock.
struct drop_sku {
  std::string sku;
  int64_t stock = 0;           ///< units set at set-up
  int64_t confirmed_units = 0; ///< units in orders answered 201 confirmed
  uint64_t uncertain = 0;      ///< checkouts or holds whose outcome is unknown
  std::optional<stock_view> admin;
};

/// The sale's stats (GET /admin/v1/sales/{id}) at one moment; t_s from the start.
struct drop_point {
  double t_s = 0;
  int64_t tickets = 0;
  int64_t waiting = 0;
  int64_t admitted = 0;
  int64_t sold = 0;
  double admit_rate = 0;
  uint64_t told_sold_out = 0; ///< shoppers that had seen sold_out by then
};

struct drop_result {
  std::string sale_id;
  uint64_t users = 0;
  uint64_t bots = 0;
  int64_t units = 0;
  std::string error; ///< set-up failed (nothing ran); the checks then FAIL
  std::vector<drop_sku> skus;

  // What the shoppers ended knowing.
  uint64_t joined = 0;               ///< got a ticket
  uint64_t admitted = 0;             ///< saw `admitted` (with a pass)
  uint64_t bought = 0;               ///< an order confirmed
  uint64_t bot_buyers = 0;           ///< of them, bots
  uint64_t sold_out = 0;             ///< told sold_out (by the ticket or, admitted, by every SKU)
  uint64_t expired = 0;              ///< the pass expired, the sale ended, or 409 sale_ended
  uint64_t failed = 0;               ///< an answer that fits none of these (see `failures`)
  uint64_t undecided = 0;            ///< no outcome when the run ended
  uint64_t checkouts_unanswered = 0; ///< admitted shoppers whose checkout got no final answer
  uint64_t pass_refused = 0;         ///< a fresh pass answered 403 queue_required
  std::vector<std::string> failures; ///< the first few failures, for the report

  // Bots without a pass.
  uint64_t bot_refused = 0;     ///< 403 queue_required
  uint64_t bot_not_started = 0; ///< 409 sale_not_started
  uint64_t bot_other = 0;       ///< any other answer but a hold
  uint64_t bot_holds = 0;       ///< holds a bot got without a pass (must be 0)

  std::array<kind_stats, drop_kind_count> kinds;
  std::map<std::string, uint64_t> statuses;

  // Figures.
  std::optional<double> last_sold_s; ///< the answer to the checkout that took the last unit
  std::optional<double> notify_s;    ///< then until every shopper waiting had seen sold_out
  uint64_t notify_waiting = 0;       ///< shoppers waiting at last_sold_s
  uint64_t notify_missed = 0;        ///< ... that never saw sold_out
  /// Kendall tau-b of arrival (when the join was sent) vs admission order, over the shoppers who
  /// arrived after the start and were admitted. Admission order: the admission time (the pass's
  /// expiry - pass_ttl, ms), and within the same ms (one round of admission admits a prefix of
  /// ranks at once) the join number of the ticket ("t<seq>-<mac>"), which ranks arrivals after
  /// the start. `tau_b_strict` keeps same-ms admissions as ties (which tau-b counts against).
  std::optional<double> tau_b;
  std::optional<double> tau_b_strict;
  uint64_t tau_n = 0;
  double tau_tied_share = 0; ///< share of those pairs admitted in the same millisecond
  int64_t max_waiting = 0;
  double max_admit_rate = 0;
  double admission_rate_seen = 0; ///< admissions per second, first to last seen
  int64_t tickets = 0;
  std::string lottery_seed;
  std::optional<std::string> sold_out_at;
  std::vector<drop_point> series;
  double elapsed_s = 0; ///< from the set-up to the end of the run

  // The checks (after the run, against the admin API).
  int64_t oversell = 0;
  std::vector<check_line> checks;
  bool passed = false;

  double bot_share_arrivals() const;
  double bot_share_buyers() const;
  /// The larger of the admitted shoppers' add-to-cart and checkout p99, in ms.
  double admitted_p99_ms() const;
};

/// Runs one drop with `users` shoppers (blocking): set-up, shoppers, checks. `tag` makes the
/// sale and SKU names unique within the run (with setup.run_id).
drop_result run_drop(const options& o, const run_setup& setup, uint64_t users,
                     const std::string& tag);

/// The human report of one drop.
void print_drop(std::ostream& out, const options& o, const drop_result& r);

/// A capacity step passes: its checks passed, shoppers were admitted, and their p99 stayed
/// below options::capacity_p99_ms.
bool capacity_step_passed(const options& o, const drop_result& r);

/// The JSON report of a drop (one run) or of a capacity sweep (every step run, in order).
std::string drop_json_report(const options& o, const run_facts& f,
                             const std::vector<drop_result>& runs);

/// The capacity summary table.
void print_capacity(std::ostream& out, const options& o, const std::vector<drop_result>& runs);

/// PREFIX.tsv (the sale's stats over time), PREFIX-skus.tsv (sold vs stock per SKU), PREFIX.gp
/// and, with gnuplot, PREFIX-queue.svg. Returns one line per file written; throws
/// std::runtime_error when a data file cannot be written.
std::vector<std::string> write_drop_plot(const std::string& prefix, const drop_result& r);

} // namespace surge::load
