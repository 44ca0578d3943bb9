#include "sink_process.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "paysim_process.hpp"
#include "surge/net/json.hpp"

namespace surge::ptest {

namespace json = surge::net::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using tools::read_file;

namespace {

std::string temp_log_path() {
  static std::atomic<int> n{0};
  return (std::filesystem::temp_directory_path() /
          ("surge-webhook-sink-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n) +
           ".log"))
      .string();
}

void start(tools::child& proc, const std::vector<std::string>& args, const std::string& log_path) {
  tools::child_spec spec;
  spec.argv = args;
  spec.log_path = log_path;
  spec.truncate_log = true;
  proc.start(spec);
}

/// The JSON value `r` answered with status 200.
json::value answer_of(const http_result& r, const std::string& what) {
  if (r.status != 200) {
    throw std::runtime_error(what + ": " + std::to_string(r.status) + " " + r.body);
  }
  auto parsed = json::parse(r.body);
  auto* v = std::get_if<json::value>(&parsed);
  if (v == nullptr) {
    throw std::runtime_error(what + ": not JSON: " + r.body);
  }
  return std::move(*v);
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

sink_process::sink_process(std::vector<std::string> extra_args)
    : log_path_(temp_log_path()) {
  std::vector<std::string> args{SURGE_WEBHOOK_SINK_BINARY, "--listen=127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  start(proc_, args, log_path_);

  // The start line names the bound port; the sink accepts from before it is printed.
  const std::string listening = "listening 127.0.0.1:";
  const auto deadline = steady::now() + 10s;
  while (port_ == 0) {
    std::istringstream lines{read_file(log_path_)};
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(listening, 0) == 0) {
        port_ = static_cast<uint16_t>(std::stoi(line.substr(listening.size())));
      }
    }
    if (port_ != 0) {
      break;
    }
    if (proc_.wait(0ms)) {
      throw std::runtime_error("surge-webhook-sink exited at start:\n" + read_file(log_path_));
    }
    if (steady::now() >= deadline) {
      throw std::runtime_error("surge-webhook-sink did not start in time:\n" +
                               read_file(log_path_));
    }
    std::this_thread::sleep_for(10ms);
  }
}

sink_process::~sink_process() {
  stop();
  std::error_code ignored;
  std::filesystem::remove(log_path_, ignored);
}

int sink_process::stop() {
  if (!proc_.running()) {
    return -1;
  }
  const auto status = proc_.stop(10s);
  if (!status) {
    std::cout << "surge-webhook-sink did not stop on SIGTERM; log:\n" << read_file(log_path_);
    return -1;
  }
  return tools::exit_code(*status);
}

std::string sink_process::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::string sink_process::log() const {
  return read_file(log_path_);
}

void sink_process::set_mode(const std::string& mode,
                            std::optional<std::chrono::milliseconds> delay) const {
  std::string body = R"({"mode":)";
  json::append_quoted(body, mode);
  if (delay) {
    body += R"(,"delay_ms":)" + std::to_string(delay->count());
  }
  body += '}';
  const auto r = http_call(port_, "PUT", "/_mode", body, {{"Content-Type", "application/json"}});
  if (r.status != 200) {
    throw std::runtime_error("PUT /_mode: " + std::to_string(r.status) + " " + r.body);
  }
}

std::vector<sink_event> sink_process::events() const {
  const json::value v = answer_of(http_call(port_, "GET", "/_events"), "GET /_events");
  if (!v.is_array()) {
    throw std::runtime_error("GET /_events: not a JSON array: " + json::serialize(v));
  }
  std::vector<sink_event> out;
  for (const auto& e : std::get<json::array>(v.get())) {
    out.push_back({integer(e, "seq"), text(e, "event_id"), text(e, "type"), text(e, "order_id"),
                   integer(e, "attempt"), integer(e, "received_at_ms"), text(e, "body")});
  }
  return out;
}

void sink_process::clear_events() const {
  const auto r = http_call(port_, "DELETE", "/_events");
  if (r.status != 204) {
    throw std::runtime_error("DELETE /_events: " + std::to_string(r.status) + " " + r.body);
  }
}

sink_stats sink_process::stats() const {
  const json::value v = answer_of(http_call(port_, "GET", "/_stats"), "GET /_stats");
  return {integer(v, "received"), integer(v, "rejected"), integer(v, "failed"),
          integer(v, "timed_out"), integer(v, "dropped")};
}

sink_run run_sink(const std::vector<std::string>& args) {
  std::vector<std::string> full{SURGE_WEBHOOK_SINK_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  const std::string log = temp_log_path();
  tools::child proc;
  start(proc, full, log);
  sink_run out;
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

} // namespace surge::ptest
