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
/// characters; invalid UTF-8 becomes U+FFFD). Used by setup for format=json.
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

/// The text-format pattern: "[2026-11-28 08:30:00.123] [net] [info] msg" (local time).
inline constexpr const char* text_pattern = "[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v";

} // namespace surge::log
