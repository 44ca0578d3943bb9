#include "journal_codec.hpp"

#include "surge.pb.h"

namespace surge::chaos {

std::optional<std::vector<journal_event>> decode_batch(const std::string& payload) {
  proto::EventBatch batch;
  if (!batch.ParseFromString(payload)) {
    return std::nullopt;
  }
  std::vector<journal_event> out;
  out.reserve(static_cast<std::size_t>(batch.events_size()));
  for (const auto& ev : batch.events()) {
    journal_event e;
    e.at_ms = ev.at_ms();
    switch (ev.kind_case()) {
    case proto::SkuEvent::kProductSet:
      e.kind = journal_event::kind_t::product_set;
      break;
    case proto::SkuEvent::kStockSet:
      e.kind = journal_event::kind_t::stock_set;
      e.value = ev.stock_set();
      break;
    case proto::SkuEvent::kStockAdded:
      e.kind = journal_event::kind_t::stock_added;
      e.value = ev.stock_added();
      break;
    case proto::SkuEvent::kHoldSet:
      e.kind = journal_event::kind_t::hold_set;
      e.hold_id = ev.hold_set().hold_id();
      e.cart_id = ev.hold_set().cart_id();
      e.qty = ev.hold_set().qty();
      e.expires_at_ms = ev.hold_set().expires_at_ms();
      break;
    case proto::SkuEvent::kHoldReleased:
      e.kind = journal_event::kind_t::hold_released;
      e.hold_id = ev.hold_released().hold_id();
      e.reason = static_cast<int>(ev.hold_released().reason());
      break;
    case proto::SkuEvent::kHoldConfirmed:
      e.kind = journal_event::kind_t::hold_confirmed;
      e.hold_id = ev.hold_confirmed().hold_id();
      e.reason = static_cast<int>(ev.hold_confirmed().reason());
      e.order_id = ev.hold_confirmed().order_id();
      break;
    case proto::SkuEvent::KIND_NOT_SET:
      break;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string encode_batch(const std::vector<journal_event>& events) {
  proto::EventBatch batch;
  for (const auto& e : events) {
    auto* ev = batch.add_events();
    ev->set_at_ms(e.at_ms);
    switch (e.kind) {
    case journal_event::kind_t::product_set:
      ev->mutable_product_set();
      break;
    case journal_event::kind_t::stock_set:
      ev->set_stock_set(e.value);
      break;
    case journal_event::kind_t::stock_added:
      ev->set_stock_added(e.value);
      break;
    case journal_event::kind_t::hold_set: {
      auto* h = ev->mutable_hold_set();
      h->set_hold_id(e.hold_id);
      h->set_cart_id(e.cart_id);
      h->set_qty(e.qty);
      h->set_expires_at_ms(e.expires_at_ms);
      break;
    }
    case journal_event::kind_t::hold_released: {
      auto* h = ev->mutable_hold_released();
      h->set_hold_id(e.hold_id);
      h->set_reason(static_cast<proto::HoldEnded::Reason>(e.reason));
      break;
    }
    case journal_event::kind_t::hold_confirmed: {
      auto* h = ev->mutable_hold_confirmed();
      h->set_hold_id(e.hold_id);
      h->set_reason(static_cast<proto::HoldEnded::Reason>(e.reason));
      h->set_order_id(e.order_id);
      break;
    }
    case journal_event::kind_t::none:
      break;
    }
  }
  return batch.SerializeAsString();
}

} // namespace surge::chaos
