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
  routes_.push_back(route{std::move(method), std::move(pattern), std::move(parts), std::move(h)});
}

void router::set_guard(guard g) {
  guard_ = std::move(g);
}

std::size_t router::match(const http_request& req, std::vector<std::string>& allowed) const {
  for (std::size_t k = 0; k < routes_.size(); ++k) {
    const auto& rt = routes_[k];
    if (rt.parts.size() != req.segments.size()) {
      continue;
    }
    bool match = true;
    for (std::size_t i = 0; i < rt.parts.size(); ++i) {
      const bool ok =
          rt.parts[i] == "{}" ? !req.segments[i].empty() : rt.parts[i] == req.segments[i];
      if (!ok) {
        match = false;
        break;
      }
    }
    if (!match) {
      continue;
    }
    // HEAD is served by the GET route; the server sends the headers only.
    if (rt.method == req.method || (req.method == "HEAD" && rt.method == "GET")) {
      return k;
    }
    if (std::find(allowed.begin(), allowed.end(), rt.method) == allowed.end()) {
      allowed.push_back(rt.method);
      if (rt.method == "GET") {
        allowed.emplace_back("HEAD");
      }
    }
  }
  return routes_.size();
}

http_response router::unrouted(const http_request& req, const std::vector<std::string>& allowed) {
  if (allowed.empty()) {
    return error_response(404, "not_found", "no resource at " + req.path);
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
  return resp;
}

void router::run(std::size_t k, http_request&& req, responder r) const {
  const auto& rt = routes_[k];
  path_params params;
  for (std::size_t i = 0; i < rt.parts.size(); ++i) {
    if (rt.parts[i] == "{}") {
      params.push_back(req.segments[i]);
    }
  }
  rt.h(std::move(req), std::move(params), std::move(r));
}

void router::dispatch(http_request&& req, responder r) const {
  if (guard_) {
    if (auto refused = guard_(req)) {
      r(std::move(*refused));
      return;
    }
  }
  std::vector<std::string> allowed;
  const std::size_t k = match(req, allowed);
  if (k == routes_.size()) {
    r(unrouted(req, allowed));
    return;
  }
  run(k, std::move(req), std::move(r));
}

void router::dispatch_routed(http_request&& req, routed_responder r) const {
  std::vector<std::string> allowed;
  const std::size_t k = match(req, allowed); // before the guard: its answer is the route's too
  if (guard_) {
    if (auto refused = guard_(req)) {
      r(std::move(*refused), k);
      return;
    }
  }
  if (k == routes_.size()) {
    r(unrouted(req, allowed), k);
    return;
  }
  run(k, std::move(req), [r = std::move(r), k](http_response out) { r(std::move(out), k); });
}

} // namespace surge::net
