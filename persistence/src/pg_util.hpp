#pragma once

// Internal helpers of the PostgreSQL adapter (not part of the public interface).

#include <exception>
#include <memory>
#include <string>

#include <caf/expected.hpp>
#include <pqxx/pqxx>

#include "surge/persistence/errors.hpp"

namespace surge::persistence::detail {

/// `url` with `connect_timeout=<seconds>` added when it is a libpq URI that sets none, so that
/// connecting to an unreachable host fails within bounded time.
inline std::string with_connect_timeout(const std::string& url, int seconds = 5) {
  const bool is_uri = url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
  if (!is_uri || url.find("connect_timeout=") != std::string::npos) {
    return url;
  }
  const char sep = url.find('?') == std::string::npos ? '?' : '&';
  return url + sep + "connect_timeout=" + std::to_string(seconds);
}

/// A connection to `url` (with a connect timeout), or errc::unavailable saying why not.
inline caf::expected<std::unique_ptr<pqxx::connection>> connect(const std::string& url) {
  try {
    return std::make_unique<pqxx::connection>(with_connect_timeout(url));
  } catch (const std::exception& e) {
    return make_error(errc::unavailable, std::string{"cannot connect to PostgreSQL: "} + e.what());
  } catch (...) {
    return make_error(errc::unavailable, "cannot connect to PostgreSQL");
  }
}

} // namespace surge::persistence::detail
