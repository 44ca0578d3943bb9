#include "surge/actors/hot_skus.hpp"

#include <algorithm>
#include <functional>

namespace surge::actors {

namespace {

int64_t second_of(int64_t ms) {
  return ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
}

std::size_t slot_of(int64_t second) {
  const auto w = hot_sku_tracker::window_s;
  return static_cast<std::size_t>(((second % w) + w) % w);
}

} // namespace

uint64_t hot_sku_tracker::counts::in_window(int64_t now_s) const {
  uint64_t sum = 0;
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (second[i] > now_s - window_s && second[i] <= now_s) {
      sum += n[i];
    }
  }
  return sum;
}

void hot_sku_tracker::stripe::sweep(int64_t now_s) {
  if (now_s == swept) {
    return;
  }
  swept = now_s;
  std::erase_if(skus, [now_s](const auto& kv) { return kv.second.last <= now_s - window_s; });
}

hot_sku_tracker::hot_sku_tracker(std::size_t max_skus)
    : per_stripe_(std::max<std::size_t>(1, max_skus / stripe_count)) {}

hot_sku_tracker::stripe& hot_sku_tracker::stripe_of(const std::string& sku) {
  return stripes_[std::hash<std::string>{}(sku) % stripe_count];
}

void hot_sku_tracker::record(const std::string& sku, int64_t now_ms) {
  const int64_t now_s = second_of(now_ms);
  auto& st = stripe_of(sku);
  std::lock_guard<std::mutex> guard{st.mtx};
  auto i = st.skus.find(sku);
  if (i == st.skus.end()) {
    if (st.skus.size() >= per_stripe_) {
      st.sweep(now_s);
    }
    if (st.skus.size() >= per_stripe_) {
      ++st.dropped;
      return;
    }
    i = st.skus.emplace(sku, counts{}).first;
  }
  auto& c = i->second;
  const auto slot = slot_of(now_s);
  if (c.second[slot] != now_s) {
    if (c.second[slot] > now_s) {
      return; // a time from before what this bucket holds now: past the window anyway
    }
    c.second[slot] = now_s;
    c.n[slot] = 0;
  }
  ++c.n[slot];
  c.last = std::max(c.last, now_s);
}

std::vector<hot_sku_tracker::entry> hot_sku_tracker::top(std::size_t limit, int64_t now_ms) {
  const int64_t now_s = second_of(now_ms);
  std::vector<entry> all;
  for (auto& st : stripes_) {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.sweep(now_s);
    for (const auto& [sku, c] : st.skus) {
      if (auto n = c.in_window(now_s); n > 0) {
        all.push_back(entry{sku, n, static_cast<double>(n) / window_s});
      }
    }
  }
  auto order = [](const entry& a, const entry& b) {
    return a.reservations != b.reservations ? a.reservations > b.reservations : a.sku < b.sku;
  };
  const auto keep = std::min(limit, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(), order);
  all.resize(keep);
  return all;
}

std::size_t hot_sku_tracker::size() {
  std::size_t n = 0;
  for (auto& st : stripes_) {
    std::lock_guard<std::mutex> guard{st.mtx};
    n += st.skus.size();
  }
  return n;
}

uint64_t hot_sku_tracker::dropped() {
  uint64_t n = 0;
  for (auto& st : stripes_) {
    std::lock_guard<std::mutex> guard{st.mtx};
    n += st.dropped;
  }
  return n;
}

} // namespace surge::actors
