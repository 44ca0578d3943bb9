#include <algorithm>
#include <tuple>

#include "surge/actors/sales.hpp"

namespace surge::actors {

namespace {

/// Whether two definitions are the same (replace() bumps the version only on a change).
bool same(const sale_record& a, const sale_record& b) {
  return std::tie(a.sale_id, a.name, a.skus, a.starts_at_ms, a.ends_at_ms, a.per_customer_limit,
                  a.queue_enabled, a.admission_rate, a.pass_ttl_ms, a.updated_at_ms) ==
         std::tie(b.sale_id, b.name, b.skus, b.starts_at_ms, b.ends_at_ms, b.per_customer_limit,
                  b.queue_enabled, b.admission_rate, b.pass_ttl_ms, b.updated_at_ms);
}

/// all()'s order: by start, then id.
bool by_start(const sale_index::sale_ptr& a, const sale_index::sale_ptr& b) {
  return std::tie(a->starts_at_ms, a->sale_id) < std::tie(b->starts_at_ms, b->sale_id);
}

} // namespace

void sale_index::replace(std::vector<sale_record> all) {
  std::unique_lock<std::shared_mutex> lock{mtx_};
  bool changed = all.size() != by_id_.size();
  for (std::size_t i = 0; !changed && i < all.size(); ++i) {
    auto it = by_id_.find(all[i].sale_id);
    changed = it == by_id_.end() || !same(*it->second, all[i]);
  }
  if (!changed) {
    return;
  }
  by_id_.clear();
  for (auto& s : all) {
    auto id = s.sale_id;
    by_id_[std::move(id)] = std::make_shared<const sale_record>(std::move(s));
  }
  index_locked();
}

void sale_index::put(sale_record s) {
  std::unique_lock<std::shared_mutex> lock{mtx_};
  if (auto it = by_id_.find(s.sale_id); it != by_id_.end() && same(*it->second, s)) {
    return;
  }
  auto id = s.sale_id;
  by_id_[std::move(id)] = std::make_shared<const sale_record>(std::move(s));
  index_locked();
}

void sale_index::remove(const std::string& sale_id) {
  std::unique_lock<std::shared_mutex> lock{mtx_};
  if (by_id_.erase(sale_id) > 0) {
    index_locked();
  }
}

sale_index::sale_ptr sale_index::find(const std::string& sale_id) const {
  std::shared_lock<std::shared_mutex> lock{mtx_};
  auto it = by_id_.find(sale_id);
  return it == by_id_.end() ? nullptr : it->second;
}

sale_index::sale_ptr sale_index::of_sku(std::string_view sku, int64_t now_ms) const {
  std::shared_lock<std::shared_mutex> lock{mtx_};
  auto it = by_sku_.find(std::string{sku});
  if (it == by_sku_.end()) {
    return nullptr;
  }
  // The sales of a SKU are by start then id (index_locked): the first not ended is the one.
  sale_ptr ended_last;
  for (const auto& s : it->second) {
    if (now_ms < s->ends_at_ms) {
      return s;
    }
    if (!ended_last || s->ends_at_ms > ended_last->ends_at_ms) {
      ended_last = s;
    }
  }
  return ended_last;
}

sale_gate sale_index::gate_of(std::string_view sku, int64_t now_ms) const {
  auto s = of_sku(sku, now_ms);
  if (!s) {
    return {};
  }
  return sale_gate{.sale_id = s->sale_id,
                   .starts_at_ms = s->starts_at_ms,
                   .ends_at_ms = s->ends_at_ms,
                   .queue = s->queue_enabled,
                   .limit = s->per_customer_limit};
}

std::vector<sale_index::sale_ptr> sale_index::all() const {
  std::vector<sale_ptr> out;
  {
    std::shared_lock<std::shared_mutex> lock{mtx_};
    out.reserve(by_id_.size());
    for (const auto& [id, s] : by_id_) {
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(), by_start);
  return out;
}

uint64_t sale_index::version() const {
  std::shared_lock<std::shared_mutex> lock{mtx_};
  return version_;
}

void sale_index::index_locked() {
  by_sku_.clear();
  for (const auto& [id, s] : by_id_) {
    for (const auto& sku : s->skus) {
      by_sku_[sku].push_back(s);
    }
  }
  for (auto& [sku, sales] : by_sku_) {
    std::sort(sales.begin(), sales.end(), by_start);
  }
  ++version_;
}

} // namespace surge::actors
