#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "surge/persistence/port.hpp"
#include "surge/persistence/records.hpp"
#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// Sale definitions (the `sales` table): what every node's sale index is refreshed from.
/// One connection (connection_port): not thread-safe, blocking; a sale_pool's thread.
class sale_store : public connection_port {
 public:
  /// Creates or replaces the sale `s.sale_id` (updated_at_ms set to the server's clock) and
  /// returns it as stored. errc::conflict (message naming the SKU and the other sale) when one
  /// of its SKUs is in another sale whose window overlaps this one's; errc::conflict when the
  /// sale has started (starts_at passed) and the put would move its start or drop a SKU;
  /// errc::unavailable when the server cannot be reached.
  virtual caf::expected<sale_record> put(const sale_record& s) = 0;

  /// The sale `sale_id`, or nullopt.
  virtual caf::expected<std::optional<sale_record>> get(const std::string& sale_id) = 0;

  /// Every sale whose ends_at is after `ended_after_ms` (0: all), by starts_at then sale_id.
  virtual caf::expected<std::vector<sale_record>> list(int64_t ended_after_ms) = 0;

  /// Deletes the sale; false when there was none.
  virtual caf::expected<bool> remove(const std::string& sale_id) = 0;
};

using sale_pool = worker_pool<sale_store>;

/// A sale_store on PostgreSQL at `url` (migrations already applied). Never throws: a store that
/// cannot connect answers unavailable and reports !healthy().
std::unique_ptr<sale_store> make_pg_sale_store(const std::string& url);

} // namespace surge::persistence
