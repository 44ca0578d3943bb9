#include "options.hpp"

#include "surge/config/settings.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace surge::load {

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

std::string value_of(const std::string& name, const std::optional<std::string>& v) {
  if (!v || v->empty()) {
    throw usage_error("--" + name + " needs a value: --" + name + "=VALUE");
  }
  return *v;
}

uint64_t parse_uint(const std::string& name, const std::string& s, uint64_t lo, uint64_t hi) {
  uint64_t x = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto [end, ec] = std::from_chars(b, e, x);
  if (b == e || ec != std::errc{} || end != e || x < lo || x > hi) {
    throw usage_error("--" + name + " must be an integer between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + ", got '" + s + "'");
  }
  return x;
}

double parse_double(const std::string& name, const std::string& s, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(x) || x < lo || x > hi) {
    throw usage_error("--" + name + " must be a number between " + std::to_string(lo) + " and " +
                      std::to_string(hi) + ", got '" + s + "'");
  }
  return x;
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
  std::size_t pos = 0;
  std::set<std::string> seen;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const auto item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
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
    if (comma == std::string::npos) {
      break;
    }
    pos = comma + 1;
  }
  if (weights[0] + weights[1] + weights[2] == 0) {
    throw usage_error("--mix: the weights must not all be 0");
  }
}

} // namespace

const char* scenario_name(scenario s) {
  switch (s) {
  case scenario::browse:
    return "browse";
  case scenario::hot_item:
    return "hot-item";
  case scenario::checkout:
    return "checkout";
  }
  return "?";
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
  options o;
  std::map<std::string, std::optional<std::string>> flags;
  for (const auto& a : args) {
    if (a.size() < 3 || a.rfind("--", 0) != 0) {
      throw usage_error("unexpected argument '" + a + "' (flags are --name=value)");
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (!flags
             .emplace(name, eq == std::string::npos ? std::nullopt
                                                    : std::optional<std::string>{a.substr(eq + 1)})
             .second) {
      throw usage_error("--" + name + " given twice");
    }
  }
  if (flags.count("help") != 0) {
    o.help = true;
    return o;
  }
  std::string targets = "http://127.0.0.1:8080";
  std::string admin = "http://127.0.0.1:9090";
  std::optional<std::string> mix;
  std::string sc;
  for (const auto& [name, v] : flags) {
    if (name == "no-check" || name == "quiet") {
      if (v) {
        throw usage_error("--" + name + " takes no value");
      }
      if (name == "quiet") {
        o.quiet = true;
      } else {
        o.check = false;
      }
      continue;
    }
    const auto val = value_of(name, v);
    if (name == "target") {
      targets = val;
    } else if (name == "admin") {
      admin = val;
    } else if (name == "admin-token") {
      o.admin_token = val;
    } else if (name == "scenario") {
      sc = val;
    } else if (name == "mix") {
      mix = val;
    } else if (name == "users") {
      o.users = parse_uint(name, val, 1, 10'000'000);
    } else if (name == "rate") {
      o.rate = parse_double(name, val, 0.001, 1'000'000);
    } else if (name == "max-users") {
      o.max_users = parse_uint(name, val, 1, 10'000'000);
    } else if (name == "duration") {
      o.duration = parse_duration(name, val);
      if (o.duration.count() == 0) {
        throw usage_error("--duration must be more than 0");
      }
    } else if (name == "connections") {
      o.connections = static_cast<uint32_t>(parse_uint(name, val, 1, 1'000'000));
    } else if (name == "think") {
      o.think = parse_duration(name, val);
    } else if (name == "skus") {
      o.skus = static_cast<uint32_t>(parse_uint(name, val, 1, 10'000'000));
    } else if (name == "sku-prefix") {
      o.sku_prefix = val;
    } else if (name == "hot-skus") {
      o.hot_skus = static_cast<uint32_t>(parse_uint(name, val, 1, 10'000'000));
    } else if (name == "zipf") {
      o.zipf = parse_double(name, val, 0, 10);
    } else if (name == "seed") {
      o.seed = parse_uint(name, val, 0, UINT64_MAX);
    } else if (name == "json") {
      o.json_path = val;
    } else if (name == "customer-secret-file") {
      o.customer_secret_file = val;
    } else if (name == "plot") {
      o.plot_prefix = val;
    } else if (name == "source-addrs") {
      o.source_addrs = static_cast<uint32_t>(parse_uint(name, val, 1, 254));
    } else if (name == "max-requests") {
      o.max_requests = parse_uint(name, val, 1, 1'000'000'000'000);
    } else if (name == "timeout") {
      o.timeout = parse_duration(name, val);
      if (o.timeout.count() < 1) {
        throw usage_error("--timeout must be at least 1ms");
      }
    } else if (name == "threads") {
      o.threads = static_cast<uint32_t>(parse_uint(name, val, 1, 2));
    } else if (name == "holds-ttl") {
      o.holds_ttl = parse_duration(name, val);
    } else if (name == "decline-rate") {
      o.decline_rate = parse_double(name, val, 0, 1);
    } else if (name == "retry-rate") {
      o.retry_rate = parse_double(name, val, 0, 1);
    } else {
      throw usage_error("unknown flag --" + name);
    }
  }

  std::size_t pos = 0;
  while (pos <= targets.size()) {
    const auto comma = targets.find(',', pos);
    o.targets.push_back(parse_loopback_url(
        "target",
        targets.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
    if (comma == std::string::npos) {
      break;
    }
    pos = comma + 1;
  }
  o.admin = parse_loopback_url("admin", admin);
  if (o.admin_token.empty()) {
    if (const char* env = std::getenv("SURGE_ADMIN_TOKEN"); env != nullptr) {
      o.admin_token = env;
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
      throw usage_error("--scenario must be browse, hot-item, checkout or mix, got '" + sc + "'");
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
  if (flags.count("max-users") != 0 && !o.rate) {
    throw usage_error("--max-users belongs to the open model (--rate)");
  }
  if (o.sku_prefix.empty() && o.skus > demo_skus().size()) {
    throw usage_error("--skus=" + std::to_string(o.skus) + " is more than the demo catalog's " +
                      std::to_string(demo_skus().size()) +
                      " SKUs: give --sku-prefix=P to use SKUs P1..PN");
  }
  if (!o.sku_prefix.empty() &&
      o.sku_prefix.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_") != std::string::npos) {
    throw usage_error("--sku-prefix may hold only letters, digits, '-' and '_', got '" +
                      o.sku_prefix + "'");
  }
  if (o.hot_skus > o.skus) {
    throw usage_error("--hot-skus=" + std::to_string(o.hot_skus) +
                      " is more than --skus=" + std::to_string(o.skus));
  }
  return o;
}

} // namespace surge::load
