#include "surge/net/router.hpp"

#include <algorithm>

namespace surge::net {

namespace {

/// "/a/{x}/b" -> {"a", "{}", "b"}; "/" -> {}. Same splitting as decode_target's segments.
std::vector<std::string> split_pattern(std::string_view pattern) {
  std::vector<std::string> parts;
  if (!pattern.empty() && pattern.front() == '/') {
    pattern.remove_prefix(1);
  }
  if (pattern.empty()) {
    return parts;
  }
  for (;;) {
    const std::size_t slash = pattern.find('/');
    std::string_view part = pattern.substr(0, slash);
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      parts.emplace_back("{}");
    } else {
      parts.emplace_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    pattern.remove_prefix(slash + 1);
  }
  return parts;
}

} // namespace

void router::add(std::string method, std::string pattern, route_handler h) {
  auto parts = split_pattern(pattern);
  routes_.push_back(route{std::move(method), std::move(parts), std::move(h), std::move(pattern)});
}

bool router::path_matches(const route& rt, const http_request& req) {
  if (rt.parts.size() != req.segments.size()) {
    return false;
  }
  for (std::size_t i = 0; i < rt.parts.size(); ++i) {
    const bool ok = rt.parts[i] == "{}" ? !req.segments[i].empty() : rt.parts[i] == req.segments[i];
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool router::method_matches(const route& rt, const http_request& req) {
  return rt.method == req.method || (req.method == "HEAD" && rt.method == "GET");
}

std::string_view router::pattern_of(const http_request& req) const {
  for (const auto& rt : routes_) {
    if (path_matches(rt, req) && method_matches(rt, req)) {
      return rt.pattern;
    }
  }
  return {};
}

void router::set_guard(guard g) {
  guard_ = std::move(g);
}

void router::dispatch(http_request&& req, responder r) const {
  if (guard_) {
    if (auto refused = guard_(req)) {
      r(std::move(*refused));
      return;
    }
  }
  std::vector<std::string> allowed;
  for (const auto& rt : routes_) {
    if (!path_matches(rt, req)) {
      continue;
    }
    // HEAD is served by the GET route; the server sends the headers only.
    if (method_matches(rt, req)) {
      path_params params;
      for (std::size_t i = 0; i < rt.parts.size(); ++i) {
        if (rt.parts[i] == "{}") {
          params.push_back(req.segments[i]);
        }
      }
      rt.h(std::move(req), std::move(params), std::move(r));
      return;
    }
    if (std::find(allowed.begin(), allowed.end(), rt.method) == allowed.end()) {
      allowed.push_back(rt.method);
      if (rt.method == "GET") {
        allowed.emplace_back("HEAD");
      }
    }
  }
  if (allowed.empty()) {
    r(error_response(404, "not_found", "no resource at " + req.path));
    return;
  }
  std::string allow;
  for (const auto& m : allowed) {
    if (!allow.empty()) {
      allow += ", ";
    }
    allow += m;
  }
  auto resp = error_response(405, "method_not_allowed", req.method + " not allowed; use " + allow);
  resp.headers.emplace_back("Allow", std::move(allow));
  r(std::move(resp));
}

std::size_t router::index_of(const http_request& req) const {
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (path_matches(routes_[i], req) && method_matches(routes_[i], req)) {
      return i;
    }
  }
  return routes_.size();
}

} // namespace surge::net
