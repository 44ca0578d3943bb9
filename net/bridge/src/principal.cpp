#include "principal.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

namespace surge::net::bridge {

std::variant<std::string, http_response> principal_of(const bridge_env& env,
                                                      const http_request& req) {
  if (!env.customers || !env.customers->enabled()) {
    return std::string{};
  }
  auto auth = req.header("authorization");
  if (!auth) {
    return std::string{};
  }
  constexpr std::string_view scheme = "bearer ";
  auto refuse = [](std::string_view why) {
    auto resp = error_response(401, "unauthorized", why);
    resp.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return resp;
  };
  if (auth->size() <= scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), auth->begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return refuse("Authorization must be 'Bearer <customer token>'");
  }
  auto verdict =
      env.customers->verify(auth->substr(scheme.size()), std::chrono::system_clock::now());
  if (auto* no = std::get_if<auth_refusal>(&verdict)) {
    return refuse(std::string{"the customer token is not valid ("} + to_string(no->code) + ")");
  }
  return std::move(std::get<verified_customer>(verdict).id);
}

} // namespace surge::net::bridge
