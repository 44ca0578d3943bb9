// The admin API client: one blocking Boost.Beast HTTP/1.1 exchange per call, with one deadline
// for resolve, connect, write and read; and the JSON reading of its answers.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "surgectl.hpp"

#include "surge/net/beast.hpp"

namespace surge::ctl {

namespace json = surge::net::json;

endpoint parse_admin_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    throw cli_error(exit_usage, "--admin expects http://host[:port], got '" + url + "'");
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  endpoint ep;
  ep.port = 80;
  std::string port_text;
  if (!rest.empty() && rest.front() == '[') { // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) {
      throw cli_error(exit_usage, "--admin: unterminated '[' in '" + url + "'");
    }
    ep.host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        throw cli_error(exit_usage, "--admin expects http://host[:port], got '" + url + "'");
      }
      port_text = rest.substr(1);
    }
  } else {
    const auto colon = rest.rfind(':');
    ep.host = rest.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = rest.substr(colon + 1);
    }
  }
  if (ep.host.empty() || ep.host.find('/') != std::string::npos ||
      ep.host.find('@') != std::string::npos) {
    throw cli_error(exit_usage, "--admin expects http://host[:port] (no path), got '" + url + "'");
  }
  if (!port_text.empty() || rest.find(':') != std::string::npos) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || p == 0 || p > 65535) {
      throw cli_error(exit_usage, "--admin: bad port in '" + url + "'");
    }
    ep.port = static_cast<uint16_t>(p);
  }
  return ep;
}

std::string admin_token(const std::optional<std::string>& flag) {
  if (flag) {
    return *flag;
  }
  if (const char* env = std::getenv("SURGE_ADMIN_TOKEN"); env != nullptr && *env != '\0') {
    return env;
  }
  constexpr const char* path = "data/admin.token";
  struct stat st {};
  if (::stat(path, &st) != 0) {
    return {}; // no file: no token
  }
  std::ifstream in{path, std::ios::binary};
  if (!S_ISREG(st.st_mode) || !in.is_open()) {
    std::cerr << "surgectl: warning: cannot read " << path << ": "
              << (S_ISREG(st.st_mode) ? std::strerror(errno) : "not a file")
              << "; sending no token\n";
    return {};
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) {
    token.pop_back();
  }
  if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    std::cerr << "surgectl: warning: " << path << " is readable by group or others (mode " << mode
              << "); it grants the admin API: chmod 600 " << path << "\n";
  }
  return token;
}

http_answer admin_call(const endpoint& ep, const std::string& token, const std::string& method,
                       const std::string& target, const std::string& body,
                       std::chrono::milliseconds timeout, const header_list& headers) {
  const std::string where = "http://" + ep.host + ":" + std::to_string(ep.port);
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::error_code ec;
  tcp::resolver resolver{io};
  const auto addrs = resolver.resolve(ep.host, std::to_string(ep.port), ec);
  if (ec) {
    throw cli_error(exit_unreachable, "cannot resolve " + ep.host + ": " + ec.message());
  }
  stream.expires_after(timeout);
  stream.connect(addrs, ec);
  if (ec) {
    throw cli_error(exit_unreachable, "cannot connect to the admin API at " + where + ": " +
                                          ec.message() + " (is surge-node running? --admin=URL)");
  }
  http::request<http::string_body> req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  req.set(http::field::host, ep.host + ":" + std::to_string(ep.port));
  req.set(http::field::user_agent, "surgectl");
  req.set(http::field::accept, "application/json");
  if (!token.empty()) {
    req.set(http::field::authorization, "Bearer " + token);
  }
  for (const auto& [name, value] : headers) {
    req.set(name, value);
  }
  req.keep_alive(false);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream, req, ec);
  if (ec) {
    throw cli_error(exit_unreachable, "cannot send to " + where + ": " + ec.message());
  }
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(stream, buf, parser, ec);
  if (ec) {
    throw cli_error(exit_unreachable, "no answer from " + where + ": " + ec.message());
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  auto res = parser.release();
  return http_answer{static_cast<int>(res.result_int()), std::move(res.body())};
}

namespace {

using namespace std::chrono_literals;

/// One admin call's deadline (connect, send, answer).
constexpr auto request_timeout = 10s;

} // namespace

json_answer admin_json(const admin_session& s, const std::string& method, const std::string& target,
                       const std::string& body, const header_list& headers) {
  auto a = admin_call(s.ep, s.token, method, target, body, request_timeout, headers);
  auto parsed = json::parse(a.body);
  auto* v = std::get_if<json::value>(&parsed);
  if (a.status >= 200 && a.status < 300) {
    if (v == nullptr || !v->is_object()) {
      throw cli_error(exit_server_error,
                      method + " " + target + ": the server answered " + std::to_string(a.status) +
                          " with a body that is not a JSON object" +
                          (v == nullptr ? ": " + std::get<json::parse_error>(parsed).message : ""));
    }
    json::value out = std::move(*v);
    return json_answer{std::move(a), std::move(out)};
  }
  throw_refusal(s, a, v);
}

void throw_refusal(const admin_session& s, const http_answer& a) {
  auto parsed = json::parse(a.body);
  throw_refusal(s, a, std::get_if<json::value>(&parsed));
}

void throw_refusal(const admin_session& s, const http_answer& a, const json::value* v) {
  if (s.json) {
    print_raw(a);
  }
  std::string code;
  std::string message;
  if (v != nullptr) {
    if (const auto* err = v->find("error"); err != nullptr && err->is_object()) {
      if (const auto* c = err->find("code"); c != nullptr && c->is_string()) {
        code = std::get<std::string>(c->get());
      }
      if (const auto* m = err->find("message"); m != nullptr && m->is_string()) {
        message = std::get<std::string>(m->get());
      }
    }
  }
  if (code.empty()) {
    throw cli_error(exit_server_error,
                    "the server answered " + std::to_string(a.status) + ": " + a.body);
  }
  throw cli_error(exit_server_error,
                  "error " + std::to_string(a.status) + " " + code + ": " + message);
}

void print_raw(const http_answer& a) {
  std::cout << a.body << (a.body.empty() || a.body.back() != '\n' ? "\n" : "");
}

std::string text_of(const json::value& obj, const char* key) {
  const auto* m = obj.find(key);
  if (m == nullptr || m->is_null()) {
    return "-";
  }
  if (m->is_string()) {
    return std::get<std::string>(m->get());
  }
  if (m->is_int()) {
    return std::to_string(std::get<int64_t>(m->get()));
  }
  return json::serialize(*m);
}

int64_t int_of(const json::value& obj, const char* key, int64_t fallback) {
  const auto* m = obj.find(key);
  return m != nullptr && m->is_int() ? std::get<int64_t>(m->get()) : fallback;
}

} // namespace surge::ctl
