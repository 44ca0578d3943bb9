#include "options.hpp"

#include "surge/config/names.hpp"
#include "surge/config/settings.hpp"
#include "surge/tools/cli.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iterator>
#include <set>
#include <type_traits>

namespace surge::load {

namespace cli = tools::cli;

const char* const usage_text =
    R"(usage: surge-load [FLAGS]

drives shopper journeys against surge-node's storefront API from one process: many simulated
shoppers share a pool of keep-alive connections; then cross-checks what it was told against the
admin stock endpoint

scenarios (--scenario=NAME, or --mix=browse:70,hot-item:20,checkout:10):
  browse        a listing, then product pages /p/{sku} (If-None-Match) and product JSON
  hot-item      create a cart, hold 1 of a hot SKU (Zipf over --hot-skus)
  checkout      create a cart, hold 1-3 SKUs, check out with an Idempotency-Key (tok_ok, or
                tok_decline for --decline-rate of them); --retry-rate of orders resubmitted
  mix           the weighted mix of --mix (default browse:70,hot-item:20,checkout:10)
  drop          a flash sale with a waiting room (see "drop" below); not part of a mix

drop (--scenario=drop): sets up through the admin API 3 SKUs holding --units and a sale over
them with its queue on, starting --lead after set-up; --users shoppers (default 2000) arrive
uniformly (seeded) from --arrive-before before the start to --arrive-after after it, each a
customer (a token when the nodes verify customers): join the queue, poll the ticket every
--poll; when admitted create a cart, add 1 unit of a sale SKU with the Surge-Pass and check out
(tok_ok); on sold_out stop. A --bots share are bots: they poll every --bot-interval and also add
to a cart without a pass (counted: 403s; a hold they get is a failure). The run ends at start
+ --arrive-after + --drain (earlier once every shopper knows), the sale 2 polls + 1 s before.
Reported: sold units against the admin stock (oversell), p50/p99 of admitted shoppers' add to
cart and checkout, sold-out notification lag, bots among arrivals vs buyers, Kendall tau-b of
arrival vs admission order after the start, queue figures; exit 1 when an invariant fails.
  --units=N             stock of the sale over its 3 SKUs (default 1000)
  --admission-rate=R    shoppers admitted per second, or auto (default auto)
  --pass-ttl=D          a pass's lifetime (default 60s)
  --lead=D              set-up to the start (default 10s)
  --arrive-before=D     arrivals begin this long before the start (default 10s; <= --lead)
  --arrive-after=D      ... and end this long after it (default 20s)
  --drain=D             the run's bound after the last arrival (default 20s)
  --poll=D              shoppers poll their ticket this often (default 1s)
  --bot-interval=D      a bot's pause between its requests (default 100ms)
  --bots=F              share of bots among shoppers (default 0.2)
  --buy-connections=N   connections kept for admitted shoppers' cart, add and checkout (32)
  --capacity=N[,N..]    instead of one drop: a drop per step with N shoppers (a new sale each),
                        until admitted shoppers' p99 (add to cart or checkout) reaches
                        --capacity-p99=D (default 300ms); reports the most queued that stayed below

load model (one of):
  --users=N             closed: N shoppers, each runs journey after journey (default 100)
  --rate=R              open: R journeys/s arrive (Poisson), latency from the intended start
  --max-users=N         open: at most N journeys in flight; more arrivals are dropped (100000)

flags:
  --target=URL[,URL..]  storefront(s), loopback only (default http://127.0.0.1:8080)
  --admin=URL           admin API for the cross-check, loopback only (http://127.0.0.1:9090)
  --admin-token=T       bearer token (default: $SURGE_ADMIN_TOKEN)
  --duration=D          how long journeys start (default 30s; e.g. 500ms, 10s, 2m)
  --connections=N       keep-alive connections shared by all shoppers (default 64)
  --think=D             mean think time between steps, exponential (default 1s; 0 = none)
  --skus=N              catalog size (default 12: the demo catalog of scripts/demo-catalog.sh)
  --sku-prefix=P        SKUs are P1..PN instead of the demo catalog's names
  --hot-skus=N          the first N SKUs are the hot ones (default 3)
  --zipf=S              Zipf exponent of SKU popularity (default 1.1; 0 = uniform)
  --seed=N              random seed (default 1)
  --timeout=D           per request, from write to full answer (default 10s)
  --max-requests=N      hard bound on requests sent (default 10000000)
  --threads=N           threads running the I/O loop, 1 or 2 (default 1)
  --source-addrs=N      bind connections to 127.0.0.1..127.0.0.N (default: no bind)
  --holds-ttl=D         the node's holds.ttl (default 600s): live holds are checked only when
                        the run is shorter
  --decline-rate=F      fraction of checkouts with tok_decline (default 0.1)
  --retry-rate=F        fraction of orders submitted again with the same key (default 0.2)
  --customer-secret-file=FILE
                        sign each shopper's customer token (HS256) with the secret in FILE, for
                        nodes that verify customers (auth.jwt_secret); default: the environment's
                        SURGE_AUTH_JWT_SECRET, else ./data/jwt.secret when it exists (run.sh's),
                        else carts name their customer in the body (development nodes)
  --json=FILE           write the report as JSON
  --plot=PREFIX         write PREFIX.tsv (per second) and, with gnuplot, PREFIX-latency.svg and
                        PREFIX-throughput.svg
  --no-check            skip the cross-check against the admin API
  --quiet               no progress line on stderr
  --help                this text

client addresses: each shopper sends X-Forwarded-For with a stable address of its own from
198.18.0.0/15 (the benchmarking range), so that a node that trusts this machine as a proxy
(http.trusted_proxies, default 127.0.0.1/32,::1/128) applies limits.ip_rate to each shopper,
not to the whole run; with --source-addrs, start the nodes with
--http.trusted_proxies=127.0.0.0/8 (or --limits.ip_rate=0). A 429 counts as an error.

exit status: 0 ok, 1 the cross-check failed (or could not run), 2 usage error,
             3 no request got an answer (target unreachable)
)";

namespace {

uint64_t parse_uint(const std::string& name, const std::string& s, uint64_t lo, uint64_t hi) {
  const auto x = cli::to_integer<uint64_t>(s);
  if (!x || *x < lo || *x > hi) {
    throw usage_error("--" + name + " must be an integer between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + ", got '" + s + "'");
  }
  return *x;
}

double parse_double(const std::string& name, const std::string& s, double lo, double hi) {
  const auto x = cli::to_number(s);
  if (!x || *x < lo || *x > hi) {
    throw usage_error("--" + name + " must be a number between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + ", got '" + s + "'");
  }
  return *x;
}

bool parse_scenario(const std::string& s, scenario& out) {
  if (s == "browse") {
    out = scenario::browse;
  } else if (s == "hot-item") {
    out = scenario::hot_item;
  } else if (s == "checkout") {
    out = scenario::checkout;
  } else {
    return false;
  }
  return true;
}

void parse_mix(const std::string& text, int (&weights)[scenario_count]) {
  for (auto& w : weights) {
    w = 0;
  }
  std::set<std::string> seen;
  for (const auto& item : cli::split_list(text)) {
    const auto colon = item.find(':');
    scenario s{};
    if (colon == std::string::npos || !parse_scenario(item.substr(0, colon), s)) {
      throw usage_error("--mix expects NAME:WEIGHT,... with NAME browse, hot-item or checkout "
                        "(e.g. --mix=browse:70,hot-item:20,checkout:10), got '" +
                        text + "'");
    }
    if (!seen.insert(item.substr(0, colon)).second) {
      throw usage_error("--mix names " + item.substr(0, colon) + " twice");
    }
    weights[static_cast<int>(s)] =
        static_cast<int>(parse_uint("mix", item.substr(colon + 1), 0, 1000000));
  }
  if (weights[0] + weights[1] + weights[2] == 0) {
    throw usage_error("--mix: the weights must not all be 0");
  }
}

} // namespace

const char* scenario_name(scenario x) {
  static constexpr const char* names[] = {"browse", "hot-item", "checkout"};
  static_assert(std::size(names) == config::count_of(scenario::browse, scenario::checkout));
  return config::name_of(x, names, "?");
}

endpoint parse_loopback_url(const std::string& flag, const std::string& url) {
  const std::string scheme = "http://";
  const auto bad = [&](const std::string& why) {
    return usage_error("--" + flag + ": " + why + ", got '" + url + "'");
  };
  if (url.rfind(scheme, 0) != 0) {
    throw bad("expects http://host[:port]");
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  if (rest.find_first_of("/?#") != std::string::npos) {
    throw bad("expects http://host[:port] without a path");
  }
  endpoint ep;
  ep.port = 80;
  const auto colon = rest.find(':');
  ep.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    const auto p = rest.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535) {
      throw bad("bad port");
    }
    ep.port = static_cast<uint16_t>(port);
  }
  if (ep.host.empty() || ep.host.find_first_of("/@[]?#") != std::string::npos) {
    throw bad("expects http://host[:port] without a path");
  }
  if (ep.host == "localhost") {
    ep.address = "127.0.0.1";
    return ep;
  }
  in_addr a{};
  if (::inet_pton(AF_INET, ep.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
    throw bad("only loopback targets are allowed (localhost or 127.x.x.x)");
  }
  ep.address = ep.host;
  return ep;
}

std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text) {
  const auto d = config::parse_cli_duration(text);
  if (!d || *d > std::chrono::hours{24}) {
    throw usage_error("--" + flag + " expects a duration such as 30s, 250ms, 2m or 1.5 (seconds; " +
                      "at most 24h), got '" + text + "'");
  }
  return *d;
}

const std::vector<std::string>& demo_skus() {
  static const std::vector<std::string> skus = {
      "PS5-BF",        "XSX-1TB",         "NSW-OLED",    "STEAM-DECK-512",
      "GAME-ELDEN",    "GAME-ZELDA-TOTK", "GAME-FC24",   "GAME-HOGWARTS",
      "ACC-DUALSENSE", "ACC-HEADSET",     "ACC-SSD-2TB", "ACC-CHARGER"};
  return skus;
}

std::vector<std::string> catalog_skus(const options& o) {
  std::vector<std::string> out;
  out.reserve(o.skus);
  for (uint32_t i = 0; i < o.skus; ++i) {
    out.push_back(o.sku_prefix.empty() ? demo_skus()[i] : o.sku_prefix + std::to_string(i + 1));
  }
  return out;
}

options parse_options(const std::vector<std::string>& args) {
  using cli::takes;
  options o;
  std::string targets = "http://127.0.0.1:8080";
  std::string admin = "http://127.0.0.1:9090";
  std::optional<std::string> mix;
  std::string sc;
  const auto integer = [](const char* name, auto& out, uint64_t lo, uint64_t hi) {
    return cli::flag{name, takes::value, [name, &out, lo, hi](const std::optional<std::string>& v) {
                       out = static_cast<std::remove_reference_t<decltype(out)>>(
                           parse_uint(name, *v, lo, hi));
                     }};
  };
  const auto number = [](const char* name, auto& out, double lo, double hi) {
    return cli::flag{name, takes::value, [name, &out, lo, hi](const std::optional<std::string>& v) {
                       out = parse_double(name, *v, lo, hi);
                     }};
  };
  /// `positive`: the message when the duration is 0.
  const auto duration = [](const char* name, std::chrono::milliseconds& out,
                           const char* positive = nullptr) {
    return cli::flag{name, takes::value,
                     [name, &out, positive](const std::optional<std::string>& v) {
                       out = parse_duration(name, *v);
                       if (positive != nullptr && out.count() < 1) {
                         throw usage_error(std::string{"--"} + name + positive);
                       }
                     }};
  };
  const std::vector<cli::flag> flags = {
      {"help", takes::optional, {}},
      {"target", takes::value, cli::assign(targets)},
      {"admin", takes::value, cli::assign(admin)},
      {"admin-token", takes::value, cli::assign(o.admin_token)},
      {"scenario", takes::value, cli::assign(sc)},
      {"mix", takes::value, cli::assign(mix)},
      integer("users", o.users, 1, 10'000'000),
      number("rate", o.rate, 0.001, 1'000'000),
      integer("max-users", o.max_users, 1, 10'000'000),
      duration("duration", o.duration, " must be more than 0"),
      integer("connections", o.connections, 1, 1'000'000),
      duration("think", o.think),
      integer("skus", o.skus, 1, 10'000'000),
      {"sku-prefix", takes::value, cli::assign(o.sku_prefix)},
      integer("hot-skus", o.hot_skus, 1, 10'000'000),
      number("zipf", o.zipf, 0, 10),
      integer("seed", o.seed, 0, UINT64_MAX),
      {"json", takes::value, cli::assign(o.json_path)},
      {"customer-secret-file", takes::value, cli::assign(o.customer_secret_file)},
      {"plot", takes::value, cli::assign(o.plot_prefix)},
      integer("source-addrs", o.source_addrs, 1, 254),
      integer("max-requests", o.max_requests, 1, 1'000'000'000'000),
      duration("timeout", o.timeout, " must be at least 1ms"),
      integer("threads", o.threads, 1, 2),
      duration("holds-ttl", o.holds_ttl),
      number("decline-rate", o.decline_rate, 0, 1),
      number("retry-rate", o.retry_rate, 0, 1),
      integer("units", o.units, 1, 1'000'000'000),
      {"admission-rate", takes::value,
       [&o](const std::optional<std::string>& v) {
         if (*v != "auto") {
           o.admission_rate = parse_double("admission-rate", *v, 0.001, 1'000'000);
         }
       }},
      duration("pass-ttl", o.pass_ttl, " must be at least 1s"),
      duration("lead", o.lead, " must be more than 0"),
      duration("arrive-before", o.arrive_before),
      duration("arrive-after", o.arrive_after),
      duration("drain", o.drain, " must be more than 0"),
      duration("poll", o.poll, " must be at least 1ms"),
      duration("bot-interval", o.bot_interval),
      number("bots", o.bots, 0, 1),
      integer("buy-connections", o.buy_connections, 1, 100'000),
      {"capacity", takes::value,
       [&o](const std::optional<std::string>& v) {
         for (const auto& step : cli::split_list(*v)) {
           o.capacity.push_back(parse_uint("capacity", step, 1, 10'000'000));
         }
         if (o.capacity.empty()) {
           throw usage_error("--capacity expects N[,N..], got '" + *v + "'");
         }
       }},
      {"capacity-p99", takes::value,
       [&o](const std::optional<std::string>& v) {
         const auto d = parse_duration("capacity-p99", *v);
         if (d.count() < 1) {
           throw usage_error("--capacity-p99 must be at least 1ms");
         }
         o.capacity_p99_ms = static_cast<double>(d.count());
       }},
      {"no-check", takes::nothing, [&o](const std::optional<std::string>&) { o.check = false; }},
      {"quiet", takes::nothing, cli::enable(o.quiet)},
  };
  cli::syntax syntax;
  syntax.unique = true;
  auto line = cli::read(args, flags, syntax);
  // A word or a repeated flag is an error even with --help; any other line answers --help.
  cli::check_shape(line, syntax);
  if (cli::has(line, "help")) {
    o.help = true;
    return o;
  }
  // By name: with several bad flags, the one reported is the first by name, as it always was.
  std::stable_sort(line.begin(), line.end(),
                   [](const cli::argument& a, const cli::argument& b) { return a.name < b.name; });
  cli::apply(line, flags, syntax);

  for (const auto& target : cli::split_list(targets)) {
    o.targets.push_back(parse_loopback_url("target", target));
  }
  o.admin = parse_loopback_url("admin", admin);
  if (o.admin_token.empty()) {
    if (const char* env = std::getenv("SURGE_ADMIN_TOKEN"); env != nullptr) {
      o.admin_token = env;
    }
  }

  if (!o.sku_prefix.empty() &&
      o.sku_prefix.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_") != std::string::npos) {
    throw usage_error("--sku-prefix may hold only letters, digits, '-' and '_', got '" +
                      o.sku_prefix + "'");
  }
  static const char* const drop_flags[] = {
      "units",           "admission-rate", "pass-ttl",    "lead", "arrive-before",
      "arrive-after",    "drain",          "poll",        "bots", "bot-interval",
      "buy-connections", "capacity",       "capacity-p99"};
  if (sc == "drop") {
    o.drop = true;
    o.scenario_text = "drop";
    for (const char* f : {"mix", "rate", "max-users", "duration", "think", "decline-rate",
                          "retry-rate", "holds-ttl", "threads", "skus", "hot-skus", "zipf"}) {
      if (cli::has(line, f)) {
        throw usage_error(std::string{"--"} + f + " does not apply to --scenario=drop");
      }
    }
    if (!o.users) {
      o.users = 2000;
    }
    if (o.arrive_before > o.lead) {
      throw usage_error("--arrive-before must not exceed --lead (shoppers arrive after set-up)");
    }
    if (cli::has(line, "capacity-p99") && o.capacity.empty()) {
      throw usage_error("--capacity-p99 goes with --capacity");
    }
    return o;
  }
  for (const char* f : drop_flags) {
    if (cli::has(line, f)) {
      throw usage_error(std::string{"--"} + f + " belongs to --scenario=drop");
    }
  }

  if (mix) {
    if (!sc.empty() && sc != "mix") {
      throw usage_error("--mix goes with --scenario=mix (or no --scenario), not --scenario=" + sc);
    }
    parse_mix(*mix, o.weights);
    o.scenario_text = "mix";
  } else if (sc.empty() || sc == "mix") {
    parse_mix("browse:70,hot-item:20,checkout:10", o.weights);
    o.scenario_text = "mix";
  } else {
    scenario s{};
    if (!parse_scenario(sc, s)) {
      throw usage_error("--scenario must be browse, hot-item, checkout, mix or drop, got '" + sc +
                        "'");
    }
    o.weights[static_cast<int>(s)] = 1;
    o.scenario_text = sc;
  }

  if (o.users && o.rate) {
    throw usage_error("--users (closed model) and --rate (open model) exclude each other");
  }
  if (!o.users && !o.rate) {
    o.users = 100;
  }
  if (cli::has(line, "max-users") && !o.rate) {
    throw usage_error("--max-users belongs to the open model (--rate)");
  }
  if (o.sku_prefix.empty() && o.skus > demo_skus().size()) {
    throw usage_error("--skus=" + std::to_string(o.skus) + " is more than the demo catalog's " +
                      std::to_string(demo_skus().size()) +
                      " SKUs: give --sku-prefix=P to use SKUs P1..PN");
  }
  if (o.hot_skus > o.skus) {
    throw usage_error("--hot-skus=" + std::to_string(o.hot_skus) +
                      " is more than --skus=" + std::to_string(o.skus));
  }
  return o;
}

} // namespace surge::load
