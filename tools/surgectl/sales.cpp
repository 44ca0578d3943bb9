// surgectl sales: list, get, put, delete over the admin API's sales (shared/API.md "Sales and
// the waiting room"): GET /admin/v1/sales, GET/PUT/DELETE /admin/v1/sales/{id}.

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "surge/net/json_writer.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace {

namespace json = surge::net::json;
using namespace std::chrono_literals;

constexpr const char* sales_usage_text =
    R"(usage: surgectl [--admin=URL] [--token=T] [--json] sales list
       surgectl [--admin=URL] [--token=T] [--json] sales get SALE_ID
       surgectl [--admin=URL] [--token=T] [--json] sales put SALE_ID --file=sale.json
       surgectl [--admin=URL] [--token=T] [--json] sales put SALE_ID --name=NAME --skus=A,B
                --starts-at=WHEN --ends-at=WHEN [--limit=N] [--queue]
                [--admission-rate=N|auto] [--pass-ttl=SECONDS|90s|5m]
       surgectl [--admin=URL] [--token=T] sales delete SALE_ID

list      every sale: id, state, start, end, SKUs, queue settings and, where the server gives
          them, waiting/admitted/sold; the name last
get       one sale with its queue's figures (stats): waiting, admitted, admission rate, sold,
          sell-through (sold / (sold + held + available)), warm, lottery seed, sold out at
put       makes or replaces the sale: the JSON of --file (- for stdin) as it is, or one made from
          the flags; prints the sale as get does. --starts-at and --ends-at are RFC 3339 times
          (2026-11-27T09:00:00Z) or +DURATION from now (+90s, +10m, +2h); --limit is the
          per-customer limit (default 0: none); --queue turns the waiting room on, with
          --admission-rate (shoppers per second, or auto, the default) and --pass-ttl (default
          300 seconds)
delete    removes the sale ("sale ID: deleted")

--json prints the server's JSON as is (delete prints nothing then).

exit status: 0 ok; 1 the server refused (unknown sale: not_found; a bad field: bad_request naming
it; an overlapping or started sale: conflict); 2 usage error (also a --file that is not a JSON
object); 3 cannot connect
)";

/// One admin call's deadline, as for the other commands.
constexpr auto request_timeout = 10s;

cli_error usage(const std::string& message) {
  return cli_error(exit_usage, message);
}

std::string sale_path(const std::string& id) {
  return "/admin/v1/sales/" + path_segment(id);
}

const json::value* member_of(const json::value& v, const char* key) {
  const auto* m = v.find(key);
  return m != nullptr && !m->is_null() ? m : nullptr;
}

/// A number member as text ("2", "2.5"), "-" when absent or null.
std::string number_text(const json::value& v, const char* key) {
  const auto* m = member_of(v, key);
  return m == nullptr     ? "-"
         : m->is_string() ? std::get<std::string>(m->get())
                          : json::serialize(*m);
}

/// A member that is a number, or nullopt.
std::optional<double> number_of(const json::value& v, const char* key) {
  const auto* m = member_of(v, key);
  if (m == nullptr || !m->is_number()) {
    return std::nullopt;
  }
  return m->is_int() ? static_cast<double>(std::get<int64_t>(m->get()))
                     : std::get<double>(m->get());
}

std::string skus_text(const json::value& sale) {
  std::string out;
  if (const auto* a = member_of(sale, "skus"); a != nullptr && a->is_array()) {
    for (const auto& s : std::get<json::array>(a->get())) {
      out += (out.empty() ? "" : ",") + (s.is_string() ? std::get<std::string>(s.get()) : "?");
    }
  }
  return out.empty() ? "-" : out;
}

/// "off", or "auto, pass 300s" / "5/s, pass 120s".
std::string queue_text(const json::value& sale) {
  const auto* q = member_of(sale, "queue");
  if (q == nullptr || !q->is_object()) {
    return "-";
  }
  const auto* on = q->find("enabled");
  if (on == nullptr || !on->is_bool() || !std::get<bool>(on->get())) {
    return "off";
  }
  const auto rate = number_text(*q, "admission_rate");
  return (rate == "auto" ? rate : rate + "/s") + ", pass " + number_text(*q, "pass_ttl") + "s";
}

/// sold / (sold + held + available) as "40.0%", "-" when nothing is known.
std::string sell_through(const json::value& stats) {
  const auto sold = number_of(stats, "sold").value_or(0);
  const auto total =
      sold + number_of(stats, "held").value_or(0) + number_of(stats, "available").value_or(0);
  if (total <= 0) {
    return "-";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * sold / total);
  return buf;
}

std::string yes_no(const json::value& v, const char* key) {
  const auto* m = member_of(v, key);
  return m == nullptr || !m->is_bool() ? "-" : std::get<bool>(m->get()) ? "yes" : "no";
}

/// `sales get` and `put`: one "field  value" line each, the stats after the sale.
void print_sale(const json::value& sale) {
  std::vector<std::vector<std::string>> rows = {
      {"sale", text_of(sale, "sale_id")},
      {"name", text_of(sale, "name")},
      {"state", text_of(sale, "state")},
      {"starts_at", text_of(sale, "starts_at")},
      {"ends_at", text_of(sale, "ends_at")},
      {"skus", skus_text(sale)},
      {"per_customer_limit", text_of(sale, "per_customer_limit")},
      {"queue", queue_text(sale)},
      {"updated_at", text_of(sale, "updated_at")},
  };
  const auto* stats = member_of(sale, "stats");
  if (stats != nullptr && stats->is_object()) {
    const auto& st = *stats;
    for (const char* k : {"phase", "tickets", "waiting", "admitted"}) {
      rows.push_back({k, number_text(st, k)});
    }
    rows.push_back({"admit_rate", number_text(st, "admit_rate") + "/s"});
    for (const char* k : {"available", "held", "sold"}) {
      rows.push_back({k, number_text(st, k)});
    }
    rows.push_back({"sell_through", sell_through(st)});
    rows.push_back({"warm", yes_no(st, "warm")});
    rows.push_back({"lottery_seed", number_text(st, "lottery_seed")});
    rows.push_back({"sold_out_at", number_text(st, "sold_out_at")});
  } else if (sale.find("stats") != nullptr) {
    rows.push_back({"stats", "unavailable (the queue did not answer in time)"});
  }
  std::size_t width = 0;
  for (const auto& r : rows) {
    width = std::max(width, r[0].size());
  }
  for (const auto& r : rows) {
    std::cout << r[0] << std::string(width + 2 - r[0].size(), ' ') << r[1] << "\n";
  }
}

int sales_list(const admin_session& s) {
  const auto a = admin_json(s, "GET", "/admin/v1/sales");
  if (s.json) {
    print_raw(a.raw);
    return exit_ok;
  }
  const auto* items = a.v.find("items");
  if (items == nullptr || !items->is_array()) {
    throw cli_error(exit_server_error,
                    "GET /admin/v1/sales: no \"items\" array: " + a.raw.body.substr(0, 200));
  }
  std::vector<std::vector<std::string>> rows = {{"SALE_ID", "STATE", "STARTS_AT", "ENDS_AT", "SKUS",
                                                 "QUEUE", "WAITING", "ADMITTED", "SOLD", "NAME"}};
  for (const auto& sale : std::get<json::array>(items->get())) {
    const auto* st = member_of(sale, "stats");
    const auto stat = [st](const char* k) {
      return st != nullptr && st->is_object() ? number_text(*st, k) : std::string{"-"};
    };
    auto queue = queue_text(sale);
    std::replace(queue.begin(), queue.end(), ' ', '_'); // one word per column
    rows.push_back({text_of(sale, "sale_id"), text_of(sale, "state"), text_of(sale, "starts_at"),
                    text_of(sale, "ends_at"), skus_text(sale), queue, stat("waiting"),
                    stat("admitted"), stat("sold"), text_of(sale, "name")});
  }
  print_table(rows, {false, false, false, false, false, false, true, true, true, false});
  if (rows.size() == 1) {
    std::cerr << "surgectl: no sales\n";
  }
  return exit_ok;
}

int sales_get(const admin_session& s, const std::string& id) {
  const auto a = admin_json(s, "GET", sale_path(id));
  if (s.json) {
    print_raw(a.raw);
  } else {
    print_sale(a.v);
  }
  return exit_ok;
}

int sales_delete(const admin_session& s, const std::string& id) {
  const auto a = admin_call(s.ep, s.token, "DELETE", sale_path(id), {}, request_timeout);
  if (a.status < 200 || a.status >= 300) {
    throw_refusal(s, a);
  }
  if (!s.json) {
    std::cout << "sale " << id << ": deleted\n";
  }
  return exit_ok;
}

/// The text of `path` ("-": stdin). Throws cli_error(exit_usage) when it cannot be read.
std::string read_file(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in{path, std::ios::binary};
  if (!in.is_open()) {
    throw usage("--file: cannot read " + path);
  }
  text << in.rdbuf();
  return text.str();
}

/// `when` as an RFC 3339 time: "+DURATION" is that long from now (UTC, whole seconds); anything
/// else is sent as written (the server checks it).
std::string time_of(const std::string& flag, const std::string& when) {
  if (when.empty()) {
    throw usage("--" + flag + " needs a time (RFC 3339, or +DURATION from now)");
  }
  if (when.front() != '+') {
    return when;
  }
  const auto d = parse_duration("--" + flag, when.substr(1));
  const auto t = std::chrono::system_clock::now() + d;
  const time_t secs = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::seconds>(t + 999ms));
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// The PUT body from the flags of `sales put` without --file.
std::string body_from_flags(const std::map<std::string, std::string>& f, bool queue) {
  for (const char* need : {"name", "skus", "starts-at", "ends-at"}) {
    if (f.count(need) == 0) {
      throw usage(std::string{"sales put needs --file=FILE, or --name, --skus, --starts-at and "
                              "--ends-at (missing --"} +
                  need + ")");
    }
  }
  if (!queue && (f.count("admission-rate") != 0 || f.count("pass-ttl") != 0)) {
    throw usage("--admission-rate and --pass-ttl need --queue");
  }
  json::writer w{256};
  w.begin_object().member("name", f.at("name")).key("skus").begin_array();
  for (const auto& sku : cli::split_list(f.at("skus"))) {
    if (sku.empty()) {
      throw usage("--skus expects A,B,C (no empty SKU), got '" + f.at("skus") + "'");
    }
    w.string(sku);
  }
  w.end_array()
      .member("starts_at", time_of("starts-at", f.at("starts-at")))
      .member("ends_at", time_of("ends-at", f.at("ends-at")));
  int64_t limit = 0;
  if (const auto l = f.find("limit"); l != f.end()) {
    const auto x = cli::to_integer<int64_t>(l->second);
    if (!x || *x < 0) {
      throw usage("--limit expects an integer >= 0, got '" + l->second + "'");
    }
    limit = *x;
  }
  w.member("per_customer_limit", limit);
  w.key("queue").begin_object().member("enabled", queue);
  if (queue) {
    const auto r = f.find("admission-rate");
    if (r == f.end() || r->second == "auto") {
      w.member("admission_rate", "auto");
    } else {
      const auto x = cli::to_number(r->second);
      if (!x || *x <= 0) {
        throw usage("--admission-rate expects a number > 0 or auto, got '" + r->second + "'");
      }
      w.key("admission_rate").number(*x);
    }
    if (const auto t = f.find("pass-ttl"); t != f.end()) {
      if (const auto secs = cli::to_integer<int64_t>(t->second)) {
        if (*secs <= 0) {
          throw usage("--pass-ttl must be > 0, got '" + t->second + "'");
        }
        w.member("pass_ttl", *secs);
      } else {
        const auto d = parse_duration("--pass-ttl", t->second);
        if (d < 1s) {
          throw usage("--pass-ttl must be at least 1s, got '" + t->second + "'");
        }
        w.member("pass_ttl",
                 static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(d).count()));
      }
    } else {
      w.member("pass_ttl", int64_t{300});
    }
  }
  return w.end_object().end_object().take();
}

int sales_put(const admin_session& s, const std::string& id, const std::string& body) {
  const auto a = admin_json(s, "PUT", sale_path(id), body);
  if (s.json) {
    print_raw(a.raw);
  } else {
    print_sale(a.v);
  }
  return exit_ok;
}

} // namespace

int cmd_sales(const std::vector<std::string>& args) {
  own_flags parsed;
  bool json_out = false;
  bool queue = false;
  {
    // parse_own_flags' table plus the two switches of this command.
    std::vector<cli::flag> table = {{"help", cli::takes::optional, cli::enable(parsed.help), true},
                                    {"json", cli::takes::nothing, cli::enable(json_out)},
                                    {"queue", cli::takes::nothing, cli::enable(queue)}};
    for (const char* name : {"admin", "token", "file", "name", "skus", "starts-at", "ends-at",
                             "limit", "admission-rate", "pass-ttl"}) {
      table.push_back(
          {name, cli::takes::value,
           [&parsed, name](const std::optional<std::string>& v) { parsed.values[name] = *v; }});
    }
    auto syntax = command_line();
    syntax.unique = true;
    syntax.wording = [](cli::problem p, const cli::argument& a) {
      return p == cli::problem::unknown_flag ? a.text + " is not a flag of 'sales'"
                                             : cli::message(p, a);
    };
    parsed.words = cli::parse(args, table, syntax).words;
  }
  if (parsed.help) {
    std::cout << sales_usage_text;
    return exit_ok;
  }
  const auto& words = parsed.words; // "sales", SUB, ...
  const auto& flags = parsed.values;
  if (words.size() < 2) {
    throw usage("missing arguments: surgectl sales list|get|put|delete");
  }
  const auto& sub = words[1];
  const bool put = sub == "put";
  if (sub != "list" && sub != "get" && put == false && sub != "delete") {
    throw usage("unknown sales command '" + sub + "' (list, get, put, delete)");
  }
  const std::size_t want = sub == "list" ? 2 : 3;
  if (words.size() != want) {
    throw usage((words.size() < want ? "missing arguments" : "too many arguments") +
                std::string{": surgectl sales "} + sub + (want == 3 ? " SALE_ID" : ""));
  }
  if (want == 3 && words[2].empty()) {
    throw usage("SALE_ID must not be empty");
  }
  for (const auto& [name, v] : flags) {
    if (name != "admin" && name != "token" && !put) {
      throw usage("--" + name + " is a flag of 'sales put' only");
    }
  }
  if (queue && !put) {
    throw usage("--queue is a flag of 'sales put' only");
  }
  std::string body;
  if (put) {
    if (const auto f = flags.find("file"); f != flags.end()) {
      for (const auto& [name, v] : flags) {
        if (name != "admin" && name != "token" && name != "file") {
          throw usage("--file and --" + name + " do not go together: the file is the whole sale");
        }
      }
      if (queue) {
        throw usage("--file and --queue do not go together: the file is the whole sale");
      }
      body = read_file(f->second);
      auto parsed_body = json::parse(body);
      if (const auto* e = std::get_if<json::parse_error>(&parsed_body)) {
        throw usage(f->second + " is not JSON: " + e->message);
      }
      if (!std::get<json::value>(parsed_body).is_object()) {
        throw usage(f->second + " is not a JSON object");
      }
    } else {
      body = body_from_flags(flags, queue);
    }
  }
  std::optional<std::string> admin;
  std::optional<std::string> token;
  if (const auto a = flags.find("admin"); a != flags.end()) {
    admin = a->second;
  }
  if (const auto t = flags.find("token"); t != flags.end()) {
    token = t->second;
  }
  auto s = open_session(admin, token);
  s.json = json_out;
  if (sub == "list") {
    return sales_list(s);
  }
  if (sub == "get") {
    return sales_get(s, words[2]);
  }
  if (put) {
    return sales_put(s, words[2], body);
  }
  return sales_delete(s, words[2]);
}

} // namespace surge::ctl
