// surge-paysim: simulated payment gateways for local runs, tests and chaos drills.
// See tools/README.md for the wire styles, tokens and control endpoints.

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "simulator.hpp"
#include "surge/net/payments/gateway.hpp"
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
  --capture-delay-ms=N every capture's answer (both styles, replays too; not voids) comes
                       this much later (default 0, at most 60000); PUT /_faults changes it
  --seed=N             seed for --decline-rate (default 1)
  --tls-cert=FILE      serve every gateway over TLS (https) with this PEM certificate chain;
  --tls-key=FILE       and this PEM private key (both or neither). Each gateway's plain HTTP
                       server then listens on a free port of 127.0.0.1, printed as "plain on"
  --webhook-to=NAME=URL[,NAME=URL...]
                       gateway NAME posts signed events to URL (http(s)://host:port/path): new
                       approved or declined charges, 3-D Secure completed or failed, captures,
                       voids, refunds; retried up to 5 times; log in GET /_webhooks
  --webhook-secrets=NAME=SECRET[,NAME=SECRET...]
                       each --webhook-to gateway's secret: form-style events are signed with it
                       (Stripe-Signature), json-style ones with it hex-decoded (hmacSignature)
  --help               this text

Tokens: tok_ok, tok_decline, tok_slow, tok_down_first, tok_3ds (3-D Secure: requires_action,
the shopper completes or fails it at GET /3ds/{id}); any other token is declined.
Control: POST /_outage {"down":true|false} (while down, charges, lookups and refunds answer
503), GET /_charges and GET /_refunds (the logs of all gateways), GET|PUT /_faults
{"capture_delay_ms":N} (every gateway), GET /healthz.
3-D Secure (tok_3ds): GET /3ds/{id} (the shopper's page), POST /3ds/{id}/complete|fail.
GET /_webhooks: the webhook deliveries (--webhook-to).
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

/// The NAME=VALUE[,NAME=VALUE...] pairs of `flag` in order. A usage error for an item without a
/// name or a value, or a name given twice; `secret`: the item is never echoed.
std::vector<std::pair<std::string, std::string>> name_values(const std::string& flag,
                                                             std::string_view list, bool secret) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int n = 1; !list.empty(); ++n) {
    const std::size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size()) {
      bad_flag(flag + ": " +
               (secret ? "item " + std::to_string(n) : "'" + std::string{item} + "'") +
               " is not NAME=VALUE");
    }
    std::string name{item.substr(0, eq)};
    for (const auto& [other, unused] : out) {
      if (other == name) {
        bad_flag(flag + ": the name '" + name + "' appears twice");
      }
    }
    out.emplace_back(std::move(name), std::string{item.substr(eq + 1)});
  }
  return out;
}

/// opts.webhooks from --webhook-to (`to`) and --webhook-secrets (`secrets`): every name a
/// gateway, every URL valid, a secret for every URL and a URL for every secret. Throws
/// cli::usage_error.
void set_webhooks(surge::paysim::options& opts, std::string_view to, std::string_view secrets) {
  const auto urls = name_values("--webhook-to", to, false);
  const auto keys = name_values("--webhook-secrets", secrets, true);
  const auto known = [&](const std::string& flag, const std::string& name) {
    for (const auto& g : opts.gateways) {
      if (g.name == name) {
        return;
      }
    }
    bad_flag(flag + ": '" + name + "' is not a gateway of --gateways");
  };
  for (const auto& [name, url] : urls) {
    known("--webhook-to", name);
    const auto parsed = surge::net::payments::parse_http_url(url, true);
    if (const auto* err = std::get_if<std::string>(&parsed)) {
      bad_flag("--webhook-to: '" + name + "': " + *err);
    }
    const auto secret =
        std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.first == name; });
    if (secret == keys.end()) {
      bad_flag("--webhook-secrets: no secret for '" + name + "'");
    }
    opts.webhooks.push_back({name, url, secret->second});
  }
  for (const auto& [name, unused] : keys) {
    known("--webhook-secrets", name);
    if (std::none_of(urls.begin(), urls.end(), [&](const auto& u) { return u.first == name; })) {
      bad_flag("--webhook-secrets: '" + name + "' has no --webhook-to");
    }
  }
}

/// The options of `args`; nullopt: --help was asked for. Throws cli::usage_error.
std::optional<surge::paysim::options> parse_options(const std::vector<std::string>& args) {
  using cli::takes;
  surge::paysim::options opts;
  bool help = false;
  bool have_gateways = false;
  std::string webhook_to;
  std::string webhook_secrets;
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
      {"capture-delay-ms", takes::value,
       [&](const std::optional<std::string>& v) {
         opts.capture_delay = std::chrono::milliseconds{number<unsigned>("--capture-delay-ms", *v)};
         if (opts.capture_delay > surge::paysim::max_capture_delay) {
           bad_flag("--capture-delay-ms: at most " +
                    std::to_string(surge::paysim::max_capture_delay.count()));
         }
       }},
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
      {"webhook-to", takes::value, [&](const std::optional<std::string>& v) { webhook_to = *v; }},
      {"webhook-secrets", takes::value,
       [&](const std::optional<std::string>& v) { webhook_secrets = *v; }},
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
  set_webhooks(opts, webhook_to, webhook_secrets);
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
