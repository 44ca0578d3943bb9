#include "surge/config/log.hpp"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

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

TEST_CASE("lines written inside a request_scope carry its id, in json and in text") {
  std::ostringstream json_out;
  auto json_sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(json_out);
  json_sink->set_formatter(std::make_unique<surge::log::json_formatter>());
  std::ostringstream text_out;
  auto text_sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_out);
  text_sink->set_formatter(surge::log::text_formatter());
  spdlog::logger logger("sku", {json_sink, text_sink});

  CHECK(surge::log::current_request_id().empty());
  logger.info("before");
  {
    surge::log::request_scope outer{"rid-\"1\""};
    logger.info("outer");
    {
      surge::log::request_scope inner{"rid-2"};
      CHECK(surge::log::current_request_id() == "rid-2");
      logger.info("inner");
    }
    CHECK(surge::log::current_request_id() == "rid-\"1\"");
    {
      surge::log::request_scope none{""};
      logger.info("none");
    }
  }
  CHECK(surge::log::current_request_id().empty());
  logger.info("after");

  std::vector<std::string> json_lines;
  std::istringstream jin{json_out.str()};
  for (std::string line; std::getline(jin, line);) {
    json_lines.push_back(line);
  }
  REQUIRE(json_lines.size() == 5);
  const char* ids[] = {nullptr, "rid-\"1\"", "rid-2", nullptr, nullptr};
  const char* msgs[] = {"before", "outer", "inner", "none", "after"};
  for (std::size_t i = 0; i < json_lines.size(); ++i) {
    CAPTURE(json_lines[i]);
    auto obj = flat_json::parse(json_lines[i]);
    REQUIRE(obj.has_value());
    CHECK((*obj)["msg"] == msgs[i]);
    CHECK(obj->count("request_id") == (ids[i] != nullptr ? 1U : 0U));
    if (ids[i] != nullptr) {
      CHECK((*obj)["request_id"] == ids[i]);
      // Between logger and msg.
      CHECK(json_lines[i].find("\"logger\":\"sku\",\"request_id\":") != std::string::npos);
    }
  }

  std::vector<std::string> text_lines;
  std::istringstream tin{text_out.str()};
  for (std::string line; std::getline(tin, line);) {
    text_lines.push_back(line);
  }
  REQUIRE(text_lines.size() == 5);
  CHECK(text_lines[0].ends_with("] [sku] [info] before"));
  CHECK(text_lines[1].ends_with("] [sku] [info] [rid=rid-\"1\"] outer"));
  CHECK(text_lines[2].ends_with("] [sku] [info] [rid=rid-2] inner"));
  CHECK(text_lines[3].ends_with("] [sku] [info] none"));
  CHECK(text_lines[4].ends_with("] [sku] [info] after"));
  CHECK(text_lines[0].size() ==
        std::string{"[2026-11-28 08:30:00.123] [sku] [info] before"}.size());
}

TEST_CASE("make_access_logger: the message as it is, one per line; an unwritable file fails") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("surge-access-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = (dir / "access.log").string();
  {
    auto made = surge::log::make_access_logger(file);
    REQUIRE(made.logger != nullptr);
    CHECK(made.error.empty());
    CHECK(made.logger->name() == "access");
    surge::log::setup("error", "json"); // log.level does not apply to the access log
    made.logger->info("{\"a\":1}");
    made.logger->info("{\"b\":2}");
    surge::log::setup("info", "text");
    std::ifstream in{file};
    std::stringstream got;
    got << in.rdbuf(); // flushed per line: readable at once
    CHECK(got.str() == "{\"a\":1}\n{\"b\":2}\n");
  }
  auto bad = surge::log::make_access_logger("/dev/null/access.log"); // not a directory
  CHECK(bad.logger == nullptr);
  CHECK_FALSE(bad.error.empty());
  CHECK(surge::log::make_access_logger("").logger != nullptr); // stderr
  std::filesystem::remove_all(dir);
}
