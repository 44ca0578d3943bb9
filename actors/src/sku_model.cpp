#include "surge/actors/sku_model.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "surge/actors/errors.hpp"

namespace surge::actors {

namespace {

bool add_overflows(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_add_overflow(a, b, &r);
}

/// The smaller non-zero one of two per-customer limits (0: none).
int64_t effective_limit(int64_t a, int64_t b) {
  if (a <= 0) {
    return std::max<int64_t>(b, 0);
  }
  return b > 0 ? std::min(a, b) : a;
}

/// "42s": the time from `now_ms` until `at_ms`, rounded up to whole seconds.
std::string seconds_until(int64_t now_ms, int64_t at_ms) {
  return std::to_string((at_ms - now_ms + 999) / 1000) + "s";
}

} // namespace

sku_model::sku_model(const proto::SkuSnapshot& snap)
    : exists_(snap.exists())
    , product_(snap.product())
    , on_hand_(snap.on_hand())
    , held_(snap.held())
    , sold_(snap.sold()) {
  for (const auto& h : snap.holds()) {
    put_hold(h);
  }
  for (const auto& c : snap.customers()) {
    customers_.emplace(c.customer(), c.qty());
  }
  for (const auto& c : snap.confirmed()) {
    remember(c);
  }
}

void sku_model::remember(const proto::Confirmation& c) {
  if (auto i = confirmed_.find(c.hold_id()); i != confirmed_.end()) {
    confirmed_order_.erase({i->second.at_ms(), c.hold_id()});
  }
  confirmed_[c.hold_id()] = c;
  confirmed_order_.emplace(c.at_ms(), c.hold_id());
}

proto::Hold hold_record::to_proto() const {
  proto::Hold h;
  h.set_hold_id(hold_id());
  h.set_cart_id(cart_id_);
  h.set_customer_id(customer_id_);
  h.set_qty(qty_);
  h.set_expires_at_ms(expires_at_ms_);
  h.set_created_at_ms(created_at_ms_);
  return h;
}

const hold_record* sku_model::hold_of_cart(const std::string& cart_id) const {
  auto i = hold_by_cart_.find(cart_id);
  return i == hold_by_cart_.end() ? nullptr : i->second;
}

const hold_record* sku_model::hold(const std::string& hold_id) const {
  auto i = holds_.find(hold_id);
  return i == holds_.end() ? nullptr : &i->second;
}

void sku_model::put_hold(const proto::Hold& h) {
  auto [i, fresh] = holds_.try_emplace(h.hold_id());
  hold_record& r = i->second;
  if (!fresh) { // unindex the old version first: the indexes view its strings
    expiries_.erase({r.expires_at_ms_, i->first});
    if (auto c = hold_by_cart_.find(r.cart_id_); c != hold_by_cart_.end() && c->second == &r) {
      hold_by_cart_.erase(c);
    }
  }
  r.id_ = &i->first;
  r.cart_id_ = h.cart_id();
  r.customer_id_ = h.customer_id();
  r.qty_ = h.qty();
  r.expires_at_ms_ = h.expires_at_ms();
  r.created_at_ms_ = h.created_at_ms();
  // A cart has one hold per SKU; should another hold name it, the newest is its hold (the
  // entry is replaced, key included, so that it views this record's cart id).
  hold_by_cart_.erase(r.cart_id_);
  hold_by_cart_.emplace(r.cart_id_, &r);
  expiries_.emplace(r.expires_at_ms_, i->first);
}

int64_t sku_model::customer_qty(const std::string& customer_id, const std::string& cart_id) const {
  if (customer_id.empty()) {
    const hold_record* h = hold_of_cart(cart_id);
    return h != nullptr ? h->qty() : 0;
  }
  auto i = customers_.find(customer_id);
  return i == customers_.end() ? 0 : i->second;
}

caf::expected<std::optional<proto::SkuEvent>>
sku_model::decide_hold(const hold_request& req, const hold_terms& terms,
                       const std::string& new_hold_id) const {
  if (!exists_) {
    return make_error(errc::not_found, "unknown SKU");
  }
  if (req.qty < 0) {
    return make_error(errc::invalid, "qty must not be negative");
  }
  const hold_record* existing = hold_of_cart(req.cart_id);
  proto::SkuEvent ev;
  ev.set_at_ms(terms.now_ms);
  if (req.qty == 0) {
    if (existing == nullptr) {
      return std::optional<proto::SkuEvent>{};
    }
    auto* rel = ev.mutable_hold_released();
    rel->set_hold_id(existing->hold_id());
    rel->set_reason(proto::HoldEnded::RELEASED);
    return std::optional<proto::SkuEvent>{std::move(ev)};
  }
  const int64_t current = existing != nullptr ? existing->qty() : 0;
  const int64_t delta = req.qty - current;
  // An existing hold keeps the customer it was taken for.
  const std::string& customer = existing != nullptr ? existing->customer_id() : req.customer_id;
  const sale_gate& sale = terms.sale;
  const bool in_sale = !sale.sale_id.empty();
  const int64_t limit = effective_limit(product_.per_customer_limit(), in_sale ? sale.limit : 0);
  if (delta > 0) {
    if (in_sale) {
      if (terms.now_ms < sale.starts_at_ms) {
        return make_error(errc::sale_not_started,
                          "the sale " + sale.sale_id + " has not started: it starts in " +
                              seconds_until(terms.now_ms, sale.starts_at_ms));
      }
      if (terms.now_ms >= sale.ends_at_ms) {
        return make_error(errc::sale_ended, "the sale " + sale.sale_id + " has ended");
      }
      if (sale.queue && req.pass_sale != sale.sale_id) {
        return make_error(errc::queue_required,
                          "the sale " + sale.sale_id +
                              " has a waiting room: join its queue and send the pass it gives "
                              "(header Surge-Pass)");
      }
    }
    if (!req.currency.empty() && req.currency != product_.currency()) {
      return make_error(errc::currency_mismatch, "the cart is in " + req.currency + ", " +
                                                     product_.sku() + " in " + product_.currency());
    }
    if (limit > 0 && customer.empty() && req.login_required) {
      return make_error(errc::login_required,
                        "at most " + std::to_string(limit) + " per customer: sign in to buy it");
    }
    if (delta > available()) {
      return make_error(errc::sold_out, "only " + std::to_string(available()) + " more available");
    }
    if (limit > 0 && customer_qty(customer, req.cart_id) + delta > limit) {
      return make_error(errc::limit_exceeded, "at most " + std::to_string(limit) + " per customer");
    }
  }
  // A hold from before created_at_ms existed counts from now.
  const int64_t created = existing != nullptr && existing->created_at_ms() > 0
                              ? existing->created_at_ms()
                              : terms.now_ms;
  const int64_t lifetime = std::max(terms.max_lifetime_ms, terms.ttl_ms);
  const int64_t expires = std::min(terms.now_ms + terms.ttl_ms, created + lifetime);
  if (existing != nullptr && existing->qty() == req.qty && existing->expires_at_ms() == expires) {
    return std::optional<proto::SkuEvent>{}; // at its limit already: nothing changes
  }
  auto* h = ev.mutable_hold_set();
  h->set_hold_id(existing != nullptr ? existing->hold_id() : new_hold_id);
  h->set_cart_id(req.cart_id);
  h->set_customer_id(customer);
  h->set_qty(req.qty);
  h->set_expires_at_ms(expires);
  h->set_created_at_ms(created);
  return std::optional<proto::SkuEvent>{std::move(ev)};
}

caf::expected<std::optional<proto::SkuEvent>>
sku_model::decide_confirm(const std::string& hold_id, const std::string& order_id,
                          const std::string& cart_id, int64_t qty, int64_t now_ms) const {
  const hold_record* h = hold(hold_id);
  if (h == nullptr) {
    if (auto i = confirmed_.find(hold_id);
        i != confirmed_.end() && i->second.order_id() == order_id) {
      if (i->second.returned()) {
        return make_error(errc::not_found, "the sale of this hold was returned");
      }
      return std::optional<proto::SkuEvent>{};
    }
    return make_error(errc::not_found, "no such hold (released or expired)");
  }
  if (h->cart_id() != cart_id || h->qty() != qty) {
    return make_error(errc::conflict, "the hold is for " + std::to_string(h->qty()) +
                                          ", not the order's " + std::to_string(qty));
  }
  proto::SkuEvent ev;
  ev.set_at_ms(now_ms);
  auto* c = ev.mutable_hold_confirmed();
  c->set_hold_id(hold_id);
  c->set_reason(proto::HoldEnded::CONFIRMED);
  c->set_order_id(order_id);
  return std::optional<proto::SkuEvent>{std::move(ev)};
}

std::optional<proto::SkuEvent> sku_model::decide_return(const std::string& hold_id,
                                                        const std::string& order_id,
                                                        int64_t now_ms) const {
  auto i = confirmed_.find(hold_id);
  if (i == confirmed_.end() || i->second.order_id() != order_id || i->second.returned()) {
    return std::nullopt;
  }
  proto::SkuEvent ev;
  ev.set_at_ms(now_ms);
  auto* r = ev.mutable_sale_returned();
  r->set_hold_id(hold_id);
  r->set_reason(proto::HoldEnded::RETURNED);
  r->set_order_id(order_id);
  return ev;
}

caf::expected<proto::SkuEvent> sku_model::decide_stock(bool set, int64_t value,
                                                       int64_t now_ms) const {
  if (!exists_) {
    return make_error(errc::not_found, "unknown SKU");
  }
  int64_t next = value;
  if (!set && add_overflows(on_hand_, value)) {
    return make_error(errc::invalid, "on_hand would overflow");
  }
  if (!set) {
    next = on_hand_ + value;
  }
  if (next < 0) {
    return make_error(errc::invalid, "on_hand must not be negative");
  }
  if (next > max_on_hand) {
    return make_error(errc::invalid, "on_hand must not exceed " + std::to_string(max_on_hand) +
                                         ", would be " + std::to_string(next));
  }
  if (next < held_ + sold_) {
    return make_error(errc::conflict, "on_hand " + std::to_string(next) +
                                          " is below held + sold (" +
                                          std::to_string(held_ + sold_) + ")");
  }
  proto::SkuEvent ev;
  ev.set_at_ms(now_ms);
  if (set) {
    ev.set_stock_set(value);
  } else {
    ev.set_stock_added(value);
  }
  return ev;
}

proto::SkuEvent sku_model::decide_product(const proto::Product& p, int64_t now_ms) const {
  proto::SkuEvent ev;
  ev.set_at_ms(now_ms);
  *ev.mutable_product_set() = p;
  return ev;
}

std::vector<proto::SkuEvent> sku_model::decide_expiry(int64_t now_ms) const {
  std::vector<proto::SkuEvent> result;
  for (const auto& [at, id] : expiries_) {
    if (at > now_ms) {
      break;
    }
    proto::SkuEvent ev;
    ev.set_at_ms(now_ms);
    auto* rel = ev.mutable_hold_released();
    rel->set_hold_id(std::string{id});
    rel->set_reason(proto::HoldEnded::EXPIRED);
    result.push_back(std::move(ev));
  }
  return result;
}

std::optional<int64_t> sku_model::next_expiry() const {
  if (expiries_.empty()) {
    return std::nullopt;
  }
  return expiries_.begin()->first;
}

void sku_model::adjust_customer(const std::string& customer_id, int64_t delta) {
  if (customer_id.empty()) {
    return;
  }
  auto c = customers_.find(customer_id);
  if (c != customers_.end()) {
    c->second += delta;
    if (c->second <= 0) {
      customers_.erase(c);
    }
  }
}

std::optional<proto::Hold> sku_model::remove_hold(const std::string& hold_id, bool to_sold) {
  auto i = holds_.find(hold_id);
  if (i == holds_.end()) {
    return std::nullopt; // replay of an event whose hold is already gone: nothing to do
  }
  proto::Hold h = i->second.to_proto();
  expiries_.erase({i->second.expires_at_ms_, i->first});
  if (auto c = hold_by_cart_.find(i->second.cart_id_);
      c != hold_by_cart_.end() && c->second == &i->second) {
    hold_by_cart_.erase(c);
  }
  holds_.erase(i);
  held_ -= h.qty();
  if (to_sold) {
    sold_ += h.qty(); // still counts against its customer's limit
  } else {
    adjust_customer(h.customer_id(), -h.qty());
  }
  return h;
}

void sku_model::return_sale(const proto::HoldEnded& r) {
  auto i = confirmed_.find(r.hold_id());
  if (i == confirmed_.end() || i->second.order_id() != r.order_id() || i->second.returned()) {
    return; // nothing sold under this hold for that order, or returned before
  }
  proto::Confirmation& c = i->second;
  sold_ -= c.qty();
  adjust_customer(c.customer_id(), -c.qty());
  c.set_returned(true);
}

void sku_model::apply(const proto::SkuEvent& ev) {
  switch (ev.kind_case()) {
  case proto::SkuEvent::kProductSet:
    exists_ = true;
    product_ = ev.product_set();
    break;
  case proto::SkuEvent::kStockSet:
    on_hand_ = ev.stock_set();
    break;
  case proto::SkuEvent::kStockAdded:
    on_hand_ += ev.stock_added();
    break;
  case proto::SkuEvent::kHoldSet: {
    const proto::Hold& h = ev.hold_set();
    int64_t previous = 0;
    if (auto i = holds_.find(h.hold_id()); i != holds_.end()) {
      previous = i->second.qty();
    }
    held_ += h.qty() - previous;
    if (!h.customer_id().empty()) {
      customers_[h.customer_id()] += h.qty() - previous;
    }
    put_hold(h);
    break;
  }
  case proto::SkuEvent::kHoldReleased:
    remove_hold(ev.hold_released().hold_id(), false);
    break;
  case proto::SkuEvent::kHoldConfirmed: {
    const auto& c = ev.hold_confirmed();
    auto sold = remove_hold(c.hold_id(), true);
    if (!sold) {
      break; // a replay: the confirmation is remembered already
    }
    proto::Confirmation rec;
    rec.set_hold_id(c.hold_id());
    rec.set_order_id(c.order_id());
    rec.set_at_ms(ev.at_ms());
    rec.set_qty(sold->qty());
    rec.set_customer_id(sold->customer_id());
    remember(rec);
    // Forget confirmations too old to be retried.
    while (!confirmed_order_.empty() &&
           confirmed_order_.begin()->first < ev.at_ms() - confirmation_memory_ms) {
      confirmed_.erase(confirmed_order_.begin()->second);
      confirmed_order_.erase(confirmed_order_.begin());
    }
    break;
  }
  case proto::SkuEvent::kSaleReturned:
    return_sale(ev.sale_returned());
    break;
  case proto::SkuEvent::KIND_NOT_SET:
    break;
  }
}

void sku_model::apply(const proto::EventBatch& batch) {
  for (const auto& ev : batch.events()) {
    apply(ev);
  }
}

proto::SkuSnapshot sku_model::snapshot() const {
  proto::SkuSnapshot snap;
  snap.set_exists(exists_);
  *snap.mutable_product() = product_;
  snap.set_on_hand(on_hand_);
  snap.set_held(held_);
  snap.set_sold(sold_);
  snap.mutable_holds()->Reserve(static_cast<int>(holds_.size()));
  for (const auto& [id, h] : holds_) {
    *snap.add_holds() = h.to_proto();
  }
  snap.mutable_customers()->Reserve(static_cast<int>(customers_.size()));
  for (const auto& [key, qty] : customers_) {
    auto* c = snap.add_customers();
    c->set_customer(key);
    c->set_qty(qty);
  }
  snap.mutable_confirmed()->Reserve(static_cast<int>(confirmed_.size()));
  for (const auto& [id, c] : confirmed_) {
    *snap.add_confirmed() = c;
  }
  return snap;
}

} // namespace surge::actors
