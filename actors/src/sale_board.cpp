#include "surge/actors/sales.hpp"

#include <algorithm>

namespace surge::actors {

void sale_board::publish(const queue_summary& s) {
  std::lock_guard<std::mutex> guard{mtx_};
  by_id_[s.sale_id] = s;
}

void sale_board::erase(const std::string& sale_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  by_id_.erase(sale_id);
}

std::vector<queue_summary> sale_board::all() const {
  std::vector<queue_summary> out;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    out.reserve(by_id_.size());
    for (const auto& [id, s] : by_id_) {
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const queue_summary& a, const queue_summary& b) { return a.sale_id < b.sale_id; });
  return out;
}

} // namespace surge::actors
