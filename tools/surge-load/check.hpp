#pragma once

// The cross-check: what the shoppers were told against the admin API's stock of every SKU they
// sent a hold for (GET /admin/v1/products/{sku}/stock):
//   - held + sold <= on_hand (never oversold);
//   - sold >= units of the confirmed orders answered 201;
//   - held >= units answered 200 that are still in carts not checked out — only when no such
//     hold can have expired yet (the first was asked for less than --holds-ttl ago);
//   - a resubmitted checkout (same Idempotency-Key) answered with the same order.
// Blocking (after the run), one keep-alive connection, every call bounded by options::timeout.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine.hpp"
#include "options.hpp"

namespace surge::load {

/// An answer of the admin API: status 0 when there was none (then `error` says why).
struct admin_answer {
  int status = 0;
  std::string body;
  std::string error;
};

/// A blocking client of the admin API (options::admin, bearer options::admin_token): one
/// keep-alive connection, replaced once when a kept one fails; every call bounded by
/// options::timeout. Not thread-safe.
class admin_client {
 public:
  explicit admin_client(const options& o);
  ~admin_client();
  admin_client(const admin_client&) = delete;
  admin_client& operator=(const admin_client&) = delete;

  /// GET `path`.
  admin_answer get(const std::string& path);
  /// `method` ("PUT", "POST", "DELETE", ...) `path` with a JSON `body` (none when empty). Not
  /// resent on a failure (a write is not known to be idempotent).
  admin_answer send(const std::string& method, const std::string& path, const std::string& body);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

struct stock_view {
  int64_t on_hand = 0;
  int64_t held = 0;
  int64_t sold = 0;
  bool known = true; ///< false: 404, the SKU does not exist
};

struct check_line {
  std::string verdict; ///< "PASS", "FAIL" or "SKIP"
  std::string name;
  std::string detail;
};

struct check_result {
  bool performed = false; ///< false: --no-check, or nothing to check
  bool passed = true;
  std::string error; ///< why the check could not run (then passed is false)
  std::vector<check_line> lines;
  std::map<std::string, stock_view> stocks;
  bool live_checked = false;
};

/// Runs the cross-check for `r`.
check_result cross_check(const options& o, const run_result& r);

} // namespace surge::load
