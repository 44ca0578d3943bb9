#pragma once

// In-memory twin of the PostgreSQL catalog (persistence/catalog.hpp), for unit tests. It reads
// the products and stock rows that memory_journal commits. Header-only.

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "memory_journal.hpp"
#include "surge/persistence/catalog.hpp"

namespace surge::fakes {

namespace detail {

/// Lower-case ASCII words of `text`, split at every non-alphanumeric character: close to what
/// PostgreSQL's 'simple' text-search configuration indexes for plain words.
inline std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::string cur;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || u >= 0x80) {
      cur += static_cast<char>(std::tolower(u));
    } else if (!cur.empty()) {
      out.insert(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    out.insert(std::move(cur));
  }
  return out;
}

} // namespace detail

/// One "connection" to a memory_journal_state's catalog, with the semantics of the PostgreSQL
/// catalog: listings in byte order of sku, every word of the text in name, description or
/// category, errc::unavailable (and unhealthy) while the state is down. Not thread-safe (like a
/// connection); the state is.
class memory_catalog final : public persistence::catalog {
 public:
  explicit memory_catalog(std::shared_ptr<memory_journal_state> state)
      : state_(std::move(state)) {}

  bool healthy() const override { return healthy_; }

  caf::expected<std::vector<persistence::product_listing>>
  list_products(const persistence::product_query& q) override {
    std::lock_guard<std::mutex> guard{state_->mtx_};
    if (auto err = state_->check_connection_locked(healthy_)) {
      return err;
    }
    const auto limit = std::clamp<std::size_t>(q.limit, 1, 100);
    const auto wanted = detail::words(q.text);
    std::vector<persistence::product_listing> out;
    for (auto i = state_->products_.upper_bound(q.after_sku);
         i != state_->products_.end() && out.size() < limit; ++i) {
      const auto& p = i->second;
      int64_t available = 0;
      if (auto s = state_->stock_.find(p.sku); s != state_->stock_.end()) {
        available = s->second.on_hand - s->second.held - s->second.sold;
      }
      if (!q.category.empty() && p.category != q.category) {
        continue;
      }
      if ((q.min_price && p.price_cents < *q.min_price) ||
          (q.max_price && p.price_cents > *q.max_price)) {
        continue;
      }
      if (q.in_stock_only && available <= 0) {
        continue;
      }
      if (!wanted.empty()) {
        const auto have = detail::words(p.name + " " + p.description + " " + p.category);
        if (!std::includes(have.begin(), have.end(), wanted.begin(), wanted.end())) {
          continue;
        }
      }
      out.push_back({p, available});
    }
    return out;
  }

  // The bridge's search tests run against PostgreSQL; here search is unavailable.
  caf::expected<persistence::search_page> search(const persistence::search_query&) override {
    return persistence::make_error(persistence::errc::unavailable, "no search in memory");
  }
  caf::expected<std::vector<persistence::category_count>> categories() override {
    return persistence::make_error(persistence::errc::unavailable, "no categories in memory");
  }

 private:
  const std::shared_ptr<memory_journal_state> state_;
  bool healthy_ = true;
};

} // namespace surge::fakes
