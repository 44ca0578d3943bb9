#pragma once

// Conditional GETs (private to the bridge): product pages, catalog listings and searches, and the
// console's files.

#include <memory>
#include <string>
#include <string_view>

#include "surge/net/http.hpp"
#include "surge/net/page_cache.hpp"

namespace surge::net::bridge {

/// True when If-None-Match `if_none_match` (a list of entity tags, possibly weak, or "*") names
/// `etag` (weakly) or is "*".
bool etag_matches(std::string_view if_none_match, std::string_view etag);

/// A strong ETag of `body`: its FNV-1a 64 hash in hex, quoted.
std::string etag_of(std::string_view body);

/// A body's responses, made once: 200 with the body, and 304 without it, both with its ETag and
/// `cache_control`. `rendered` is how old its data is (page_cache keeps it ttl from then).
std::shared_ptr<const page_cache::page> cached_page(std::string body, std::string_view content_type,
                                                    std::string_view cache_control,
                                                    page_cache::clock::time_point rendered);

/// The response to a request with If-None-Match `if_none_match` (empty: none): 304 when it
/// names the page's ETag, else the page. The body is not copied.
http_response conditional(const page_cache::page& pg, std::string_view if_none_match);

} // namespace surge::net::bridge
