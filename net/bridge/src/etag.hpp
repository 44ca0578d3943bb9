#pragma once

// Conditional GETs (private to the bridge): product pages and the console's files.

#include <string_view>

namespace surge::net::bridge {

/// True when If-None-Match `if_none_match` (a list of entity tags, possibly weak, or "*") names
/// `etag` (weakly) or is "*".
bool etag_matches(std::string_view if_none_match, std::string_view etag);

} // namespace surge::net::bridge
