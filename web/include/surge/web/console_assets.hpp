#pragma once

// The admin console's static files (web/console/ and uPlot's dist files), embedded at build time
// by web/cmake/embed.cmake into a generated table: a node needs no files beside it.

#include <span>
#include <string_view>

namespace surge::web {

/// One embedded file. Every view points into static storage (valid for the whole program).
struct console_asset {
  std::string_view name;         ///< file name under /console/, e.g. "app.js"
  std::string_view content_type; ///< e.g. "text/javascript; charset=utf-8"
  std::string_view etag;         ///< strong ETag, quoted: a hash of the bytes
  std::string_view body;         ///< the file's bytes
};

/// Every embedded file, sorted by name; "index.html" is the page itself. Thread-safe (constant).
std::span<const console_asset> console_assets();

/// The asset named `name`, or nullptr.
const console_asset* find_console_asset(std::string_view name);

} // namespace surge::web
