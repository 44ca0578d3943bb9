#pragma once

// In-memory twin of the PostgreSQL order store (orders, lines, payments, outbox, relay lock),
// for unit tests. Header-only.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fake_server.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"

namespace surge::fakes {

/// The "server" that memory_order_store instances connect to: share one between instances (one
/// per pool thread) to have them see the same orders. Its writes are creates and updates.
/// Thread-safe.
///
/// Time: wall-clock milliseconds plus an offset that tests move with advance(). Each change is
/// stamped with a strictly increasing time, so that, as in PostgreSQL (one now() per
/// transaction), a later call never sees an earlier change as "not older" than itself.
class memory_order_state : public fake_server {
 public:
  /// Moves this server's clock forward by `d` (orders look that much older to unsettled()).
  void advance(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> guard{mtx_};
    offset_us_ += d.count() * 1000;
  }

 private:
  friend class memory_order_store;

  struct row {
    persistence::order_record order; ///< with its lines, payment and refund
    int64_t updated_us = 0;
  };

  struct queued_event {
    persistence::outbox_event event;
    bool delivered = false;
  };

  /// REQUIRES: mtx_ held. The server's time in µs, later than every time it gave before.
  int64_t stamp_locked() {
    const int64_t wall = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    last_us_ = std::max(wall + offset_us_, last_us_ + 1);
    return last_us_;
  }

  std::map<std::string, row> rows_;           ///< by order id
  std::map<std::string, std::string> by_key_; ///< idempotency key -> order id
  std::map<int64_t, queued_event> outbox_;    ///< by id
  int64_t next_event_id_ = 1;
  const void* relay_holder_ = nullptr; ///< the instance holding the relay lock
  int64_t offset_us_ = 0;
  int64_t last_us_ = 0;
};

/// One "connection" to a memory_order_state, with the semantics of pg_order_store: create is
/// ON CONFLICT (idempotency key) DO NOTHING and returns the existing order; an order id taken by
/// another key is a conflict; update is one all-or-nothing step that refuses statuses the table
/// refuses (errc::invalid) and unknown orders (errc::invalid); unsettled lists pending and paid
/// orders, and those with a refund pending (the cancellation's or an operator's), older than the
/// age, oldest first; operators' refunds are a list upserted by refund id; the relay lock is
/// held by one instance until it is destroyed or broken. Not thread-safe (like a connection);
/// the state is.
class memory_order_store final : public persistence::order_store {
 public:
  explicit memory_order_store(std::shared_ptr<memory_order_state> state)
      : state_(std::move(state)) {}

  ~memory_order_store() override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    drop_lock_locked(); // the session ends
  }

  memory_order_store(const memory_order_store&) = delete;
  memory_order_store& operator=(const memory_order_store&) = delete;

  /// A store on `state`, or errc::unavailable while the state is down (like connecting).
  static caf::expected<std::unique_ptr<persistence::order_store>>
  connect(const std::shared_ptr<memory_order_state>& state) {
    {
      std::lock_guard<std::mutex> guard{state->mtx_};
      if (state->down_locked()) {
        return persistence::make_error(persistence::errc::unavailable, "memory orders are down");
      }
    }
    return std::unique_ptr<persistence::order_store>{new memory_order_store(state)};
  }

  bool healthy() const override { return healthy_; }

  caf::expected<std::pair<persistence::order_record, bool>>
  create(const persistence::order_record& order) override {
    using persistence::errc;
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    if (order.order_id.empty() || order.idempotency_key.empty()) {
      return persistence::make_error(errc::invalid,
                                     "an order needs an order id and an idempotency key");
    }
    auto& st = *state_;
    if (auto k = st.by_key_.find(order.idempotency_key); k != st.by_key_.end()) {
      return std::make_pair(st.rows_.at(k->second).order, false);
    }
    if (st.rows_.count(order.order_id) > 0) {
      return persistence::make_error(errc::conflict,
                                     "order " + order.order_id + " exists with another key");
    }
    const auto injected = take_fault_locked();
    if (injected && !injected->applied) {
      return injected_error(injected->code);
    }
    const int64_t now = st.stamp_locked();
    persistence::order_record stored = order;
    stored.status = "pending";
    stored.created_at_ms = now / 1000;
    stored.payment.reset();
    auto& r = st.rows_[order.order_id];
    r.order = stored;
    r.order.refund.reset(); // create stores no refund
    r.order.refunds.clear();
    stored.refunds.clear();
    r.updated_us = now;
    st.by_key_[order.idempotency_key] = order.order_id;
    if (injected) {
      return injected_error(injected->code);
    }
    return std::make_pair(std::move(stored), true);
  }

  caf::expected<std::optional<persistence::order_record>>
  load(const std::string& order_id) override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    if (auto i = state_->rows_.find(order_id); i != state_->rows_.end()) {
      return std::optional<persistence::order_record>{i->second.order};
    }
    return std::optional<persistence::order_record>{};
  }

  caf::error update(const std::string& order_id, const order_update& change) override {
    using persistence::errc;
    static const std::set<std::string> statuses{"pending", "paid",      "confirmed",
                                                "failed",  "cancelled", "requires_action"};
    static const std::set<std::string> refund_statuses{"pending", "refunded", "failed", "voided"};
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    auto& st = *state_;
    auto i = st.rows_.find(order_id);
    if (i == st.rows_.end()) {
      return persistence::make_error(errc::invalid, "no order " + order_id);
    }
    if (statuses.count(change.status) == 0 ||
        (change.refund && refund_statuses.count(change.refund->status) == 0) ||
        (change.refund_entry && refund_statuses.count(change.refund_entry->status) == 0)) {
      return persistence::make_error(errc::invalid, "a value the orders table refuses");
    }
    const auto injected = take_fault_locked();
    if (injected && !injected->applied) {
      return injected_error(injected->code);
    }
    auto& o = i->second.order;
    o.status = change.status;
    o.reason = change.reason;
    if (change.refund) {
      o.refund = change.refund;
    }
    const int64_t now = st.stamp_locked();
    if (change.payment) {
      const int64_t first = o.payment && o.payment->charged_at_ms > 0 ? o.payment->charged_at_ms
                            : change.payment->charged_at_ms > 0 ? change.payment->charged_at_ms
                                                                : now / 1000;
      o.payment = change.payment;
      o.payment->charged_at_ms = first;
    }
    if (const auto& e = change.refund_entry) {
      // Inserted, or (same refund id) its outcome updated; the rest is fixed at insert.
      auto same = std::find_if(o.refunds.begin(), o.refunds.end(),
                               [&](const auto& x) { return x.refund_id == e->refund_id; });
      if (same == o.refunds.end()) {
        auto stored = *e;
        stored.created_at_ms = now / 1000;
        stored.settled_at_ms = e->status == "pending" ? 0 : now / 1000;
        o.refunds.push_back(std::move(stored));
      } else {
        same->status = e->status;
        same->gateway_refund_id = e->gateway_refund_id;
        same->message = e->message;
        same->settled_at_ms = e->status == "pending" ? 0 : now / 1000;
      }
    }
    if (change.event) {
      auto ev = *change.event;
      ev.id = st.next_event_id_++;
      st.outbox_[ev.id] = {std::move(ev), false};
    }
    i->second.updated_us = now;
    if (injected) {
      return injected_error(injected->code);
    }
    return caf::none;
  }

  caf::expected<std::vector<std::string>> unsettled(std::chrono::milliseconds age,
                                                    std::chrono::milliseconds action_age,
                                                    std::size_t limit) override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    const int64_t before = state_->stamp_locked() - age.count() * 1000;
    const int64_t action_before = state_->stamp_locked() - action_age.count() * 1000;
    std::vector<std::pair<int64_t, std::string>> found;
    for (const auto& [id, r] : state_->rows_) {
      const auto& o = r.order;
      const bool open = o.status == "pending" || o.status == "paid" ||
                        (o.refund && o.refund->status == "pending") ||
                        std::any_of(o.refunds.begin(), o.refunds.end(),
                                    [](const persistence::order_refund_record& x) {
                                      return x.status == "pending";
                                    });
      if ((open && r.updated_us < before) ||
          (o.status == "requires_action" && r.updated_us < action_before)) {
        found.emplace_back(r.updated_us, id);
      }
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> out;
    for (std::size_t i = 0; i < found.size() && i < limit; ++i) {
      out.push_back(found[i].second);
    }
    return out;
  }

  caf::expected<bool> try_relay_lock() override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    if (state_->relay_holder_ == nullptr || state_->relay_holder_ == this) {
      state_->relay_holder_ = this;
      return true;
    }
    return false;
  }

  caf::expected<std::vector<persistence::outbox_event>> pending_events(std::size_t limit) override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    std::vector<persistence::outbox_event> out;
    for (const auto& [id, e] : state_->outbox_) {
      if (out.size() >= limit) {
        break;
      }
      if (!e.delivered) {
        out.push_back(e.event);
      }
    }
    return out;
  }

  caf::error mark_delivered(const std::vector<int64_t>& ids) override {
    if (ids.empty()) {
      return caf::none;
    }
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = check_locked()) {
      return err;
    }
    for (auto id : ids) {
      if (auto i = state_->outbox_.find(id); i != state_->outbox_.end()) {
        i->second.delivered = true;
      }
    }
    return caf::none;
  }

 private:
  /// REQUIRES: state mutex held. A broken connection, or a server that is down (which breaks
  /// this connection and ends its session).
  caf::error check_locked() {
    if (!healthy_) {
      return persistence::make_error(persistence::errc::unavailable, "connection is broken");
    }
    if (state_->down_locked()) {
      break_locked();
      return persistence::make_error(persistence::errc::unavailable, "memory orders are down");
    }
    return caf::none;
  }

  /// REQUIRES: state mutex held. The fault this write meets, if any; one of errc::unavailable
  /// breaks this connection.
  std::optional<fake_server::fault> take_fault_locked() {
    auto f = state_->take_fault_locked();
    if (f && f->code == persistence::errc::unavailable) {
      break_locked();
    }
    return f;
  }

  caf::error injected_error(persistence::errc code) {
    if (code == persistence::errc::unavailable) {
      return persistence::make_error(code, "outcome unknown (injected)");
    }
    return persistence::make_error(code, "injected fault");
  }

  /// REQUIRES: state mutex held.
  void break_locked() {
    healthy_ = false;
    drop_lock_locked();
  }

  /// REQUIRES: state mutex held.
  void drop_lock_locked() {
    if (state_->relay_holder_ == this) {
      state_->relay_holder_ = nullptr;
    }
  }

  const std::shared_ptr<memory_order_state> state_;
  bool healthy_ = true;
};

} // namespace surge::fakes
