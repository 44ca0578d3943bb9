#include "report.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "surge/net/json.hpp"
#include "surge/tools/process.hpp"
#include "surge/tools/text.hpp"

namespace surge::load {

namespace json = surge::net::json;
using tools::fixed;

namespace {

double ms(uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 != 0 && d.count() < 10000) {
    return std::to_string(d.count()) + "ms";
  }
  return fixed(static_cast<double>(d.count()) / 1000.0, d.count() % 1000 == 0 ? 0 : 1) + "s";
}

std::string model_text(const options& o) {
  if (o.users) {
    return "closed model, " + grouped(*o.users) + " users";
  }
  return "open model, " + fixed(*o.rate, 1) + " journeys/s (at most " + grouped(o.max_users) +
         " in flight)";
}

std::string mix_text(const options& o) {
  std::string out;
  for (int s = 0; s < scenario_count; ++s) {
    if (o.weights[s] > 0) {
      out += std::string{out.empty() ? "" : ","} + scenario_name(static_cast<scenario>(s)) + ":" +
             std::to_string(o.weights[s]);
    }
  }
  return out;
}

/// First column left-aligned, the others right-aligned.
void table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<bool> right(rows.empty() ? 0 : rows.front().size(), true);
  if (!right.empty()) {
    right[0] = false;
  }
  out << tools::format_table(rows, right);
}

std::vector<std::string> latency_row(const std::string& name, const histogram& h, uint64_t count,
                                     uint64_t errors) {
  return {name,
          grouped(count),
          grouped(errors),
          fixed(ms(h.percentile(50)), 2),
          fixed(ms(h.percentile(90)), 2),
          fixed(ms(h.percentile(99)), 2),
          fixed(ms(h.percentile(99.9)), 2),
          fixed(ms(h.max()), 2)};
}

json::value latency_json(const histogram& h, uint64_t count, uint64_t errors) {
  return json::object{{"count", static_cast<int64_t>(count)},
                      {"errors", static_cast<int64_t>(errors)},
                      {"p50_ms", ms(h.percentile(50))},
                      {"p90_ms", ms(h.percentile(90))},
                      {"p99_ms", ms(h.percentile(99))},
                      {"p999_ms", ms(h.percentile(99.9))},
                      {"max_ms", ms(h.max())},
                      {"mean_ms", h.mean() / 1000.0}};
}

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= p.size()) {
    const auto colon = p.find(':', pos);
    const auto dir = p.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) {
      return true;
    }
    if (colon == std::string::npos) {
      break;
    }
    pos = colon + 1;
  }
  return false;
}

/// Runs `gnuplot script` (its output on surge-load's), bounded by 30 s; returns "" or what went
/// wrong.
std::string run_gnuplot(const std::string& script) {
  tools::child gnuplot;
  tools::child_spec spec;
  spec.argv = {"gnuplot", script};
  spec.out_fd = STDOUT_FILENO;
  spec.err_fd = STDERR_FILENO;
  try {
    gnuplot.start(spec);
  } catch (const std::exception&) {
    return "cannot fork";
  }
  const auto status = gnuplot.wait(std::chrono::seconds{30});
  if (!status) {
    gnuplot.kill9();
    return "gnuplot did not finish within 30 s";
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return "gnuplot failed (exit " +
           std::to_string(WIFEXITED(*status) ? WEXITSTATUS(*status) : -1) + ")";
  }
  return {};
}

} // namespace

void print_report(std::ostream& out, const options& o, const run_facts& f, const run_result& r,
                  const check_result& c) {
  std::string targets;
  for (const auto& t : o.targets) {
    targets += (targets.empty() ? "" : ",") + t.url();
  }
  out << "surge-load " << o.scenario_text << " (" << mix_text(o) << "), " << model_text(o)
      << ", think " << duration_text(o.think) << "; " << f.connections << " connections to "
      << targets << "\n";
  const double rps = r.elapsed_s > 0 ? static_cast<double>(r.sent) / r.elapsed_s : 0.0;
  out << "ran " << fixed(r.elapsed_s, 1) << " s: " << grouped(r.sent) << " requests ("
      << grouped(static_cast<uint64_t>(rps + 0.5)) << "/s), " << grouped(r.answered) << " answered";
  if (r.hit_max_requests) {
    out << "; stopped at --max-requests=" << o.max_requests;
  }
  if (r.unsent > 0) {
    out << "; " << grouped(r.unsent) << " not sent: still waiting for a connection at the end";
  }
  if (r.stale_retries > 0) {
    out << "; " << grouped(r.stale_retries) << " resent on a new connection";
  }
  out << "\n\nlatency from the intended start, ms\n";
  std::vector<std::vector<std::string>> rows = {
      {"KIND", "COUNT", "ERRORS", "p50", "p90", "p99", "p99.9", "max"}};
  uint64_t count = 0;
  uint64_t errors = 0;
  for (int k = 0; k < kind_count; ++k) {
    const auto& ks = r.kinds[k];
    if (ks.count == 0) {
      continue;
    }
    rows.push_back(
        latency_row(kind_name(static_cast<req_kind>(k)), ks.latency, ks.count, ks.errors));
    count += ks.count;
    errors += ks.errors;
  }
  rows.push_back(latency_row("all", r.all, count, errors));
  table(out, rows);

  out << "\nstatus:";
  for (const auto& [k, v] : r.statuses) {
    out << "  " << k << " " << grouped(v);
  }
  const auto& x = r.out;
  out << "\noutcomes: journeys " << grouped(x.journeys) << ", carts " << grouped(x.carts)
      << ", held " << grouped(x.held) << ", sold out " << grouped(x.sold_out) << ", limit exceeded "
      << grouped(x.limit_exceeded) << ", orders " << grouped(x.orders) << " ("
      << grouped(x.confirmed_units) << " units confirmed), declines " << grouped(x.declines)
      << ", idempotent replays " << grouped(x.replays) << " (" << grouped(x.replay_mismatch)
      << " different), hold expired " << grouped(x.hold_expired) << ", empty carts "
      << grouped(x.empty_cart) << ", checkouts unknown " << grouped(x.checkout_unknown)
      << ", pages " << grouped(x.pages) << " (+" << grouped(x.not_modified) << " not modified)";
  if (x.dropped_arrivals > 0) {
    out << ", DROPPED arrivals " << grouped(x.dropped_arrivals) << " (--max-users)";
  }
  out << "\n";
  out << "file descriptors: soft limit " << f.fd_soft << ", hard " << f.fd_hard << "\n";

  if (!c.performed) {
    out << "\ncross-check: skipped (--no-check)\n";
    return;
  }
  out << "\ncross-check against " << o.admin.url() << ", " << c.stocks.size() << " SKU(s) held:\n";
  if (!c.error.empty()) {
    out << "FAIL  cross-check could not run: " << c.error << "\n";
    return;
  }
  if (!c.stocks.empty() && c.stocks.size() <= 24) {
    std::vector<std::vector<std::string>> s = {
        {"SKU", "ON_HAND", "HELD", "SOLD", "LIVE_HOLDS", "CONFIRMED", "UNCERTAIN"}};
    for (const auto& [sku, st] : c.stocks) {
      const auto& t = r.skus.at(sku);
      s.push_back({sku + (st.known ? "" : " (unknown)"), std::to_string(st.on_hand),
                   std::to_string(st.held), std::to_string(st.sold), std::to_string(t.live_holds),
                   std::to_string(t.confirmed_units), std::to_string(t.uncertain)});
    }
    table(out, s);
  }
  for (const auto& l : c.lines) {
    out << l.verdict << "  " << l.name << ": " << l.detail << "\n";
  }
  out << (c.passed ? "PASS" : "FAIL") << "  cross-check\n";
}

std::string json_report(const options& o, const run_facts& f, const run_result& r,
                        const check_result& c) {
  json::object kinds;
  for (int k = 0; k < kind_count; ++k) {
    const auto& ks = r.kinds[k];
    if (ks.count > 0) {
      kinds.emplace_back(kind_name(static_cast<req_kind>(k)),
                         latency_json(ks.latency, ks.count, ks.errors));
    }
  }
  uint64_t errors = 0;
  for (const auto& ks : r.kinds) {
    errors += ks.errors;
  }
  json::object statuses;
  for (const auto& [k, v] : r.statuses) {
    statuses.emplace_back(k, static_cast<int64_t>(v));
  }
  const auto& x = r.out;
  const auto i = [](uint64_t v) { return json::value{static_cast<int64_t>(v)}; };
  json::object outcomes{{"journeys", i(x.journeys)},
                        {"dropped_arrivals", i(x.dropped_arrivals)},
                        {"carts", i(x.carts)},
                        {"held", i(x.held)},
                        {"sold_out", i(x.sold_out)},
                        {"limit_exceeded", i(x.limit_exceeded)},
                        {"orders", i(x.orders)},
                        {"confirmed_units", i(x.confirmed_units)},
                        {"declines", i(x.declines)},
                        {"idempotent_replays", i(x.replays)},
                        {"replay_mismatch", i(x.replay_mismatch)},
                        {"hold_expired", i(x.hold_expired)},
                        {"empty_cart", i(x.empty_cart)},
                        {"checkout_unknown", i(x.checkout_unknown)},
                        {"pages", i(x.pages)},
                        {"not_modified", i(x.not_modified)}};
  json::array skus;
  for (const auto& [sku, t] : r.skus) {
    json::object s{{"sku", sku},
                   {"live_holds", t.live_holds},
                   {"confirmed_units", t.confirmed_units},
                   {"uncertain", i(t.uncertain)},
                   {"puts", i(t.puts)}};
    if (auto it = c.stocks.find(sku); it != c.stocks.end()) {
      s.emplace_back("known", it->second.known);
      s.emplace_back("on_hand", it->second.on_hand);
      s.emplace_back("held", it->second.held);
      s.emplace_back("sold", it->second.sold);
    }
    skus.emplace_back(std::move(s));
  }
  json::array checks;
  for (const auto& l : c.lines) {
    checks.emplace_back(
        json::object{{"verdict", l.verdict}, {"name", l.name}, {"detail", l.detail}});
  }
  json::array series;
  for (const auto& p : r.series) {
    series.emplace_back(json::object{{"t", p.t},
                                     {"requests", i(p.requests)},
                                     {"errors", i(p.errors)},
                                     {"p50_ms", p.p50_ms},
                                     {"p99_ms", p.p99_ms},
                                     {"active", i(p.active)}});
  }
  json::array targets;
  for (const auto& t : o.targets) {
    targets.emplace_back(t.url());
  }
  json::object model{{"kind", std::string{o.users ? "closed" : "open"}}};
  if (o.users) {
    model.emplace_back("users", i(*o.users));
  } else {
    model.emplace_back("rate", *o.rate);
    model.emplace_back("max_users", i(o.max_users));
  }
  json::object mix;
  for (int s = 0; s < scenario_count; ++s) {
    mix.emplace_back(scenario_name(static_cast<scenario>(s)), int64_t{o.weights[s]});
  }
  json::object check{{"performed", c.performed},
                     {"passed", c.passed},
                     {"error", c.error},
                     {"live_holds_checked", c.live_checked},
                     {"checks", std::move(checks)}};
  json::object doc{
      {"tool", std::string{"surge-load"}},
      {"version", int64_t{1}},
      {"run_id", f.run_id},
      {"scenario", o.scenario_text},
      {"mix", std::move(mix)},
      {"model", std::move(model)},
      {"think_ms", static_cast<int64_t>(o.think.count())},
      {"duration_ms", static_cast<int64_t>(o.duration.count())},
      {"elapsed_s", r.elapsed_s},
      {"targets", std::move(targets)},
      {"connections", int64_t{f.connections}},
      {"source_addrs", int64_t{o.source_addrs}},
      {"threads", int64_t{o.threads}},
      {"seed", static_cast<int64_t>(o.seed)},
      {"fd_limit", json::object{{"soft", i(f.fd_soft)}, {"hard", i(f.fd_hard)}}},
      {"requests", i(r.sent)},
      {"answered", i(r.answered)},
      {"errors", i(errors)},
      {"unsent", i(r.unsent)},
      {"stale_retries", i(r.stale_retries)},
      {"hit_max_requests", r.hit_max_requests},
      {"throughput_rps", r.elapsed_s > 0 ? static_cast<double>(r.sent) / r.elapsed_s : 0.0},
      {"statuses", std::move(statuses)},
      {"latency", std::move(kinds)},
      {"latency_all", latency_json(r.all, r.all.count(), errors)},
      {"outcomes", std::move(outcomes)},
      {"skus", std::move(skus)},
      {"check", std::move(check)},
      {"series", std::move(series)}};
  return json::serialize(json::value{std::move(doc)}) + "\n";
}

std::string run_plot_script(const std::string& script) {
  if (!on_path("gnuplot")) {
    return "gnuplot not found (apt-get install gnuplot-nox); plot with `gnuplot " + script +
           "` elsewhere";
  }
  return run_gnuplot(script);
}

std::vector<std::string> write_plot(const std::string& prefix, const run_result& r) {
  std::vector<std::string> said;
  const auto tsv = prefix + ".tsv";
  {
    std::ofstream f{tsv};
    f << "# t_s\trequests\trequests_per_s\tp50_ms\tp99_ms\terrors_per_s\tactive\n";
    for (const auto& p : r.series) {
      f << p.t << "\t" << p.requests << "\t" << p.requests << "\t" << fixed(p.p50_ms, 3) << "\t"
        << fixed(p.p99_ms, 3) << "\t" << p.errors << "\t" << p.active << "\n";
    }
    if (!f) {
      throw std::runtime_error("cannot write " + tsv);
    }
  }
  said.push_back("wrote " + tsv);
  const auto gp = prefix + ".gp";
  {
    std::ofstream f{gp};
    f << "# surge-load: gnuplot " << gp << "\n"
      << "set terminal svg size 960,480 dynamic font 'sans,11'\n"
      << "set datafile separator '\\t'\n"
      << "set grid\nset key left top\nset xlabel 'seconds'\n"
      << "set output '" << prefix << "-latency.svg'\n"
      << "set title 'surge-load: latency per second, from the intended start'\n"
      << "set ylabel 'ms'\n"
      << "plot '" << tsv << "' using 1:4 with lines lw 2 title 'p50', '' using 1:5 with lines "
      << "lw 2 title 'p99'\n"
      << "set output '" << prefix << "-throughput.svg'\n"
      << "set title 'surge-load: throughput'\n"
      << "set ylabel 'requests/s'\n"
      << "plot '" << tsv << "' using 1:3 with lines lw 2 title 'requests/s', '' using 1:6 with "
      << "lines lw 2 title 'errors/s'\n";
    if (!f) {
      throw std::runtime_error("cannot write " + gp);
    }
  }
  said.push_back("wrote " + gp);
  if (!on_path("gnuplot")) {
    said.push_back("gnuplot not found (apt-get install gnuplot-nox): no SVGs; plot the data with "
                   "`gnuplot " +
                   gp + "` elsewhere");
    return said;
  }
  if (r.series.empty()) {
    said.push_back("no full second of data: no SVGs");
    return said;
  }
  if (auto err = run_plot_script(gp); !err.empty()) {
    said.push_back(err + ": no SVGs");
    return said;
  }
  said.push_back("wrote " + prefix + "-latency.svg");
  said.push_back("wrote " + prefix + "-throughput.svg");
  return said;
}

} // namespace surge::load
