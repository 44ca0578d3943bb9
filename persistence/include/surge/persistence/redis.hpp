#pragma once

#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/persistence/journal.hpp"

namespace surge::persistence {

/// The settings redis.* (no defaults of their own).
struct redis_options {
  std::string url;                     ///< redis.url: redis://[:password@]host:port[/db]
  std::string prefix;                  ///< redis.prefix: prepended to every key
  std::chrono::milliseconds timeout{}; ///< redis.timeout: connect and command timeout
};

/// errc::invalid for a malformed URL, errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<snapshot_cache>> make_redis_snapshot_cache(const redis_options& opts);
caf::expected<std::unique_ptr<cart_store>> make_redis_cart_store(const redis_options& opts);

} // namespace surge::persistence
