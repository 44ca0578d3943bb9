#include "surge/net/http.hpp"

#include <algorithm>
#include <cctype>

#include "surge/net/json_writer.hpp"
#include "surge/net/text.hpp"

namespace surge::net {

std::optional<std::string_view> http_request::header(const std::string& name) const {
  auto it = headers.find(text::to_lower(name));
  if (it == headers.end()) {
    return std::nullopt;
  }
  return std::string_view(it->second);
}

std::optional<std::string_view> http_request::param(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) {
    return std::nullopt;
  }
  return std::string_view(it->second);
}

http_response error_response(int status, std::string_view code, std::string_view message) {
  http_response r;
  r.status = status;
  r.content_type = "application/json";
  json::writer w{40 + code.size() + message.size()};
  w.begin_object().key("error").begin_object();
  w.member("code", code).member("message", message);
  r.body = w.end_object().end_object().take();
  return r;
}

} // namespace surge::net
