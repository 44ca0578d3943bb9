#include "journal_codec.hpp"

#include "surge.pb.h"

namespace surge::chaos {

namespace {

void decode_ended(journal_event::kind_t kind, const proto::HoldEnded& h, journal_event& e) {
  e.kind = kind;
  e.hold_id = h.hold_id();
  e.reason = static_cast<int>(h.reason());
  e.order_id = h.order_id();
}

void encode_ended(const journal_event& e, proto::HoldEnded* h) {
  h->set_hold_id(e.hold_id);
  h->set_reason(static_cast<proto::HoldEnded::Reason>(e.reason));
  h->set_order_id(e.order_id);
}

} // namespace

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
      decode_ended(journal_event::kind_t::hold_released, ev.hold_released(), e);
      break;
    case proto::SkuEvent::kHoldConfirmed:
      decode_ended(journal_event::kind_t::hold_confirmed, ev.hold_confirmed(), e);
      break;
    case proto::SkuEvent::kSaleReturned:
      decode_ended(journal_event::kind_t::sale_returned, ev.sale_returned(), e);
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
    case journal_event::kind_t::hold_released:
      encode_ended(e, ev->mutable_hold_released());
      break;
    case journal_event::kind_t::hold_confirmed:
      encode_ended(e, ev->mutable_hold_confirmed());
      break;
    case journal_event::kind_t::sale_returned:
      encode_ended(e, ev->mutable_sale_returned());
      break;
    case journal_event::kind_t::none:
      break;
    }
  }
  return batch.SerializeAsString();
}

} // namespace surge::chaos
