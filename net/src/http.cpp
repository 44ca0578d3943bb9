#include "surge/net/http.hpp"

#include <algorithm>
#include <cctype>

#include "surge/net/json_writer.hpp"

namespace surge::net {

namespace {

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

} // namespace

std::optional<std::string_view> http_request::header(const std::string& name) const {
  auto it = headers.find(to_lower(name));
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
