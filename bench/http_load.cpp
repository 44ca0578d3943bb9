// `http` and `failover`: HTTP clients for the storefront rows of BENCHMARKS.md.
//
// http      a closed-loop keep-alive load generator (Boost.Beast, one io_context per thread):
//           --connections connections, each sending its next request as soon as the previous
//           answer is read. The same client measures nginx and Surge, so their ratio is fair.
//           --mode=get repeats GET --url (with --paths, GETs each path of a file in turn on
//           --url's host); --mode=add-to-cart first creates one cart per
//           connection (POST /api/v1/carts, not measured), then PUTs
//           /api/v1/carts/{cart}/items/{--sku} with qty alternating 1 and 2: every request
//           changes a hold on the SKU (a durable journal event) and the cart (a Redis write).
//           --cpu-pid: the server's CPU-seconds and context switches over the measured window,
//           from /proc, per request.
// failover  kill -9 of a process (--kill-pid) while PUTs of --sku go to a survivor every
//           --interval; the time from the kill to the first 200.

#include <utility> // before Boost.Asio, which uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "common.hpp"
#include "surge/cluster/shard_table.hpp"
#include "surge/net/beast.hpp"
#include "surge/net/json.hpp"
#include "surge/tools/cluster_rows.hpp"

namespace surge::bench {

namespace {

using namespace std::chrono_literals;

/// http://host:port/path with host 127.x.y.z or localhost: only loopback targets.
struct url_parts {
  std::string host;
  std::string address;
  uint16_t port = 80;
  std::string path = "/";
};

url_parts parse_url(const std::string& flag, const std::string& url) {
  if (!starts_with(url, "http://")) {
    throw bad_flag("--" + flag + " expects http://127.0.0.1:PORT/..., got '" + url + "'");
  }
  url_parts u;
  auto rest = url.substr(7);
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    u.path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    u.port = static_cast<uint16_t>(parse_int(flag + " port", rest.substr(colon + 1), 1, 65535));
    rest = rest.substr(0, colon);
  }
  u.host = rest;
  u.address = rest == "localhost" ? "127.0.0.1" : rest;
  boost::system::error_code ec;
  const auto a = asio::ip::make_address_v4(u.address, ec);
  if (ec || (a.to_uint() >> 24) != 127) {
    throw bad_flag("--" + flag + ": only loopback targets (127.0.0.0/8, localhost), got '" + url +
                   "'");
  }
  return u;
}

std::string host_header(const url_parts& u) {
  return u.host + ":" + std::to_string(u.port);
}

/// The value of "name":"..." in a JSON body (no escapes in the ids this reads).
std::string json_string_field(const std::string& body, const std::string& name) {
  const auto key = "\"" + name + "\":\"";
  const auto at = body.find(key);
  if (at == std::string::npos) {
    return {};
  }
  const auto from = at + key.size();
  const auto to = body.find('"', from);
  return to == std::string::npos ? std::string{} : body.substr(from, to - from);
}

std::string put_item_request(const url_parts& u, const std::string& cart, const std::string& sku,
                             int qty) {
  const std::string body = "{\"qty\":" + std::to_string(qty) + "}";
  return "PUT /api/v1/carts/" + cart + "/items/" + sku + " HTTP/1.1\r\nHost: " + host_header(u) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: keep-alive\r\n\r\n" + body;
}

// ------------------------------------------------------------------------------ http load

struct http_options {
  std::string url = "http://127.0.0.1:8080/healthz";
  std::string mode = "get";
  std::string sku;
  std::string label;
  int connections = 1000;
  int threads = 1;
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds warmup{2000};
  std::vector<int> cpu_pids; ///< --cpu-pid: the server's processes, sampled from /proc
  std::string paths_file;    ///< --paths: GET these targets in turn (mode get)
  std::string json_path;
};

constexpr const char* http_usage =
    R"(usage: surge-bench http --url=http://127.0.0.1:PORT/PATH [--mode=get|add-to-cart] [--sku=SKU]
                        [--connections=1000] [--threads=1] [--duration=10s] [--warmup=2s]
                        [--cpu-pid=PID[,PID...]] [--paths=FILE] [--label=TEXT] [--json=FILE]

Closed loop over --connections keep-alive connections (no think time), loopback targets only.
  --mode=get          GET --url again and again
  --paths=FILE        (mode get) GET the targets of FILE, one per line ("/api/v1/search?q=x"),
                      in turn over all connections, on --url's host and port
  --mode=add-to-cart  --url is the storefront (http://127.0.0.1:8080); each connection creates a
                      cart (POST /api/v1/carts, not measured), then PUTs
                      /api/v1/carts/{cart}/items/{--sku} {"qty":1|2} alternately (each request
                      moves a hold on the SKU by one unit)
  --cpu-pid=PID,...   the server's processes (e.g. a surge-node, or nginx's workers): reads
                      utime+stime (/proc/PID/stat, every thread) and the context switches
                      (/proc/PID/task/*/status) at the start and the end of the measured window
                      and prints their CPU-seconds, CPU per request and switches per request
Prints requests/s (2xx answers completed in the measured window), p50/p90/p99/p99.9/max,
statuses and errors; exit 1 when any answer is not 2xx, a connection fails or a --cpu-pid
cannot be read (e.g. the process exited).
)";

/// What /proc says about a set of processes at one moment, summed over them.
struct proc_sample {
  uint64_t ticks = 0;    ///< utime + stime (clock ticks) of every thread, exited ones included
  uint64_t switches = 0; ///< voluntary + nonvoluntary context switches of the live threads
};

/// Reads `pids` from /proc: nullopt, with the reason in `error`, when one cannot be read (it
/// exited or is not ours to read). Blocking file reads: call it from the bench's own threads.
std::optional<proc_sample> read_proc_or_throw(const std::vector<int>& pids, std::string& error) {
  proc_sample s;
  for (const int pid : pids) {
    const auto dir = "/proc/" + std::to_string(pid);
    std::ifstream stat{dir + "/stat"};
    std::string line;
    if (!stat || !std::getline(stat, line)) {
      error = "pid " + std::to_string(pid) + " cannot be read (exited?)";
      return std::nullopt;
    }
    // "pid (comm) state ...": comm may hold spaces and parentheses; fields 14 and 15 (utime,
    // stime) are the 12th and 13th after the last ')'.
    const auto close = line.rfind(')');
    std::istringstream fields{close == std::string::npos ? std::string{} : line.substr(close + 1)};
    std::string field;
    uint64_t utime = 0;
    uint64_t stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) {
        utime = std::stoull(field);
      } else if (i == 15) {
        stime = std::stoull(field);
      }
    }
    if (!fields) {
      error = "pid " + std::to_string(pid) + ": unexpected " + dir + "/stat";
      return std::nullopt;
    }
    s.ticks += utime + stime;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator{dir + "/task", ec}) {
      std::ifstream status{task.path() / "status"};
      while (std::getline(status, line)) { // a thread that just exited reads as empty
        if (starts_with(line, "voluntary_ctxt_switches:") ||
            starts_with(line, "nonvoluntary_ctxt_switches:")) {
          s.switches += std::stoull(line.substr(line.find(':') + 1));
        }
      }
    }
    if (ec) {
      error = "pid " + std::to_string(pid) + ": " + dir + "/task: " + ec.message();
      return std::nullopt;
    }
  }
  return s;
}

std::optional<proc_sample> read_proc(const std::vector<int>& pids, std::string& error) {
  try {
    return read_proc_or_throw(pids, error);
  } catch (const std::exception& e) { // a number that is not one: report, do not crash
    error = std::string{"cannot parse /proc: "} + e.what();
    return std::nullopt;
  }
}

/// The server's CPU over the measured window (--cpu-pid).
struct cpu_window {
  std::optional<proc_sample> start;
  std::optional<proc_sample> end;
  std::string error; ///< why a sample is missing ("" when both are there)

  bool ok() const { return start && end && error.empty(); }
  double seconds() const {
    return ok() ? static_cast<double>(end->ticks - start->ticks) /
                      static_cast<double>(::sysconf(_SC_CLK_TCK))
                : 0;
  }
};

/// Samples `pids` at `p.measure_from` and `p.measure_until` (on the calling thread).
void sample_cpu(const std::vector<int>& pids, const phases& p, cpu_window& out) {
  sleep_until(p.measure_from);
  if (interrupted().load()) {
    out.error = "interrupted";
    return;
  }
  out.start = read_proc(pids, out.error);
  if (!out.start) {
    return;
  }
  sleep_until(p.measure_until);
  if (interrupted().load()) {
    out.error = "interrupted";
    return;
  }
  out.end = read_proc(pids, out.error);
}

/// --NAME=D: a duration up to 600s (at least `least`) into `out`.
cli::flag duration_flag(const char* name, std::chrono::milliseconds& out,
                        std::chrono::milliseconds least, const char* example) {
  return {name, cli::takes::value,
          [name, &out, least, example](const std::optional<std::string>& v) {
            std::chrono::milliseconds d{0};
            if (!config::parse_duration(*v, d) || d < least || d > max_duration) {
              throw bad_flag(std::string{"--"} + name + " expects a duration up to 600s" + example +
                             ", got '" + *v + "'");
            }
            out = d;
          }};
}

/// --NAME=URL: a loopback http:// URL into `out`.
cli::flag url_flag(const char* name, std::string& out) {
  return {name, cli::takes::value, [name, &out](const std::optional<std::string>& v) {
            parse_url(name, *v);
            out = *v;
          }};
}

std::optional<http_options> parse_http(const std::vector<std::string>& args) {
  http_options o;
  const std::vector<cli::flag> flags = {
      url_flag("url", o.url),
      {"mode", cli::takes::value,
       [&o](const std::optional<std::string>& v) {
         if (*v != "get" && *v != "add-to-cart") {
           throw bad_flag("--mode expects get or add-to-cart, got '" + *v + "'");
         }
         o.mode = *v;
       }},
      {"sku", cli::takes::value, cli::assign(o.sku)},
      {"label", cli::takes::value, cli::assign(o.label)},
      int_flag("connections", o.connections, 1, 20000),
      int_flag("threads", o.threads, 1, 8),
      duration_flag("duration", o.duration, std::chrono::seconds{1}, " (e.g. 10s)"),
      duration_flag("warmup", o.warmup, std::chrono::milliseconds{0}, " (e.g. 10s)"),
      {"cpu-pid", cli::takes::value,
       [&o](const std::optional<std::string>& v) {
         o.cpu_pids.clear();
         for (const auto& pid : tools::cli::split_list(*v)) {
           o.cpu_pids.push_back(parse_int("cpu-pid", pid, 1, 1 << 30));
         }
       }},
      {"paths", cli::takes::value, cli::assign(o.paths_file)},
      json_flag(o),
  };
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  if (!o.paths_file.empty() && o.mode != "get") {
    throw bad_flag("--paths is for --mode=get");
  }
  if (!o.paths_file.empty() && !std::ifstream{o.paths_file}) {
    throw bad_flag("--paths: cannot read " + o.paths_file);
  }
  if (o.mode == "add-to-cart" && o.sku.empty()) {
    throw bad_flag("--mode=add-to-cart needs --sku=SKU");
  }
  return o;
}

struct worker;

/// One keep-alive connection of the closed loop.
struct connection : std::enable_shared_from_this<connection> {
  connection(worker& w, asio::io_context& ioc)
      : w_(w)
      , sock_(ioc) {}

  void start();
  void on_connect(const boost::system::error_code& ec);
  void send(std::string* req);
  void on_read(const boost::system::error_code& ec);
  void close() {
    boost::system::error_code ignored;
    sock_.close(ignored);
  }

  worker& w_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::string requests_[2]; ///< the measured requests, sent alternately
  std::string* current_ = nullptr;
  int flip_ = 0;
  bool setup_ = false; ///< the request in flight is the cart creation
  clock::time_point t0_;
};

struct http_shared {
  http_options o;
  url_parts u;
  tcp::endpoint ep;
  std::string get_request;
  std::vector<std::string> path_requests; ///< --paths: one GET per line of the file
  std::atomic<uint64_t> next_path{0};     ///< the next of path_requests to send
  std::string create_request;
  phases p;
  std::atomic<uint64_t> measured{0};
  std::atomic<int> ready{0};  ///< connections set up
  std::atomic<int> failed{0}; ///< connections that could not be set up
  std::atomic<bool> go{false};
};

/// One thread's connections and what they counted: ok and measured are 2xx answers, errors
/// non-2xx answers and transport errors.
struct worker : client_figures {
  explicit worker(http_shared& s)
      : sh(s) {}

  http_shared& sh;
  asio::io_context ioc{1};
  std::vector<std::shared_ptr<connection>> conns;
  std::map<int, uint64_t> statuses;
};

void connection::start() {
  auto self = shared_from_this();
  sock_.async_connect(w_.sh.ep,
                      [self](const boost::system::error_code& ec) { self->on_connect(ec); });
}

void connection::on_connect(const boost::system::error_code& ec) {
  if (ec) {
    w_.failed("connect: " + ec.message());
    w_.sh.failed.fetch_add(1);
    return;
  }
  sock_.set_option(tcp::no_delay{true});
  if (w_.sh.o.mode == "add-to-cart") {
    setup_ = true;
    send(&w_.sh.create_request);
  } else {
    requests_[0] = w_.sh.get_request;
    requests_[1] = w_.sh.get_request;
    w_.sh.ready.fetch_add(1);
    send(nullptr); // waits for the go signal: the clock starts when every connection is up
  }
}

void connection::send(std::string* req) {
  auto self = shared_from_this();
  if (req == nullptr) {
    if (!w_.sh.go.load(std::memory_order_acquire)) {
      // Not started yet: look again in a millisecond.
      auto t = std::make_shared<asio::steady_timer>(sock_.get_executor(), 1ms);
      t->async_wait([self, t](const boost::system::error_code&) { self->send(nullptr); });
      return;
    }
    if (clock::now() >= w_.sh.p.measure_until || interrupted().load(std::memory_order_relaxed)) {
      close();
      return;
    }
    if (w_.sh.path_requests.empty()) {
      req = &requests_[flip_];
      flip_ ^= 1;
    } else {
      const auto i = w_.sh.next_path.fetch_add(1, std::memory_order_relaxed);
      req = &w_.sh.path_requests[i % w_.sh.path_requests.size()];
    }
  }
  current_ = req;
  parser_.emplace();
  parser_->body_limit(1 << 20);
  t0_ = clock::now();
  asio::async_write(sock_, asio::buffer(*req),
                    [self](const boost::system::error_code& ec, std::size_t) {
                      if (ec) {
                        self->w_.failed("write: " + ec.message());
                        self->close();
                        return;
                      }
                      http::async_read(self->sock_, self->buf_, *self->parser_,
                                       [self](const boost::system::error_code& e, std::size_t) {
                                         self->on_read(e);
                                       });
                    });
}

void connection::on_read(const boost::system::error_code& ec) {
  const auto t1 = clock::now();
  if (ec) {
    w_.failed("read: " + ec.message());
    if (setup_) {
      w_.sh.failed.fetch_add(1);
    }
    close();
    return;
  }
  const auto& res = parser_->get();
  const int status = res.result_int();
  if (setup_) {
    setup_ = false;
    const auto cart = json_string_field(res.body(), "cart_id");
    if (status != 201 || cart.empty()) {
      w_.failed("POST /api/v1/carts answered " + std::to_string(status));
      w_.sh.failed.fetch_add(1);
      close();
      return;
    }
    requests_[0] = put_item_request(w_.sh.u, cart, w_.sh.o.sku, 1);
    requests_[1] = put_item_request(w_.sh.u, cart, w_.sh.o.sku, 2);
    w_.sh.ready.fetch_add(1);
    send(nullptr);
    return;
  }
  ++w_.statuses[status];
  if (status >= 200 && status < 300) {
    w_.succeeded(w_.sh.p, t0_, t1, w_.sh.measured);
  } else {
    w_.failed("HTTP " + std::to_string(status) + ": " + res.body().substr(0, 200));
  }
  if (!res.keep_alive()) {
    w_.failed("the server closed the connection");
    close();
    return;
  }
  send(nullptr);
}

int run_http(const http_options& o) {
  http_shared sh;
  sh.o = o;
  sh.u = parse_url("url", o.url);
  sh.ep = tcp::endpoint{asio::ip::make_address_v4(sh.u.address), sh.u.port};
  sh.get_request = "GET " + sh.u.path + " HTTP/1.1\r\nHost: " + host_header(sh.u) +
                   "\r\nConnection: keep-alive\r\n\r\n";
  if (!o.paths_file.empty()) {
    std::ifstream in{o.paths_file};
    if (!in) {
      throw bad_flag("--paths: cannot read " + o.paths_file);
    }
    for (std::string path; std::getline(in, path);) {
      if (!path.empty() && path.front() == '/') {
        sh.path_requests.push_back("GET " + path + " HTTP/1.1\r\nHost: " + host_header(sh.u) +
                                   "\r\nConnection: keep-alive\r\n\r\n");
      }
    }
    if (sh.path_requests.empty()) {
      throw bad_flag("--paths: no target (a line starting with '/') in " + o.paths_file);
    }
  }
  sh.create_request = "POST /api/v1/carts HTTP/1.1\r\nHost: " + host_header(sh.u) +
                      "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                      "Connection: keep-alive\r\n\r\n{}";
  rlimit fds{};
  if (::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max &&
      fds.rlim_cur < static_cast<rlim_t>(o.connections) + 100) {
    fds.rlim_cur = std::min<rlim_t>(fds.rlim_max, static_cast<rlim_t>(o.connections) + 1000);
    ::setrlimit(RLIMIT_NOFILE, &fds);
  }
  const std::string label = o.label.empty() ? o.url : o.label;
  std::vector<std::unique_ptr<worker>> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.push_back(std::make_unique<worker>(sh));
  }
  // Far future until every connection is up; then the phases start.
  sh.p = phases::starting_now(0ms, 24h);
  for (int i = 0; i < o.connections; ++i) {
    auto& w = *workers[static_cast<std::size_t>(i % o.threads)];
    w.conns.push_back(std::make_shared<connection>(w, w.ioc));
  }
  std::cerr << "[" << label << "] connecting " << o.connections << " connections (" << o.threads
            << " client thread(s), mode " << o.mode << ")\n";
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&w] {
      // Connect in steps of 100 so that the listen backlog does not overflow.
      for (std::size_t i = 0; i < w->conns.size(); ++i) {
        w->conns[i]->start();
        if (i % 100 == 99) {
          w->ioc.run_for(20ms);
          w->ioc.restart();
        }
      }
      w->ioc.run();
    });
  }
  const auto connect_deadline = clock::now() + 60s;
  while (sh.ready.load() + sh.failed.load() < o.connections && clock::now() < connect_deadline &&
         !interrupted().load()) {
    std::this_thread::sleep_for(10ms);
  }
  const bool all_up = sh.ready.load() == o.connections;
  if (all_up) {
    sh.p = phases::starting_now(o.warmup, o.duration);
  } else {
    sh.p = phases::starting_now(0ms, 0ms); // stop at once
    std::cerr << "[" << label << "] only " << sh.ready.load() << " of " << o.connections
              << " connections are up\n";
  }
  sh.go.store(true, std::memory_order_release);
  cpu_window cpu;
  std::thread cpu_sampler;
  if (all_up && !o.cpu_pids.empty()) {
    cpu_sampler = std::thread{[&] { sample_cpu(o.cpu_pids, sh.p, cpu); }};
  }
  if (all_up) {
    report_progress(label, sh.p, sh.measured, "requests");
  }
  if (cpu_sampler.joinable()) {
    cpu_sampler.join();
  } else if (!o.cpu_pids.empty()) {
    cpu.error = "no measured window";
  }
  // Closed loop: every connection stops after its answer past the window; bound the wait.
  auto wait_stopped = [&](clock::time_point until) {
    for (auto& w : workers) {
      while (!w->ioc.stopped() && clock::now() < until) {
        std::this_thread::sleep_for(10ms);
      }
    }
  };
  wait_stopped(clock::now() + 30s);
  for (auto& w : workers) {
    asio::post(w->ioc, [&w] {
      for (auto& c : w->conns) {
        c->close();
      }
    });
  }
  wait_stopped(clock::now() + 5s);
  for (auto& w : workers) {
    w->ioc.stop();
  }
  for (auto& t : threads) {
    t.join();
  }
  run_result r;
  r.system = label;
  r.seconds = sh.p.seconds();
  std::map<int, uint64_t> statuses;
  for (auto& w : workers) {
    r.add(*w);
    for (const auto& [k, v] : w->statuses) {
      statuses[k] += v;
    }
  }
  std::cout
      << "\n| target | connections | requests/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
         "\n|---|---:|---:|---:|---:|---:|---:|---:|\n| "
      << label << " | " << o.connections << " | "
      << grouped(static_cast<uint64_t>(r.per_second() + 0.5)) << " | " << fixed(r.p_ms(50), 2)
      << " | " << fixed(r.p_ms(90), 2) << " | " << fixed(r.p_ms(99), 2) << " | "
      << fixed(r.p_ms(99.9), 2) << " | " << fixed(static_cast<double>(r.latency.max()) / 1e6, 2)
      << " |\n";
  std::string status_text;
  for (const auto& [k, v] : statuses) {
    status_text += (status_text.empty() ? "" : ", ") + std::to_string(k) + ": " + grouped(v);
  }
  std::cout << "statuses " << status_text << "; " << r.errors << " errors"
            << (r.first_error.empty() ? "" : " (first: " + r.first_error + ")") << "\n";
  std::string pid_text;
  for (const int pid : o.cpu_pids) {
    pid_text += (pid_text.empty() ? "" : ",") + std::to_string(pid);
  }
  const double cpu_s = cpu.seconds();
  const double requests = static_cast<double>(std::max<uint64_t>(r.measured, 1));
  const double cpu_us = cpu_s * 1e6 / requests;
  const double switches =
      cpu.ok() ? static_cast<double>(cpu.end->switches - cpu.start->switches) / requests : 0;
  if (!o.cpu_pids.empty()) {
    if (cpu.ok()) {
      std::cout << "server CPU (pid " << pid_text << ", measured window): " << fixed(cpu_s, 2)
                << " s, " << fixed(100 * cpu_s / r.seconds, 0) << " % of one core; "
                << fixed(cpu_us, 1) << " us CPU and " << fixed(switches, 2)
                << " context switches per request\n";
    } else {
      std::cout << "ERROR: server CPU (pid " << pid_text << "): " << cpu.error << "\n";
    }
  }
  const bool cpu_ok = o.cpu_pids.empty() || cpu.ok();
  const bool ok = all_up && r.errors == 0 && r.measured > 0 && cpu_ok;
  std::cout << (ok ? "OK: every answer was 2xx\n"
                   : (cpu_ok ? "FAIL: errors or connections not up\n"
                             : "FAIL: the server's CPU could not be read\n"));
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"label\": \"" << json_escape(label) << "\",\n  \"url\": \""
            << json_escape(o.url) << "\",\n  \"mode\": \"" << o.mode
            << "\",\n  \"paths\": " << sh.path_requests.size()
            << ",\n  \"connections\": " << o.connections << ",\n  \"threads\": " << o.threads
            << ",\n  \"seconds\": " << fixed(r.seconds, 3)
            << ",\n  \"requests_per_s\": " << fixed(r.per_second(), 1)
            << ",\n  \"p50_ms\": " << fixed(r.p_ms(50), 3)
            << ",\n  \"p90_ms\": " << fixed(r.p_ms(90), 3)
            << ",\n  \"p99_ms\": " << fixed(r.p_ms(99), 3)
            << ",\n  \"p999_ms\": " << fixed(r.p_ms(99.9), 3)
            << ",\n  \"max_ms\": " << fixed(static_cast<double>(r.latency.max()) / 1e6, 3)
            << ",\n  \"measured\": " << r.measured << ",\n  \"errors\": " << r.errors
            << ",\n  \"first_error\": \"" << json_escape(r.first_error) << "\"";
    if (!o.cpu_pids.empty()) {
      members << ",\n  \"server_pids\": \"" << pid_text << "\"";
      if (cpu.ok()) {
        members << ",\n  \"server_cpu_seconds\": " << fixed(cpu_s, 3)
                << ",\n  \"server_cpu_us_per_request\": " << fixed(cpu_us, 2)
                << ",\n  \"server_context_switches_per_request\": " << fixed(switches, 3);
      } else {
        members << ",\n  \"server_cpu_error\": \"" << json_escape(cpu.error) << "\"";
      }
    }
    write_json_file(o.json_path, "http", members.str(), ok);
  }
  return ok ? 0 : 1;
}

// ------------------------------------------------------------------------------ failover

struct failover_options {
  std::string target;
  std::string admin;
  std::string sku;
  std::string victim; ///< node id of the process killed
  int kill_pid = 0;
  std::chrono::milliseconds interval{20};
  std::chrono::milliseconds max_wait{30000};
  std::string json_path;
};

constexpr const char* failover_usage =
    R"(usage: surge-bench failover --target=URL --admin=URL --sku=SKU --victim=NODE_ID --kill-pid=PID
                            [--interval=20ms] [--max-wait=30s] [--json=FILE]

--target is a surviving node's storefront, --admin its admin API. Creates a cart on --target
whose shard is not owned by --victim, checks that a PUT of --sku succeeds, sends SIGKILL to
--kill-pid (the victim's surge-node), then starts a PUT /api/v1/carts/{cart}/items/{sku} every
--interval (each on its own connection, 5 s timeout) and prints the time from the kill to the
first 200 answer. Exit 1 when none comes within --max-wait.
)";

/// One blocking request with a timeout (for set-up): status and body; status 0 on failure.
std::pair<int, std::string> blocking_request(const url_parts& u, const std::string& method,
                                             const std::string& path, const std::string& body) {
  asio::io_context ioc;
  beast::tcp_stream s{ioc};
  s.expires_after(5s);
  int status = 0;
  std::string out;
  http::request<http::string_body> req{method == "PUT"    ? http::verb::put
                                       : method == "POST" ? http::verb::post
                                                          : http::verb::get,
                                       path, 11};
  req.set(http::field::host, host_header(u));
  if (!body.empty() || method != "GET") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  s.async_connect(tcp::endpoint{asio::ip::make_address_v4(u.address), u.port},
                  [&](const boost::system::error_code& ec) {
                    if (ec) {
                      return;
                    }
                    http::async_write(s, req, [&](const boost::system::error_code& e, std::size_t) {
                      if (e) {
                        return;
                      }
                      http::async_read(s, buf, res,
                                       [&](const boost::system::error_code& e2, std::size_t) {
                                         if (!e2) {
                                           status = res.result_int();
                                           out = res.body();
                                         }
                                       });
                    });
                  });
  ioc.run();
  return {status, out};
}

std::optional<failover_options> parse_failover(const std::vector<std::string>& args) {
  failover_options o;
  const std::vector<cli::flag> flags = {
      url_flag("target", o.target),
      url_flag("admin", o.admin),
      {"sku", cli::takes::value, cli::assign(o.sku)},
      {"victim", cli::takes::value, cli::assign(o.victim)},
      int_flag("kill-pid", o.kill_pid, 2, 1 << 30),
      duration_flag("interval", o.interval, std::chrono::milliseconds{1}, ""),
      duration_flag("max-wait", o.max_wait, std::chrono::milliseconds{1}, ""),
      json_flag(o),
  };
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  if (o.target.empty() || o.admin.empty() || o.sku.empty() || o.victim.empty() || o.kill_pid == 0) {
    throw bad_flag("--target, --admin, --sku, --victim and --kill-pid are required");
  }
  return o;
}

/// Shard -> owner from GET /admin/v1/shards.
std::vector<std::string> shard_owners(const url_parts& admin) {
  const auto [status, body] = blocking_request(admin, "GET", "/admin/v1/shards", "");
  if (status != 200) {
    throw std::runtime_error("GET /admin/v1/shards answered " + std::to_string(status));
  }
  auto parsed = net::json::parse(body);
  const auto* answer = std::get_if<net::json::value>(&parsed);
  if (answer == nullptr) {
    throw std::runtime_error("GET /admin/v1/shards: not JSON");
  }
  std::vector<std::string> owners;
  for (const auto& row : tools::read_shards(*answer)) {
    if (row.shard < 0 || row.shard >= 65536) { // beyond cluster.shards' bounds: not a shard
      continue;
    }
    const auto shard = static_cast<std::size_t>(row.shard);
    if (owners.size() <= shard) {
      owners.resize(shard + 1);
    }
    owners[shard] = row.owner;
  }
  return owners;
}

int run_failover(const failover_options& o) {
  const auto target = parse_url("target", o.target);
  const auto admin = parse_url("admin", o.admin);
  const auto owners = shard_owners(admin);
  if (owners.empty()) {
    throw std::runtime_error("no shard map");
  }
  std::string cart;
  for (int i = 0; i < 100 && cart.empty(); ++i) {
    const auto [status, body] = blocking_request(target, "POST", "/api/v1/carts", "{}");
    const auto id = json_string_field(body, "cart_id");
    if (status != 201 || id.empty()) {
      throw std::runtime_error("POST /api/v1/carts answered " + std::to_string(status));
    }
    const auto shard = cluster::shard_of("cart:" + id, static_cast<uint32_t>(owners.size()));
    if (owners[shard] != o.victim) {
      cart = id;
    }
  }
  if (cart.empty()) {
    throw std::runtime_error("every cart landed on the victim's shards");
  }
  const auto path = "/api/v1/carts/" + cart + "/items/" + o.sku;
  if (auto [status, body] = blocking_request(target, "PUT", path, "{\"qty\":1}"); status != 200) {
    throw std::runtime_error("the PUT before the kill answered " + std::to_string(status) + " " +
                             body);
  }
  std::cerr << "[failover] cart " << cart << " on a survivor; kill -9 " << o.kill_pid << " ("
            << o.victim << ")\n";

  asio::io_context ioc{1};
  const auto killed = clock::now();
  if (::kill(o.kill_pid, SIGKILL) != 0) {
    throw std::runtime_error("kill(" + std::to_string(o.kill_pid) + ") failed");
  }
  std::optional<clock::time_point> first_ok;
  std::optional<clock::time_point> first_ok_sent;
  std::map<int, uint64_t> statuses; // 0: transport error or timeout
  uint64_t sent = 0;
  const auto ep = tcp::endpoint{asio::ip::make_address_v4(target.address), target.port};
  asio::steady_timer ticker{ioc};
  std::function<void()> probe = [&] {
    if (first_ok || clock::now() - killed > o.max_wait || interrupted().load()) {
      return;
    }
    struct probe_state {
      beast::tcp_stream s;
      std::string req;
      beast::flat_buffer buf;
      http::response<http::string_body> res;
      clock::time_point t0;
      explicit probe_state(asio::io_context& c)
          : s(c) {}
    };
    auto ps = std::make_shared<probe_state>(ioc);
    ps->req = put_item_request(target, cart, o.sku, static_cast<int>(sent % 2) + 1);
    ps->t0 = clock::now();
    ++sent;
    ps->s.expires_after(5s);
    auto done = [&, ps](int status) {
      ++statuses[status];
      if (status == 200 && !first_ok) {
        first_ok = clock::now();
        first_ok_sent = ps->t0;
        ticker.cancel();
      }
    };
    ps->s.async_connect(ep, [ps, done](const boost::system::error_code& ec) {
      if (ec) {
        return done(0);
      }
      asio::async_write(ps->s, asio::buffer(ps->req),
                        [ps, done](const boost::system::error_code& e, std::size_t) {
                          if (e) {
                            return done(0);
                          }
                          http::async_read(
                              ps->s, ps->buf, ps->res,
                              [ps, done](const boost::system::error_code& e2, std::size_t) {
                                done(e2 ? 0 : ps->res.result_int());
                              });
                        });
    });
    ticker.expires_at(ticker.expiry() + o.interval);
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) {
        probe();
      }
    });
  };
  ticker.expires_at(asio::steady_timer::clock_type::now());
  probe();
  std::thread runner{[&] { ioc.run_for(o.max_wait + 10s); }};
  runner.join();
  std::string status_text;
  for (const auto& [k, v] : statuses) {
    status_text += (status_text.empty() ? "" : ", ") + (k == 0 ? "no answer" : std::to_string(k)) +
                   ": " + std::to_string(v);
  }
  const double ms =
      first_ok ? std::chrono::duration<double>(*first_ok - killed).count() * 1000.0 : -1;
  const double sent_ms =
      first_ok ? std::chrono::duration<double>(*first_ok_sent - killed).count() * 1000.0 : -1;
  if (first_ok) {
    std::cout << "failover: first successful reservation " << fixed(ms, 0)
              << " ms after kill -9 (that probe was sent at " << fixed(sent_ms, 0) << " ms); "
              << sent << " probes (" << status_text << ")\n";
  } else {
    std::cout << "FAIL: no successful reservation within "
              << std::chrono::duration<double>(o.max_wait).count() << " s; " << sent << " probes ("
              << status_text << ")\n";
  }
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"victim\": \"" << json_escape(o.victim) << "\",\n  \"sku\": \""
            << json_escape(o.sku) << "\",\n  \"failover_ms\": " << fixed(ms, 1)
            << ",\n  \"probe_sent_ms\": " << fixed(sent_ms, 1) << ",\n  \"probes\": " << sent
            << ",\n  \"statuses\": \"" << json_escape(status_text) << "\"";
    write_json_file(o.json_path, "failover", members.str(), first_ok.has_value());
  }
  return first_ok ? 0 : 1;
}

// ------------------------------------------------------------------------------ streams

struct streams_options {
  std::string url;   ///< the node's storefront
  std::string admin; ///< the node's admin API (open: no token)
  int pid = 0;       ///< the node's process
  std::string sku = "stream-bench";
  int count = 10000;
  int stock = 1000;
  std::chrono::milliseconds max_wait{120000};
  std::string json_path;
};

constexpr const char* streams_usage =
    R"(usage: surge-bench streams --url=http://127.0.0.1:PORT --admin=http://127.0.0.1:PORT --pid=PID
                           [--count=10000] [--sku=stream-bench] [--stock=1000] [--max-wait=120s]
                           [--json=FILE]

The node's RSS per open stock stream. Against a running surge-node (--url its storefront,
--admin its admin API without a token, --pid its process): creates --sku with --stock units,
reads the node's VmRSS, opens --count GET /api/v1/products/{sku}/stock/stream at once (the soft
RLIMIT_NOFILE raised to the hard one; the node needs as many descriptors), waits until every
stream got its first event, reads VmRSS again: per stream = (after - before) / count. Then
changes the stock once and counts the streams that get the new figure (and how long the last
one took). Exit 1 when a stream fails or misses an event within --max-wait.
)";

std::optional<streams_options> parse_streams(const std::vector<std::string>& args) {
  streams_options o;
  const std::vector<cli::flag> flags = {
      url_flag("url", o.url),
      url_flag("admin", o.admin),
      int_flag("pid", o.pid, 1, 1 << 30),
      {"sku", cli::takes::value, cli::assign(o.sku)},
      int_flag("count", o.count, 1, 100000),
      int_flag("stock", o.stock, 2, 1000000),
      duration_flag("max-wait", o.max_wait, std::chrono::seconds{1}, " (e.g. 120s)"),
      json_flag(o),
  };
  if (!parse_flags(args, flags)) {
    return std::nullopt;
  }
  if (o.url.empty() || o.admin.empty() || o.pid == 0) {
    throw bad_flag("--url, --admin and --pid are required");
  }
  return o;
}

/// One stock stream of the bench: reads its bytes and notes when it saw the figures it waits
/// for (each event arrives whole in one chunk; `tail` keeps the end of the bytes read so far so
/// that an event split across reads is still seen).
struct stream_conn {
  explicit stream_conn(asio::io_context& ioc)
      : socket(ioc) {}
  tcp::socket socket;
  std::array<char, 2048> buf{};
  std::string tail;
  bool first = false;   ///< got its first event
  bool changed = false; ///< got the changed figure
  bool failed = false;
};

struct streams_run {
  asio::io_context ioc;
  std::vector<std::unique_ptr<stream_conn>> conns;
  std::string request;
  std::string first_id;   ///< "id: N\n" of the first event
  std::string changed_id; ///< "id: M\n" after the change
  std::size_t firsts = 0, changes = 0, failures = 0;
  std::string first_error;
  std::chrono::steady_clock::time_point change_sent, last_change;
  int next = 0;       ///< next connection to open
  int connecting = 0; ///< opened, no first event yet

  void fail(stream_conn& c, const std::string& why) {
    if (!c.failed) {
      c.failed = true;
      ++failures;
      if (first_error.empty()) {
        first_error = why;
      }
      if (!c.first) {
        --connecting;
        open_more();
      }
    }
  }

  /// Keeps at most 256 streams between connect and first event (the listen backlog).
  void open_more() {
    while (next < static_cast<int>(conns.size()) && connecting < 256) {
      auto& c = *conns[static_cast<std::size_t>(next++)];
      ++connecting;
      c.socket.async_connect(endpoint, [this, &c](const boost::system::error_code& ec) {
        if (ec) {
          return fail(c, "connect: " + ec.message());
        }
        asio::async_write(c.socket, asio::buffer(request),
                          [this, &c](const boost::system::error_code& wec, std::size_t) {
                            if (wec) {
                              return fail(c, "write: " + wec.message());
                            }
                            read(c);
                          });
      });
    }
  }

  void read(stream_conn& c) {
    c.socket.async_read_some(
        asio::buffer(c.buf), [this, &c](const boost::system::error_code& ec, std::size_t n) {
          if (ec) {
            return fail(c, "read: " + ec.message());
          }
          c.tail.append(c.buf.data(), n);
          if (!c.first && c.tail.rfind("HTTP/1.1 200", 0) != 0 && c.tail.size() >= 12) {
            return fail(c, "answered " + c.tail.substr(0, c.tail.find('\r')));
          }
          if (!c.first && c.tail.find(first_id) != std::string::npos) {
            c.first = true;
            ++firsts;
            --connecting;
            open_more();
          }
          if (!c.changed && !changed_id.empty() && c.tail.find(changed_id) != std::string::npos) {
            c.changed = true;
            ++changes;
            last_change = std::chrono::steady_clock::now();
          }
          if (c.tail.size() > 4096) {
            c.tail.erase(0, c.tail.size() - 64);
          }
          read(c);
        });
  }

  /// Runs the I/O until `done()` or `limit` passes; true when done.
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      ioc.run_for(50ms);
    }
    return done();
  }

  tcp::endpoint endpoint;
};

int run_streams(const streams_options& o) {
  rlimit fds{};
  if (::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &fds);
  }
  const auto store = parse_url("url", o.url);
  const auto admin = parse_url("admin", o.admin);
  const std::string product = R"({"name":"Stream bench","description":"","category":"bench",)"
                              R"("price_cents":100,"currency":"EUR","per_customer_limit":0})";
  if (auto [st, body] = blocking_request(admin, "PUT", "/admin/v1/products/" + o.sku, product);
      st != 200) {
    throw std::runtime_error("PUT product answered " + std::to_string(st) + ": " + body);
  }
  const auto set_stock = [&](int n) {
    auto [st, body] = blocking_request(admin, "POST", "/admin/v1/products/" + o.sku + "/stock",
                                       "{\"set\":" + std::to_string(n) + "}");
    if (st != 200) {
      throw std::runtime_error("POST stock answered " + std::to_string(st) + ": " + body);
    }
  };
  set_stock(o.stock);

  streams_run r;
  r.endpoint = tcp::endpoint{asio::ip::make_address_v4(store.address), store.port};
  r.request = "GET /api/v1/products/" + o.sku +
              "/stock/stream HTTP/1.1\r\nHost: " + host_header(store) +
              "\r\nAccept: text/event-stream\r\n\r\n";
  r.first_id = "id: " + std::to_string(o.stock) + "\n";
  r.conns.reserve(static_cast<std::size_t>(o.count));
  for (int i = 0; i < o.count; ++i) {
    r.conns.push_back(std::make_unique<stream_conn>(r.ioc));
  }
  const auto rss_before = rss_bytes(o.pid);
  const auto t_open = std::chrono::steady_clock::now();
  r.open_more();
  const auto all_first = r.run_until(
      [&] { return r.firsts + r.failures >= static_cast<std::size_t>(o.count); }, o.max_wait);
  const double open_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();
  // Let the node's I/O settle (the last heads and first events written), then read its RSS.
  r.run_until([] { return false; }, 1000ms);
  const auto rss_after = rss_bytes(o.pid);
  const double per_stream = r.firsts > 0
                                ? static_cast<double>(rss_after - std::min(rss_after, rss_before)) /
                                      static_cast<double>(r.firsts)
                                : 0.0;

  // One change: every stream should get the new figure.
  r.changed_id = "id: " + std::to_string(o.stock - 1) + "\n";
  r.change_sent = std::chrono::steady_clock::now();
  set_stock(o.stock - 1);
  r.run_until([&] { return r.changes + r.failures >= static_cast<std::size_t>(o.count); },
              o.max_wait);
  const double change_ms =
      r.changes > 0
          ? std::chrono::duration<double, std::milli>(r.last_change - r.change_sent).count()
          : 0.0;
  const bool ok = all_first && r.failures == 0 && r.changes == static_cast<std::size_t>(o.count);
  std::cout << "streams: " << r.firsts << " of " << o.count << " open with their first event in "
            << fixed(open_s, 1) << " s\n"
            << "node RSS (pid " << o.pid
            << "): " << fixed(static_cast<double>(rss_before) / 1048576.0, 1) << " MiB before, "
            << fixed(static_cast<double>(rss_after) / 1048576.0, 1)
            << " MiB with the streams open\n"
            << "per stream: " << fixed(per_stream / 1024.0, 2) << " KiB\n"
            << "one stock change: " << r.changes << " of " << o.count
            << " streams got it, the last " << fixed(change_ms, 1)
            << " ms after the change was sent\n";
  if (r.failures > 0) {
    std::cout << "ERROR: " << r.failures << " streams failed; first: " << r.first_error << "\n";
  }
  if (!o.json_path.empty()) {
    std::ostringstream members;
    members << ",\n  \"count\": " << o.count << ",\n  \"opened\": " << r.firsts
            << ",\n  \"open_seconds\": " << fixed(open_s, 2)
            << ",\n  \"rss_before\": " << rss_before << ",\n  \"rss_after\": " << rss_after
            << ",\n  \"per_stream_bytes\": " << fixed(per_stream, 1)
            << ",\n  \"changed\": " << r.changes << ",\n  \"change_ms\": " << fixed(change_ms, 1)
            << ",\n  \"failures\": " << r.failures << ",\n  \"first_error\": \""
            << json_escape(r.first_error) << "\"";
    write_json_file(o.json_path, "streams", members.str(), ok);
  }
  return ok ? 0 : 1;
}

} // namespace

int streams_command(const std::vector<std::string>& args) {
  return guarded("streams", streams_usage, "--help", args, parse_streams, run_streams);
}

int http_command(const std::vector<std::string>& args) {
  return guarded("http", http_usage, "--help", args, parse_http, run_http);
}

int failover_command(const std::vector<std::string>& args) {
  return guarded("failover", failover_usage, "--help", args, parse_failover, run_failover);
}

} // namespace surge::bench
