// surge-paysim: simulated payment gateways for local runs, tests and chaos drills.
// See tools/README.md for the wire styles, tokens and control endpoints.

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "simulator.hpp"
#include "surge/tools/cli.hpp"

namespace {

constexpr std::string_view usage =
    R"(usage: surge-paysim --gateways=NAME=HOST:PORT[,NAME=HOST:PORT...] [options]

Serves one simulated payment gateway per address (port 0: any free port), each speaking the
form style (POST/GET /v1/charges, POST /v1/refunds, POST /v1/charges/{id}/capture|cancel) and
the JSON style (POST /payments, GET /payments/{ref}, POST /refunds,
POST /payments/{psp}/captures|cancels). Charges (or authorisations: capture=false,
manualCapture), captures, voids and refunds are idempotent by key per gateway.

  --gateways=LIST      ordered list; the first is "the first gateway" for tok_down_first
  --latency-ms=N       added to every charge, lookup and refund answer (default 0)
  --slow-ms=N          tok_slow answers this much later (default 3000); so do new refunds
                       of a tok_slow charge (not their replays)
  --decline-rate=F     probability in [0,1] that tok_ok is declined (default 0)
  --seed=N             seed for --decline-rate (default 1)
  --tls-cert=FILE      serve every gateway over TLS (https) with this PEM certificate chain;
  --tls-key=FILE       and this PEM private key (both or neither). Each gateway's plain HTTP
                       server then listens on a free port of 127.0.0.1, printed as "plain on"
  --help               this text

Tokens: tok_ok, tok_decline, tok_slow, tok_down_first; any other token is declined.
Control: POST /_outage {"down":true|false} (while down, charges, lookups and refunds answer
503), GET /_charges and GET /_refunds (the logs of all gateways), GET /healthz.
Stops on SIGINT/SIGTERM.
)";

namespace cli = surge::tools::cli;

[[noreturn]] void bad_flag(const std::string& msg) {
  throw cli::usage_error(msg);
}

/// surge-paysim's own wording of a bad flag: every flag is --name=value.
std::string wording(cli::problem p, const cli::argument& a) {
  const auto incomplete = [&] {
    return "unknown or incomplete flag '" + a.text + "' (flags are --name=value)";
  };
  switch (p) {
  case cli::problem::unexpected_word:
    return a.text.find('=') == std::string::npos
               ? incomplete()
               : "unknown flag '" + a.text.substr(0, a.text.find('=')) + "'";
  case cli::problem::unknown_flag:
    return a.value ? "unknown flag '" + a.text + "'" : incomplete();
  case cli::problem::missing_value:
    return incomplete();
  default: // --help=...
    return "unknown flag '" + a.text + "'";
  }
}

template <class T>
T number(std::string_view flag, std::string_view text) {
  const auto v = cli::to_integer<T>(text);
  if (!v) {
    bad_flag(std::string{flag} + ": '" + std::string{text} + "' is not a valid number");
  }
  return *v;
}

std::vector<surge::paysim::gateway_address> parse_gateways(std::string_view list) {
  std::vector<surge::paysim::gateway_address> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      bad_flag("--gateways: '" + std::string{item} + "' is not NAME=HOST:PORT");
    }
    std::string_view addr = item.substr(eq + 1);
    if (addr.starts_with("http://")) {
      addr.remove_prefix(7);
    }
    const std::size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      bad_flag("--gateways: '" + std::string{item} + "' needs HOST:PORT");
    }
    const auto port = number<unsigned>("--gateways port", addr.substr(colon + 1));
    if (port > 65535) {
      bad_flag("--gateways: port out of range in '" + std::string{item} + "'");
    }
    surge::paysim::gateway_address g{std::string{item.substr(0, eq)},
                                     std::string{addr.substr(0, colon)},
                                     static_cast<uint16_t>(port)};
    for (const auto& other : out) {
      if (other.name == g.name) {
        bad_flag("--gateways: the name '" + g.name + "' appears twice");
      }
    }
    out.push_back(std::move(g));
  }
  if (out.empty()) {
    bad_flag("--gateways is required");
  }
  return out;
}

/// The options of `args`; nullopt: --help was asked for. Throws cli::usage_error.
std::optional<surge::paysim::options> parse_options(const std::vector<std::string>& args) {
  using cli::takes;
  surge::paysim::options opts;
  bool help = false;
  bool have_gateways = false;
  const auto milliseconds = [](const char* name, std::chrono::milliseconds& out) {
    return cli::flag{name, takes::value, [name, &out](const std::optional<std::string>& v) {
                       out = std::chrono::milliseconds{
                           number<unsigned>("--" + std::string{name}, *v)};
                     }};
  };
  const std::vector<cli::flag> flags = {
      {"help", takes::nothing, cli::enable(help), true},
      {"gateways", takes::value,
       [&](const std::optional<std::string>& v) {
         opts.gateways = parse_gateways(*v);
         have_gateways = true;
       }},
      milliseconds("latency-ms", opts.latency),
      milliseconds("slow-ms", opts.slow),
      {"decline-rate", takes::value,
       [&](const std::optional<std::string>& v) {
         const double rate = std::strtod(v->c_str(), nullptr);
         if (v->empty() || v->find_first_not_of("0123456789.") != std::string::npos || rate < 0.0 ||
             rate > 1.0) {
           bad_flag("--decline-rate: '" + *v + "' is not a number in [0,1]");
         }
         opts.decline_rate = rate;
       }},
      {"seed", takes::value,
       [&](const std::optional<std::string>& v) { opts.seed = number<uint64_t>("--seed", *v); }},
      {"tls-cert", takes::value, [&](const std::optional<std::string>& v) { opts.tls_cert = *v; }},
      {"tls-key", takes::value, [&](const std::optional<std::string>& v) { opts.tls_key = *v; }},
  };
  cli::syntax syntax;
  syntax.empty_is_missing = false;
  syntax.help_aliases = {"-h"};
  syntax.wording = wording;
  cli::parse(args, flags, syntax);
  if (help) {
    return std::nullopt;
  }
  if (!have_gateways) {
    bad_flag("--gateways is required");
  }
  if (opts.tls_cert.empty() != opts.tls_key.empty()) {
    bad_flag("--tls-cert and --tls-key go together");
  }
  return opts;
}

} // namespace

int main(int argc, char** argv) {
  std::optional<surge::paysim::options> parsed;
  try {
    parsed = parse_options({argv + 1, argv + argc});
  } catch (const cli::usage_error& e) {
    std::cerr << "surge-paysim: " << e.what() << "\n(try --help)\n";
    return 2;
  }
  if (!parsed) {
    std::cout << usage;
    return 0;
  }
  const auto& opts = *parsed;

  // Block the stop signals in every thread (the servers' threads inherit the mask); this thread
  // takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  surge::paysim::simulator sim{opts};
  if (const std::string err = sim.start(); !err.empty()) {
    std::cerr << err << std::endl;
    return 1;
  }
  for (const auto& g : sim.endpoints()) {
    std::cout << "paysim: " << g.name << " listening on " << g.host << ":" << g.port
              << (g.plain_port != 0 ? " (https)" : "") << std::endl;
    if (g.plain_port != 0) {
      std::cout << "paysim: " << g.name << " plain on 127.0.0.1:" << g.plain_port << std::endl;
    }
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "paysim: stopping (signal " << sig << ")" << std::endl;
  sim.stop();
  return 0;
}
