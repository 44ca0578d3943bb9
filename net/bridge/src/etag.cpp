#include "etag.hpp"

#include <cstdint>
#include <cstdio>

namespace surge::net::bridge {

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  // A list of entity tags, possibly weak (W/"..."), or "*".
  std::size_t pos = 0;
  while (pos < if_none_match.size()) {
    auto comma = if_none_match.find(',', pos);
    auto tok = if_none_match.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                         : comma - pos);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) {
      tok.remove_prefix(1);
    }
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) {
      tok.remove_suffix(1);
    }
    if (tok.substr(0, 2) == "W/") {
      tok.remove_prefix(2);
    }
    if (tok == "*" || tok == etag) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    pos = comma + 1;
  }
  return false;
}

std::string etag_of(std::string_view body) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

std::shared_ptr<const page_cache::page> cached_page(std::string body, std::string_view content_type,
                                                    std::string_view cache_control,
                                                    page_cache::clock::time_point rendered) {
  auto pg = std::make_shared<page_cache::page>();
  pg->etag = etag_of(body);
  pg->rendered = rendered;
  http_response resp;
  resp.content_type = std::string{content_type};
  resp.headers.emplace_back("ETag", pg->etag);
  resp.headers.emplace_back("Cache-Control", std::string{cache_control});
  resp.status = 304;
  pg->not_modified = make_ready(resp);
  resp.status = 200;
  resp.body = std::move(body);
  pg->ok = make_ready(resp);
  // pg->body stays empty: ok holds the one copy.
  return pg;
}

http_response conditional(const page_cache::page& pg, std::string_view if_none_match) {
  if (!if_none_match.empty() && etag_matches(if_none_match, pg.etag)) {
    return with_ready(pg.not_modified);
  }
  return with_ready(pg.ok);
}

} // namespace surge::net::bridge
