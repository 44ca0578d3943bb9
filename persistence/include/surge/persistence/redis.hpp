#pragma once

#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/persistence/journal.hpp"

namespace surge::persistence {

struct redis_options {
  std::string url = "redis://127.0.0.1:6379/0"; ///< redis://[:password@]host:port[/db]
  std::string prefix = "surge:";                ///< prepended to every key (tests use their own)
  std::chrono::milliseconds timeout{2000};      ///< connect and command timeout
};

/// errc::invalid for a malformed URL, errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<snapshot_cache>> make_redis_snapshot_cache(const redis_options& opts);
caf::expected<std::unique_ptr<cart_store>> make_redis_cart_store(const redis_options& opts);

} // namespace surge::persistence
