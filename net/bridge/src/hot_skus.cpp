// GET /admin/v1/hot-skus: the SKUs with the most holds placed per second, cluster-wide. Each
// node counts the holds of the SKUs it owns (actors::hot_sku_tracker) and answers its own top
// for ?scope=local; the merged answer sums the members' counts per SKU, keeps the top `limit`
// and fills in each one's stock from its SKU actor (the GET stock path).

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>

#include "call.hpp"
#include "fanout.hpp"
#include "handlers.hpp"

namespace surge::net::bridge {

namespace {

constexpr int64_t default_limit = 10;
constexpr int64_t max_limit = 100;

/// `limit` (1..100, default 10), or the 400: an unknown parameter or a bad limit.
std::variant<std::size_t, http_response> limit_of(const http_request& req) {
  for (const auto& [name, value] : req.query) {
    if (name != "limit") {
      return bad_request("unknown parameter '" + name + "'");
    }
  }
  auto v = req.param("limit");
  if (!v) {
    return static_cast<std::size_t>(default_limit);
  }
  int64_t x = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
  if (v->empty() || ec != std::errc{} || ptr != v->data() + v->size() || x < 1 || x > max_limit) {
    return bad_request("'limit' must be an integer between 1 and 100");
  }
  return static_cast<std::size_t>(x);
}

/// One SKU of the merged answer.
struct hot_item {
  std::string sku;
  double rate = 0;
  int64_t reservations = 0;
  std::optional<actors::stock_view> stock; ///< nullopt: its SKU actor did not answer
};

/// Reads the items of one member's part into `sums` (by SKU); a malformed item is skipped.
void add_items(const json::value& part, std::map<std::string, hot_item>& sums) {
  const auto* items = part.find("items");
  if (items == nullptr || !items->is_array()) {
    return;
  }
  for (const auto& it : std::get<json::array>(items->get())) {
    const auto* sku = it.find("sku");
    const auto* rate = it.find("rate");
    const auto* n = it.find("reservations");
    if (sku == nullptr || !sku->is_string() || rate == nullptr || !rate->is_number() ||
        n == nullptr || !n->is_int()) {
      continue;
    }
    auto& item = sums[std::get<std::string>(sku->get())];
    item.sku = std::get<std::string>(sku->get());
    item.rate += rate->is_int() ? static_cast<double>(std::get<int64_t>(rate->get()))
                                : std::get<double>(rate->get());
    item.reservations += std::get<int64_t>(n->get());
  }
}

std::string merged_hot_json(const std::vector<hot_item>& items,
                            const std::vector<member_part>& parts,
                            const std::vector<member_error>& errors) {
  json::writer w{256 + items.size() * 200};
  w.begin_object().key("items").begin_array();
  for (const auto& it : items) {
    w.begin_object().member("sku", it.sku).key("rate").number(it.rate);
    w.member("reservations", it.reservations);
    if (it.stock) {
      const auto& s = *it.stock;
      w.member("on_hand", s.on_hand).member("held", s.held).member("sold", s.sold);
      w.member("available", s.available).member("owner_node", s.owner_node);
      w.member("epoch", static_cast<int64_t>(s.epoch));
    } else {
      for (const char* k : {"on_hand", "held", "sold", "available", "owner_node", "epoch"}) {
        w.member_null(k);
      }
    }
    w.end_object();
  }
  w.end_array().member("window_s", actors::hot_sku_tracker::window_s).key("nodes").begin_array();
  for (const auto& p : parts) {
    w.string(p.node_id);
  }
  w.end_array().key("errors");
  write_errors(w, errors);
  return w.end_object().take();
}

/// The stocks of `items` filled in by their SKU actors, all asked at once.
struct stock_round {
  std::mutex mtx;
  std::vector<hot_item> items;
  std::size_t left = 0;
};

} // namespace

http_response local_hot_skus(bridge_env& env, const http_request& req) {
  auto limit = limit_of(req);
  if (auto* refused = std::get_if<http_response>(&limit)) {
    return std::move(*refused);
  }
  std::vector<actors::hot_sku_tracker::entry> top;
  if (env.hot_skus != nullptr) {
    top = env.hot_skus->top(std::get<std::size_t>(limit), actors::system_now_ms());
  }
  json::writer w{128 + top.size() * 64};
  w.begin_object().member("node_id", env.node_id);
  w.member("window_s", actors::hot_sku_tracker::window_s).key("items").begin_array();
  for (const auto& e : top) {
    w.begin_object().member("sku", e.sku).key("rate").number(e.rate);
    w.member("reservations", e.reservations).end_object();
  }
  return json_response(200, w.end_array().end_object().take());
}

void merge_hot_skus(std::shared_ptr<bridge_env> env, const http_request& req,
                    std::vector<member_part> parts, std::vector<member_error> errors, responder r) {
  std::map<std::string, hot_item> sums;
  for (const auto& p : parts) {
    add_items(p.body, sums);
  }
  auto round = std::make_shared<stock_round>();
  for (auto& [sku, item] : sums) {
    round->items.push_back(std::move(item));
  }
  std::sort(round->items.begin(), round->items.end(), [](const hot_item& a, const hot_item& b) {
    return a.rate != b.rate ? a.rate > b.rate : a.sku < b.sku;
  });
  const auto limit = std::get<std::size_t>(limit_of(req)); // checked by local_hot_skus
  round->items.resize(std::min(limit, round->items.size()));
  round->left = round->items.size();
  auto shared = std::make_shared<std::pair<std::vector<member_part>, std::vector<member_error>>>(
      std::move(parts), std::move(errors));
  auto answer = [round, shared, r] {
    r(json_response(200, merged_hot_json(round->items, shared->first, shared->second)));
  };
  if (round->items.empty() || env->callers.empty()) {
    return answer();
  }
  for (std::size_t i = 0; i < round->items.size(); ++i) {
    // Each answer (the stock, or an error: no stock shown) counts down; the last one answers.
    auto counted = [round, answer](http_response) {
      bool last = false;
      {
        std::lock_guard<std::mutex> guard{round->mtx};
        last = --round->left == 0;
      }
      if (last) {
        answer();
      }
    };
    auto keep = [round, i](actors::stock_view& s) {
      std::lock_guard<std::mutex> guard{round->mtx};
      round->items[i].stock = s;
      return http_response{};
    };
    call<actors::stock_view>(*env, env->skus->acquire_routed(round->items[i].sku), std::move(counted),
                             keep, actors::stock_atom::value);
  }
}

} // namespace surge::net::bridge
