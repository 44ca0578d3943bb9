#include "load.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include "http.hpp"
#include "process.hpp"
#include "surge/net/json.hpp"

namespace surge::chaos {

using namespace std::chrono_literals;
namespace json = surge::net::json;
using op_kind = operation::kind_t;

namespace {

std::string str(const json::value& v, std::string_view key) {
  const auto* f = v.find(key);
  return f != nullptr && f->is_string() ? std::get<std::string>(f->get()) : std::string{};
}

int64_t num(const json::value& v, std::string_view key) {
  const auto* f = v.find(key);
  return f != nullptr && f->is_int() ? std::get<int64_t>(f->get()) : 0;
}

/// Fills the fields of `op` the checker needs from the answer's body.
void read_answer(operation& op, const http_answer& a) {
  op.status = a.status;
  if (a.status == 0) {
    op.error_code = a.error;
    return;
  }
  auto parsed = json::parse(a.body);
  const auto* v = std::get_if<json::value>(&parsed);
  if (v == nullptr || !v->is_object()) {
    return;
  }
  if (const auto* e = v->find("error"); e != nullptr && e->is_object()) {
    op.error_code = str(*e, "code");
    op.cause = a.cause;
    return;
  }
  if (op.cart_id.empty()) {
    op.cart_id = str(*v, "cart_id");
  }
  op.order_id = str(*v, "order_id");
  op.order_status = str(*v, "status");
  const char* list =
      op.kind == op_kind::checkout || op.kind == op_kind::get_order ? "lines" : "items";
  if (const auto* items = v->find(list); items != nullptr && items->is_array()) {
    for (const auto& l : std::get<json::array>(items->get())) {
      op.lines.push_back({str(l, "sku"), num(l, "qty"), str(l, "hold_id")});
    }
  }
}

} // namespace

load::load(cluster_env& env, load_options o)
    : env_(env)
    , o_(std::move(o)) {}

load::~load() {
  stop();
}

int load::pick_node(uint64_t r, bool whole) const {
  auto& nodes = env_.nodes();
  std::vector<int> up;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i]->up.load()) {
      up.push_back(static_cast<int>(i));
    }
  }
  if (whole) {
    std::vector<int> connected;
    for (auto i : up) {
      if (!nodes[static_cast<std::size_t>(i)]->cut_off.load()) {
        connected.push_back(i);
      }
    }
    if (!connected.empty()) {
      up = std::move(connected);
    }
  }
  if (up.empty()) {
    return static_cast<int>(r % nodes.size());
  }
  return up[r % up.size()];
}

operation load::send_recorded(http_client& via, operation op, const std::string& method,
                              const std::string& target, const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  op.id = next_id_++;
  op.start_ms = now_ms();
  auto a = via.call(method, target, body, headers);
  op.end_ms = now_ms();
  read_answer(op, a);
  record(operation{op});
  return op;
}

void load::record(operation&& op) {
  ops_.fetch_add(1);
  const bool failed = op.status == 0 || op.status >= 500;
  if (failed && op.kind != op_kind::probe) {
    errors_.fetch_add(1);
  }
  std::lock_guard<std::mutex> g{mtx_};
  if (failed && (op.kind == op_kind::put_item || op.kind == op_kind::delete_item)) {
    to_probe_.insert(op.sku);
  }
  history_.push_back(std::move(op));
}

std::vector<operation> load::history() const {
  std::lock_guard<std::mutex> g{mtx_};
  auto out = history_;
  std::sort(out.begin(), out.end(),
            [](const operation& a, const operation& b) { return a.start_ms < b.start_ms; });
  return out;
}

void load::load_catalog(int64_t hot_stock, int64_t cold_stock) {
  auto admin_conn = env_.admin_client(*env_.nodes().front(), 20s);
  http_client& admin = *admin_conn;
  auto put_sku = [&](const std::string& sku, int64_t stock, int64_t limit) {
    const std::string product = R"({"name":")" + sku + R"(","description":"chaos","category":")" +
                                (limit > 0 ? "hot" : "cold") +
                                R"(","price_cents":1000,"currency":"EUR","per_customer_limit":)" +
                                std::to_string(limit) + "}";
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (admin.call("PUT", "/admin/v1/products/" + sku, product).status == 200) {
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      operation op;
      op.kind = op_kind::stock;
      op.sku = sku;
      op.qty = stock;
      op.stock_set = true;
      if (send_recorded(admin, std::move(op), "POST", "/admin/v1/products/" + sku + "/stock",
                        R"({"set":)" + std::to_string(stock) + "}")
              .status == 200) {
        return;
      }
      std::this_thread::sleep_for(200ms);
    }
    throw std::runtime_error("cannot set the stock of " + sku);
  };
  for (const auto& sku : o_.hot) {
    put_sku(sku, hot_stock, 3);
  }
  for (const auto& sku : o_.cold) {
    put_sku(sku, cold_stock, 0);
  }
}

void load::start() {
  for (int c = 0; c < o_.clients; ++c) {
    threads_.emplace_back([this, c] { shopper(c); });
  }
  threads_.emplace_back([this] { operator_loop(); });
  threads_.emplace_back([this] { probe_loop(); });
}

void load::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
}

void load::shopper(int client) {
  std::mt19937_64 rng{o_.seed * 1000003 + static_cast<uint64_t>(client)};
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  // Each shopper is one client address (198.18.0.0/15, the benchmarking range) in
  // X-Forwarded-For, so that the nodes' per-address limits see shoppers, not the harness.
  const std::string client_address = "198.18." + std::to_string((client + 1) / 256 % 256) + "." +
                                     std::to_string((client + 1) % 256);
  std::vector<std::unique_ptr<http_client>> conns;
  for (const auto& n : env_.nodes()) {
    conns.push_back(std::make_unique<http_client>(n->host, n->http, o_.timeout));
    conns.back()->set_header("X-Forwarded-For", client_address);
  }
  // The meddler's own connections: it runs beside the shopper's checkout (see below).
  std::vector<std::unique_ptr<http_client>> side_conns;
  for (const auto& n : env_.nodes()) {
    side_conns.push_back(std::make_unique<http_client>(n->host, n->http, o_.timeout));
    side_conns.back()->set_header("X-Forwarded-For", client_address);
  }
  // One request to node `node` over `via`, recorded. Touches no state of the shopper's but
  // next_id_ and the history, so the meddler may call it from its own thread.
  auto send_to = [this, client](std::vector<std::unique_ptr<http_client>>& via, int node,
                                operation op, const std::string& method, const std::string& target,
                                const std::string& body,
                                const std::vector<std::pair<std::string, std::string>>& headers) {
    op.client = client;
    op.node = node;
    return send_recorded(*via[static_cast<std::size_t>(node)], std::move(op), method, target, body,
                         headers);
  };
  // One request: to a node that is up, recorded.
  auto send = [&](operation op, const std::string& method, const std::string& target,
                  const std::string& body,
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return send_to(conns, pick_node(rng()), std::move(op), method, target, body, headers);
  };
  auto pause_after_error = [&](const operation& op) {
    if (op.status == 0 || op.status >= 500) {
      std::this_thread::sleep_for(std::chrono::milliseconds{100 + rng() % 200});
    }
  };
  static const char* tokens[] = {"tok_ok",      "tok_ok",   "tok_ok",         "tok_ok",
                                 "tok_decline", "tok_slow", "tok_down_first", "tok_down_first"};
  for (uint64_t journey = 0; !stop_ && journey < 1000000; ++journey) {
    const std::string customer =
        "cust-" + std::to_string(client) + "-" + std::to_string(journey % 50);
    operation cart_op;
    cart_op.kind = op_kind::create_cart;
    cart_op = send(cart_op, "POST", "/api/v1/carts", R"({"customer_id":")" + customer + "\"}");
    if (cart_op.status != 201 || cart_op.cart_id.empty()) {
      pause_after_error(cart_op);
      continue;
    }
    const std::string cart = cart_op.cart_id;
    std::vector<std::pair<std::string, int64_t>> held;
    const int items = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < items && !stop_; ++i) {
      operation put;
      put.kind = op_kind::put_item;
      put.cart_id = cart;
      put.sku = chance(50) ? o_.hot[rng() % o_.hot.size()] : o_.cold[rng() % o_.cold.size()];
      put.qty = 1 + static_cast<int64_t>(rng() % 2);
      put = send(put, "PUT", "/api/v1/carts/" + cart + "/items/" + put.sku,
                 R"({"qty":)" + std::to_string(put.qty) + "}");
      if (put.status == 200) {
        held.emplace_back(put.sku, put.qty);
      }
      pause_after_error(put);
    }
    if (!held.empty() && chance(30) && !stop_) { // change a quantity
      auto& [sku, qty] = held[rng() % held.size()];
      operation put;
      put.kind = op_kind::put_item;
      put.cart_id = cart;
      put.sku = sku;
      put.qty = qty == 1 ? 2 : 1;
      put = send(put, "PUT", "/api/v1/carts/" + cart + "/items/" + sku,
                 R"({"qty":)" + std::to_string(put.qty) + "}");
      if (put.status == 200) {
        qty = put.qty;
      }
    }
    if (!held.empty() && chance(20) && !stop_) { // remove a line
      const std::size_t i = rng() % held.size();
      operation del;
      del.kind = op_kind::delete_item;
      del.cart_id = cart;
      del.sku = held[i].first;
      del = send(del, "DELETE", "/api/v1/carts/" + cart + "/items/" + del.sku, "");
      if (del.status == 200) {
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (held.empty() || chance(25) || stop_) {
      continue; // walk away: the holds expire
    }
    operation co;
    co.kind = op_kind::checkout;
    co.cart_id = cart;
    co.token = tokens[rng() % (sizeof(tokens) / sizeof(tokens[0]))];
    co.idempotency_key = "key-" + std::to_string(o_.seed) + "-" + std::to_string(client) + "-" +
                         std::to_string(journey);
    const std::string body = R"({"payment":{"method":"card","token":")" + co.token + "\"}}";
    const std::vector<std::pair<std::string, std::string>> headers{
        {"Idempotency-Key", co.idempotency_key}};
    // Sometimes a second hand meddles while the checkout runs, through another node than the
    // checkout's (issue 11): it grows, shrinks or deletes a line, or checks the cart out with
    // another key. The cart is the checkout's, so each should be refused (409) and change
    // nothing, unless the checkout has ended by then; G1 (sold = confirmed lines) and G3 (one
    // order and at most one kept charge per key) judge what they did.
    std::thread meddler;
    const int co_node = pick_node(rng());
    // Another node that is up (a spare or a removed node is never up).
    std::vector<int> others;
    for (std::size_t i = 0; i < env_.nodes().size(); ++i) {
      if (static_cast<int>(i) != co_node && env_.nodes()[i]->up.load()) {
        others.push_back(static_cast<int>(i));
      }
    }
    if (chance(30) && !others.empty()) {
      const int node = others[rng() % others.size()];
      const auto [sku, qty] = held[rng() % held.size()];
      const int move = static_cast<int>(rng() % 4);
      const auto delay = std::chrono::milliseconds{rng() % 300};
      const std::string other_key = co.idempotency_key + "-meddler";
      meddler = std::thread([&, node, sku = sku, qty = qty, move, delay, other_key] {
        std::this_thread::sleep_for(delay);
        operation op;
        op.cart_id = cart;
        op.sku = sku;
        const std::string item = "/api/v1/carts/" + cart + "/items/" + sku;
        if (move < 2) { // grow or shrink
          op.kind = op_kind::put_item;
          op.qty = move == 0 ? qty + 1 : std::max<int64_t>(qty - 1, 0);
          send_to(side_conns, node, op, "PUT", item, R"({"qty":)" + std::to_string(op.qty) + "}",
                  {});
        } else if (move == 2) {
          op.kind = op_kind::delete_item;
          send_to(side_conns, node, op, "DELETE", item, "", {});
        } else {
          op.kind = op_kind::checkout;
          op.token = "tok_ok";
          op.idempotency_key = other_key;
          send_to(side_conns, node, op, "POST", "/api/v1/carts/" + cart + "/checkout",
                  R"({"payment":{"method":"card","token":"tok_ok"}})",
                  {{"Idempotency-Key", other_key}});
        }
        meddled_.fetch_add(1);
      });
    }
    // Retries with the same key while the outcome is unknown, and sometimes once more after a
    // success (it must return the same order).
    bool extra_retry = chance(20);
    for (int attempt = 0; attempt < 5 && !stop_; ++attempt) {
      auto r = attempt == 0
                   ? send_to(conns, co_node, co, "POST", "/api/v1/carts/" + cart + "/checkout",
                             body, headers)
                   : send(co, "POST", "/api/v1/carts/" + cart + "/checkout", body, headers);
      if (meddler.joinable()) {
        meddler.join();
      }
      if (r.status == 0 || r.status >= 500) {
        std::this_thread::sleep_for(std::chrono::milliseconds{200 * (attempt + 1)});
        continue;
      }
      if (r.status == 201 && extra_retry) {
        extra_retry = false;
        continue;
      }
      if (r.status == 201 && chance(20)) {
        operation get;
        get.kind = op_kind::get_order;
        send(get, "GET", "/api/v1/orders/" + r.order_id, "");
      }
      break;
    }
    if (meddler.joinable()) {
      meddler.join();
    }
  }
}

void load::operator_loop() {
  std::mt19937_64 rng{o_.seed * 7919 + 17};
  std::vector<std::unique_ptr<http_client>> conns;
  for (const auto& n : env_.nodes()) {
    conns.push_back(env_.admin_client(*n, o_.timeout));
  }
  for (int round = 0; !stop_ && round < 100000; ++round) {
    for (int i = 0; i < 20 && !stop_; ++i) {
      std::this_thread::sleep_for(100ms);
    }
    if (stop_) {
      break;
    }
    operation op;
    op.kind = op_kind::stock;
    op.client = -1;
    op.sku = o_.hot[rng() % o_.hot.size()];
    op.qty = 1 + static_cast<int64_t>(rng() % 3);
    op.node = pick_node(rng());
    const std::string target = "/admin/v1/products/" + op.sku + "/stock";
    const std::string body = R"({"add":)" + std::to_string(op.qty) + "}";
    const auto node = static_cast<std::size_t>(op.node);
    send_recorded(*conns[node], std::move(op), "POST", target, body);
  }
}

void load::probe_loop() {
  std::mt19937_64 rng{o_.seed * 104729 + 3};
  std::vector<std::unique_ptr<http_client>> conns;
  for (const auto& n : env_.nodes()) {
    conns.push_back(env_.admin_client(*n, 2s));
  }
  while (!stop_) {
    std::this_thread::sleep_for(200ms);
    std::vector<std::string> skus;
    {
      std::lock_guard<std::mutex> g{mtx_};
      skus.assign(to_probe_.begin(), to_probe_.end());
    }
    for (const auto& sku : skus) {
      if (stop_) {
        break;
      }
      operation op;
      op.kind = op_kind::probe;
      op.client = -2;
      op.sku = sku;
      // Not a node cut off by a partition: G5 leaves its requests out, so its answer would not
      // tell when the rest of the cluster serves the SKU again.
      op.node = pick_node(rng(), true);
      const auto node = static_cast<std::size_t>(op.node);
      if (send_recorded(*conns[node], std::move(op), "GET", "/admin/v1/products/" + sku + "/stock",
                        "")
              .status == 200) {
        std::lock_guard<std::mutex> g{mtx_};
        to_probe_.erase(sku);
      }
    }
  }
}

} // namespace surge::chaos
