#include "surge/config/log.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "surge/config/names.hpp"

namespace surge::log {

namespace {

/// Process-wide logging state. `sink` is the one sink every logger holds; setup swaps what it
/// forwards to, so loggers never change their sink list. Guarded by `mutex` (the dist sink has
/// its own lock for logging).
struct log_state {
  log_state();

  std::mutex mutex;
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sink;
  spdlog::level::level_enum level = spdlog::level::info;
  std::map<std::string, std::shared_ptr<spdlog::logger>> loggers;
};

std::shared_ptr<spdlog::sinks::sink> make_stderr_sink(const std::string& format) {
  std::shared_ptr<spdlog::sinks::sink> out;
  if (format == "json") {
    out = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    out->set_formatter(std::make_unique<json_formatter>());
  } else {
    out = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    out->set_formatter(text_formatter());
  }
  return out;
}

/// The request id of the calling thread (request_scope).
thread_local std::string current_rid;

/// `%*` of text_formatter: " [rid=<id>]" inside a request_scope, nothing outside.
class rid_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    if (!current_rid.empty()) {
      static constexpr std::string_view open = " [rid=";
      dest.append(open.data(), open.data() + open.size());
      dest.append(current_rid.data(), current_rid.data() + current_rid.size());
      dest.push_back(']');
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<rid_flag>();
  }
};

log_state::log_state()
    : sink(std::make_shared<spdlog::sinks::dist_sink_mt>()) {
  sink->set_sinks({make_stderr_sink("text")});
}

log_state& state() {
  static log_state s;
  return s;
}

std::string_view level_name(spdlog::level::level_enum lvl) {
  static constexpr const char* names[] = {"trace", "debug", "info", "warn", "error", "critical"};
  static_assert(std::size(names) == spdlog::level::critical + 1);
  return surge::config::name_of(lvl, names, "off");
}

/// Length of the valid UTF-8 sequence starting at s[i], or 0 if there is none.
size_t utf8_sequence(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80; // no overlong forms
    hi = c == 0xED ? 0x9F : 0xBF; // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF; // at most U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  if (byte(i + 1) < lo || byte(i + 1) > hi) {
    return 0;
  }
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
      return 0;
    }
  }
  return len;
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

/// The characters JSON escapes with a backslash and a letter (or themselves).
constexpr std::pair<char, std::string_view> short_escapes[] = {
    {'"', "\\\""}, {'\\', "\\\\"}, {'\n', "\\n"}, {'\r', "\\r"},
    {'\t', "\\t"}, {'\b', "\\b"},  {'\f', "\\f"}};

/// Appends `s` as the inside of a JSON string.
void append_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = utf8_sequence(s, i);
      if (len == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, s.substr(i, len));
        i += len;
      }
      continue;
    }
    if (const auto* e = std::find_if(std::begin(short_escapes), std::end(short_escapes),
                                     [c](const auto& x) { return x.first == c; });
        e != std::end(short_escapes)) {
      append(dest, e->second);
    } else if (c < 0x20) {
      char u[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
      dest.append(u, u + sizeof(u));
    } else {
      dest.push_back(static_cast<char>(c));
    }
    ++i;
  }
}

} // namespace

void json_formatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  auto since_epoch = duration_cast<microseconds>(msg.time.time_since_epoch());
  auto secs = floor<seconds>(since_epoch);
  auto micros = (since_epoch - secs).count();
  std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm utc{};
  gmtime_r(&t, &utc);
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long long>(micros));
  append(dest, "{\"ts\":\"");
  append(dest, ts);
  append(dest, "\",\"level\":\"");
  append(dest, level_name(msg.level));
  append(dest, "\",\"logger\":\"");
  append_escaped(dest, std::string_view{msg.logger_name.data(), msg.logger_name.size()});
  if (!current_rid.empty()) {
    append(dest, "\",\"request_id\":\"");
    append_escaped(dest, current_rid);
  }
  append(dest, "\",\"msg\":\"");
  append_escaped(dest, std::string_view{msg.payload.data(), msg.payload.size()});
  append(dest, "\"}\n");
}

std::unique_ptr<spdlog::formatter> json_formatter::clone() const {
  return std::make_unique<json_formatter>();
}

std::unique_ptr<spdlog::formatter> text_formatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<rid_flag>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$]%* %v");
  return f;
}

const std::string& current_request_id() {
  return current_rid;
}

request_scope::request_scope(std::string request_id)
    : saved_(std::exchange(current_rid, std::move(request_id))) {}

request_scope::~request_scope() {
  current_rid = std::move(saved_);
}

access_log make_access_logger(const std::string& file) {
  access_log out;
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
    } catch (const spdlog::spdlog_ex& e) {
      out.error = e.what();
      return out;
    }
  }
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%v", spdlog::pattern_time_type::utc, std::string{"\n"}));
  out.logger = std::make_shared<spdlog::logger>("access", std::move(sink));
  out.logger->set_level(spdlog::level::trace);
  out.logger->flush_on(spdlog::level::trace);
  return out;
}

void setup(const std::string& level, const std::string& format) {
  auto& s = state();
  std::lock_guard<std::mutex> guard{s.mutex};
  s.level = spdlog::level::from_str(level);
  s.sink->set_sinks({make_stderr_sink(format)});
  for (auto& [name, logger] : s.loggers) {
    logger->set_level(s.level);
  }
}

std::shared_ptr<spdlog::logger> get(const std::string& subsystem) {
  auto& s = state();
  std::lock_guard<std::mutex> guard{s.mutex};
  auto it = s.loggers.find(subsystem);
  if (it != s.loggers.end()) {
    return it->second;
  }
  auto logger = std::make_shared<spdlog::logger>(subsystem, s.sink);
  logger->set_level(s.level);
  logger->flush_on(spdlog::level::warn);
  s.loggers.emplace(subsystem, logger);
  return logger;
}

} // namespace surge::log
