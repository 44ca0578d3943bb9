#pragma once

#include <memory>
#include <string>

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

namespace surge::log {

/// Configures every subsystem logger, present and future: `level` is a log.level value
/// (trace|debug|info|warn|error|critical|off), `format` a log.format value (text|json).
/// REQUIRES: valid values (config::load has checked them). Thread-safe; may be called again.
/// All loggers write to one shared stderr sink. Until setup is called: info, text.
void setup(const std::string& level, const std::string& format);

/// The logger of `subsystem` ("node", "net", "persist", "sku", "cart", "journal", ...), created
/// on first use with the current level. Thread-safe; the same name always yields the same logger.
std::shared_ptr<spdlog::logger> get(const std::string& subsystem);

/// Formats each message as one line holding one JSON object:
/// {"ts":"2026-11-28T08:30:00.123456Z","level":"info","logger":"net","msg":"..."}
/// `ts` is UTC with microseconds; `msg` is JSON-escaped (quotes, backslashes, control
/// characters; invalid UTF-8 becomes U+FFFD). A line written inside a request_scope has
/// `"request_id":"..."` between `logger` and `msg`. Used by setup for format=json.
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

/// The text-format pattern: "[2026-11-28 08:30:00.123] [net] [info] msg" (local time).
inline constexpr const char* text_pattern = "[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v";

/// The formatter of format=text: text_pattern, with " [rid=<request id>]" after the level for a
/// line written inside a request_scope ("[...] [sku] [info] [rid=abc] msg").
std::unique_ptr<spdlog::formatter> text_formatter();

/// The request id of the work the calling thread does right now; empty when none.
const std::string& current_request_id();

/// While it lives, every log line the constructing thread writes carries `request_id` (see
/// json_formatter and text_formatter); an empty id means none. Scopes nest: the destructor
/// restores the id in force before. REQUIRES: destroyed on the thread that made it (a
/// stack object), so it never outlives one handler run of an actor or one pool job.
class request_scope {
 public:
  explicit request_scope(std::string request_id);
  ~request_scope();
  request_scope(const request_scope&) = delete;
  request_scope& operator=(const request_scope&) = delete;

 private:
  std::string saved_;
};

/// The access log of a node (log.access_file): a logger named "access" with a sink of its own
/// that writes each message as it is, one line, at every level (log.level does not apply).
/// `file` empty: stderr, the node's own log stream; else the file, appended to (created when
/// missing). `error` is set (and `logger` null) when the file cannot be opened for writing.
struct access_log {
  std::shared_ptr<spdlog::logger> logger;
  std::string error;
};
access_log make_access_logger(const std::string& file);

} // namespace surge::log
