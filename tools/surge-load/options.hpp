#pragma once

// surge-load's command line: every flag, its default and its bounds, parsed into one const
// options struct that the engine, the cross-check and the report receive.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "surge/tools/cli.hpp"

namespace surge::load {

/// Exit codes (the same scheme as surgectl).
enum exit_code : int {
  exit_ok = 0,
  exit_check_failed = 1, ///< the cross-check against the admin stock failed (or could not run)
  exit_usage = 2,        ///< bad command line
  exit_unreachable = 3,  ///< no request got an HTTP answer: the target is not there
};

/// A bad command line: `what()` is the message for stderr; exit_usage.
using usage_error = tools::cli::usage_error;

/// A loopback HTTP endpoint: `host` as given, `address` the IPv4 literal connected to.
struct endpoint {
  std::string host;
  std::string address; ///< dotted IPv4 in 127.0.0.0/8
  uint16_t port = 0;
  std::string url() const { return "http://" + host + ":" + std::to_string(port); }
};

/// Parses http://host[:port][/] where host is "localhost" or an IPv4 literal in 127.0.0.0/8;
/// anything else throws usage_error naming `flag` (only loopback targets are allowed).
endpoint parse_loopback_url(const std::string& flag, const std::string& url);

enum class scenario { browse, hot_item, checkout };
constexpr int scenario_count = 3;
const char* scenario_name(scenario s);

struct options {
  std::vector<endpoint> targets; ///< storefront APIs; connections are spread over them
  endpoint admin;
  std::string admin_token;          ///< --admin-token, else $SURGE_ADMIN_TOKEN
  std::string scenario_text;        ///< as given: browse, hot-item, checkout or mix
  int weights[scenario_count] = {}; ///< journeys of each scenario, relative
  std::optional<uint64_t> users;    ///< closed model: this many shoppers loop journeys
  std::optional<double> rate;       ///< open model: journeys per second arrive (Poisson)
  uint64_t max_users = 100000;      ///< open model: journeys in flight at most (else dropped)
  std::chrono::milliseconds duration{30000};
  uint32_t connections = 64;
  std::chrono::milliseconds think{1000}; ///< mean of the exponential think time
  uint32_t skus = 12;
  std::string sku_prefix; ///< empty: the demo catalog's names (scripts/demo-catalog.sh)
  uint32_t hot_skus = 3;
  double zipf = 1.1;
  uint64_t seed = 1;
  std::string json_path;
  std::string customer_secret_file; ///< --customer-secret-file (empty: see main)
  std::string plot_prefix;
  uint32_t source_addrs = 0; ///< 0: no bind; N: 127.0.0.1 .. 127.0.0.N
  uint64_t max_requests = 10'000'000;
  std::chrono::milliseconds timeout{10000};
  uint32_t threads = 1;
  std::chrono::milliseconds holds_ttl{600000};
  double decline_rate = 0.1; ///< fraction of checkouts paying with tok_decline
  double retry_rate = 0.2;   ///< fraction of placed orders submitted again with the same key
  bool check = true;         ///< --no-check skips the cross-check
  // --scenario=drop (drop.hpp): a flash sale with a waiting room, set up through the admin API.
  bool drop = false;
  uint64_t units = 1000;                ///< --units: stock of the sale, over its 3 SKUs
  std::optional<double> admission_rate; ///< --admission-rate: shoppers/s; unset: "auto"
  std::chrono::milliseconds pass_ttl{60000};
  std::chrono::milliseconds lead{10000};          ///< set-up to the sale's start
  std::chrono::milliseconds arrive_before{10000}; ///< shoppers arrive from start - this ...
  std::chrono::milliseconds arrive_after{20000};  ///< ... to start + this (uniformly)
  std::chrono::milliseconds drain{20000};         ///< the run ends at start + arrive_after + drain
  std::chrono::milliseconds poll{1000};           ///< shoppers poll their ticket this often
  std::chrono::milliseconds bot_interval{100};    ///< a bot's pause between requests
  double bots = 0.2;                              ///< --bots: share of shoppers that are bots
  std::vector<uint64_t> capacity;                 ///< --capacity=N,N,..: queued shoppers per step
  double capacity_p99_ms = 300;  ///< --capacity-p99: a step passes below this admitted p99
  uint32_t buy_connections = 32; ///< connections reserved for admitted shoppers' purchases
  bool quiet = false;            ///< --quiet: no progress line
  bool help = false;
};

/// Parses argv[1..] (flags only, --name=value). Throws usage_error.
options parse_options(const std::vector<std::string>& args);

/// "1s", "250ms", "2m", "1.5" (seconds) -> milliseconds. Throws usage_error naming `flag`.
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text);

/// The SKU names of the catalog: the demo catalog's (scripts/demo-catalog.sh) when no prefix is
/// given, else PREFIX1 .. PREFIXn. Hot SKUs are the first `hot_skus`.
std::vector<std::string> catalog_skus(const options& o);

/// The demo catalog's SKUs, hottest first.
const std::vector<std::string>& demo_skus();

extern const char* const usage_text;

} // namespace surge::load
