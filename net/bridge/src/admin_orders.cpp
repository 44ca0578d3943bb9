// The console's orders: GET /admin/v1/orders (search) and GET /admin/v1/orders/{order_id} (the
// order with its payment, refunds and timeline), read from what PostgreSQL stores on the order
// query pool; POST /admin/v1/orders/{order_id}/refunds on the order actor, the order's single
// writer.

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "handlers.hpp"
#include "json_body.hpp"
#include "surge/actors/order_model.hpp"
#include "surge/net/json_writer.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

namespace {

/// "<created_us>.<order_id>": where a page of the search ends.
std::string cursor_text(const persistence::order_cursor& c) {
  return std::to_string(c.created_us) + "." + c.order_id;
}

std::optional<persistence::order_cursor> cursor_of(std::string_view s) {
  const auto dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0) {
    return std::nullopt;
  }
  int64_t us = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + dot, us);
  if (ec != std::errc{} || ptr != s.data() + dot || us < 0 || !valid_cart_id(s.substr(dot + 1))) {
    return std::nullopt;
  }
  return persistence::order_cursor{us, std::string{s.substr(dot + 1)}};
}

/// The filters of GET /admin/v1/orders, or the 400 naming the first bad (or unknown) parameter.
std::variant<persistence::order_search, http_response> search_of(const http_request& req) {
  static const std::set<std::string> known{"q",     "status", "customer", "since",
                                           "until", "limit",  "cursor"};
  for (const auto& [name, value] : req.query) {
    if (known.count(name) == 0) {
      return bad_request("unknown parameter '" + name + "'");
    }
  }
  persistence::order_search q;
  auto text = [&](const char* name) { return std::string{req.param(name).value_or("")}; };
  if (auto v = text("q"); !v.empty()) {
    if (!valid_cart_id(v)) {
      return bad_request("'q' must be an order id or its prefix (letters, digits, '_', '-')");
    }
    q.id_prefix = v;
  }
  if (auto v = text("status"); !v.empty()) {
    static const std::set<std::string> statuses{"pending", "paid", "confirmed", "failed",
                                                "cancelled"};
    if (statuses.count(v) == 0) {
      return bad_request("'status' must be one of pending, paid, confirmed, failed, cancelled");
    }
    q.status = v;
  }
  if (auto v = text("customer"); !v.empty()) {
    if (!valid_customer(v)) {
      return bad_request("'customer' is not a customer id");
    }
    q.customer_id = v;
  }
  for (const auto* name : {"since", "until"}) {
    if (auto v = text(name); !v.empty()) {
      auto ms = parse_rfc3339(v);
      if (!ms) {
        return bad_request(std::string{"'"} + name + "' must be an RFC 3339 time");
      }
      (std::string_view{name} == "since" ? q.since_ms : q.until_ms) = *ms;
    }
  }
  if (auto v = text("limit"); !v.empty()) {
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || ptr != v.data() + v.size() || n < 1 || n > 100) {
      return bad_request("'limit' must be an integer between 1 and 100");
    }
    q.limit = static_cast<std::size_t>(n);
  }
  if (auto v = text("cursor"); !v.empty()) {
    q.after = cursor_of(v);
    if (!q.after) {
      return bad_request("'cursor' is not a cursor this API returned");
    }
  }
  return q;
}

std::string search_json(const persistence::order_search_page& page) {
  json::writer w{64 + page.items.size() * 320};
  w.begin_object().key("items").begin_array();
  for (const auto& o : page.items) {
    w.begin_object().member("order_id", o.order_id).member("cart_id", o.cart_id);
    w.member("customer_id", o.customer_id).member("status", o.status);
    w.member("total_cents", o.total_cents).member("currency", o.currency);
    w.member("created_at", rfc3339_ms(o.created_at_ms));
    if (o.gateway.empty()) {
      w.member_null("gateway");
    } else {
      w.member("gateway", o.gateway);
    }
    w.member("refunded_cents", o.refunded_cents).end_object();
  }
  w.end_array();
  if (page.next) {
    w.member("next_cursor", cursor_text(*page.next));
  } else {
    w.member_null("next_cursor");
  }
  return w.end_object().take();
}

struct timeline_entry {
  int64_t at_ms = 0;
  std::string event;
  std::string detail;
};

/// The order's timeline from what is stored, oldest first; an event whose time was not stored
/// (an order older than the column) is left out rather than given an invented time.
std::vector<timeline_entry> timeline_of(const persistence::order_detail& d) {
  const auto& o = d.order;
  std::vector<timeline_entry> t;
  auto add = [&t](int64_t at, std::string event, std::string detail) {
    if (at > 0) {
      t.push_back({at, std::move(event), std::move(detail)});
    }
  };
  add(o.created_at_ms, "created", "");
  add(o.claimed_at_ms, "claimed", o.cart_id);
  if (o.payment && o.payment->status == "approved") {
    add(d.charged_at_ms, "charged", o.payment->gateway);
  }
  if (o.status == "confirmed" || o.status == "failed" || o.status == "cancelled") {
    add(d.status_at_ms, o.status, o.reason);
  }
  if (o.refund) {
    // The cancellation's refund was stored pending together with the cancelled status.
    add(d.status_at_ms, "refund_requested", "cancellation");
  }
  for (const auto& r : o.refunds) {
    add(r.created_at_ms, "refund_requested", r.refund_id);
    if (r.status == "refunded" || r.status == "failed") {
      add(r.settled_at_ms, r.status == "refunded" ? "refunded" : "refund_failed", r.refund_id);
    }
  }
  for (const auto& e : d.outbox) {
    add(e.delivered_at_ms, "outbox_delivered", e.topic + " #" + std::to_string(e.id));
  }
  std::stable_sort(t.begin(), t.end(),
                   [](const auto& a, const auto& b) { return a.at_ms < b.at_ms; });
  return t;
}

void write_refund_lines(json::writer& w, const std::vector<persistence::refund_line>& lines) {
  w.key("lines").begin_array();
  for (const auto& l : lines) {
    w.begin_object().member("sku", l.sku).member("qty", l.qty).end_object();
  }
  w.end_array();
}

std::string detail_json(const persistence::order_detail& d) {
  const auto& o = d.order;
  json::writer w{1024 + o.lines.size() * 96 + o.refunds.size() * 256 + d.outbox.size() * 96};
  w.begin_object();
  write_order_members(w, actors::order_model::view_of(o)); // API.md's order
  w.member("customer_id", o.customer_id);
  if (o.payment) {
    w.key("payment").begin_object().member("gateway", o.payment->gateway);
    w.member("charge_id", o.payment->charge_id).member("amount_cents", o.payment->amount_cents);
    w.end_object();
  } else {
    w.member_null("payment");
  }
  int64_t refunded = 0;
  w.key("refunds").begin_array();
  if (o.refund) {
    // The single refund of an order cancelled after its charge (stored before refunds were a
    // list): every line, asked for when the order was cancelled.
    refunded += o.refund->status == "refunded" ? o.refund->amount_cents : 0;
    w.begin_object().member("refund_id", "cancellation");
    w.member("amount_cents", o.refund->amount_cents).key("lines").begin_array();
    for (const auto& l : o.lines) {
      w.begin_object().member("sku", l.sku).member("qty", l.qty).end_object();
    }
    w.end_array().member("status", o.refund->status);
    if (d.status_at_ms > 0) {
      w.member("created_at", rfc3339_ms(d.status_at_ms));
    } else {
      w.member_null("created_at");
    }
    w.end_object();
  }
  for (const auto& r : o.refunds) {
    refunded += r.status == "refunded" ? r.amount_cents : 0;
    w.begin_object().member("refund_id", r.refund_id).member("amount_cents", r.amount_cents);
    write_refund_lines(w, r.lines);
    w.member("status", r.status).member("created_at", rfc3339_ms(r.created_at_ms));
    w.end_object();
  }
  w.end_array().member("refunded_cents", refunded).key("timeline").begin_array();
  for (const auto& e : timeline_of(d)) {
    w.begin_object().member("at", rfc3339_ms(e.at_ms)).member("event", e.event);
    w.member("detail", e.detail).end_object();
  }
  return w.end_array().end_object().take();
}

std::string refund_json(const actors::refund_view& v) {
  json::writer w{256 + v.lines.size() * 64};
  w.begin_object().member("refund_id", v.refund_id).member("order_id", v.order_id);
  w.member("amount_cents", v.amount_cents).key("lines").begin_array();
  for (const auto& l : v.lines) {
    w.begin_object().member("sku", l.sku).member("qty", l.qty).end_object();
  }
  w.end_array().member("status", v.status);
  return w.end_object().take();
}

/// Runs `job(query)` on the order query pool; 503 when there is none.
template <class Job>
void on_order_query(bridge_env& env, responder& r, Job job) {
  if (env.order_queries == nullptr) {
    return r(error_response(503, "unavailable", "order queries are not available on this node"));
  }
  env.order_queries->submit(std::move(job));
}

} // namespace

void list_orders(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&, responder r) {
  auto parsed = search_of(req);
  if (auto* refused = std::get_if<http_response>(&parsed)) {
    return r(std::move(*refused));
  }
  on_order_query(*env, r,
                 [q = std::get<persistence::order_search>(std::move(parsed)),
                  r](persistence::order_query* db) {
                   if (db == nullptr) {
                     return r(error_response(503, "unavailable", "orders unavailable"));
                   }
                   auto page = db->search(q);
                   if (!page) {
                     return r(to_http_error(page.error()));
                   }
                   r(json_response(200, search_json(*page)));
                 });
}

void get_admin_order(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p,
                     responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such order"));
  }
  on_order_query(*env, r, [id = p[0], r](persistence::order_query* db) {
    if (db == nullptr) {
      return r(error_response(503, "unavailable", "orders unavailable"));
    }
    auto d = db->detail(id);
    if (!d) {
      return r(to_http_error(d.error()));
    }
    if (!*d) {
      return r(not_found("no such order"));
    }
    r(json_response(200, detail_json(**d)));
  });
}

void post_refund(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                 responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such order"));
  }
  auto key = idempotency_key(req, r);
  if (!key) {
    return;
  }
  auto body = object_body(req, true, r);
  if (!body) {
    return;
  }
  actors::order_refund_request rr{std::string{*key}, {}};
  if (const auto* lines = body->find("lines"); lines != nullptr && !lines->is_null()) {
    const auto* arr = std::get_if<json::array>(&lines->get());
    if (arr == nullptr || arr->empty() || arr->size() > 1000) {
      return r(bad_request("'lines' must be an array of 1 to 1000 {\"sku\",\"qty\"} objects"));
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const auto& l = (*arr)[i];
      const auto at = "lines[" + std::to_string(i) + "]";
      if (!l.is_object()) {
        return r(bad_request("'" + at + "' must be an object"));
      }
      std::string err;
      auto sku = string_field(l, "sku", 64, true, "", err);
      auto qty = sku ? int_field(l, "qty", 1, max_qty, true, 0, err) : std::nullopt;
      if (!qty) {
        return r(bad_request(at + ": " + err));
      }
      if (!valid_sku(*sku)) {
        return r(bad_request(at + ": 'sku' is not a SKU"));
      }
      rr.lines.push_back(actors::refund_line_view{*sku, *qty});
    }
  }
  call<actors::refund_view>(
      *env, env->orders->acquire_routed(p[0]), std::move(r),
      [](actors::refund_view& v) {
        const int status = v.status == "pending" ? 202 : v.replay ? 200 : 201;
        return json_response(status, refund_json(v));
      },
      actors::refund_atom::value, rr);
}

} // namespace surge::net::bridge
