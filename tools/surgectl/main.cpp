// surgectl: the operator's CLI over the admin API (shared/API.md) and the order event stream.
//
//   surgectl [--admin=URL] [--token=T] [--json] COMMAND ...
//
// Exit status: 0 ok, 1 the server answered an error (or drain --wait timed out), 2 usage error,
// 3 cannot connect.

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "surge/config/settings.hpp"
#include "surge/net/json_writer.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

cli::syntax command_line() {
  cli::syntax s;
  s.words = true;
  s.double_dash_ends_flags = true;
  return s;
}

own_flags parse_own_flags(const std::vector<std::string>& args, const std::string& command,
                          std::initializer_list<const char*> names) {
  own_flags out;
  std::vector<cli::flag> table = {{"help", cli::takes::optional, cli::enable(out.help), true}};
  for (const char* name : names) {
    table.push_back({name, cli::takes::value,
                     [&out, name](const std::optional<std::string>& v) { out.values[name] = *v; }});
  }
  auto syntax = command_line();
  syntax.unique = true;
  syntax.wording = [command](cli::problem p, const cli::argument& a) {
    return p == cli::problem::unknown_flag ? a.text + " is not a flag of '" + command + "'"
                                           : cli::message(p, a);
  };
  out.words = cli::parse(args, table, syntax).words;
  return out;
}

namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true);
}

constexpr const char* usage_text =
    R"(usage: surgectl [--admin=URL] [--token=T] [--json] COMMAND [ARGS]

the operator's CLI over a surge-node's admin API (and the order event stream); any node's admin
API answers for the whole cluster

commands:
  status                 one screen: this node, members up/draining/down/left, shards
                         assigned/unassigned/moving
  nodes                  one row per member: id, status, shards, actors, heartbeat age, addresses
  shards [--all]         shards per node and the moves under way; --all: every shard with its
                         owner, epoch and move target
  drain NODE [--wait[=TIMEOUT]]
                         ask NODE to hand all its shards to the other members (it keeps running
                         and forwarding); --wait: poll until it owns none (progress on stderr),
                         exit 1 if TIMEOUT (default 300s; e.g. 90, 90s, 5m) runs out first;
                         refused (exit 1, conflict) when no other member would still serve
  undrain NODE           a draining NODE serves again: the cluster gives it shards back
  roll --restart='COMMAND {node}' [--nodes=N1,N2] [--dry-run]
                         rolling upgrade, one node at a time: drain, wait until its shards
                         moved, run COMMAND (stop the old process, start the new binary), wait
                         until it is ready and the shards are balanced, next
                         (surgectl roll --help)
  stock get SKU          the SKU's stock: on_hand, held, sold, available, owner, epoch
  stock set SKU N        set on_hand to N (>= 0)
  stock add SKU N        add N (may be negative) to on_hand
  orders tail [--redis=URL] [--stream=KEY] [--from=0|$|ID] [--count=N] [--timeout=S]
                         follow the order events the outbox relay writes to Redis, one line
                         per order (de-duplicated by order id): order_id, status, total, lines.
                         --from=0 reads the stream from its start, $ (default) only new ones;
                         stops after --count distinct orders or --timeout seconds without a
                         new one (default: follow until Ctrl-C)
  orders refund ORDER --key=K [--line=SKU:QTY ...]
                         refund the order through the gateway that charged it: the given lines,
                         or (no --line) everything not refunded yet; K is the Idempotency-Key
                         (the same K again is the same refund, never a second one)
  sales list             every sale: id, state, window, SKUs, queue settings, name
  sales get SALE_ID      one sale and its waiting room: waiting, admitted, admission rate,
                         sold, sell-through, warm, lottery seed
  sales put SALE_ID --file=sale.json | --name=N --skus=A,B --starts-at=T --ends-at=T
                [--limit=N] [--queue [--admission-rate=R|auto] [--pass-ttl=S]]
                         make or replace a sale (times RFC 3339 or +DURATION from now)
                         (surgectl sales --help)
  sales delete SALE_ID   remove a sale
  catalog generate --count=N [--seed=S] [--categories=K]
                         write N synthetic products as NDJSON (the import's form) on stdout
  catalog queries --count=N [--seed=S] [--categories=K]
                         write N search queries drawn from the generator's vocabulary
  catalog import [--file=-] [--batch=5000] [--concurrency=4]
                         post NDJSON products to POST /admin/v1/products:import in batches,
                         retrying on 503; exit 1 when a line is refused (surgectl catalog --help)
  token --customer=ID [--ttl=1h] [--issuer=ISS] [--audience=AUD] [--secret-file=FILE]
                         print a development customer token (HS256 JWT) signed with the node's
                         auth.jwt_secret: --secret-file, else $SURGE_AUTH_JWT_SECRET, else
                         ./data/jwt.secret; exit 1 when there is none (surgectl token --help)

global flags:
  --admin=URL            admin API, http://host[:port] (default: $SURGECTL_ADMIN, else
                         http://127.0.0.1:9090)
  --token=T              bearer token (default: $SURGE_ADMIN_TOKEN, else the file
                         data/admin.token in the current directory, as scripts/run.sh makes it)
  --json                 print the server's JSON as is (status: {"cluster":...,"shard_map":...}
                         with both answers; orders tail: one payload per line)
  --help                 this text

orders tail flags:
  --redis=URL            redis://[:password@]host[:port][/db] (default redis://127.0.0.1:6379/0)
  --stream=KEY           the stream key, i.e. the node's redis.prefix + "orders"
                         (default surge:orders)

exit status: 0 ok; 1 the server answered an error (unknown node or SKU, refused, unauthorized)
or drain --wait timed out; 2 usage error; 3 cannot connect (or no answer within 10 s)
)";

/// The default drain --wait timeout.
constexpr auto default_drain_wait = std::chrono::seconds{300};

constexpr const char* default_admin = "http://127.0.0.1:9090";

struct invocation {
  std::optional<std::string> admin; ///< --admin
  std::optional<std::string> token;
  bool json = false;
  bool help = false;
  bool all = false;                                    ///< shards --all
  std::optional<std::chrono::milliseconds> drain_wait; ///< drain --wait[=T]
  std::vector<std::string> words;                      ///< the command and its arguments
  std::map<std::string, std::string> tail_flags;
  std::optional<std::string> refund_key; ///< orders refund --key=K
  std::vector<std::string> refund_lines; ///< orders refund --line=SKU:QTY (repeatable)
};

cli_error usage(const std::string& message) {
  return cli_error(exit_usage, message);
}

invocation parse_args(const std::vector<std::string>& args) {
  using cli::takes;
  invocation inv;
  const auto tail_flag = [&inv](const char* name) {
    return cli::flag{name, takes::value, [&inv, name](const std::optional<std::string>& v) {
                       inv.tail_flags[name] = *v;
                     }};
  };
  const std::vector<cli::flag> flags = {
      {"help", takes::optional, cli::enable(inv.help)},
      {"json", takes::nothing, cli::enable(inv.json)},
      {"all", takes::nothing, cli::enable(inv.all)},
      {"wait", takes::optional,
       [&inv](const std::optional<std::string>& v) {
         if (v && v->empty()) {
           throw usage("--wait=TIMEOUT needs a value, e.g. --wait=120s (or --wait for 300s)");
         }
         inv.drain_wait =
             v ? parse_duration("--wait", *v) : std::chrono::milliseconds{default_drain_wait};
       }},
      {"admin", takes::value, cli::assign(inv.admin)},
      {"token", takes::value, cli::assign(inv.token)},
      tail_flag("redis"),
      {"key", takes::value, cli::assign(inv.refund_key)},
      {"line", takes::value,
       [&inv](const std::optional<std::string>& v) { inv.refund_lines.push_back(*v); }},
      tail_flag("stream"),
      tail_flag("from"),
      tail_flag("count"),
      tail_flag("timeout"),
  };
  inv.words = cli::parse(args, flags, command_line()).words;
  return inv;
}

int64_t parse_int64(const std::string& what, const std::string& s) {
  const auto x = cli::to_integer<int64_t>(s.rfind('+', 0) == 0 ? s.substr(1) : s);
  if (!x) {
    throw usage(what + " must be an integer, got '" + s + "'");
  }
  return *x;
}

void expect_words(const invocation& inv, std::size_t n, const std::string& form) {
  if (inv.words.size() != n) {
    throw usage((inv.words.size() < n ? "missing arguments" : "too many arguments") +
                std::string{": surgectl "} + form);
  }
}

int cmd_stock(const invocation& inv, const admin_session& s) {
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
  const auto a = admin_json(s, method, "/admin/v1/products/" + path_segment(sku) + "/stock", body);
  if (s.json) {
    print_raw(a.raw);
    return exit_ok;
  }
  const auto& v = a.v;
  std::vector<std::vector<std::string>> rows = {
      {"SKU", "ON_HAND", "HELD", "SOLD", "AVAILABLE", "OWNER", "EPOCH"},
      {text_of(v, "sku"), text_of(v, "on_hand"), text_of(v, "held"), text_of(v, "sold"),
       text_of(v, "available"), text_of(v, "owner_node"), text_of(v, "epoch")}};
  print_table(rows, {false, true, true, true, true, false, true});
  return exit_ok;
}

/// The refund body of `orders refund`: {} or {"lines":[{"sku","qty"}...]} from --line=SKU:QTY.
std::string refund_body(const std::vector<std::string>& lines) {
  if (lines.empty()) {
    return "{}";
  }
  surge::net::json::writer w{32 + lines.size() * 48};
  w.begin_object().key("lines").begin_array();
  for (const auto& l : lines) {
    const auto colon = l.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      throw usage("--line expects SKU:QTY, got '" + l + "'");
    }
    const auto qty = parse_int64("--line quantity", l.substr(colon + 1));
    if (qty < 1) {
      throw usage("--line quantity must be >= 1, got '" + l + "'");
    }
    w.begin_object().member("sku", l.substr(0, colon)).member("qty", qty).end_object();
  }
  return w.end_array().end_object().take();
}

int cmd_refund(const invocation& inv, const admin_session& s) {
  const auto& order = inv.words[2];
  const auto a = admin_json(s, "POST", "/admin/v1/orders/" + path_segment(order) + "/refunds",
                            refund_body(inv.refund_lines), {{"Idempotency-Key", *inv.refund_key}});
  if (s.json) {
    print_raw(a.raw);
    return exit_ok;
  }
  const auto& v = a.v;
  std::string lines;
  if (const auto* ls = v.find("lines"); ls != nullptr && ls->is_array()) {
    for (const auto& l : std::get<surge::net::json::array>(ls->get())) {
      lines += (lines.empty() ? "" : ",") + text_of(l, "sku") + ":" + text_of(l, "qty");
    }
  }
  std::vector<std::vector<std::string>> rows = {
      {"REFUND_ID", "ORDER", "AMOUNT_CENTS", "STATUS", "LINES"},
      {text_of(v, "refund_id"), text_of(v, "order_id"), text_of(v, "amount_cents"),
       text_of(v, "status"), lines}};
  print_table(rows, {false, false, true, false, false});
  return exit_ok;
}

int cmd_orders(const invocation& inv) {
  if (inv.words.size() < 2 || (inv.words[1] != "tail" && inv.words[1] != "refund")) {
    throw usage(inv.words.size() < 2
                    ? "missing arguments: surgectl orders tail|refund ..."
                    : "unknown orders command '" + inv.words[1] + "' (tail, refund)");
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
      o.timeout = parse_duration("--timeout", value);
    }
  }
  return orders_tail(o);
}

int run(const std::vector<std::string>& args) {
  // `token`, `catalog`, `sales` and `roll` take their own flags (token.cpp, catalog.cpp,
  // sales.cpp, roll.cpp).
  if (auto w = std::find_if(args.begin(), args.end(),
                            [](const std::string& a) { return a.rfind("--", 0) != 0; });
      w != args.end() && (*w == "token" || *w == "catalog" || *w == "sales" || *w == "roll")) {
    return *w == "token"     ? cmd_token(args)
           : *w == "catalog" ? cmd_catalog(args)
           : *w == "roll"    ? cmd_roll(args)
                             : cmd_sales(args);
  }
  const auto inv = parse_args(args);
  if (inv.help) {
    std::cout << usage_text;
    return exit_ok;
  }
  if (inv.words.empty()) {
    throw usage("missing command");
  }
  const auto& cmd = inv.words[0];
  if (cmd == "help") {
    std::cout << usage_text;
    return exit_ok;
  }
  static const std::set<std::string> commands = {"status",  "nodes", "shards", "drain",
                                                 "undrain", "stock", "orders"};
  if (commands.count(cmd) == 0) {
    throw usage("unknown command '" + cmd + "'");
  }
  // Flags that belong to one command only.
  if (cmd != "orders" && !inv.tail_flags.empty()) {
    throw usage("--" + inv.tail_flags.begin()->first + " is a flag of 'orders tail' only");
  }
  if (cmd != "shards" && inv.all) {
    throw usage("--all is a flag of 'shards' only");
  }
  if (cmd != "drain" && inv.drain_wait) {
    throw usage("--wait is a flag of 'drain' only");
  }
  const bool refund = cmd == "orders" && inv.words.size() > 1 && inv.words[1] == "refund";
  if (!refund && (inv.refund_key || !inv.refund_lines.empty())) {
    throw usage("--key and --line are flags of 'orders refund' only");
  }
  if (refund) {
    expect_words(inv, 3, "orders refund ORDER --key=K [--line=SKU:QTY ...]");
    if (!inv.tail_flags.empty()) {
      throw usage("--" + inv.tail_flags.begin()->first + " is a flag of 'orders tail' only");
    }
    if (!inv.refund_key || inv.refund_key->empty()) {
      throw usage("orders refund needs --key=K (its Idempotency-Key)");
    }
    if (inv.words[2].empty()) {
      throw usage("ORDER must not be empty");
    }
    refund_body(inv.refund_lines); // usage errors before the URL
  } else if (cmd == "orders") {
    return cmd_orders(inv);
  }
  // Check the words before the URL, so that usage errors come first.
  if (cmd == "status" || cmd == "nodes" || cmd == "shards") {
    expect_words(inv, 1, cmd + (cmd == "shards" ? " [--all]" : ""));
  } else if (cmd == "drain") {
    expect_words(inv, 2, "drain NODE [--wait[=TIMEOUT]]");
    if (inv.words[1].empty()) {
      throw usage("NODE must not be empty");
    }
  } else if (cmd == "undrain") {
    expect_words(inv, 2, "undrain NODE");
    if (inv.words[1].empty()) {
      throw usage("NODE must not be empty");
    }
  }
  auto s = open_session(inv.admin, inv.token);
  s.json = inv.json;
  if (cmd == "status") {
    return cmd_status(s);
  }
  if (cmd == "nodes") {
    return cmd_nodes(s);
  }
  if (cmd == "shards") {
    return cmd_shards(s, inv.all);
  }
  if (cmd == "drain") {
    return cmd_drain(s, inv.words[1], inv.drain_wait);
  }
  if (refund) {
    return cmd_refund(inv, s);
  }
  if (cmd == "undrain") {
    return cmd_undrain(s, inv.words[1]);
  }
  return cmd_stock(inv, s);
}

} // namespace

admin_session open_session(const std::optional<std::string>& admin,
                           const std::optional<std::string>& token) {
  std::string url = default_admin;
  if (admin) {
    url = *admin;
  } else if (const char* env = std::getenv("SURGECTL_ADMIN"); env != nullptr && *env != '\0') {
    url = env;
  }
  admin_session s;
  s.ep = parse_admin_url(url);
  s.token = admin_token(token);
  return s;
}

bool interrupted() {
  return g_interrupted.load();
}

std::string money(int64_t cents, const std::string& currency) {
  const bool neg = cents < 0;
  const uint64_t a = neg ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%llu.%02llu", neg ? "-" : "",
                static_cast<unsigned long long>(a / 100), static_cast<unsigned long long>(a % 100));
  return currency.empty() ? std::string{buf} : std::string{buf} + " " + currency;
}

std::chrono::milliseconds parse_duration(const std::string& what, const std::string& s) {
  const auto d = config::parse_cli_duration(s);
  if (!d) {
    throw cli_error(exit_usage,
                    what + " expects a duration (e.g. 5, 2.5s, 500ms, 5m), got '" + s + "'");
  }
  return *d;
}

std::string human_duration(int64_t ms) {
  char buf[64];
  if (ms < 0) {
    return "-";
  }
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms / 100) / 10.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  } else if (ms < 86'400'000) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(ms / 86'400'000),
                  static_cast<long long>(ms / 3'600'000 % 24));
  }
  return buf;
}

} // namespace surge::ctl

int main(int argc, char** argv) {
  using namespace surge::ctl;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  const auto fail = [](int code, const char* what) {
    std::cerr << "surgectl: " << what << "\n";
    if (code == exit_usage) {
      std::cerr << "\n" << usage_text;
    }
    return code;
  };
  try {
    return run({argv + 1, argv + argc});
  } catch (const cli::usage_error& e) {
    return fail(exit_usage, e.what());
  } catch (const cli_error& e) {
    return fail(e.code, e.what());
  } catch (const std::exception& e) {
    return fail(exit_server_error, e.what());
  }
}
