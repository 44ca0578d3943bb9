#include "paysim_process.hpp"

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "surge/net/beast.hpp"
#include "surge/net/json.hpp"

namespace surge::ptest {

namespace json = surge::net::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

http_result http_call(uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body,
                      std::vector<std::pair<std::string, std::string>> headers,
                      std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (auto& [k, v] : headers) {
    req.set(k, v);
  }
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  beast::error_code ec;
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port},
                       [&](beast::error_code e) {
                         ec = e;
                         if (ec) {
                           return;
                         }
                         http::async_write(stream, req, [&](beast::error_code e2, std::size_t) {
                           ec = e2;
                           if (ec) {
                             return;
                           }
                           http::async_read(stream, buffer, res,
                                            [&](beast::error_code e3, std::size_t) { ec = e3; });
                         });
                       });
  ioc.run();
  if (ec) {
    return {0, ec.message()};
  }
  http_result out{static_cast<int>(res.result_int()), res.body()};
  for (const auto& field : res) {
    out.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
  }
  return out;
}

std::string http_result::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, beast::string_view{name.data(), name.size()})) {
      return v;
    }
  }
  return {};
}

namespace {

using tools::read_file;

/// Starts `args` with stdout and stderr in a new file at `log_path`.
void start(tools::child& proc, const std::vector<std::string>& args, const std::string& log_path) {
  tools::child_spec spec;
  spec.argv = args;
  spec.log_path = log_path;
  spec.truncate_log = true;
  proc.start(spec);
}

std::string temp_log_path() {
  static int n = 0;
  return (std::filesystem::temp_directory_path() /
          ("surge-paysim-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".log"))
      .string();
}

} // namespace

paysim_process::paysim_process(std::vector<std::string> gateways,
                               std::vector<std::string> extra_args)
    : names_(std::move(gateways))
    , log_path_(temp_log_path()) {
  std::string list;
  for (const auto& n : names_) {
    list += (list.empty() ? "" : ",") + n + "=127.0.0.1:0";
  }
  std::vector<std::string> args{SURGE_PAYSIM_BINARY, "--gateways=" + list};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  start(proc_, args, log_path_);

  // The start lines name the bound ports; then every gateway must answer /healthz.
  const bool tls = std::any_of(extra_args.begin(), extra_args.end(),
                               [](const std::string& a) { return a.starts_with("--tls-cert="); });
  const auto deadline = steady::now() + 10s;
  ports_.assign(names_.size(), 0);
  if (tls) {
    plain_ports_.assign(names_.size(), 0);
  }
  for (;;) {
    std::istringstream lines{read_file(log_path_)};
    std::string line;
    std::size_t found = 0;
    while (std::getline(lines, line)) {
      for (std::size_t i = 0; i < names_.size(); ++i) {
        const std::string listening = "paysim: " + names_[i] + " listening on 127.0.0.1:";
        const std::string plain = "paysim: " + names_[i] + " plain on 127.0.0.1:";
        if (line.rfind(listening, 0) == 0) {
          ports_[i] = static_cast<uint16_t>(std::stoi(line.substr(listening.size())));
          ++found;
        } else if (tls && line.rfind(plain, 0) == 0) {
          plain_ports_[i] = static_cast<uint16_t>(std::stoi(line.substr(plain.size())));
          ++found;
        }
      }
    }
    if (found == names_.size() * (tls ? 2 : 1)) {
      break;
    }
    if (proc_.wait(0ms)) {
      throw std::runtime_error("surge-paysim exited at start:\n" + read_file(log_path_));
    }
    if (steady::now() >= deadline) {
      throw std::runtime_error("surge-paysim did not start in time:\n" + read_file(log_path_));
    }
    std::this_thread::sleep_for(10ms);
  }
  for (std::size_t i = 0; i < names_.size(); ++i) {
    while (http_call(plain_port(i), "GET", "/healthz", {}, {}, 1s).status != 200) {
      if (steady::now() >= deadline) {
        throw std::runtime_error("surge-paysim /healthz not ready:\n" + read_file(log_path_));
      }
      std::this_thread::sleep_for(10ms);
    }
  }
}

paysim_process::~paysim_process() {
  stop();
  std::error_code ignored;
  std::filesystem::remove(log_path_, ignored);
}

int paysim_process::stop() {
  if (!proc_.running()) {
    return -1;
  }
  const auto status = proc_.stop(10s);
  if (!status) {
    std::cout << "surge-paysim did not stop on SIGTERM; log:\n" << read_file(log_path_);
    return -1;
  }
  return tools::exit_code(*status);
}

std::string paysim_process::setting(const std::string& kind, const std::string& host) const {
  std::string out;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    out += (out.empty() ? "" : ",") + names_[i] + "=" + kind + (tls() ? "+https://" : "+http://") +
           host + ":" + std::to_string(ports_[i]);
  }
  return out;
}

namespace {

/// GET `target` on `port`: the JSON array it answers.
json::array get_array(uint16_t port, const std::string& target) {
  const auto r = http_call(port, "GET", target);
  if (r.status != 200) {
    throw std::runtime_error("GET " + target + ": " + std::to_string(r.status) + " " + r.body);
  }
  auto parsed = json::parse(r.body);
  auto* v = std::get_if<json::value>(&parsed);
  if (v == nullptr || !v->is_array()) {
    throw std::runtime_error("GET " + target + ": not a JSON array: " + r.body);
  }
  return std::move(std::get<json::array>(v->get()));
}

std::string text(const json::value& o, const char* k) {
  const json::value* m = o.find(k);
  return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
}

/// The integer member `k`, -1 when missing or not an integer.
int64_t integer(const json::value& o, const char* k) {
  const json::value* m = o.find(k);
  return m != nullptr && m->is_int() ? std::get<int64_t>(m->get()) : -1;
}

} // namespace

std::vector<logged_charge> paysim_process::charges() const {
  std::vector<logged_charge> out;
  for (const auto& e : get_array(plain_port(0), "/_charges")) {
    out.push_back({text(e, "gateway"), text(e, "idempotency_key"), integer(e, "amount_cents"),
                   text(e, "currency"), text(e, "status"), integer(e, "refunded_cents")});
  }
  return out;
}

std::vector<logged_refund> paysim_process::refunds() const {
  std::vector<logged_refund> out;
  for (const auto& e : get_array(plain_port(0), "/_refunds")) {
    out.push_back({text(e, "gateway"), text(e, "idempotency_key"),
                   text(e, "charge_idempotency_key"), integer(e, "amount_cents"),
                   text(e, "currency"), text(e, "status")});
  }
  return out;
}

void paysim_process::set_down(std::size_t i, bool down) const {
  const auto r =
      http_call(plain_port(i), "POST", "/_outage", down ? R"({"down":true})" : R"({"down":false})",
                {{"Content-Type", "application/json"}});
  if (r.status != 200) {
    throw std::runtime_error("POST /_outage: " + std::to_string(r.status) + " " + r.body);
  }
}

test_certs::test_certs() {
  static std::atomic<int> n{0};
  dir_ = (std::filesystem::temp_directory_path() /
          ("surge-test-certs-" + std::to_string(::getpid()) + "-" + std::to_string(++n)))
             .string();
  std::filesystem::create_directories(dir_);
}

test_certs::~test_certs() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void test_certs::make(const std::string& name, const std::string& addresses) {
  tools::child_spec spec;
  spec.argv = {"/bin/bash", SURGE_CERTS_SCRIPT, dir_, name + "=" + addresses};
  const auto r = tools::run(spec, 60s, true);
  if (r.timed_out || tools::exit_code(r.status) != 0) {
    throw std::runtime_error("cluster-certs.sh " + name + " failed: " + r.out);
  }
}

std::vector<std::string> test_certs::paysim_flags(const std::string& name) const {
  return {"--tls-cert=" + dir_ + "/" + name + ".pem", "--tls-key=" + dir_ + "/" + name + ".key"};
}

paysim_run run_paysim(const std::vector<std::string>& args) {
  std::vector<std::string> full{SURGE_PAYSIM_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  const std::string log = temp_log_path();
  tools::child proc;
  start(proc, full, log);
  paysim_run out;
  if (const auto status = proc.wait(10s)) {
    out.status = tools::exit_code(*status);
  } else {
    proc.kill9();
  }
  out.output = read_file(log);
  std::error_code ignored;
  std::filesystem::remove(log, ignored);
  return out;
}

int run_paysim_to_exit(const std::vector<std::string>& args) {
  return run_paysim(args).status;
}

} // namespace surge::ptest
