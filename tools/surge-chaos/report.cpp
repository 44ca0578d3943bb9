#include "report.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "process.hpp"
#include "surge/net/json.hpp"
#include "surge/tools/text.hpp"

namespace surge::chaos {

namespace {

void q(std::string& out, const std::string& s) {
  surge::net::json::append_quoted(out, s);
}

/// Appends `xs` to `out` as a JSON array, each element written by `write(out, x)`.
template <class T, class Write>
void q_array(std::string& out, const std::vector<T>& xs, Write write) {
  out += '[';
  for (std::size_t i = 0; i < xs.size(); ++i) {
    out += i == 0 ? "" : ",";
    write(out, xs[i]);
  }
  out += ']';
}

/// Appends `xs` to `out` as a JSON array of strings.
void q_list(std::string& out, const std::vector<std::string>& xs) {
  q_array(out, xs, q);
}

/// Appends the member `,"key":"value"` (value quoted) to `out`.
void q_field(std::string& out, const char* key, const std::string& value) {
  out += ",\"";
  out += key;
  out += "\":";
  q(out, value);
}

/// Appends `m` to `out` as a JSON object, each value written by `value(v)`.
template <class Map, class Value>
void q_object(std::string& out, const Map& m, Value value) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : m) {
    out += first ? "" : ",";
    first = false;
    q(out, k);
    out += ":" + value(v);
  }
  out += '}';
}

using tools::fixed;

} // namespace

std::string promise_table(const std::vector<promise_result>& results) {
  std::ostringstream s;
  s << "PROMISE  RESULT  WHAT\n";
  for (const auto& r : results) {
    s << std::left << std::setw(9) << r.id << std::setw(8) << to_string(r.result) << r.title << ": "
      << r.summary << "\n";
  }
  for (const auto& r : results) {
    for (const auto& d : r.details) {
      s << "  " << r.id << "  " << d << "\n";
    }
    for (const auto& c : r.counter_examples) {
      s << "  " << r.id << " counter-example: " << c << "\n";
    }
  }
  return s.str();
}

std::string json_report(const run_info& info, const run_data& d,
                        const std::vector<promise_result>& results) {
  std::string o = "{\"seed\":" + std::to_string(info.seed) +
                  ",\"nodes\":" + std::to_string(info.nodes) +
                  ",\"duration_ms\":" + std::to_string(info.duration_ms) + ",\"mode\":";
  q(o, info.mode);
  o += ",\"notes\":";
  q_list(o, info.notes);
  o += ",\"faults_requested\":";
  q_list(o, info.faults_requested);
  o += ",\"faults\":";
  q_array(o, d.faults, [&](std::string& out, const fault_record& f) {
    out += "{\"kind\":";
    q(out, f.kind);
    q_field(out, "target", f.target);
    q_field(out, "detail", f.detail);
    const auto rel = [&](int64_t ms) {
      return f.skipped ? std::string{"null"} : fixed(double(ms - info.load_start_ms) / 1000.0, 3);
    };
    out += ",\"start_s\":" + rel(f.start_ms) + ",\"end_s\":" + rel(f.end_ms) +
           ",\"skipped\":" + (f.skipped ? "true" : "false");
    q_field(out, "note", f.note);
    out += "}";
  });
  uint64_t errors = 0;
  std::map<std::string, uint64_t> outcomes;
  for (const auto& op : d.history) {
    errors += op.status == 0 || op.status >= 500 ? 1 : 0;
    outcomes[std::string{to_string(op.kind)} + " " + std::to_string(op.status) +
             (op.error_code.empty() || op.status == 0 ? "" : " " + op.error_code)] += 1;
  }
  o += ",\"requests\":" + std::to_string(d.history.size()) +
       ",\"errors\":" + std::to_string(errors) + ",\"outcomes\":";
  q_object(o, outcomes, [](uint64_t n) { return std::to_string(n); });
  o += ",\"promises\":";
  q_array(o, results, [](std::string& out, const promise_result& r) {
    out += "{\"id\":";
    q(out, r.id);
    q_field(out, "title", r.title);
    q_field(out, "result", to_string(r.result));
    q_field(out, "summary", r.summary);
    out += ",\"counter_examples\":";
    q_list(out, r.counter_examples);
    out += ",\"details\":";
    q_list(out, r.details);
    out += ",\"metrics\":";
    q_object(out, r.metrics, [](double x) { return fixed(x, 3); });
    out += "}";
  });
  o += ",\"passed\":";
  o += all_passed(results) ? "true" : "false";
  o += "}\n";
  return o;
}

std::string history_jsonl(const std::vector<operation>& history) {
  std::string o;
  for (const auto& op : history) {
    o += "{\"id\":" + std::to_string(op.id) + ",\"kind\":";
    q(o, to_string(op.kind));
    o += ",\"client\":" + std::to_string(op.client) + ",\"node\":" + std::to_string(op.node) +
         ",\"start_ms\":" + std::to_string(op.start_ms) +
         ",\"end_ms\":" + std::to_string(op.end_ms) + ",\"status\":" + std::to_string(op.status);
    const std::pair<const char*, const std::string*> fields[] = {
        {"cart_id", &op.cart_id},          {"sku", &op.sku},
        {"key", &op.idempotency_key},      {"token", &op.token},
        {"error", &op.error_code},         {"order_id", &op.order_id},
        {"order_status", &op.order_status}};
    for (const auto& [name, value] : fields) {
      if (!value->empty()) {
        o += ",\"" + std::string{name} + "\":";
        q(o, *value);
      }
    }
    o += ",\"qty\":" + std::to_string(op.qty) + ",\"lines\":[";
    for (std::size_t i = 0; i < op.lines.size(); ++i) {
      o += i == 0 ? "{\"sku\":" : ",{\"sku\":";
      q(o, op.lines[i].sku);
      o += ",\"qty\":" + std::to_string(op.lines[i].qty) + ",\"hold_id\":";
      q(o, op.lines[i].hold_id);
      o += "}";
    }
    o += "]}\n";
  }
  return o;
}

std::string write_plot(const run_info& info, const run_data& d, const std::string& svg_path) {
  const int64_t t0 = info.load_start_ms;
  const int64_t seconds = std::max<int64_t>(1, (info.load_end_ms - t0) / 1000 + 1);
  std::vector<int64_t> ops(static_cast<std::size_t>(seconds), 0);
  std::vector<int64_t> errs(ops.size(), 0);
  std::vector<std::vector<int64_t>> lat(ops.size());
  for (const auto& op : d.history) {
    const int64_t s = (op.end_ms - t0) / 1000;
    if (s < 0 || s >= seconds) {
      continue;
    }
    const auto i = static_cast<std::size_t>(s);
    ++ops[i];
    errs[i] += op.status == 0 || op.status >= 500 ? 1 : 0;
    lat[i].push_back(op.end_ms - op.start_ms);
  }
  const std::string dat = svg_path + ".dat";
  const std::string gp = svg_path + ".gp";
  {
    std::ofstream out{dat};
    out << "# second ops errors p50_ms p99_ms\n";
    for (std::size_t i = 0; i < ops.size(); ++i) {
      out << i << " " << ops[i] << " " << errs[i] << " " << quantile(lat[i], 0.5) << " "
          << quantile(lat[i], 0.99) << "\n";
    }
  }
  {
    std::ofstream out{gp};
    out << "set terminal svg size 1200,700 dynamic background rgb 'white'\n"
        << "set output '" << svg_path << "'\n"
        << "set multiplot layout 2,1 title 'surge-chaos seed " << info.seed << ", " << info.nodes
        << " nodes, " << info.mode << " mode'\n"
        << "set xlabel 'seconds'\nset grid\nset key top left\n";
    int n = 1;
    for (const auto& f : d.faults) {
      if (f.skipped) {
        continue;
      }
      const double a = double(f.start_ms - t0) / 1000.0;
      const double b = std::max(a + 0.3, double(f.end_ms - t0) / 1000.0);
      out << "set object " << n << " rect from " << a << ", graph 0 to " << b
          << ", graph 1 fc rgb '#ffcccc' fs solid 0.4 noborder behind\n";
      out << "set label " << n << " '" << f.kind << " " << f.target << "' at " << a
          << ", graph 0.97 rotate by 90 right font ',8'\n";
      ++n;
    }
    out << "set ylabel 'requests/s'\n"
        << "plot '" << dat << "' using 1:2 with lines lw 2 title 'ops/s', '" << dat
        << "' using 1:3 with impulses lw 2 lc rgb 'red' title 'errors/s'\n"
        << "set ylabel 'latency ms'\nset logscale y\n"
        << "plot '" << dat << "' using 1:($4+1) with lines title 'p50', '" << dat
        << "' using 1:($5+1) with lines title 'p99'\n"
        << "unset multiplot\n";
  }
  auto r = run_command({"gnuplot", gp}, std::chrono::seconds{60});
  if (r.exit_code != 0) {
    return "gnuplot failed (" + std::to_string(r.exit_code) + "): " + r.output;
  }
  return {};
}

} // namespace surge::chaos
