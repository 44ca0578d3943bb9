#pragma once

// Listener options for the HTTP layer's own tests and fuzz targets. net::server_options has no
// defaults of its own (a node fills it from its settings through runtime/wiring.hpp); these are
// the limits of a node's default http.* settings, written out so that the HTTP layer's tests do
// not need the whole node. Cases change what they test.

#include <chrono>

#include "surge/net/http.hpp"

namespace surge::test {

inline net::server_options listener() {
  net::server_options o;
  o.host = "127.0.0.1";
  o.port = 0; // a free one
  o.io_threads = 2;
  o.body_limit = 64 * 1024;
  o.header_limit = 8 * 1024;
  o.target_limit = 2048;
  o.read_timeout = std::chrono::seconds{15};
  o.handler_timeout = std::chrono::seconds{10};
  o.idle_timeout = std::chrono::seconds{60};
  o.max_connections = 100000;
  return o;
}

} // namespace surge::test
