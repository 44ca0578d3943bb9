#include "surge/net/bridge.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <optional>
#include <sstream>
#include <thread>

#include "surge/actors/errors.hpp"
#include "surge/actors/ids.hpp"
#include "surge/net/json.hpp"

namespace surge::net {
namespace {

/// A piece of work for a caller actor: issue a request and answer the HTTP responder.
struct call_job {
  std::function<void(caf::event_based_actor*)> run;
};

} // namespace
} // namespace surge::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::net::call_job)

namespace surge::net {
namespace {

using actors::errc;

constexpr int64_t max_qty = 10000;
constexpr int64_t max_money = 1'000'000'000'000;

// -- validation -----------------------------------------------------------------------------

bool valid_id(std::string_view s, std::size_t max_len, std::string_view extra = "._-") {
  if (s.empty() || s.size() > max_len) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (!ok) {
      return false;
    }
  }
  return true;
}

/// 1 to 64 letters, digits, '.', '_' or '-', not dots alone. A SKU becomes a path segment (API
/// paths, /p/{sku}), part of Redis and page-cache keys and, in a statically generated
/// storefront, a directory name. "." and ".." are dot segments: clients and proxies normalise
/// them away (/p/.. is /), and as names they are the directories themselves; longer runs of
/// dots lose their trailing dots on Windows paths. (Leading '.', '-' and '_' stay allowed: SKUs
/// like that may exist, and nothing they reach treats them specially.)
bool valid_sku(std::string_view s) {
  return valid_id(s, 64) && s.find_first_not_of('.') != std::string_view::npos;
}
bool valid_cart_id(std::string_view s) {
  return valid_id(s, 64, "_-");
}
bool valid_customer(std::string_view s) {
  return valid_id(s, 128, "._@+-");
}

http_response bad_request(std::string_view msg) {
  return error_response(400, "bad_request", msg);
}
http_response not_found(std::string_view msg) {
  return error_response(404, "not_found", msg);
}

/// Parses a body that must be a JSON object (empty allowed when `empty_ok`).
std::variant<json::value, http_response> object_body(const http_request& req, bool empty_ok) {
  std::string_view body = req.body;
  auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    if (empty_ok) {
      return json::value{json::object{}};
    }
    return bad_request("a JSON object body is required");
  }
  auto parsed = json::parse(body);
  if (auto* err = std::get_if<json::parse_error>(&parsed)) {
    return bad_request("malformed JSON: " + err->message);
  }
  auto& v = std::get<json::value>(parsed);
  if (!v.is_object()) {
    return bad_request(std::string{"the body must be a JSON object, not "} + v.type_name());
  }
  return std::move(v);
}

/// Reads integer field `key` within [lo, hi]; nullopt + error message when wrong.
std::optional<int64_t> int_field(const json::value& obj, const char* key, int64_t lo, int64_t hi,
                                 bool required, int64_t fallback, std::string& err) {
  const json::value* v = obj.find(key);
  if (v == nullptr || v->is_null()) {
    if (required) {
      err = std::string{"'"} + key + "' is required";
      return std::nullopt;
    }
    return fallback;
  }
  if (!v->is_int()) {
    if (auto* d = std::get_if<double>(&v->get())) {
      if (*d == static_cast<double>(static_cast<int64_t>(*d)) && (*d > 9e18 || *d < -9e18)) {
        err = std::string{"'"} + key + "' is out of range";
      } else {
        err = std::string{"'"} + key + "' must be an integer between " + std::to_string(lo) +
              " and " + std::to_string(hi);
      }
    } else {
      err = std::string{"'"} + key + "' must be an integer, not " + v->type_name();
    }
    return std::nullopt;
  }
  int64_t x = std::get<int64_t>(v->get());
  if (x < lo || x > hi) {
    err = std::string{"'"} + key + "' must be between " + std::to_string(lo) + " and " +
          std::to_string(hi) + ", got " + std::to_string(x);
    return std::nullopt;
  }
  return x;
}

std::optional<std::string> string_field(const json::value& obj, const char* key,
                                        std::size_t max_len, bool required, std::string fallback,
                                        std::string& err) {
  const json::value* v = obj.find(key);
  if (v == nullptr || v->is_null()) {
    if (required) {
      err = std::string{"'"} + key + "' is required";
      return std::nullopt;
    }
    return fallback;
  }
  if (!v->is_string()) {
    err = std::string{"'"} + key + "' must be a string, not " + v->type_name();
    return std::nullopt;
  }
  const auto& s = std::get<std::string>(v->get());
  if (s.size() > max_len) {
    err = std::string{"'"} + key + "' is longer than " + std::to_string(max_len) + " bytes";
    return std::nullopt;
  }
  return s;
}

// -- JSON output ----------------------------------------------------------------------------

void field(std::string& out, std::string_view key, std::string_view value, bool first = false) {
  if (!first) {
    out += ',';
  }
  json::append_quoted(out, key);
  out += ':';
  json::append_quoted(out, value);
}

void field(std::string& out, std::string_view key, int64_t value, bool first = false) {
  if (!first) {
    out += ',';
  }
  json::append_quoted(out, key);
  out += ':';
  out += std::to_string(value);
}

void append_product(std::string& out, const actors::product_view& v) {
  const auto& p = v.product;
  out += '{';
  field(out, "sku", p.sku, true);
  field(out, "name", p.name);
  field(out, "description", p.description);
  field(out, "category", p.category);
  field(out, "price_cents", p.price_cents);
  field(out, "currency", p.currency);
  field(out, "available", std::max<int64_t>(v.available, 0));
  field(out, "per_customer_limit", p.per_customer_limit);
  out += '}';
}

std::string product_json(const actors::product_view& v) {
  std::string out;
  append_product(out, v);
  return out;
}

std::string cart_json(const actors::cart_view& c) {
  std::string out = "{";
  field(out, "cart_id", c.cart_id, true);
  field(out, "customer_id", c.customer_id);
  out += ",\"items\":[";
  bool first = true;
  for (const auto& l : c.items) {
    if (!first) {
      out += ',';
    }
    first = false;
    out += '{';
    field(out, "sku", l.sku, true);
    field(out, "qty", l.qty);
    field(out, "price_cents", l.price_cents);
    field(out, "hold_id", l.hold_id);
    field(out, "hold_expires_at", rfc3339_ms(l.hold_expires_at_ms));
    out += '}';
  }
  out += ']';
  field(out, "total_cents", c.total_cents);
  if (c.currency.empty()) {
    out += ",\"currency\":null"; // no line yet: the first one fixes it
  } else {
    field(out, "currency", c.currency);
  }
  out += '}';
  return out;
}

std::string stock_json(const actors::stock_view& s) {
  std::string out = "{";
  field(out, "sku", s.sku, true);
  field(out, "on_hand", s.on_hand);
  field(out, "held", s.held);
  field(out, "sold", s.sold);
  field(out, "available", s.available);
  field(out, "owner_node", s.owner_node);
  field(out, "epoch", static_cast<int64_t>(s.epoch));
  out += '}';
  return out;
}

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// -- product page ---------------------------------------------------------------------------

void append_html(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
}

std::string money(int64_t cents, const std::string& currency) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%lld.%02lld %s", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100), currency.c_str());
  return buf;
}

std::string product_page(const actors::product_view& v) {
  const auto& p = v.product;
  std::string out = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
  append_html(out, p.name);
  out += "</title><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
         "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 "
         "1rem}.price{font-size:1.5rem;font-weight:600}.stock{color:#555}</style></head><body>"
         "<main><h1>";
  append_html(out, p.name);
  out += "</h1><p class=\"price\">";
  append_html(out, money(p.price_cents, p.currency));
  out += "</p><p>";
  append_html(out, p.description);
  out += "</p><p class=\"stock\" data-sku=\"";
  append_html(out, p.sku);
  out += "\">";
  out += v.available > 0 ? std::to_string(v.available) + " available" : std::string{"Sold out"};
  out += "</p><p>Category: ";
  append_html(out, p.category);
  out += "</p></main></body></html>\n";
  return out;
}

std::string etag_of(std::string_view body) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  // A list of entity tags, possibly weak (W/"..."), or "*".
  std::size_t pos = 0;
  while (pos < if_none_match.size()) {
    auto comma = if_none_match.find(',', pos);
    auto tok = if_none_match.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                         : comma - pos);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) {
      tok.remove_prefix(1);
    }
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) {
      tok.remove_suffix(1);
    }
    if (tok.substr(0, 2) == "W/") {
      tok.remove_prefix(2);
    }
    if (tok == "*" || tok == etag) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    pos = comma + 1;
  }
  return false;
}

// -- calling actors -------------------------------------------------------------------------

const caf::actor& pick_caller(bridge_env& env) {
  thread_local std::size_t next = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return env.callers[next++ % env.callers.size()];
}

/// Sends (xs...) to `dest` through a caller actor; `ok` turns the reply into the response.
template <class Result, class Handle, class Ok, class... Ts>
void call(bridge_env& env, Handle dest, responder r, Ok ok, Ts... xs) {
  auto timeout = env.call_timeout;
  caf::anon_send(pick_caller(env), call_job{[=](caf::event_based_actor* self) mutable {
                   self->request(dest, timeout, xs...)
                       .then([r, ok](Result& x) mutable { r(ok(x)); },
                             [r](caf::error& err) mutable { r(to_http_error(err)); });
                 }});
}

using params = path_params;

// -- storefront handlers --------------------------------------------------------------------

// -- customers ------------------------------------------------------------------------------

/// Who is asking: the verified customer of the request's bearer token, "" without one, or the
/// 401 to answer. Only routes that act for a customer ask; without auth.* nothing is verified
/// and every request is anonymous here (the body's customer_id is trusted instead).
std::variant<std::string, http_response> principal_of(const bridge_env& env,
                                                      const http_request& req) {
  if (!env.customers || !env.customers->enabled()) {
    return std::string{};
  }
  auto auth = req.header("authorization");
  if (!auth) {
    return std::string{};
  }
  constexpr std::string_view scheme = "bearer ";
  auto refuse = [](std::string_view why) {
    auto resp = error_response(401, "unauthorized", why);
    resp.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return resp;
  };
  if (auth->size() <= scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), auth->begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return refuse("Authorization must be 'Bearer <customer token>'");
  }
  auto verdict =
      env.customers->verify(auth->substr(scheme.size()), std::chrono::system_clock::now());
  if (auto* no = std::get_if<auth_refusal>(&verdict)) {
    return refuse(std::string{"the customer token is not valid ("} + to_string(no->code) + ")");
  }
  return std::move(std::get<verified_customer>(verdict).id);
}

void get_product(std::shared_ptr<bridge_env> env, http_request&&, params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  call<actors::product_view>(
      *env, env->skus->acquire(p[0]), std::move(r),
      [](actors::product_view& v) { return json_response(200, product_json(v)); },
      actors::product_atom::value);
}

http_response page_response(const page_cache::page& pg, const std::string& if_none_match) {
  http_response resp;
  resp.content_type = "text/html; charset=utf-8";
  resp.headers.emplace_back("ETag", pg.etag);
  resp.headers.emplace_back("Cache-Control", "public, max-age=5, stale-while-revalidate=30");
  if (!if_none_match.empty() && etag_matches(if_none_match, pg.etag)) {
    resp.status = 304;
  } else {
    resp.body = pg.body;
  }
  return resp;
}

void get_page(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  std::string inm{req.header("if-none-match").value_or("")};
  const auto asked = page_cache::clock::now();
  uint64_t generation = 0;
  if (env->pages) {
    if (auto hit = env->pages->get(p[0], asked)) {
      return r(page_response(*hit, inm));
    }
    generation = env->pages->generation();
  }
  call<actors::product_view>(
      *env, env->skus->acquire(p[0]), std::move(r),
      [env, sku = p[0], inm, asked, generation](actors::product_view& v) {
        auto pg = std::make_shared<page_cache::page>();
        pg->body = product_page(v);
        pg->etag = etag_of(pg->body);
        pg->rendered = asked; // as old as the question, not the answer
        auto resp = page_response(*pg, inm);
        if (env->pages) {
          env->pages->put(sku, std::move(pg), generation);
        }
        return resp;
      },
      actors::product_atom::value);
}

void list_products(std::shared_ptr<bridge_env> env, http_request&& req, params&&, responder r) {
  persistence::product_query q;
  auto text_param = [&](const char* name, std::size_t max_len, std::string& out) -> bool {
    if (auto v = req.param(name)) {
      if (v->size() > max_len) {
        r(bad_request(std::string{"'"} + name + "' is longer than " + std::to_string(max_len)));
        return false;
      }
      out = std::string{*v};
    }
    return true;
  };
  auto int_param = [&](const char* name, int64_t lo, int64_t hi,
                       std::optional<int64_t>& out) -> bool {
    auto v = req.param(name);
    if (!v || v->empty()) {
      return true;
    }
    int64_t x = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc{} || ptr != v->data() + v->size() || x < lo || x > hi) {
      r(bad_request(std::string{"'"} + name + "' must be an integer between " + std::to_string(lo) +
                    " and " + std::to_string(hi)));
      return false;
    }
    out = x;
    return true;
  };
  std::string cursor;
  std::optional<int64_t> limit;
  if (!text_param("q", 200, q.text) || !text_param("category", 100, q.category) ||
      !text_param("cursor", 64, cursor) || !int_param("min_price", 0, max_money, q.min_price) ||
      !int_param("max_price", 0, max_money, q.max_price) || !int_param("limit", 1, 100, limit)) {
    return;
  }
  if (!cursor.empty() && !valid_sku(cursor)) {
    return r(bad_request("'cursor' is not a cursor this API returned"));
  }
  q.after_sku = cursor;
  q.limit = static_cast<std::size_t>(limit.value_or(20));
  if (auto v = req.param("in_stock")) {
    if (*v == "true" || *v == "1") {
      q.in_stock_only = true;
    } else if (*v == "false" || *v == "0" || v->empty()) {
      q.in_stock_only = false;
    } else {
      return r(bad_request("'in_stock' must be true or false"));
    }
  }
  // The query in one canonical string: the listing cache's key.
  std::string key = q.text;
  for (const auto* part : {&q.category, &q.after_sku}) {
    key += '\x1f';
    key += *part;
  }
  for (const auto& n : {q.min_price, q.max_price}) {
    key += '\x1f';
    key += n ? std::to_string(*n) : std::string{};
  }
  key += '\x1f' + std::to_string(q.limit) + (q.in_stock_only ? "s" : "a");
  const auto asked = page_cache::clock::now();
  uint64_t generation = 0;
  if (env->listings) {
    if (auto hit = env->listings->get(key, asked)) {
      return r(json_response(200, hit->body));
    }
    generation = env->listings->generation();
  }
  env->catalog->submit([env, key = std::move(key), asked, generation, q = std::move(q),
                        r = std::move(r)](persistence::catalog* cat) mutable {
    if (cat == nullptr) {
      return r(error_response(503, "unavailable", "catalog unavailable"));
    }
    auto page = cat->list_products(q);
    if (!page) {
      return r(to_http_error(page.error()));
    }
    std::string out = "{\"items\":[";
    bool first = true;
    for (const auto& item : *page) {
      if (!first) {
        out += ',';
      }
      first = false;
      append_product(out, actors::product_view{item.product, item.available});
    }
    out += "],\"next_cursor\":";
    if (page->size() == q.limit && !page->empty()) {
      json::append_quoted(out, page->back().product.sku);
    } else {
      out += "null";
    }
    out += '}';
    if (env->listings) {
      env->listings->put(key, std::make_shared<page_cache::page>(page_cache::page{out, {}, asked}),
                         generation);
    }
    r(json_response(200, std::move(out)));
  });
}

void create_cart(std::shared_ptr<bridge_env> env, http_request&& req, params&&, responder r) {
  auto who = principal_of(*env, req);
  if (auto* resp = std::get_if<http_response>(&who)) {
    return r(std::move(*resp));
  }
  const auto& principal = std::get<std::string>(who);
  auto body = object_body(req, true);
  if (auto* resp = std::get_if<http_response>(&body)) {
    return r(std::move(*resp));
  }
  std::string err;
  auto customer = string_field(std::get<json::value>(body), "customer_id", 128, false, "", err);
  if (!customer) {
    return r(bad_request(err));
  }
  if (!customer->empty() && !valid_customer(*customer)) {
    return r(bad_request("'customer_id' may hold only letters, digits and ._@+-"));
  }
  if (env->customers && env->customers->enabled()) {
    // Customers are verified: the token says who the cart is for, never the body.
    if (principal.empty() && !customer->empty()) {
      return r(error_response(401, "login_required",
                              "a cart for a customer needs that customer's token "
                              "(Authorization: Bearer)"));
    }
    if (!principal.empty() && !customer->empty() && *customer != principal) {
      return r(error_response(403, "forbidden", "'customer_id' is not the token's customer"));
    }
    *customer = principal;
  }
  call<actors::cart_view>(
      *env, env->carts->acquire(actors::random_id("c_")), std::move(r),
      [](actors::cart_view& c) { return json_response(201, cart_json(c)); },
      actors::create_atom::value, *customer);
}

/// Runs `f(principal)` for a request that acts for a customer, or answers its 401.
template <class F>
void as_customer(const bridge_env& env, const http_request& req, responder& r, F f) {
  auto who = principal_of(env, req);
  if (auto* resp = std::get_if<http_response>(&who)) {
    return r(std::move(*resp));
  }
  f(std::move(std::get<std::string>(who)));
}

void get_cart(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::cart_view>(
        *env, env->carts->acquire(p[0]), std::move(r),
        [](actors::cart_view& c) { return json_response(200, cart_json(c)); }, caf::get_atom::value,
        std::move(principal));
  });
}

void put_item(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  if (!valid_sku(p[1])) {
    return r(not_found("no such product"));
  }
  auto body = object_body(req, false);
  if (auto* resp = std::get_if<http_response>(&body)) {
    return r(std::move(*resp));
  }
  std::string err;
  auto qty = int_field(std::get<json::value>(body), "qty", 0, max_qty, true, 0, err);
  if (!qty) {
    return r(bad_request(err));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::cart_view>(
        *env, env->carts->acquire(p[0]), std::move(r),
        [](actors::cart_view& c) { return json_response(200, cart_json(c)); },
        actors::item_atom::value, p[1], *qty, false, std::move(principal));
  });
}

void delete_item(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  if (!valid_sku(p[1])) {
    return r(not_found("no such product"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::cart_view>(
        *env, env->carts->acquire(p[0]), std::move(r),
        [](actors::cart_view& c) { return json_response(200, cart_json(c)); },
        actors::item_atom::value, p[1], int64_t{0}, true, std::move(principal));
  });
}

bool valid_key(std::string_view s) {
  if (s.empty() || s.size() > 200) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string order_json(const actors::order_view& o) {
  std::string out = "{";
  field(out, "order_id", o.order_id, true);
  field(out, "cart_id", o.cart_id);
  field(out, "status", o.status);
  out += ",\"lines\":[";
  bool first = true;
  for (const auto& l : o.lines) {
    if (!first) {
      out += ',';
    }
    first = false;
    out += '{';
    field(out, "sku", l.sku, true);
    field(out, "qty", l.qty);
    field(out, "price_cents", l.price_cents);
    out += '}';
  }
  out += ']';
  field(out, "total_cents", o.total_cents);
  field(out, "currency", o.currency);
  field(out, "created_at", rfc3339_ms(o.created_at_ms));
  if (!o.refund_status.empty()) {
    // A cancelled order that had been charged says what became of the money.
    out += ",\"refund\":{";
    field(out, "status", o.refund_status, true);
    field(out, "amount_cents", o.refunded_cents);
    out += '}';
  }
  out += '}';
  return out;
}

void checkout(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such cart"));
  }
  auto key = req.header("idempotency-key");
  if (!key) {
    return r(bad_request("the Idempotency-Key header is required"));
  }
  if (!valid_key(*key)) {
    return r(bad_request("Idempotency-Key must be 1 to 200 printable ASCII characters"));
  }
  auto body = object_body(req, false);
  if (auto* resp = std::get_if<http_response>(&body)) {
    return r(std::move(*resp));
  }
  const json::value* payment = std::get<json::value>(body).find("payment");
  if (payment == nullptr || !payment->is_object()) {
    return r(bad_request("'payment' must be an object with 'method' and 'token'"));
  }
  std::string err;
  auto method = string_field(*payment, "method", 32, true, "", err);
  auto token = method ? string_field(*payment, "token", 200, true, "", err) : std::nullopt;
  if (!token) {
    return r(bad_request("payment." + err.substr(0)));
  }
  if (*method != "card") {
    return r(bad_request("payment.method must be \"card\""));
  }
  if (token->empty()) {
    return r(bad_request("payment.token must not be empty"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    actors::checkout_request cr{std::string{*key}, p[0], *method, *token, std::move(principal)};
    call<actors::order_view>(
        *env, env->orders->acquire(env->ids->order_id_for(cr.idempotency_key)), std::move(r),
        [](actors::order_view& o) { return json_response(201, order_json(o)); },
        actors::checkout_atom::value, cr);
  });
}

void get_order(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_cart_id(p[0])) {
    return r(not_found("no such order"));
  }
  as_customer(*env, req, r, [&](std::string principal) {
    call<actors::order_view>(
        *env, env->orders->acquire(p[0]), std::move(r),
        [](actors::order_view& o) { return json_response(200, order_json(o)); },
        caf::get_atom::value, std::move(principal));
  });
}

// -- admin handlers -------------------------------------------------------------------------

/// This node changed what the page of `sku` (and any listing) shows: render anew next time.
void drop_page(bridge_env& env, const std::string& sku) {
  if (env.pages) {
    env.pages->drop(sku);
  }
  if (env.listings) {
    env.listings->clear();
  }
}

void put_product(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(bad_request("a SKU is 1 to 64 letters, digits, '.', '_' or '-', not dots alone"));
  }
  auto body = object_body(req, false);
  if (auto* resp = std::get_if<http_response>(&body)) {
    return r(std::move(*resp));
  }
  const auto& obj = std::get<json::value>(body);
  std::string err;
  persistence::product_record rec;
  rec.sku = p[0];
  auto name = string_field(obj, "name", 200, true, "", err);
  auto description = name ? string_field(obj, "description", 5000, false, "", err) : std::nullopt;
  auto category = description ? string_field(obj, "category", 100, false, "", err) : std::nullopt;
  auto currency = category ? string_field(obj, "currency", 3, false, "USD", err) : std::nullopt;
  auto price = currency ? int_field(obj, "price_cents", 0, max_money, true, 0, err) : std::nullopt;
  auto limit =
      price ? int_field(obj, "per_customer_limit", 0, max_qty, false, 0, err) : std::nullopt;
  if (!limit) {
    return r(bad_request(err));
  }
  if (name->empty()) {
    return r(bad_request("'name' must not be empty"));
  }
  if (currency->size() != 3 || !std::all_of(currency->begin(), currency->end(),
                                            [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return r(bad_request("'currency' must be an ISO 4217 code such as \"USD\""));
  }
  rec.name = *name;
  rec.description = *description;
  rec.category = *category;
  rec.currency = *currency;
  rec.price_cents = *price;
  rec.per_customer_limit = *limit;
  call<actors::product_view>(
      *env, env->skus->acquire(p[0]), std::move(r),
      [env, sku = p[0]](actors::product_view& v) {
        drop_page(*env, sku);
        return json_response(200, product_json(v));
      },
      actors::product_atom::value, rec);
}

void post_stock(std::shared_ptr<bridge_env> env, http_request&& req, params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  auto body = object_body(req, false);
  if (auto* resp = std::get_if<http_response>(&body)) {
    return r(std::move(*resp));
  }
  const auto& obj = std::get<json::value>(body);
  bool has_set = obj.find("set") != nullptr;
  bool has_add = obj.find("add") != nullptr;
  if (has_set == has_add) {
    return r(bad_request("give exactly one of 'set' and 'add'"));
  }
  std::string err;
  auto value = has_set ? int_field(obj, "set", 0, max_money, true, 0, err)
                       : int_field(obj, "add", -max_money, max_money, true, 0, err);
  if (!value) {
    return r(bad_request(err));
  }
  call<actors::stock_view>(
      *env, env->skus->acquire(p[0]), std::move(r),
      [env, sku = p[0]](actors::stock_view& s) {
        drop_page(*env, sku);
        return json_response(200, stock_json(s));
      },
      actors::stock_atom::value, actors::stock_change{has_set, *value});
}

void get_stock(std::shared_ptr<bridge_env> env, http_request&&, params&& p, responder r) {
  if (!valid_sku(p[0])) {
    return r(not_found("no such product"));
  }
  call<actors::stock_view>(
      *env, env->skus->acquire(p[0]), std::move(r),
      [](actors::stock_view& s) { return json_response(200, stock_json(s)); },
      actors::stock_atom::value);
}

/// Ready: started, and (in a cluster) a member with a live lease and the shard map.
bool serving(const bridge_env& env) {
  return env.ready.load() && (!env.cluster.serving || env.cluster.serving());
}

void get_cluster(std::shared_ptr<bridge_env> env, http_request&&, params&&, responder r) {
  std::string out = "{\"nodes\":[";
  bool first = true;
  if (env->cluster.nodes) {
    for (const auto& n : env->cluster.nodes()) {
      out += first ? "{" : ",{";
      first = false;
      field(out, "node_id", n.node_id, true);
      field(out, "address", n.address);
      field(out, "http_address", n.http_address);
      field(out, "admin_address", n.admin_address);
      field(out, "status", n.status);
      field(out, "shards", static_cast<int64_t>(n.shards));
      field(out, "actors", static_cast<int64_t>(n.actors));
      field(out, "heartbeat_age_ms", n.heartbeat_age_ms);
      out += '}';
    }
  }
  out += "]";
  field(out, "shards", static_cast<int64_t>(env->shards));
  field(out, "this_node", env->node_id);
  out += '}';
  r(json_response(200, std::move(out)));
}

void get_shards(std::shared_ptr<bridge_env> env, http_request&&, params&&, responder r) {
  std::string out = "{\"shards\":[";
  bool first = true;
  if (env->cluster.shards) {
    for (const auto& s : env->cluster.shards()) {
      out += first ? "{" : ",{";
      first = false;
      field(out, "shard", static_cast<int64_t>(s.shard), true);
      field(out, "owner", s.owner);
      field(out, "epoch", static_cast<int64_t>(s.epoch));
      field(out, "target", s.target);
      out += '}';
    }
  }
  out += "]}";
  r(json_response(200, std::move(out)));
}

void post_drain(std::shared_ptr<bridge_env> env, http_request&&, params&& p, responder r) {
  if (!env->cluster.drain) {
    return r(error_response(503, "unavailable", "this node is not a cluster member"));
  }
  env->cluster.drain(p[0], [r = std::move(r), node = p[0]](bool found) {
    if (!found) {
      return r(error_response(404, "not_found", "no such node: " + node));
    }
    std::string out;
    field(out, "node_id", node, true);
    field(out, "status", "draining");
    r(json_response(202, "{" + out + "}"));
  });
}

void get_metrics(std::shared_ptr<bridge_env> env, http_request&&, params&&, responder r) {
  std::ostringstream out;
  out << "# HELP surge_up 1 while the node serves.\n# TYPE surge_up gauge\nsurge_up "
      << (serving(*env) ? 1 : 0) << "\n";
  out << "# HELP surge_http_responses_total HTTP responses by status.\n"
         "# TYPE surge_http_responses_total counter\n";
  for (int s = 100; s < 600; ++s) {
    auto n = env->metrics.by_status[static_cast<std::size_t>(s)].load(std::memory_order_relaxed);
    if (n > 0) {
      out << "surge_http_responses_total{code=\"" << s << "\"} " << n << "\n";
    }
  }
  out << "# HELP surge_http_rate_limited_total Storefront writes refused 429 rate_limited.\n"
         "# TYPE surge_http_rate_limited_total counter\n"
      << "surge_http_rate_limited_total "
      << env->metrics.rate_limited.load(std::memory_order_relaxed) << "\n";
  out << "# HELP surge_entities_active Live entity actors on this node.\n"
         "# TYPE surge_entities_active gauge\n"
      << "surge_entities_active{kind=\"sku\"} " << env->skus->size() << "\n"
      << "surge_entities_active{kind=\"cart\"} " << env->carts->size() << "\n";
  if (env->extra_metrics) {
    out << env->extra_metrics();
  }
  http_response resp;
  resp.content_type = "text/plain; version=0.0.4";
  resp.body = out.str();
  r(std::move(resp));
}

template <class F>
router::route_handler bind(std::shared_ptr<bridge_env> env, F f) {
  return [env, f](http_request&& req, path_params&& p, responder r) {
    f(env, std::move(req), std::move(p), std::move(r));
  };
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::string lower_case(std::string_view s) {
  std::string out{s};
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

/// admin.allowed_origins (a comma list; config validates each entry) as lower-case origins.
std::vector<std::string> parse_origins(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (auto o = trim_space(list.substr(0, comma)); !o.empty()) {
      out.push_back(lower_case(o));
    }
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return out;
}

/// True when `origin` may talk to the admin API: it is the console's own (scheme "http://" or
/// "https://" followed by the request's Host) or one of `allowed` (lower-case). Scheme and host
/// compare case-insensitively; "null" (sandboxed pages, file:// URLs) never passes.
bool origin_allowed(std::string_view origin, std::optional<std::string_view> host,
                    const std::vector<std::string>& allowed) {
  const auto o = lower_case(trim_space(origin));
  if (o.empty() || o == "null") {
    return false;
  }
  if (host && !host->empty()) {
    const auto h = lower_case(trim_space(*host));
    if (o == "http://" + h || o == "https://" + h) {
      return true;
    }
  }
  return std::find(allowed.begin(), allowed.end(), o) != allowed.end();
}

/// True when the media type of `content_type` (before any ";" parameters) is application/json,
/// case-insensitively.
bool is_json_media_type(std::string_view content_type) {
  return lower_case(trim_space(content_type.substr(0, content_type.find(';')))) ==
         "application/json";
}

/// Admin routes check, in this order, and answer the first failure:
///  1. the bearer token, when admin.token is set: 401 unauthorized;
///  2. an Origin header, when present: the console's own (http:// or https:// + Host) or one of
///     admin.allowed_origins, else 403 forbidden (a browser page of another site, or "null");
///  3. POST and PUT: Content-Type application/json (parameters allowed), else 415
///     unsupported_media_type (a missing one too), so that a page cannot send a "simple" cross-site
///     form or text/plain request.
/// Requests without Origin (curl, surgectl) pass 2. A refused request changes nothing.
/// env->admin_allowed_origins is read once, here.
template <class F>
router::route_handler admin(std::shared_ptr<bridge_env> env, F f) {
  auto allowed =
      std::make_shared<const std::vector<std::string>>(parse_origins(env->admin_allowed_origins));
  return [env, f, allowed](http_request&& req, path_params&& p, responder r) {
    if (!env->admin_token.empty()) {
      auto auth = req.header("authorization").value_or("");
      constexpr std::string_view prefix = "Bearer ";
      if (auth.substr(0, prefix.size()) != prefix ||
          !constant_time_equal(auth.substr(prefix.size()), env->admin_token)) {
        auto resp = error_response(401, "unauthorized", "a valid bearer token is required");
        resp.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r(std::move(resp));
      }
    }
    if (auto origin = req.header("origin");
        origin && !origin_allowed(*origin, req.header("host"), *allowed)) {
      return r(error_response(403, "forbidden",
                              "the Origin is neither the console's own nor in "
                              "admin.allowed_origins"));
    }
    if ((req.method == "POST" || req.method == "PUT") &&
        !is_json_media_type(req.header("content-type").value_or(""))) {
      return r(error_response(415, "unsupported_media_type",
                              "admin requests with a body need Content-Type: application/json"));
    }
    f(env, std::move(req), std::move(p), std::move(r));
  };
}

/// Storefront writes (every method but GET and HEAD, so POST, PUT, DELETE and any other) take a
/// token from the client address's bucket before any route runs; over the limit: 429
/// `rate_limited` with Retry-After. Reads are never limited.
std::optional<http_response> limit_writes(bridge_env& env, const http_request& req) {
  if (!env.limiter || req.method == "GET" || req.method == "HEAD") {
    return std::nullopt;
  }
  const auto client = client_address(req.peer, req.header("x-forwarded-for"), env.trusted_proxies);
  const auto d = env.limiter->acquire(client);
  if (d.allowed) {
    return std::nullopt;
  }
  env.metrics.rate_limited.fetch_add(1, std::memory_order_relaxed);
  const auto secs = std::to_string(d.retry_after.count());
  auto resp =
      error_response(429, "rate_limited",
                     "too many writes from " + client.to_string() + "; retry in " + secs + " s");
  resp.headers.emplace_back("Retry-After", secs);
  return resp;
}

void healthz(std::shared_ptr<bridge_env>, http_request&&, params&&, responder r) {
  r(json_response(200, "{\"status\":\"ok\"}"));
}

void readyz(std::shared_ptr<bridge_env> env, http_request&&, params&&, responder r) {
  if (serving(*env)) {
    return r(json_response(200, "{\"status\":\"ready\"}"));
  }
  auto resp = error_response(503, "unavailable", "this node is not serving");
  resp.headers.emplace_back("Retry-After", "1");
  r(std::move(resp));
}

} // namespace

std::vector<caf::actor> spawn_callers(caf::actor_system& sys, std::size_t n) {
  std::vector<caf::actor> out;
  // The index argument is not needed by the actor; CAF 0.17.6 dereferences a null argument
  // tuple when a function actor takes no arguments (UBSan reports it), so give it one.
  auto caller = [](caf::event_based_actor* self, std::size_t) -> caf::behavior {
    return {[self](call_job& job) { job.run(self); }};
  };
  for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i) {
    out.push_back(sys.spawn(caller, i));
  }
  return out;
}

http_response to_http_error(const caf::error& err) {
  if (err.category() == actors::error_category) {
    auto msg = actors::message_of(err);
    switch (static_cast<errc>(err.code())) {
    case errc::not_found:
      return error_response(404, "not_found", msg.empty() ? "not found" : msg);
    case errc::sold_out:
      return error_response(409, "sold_out", msg.empty() ? "sold out" : msg);
    case errc::limit_exceeded:
      return error_response(409, "limit_exceeded", msg.empty() ? "limit exceeded" : msg);
    case errc::conflict:
      return error_response(409, "conflict", msg.empty() ? "conflict" : msg);
    case errc::invalid:
      return error_response(400, "bad_request", msg.empty() ? "invalid request" : msg);
    case errc::payment_declined:
      return error_response(402, "payment_declined", msg.empty() ? "payment declined" : msg);
    case errc::hold_expired:
      return error_response(409, "hold_expired", msg.empty() ? "a hold expired" : msg);
    case errc::empty_cart:
      return error_response(409, "empty_cart", msg.empty() ? "the cart is empty" : msg);
    case errc::idempotency_conflict:
      return error_response(422, "idempotency_conflict",
                            msg.empty() ? "the key was used for another request" : msg);
    case errc::checkout_in_progress:
      return error_response(409, "checkout_in_progress",
                            msg.empty() ? "a checkout of this cart is under way" : msg);
    case errc::currency_mismatch:
      return error_response(409, "currency_mismatch",
                            msg.empty() ? "the cart is in another currency" : msg);
    case errc::login_required:
      return error_response(401, "login_required", msg.empty() ? "sign in first" : msg);
    case errc::unavailable:
      break;
    }
  }
  // Storage failures, timeouts and entities that went away: nothing was acknowledged, and the
  // client may retry.
  auto resp = error_response(503, "unavailable", "temporarily unavailable, retry shortly");
  resp.headers.emplace_back("Retry-After", "1");
  return resp;
}

std::string rfc3339_ms(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

router make_storefront_router(std::shared_ptr<bridge_env> env) {
  router rt;
  rt.set_guard([env](const http_request& req) { return limit_writes(*env, req); });
  rt.add("GET", "/healthz", bind(env, healthz));
  rt.add("GET", "/readyz", bind(env, readyz));
  rt.add("GET", "/api/v1/products", bind(env, list_products));
  rt.add("GET", "/api/v1/products/{sku}", bind(env, get_product));
  rt.add("POST", "/api/v1/carts", bind(env, create_cart));
  rt.add("GET", "/api/v1/carts/{cart_id}", bind(env, get_cart));
  rt.add("PUT", "/api/v1/carts/{cart_id}/items/{sku}", bind(env, put_item));
  rt.add("DELETE", "/api/v1/carts/{cart_id}/items/{sku}", bind(env, delete_item));
  rt.add("POST", "/api/v1/carts/{cart_id}/checkout", bind(env, checkout));
  rt.add("GET", "/api/v1/orders/{order_id}", bind(env, get_order));
  rt.add("GET", "/p/{sku}", bind(env, get_page));
  return rt;
}

router make_admin_router(std::shared_ptr<bridge_env> env) {
  router rt;
  rt.add("GET", "/healthz", bind(env, healthz));
  rt.add("GET", "/readyz", bind(env, readyz));
  rt.add("PUT", "/admin/v1/products/{sku}", admin(env, put_product));
  rt.add("POST", "/admin/v1/products/{sku}/stock", admin(env, post_stock));
  rt.add("GET", "/admin/v1/products/{sku}/stock", admin(env, get_stock));
  rt.add("GET", "/admin/v1/cluster", admin(env, get_cluster));
  rt.add("GET", "/admin/v1/shards", admin(env, get_shards));
  rt.add("POST", "/admin/v1/nodes/{node_id}/drain", admin(env, post_drain));
  rt.add("GET", "/metrics", admin(env, get_metrics));
  return rt;
}

handler make_handler(std::shared_ptr<bridge_env> env, std::shared_ptr<const router> r) {
  return [env, r](http_request&& req, responder resp) {
    r->dispatch(std::move(req), [env, resp = std::move(resp)](http_response out) {
      env->metrics.count(out.status);
      resp(std::move(out));
    });
  };
}

} // namespace surge::net
