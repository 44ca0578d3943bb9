#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "surge/persistence/port.hpp"
#include "surge/persistence/records.hpp"

namespace surge::persistence {

/// The durable journal of entities, their snapshots and the rows committed with them (the stock
/// projection and the products that listings read through catalog.hpp).
/// One connection (connection_port: not thread-safe, blocking; the commit_queue's threads).
class journal : public connection_port {
 public:
  /// Commits all of `reqs` in ONE transaction: all or nothing.
  /// Returns none on success; errc::conflict when any (stream, seq) already exists (nothing of
  /// `reqs` is applied); errc::unavailable when the server is unreachable or the connection broke
  /// (if it broke during COMMIT the outcome is unknown: callers re-read the journal to learn it).
  virtual caf::error commit(std::span<const commit_request> reqs) = 0;

  /// The batches of `stream` with seq > `after`, in ascending seq order.
  virtual caf::expected<std::vector<journal_batch>> read(const std::string& stream,
                                                         uint64_t after) = 0;

  /// The newest snapshot of `stream`, or nullopt.
  virtual caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream) = 0;

  /// The catalog row of `sku`, or nullopt.
  virtual caf::expected<std::optional<product_record>> load_product(const std::string& sku) = 0;

  /// SKUs whose stock projection shows live holds (held > 0), at most `limit`, by sku: the
  /// ones whose holds must be expired by an active SKU actor.
  virtual caf::expected<std::vector<std::string>> skus_holding(std::size_t limit) = 0;
};

/// Fast, losable copies of snapshots (Redis). The journal stays the truth: a snapshot read here
/// is only used when the journal continues right after its seq.
class snapshot_cache : public connection_port {
 public:
  virtual caf::error put(const snapshot& snap) = 0;
  virtual caf::expected<std::optional<snapshot>> get(const std::string& stream) = 0;
};

/// Carts (Redis): the whole cart as opaque bytes with a time to live.
/// One instance is one connection: not thread-safe, blocking.
/// One cart value to store (see cart_store::put_many).
struct cart_put {
  std::string_view cart_id;
  std::string_view payload;
  std::chrono::seconds ttl{0};
};

class cart_store : public connection_port {
 public:
  /// Stores `payload` under `cart_id`, replacing any value, expiring after `ttl`.
  virtual caf::error put(const std::string& cart_id, const std::string& payload,
                         std::chrono::seconds ttl) = 0;
  /// put() for each of `puts`, in order; one error (or none) per put, same positions. A store
  /// may send them together (Redis: one pipelined round trip); this default calls put().
  virtual std::vector<caf::error> put_many(const std::vector<cart_put>& puts) {
    std::vector<caf::error> out;
    out.reserve(puts.size());
    for (const auto& p : puts) {
      out.push_back(put(std::string{p.cart_id}, std::string{p.payload}, p.ttl));
    }
    return out;
  }
  virtual caf::expected<std::optional<std::string>> get(const std::string& cart_id) = 0;
};

} // namespace surge::persistence
