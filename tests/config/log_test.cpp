#include "surge/config/log.hpp"

#include <cctype>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace {

/// A strict parser for the flat JSON objects the log format produces: string keys and string
/// values only. Returns nullopt if `text` is not exactly one such object (plus a newline).
class flat_json {
 public:
  static std::optional<std::map<std::string, std::string>> parse(const std::string& text) {
    flat_json p{text};
    std::map<std::string, std::string> out;
    if (!p.eat('{')) {
      return std::nullopt;
    }
    if (!p.eat('}')) {
      do {
        auto key = p.string();
        if (!key || !p.eat(':')) {
          return std::nullopt;
        }
        auto value = p.string();
        if (!value) {
          return std::nullopt;
        }
        out[*key] = *value;
      } while (p.eat(','));
      if (!p.eat('}')) {
        return std::nullopt;
      }
    }
    if (p.pos_ < text.size() && text[p.pos_] == '\n') {
      ++p.pos_;
    }
    if (p.pos_ != text.size()) {
      return std::nullopt;
    }
    return out;
  }

 private:
  explicit flat_json(const std::string& text)
      : text_(text) {}

  bool eat(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  std::optional<std::string> string() {
    if (!eat('"')) {
      return std::nullopt;
    }
    std::string out;
    while (pos_ < text_.size()) {
      auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') {
        return out;
      }
      if (c < 0x20) {
        return std::nullopt; // control characters must be escaped
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= text_.size()) {
        return std::nullopt;
      }
      char e = text_[pos_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u': {
        if (pos_ + 4 > text_.size()) {
          return std::nullopt;
        }
        unsigned code = 0;
        for (int i = 0; i < 4; ++i) {
          char h = text_[pos_++];
          if (!std::isxdigit(static_cast<unsigned char>(h))) {
            return std::nullopt;
          }
          code = code * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h))
                                                       ? h - '0'
                                                       : std::tolower(h) - 'a' + 10);
        }
        if (code < 0x80) {
          out += static_cast<char>(code);
        } else {
          out += "<U+" + std::to_string(code) + ">";
        }
        break;
      }
      default:
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  const std::string& text_;
  size_t pos_ = 0;
};

} // namespace

TEST_CASE("json log line is one valid JSON object with the message escaped") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  sink->set_formatter(std::make_unique<surge::log::json_formatter>());
  spdlog::logger logger("net", sink);

  const std::string message = "say \"hi\" \\ path\nnext\tline \x01 end \xC3\xA9";
  logger.warn("{}", message);

  auto line = captured.str();
  CAPTURE(line);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1); // exactly one line
  auto obj = flat_json::parse(line);
  REQUIRE(obj.has_value());
  CHECK((*obj)["logger"] == "net");
  CHECK((*obj)["level"] == "warn");
  CHECK((*obj)["msg"] == message);
  const auto& ts = (*obj)["ts"];
  REQUIRE(ts.size() == 27); // 2026-11-28T08:30:00.123456Z
  CHECK(ts[4] == '-');
  CHECK(ts[10] == 'T');
  CHECK(ts[19] == '.');
  CHECK(ts.back() == 'Z');
}

TEST_CASE("invalid UTF-8 in a json log line becomes U+FFFD") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  sink->set_formatter(std::make_unique<surge::log::json_formatter>());
  spdlog::logger logger("sku", sink);
  logger.info("bad \xFF byte");
  auto obj = flat_json::parse(captured.str());
  REQUIRE(obj.has_value());
  CHECK((*obj)["msg"] == "bad <U+65533> byte");
}

TEST_CASE("text format pattern") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  sink->set_pattern(surge::log::text_pattern);
  spdlog::logger logger("net", sink);
  logger.info("hello");
  auto line = captured.str();
  CAPTURE(line);
  CHECK(line.size() == std::string{"[2026-11-28 08:30:00.123] [net] [info] hello\n"}.size());
  CHECK(line.find("] [net] [info] hello\n") != std::string::npos);
}

TEST_CASE("get returns one logger per subsystem with the current level") {
  surge::log::setup("warn", "json");
  auto a = surge::log::get("cart");
  CHECK(a == surge::log::get("cart"));
  CHECK(a->name() == "cart");
  CHECK(a->level() == spdlog::level::warn);
  surge::log::setup("debug", "text");
  CHECK(a->level() == spdlog::level::debug);
  CHECK(surge::log::get("journal")->level() == spdlog::level::debug);
  surge::log::setup("info", "text");
}
