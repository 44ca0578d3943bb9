// surge-webhook-sink: the receiving end of Surge's outgoing webhooks, for tests. It plays a
// shop's endpoint that checks signatures and can fail, hang or answer slowly on demand.
// See tools/README.md for the wire contract and the control API.

#include <pthread.h>
#include <signal.h>

#include <boost/asio/ip/address.hpp>

#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sink.hpp"
#include "surge/tools/cli.hpp"

namespace {

constexpr std::string_view usage =
    R"(usage: surge-webhook-sink --listen=HOST:PORT [options]

Receives Surge's outgoing webhooks (POST on any path) on HOST:PORT (port 0: any free port;
HOST an IP address, [::1] for IPv6) and prints "listening HOST:PORT" with the bound port.

  --listen=HOST:PORT   required
  --secret=S           check Surge-Signature (t=<unix s>,v1=<hex HMAC-SHA256(S, "<t>.<body>")>,
                       any v1 may match): a missing, malformed, wrong or stale one is answered
                       400 {"error":"bad signature"} and not recorded (default: not checked)
  --tolerance-s=N      how far t may be from now, in seconds (default 300)
  --mode=MODE          how webhooks are answered at first (default ok):
                         ok       200 {"received":true}, recorded
                         fail     500 {"error":"failing on demand"}
                         slow     as ok, after --delay-ms
                         timeout  no answer; the connection is closed after --delay-ms
                         down     the connection is closed at once, no answer
  --delay-ms=N         the delay of slow and timeout (default 2000, at most 3600000)
  --help               this text

Control (never affected by the mode): GET /_events (the recorded deliveries, in order),
DELETE /_events (clears them, 204), GET /_stats (webhooks by outcome),
PUT /_mode {"mode":"fail","delay_ms":5000} (delay_ms optional).
Stops on SIGINT/SIGTERM.
)";

namespace cli = surge::tools::cli;
namespace sink = surge::webhook_sink;

[[noreturn]] void bad_flag(const std::string& msg) {
  throw cli::usage_error(msg);
}

/// `text` as an integer from 0 to `max`. Throws cli::usage_error naming `flag`.
int64_t number(std::string_view flag, std::string_view text, int64_t max) {
  const auto v = cli::to_integer<int64_t>(text);
  if (!v || *v < 0 || *v > max) {
    bad_flag("--" + std::string{flag} + ": '" + std::string{text} + "' is not a number from 0 to " +
             std::to_string(max));
  }
  return *v;
}

/// The options of `args` and the host as written in --listen (for the start line); nullopt:
/// --help was asked for. Throws cli::usage_error.
std::optional<std::pair<sink::options, std::string>>
parse_options(const std::vector<std::string>& args) {
  using cli::takes;
  sink::options opts;
  std::string shown_host;
  bool help = false;
  bool have_listen = false;
  const std::vector<cli::flag> flags = {
      {"help", takes::nothing, cli::enable(help), true},
      {"listen", takes::value,
       [&](const std::optional<std::string>& v) {
         const std::size_t colon = v->rfind(':');
         if (colon == std::string::npos || colon == 0) {
           bad_flag("--listen: '" + *v + "' is not HOST:PORT");
         }
         shown_host = v->substr(0, colon);
         std::string host = shown_host;
         if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
           host = host.substr(1, host.size() - 2);
         }
         boost::system::error_code ec;
         boost::asio::ip::make_address(host, ec);
         if (ec) {
           bad_flag("--listen: '" + shown_host + "' is not an IP address");
         }
         opts.host = host;
         opts.port = static_cast<uint16_t>(
             number("listen port", std::string_view{*v}.substr(colon + 1), 65535));
         have_listen = true;
       }},
      {"secret", takes::value, cli::assign(opts.secret)},
      {"tolerance-s", takes::value,
       [&](const std::optional<std::string>& v) {
         opts.tolerance = std::chrono::seconds{number("tolerance-s", *v, 1'000'000'000)};
       }},
      {"mode", takes::value,
       [&](const std::optional<std::string>& v) {
         const auto m = sink::mode_named(*v);
         if (!m) {
           bad_flag("--mode: '" + *v + "' is not one of ok, fail, timeout, slow, down");
         }
         opts.initial = *m;
       }},
      {"delay-ms", takes::value,
       [&](const std::optional<std::string>& v) {
         opts.delay = std::chrono::milliseconds{
             number("delay-ms", *v, static_cast<int64_t>(sink::max_delay.count()))};
       }},
  };
  cli::syntax syntax;
  syntax.unique = true;
  syntax.help_aliases = {"-h"};
  cli::parse(args, flags, syntax);
  if (help) {
    return std::nullopt;
  }
  if (!have_listen) {
    bad_flag("--listen is required");
  }
  return std::pair{std::move(opts), std::move(shown_host)};
}

} // namespace

int main(int argc, char** argv) {
  std::optional<std::pair<sink::options, std::string>> parsed;
  try {
    parsed = parse_options({argv + 1, argv + argc});
  } catch (const cli::usage_error& e) {
    std::cerr << "surge-webhook-sink: " << e.what() << "\n(try --help)\n";
    return 2;
  }
  if (!parsed) {
    std::cout << usage;
    return 0;
  }
  const auto& [opts, shown_host] = *parsed;

  // Block the stop signals in every thread (the I/O thread inherits the mask); this thread
  // takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  sink::sink s{opts};
  if (const std::error_code ec = s.start()) {
    std::cerr << "surge-webhook-sink: cannot listen on " << shown_host << ":" << opts.port << ": "
              << ec.message() << std::endl;
    return 1;
  }
  std::cout << "listening " << shown_host << ":" << s.port() << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "webhook-sink: stopping (signal " << sig << ")" << std::endl;
  s.stop();
  return 0;
}
