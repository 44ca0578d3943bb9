#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "surge.pb.h"
#include "surge/actors/messages.hpp"
#include "surge/actors/sales.hpp"

namespace surge::actors {

/// A hold as sku_model keeps it: the fields of proto::Hold, stored with fewer allocations
/// (its id is the key of its entry in the model, its cart id one string), since a SKU keeps
/// one per cart that holds it — dormant carts' holds included.
class hold_record {
 public:
  const std::string& hold_id() const { return *id_; }
  const std::string& cart_id() const { return cart_id_; }
  const std::string& customer_id() const { return customer_id_; }
  int64_t qty() const { return qty_; }
  int64_t expires_at_ms() const { return expires_at_ms_; }
  int64_t created_at_ms() const { return created_at_ms_; }
  proto::Hold to_proto() const;

 private:
  friend class sku_model;
  const std::string* id_ = nullptr; ///< the key of its entry in sku_model's holds
  std::string cart_id_;
  std::string customer_id_;
  int64_t qty_ = 0;
  int64_t expires_at_ms_ = 0;
  int64_t created_at_ms_ = 0;
};

/// The stock of one SKU as a pure state machine: commands are *decided* against the current
/// state (yielding an event or an error, never changing anything), and events are *applied*
/// (never failing). Replaying a journal applies its events in order and yields the same state.
///
/// Invariant after every apply of a decided event: 0 <= held, 0 <= sold,
/// held + sold <= on_hand (G1). Not thread-safe: owned by its SKU actor. Movable, not copyable
/// (its indexes point into its own entries).
class sku_model {
 public:
  sku_model() = default;
  explicit sku_model(const proto::SkuSnapshot& snap);
  sku_model(sku_model&&) = default;
  sku_model& operator=(sku_model&&) = default;
  sku_model(const sku_model&) = delete;
  sku_model& operator=(const sku_model&) = delete;

  bool exists() const { return exists_; }
  const proto::Product& product() const { return product_; }
  int64_t on_hand() const { return on_hand_; }
  int64_t held() const { return held_; }
  int64_t sold() const { return sold_; }
  int64_t available() const { return on_hand_ - held_ - sold_; }
  std::size_t hold_count() const { return holds_.size(); }
  std::size_t customer_count() const { return customers_.size(); }
  std::size_t confirmation_count() const { return confirmed_.size(); }

  /// The hold of `cart_id`, or nullptr. Valid until the next apply().
  const hold_record* hold_of_cart(const std::string& cart_id) const;
  const hold_record* hold(const std::string& hold_id) const;

  /// Held + sold by `customer_id`; for an anonymous cart (empty customer id), what `cart_id`
  /// holds.
  int64_t customer_qty(const std::string& customer_id, const std::string& cart_id) const;

  /// How long holds live: each (re)set of a hold expires `ttl_ms` later, but never later than
  /// `max_lifetime_ms` (at least `ttl_ms`) after the hold was first taken; and the sale that
  /// governs the SKU at `now_ms`, if any (sale_index::gate_of).
  struct hold_terms {
    int64_t now_ms = 0;
    int64_t ttl_ms = 0;
    int64_t max_lifetime_ms = 0;
    sale_gate sale = {}; ///< empty sale_id: no sale governs the SKU
  };

  /// Sets the hold of `req.cart_id` to exactly `req.qty`. `new_hold_id` names the hold if the
  /// cart has none yet. Returns nullopt when nothing changes (qty 0 and no hold, or the same qty
  /// at the same expiry). Checks, when the hold grows, in this order: the sale's window
  /// (sale_not_started before terms.sale.starts_at_ms, sale_ended from its ends_at_ms on), its
  /// queue (queue_required unless req.pass_sale is the sale's id), currency_mismatch
  /// (req.currency is another), login_required (a per-customer limit, an anonymous cart and
  /// req.login_required), sold_out, limit_exceeded. The per-customer limit is the smaller
  /// non-zero one of the product's and the sale's. Shrinking or releasing a hold is never
  /// refused for the sale. Errors also: not_found (SKU unknown), invalid (qty < 0). An existing
  /// hold keeps its id, customer and creation time.
  caf::expected<std::optional<proto::SkuEvent>> decide_hold(const hold_request& req,
                                                            const hold_terms& terms,
                                                            const std::string& new_hold_id) const;

  /// Turns the hold into a sale for `order_id`, which bought `qty` of it for `cart_id`.
  /// nullopt when the hold was already confirmed for `order_id` (a retry). Errors: not_found
  /// (no such hold: released, expired, or sold to another order), conflict (the hold is not
  /// what the order bought: another cart's, or another quantity — its cart changed it).
  caf::expected<std::optional<proto::SkuEvent>> decide_confirm(const std::string& hold_id,
                                                               const std::string& order_id,
                                                               const std::string& cart_id,
                                                               int64_t qty, int64_t now_ms) const;

  /// Undoes the sale of a hold confirmed for `order_id` (its order was cancelled): sold -= qty,
  /// and the customer's count drops by qty. nullopt when there is nothing to undo: the hold was
  /// never confirmed for `order_id`, or its sale was already returned (a retry).
  std::optional<proto::SkuEvent> decide_return(const std::string& hold_id,
                                               const std::string& order_id, int64_t now_ms) const;

  /// How long a confirmation is remembered for decide_confirm's and decide_return's retries.
  static constexpr int64_t confirmation_memory_ms = 7LL * 24 * 3600 * 1000;

  /// The most on_hand may be (10^12): decide_stock refuses more, whether by set or by add.
  static constexpr int64_t max_on_hand = 1'000'000'000'000;

  /// on_hand := value, or on_hand += value. Errors: not_found, invalid (result negative or
  /// above max_on_hand), conflict (on_hand would drop below held + sold).
  caf::expected<proto::SkuEvent> decide_stock(bool set, int64_t value, int64_t now_ms) const;

  /// Creates or updates the catalog data.
  proto::SkuEvent decide_product(const proto::Product& p, int64_t now_ms) const;

  /// Events releasing every hold whose expiry is <= now_ms (oldest first).
  std::vector<proto::SkuEvent> decide_expiry(int64_t now_ms) const;

  /// The earliest hold expiry, or nullopt when there are no holds.
  std::optional<int64_t> next_expiry() const;

  void apply(const proto::SkuEvent& ev);
  void apply(const proto::EventBatch& batch);

  proto::SkuSnapshot snapshot() const;

 private:
  /// Removes the hold; its qty moves to sold when `to_sold`. Returns the removed hold, or
  /// nullopt when it was already gone (a replay).
  std::optional<proto::Hold> remove_hold(const std::string& hold_id, bool to_sold);
  /// Inserts or replaces the hold `h` and indexes it.
  void put_hold(const proto::Hold& h);
  void return_sale(const proto::HoldEnded& r);
  void adjust_customer(const std::string& customer_id, int64_t delta);
  void remember(const proto::Confirmation& c);

  bool exists_ = false;
  proto::Product product_;
  int64_t on_hand_ = 0;
  int64_t held_ = 0;
  int64_t sold_ = 0;
  // A SKU keeps one hold per cart that holds it, for as long as the hold lasts: the indexes
  // are views of the strings of the holds' entries (node-based maps: they never move), not
  // copies. Every entry of hold_by_cart_ views the cart id of the record it points to.
  std::unordered_map<std::string, hold_record> holds_;                    ///< by hold id
  std::unordered_map<std::string_view, const hold_record*> hold_by_cart_; ///< by cart id
  /// Named customers' held + sold. Anonymous carts are limited by their own hold alone, so
  /// a hot SKU sold to anonymous carts keeps no per-cart counters.
  std::unordered_map<std::string, int64_t> customers_;
  std::set<std::pair<int64_t, std::string_view>> expiries_;        ///< (expires_at_ms, hold id)
  std::unordered_map<std::string, proto::Confirmation> confirmed_; ///< by hold id
  std::set<std::pair<int64_t, std::string>> confirmed_order_;      ///< (at_ms, hold id), to forget
};

} // namespace surge::actors
