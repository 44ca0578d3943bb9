#pragma once

// Internal helpers of the PostgreSQL adapter (not part of the public interface).

#include <exception>
#include <memory>
#include <string>
#include <vector>

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

/// How translate_current() reads an SQL error.
struct translate_options {
  bool during_commit = false;     ///< a broken connection leaves the commit's outcome unknown
  bool bad_input_invalid = false; ///< integrity (23) and data (22) errors are errc::invalid
};

/// Translates the exception being handled (call it only inside a catch block) into a
/// persistence error, and sets `healthy` to false when the connection is gone. Every adapter's
/// edge: no libpqxx exception gets past it.
inline caf::error translate_current(const pqxx::connection& conn, bool& healthy,
                                    translate_options opts = {}) noexcept {
  try {
    throw;
  } catch (const pqxx::unique_violation& e) {
    return make_error(errc::conflict, e.what());
  } catch (const pqxx::in_doubt_error& e) {
    healthy = false;
    return make_error(errc::unavailable, std::string{"commit outcome unknown: "} + e.what());
  } catch (const pqxx::broken_connection& e) {
    healthy = false;
    if (opts.during_commit) {
      return make_error(errc::unavailable, std::string{"commit outcome unknown: "} + e.what());
    }
    return make_error(errc::unavailable, e.what());
  } catch (const pqxx::sql_error& e) {
    // A server that shuts down answers with an SQL error (57P01...) and then closes.
    const auto& state = e.sqlstate();
    if (state == "SF001") { // raised by surge_fence(): a stale shard epoch
      return make_error(errc::fenced, e.what());
    }
    if (!conn.is_open() || state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0) {
      healthy = false;
      return make_error(errc::unavailable, e.what());
    }
    if (opts.bad_input_invalid && (state.rfind("23", 0) == 0 || state.rfind("22", 0) == 0)) {
      return make_error(errc::invalid, e.what());
    }
    return make_error(errc::unavailable, e.what());
  } catch (const std::exception& e) {
    if (!conn.is_open()) {
      healthy = false;
    }
    return make_error(errc::unavailable, e.what());
  } catch (...) {
    healthy = false;
    return make_error(errc::unavailable, "unknown exception in a PostgreSQL adapter");
  }
}

/// The first column of `rows`, as strings (ids).
inline std::vector<std::string> first_column(const pqxx::result& rows) {
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    out.push_back(row[0].as<std::string>());
  }
  return out;
}

/// A new `Impl` (an adapter built from its connection) on a connection to `url`, as its
/// interface `Interface`; errc::unavailable when it cannot connect. The make_pg_* factories.
template <class Interface, class Impl>
caf::expected<std::unique_ptr<Interface>> open_adapter(const std::string& url) {
  auto conn = connect(url);
  if (!conn) {
    return std::move(conn.error());
  }
  return std::unique_ptr<Interface>{new Impl(std::move(*conn))};
}

/// Reads the first sizeof...(T) columns of `row`, in order, into `out...` (each converted to its
/// own type). REQUIRES: none of them is NULL.
template <class... T>
void read_columns(const pqxx::row& row, T&... out) {
  pqxx::row::size_type i = 0;
  ((out = row[i++].template as<T>()), ...);
}

} // namespace surge::persistence::detail
