// A minimal sale_index so that the sale actor links and its tests can fill an index by hand.
// H2's implementation (branch sale-gate) replaces this file when the branches merge.
#include "surge/actors/sales.hpp"

#include <algorithm>
#include <limits>

namespace surge::actors {

void sale_index::replace(std::vector<sale_record> all) {
  std::unique_lock<std::shared_mutex> guard{mtx_};
  by_id_.clear();
  for (auto& s : all) {
    auto id = s.sale_id;
    by_id_[id] = std::make_shared<const sale_record>(std::move(s));
  }
  index_locked();
}

void sale_index::put(sale_record s) {
  std::unique_lock<std::shared_mutex> guard{mtx_};
  auto id = s.sale_id;
  by_id_[id] = std::make_shared<const sale_record>(std::move(s));
  index_locked();
}

void sale_index::remove(const std::string& sale_id) {
  std::unique_lock<std::shared_mutex> guard{mtx_};
  by_id_.erase(sale_id);
  index_locked();
}

sale_index::sale_ptr sale_index::find(const std::string& sale_id) const {
  std::shared_lock<std::shared_mutex> guard{mtx_};
  auto i = by_id_.find(sale_id);
  return i == by_id_.end() ? nullptr : i->second;
}

sale_index::sale_ptr sale_index::of_sku(std::string_view sku, int64_t now_ms) const {
  std::shared_lock<std::shared_mutex> guard{mtx_};
  auto i = by_sku_.find(std::string{sku});
  if (i == by_sku_.end()) {
    return nullptr;
  }
  sale_ptr best;
  for (const auto& s : i->second) {
    if (s->ends_at_ms > now_ms) {
      if (!best || best->ends_at_ms <= now_ms || s->starts_at_ms < best->starts_at_ms) {
        best = s;
      }
    } else if (!best || (best->ends_at_ms <= now_ms && s->ends_at_ms > best->ends_at_ms)) {
      best = s;
    }
  }
  return best;
}

sale_gate sale_index::gate_of(std::string_view sku, int64_t now_ms) const {
  sale_gate g;
  if (auto s = of_sku(sku, now_ms)) {
    g.sale_id = s->sale_id;
    g.starts_at_ms = s->starts_at_ms;
    g.ends_at_ms = s->ends_at_ms;
    g.queue = s->queue_enabled;
    g.limit = s->per_customer_limit;
  }
  return g;
}

std::vector<sale_index::sale_ptr> sale_index::all() const {
  std::vector<sale_ptr> out;
  {
    std::shared_lock<std::shared_mutex> guard{mtx_};
    for (const auto& [id, s] : by_id_) {
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(), [](const sale_ptr& a, const sale_ptr& b) {
    return a->starts_at_ms != b->starts_at_ms ? a->starts_at_ms < b->starts_at_ms
                                              : a->sale_id < b->sale_id;
  });
  return out;
}

uint64_t sale_index::version() const {
  std::shared_lock<std::shared_mutex> guard{mtx_};
  return version_;
}

void sale_index::index_locked() {
  by_sku_.clear();
  for (const auto& [id, s] : by_id_) {
    for (const auto& sku : s->skus) {
      by_sku_[sku].push_back(s);
    }
  }
  ++version_;
}

} // namespace surge::actors
