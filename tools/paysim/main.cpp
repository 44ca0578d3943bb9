// surge-paysim: simulated payment gateways for local runs, tests and chaos drills.
// See tools/README.md for the wire styles, tokens and control endpoints.

#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "simulator.hpp"

namespace {

constexpr std::string_view usage =
    R"(usage: surge-paysim --gateways=NAME=HOST:PORT[,NAME=HOST:PORT...] [options]

Serves one simulated payment gateway per address (port 0: any free port), each speaking the
form style (POST/GET /v1/charges, POST /v1/refunds) and the JSON style (POST /payments,
GET /payments/{ref}, POST /refunds). Charges and refunds are idempotent by key per gateway.

  --gateways=LIST      ordered list; the first is "the first gateway" for tok_down_first
  --latency-ms=N       added to every charge, lookup and refund answer (default 0)
  --slow-ms=N          tok_slow answers this much later (default 3000); so do new refunds
                       of a tok_slow charge (not their replays)
  --decline-rate=F     probability in [0,1] that tok_ok is declined (default 0)
  --seed=N             seed for --decline-rate (default 1)
  --help               this text

Tokens: tok_ok, tok_decline, tok_slow, tok_down_first; any other token is declined.
Control: POST /_outage {"down":true|false} (while down, charges, lookups and refunds answer
503), GET /_charges and GET /_refunds (the logs of all gateways), GET /healthz.
Stops on SIGINT/SIGTERM.
)";

[[noreturn]] void bad_flag(const std::string& msg) {
  std::cerr << "surge-paysim: " << msg << "\n(try --help)\n";
  std::exit(2);
}

template <class T>
T number(std::string_view flag, std::string_view text) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
    bad_flag(std::string{flag} + ": '" + std::string{text} + "' is not a valid number");
  }
  return v;
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

} // namespace

int main(int argc, char** argv) {
  surge::paysim::options opts;
  bool have_gateways = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::size_t eq = arg.find('=');
    const std::string_view flag = arg.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (eq == std::string_view::npos) {
      bad_flag("unknown or incomplete flag '" + std::string{arg} + "' (flags are --name=value)");
    }
    if (flag == "--gateways") {
      opts.gateways = parse_gateways(value);
      have_gateways = true;
    } else if (flag == "--latency-ms") {
      opts.latency = std::chrono::milliseconds{number<unsigned>(flag, value)};
    } else if (flag == "--slow-ms") {
      opts.slow = std::chrono::milliseconds{number<unsigned>(flag, value)};
    } else if (flag == "--decline-rate") {
      const double rate = std::strtod(std::string{value}.c_str(), nullptr);
      if (value.empty() || value.find_first_not_of("0123456789.") != std::string_view::npos ||
          rate < 0.0 || rate > 1.0) {
        bad_flag("--decline-rate: '" + std::string{value} + "' is not a number in [0,1]");
      }
      opts.decline_rate = rate;
    } else if (flag == "--seed") {
      opts.seed = number<uint64_t>(flag, value);
    } else {
      bad_flag("unknown flag '" + std::string{flag} + "'");
    }
  }
  if (!have_gateways) {
    bad_flag("--gateways is required");
  }

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
    std::cout << "paysim: " << g.name << " listening on " << g.host << ":" << g.port << std::endl;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "paysim: stopping (signal " << sig << ")" << std::endl;
  sim.stop();
  return 0;
}
