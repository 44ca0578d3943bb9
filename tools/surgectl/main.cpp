// surgectl: the operator's CLI over the admin API (shared/API.md) and the order event stream.
//
//   surgectl [--admin=URL] [--token=T] [--json] COMMAND ...
//
// Exit status: 0 ok, 1 the server answered an error, 2 usage error, 3 cannot connect.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <vector>

#include "surge/net/json.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace json = surge::net::json;

namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true);
}

constexpr auto request_timeout = 10s;

constexpr const char* usage_text =
    R"(usage: surgectl [--admin=URL] [--token=T] [--json] COMMAND [ARGS]

the operator's CLI over a surge-node's admin API (and the order event stream)

commands:
  status                 the cluster's nodes: id, address, status, shards, actors
  nodes                  the same list of nodes
  stock get SKU          the SKU's stock: on_hand, held, sold, available, owner, epoch
  stock set SKU N        set on_hand to N (>= 0)
  stock add SKU N        add N (may be negative) to on_hand
  orders tail [--redis=URL] [--stream=KEY] [--from=0|$|ID] [--count=N] [--timeout=S]
                         follow the order events the outbox relay writes to Redis, one line
                         per order (de-duplicated by order id): order_id, status, total, lines.
                         --from=0 reads the stream from its start, $ (default) only new ones;
                         stops after --count distinct orders or --timeout seconds without a
                         new one (default: follow until Ctrl-C)

global flags:
  --admin=URL            admin API, http://host[:port] (default http://127.0.0.1:9090)
  --token=T              bearer token (default: $SURGE_ADMIN_TOKEN)
  --json                 print the server's JSON (orders tail: one payload per line)
  --help                 this text

orders tail flags:
  --redis=URL            redis://[:password@]host[:port][/db] (default redis://127.0.0.1:6379/0)
  --stream=KEY           the stream key, i.e. the node's redis.prefix + "orders"
                         (default surge:orders)

exit status: 0 ok, 1 the server answered an error, 2 usage error, 3 cannot connect
)";

struct invocation {
  std::string admin = "http://127.0.0.1:9090";
  std::optional<std::string> token;
  bool json = false;
  bool help = false;
  std::vector<std::string> words; ///< the command and its arguments
  std::map<std::string, std::string> tail_flags;
};

cli_error usage(const std::string& message) {
  return cli_error(exit_usage, message);
}

invocation parse_args(const std::vector<std::string>& args) {
  invocation inv;
  bool options_done = false;
  for (const auto& a : args) {
    if (options_done || a.size() < 2 || a.rfind("--", 0) != 0) {
      inv.words.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const bool has_value = eq != std::string::npos;
    const std::string value = has_value ? a.substr(eq + 1) : std::string{};
    if (name == "help") {
      inv.help = true;
    } else if (name == "json") {
      if (has_value) {
        throw usage("--json takes no value");
      }
      inv.json = true;
    } else if (name == "admin" || name == "token" || name == "redis" || name == "stream" ||
               name == "from" || name == "count" || name == "timeout") {
      if (!has_value || value.empty()) {
        throw usage("--" + name + " needs a value: --" + name + "=VALUE");
      }
      if (name == "admin") {
        inv.admin = value;
      } else if (name == "token") {
        inv.token = value;
      } else {
        inv.tail_flags[name] = value;
      }
    } else {
      throw usage("unknown flag --" + name);
    }
  }
  return inv;
}

int64_t parse_int64(const std::string& what, const std::string& s) {
  int64_t x = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') {
    ++b;
  }
  auto [end, ec] = std::from_chars(b, e, x);
  if (b == e || ec != std::errc{} || end != e) {
    throw usage(what + " must be an integer, got '" + s + "'");
  }
  return x;
}

void expect_words(const invocation& inv, std::size_t n, const std::string& form) {
  if (inv.words.size() != n) {
    throw usage((inv.words.size() < n ? "missing arguments" : "too many arguments") +
                std::string{": surgectl "} + form);
  }
}

/// The answer as the command's result: 2xx is returned parsed; anything else is exit 1 with
/// the server's {"error":{code,message}} printed.
json::value checked(const http_answer& a, bool raw_json) {
  auto parsed = json::parse(a.body);
  const auto* v = std::get_if<json::value>(&parsed);
  if (a.status >= 200 && a.status < 300) {
    if (v == nullptr) {
      throw cli_error(exit_server_error,
                      "the server answered " + std::to_string(a.status) + " with a body that is " +
                          "not JSON: " + std::get<json::parse_error>(parsed).message);
    }
    return *v;
  }
  if (raw_json) {
    std::cout << a.body << (a.body.empty() || a.body.back() != '\n' ? "\n" : "");
  }
  std::string code;
  std::string message;
  if (v != nullptr) {
    if (const auto* err = v->find("error"); err != nullptr && err->is_object()) {
      if (const auto* c = err->find("code"); c != nullptr && c->is_string()) {
        code = std::get<std::string>(c->get());
      }
      if (const auto* m = err->find("message"); m != nullptr && m->is_string()) {
        message = std::get<std::string>(m->get());
      }
    }
  }
  if (code.empty()) {
    throw cli_error(exit_server_error,
                    "the server answered " + std::to_string(a.status) + ": " + a.body);
  }
  throw cli_error(exit_server_error,
                  "error " + std::to_string(a.status) + " " + code + ": " + message);
}

std::string text_of(const json::value& obj, const char* key) {
  const auto* m = obj.find(key);
  if (m == nullptr) {
    return "-";
  }
  if (m->is_string()) {
    return std::get<std::string>(m->get());
  }
  if (m->is_int()) {
    return std::to_string(std::get<int64_t>(m->get()));
  }
  return json::serialize(*m);
}

void print_raw(const http_answer& a) {
  std::cout << a.body << (a.body.empty() || a.body.back() != '\n' ? "\n" : "");
}

int cmd_nodes(const invocation& inv, const endpoint& ep, const std::string& token,
              bool with_summary) {
  const auto a = admin_call(ep, token, "GET", "/admin/v1/cluster", "", request_timeout);
  const auto v = checked(a, inv.json);
  if (inv.json) {
    print_raw(a);
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows = {{"NODE", "ADDRESS", "STATUS", "SHARDS", "ACTORS"}};
  const auto* nodes = v.find("nodes");
  if (nodes != nullptr && nodes->is_array()) {
    for (const auto& n : std::get<json::array>(nodes->get())) {
      rows.push_back({text_of(n, "node_id"), text_of(n, "address"), text_of(n, "status"),
                      text_of(n, "shards"), text_of(n, "actors")});
    }
  }
  print_table(rows, {false, false, false, true, true});
  if (with_summary) {
    std::cout << "\n" << rows.size() - 1 << " node(s), " << text_of(v, "shards") << " shards\n";
  }
  return exit_ok;
}

int cmd_stock(const invocation& inv, const endpoint& ep, const std::string& token) {
  if (inv.words.size() < 2) {
    throw usage("missing arguments: surgectl stock get|set|add SKU [N]");
  }
  const auto& sub = inv.words[1];
  std::string method = "GET";
  std::string body;
  if (sub == "get") {
    expect_words(inv, 3, "stock get SKU");
  } else if (sub == "set" || sub == "add") {
    expect_words(inv, 4, "stock " + sub + " SKU N");
    const auto n = parse_int64("N", inv.words[3]);
    if (sub == "set" && n < 0) {
      throw usage("stock set: N must be >= 0, got " + inv.words[3]);
    }
    method = "POST";
    body = "{\"" + sub + "\":" + std::to_string(n) + "}";
  } else {
    throw usage("unknown stock command '" + sub + "' (get, set, add)");
  }
  const auto& sku = inv.words[2];
  if (sku.empty()) {
    throw usage("SKU must not be empty");
  }
  const auto a = admin_call(ep, token, method, "/admin/v1/products/" + path_segment(sku) + "/stock",
                            body, request_timeout);
  const auto v = checked(a, inv.json);
  if (inv.json) {
    print_raw(a);
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows = {
      {"SKU", "ON_HAND", "HELD", "SOLD", "AVAILABLE", "OWNER", "EPOCH"},
      {text_of(v, "sku"), text_of(v, "on_hand"), text_of(v, "held"), text_of(v, "sold"),
       text_of(v, "available"), text_of(v, "owner_node"), text_of(v, "epoch")}};
  print_table(rows, {false, true, true, true, true, false, true});
  return exit_ok;
}

std::chrono::milliseconds parse_seconds(const std::string& s) {
  // Whole or fractional seconds, optionally with an "s" suffix.
  std::string t = s;
  if (!t.empty() && t.back() == 's') {
    t.pop_back();
  }
  char* end = nullptr;
  const double x = t.empty() ? -1 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !(x >= 0) || x > 86400.0 * 365) {
    throw usage("--timeout expects seconds (e.g. 5 or 2.5), got '" + s + "'");
  }
  return std::chrono::milliseconds{static_cast<int64_t>(x * 1000 + 0.5)};
}

int cmd_orders(const invocation& inv) {
  if (inv.words.size() < 2 || inv.words[1] != "tail") {
    throw usage(inv.words.size() < 2 ? "missing arguments: surgectl orders tail [flags]"
                                     : "unknown orders command '" + inv.words[1] + "' (tail)");
  }
  expect_words(inv, 2, "orders tail [flags]");
  tail_options o;
  o.json = inv.json;
  for (const auto& [name, value] : inv.tail_flags) {
    if (name == "redis") {
      o.redis_url = value;
    } else if (name == "stream") {
      o.stream = value;
    } else if (name == "from") {
      o.from = value;
    } else if (name == "count") {
      const auto n = parse_int64("--count", value);
      if (n < 1) {
        throw usage("--count must be >= 1, got " + value);
      }
      o.count = static_cast<uint64_t>(n);
    } else {
      o.timeout = parse_seconds(value);
    }
  }
  return orders_tail(o);
}

int run(const std::vector<std::string>& args) {
  const auto inv = parse_args(args);
  if (inv.help) {
    std::cout << usage_text;
    return exit_ok;
  }
  if (inv.words.empty()) {
    throw usage("missing command");
  }
  const auto& cmd = inv.words[0];
  const bool is_tail = cmd == "orders";
  if (!is_tail && !inv.tail_flags.empty()) {
    throw usage("--" + inv.tail_flags.begin()->first + " is a flag of 'orders tail' only");
  }
  if (cmd == "help") {
    std::cout << usage_text;
    return exit_ok;
  }
  if (is_tail) {
    return cmd_orders(inv);
  }
  if (cmd != "status" && cmd != "nodes" && cmd != "stock") {
    throw usage("unknown command '" + cmd + "'");
  }
  const auto ep = parse_admin_url(inv.admin);
  std::string token;
  if (inv.token) {
    token = *inv.token;
  } else if (const char* env = std::getenv("SURGE_ADMIN_TOKEN"); env != nullptr) {
    token = env;
  }
  if (cmd == "status" || cmd == "nodes") {
    expect_words(inv, 1, cmd);
    return cmd_nodes(inv, ep, token, cmd == "status");
  }
  return cmd_stock(inv, ep, token);
}

} // namespace

bool interrupted() {
  return g_interrupted.load();
}

void print_table(const std::vector<std::vector<std::string>>& rows,
                 const std::vector<bool>& right) {
  std::vector<std::size_t> w;
  for (const auto& row : rows) {
    w.resize(std::max(w.size(), row.size()), 0);
    for (std::size_t i = 0; i < row.size(); ++i) {
      w[i] = std::max(w[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const auto fill = std::string(w[i] - row[i].size(), ' ');
      const bool r = i < right.size() && right[i];
      line += r ? fill + row[i] : row[i] + (i + 1 < row.size() ? fill : "");
      if (i + 1 < row.size()) {
        line += "  ";
      }
    }
    std::cout << line << "\n";
  }
}

std::string money(int64_t cents, const std::string& currency) {
  const bool neg = cents < 0;
  const uint64_t a = neg ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%llu.%02llu", neg ? "-" : "",
                static_cast<unsigned long long>(a / 100), static_cast<unsigned long long>(a % 100));
  return currency.empty() ? std::string{buf} : std::string{buf} + " " + currency;
}

} // namespace surge::ctl

int main(int argc, char** argv) {
  using namespace surge::ctl;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run({argv + 1, argv + argc});
  } catch (const cli_error& e) {
    std::cerr << "surgectl: " << e.what() << "\n";
    if (e.code == exit_usage) {
      std::cerr << "\n" << usage_text;
    }
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "surgectl: " << e.what() << "\n";
    return exit_server_error;
  }
}
