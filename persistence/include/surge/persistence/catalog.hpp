#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "surge/persistence/port.hpp"
#include "surge/persistence/records.hpp"
#include "surge/persistence/worker_pool.hpp"

namespace surge::persistence {

/// The catalog as shoppers browse it: the products the admin API set, joined with the stock
/// projection that SKU actors commit with their journal batches (journal.hpp). A read port only:
/// nothing that decides stock or orders reads through it.
/// One connection (connection_port), used from a catalog_pool's threads.
class catalog : public connection_port {
 public:
  /// A page of the catalog, ordered by sku (byte order), of at most `q.limit` products (clamped
  /// to 1..100) whose sku orders after `q.after_sku` and that pass every filter of `q`:
  /// - `text`: every word of it (letters and digits, case-insensitive) is a word of the name,
  ///   description or category; a text without any word filters nothing;
  /// - `category` (exact), `min_price` / `max_price` (inclusive), `in_stock_only` (available > 0).
  /// `available` is on_hand - held - sold of the stock projection as last committed, 0 for a
  /// product without stock. errc::unavailable when the server is unreachable or the connection
  /// broke (healthy() is then false).
  virtual caf::expected<std::vector<product_listing>> list_products(const product_query& q) = 0;

  /// One page of products matching `q` (API.md "Search and catalog", DESIGN.md for the
  /// relevance rules), with the facets and total it asks for. `available` is as in
  /// list_products. With a text, `total` is exact; without one it is exact up to 1000 and 1000
  /// beyond (read: 1000 or more). Facets leave out products without a category and empty price
  /// buckets (edges 0, 2500, 5000, 10000, 25000, 50000, 100000 cents, then open). The cursor
  /// is a keyset (sort key, sku): a product that does not change is neither skipped nor
  /// repeated while others are added, removed or changed between pages. errc::invalid
  /// (message naming 'cursor') for a cursor this query did not make; errc::unavailable as
  /// above.
  virtual caf::expected<search_page> search(const search_query& q) = 0;

  /// Every category with its number of products, by category (byte order); products without
  /// a category are not counted.
  virtual caf::expected<std::vector<category_count>> categories() = 0;

  /// After a call: when its answer was read on a replica, the time (steady clock) as of which
  /// that replica held every change committed on the primary; nullopt when it was read on the
  /// primary (current as of the call).
  virtual std::optional<std::chrono::steady_clock::time_point> last_read_fresh_as_of() const {
    return std::nullopt;
  }
};

/// Threads that each own one catalog connection: listings never wait on the SKU actors' pool.
using catalog_pool = worker_pool<catalog>;

/// Opens the PostgreSQL catalog on `url` (libpq URI). errc::unavailable when it cannot connect.
caf::expected<std::unique_ptr<catalog>> make_pg_catalog(const std::string& url);

} // namespace surge::persistence
