#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "surge/actors/messages.hpp"
#include "surge/persistence/records.hpp"

namespace surge::actors {

using persistence::sale_record;

/// What a SKU actor checks when a hold on a sale SKU grows (sku_model::decide_hold): the window,
/// the queue and the sale's per-customer limit.
struct sale_gate {
  std::string sale_id;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  bool queue = false; ///< a pass for `sale_id` is needed (hold_request::pass_sale)
  int64_t limit = 0;  ///< units per customer of this SKU within the sale; 0: none
};

/// The node's view of every sale (the `sales` table), refreshed by the runtime every second and
/// at once after an admin's put on this node. Read by SKU actors (the gate of their SKU), the
/// sale actors (their definition), the bridge (product JSON, queue routes) and the prewarm
/// scheduler. Thread-safe: readers take a shared lock for a lookup and get shared_ptrs to
/// immutable records.
class sale_index {
 public:
  using sale_ptr = std::shared_ptr<const sale_record>;

  /// Replaces the whole index with `all` (the table as just read).
  void replace(std::vector<sale_record> all);
  /// Adds or replaces one sale (this node's admin put), until the next replace().
  void put(sale_record s);
  /// Drops one sale (this node's admin delete).
  void remove(const std::string& sale_id);

  /// The sale `sale_id`, or nullptr.
  sale_ptr find(const std::string& sale_id) const;
  /// The sale that governs `sku` at `now_ms`: of the sales naming it, the one not ended yet with
  /// the earliest start; when all have ended, the one that ended last; nullptr when none names it.
  sale_ptr of_sku(std::string_view sku, int64_t now_ms) const;
  /// of_sku() as the gate a SKU actor checks; empty sale_id when none.
  sale_gate gate_of(std::string_view sku, int64_t now_ms) const;
  /// Every sale, by starts_at then sale_id.
  std::vector<sale_ptr> all() const;
  /// Bumped on every change: lets callers skip work when nothing changed.
  uint64_t version() const;

 private:
  mutable std::shared_mutex mtx_;
  std::unordered_map<std::string, sale_ptr> by_id_;
  std::unordered_map<std::string, std::vector<sale_ptr>, std::hash<std::string_view>,
                     std::equal_to<>>
      by_sku_;
  uint64_t version_ = 0;
  void index_locked();
};

/// The queues of the sale actors living on this node, as each last published its summary (at
/// every tick, about 4 times a second): the node's metrics (surge_sale_*) and the console read
/// it. A sale actor that passivates or hands over erases its entry. Thread-safe.
class sale_board {
 public:
  void publish(const queue_summary& s);
  void erase(const std::string& sale_id);
  std::vector<queue_summary> all() const;

 private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, queue_summary> by_id_;
};

} // namespace surge::actors
