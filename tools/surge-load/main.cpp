// surge-load: the shopper-journey load generator (see tools/README.md).
//
//   surge-load [--scenario=browse|hot-item|checkout|mix] [--users=N | --rate=R] [FLAGS]
//
// Exit status: 0 ok, 1 the cross-check failed (or could not run), 2 usage error, 3 no request
// got an answer.

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>

#include "check.hpp"
#include "drop.hpp"
#include "engine.hpp"
#include "options.hpp"
#include "report.hpp"
#include "surge/net/customer_auth.hpp"

namespace surge::load {

namespace {

/// Descriptors kept for everything but the pool (stdio, admin client, gnuplot, epoll, ...).
constexpr uint64_t fd_reserve = 64;

/// Raises the soft RLIMIT_NOFILE to the hard one; returns (soft, hard) after.
std::pair<uint64_t, uint64_t> raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return {1024, 1024};
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) {
      rl = want;
    }
  }
  const auto cap = [](rlim_t v) {
    return v == RLIM_INFINITY ? uint64_t{1} << 20 : static_cast<uint64_t>(v);
  };
  return {cap(rl.rlim_cur), cap(rl.rlim_max)};
}

/// The HS256 secret shoppers sign their customer tokens with: --customer-secret-file, else
/// $SURGE_AUTH_JWT_SECRET, else ./data/jwt.secret (what scripts/run.sh gives its nodes), else ""
/// (the nodes do not verify customers). Throws usage_error when the named file is unusable.
std::string customer_secret(const options& o) {
  auto read = [](const std::string& path) {
    std::ifstream f{path};
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
      s.pop_back();
    }
    return f || f.eof() ? s : std::string{};
  };
  std::string secret;
  std::string from;
  if (!o.customer_secret_file.empty()) {
    secret = read(o.customer_secret_file);
    from = o.customer_secret_file;
    if (secret.empty()) {
      throw usage_error("--customer-secret-file=" + o.customer_secret_file +
                        ": cannot read a secret from it");
    }
  } else if (const char* env = std::getenv("SURGE_AUTH_JWT_SECRET"); env != nullptr && *env) {
    secret = env;
    from = "SURGE_AUTH_JWT_SECRET";
  } else if (std::ifstream probe{"data/jwt.secret"}; probe) {
    secret = read("data/jwt.secret");
    from = "./data/jwt.secret";
  }
  if (secret.empty()) {
    return {};
  }
  net::token_claims check;
  check.subject = "surge-load";
  if (auto t = net::mint_hs256_token(secret, check, std::chrono::system_clock::now());
      auto* err = std::get_if<net::auth_error>(&t)) {
    throw usage_error("the customer-token secret from " + from + ": " + err->message);
  }
  std::cerr << "surge-load: shoppers carry customer tokens signed with the secret from " << from
            << "\n";
  return secret;
}

std::string new_run_id() {
  std::random_device rd;
  const uint64_t x =
      (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
      static_cast<uint64_t>(::getpid());
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(x & 0xffffffffULL));
  return buf;
}

/// --scenario=drop: one drop, or the capacity steps until one misses.
int run_drops(const options& o, const run_facts& facts, const run_setup& setup) {
  std::vector<drop_result> runs;
  if (o.capacity.empty()) {
    runs.push_back(run_drop(o, setup, *o.users, "1"));
    print_drop(std::cout, o, runs.back());
  } else {
    for (std::size_t k = 0; k < o.capacity.size(); ++k) {
      runs.push_back(run_drop(o, setup, o.capacity[k], "c" + std::to_string(k + 1)));
      print_drop(std::cout, o, runs.back());
      std::cout << "\n";
      if (!capacity_step_passed(o, runs.back())) {
        break;
      }
    }
    print_capacity(std::cout, o, runs);
  }
  std::cout.flush();
  int code = exit_ok;
  for (const auto& r : runs) {
    if (!r.passed) {
      code = exit_check_failed;
    }
  }
  const auto& first = runs.front();
  if (first.error.empty() && first.joined == 0 && first.statuses.count("200") == 0 &&
      first.statuses.count("201") == 0) {
    std::cerr << "surge-load: no shopper got a ticket from " << o.targets.front().url()
              << ": is surge-node running there? (--target=URL)\n";
    code = exit_unreachable;
  }
  if (!o.json_path.empty()) {
    std::ofstream f{o.json_path};
    f << drop_json_report(o, facts, runs);
    if (!f) {
      std::cerr << "surge-load: cannot write " << o.json_path << "\n";
      code = code == exit_ok ? exit_check_failed : code;
    }
  }
  if (!o.plot_prefix.empty()) {
    for (const auto& r : runs) {
      try {
        const auto prefix =
            runs.size() == 1 ? o.plot_prefix : o.plot_prefix + "-" + std::to_string(r.users);
        for (const auto& line : write_drop_plot(prefix, r)) {
          std::cerr << "surge-load: " << line << "\n";
        }
      } catch (const std::exception& e) {
        std::cerr << "surge-load: " << e.what() << "\n";
      }
    }
  }
  return code;
}

int run(const std::vector<std::string>& args) {
  const auto o = parse_options(args);
  if (o.help) {
    std::cout << usage_text;
    return exit_ok;
  }

  run_facts facts;
  const auto [soft, hard] = raise_fd_limit();
  facts.fd_soft = soft;
  facts.fd_hard = hard;
  facts.run_id = new_run_id();
  const uint64_t room = soft > fd_reserve ? soft - fd_reserve : 1;
  facts.connections = static_cast<uint32_t>(std::min<uint64_t>(o.connections, room));
  std::cerr << "surge-load: file descriptors: soft limit " << soft << " (raised to the hard "
            << "limit " << hard << "); " << facts.connections << " connections";
  if (facts.connections < o.connections) {
    std::cerr << " (--connections=" << o.connections << " is more than the limit allows)";
  }
  if (o.source_addrs > 0) {
    std::cerr << " from 127.0.0.1-127.0.0." << o.source_addrs;
  }
  std::cerr << "; run " << facts.run_id << "\n";

  run_setup setup;
  setup.skus = catalog_skus(o);
  setup.connections = facts.connections;
  setup.run_id = facts.run_id;
  setup.customer_secret = customer_secret(o);
  if (o.drop) {
    return run_drops(o, facts, setup);
  }
  const auto r = run_load(o, setup);

  const auto c = cross_check(o, r);
  print_report(std::cout, o, facts, r, c);
  std::cout.flush();

  int code = exit_ok;
  if (r.sent > 0 && r.answered == 0) {
    std::cerr << "surge-load: no request got an answer from " << o.targets.front().url()
              << (o.targets.size() > 1 ? " (and the other targets)" : "")
              << ": is surge-node running there? (--target=URL)\n";
    code = exit_unreachable;
  } else if (c.performed && !c.passed) {
    code = exit_check_failed;
  }
  if (!o.json_path.empty()) {
    std::ofstream f{o.json_path};
    f << json_report(o, facts, r, c);
    if (!f) {
      std::cerr << "surge-load: cannot write " << o.json_path << "\n";
      code = code == exit_ok ? exit_check_failed : code;
    }
  }
  if (!o.plot_prefix.empty()) {
    try {
      for (const auto& line : write_plot(o.plot_prefix, r)) {
        std::cerr << "surge-load: " << line << "\n";
      }
    } catch (const std::exception& e) {
      std::cerr << "surge-load: " << e.what() << "\n";
    }
  }
  return code;
}

} // namespace

} // namespace surge::load

int main(int argc, char** argv) {
  using namespace surge::load;
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run({argv + 1, argv + argc});
  } catch (const usage_error& e) {
    std::cerr << "surge-load: " << e.what() << "\n\n" << usage_text;
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "surge-load: " << e.what() << "\n";
    return exit_check_failed;
  }
}
