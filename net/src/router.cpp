#include "surge/net/router.hpp"

#include <algorithm>

#include "surge/net/text.hpp"

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

/// "GET, HEAD, POST".
std::string joined(const std::vector<std::string>& methods) {
  std::string out;
  for (const auto& m : methods) {
    if (!out.empty()) {
      out += ", ";
    }
    out += m;
  }
  return out;
}

/// The headers every response to an allowed cross-origin request carries.
void add_cors_headers(http_response& resp, const std::string& origin) {
  if (resp.ready) {
    resp = plain(std::move(resp));
  }
  resp.headers.emplace_back("Access-Control-Allow-Origin", origin);
  resp.headers.emplace_back("Vary", "Origin");
  resp.headers.emplace_back("Access-Control-Expose-Headers", router::cors_expose_headers);
}

} // namespace

cors_origins cors_origins::parse(std::string_view list) {
  cors_origins out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (const auto o = text::trim_space(list.substr(0, comma)); o == "*") {
      out.any = true;
    } else if (!o.empty()) {
      out.exact.push_back(text::to_lower(o));
    }
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

bool cors_origins::allows(std::string_view origin) const {
  const auto o = text::to_lower(text::trim_space(origin));
  if (o.empty() || o == "null") {
    return false;
  }
  return any || std::find(exact.begin(), exact.end(), o) != exact.end();
}

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

void router::answer_options(cors_origins origins) {
  answer_options_ = true;
  cors_ = std::move(origins);
}

std::vector<std::string> router::methods_of(const http_request& req) const {
  std::vector<std::string> methods;
  for (const auto& rt : routes_) {
    if (!path_matches(rt, req) ||
        std::find(methods.begin(), methods.end(), rt.method) != methods.end()) {
      continue;
    }
    methods.push_back(rt.method);
    if (rt.method == "GET") {
      methods.emplace_back("HEAD");
    }
  }
  return methods;
}

http_response router::options_response(const http_request& req) const {
  auto methods = methods_of(req);
  if (methods.empty()) {
    return error_response(404, "not_found", "no resource at " + req.path);
  }
  const auto origin = req.header("origin");
  const auto wanted = req.header("access-control-request-method");
  if (origin && !cors_.allows(*origin)) {
    auto resp = error_response(403, "forbidden", "the Origin is not in http.cors_origins");
    resp.headers.emplace_back("Vary", "Origin");
    return resp;
  }
  http_response resp;
  resp.status = 204;
  resp.content_type.clear();
  if (origin && wanted) {
    if (std::find(methods.begin(), methods.end(), *wanted) == methods.end()) {
      resp = error_response(405, "method_not_allowed",
                            std::string{*wanted} + " not allowed; use " + joined(methods));
      resp.headers.emplace_back("Allow", joined(methods));
      return resp; // the CORS headers are added by dispatch
    }
    const std::string origin_value{text::trim_space(*origin)};
    resp.headers.emplace_back("Access-Control-Allow-Origin", origin_value);
    resp.headers.emplace_back("Access-Control-Allow-Methods", joined(methods));
    resp.headers.emplace_back("Access-Control-Allow-Headers", cors_allow_headers);
    resp.headers.emplace_back("Access-Control-Max-Age", "600");
    resp.headers.emplace_back("Vary", "Origin");
    return resp;
  }
  methods.emplace_back("OPTIONS");
  resp.headers.emplace_back("Allow", joined(methods));
  return resp; // with an allowed Origin (not a preflight) dispatch adds the CORS headers
}

void router::dispatch(http_request&& req, responder r) const {
  if (answer_options_) {
    const auto origin = req.header("origin");
    if (req.method == "OPTIONS" && index_of(req) == routes_.size()) {
      auto resp = options_response(req);
      if (origin && cors_.allows(*origin) &&
          std::none_of(resp.headers.begin(), resp.headers.end(),
                       [](const auto& h) { return h.first == "Access-Control-Allow-Origin"; })) {
        add_cors_headers(resp, std::string{text::trim_space(*origin)});
      }
      r(std::move(resp));
      return;
    }
    if (origin && cors_.allows(*origin)) {
      r = [inner = std::move(r), o = std::string{text::trim_space(*origin)}](http_response resp) {
        add_cors_headers(resp, o);
        inner(std::move(resp));
      };
    }
  }
  if (guard_) {
    if (auto refused = guard_(req)) {
      r(std::move(*refused));
      return;
    }
  }
  for (const auto& rt : routes_) {
    // HEAD is served by the GET route; the server sends the headers only.
    if (path_matches(rt, req) && method_matches(rt, req)) {
      path_params params;
      for (std::size_t i = 0; i < rt.parts.size(); ++i) {
        if (rt.parts[i] == "{}") {
          params.push_back(req.segments[i]);
        }
      }
      rt.h(std::move(req), std::move(params), std::move(r));
      return;
    }
  }
  const auto allowed = methods_of(req);
  if (allowed.empty()) {
    r(error_response(404, "not_found", "no resource at " + req.path));
    return;
  }
  std::string allow = joined(allowed);
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
