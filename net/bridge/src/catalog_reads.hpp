#pragma once

// Catalog reads (private to the bridge): GET /api/v1/products, /api/v1/search and
// /api/v1/categories. Their query parameters are checked by name and value, and each answer is
// read on the catalog pool, sent with an ETag and Cache-Control, and kept in
// bridge_env::listings for a while (see serve_catalog_read).

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "surge/net/bridge.hpp"
#include "surge/net/http.hpp"

namespace surge::net::bridge {

/// Reads query parameters, keeping the 400 of the first bad one (API.md: the message names it).
/// Each reader returns false once something was refused; `refused` then holds the answer.
class param_reader {
 public:
  explicit param_reader(const http_request& req)
      : req_(req) {}

  /// Refuses a parameter whose name is not in `allowed`, or that is given more than once.
  bool only(std::initializer_list<std::string_view> allowed);
  /// Text of at most `max_len` bytes of UTF-8; absent: `out` unchanged.
  bool text(const char* name, std::size_t max_len, std::string& out);
  /// An integer in [lo, hi]; absent or empty: `out` unchanged.
  bool integer(const char* name, int64_t lo, int64_t hi, std::optional<int64_t>& out);
  /// true/1 or false/0 (empty: false); absent: `out` unchanged.
  bool boolean(const char* name, bool& out);
  /// Refuses `name` with `why` ("'name' why").
  bool refuse(const char* name, std::string_view why);

  std::optional<http_response> refused;

 private:
  const http_request& req_;
};

/// A key of bridge_env::listings: the route's name, then every part that changes the body, each
/// after a unit separator (0x1f, which no validated parameter holds), so distinct queries never
/// share a key.
class listing_key_builder {
 public:
  explicit listing_key_builder(std::string_view route)
      : key_(route) {}
  listing_key_builder& add(std::string_view part) {
    key_ += '\x1f';
    key_ += part;
    return *this;
  }
  /// The number, or nothing when absent.
  listing_key_builder& add_number(const std::optional<int64_t>& n) {
    return add(n ? std::to_string(*n) : std::string{});
  }
  /// The key (the builder is spent).
  std::string done() { return std::move(key_); }

 private:
  std::string key_;
};

/// Reads one answer on a catalog pool thread: the JSON body, or an error.
using catalog_read = std::function<caf::expected<std::string>(persistence::catalog&)>;

/// Answers `req` with the body `read` makes, as a 200 with an ETag and the node's catalog
/// Cache-Control (304 when If-None-Match names it). The answer is kept in env->listings under
/// `key` (which must name the route and every parameter that changes the body), counted from
/// when its data was read (a replica's freshness, not the time of the question), so that no
/// answer sent is staler than search.stock_lag allows. While one read of `key` is in flight,
/// further misses of it wait for that read instead of making their own (page_cache::lead).
/// Errors are not kept; a persistence errc::invalid is a 400 with its message.
void serve_catalog_read(const std::shared_ptr<bridge_env>& env, const http_request& req,
                        std::string key, catalog_read read, responder r);

} // namespace surge::net::bridge
