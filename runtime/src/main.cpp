// surge-node: one Surge cluster member. See `surge-node --help`.
#include <csignal>
#include <cstdio>
#include <pthread.h>

#include "surge/config/log.hpp"
#include "surge/config/settings.hpp"
#include "surge/runtime/node.hpp"

int main(int argc, char** argv) {
  // Every thread inherits this mask; the main thread alone waits for the signals below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  auto loaded = surge::config::load(args, surge::config::process_environment());
  if (auto* err = std::get_if<surge::config::load_error>(&loaded)) {
    std::fprintf(stderr, "surge-node: %s\n(see surge-node --help)\n", err->message.c_str());
    return 2;
  }
  auto& inv = std::get<surge::config::invocation>(loaded);
  if (inv.help) {
    std::fputs(surge::config::help_text("surge-node").c_str(), stdout);
    return 0;
  }
  if (inv.version) {
    std::puts("surge-node " SURGE_VERSION);
    return 0;
  }
  const auto& opts = inv.options;
  if (auto err = surge::runtime::check_settings(opts); !err.empty()) {
    std::fprintf(stderr, "surge-node: %s\n(see surge-node --help)\n", err.c_str());
    return 2;
  }
  surge::log::setup(opts.log_level, opts.log_format);
  auto lg = surge::log::get("node");

  if (auto err = surge::runtime::migrate_with_retry(opts); !err.empty()) {
    lg->critical("{}", err);
    return 1;
  }
  if (inv.migrate_only) {
    lg->info("schema migrations applied");
    return 0;
  }

  surge::runtime::node n{opts};
  if (auto err = n.start(); !err.empty()) {
    lg->critical("start-up failed: {}", err);
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  lg->info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  n.stop();
  return 0;
}
