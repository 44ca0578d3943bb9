// The HTTP bridge in one process: API.md's storefront and admin routes (make_storefront_router,
// make_admin_router, make_handler) on scripted entity actors and an in-memory catalog. Response
// bodies are compared byte for byte: they are the contract clients parse, and the bridge's JSON
// writer must keep them exactly (strings with quotes, control characters, UTF-8 and invalid
// bytes included).

#include <atomic>
#include <cctype>
#include <chrono>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "listener_options.hpp"
#include "memory_catalog.hpp"
#include "memory_journal.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/net/bridge.hpp"
#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"

namespace net = surge::net;
namespace actors = surge::actors;
namespace persistence = surge::persistence;
namespace fakes = surge::fakes;

namespace {

/// Text that a JSON writer must escape or pass through: quote, backslash, control characters,
/// DEL, valid UTF-8 (2, 3 and 4 bytes), an invalid byte, and HTML's special characters.
const std::string tricky =
    std::string{"Q\"B\\ \x01\n\t\x7f Caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"
                " bad\xff <b>&'x'</b>"};

constexpr int64_t expires_ms = 1764318600123; // 2025-11-28T08:30:00.123Z

/// What the scripted entities answer. An id starting with "E" followed by a number n answers
/// actors::errc(n) with the message "scripted"; others answer a view named after the id.
actors::errc scripted_error(const std::string& id, bool& failed) {
  failed =
      id.size() > 1 && id[0] == 'E' && id.find_first_not_of("0123456789", 1) == std::string::npos;
  return failed ? static_cast<actors::errc>(std::stoi(id.substr(1))) : actors::errc{};
}

actors::product_view product_of(const std::string& sku) {
  actors::product_view v;
  v.product.sku = sku;
  v.product.name = "Kettle " + tricky;
  v.product.description = "1.7 l\r\n\"steel\"";
  v.product.category = "kitchen";
  v.product.price_cents = 2599;
  v.product.currency = "EUR";
  v.product.per_customer_limit = 2;
  v.available = sku == "SOLD" ? -3 : 7;
  return v;
}

/// The product page of product_of(sku) saying `stock`: tricky's name escaped for HTML, its raw
/// bytes (control characters, an invalid byte) kept.
std::string page_html(std::string_view sku, std::string_view stock) {
  const std::string name = "Kettle Q&quot;B\\ \x01\n\t\x7f Café ✓ 😀 bad\xff "
                           "&lt;b&gt;&amp;&#39;x&#39;&lt;/b&gt;";
  return R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>)" +
         name +
         R"(</title><meta name="viewport" content="width=device-width,initial-scale=1">)"
         R"(<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;)"
         R"(padding:0 1rem}.price{font-size:1.5rem;font-weight:600}.stock{color:#555}</style>)"
         R"(</head><body><main><h1>)" +
         name + R"(</h1><p class="price">25.99 EUR</p><p>1.7 l)" + "\r\n" +
         R"(&quot;steel&quot;</p><p class="stock" data-sku=")" + std::string{sku} + R"(">)" +
         std::string{stock} + R"(</p><p>Category: kitchen</p></main></body></html>
)";
}

actors::stock_view stock_of(const std::string& sku, int64_t on_hand) {
  return actors::stock_view{sku, on_hand, 2, 1, on_hand - 3, "node-\"1\"", 18446744073709ULL};
}

actors::sku_actor::behavior_type fake_sku(actors::sku_actor::pointer self, std::string id) {
  auto fail = [id]() -> std::optional<caf::error> {
    bool failed = false;
    auto code = scripted_error(id, failed);
    if (failed) {
      return actors::make_error(code, code == actors::errc::sold_out ? "" : "scripted");
    }
    return std::nullopt;
  };
  (void)self;
  return {
      [](actors::hold_atom, const actors::hold_request&) -> caf::result<actors::hold_view> {
        return actors::make_error(actors::errc::invalid, "not scripted");
      },
      [](actors::confirm_atom, const std::string&, const std::string&, const std::string&,
         int64_t) -> caf::result<actors::stock_view> {
        return actors::make_error(actors::errc::invalid, "not scripted");
      },
      [](actors::return_atom, const std::string&,
         const std::string&) -> caf::result<actors::stock_view> {
        return actors::make_error(actors::errc::invalid, "not scripted");
      },
      [id, fail](actors::stock_atom, actors::stock_change c) -> caf::result<actors::stock_view> {
        if (auto err = fail()) {
          return *err;
        }
        return stock_of(id, c.set ? c.value : 10 + c.value);
      },
      [id, fail](actors::stock_atom) -> caf::result<actors::stock_view> {
        if (auto err = fail()) {
          return *err;
        }
        return stock_of(id, 10);
      },
      [fail](actors::product_atom,
             const persistence::product_record& r) -> caf::result<actors::product_view> {
        if (auto err = fail()) {
          return *err;
        }
        return actors::product_view{r, 0};
      },
      [id, fail](actors::product_atom) -> caf::result<actors::product_view> {
        if (auto err = fail()) {
          return *err;
        }
        return product_of(id);
      },
      [](actors::handoff_atom, bool) {},
  };
}

actors::cart_view cart_of(const std::string& id, const std::string& customer, bool lines) {
  actors::cart_view c;
  c.cart_id = id;
  c.customer_id = customer;
  if (lines) {
    c.items.push_back({"A1", 2, 2599, "EUR", "h_" + tricky, expires_ms});
    c.items.push_back({"B\"2", 1, 100, "EUR", "h_2", 0});
    c.total_cents = 5298;
    c.currency = "EUR";
  }
  return c;
}

/// The deadline the last item change carried (actors/deadline.hpp).
std::atomic<int64_t> last_item_deadline{0};

actors::cart_actor::behavior_type fake_cart(actors::cart_actor::pointer, std::string id) {
  auto fail = [id]() -> std::optional<caf::error> {
    bool failed = false;
    auto code = scripted_error(id, failed);
    if (failed) {
      return actors::make_error(code, "scripted");
    }
    return std::nullopt;
  };
  return {
      [id](actors::create_atom, const std::string& customer) -> caf::result<actors::cart_view> {
        return cart_of("c_new", customer, false);
      },
      [id, fail](caf::get_atom, const std::string& principal) -> caf::result<actors::cart_view> {
        if (auto err = fail()) {
          return *err;
        }
        return cart_of(id, principal, true);
      },
      [id, fail](actors::item_atom, const std::string& sku, int64_t qty, bool remove,
                 const std::string& principal,
                 int64_t deadline_ms) -> caf::result<actors::cart_view> {
        last_item_deadline.store(deadline_ms);
        if (auto err = fail()) {
          return *err;
        }
        auto c = cart_of(id, principal, !remove);
        if (!remove) {
          c.items[0].sku = sku;
          c.items[0].qty = qty;
        }
        return c;
      },
      [](actors::clear_atom, const std::vector<std::string>&) -> caf::result<actors::cart_view> {
        return actors::make_error(actors::errc::invalid, "not scripted");
      },
      [](actors::checkout_atom, const std::string&, bool,
         const std::string&) -> caf::result<actors::cart_view> {
        return actors::make_error(actors::errc::invalid, "not scripted");
      },
      [](actors::handoff_atom, bool) {},
  };
}

actors::order_view order_of(const std::string& id, const std::string& cart, bool refund) {
  actors::order_view o;
  o.order_id = id;
  o.cart_id = cart;
  o.status = refund ? "cancelled" : "confirmed";
  o.lines.push_back({"A1", 2, 2599});
  o.lines.push_back({tricky, 1, 100});
  o.total_cents = 5298;
  o.currency = "EUR";
  o.created_at_ms = expires_ms;
  if (refund) {
    o.refund_status = "refunded";
    o.refunded_cents = 5298;
  }
  return o;
}

actors::order_actor::behavior_type fake_order(actors::order_actor::pointer, std::string id) {
  return {
      [id](actors::checkout_atom,
           const actors::checkout_request& r) -> caf::result<actors::order_view> {
        if (r.token == "tok_decline") {
          return actors::make_error(actors::errc::payment_declined, "");
        }
        return order_of(id, r.cart_id + "|" + r.principal, false);
      },
      [id](caf::get_atom, const std::string& principal) -> caf::result<actors::order_view> {
        if (id == "o_missing") {
          return actors::make_error(actors::errc::not_found, "no such order");
        }
        return order_of(id, "c_1|" + principal, id == "o_refund");
      },
      [](actors::reconcile_atom) {},
      [](actors::handoff_atom, bool) {},
  };
}

/// A node's bridge on scripted entities and an in-memory catalog (see products()).
struct bridge_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg}; // destroyed last: waits for every actor
  std::shared_ptr<fakes::memory_journal_state> db = std::make_shared<fakes::memory_journal_state>();
  actors::sku_directory skus{[this](const std::string& id) { return sys.spawn(fake_sku, id); }};
  actors::cart_directory carts{[this](const std::string& id) { return sys.spawn(fake_cart, id); }};
  actors::order_directory orders{
      [this](const std::string& id) { return sys.spawn(fake_order, id); }};
  std::shared_ptr<bool> catalog_down = std::make_shared<bool>(false);
  persistence::catalog_pool catalog{
      "catalog", 1, [db = db, down = catalog_down]() -> std::unique_ptr<persistence::catalog> {
        if (*down) {
          return nullptr;
        }
        return std::make_unique<fakes::memory_catalog>(db);
      }};
  std::shared_ptr<net::bridge_env> env = std::make_shared<net::bridge_env>();

  bridge_fixture() {
    env->skus = &skus;
    env->carts = &carts;
    env->orders = &orders;
    env->catalog = &catalog;
    env->callers = net::spawn_callers(sys, 2);
    env->call_timeout = std::chrono::seconds{8};
    env->ids = std::make_shared<const actors::id_keys>("bridge-test-secret");
    env->node_id = "node-1";
    env->shards = 8;
    env->ready.store(true);
  }

  ~bridge_fixture() {
    catalog.stop();
    for (auto& c : env->callers) {
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
    }
    auto stop = [](const auto& h) { caf::anon_send_exit(h, caf::exit_reason::user_shutdown); };
    skus.for_each(stop);
    carts.for_each(stop);
    orders.for_each(stop);
  }

  /// Three products in the catalog, with stock rows.
  void products() {
    std::vector<persistence::commit_request> reqs;
    for (const char* sku : {"A1", "A2", "B\"3"}) {
      persistence::commit_request r;
      r.batch = {std::string{"sku:"} + sku, 1, "p"};
      r.product = product_of(sku).product;
      r.product->name = std::string{"Name "} + sku;
      r.stock = persistence::stock_record{sku, 5, 1, 1};
      reqs.push_back(std::move(r));
    }
    fakes::memory_journal j{db};
    REQUIRE(!j.commit(reqs));
  }
};

/// Parses `raw` as the server would and hands it to `handle` (a router's dispatch or a server
/// handler); waits for the answer.
template <class Handle>
net::http_response answer_to(const Handle& handle, std::string raw) {
  auto parsed = net::parse_request(raw, surge::test::listener());
  REQUIRE_MESSAGE(std::holds_alternative<net::http_request>(parsed), raw);
  std::promise<net::http_response> answer;
  auto done = answer.get_future();
  handle(std::move(std::get<net::http_request>(parsed)),
         [&answer](net::http_response resp) { answer.set_value(std::move(resp)); });
  REQUIRE(done.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  return done.get();
}

/// `raw` dispatched on `r`.
net::http_response ask(const net::router& r, std::string raw) {
  return answer_to([&r](net::http_request&& req,
                        net::responder resp) { r.dispatch(std::move(req), std::move(resp)); },
                   std::move(raw));
}

std::string get(std::string_view path, std::string_view headers = "") {
  return std::string{"GET "} + std::string{path} + " HTTP/1.1\r\nHost: shop\r\n" +
         std::string{headers} + "\r\n";
}

std::string with_body(std::string_view method, std::string_view path, std::string_view body,
                      std::string_view headers = "Content-Type: application/json\r\n") {
  return std::string{method} + " " + std::string{path} + " HTTP/1.1\r\nHost: shop\r\n" +
         std::string{headers} + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string{body};
}

std::string header(const net::http_response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return "(none)";
}

} // namespace

namespace {

// -- the bodies the scripted entities make the bridge answer, written out by hand -------------

/// `tricky` inside a JSON string: escaped, DEL and valid UTF-8 kept, the invalid byte U+FFFD.
const std::string tricky_json =
    std::string{R"(Q\"B\\ \u0001\n\t)"} + "\x7f" + R"( Café ✓ 😀 bad\ufffd <b>&'x'</b>)";

/// API.md's error shape; `message` as it appears in JSON.
std::string error_body(std::string_view code, std::string_view message) {
  return R"({"error":{"code":")" + std::string{code} + R"(","message":")" + std::string{message} +
         R"("}})";
}

/// product_of(sku) with `available`.
std::string product_body(std::string_view sku, int available) {
  return R"({"sku":")" + std::string{sku} + R"(","name":"Kettle )" + tricky_json +
         R"(","description":"1.7 l\r\n\"steel\"","category":"kitchen","price_cents":2599,)"
         R"("currency":"EUR","available":)" +
         std::to_string(available) + R"(,"per_customer_limit":2})";
}

/// cart_of(id, customer, true) whose first line is `qty` of `sku`.
std::string cart_body(std::string_view id, std::string_view customer, std::string_view sku = "A1",
                      int qty = 2) {
  return R"({"cart_id":")" + std::string{id} + R"(","customer_id":")" + std::string{customer} +
         R"(","items":[{"sku":")" + std::string{sku} + R"(","qty":)" + std::to_string(qty) +
         R"(,"price_cents":2599,"hold_id":"h_)" + tricky_json +
         R"(","hold_expires_at":"2025-11-28T08:30:00.123Z"},)"
         R"({"sku":"B\"2","qty":1,"price_cents":100,"hold_id":"h_2",)"
         R"("hold_expires_at":"1970-01-01T00:00:00.000Z"}],"total_cents":5298,"currency":"EUR"})";
}

/// cart_of(id, customer, false): no lines, no currency yet.
std::string empty_cart_body(std::string_view id, std::string_view customer) {
  return R"({"cart_id":")" + std::string{id} + R"(","customer_id":")" + std::string{customer} +
         R"(","items":[],"total_cents":0,"currency":null})";
}

/// order_of(id, cart, refund).
std::string order_body(std::string_view id, std::string_view cart, bool refund = false) {
  return R"({"order_id":")" + std::string{id} + R"(","cart_id":")" + std::string{cart} +
         R"(","status":")" + (refund ? "cancelled" : "confirmed") +
         R"(","lines":[{"sku":"A1","qty":2,"price_cents":2599},{"sku":")" + tricky_json +
         R"(","qty":1,"price_cents":100}],"total_cents":5298,"currency":"EUR",)"
         R"("created_at":"2025-11-28T08:30:00.123Z")" +
         (refund ? R"(,"refund":{"status":"refunded","amount_cents":5298}})" : "}");
}

/// stock_of("N1", on_hand).
std::string stock_body(int on_hand) {
  return R"({"sku":"N1","on_hand":)" + std::to_string(on_hand) +
         R"(,"held":2,"sold":1,"available":)" + std::to_string(on_hand - 3) +
         R"(,"owner_node":"node-\"1\"","epoch":18446744073709})";
}

/// A listing of bridge_fixture::products() entries (skus as they appear in JSON); `cursor` is
/// the next_cursor's JSON ("null" or a quoted sku).
std::string listing_body(std::initializer_list<std::string_view> skus, std::string_view cursor) {
  std::string items;
  for (auto sku : skus) {
    items += (items.empty() ? "" : ",") + std::string{R"({"sku":")"} + std::string{sku} +
             R"(","name":"Name )" + std::string{sku} +
             R"(","description":"1.7 l\r\n\"steel\"","category":"kitchen",)"
             R"("price_cents":2599,"currency":"EUR","available":3,"per_customer_limit":2})";
  }
  return R"({"items":[)" + items + R"(],"next_cursor":)" + std::string{cursor} + "}";
}

/// `s` as C++ source: adjacent string literals, raw ones for printable text (so that a failure
/// message shows exactly what came back, ready to compare).
std::string literal(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const bool utf8 = net::json::valid_utf8(s);
  std::string out;
  std::string run;
  auto flush = [&] {
    // Pieces of at most about 72 bytes, cut after a comma where there is one.
    while (!run.empty()) {
      std::size_t cut = run.size();
      if (cut > 72) {
        const auto comma = run.rfind(',', 72);
        cut = comma == std::string::npos || comma < 24 ? 72 : comma + 1;
      }
      const auto piece = run.substr(0, cut);
      run.erase(0, cut);
      const char* open = piece.find(")\"") == std::string::npos ? "R\"(" : "R\"~(";
      const char* close = piece.find(")\"") == std::string::npos ? ")\"" : ")~\"";
      out += (out.empty() ? "" : " ") + std::string{open} + piece + close;
    }
  };
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f && (c < 0x80 || utf8)) {
      run += static_cast<char>(c);
      continue;
    }
    flush();
    out += out.empty() ? "\"" : " \"";
    out += c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : "\\x";
    if (c != '\n' && c != '\r' && c != '\t') {
      out += std::string{hex[c >> 4], hex[c & 0xF]};
    }
    out += '"';
  }
  flush();
  return out.empty() ? "\"\"" : out;
}

void expect_at(int line, const net::http_response& r, int status, std::string_view body) {
  CHECK_MESSAGE(r.status == status, "line " << line);
  CHECK_MESSAGE(r.body == body, "line " << line << " got " << literal(r.body));
}

#define expect(...) expect_at(__LINE__, __VA_ARGS__)

/// A request body and the message of the 400 bad_request it must get.
struct bad_body {
  const char* body;
  const char* message;
};

/// Sends each body of `cases` as `method` `path` with `headers`; each is refused 400.
void expect_refused(const net::router& r, std::string_view method, std::string_view path,
                    std::initializer_list<bad_body> cases,
                    std::string_view headers = "Content-Type: application/json\r\n") {
  for (const auto& c : cases) {
    CAPTURE(c.body);
    expect(ask(r, with_body(method, path, c.body, headers)), 400,
           error_body("bad_request", c.message));
  }
}

} // namespace

TEST_CASE("bridge: health and readiness") {
  bridge_fixture f;
  const auto store = net::make_storefront_router(f.env);
  const auto admin = net::make_admin_router(f.env);
  for (const auto* rt : {&store, &admin}) {
    expect(ask(*rt, get("/healthz")), 200, R"({"status":"ok"})");
    expect(ask(*rt, get("/readyz")), 200, R"({"status":"ready"})");
  }
  f.env->cluster.serving = [] { return false; };
  auto r = ask(store, get("/readyz"));
  expect(r, 503, error_body("unavailable", "this node is not serving"));
  CHECK(header(r, "Retry-After") == "1");
}

TEST_CASE("bridge: products and product pages") {
  bridge_fixture f;
  f.env->pages = std::make_shared<net::page_cache>(std::chrono::seconds{60});
  const auto store = net::make_storefront_router(f.env);
  auto r = ask(store, get("/api/v1/products/A1"));
  expect(r, 200, product_body("A1", 7));
  CHECK(r.content_type == "application/json");
  expect(ask(store, get("/api/v1/products/SOLD")), 200, product_body("SOLD", 0));
  expect(ask(store, get("/api/v1/products/..")), 404, error_body("not_found", "no such product"));
  expect(ask(store, get("/api/v1/products/E1")), 404, error_body("not_found", "scripted"));
  expect(ask(store, get("/api/v1/products/E2")), 409, error_body("sold_out", "sold out"));
  expect(ask(store, get("/api/v1/products/E6")), 503,
         error_body("unavailable", "temporarily unavailable, retry shortly"));

  r = ask(store, get("/p/A1"));
  expect(r, 200, page_html("A1", "7 available"));
  CHECK(r.content_type == "text/html; charset=utf-8");
  const auto etag = header(r, "ETag");
  CHECK(etag == "\"03452242b9dc143f\"");
  CHECK(header(r, "Cache-Control") == "public, max-age=5, stale-while-revalidate=30");
  r = ask(store, get("/p/A1", "If-None-Match: W/\"x\", " + etag + "\r\n"));
  expect(r, 304, "");
  CHECK(header(r, "ETag") == etag);
  expect(ask(store, get("/p/SOLD")), 200, page_html("SOLD", "Sold out"));
  expect(ask(store, get("/p/E1")), 404, error_body("not_found", "scripted"));
}

TEST_CASE("bridge: product listings") {
  bridge_fixture f;
  f.env->listings = std::make_shared<net::page_cache>(std::chrono::seconds{60}, 16);
  const auto store = net::make_storefront_router(f.env);
  expect(ask(store, get("/api/v1/products")), 200, listing_body({}, "null"));
  f.products();
  // Cached (60 s): the listing above is still the answer, until this node changes a product.
  expect(ask(store, get("/api/v1/products")), 200, listing_body({}, "null"));
  expect(ask(store, get("/api/v1/products?limit=2")), 200, listing_body({"A1", "A2"}, R"("A2")"));
  expect(ask(store, get("/api/v1/products?limit=2&cursor=A2")), 200,
         listing_body({R"(B\"3)"}, "null"));
  expect(ask(store, get("/api/v1/products?in_stock=1&category=kitchen&min_price=0&max_price=9999"
                        "&q=name")),
         200, listing_body({"A1", "A2", R"(B\"3)"}, "null"));
  expect(ask(store, get("/api/v1/products?limit=0")), 400,
         error_body("bad_request", "'limit' must be an integer between 1 and 100"));
  expect(ask(store, get("/api/v1/products?limit=x")), 400,
         error_body("bad_request", "'limit' must be an integer between 1 and 100"));
  expect(ask(store, get("/api/v1/products?in_stock=maybe")), 400,
         error_body("bad_request", "'in_stock' must be true or false"));
  expect(ask(store, get("/api/v1/products?cursor=..")), 400,
         error_body("bad_request", "'cursor' is not a cursor this API returned"));
  expect(ask(store, get("/api/v1/products?q=" + std::string(201, 'a'))), 400,
         error_body("bad_request", "'q' is longer than 200"));
  // A catalog connection that breaks, then one that cannot be made.
  f.db->set_down(true);
  *f.catalog_down = true;
  expect(ask(store, get("/api/v1/products?limit=3")), 503,
         error_body("unavailable", "temporarily unavailable, retry shortly"));
  expect(ask(store, get("/api/v1/products?limit=3")), 503,
         error_body("unavailable", "catalog unavailable"));
}

TEST_CASE("bridge: carts") {
  bridge_fixture f;
  const auto store = net::make_storefront_router(f.env);
  auto r = ask(store, with_body("POST", "/api/v1/carts", ""));
  expect(r, 201, empty_cart_body("c_new", ""));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"customer_id":"c.1@x+y"})")), 201,
         empty_cart_body("c_new", "c.1@x+y"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"customer_id":"c 1"})")), 400,
         error_body("bad_request", "'customer_id' may hold only letters, digits and ._@+-"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"customer_id":1})")), 400,
         error_body("bad_request", "'customer_id' must be a string, not integer"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"([1])")), 400,
         error_body("bad_request", "the body must be a JSON object, not array"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"a":1,})")), 400,
         error_body("bad_request", "malformed JSON: expected a string key at byte 7"));
  expect(ask(store, get("/api/v1/carts/c_1")), 200, cart_body("c_1", ""));
  expect(ask(store, get("/api/v1/carts/c.1")), 404, error_body("not_found", "no such cart"));
  expect(ask(store, get("/api/v1/carts/E1")), 404, error_body("not_found", "scripted"));
  const auto before = actors::deadline_after(f.env->call_timeout);
  expect(ask(store, with_body("PUT", "/api/v1/carts/c_1/items/Z9", R"({"qty":3})")), 200,
         cart_body("c_1", "", "Z9", 3));
  // The cart got the request's deadline: the bridge's wait from when it called, not a fixed one.
  CHECK(last_item_deadline.load() >= before);
  CHECK(last_item_deadline.load() <= actors::deadline_after(f.env->call_timeout));
  expect_refused(store, "PUT", "/api/v1/carts/c_1/items/Z9",
                 {
                     {R"({"qty":10001})", "'qty' must be between 0 and 10000, got 10001"},
                     {R"({"qty":1.5})", "'qty' must be an integer between 0 and 10000"},
                     {R"({"qty":1e300})", "'qty' must be an integer between 0 and 10000"},
                     {R"({"qty":"1"})", "'qty' must be an integer, not string"},
                     {R"({})", "'qty' is required"},
                     {"", "a JSON object body is required"},
                 });
  expect(ask(store, with_body("PUT", "/api/v1/carts/E11/items/Z9", R"({"qty":1})")), 409,
         error_body("checkout_in_progress", "scripted"));
  expect(ask(store, with_body("PUT", "/api/v1/carts/E13/items/Z9", R"({"qty":1})")), 401,
         error_body("login_required", "scripted"));
  expect(ask(store, with_body("PUT", "/api/v1/carts/c_1/items/..", R"({"qty":1})")), 404,
         error_body("not_found", "no such product"));
  expect(ask(store, with_body("DELETE", "/api/v1/carts/c_1/items/Z9", "")), 200,
         empty_cart_body("c_1", ""));
  expect(ask(store, with_body("DELETE", "/api/v1/carts/E12/items/Z9", "")), 409,
         error_body("currency_mismatch", "scripted"));
}

TEST_CASE("bridge: checkout and orders") {
  bridge_fixture f;
  const auto store = net::make_storefront_router(f.env);
  const std::string pay = R"({"payment":{"method":"card","token":"tok_ok"}})";
  const std::string key = "Idempotency-Key: k-1\r\nContent-Type: application/json\r\n";
  auto r = ask(store, with_body("POST", "/api/v1/carts/c_1/checkout", pay, key));
  expect(r, 201, order_body("o_e24f15332fabc5db6cc36993d057d0d3", "c_1|"));
  expect(ask(store, with_body("POST", "/api/v1/carts/c_1/checkout",
                              R"({"payment":{"method":"card","token":"tok_decline"}})", key)),
         402, error_body("payment_declined", "payment declined"));
  expect(ask(store, with_body("POST", "/api/v1/carts/c_1/checkout", pay)), 400,
         error_body("bad_request", "the Idempotency-Key header is required"));
  expect(ask(store, with_body("POST", "/api/v1/carts/c_1/checkout", pay,
                              "Idempotency-Key: " + std::string(201, 'k') + "\r\n")),
         400,
         error_body("bad_request", "Idempotency-Key must be 1 to 200 printable ASCII characters"));
  expect_refused(
      store, "POST", "/api/v1/carts/c_1/checkout",
      {
          {R"({"payment":1})", "'payment' must be an object with 'method' and 'token'"},
          {R"({"payment":{}})", "payment.'method' is required"},
          {R"({"payment":{"method":"card","token":7}})",
           "payment.'token' must be a string, not integer"},
          {R"({"payment":{"method":"cash","token":"t"}})", R"(payment.method must be \"card\")"},
          {R"({"payment":{"method":"card","token":""}})", "payment.token must not be empty"},
      },
      key);
  expect(ask(store, get("/api/v1/orders/o_1")), 200, order_body("o_1", "c_1|"));
  expect(ask(store, get("/api/v1/orders/o_refund")), 200, order_body("o_refund", "c_1|", true));
  expect(ask(store, get("/api/v1/orders/o_missing")), 404,
         error_body("not_found", "no such order"));
  expect(ask(store, get("/api/v1/orders/o.1")), 404, error_body("not_found", "no such order"));
}

TEST_CASE("bridge: customers") {
  bridge_fixture f;
  const std::string secret(32, 's');
  auto v = net::customer_verifier::make({secret, "", "", ""});
  REQUIRE(std::holds_alternative<net::customer_verifier>(v));
  f.env->customers =
      std::make_shared<const net::customer_verifier>(std::get<net::customer_verifier>(v));
  net::token_claims claims;
  claims.subject = "cust-7";
  auto minted = net::mint_hs256_token(secret, claims, std::chrono::system_clock::now());
  REQUIRE(std::holds_alternative<std::string>(minted));
  const auto bearer = "Authorization: Bearer " + std::get<std::string>(minted) + "\r\n";
  const auto store = net::make_storefront_router(f.env);
  expect(ask(store, with_body("POST", "/api/v1/carts", "", bearer)), 201,
         empty_cart_body("c_new", "cust-7"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"customer_id":"cust-7"})", bearer)), 201,
         empty_cart_body("c_new", "cust-7"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"customer_id":"other"})", bearer)), 403,
         error_body("forbidden", "'customer_id' is not the token's customer"));
  expect(ask(store, with_body("POST", "/api/v1/carts", R"({"customer_id":"other"})")), 401,
         error_body("login_required",
                    "a cart for a customer needs that customer's token (Authorization: Bearer)"));
  expect(ask(store, get("/api/v1/carts/c_1", bearer)), 200, cart_body("c_1", "cust-7"));
  auto r = ask(store, get("/api/v1/carts/c_1", "Authorization: Bearer x.y.z\r\n"));
  expect(r, 401, error_body("unauthorized", "the customer token is not valid (malformed)"));
  CHECK(header(r, "WWW-Authenticate") == "Bearer error=\"invalid_token\"");
  expect(ask(store, get("/api/v1/carts/c_1", "Authorization: Basic abc\r\n")), 401,
         error_body("unauthorized", "Authorization must be 'Bearer <customer token>'"));
  expect(ask(store, get("/api/v1/orders/o_1", bearer)), 200, order_body("o_1", "c_1|cust-7"));
  expect(ask(store, with_body("POST", "/api/v1/carts/c_1/checkout",
                              R"({"payment":{"method":"card","token":"tok_ok"}})",
                              "Idempotency-Key: k\r\n" + bearer)),
         201, order_body("o_5be95fe2b60915f80731116966df667d", "c_1|cust-7"));
}

TEST_CASE("bridge: storefront writes are rate limited") {
  bridge_fixture f;
  f.env->limiter = std::make_shared<net::rate_limiter>(net::rate_limiter::options{1, 1, 64},
                                                       [] { return std::chrono::nanoseconds{0}; });
  const auto store = net::make_storefront_router(f.env);
  expect(ask(store, with_body("POST", "/api/v1/carts", "")), 201, empty_cart_body("c_new", ""));
  auto r = ask(store, with_body("POST", "/api/v1/carts", ""));
  expect(r, 429, error_body("rate_limited", "too many writes from ::; retry in 1 s"));
  CHECK(header(r, "Retry-After") == "1");
  expect(ask(store, get("/api/v1/carts/c_1")), 200, cart_body("c_1", "")); // reads are not limited
  CHECK(f.env->metrics.rate_limited.load() == 1);
}

TEST_CASE("bridge: admin products and stock") {
  bridge_fixture f;
  f.env->pages = std::make_shared<net::page_cache>(std::chrono::seconds{60});
  const auto admin = net::make_admin_router(f.env);
  const auto store = net::make_storefront_router(f.env);
  const auto page = ask(store, get("/p/N1")).body;
  auto r = ask(admin, with_body("PUT", "/admin/v1/products/N1",
                                R"({"name":"N \"1\"","description":"d\u0000","category":"c",)"
                                R"("price_cents":5,"per_customer_limit":3})"));
  expect(r, 200,
         R"({"sku":"N1","name":"N \"1\"","description":"d\u0000","category":"c",)"
         R"("price_cents":5,"currency":"USD","available":0,"per_customer_limit":3})");
  CHECK(ask(store, get("/p/N1")).body == page); // the fake's page is the same after the drop
  expect(ask(admin, with_body("PUT", "/admin/v1/products/N1", R"({"name":"","price_cents":5})")),
         400, error_body("bad_request", "'name' must not be empty"));
  expect(ask(admin, with_body("PUT", "/admin/v1/products/N1",
                              R"({"name":"n","price_cents":5,"currency":"eur"})")),
         400, error_body("bad_request", R"('currency' must be an ISO 4217 code such as \"USD\")"));
  expect(ask(admin, with_body("PUT", "/admin/v1/products/N1", R"({"name":"n"})")), 400,
         error_body("bad_request", "'price_cents' is required"));
  expect(ask(admin, with_body("PUT", "/admin/v1/products/..", R"({"name":"n"})")), 400,
         error_body("bad_request",
                    "a SKU is 1 to 64 letters, digits, '.', '_' or '-', not dots alone"));
  expect(ask(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"set":40})")), 200,
         stock_body(40));
  expect(ask(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"add":-4})")), 200,
         stock_body(6));
  expect(ask(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"add":1,"set":1})")), 400,
         error_body("bad_request", "give exactly one of 'set' and 'add'"));
  expect(ask(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"set":-1})")), 400,
         error_body("bad_request", "'set' must be between 0 and 1000000000000, got -1"));
  expect(ask(admin, with_body("POST", "/admin/v1/products/E4/stock", R"({"set":1})")), 409,
         error_body("conflict", "scripted"));
  expect(ask(admin, get("/admin/v1/products/N1/stock")), 200, stock_body(10));
  expect(ask(admin, get("/admin/v1/products/../stock")), 404,
         error_body("not_found", "no such product"));
}

TEST_CASE("bridge: admin hygiene") {
  bridge_fixture f;
  f.env->admin_token = "t0ken";
  f.env->admin_allowed_origins = "https://Console.Example, http://other";
  const auto admin = net::make_admin_router(f.env);
  const std::string ok = "Authorization: Bearer t0ken\r\n";
  auto r = ask(admin, get("/admin/v1/products/N1/stock"));
  expect(r, 401, error_body("unauthorized", "a valid bearer token is required"));
  CHECK(header(r, "WWW-Authenticate") == "Bearer");
  expect(ask(admin, get("/admin/v1/products/N1/stock", "Authorization: Bearer t0kem\r\n")), 401,
         error_body("unauthorized", "a valid bearer token is required"));
  expect(ask(admin, get("/admin/v1/products/N1/stock", ok)), 200, stock_body(10));
  expect(ask(admin, get("/admin/v1/products/N1/stock", ok + "Origin: https://evil\r\n")), 403,
         error_body("forbidden",
                    "the Origin is neither the console's own nor in admin.allowed_origins"));
  expect(ask(admin, get("/admin/v1/products/N1/stock", ok + "Origin: null\r\n")), 403,
         error_body("forbidden",
                    "the Origin is neither the console's own nor in admin.allowed_origins"));
  expect(ask(admin, get("/admin/v1/products/N1/stock", ok + "Origin: HTTP://SHOP\r\n")), 200,
         stock_body(10));
  expect(ask(admin, get("/admin/v1/products/N1/stock", ok + "Origin: https://console.example\r\n")),
         200, stock_body(10));
  expect(ask(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"set":1})", ok)), 415,
         error_body("unsupported_media_type",
                    "admin requests with a body need Content-Type: application/json"));
  expect(ask(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"set":1})",
                              ok + "Content-Type: Application/JSON; charset=utf-8\r\n")),
         200,
         "{\"sku\":\"N1\",\"on_hand\":1,\"held\":2,\"sold\":1,\"available\":-2,\"owner_node\":"
         "\"node-\\\"1\\\"\",\"epoch\":18446744073709}");
  expect(ask(admin, get("/healthz")), 200, R"({"status":"ok"})"); // not behind the token
}

TEST_CASE("bridge: cluster, shards, drain and metrics") {
  bridge_fixture f;
  auto admin = std::make_shared<const net::router>(net::make_admin_router(f.env));
  expect(ask(*admin, get("/admin/v1/cluster")), 200,
         R"({"nodes":[],"shards":8,"this_node":"node-1"})");
  expect(ask(*admin, get("/admin/v1/shards")), 200, R"({"shards":[]})");
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/n1/drain", "")), 503,
         error_body("unavailable", "this node is not a cluster member"));
  f.env->cluster.nodes = [] {
    return std::vector<net::cluster_admin::node_row>{
        {"n1", "127.0.0.1:4242", "127.0.0.1:8080", "127.0.0.1:9090", "up", 5, 12, 40},
        {"n\"2", "h:1", "h:2", "h:3", "draining", 0, 0, -1}};
  };
  f.env->cluster.shards = [] {
    return std::vector<net::cluster_admin::shard_row>{{0, "n1", 3, ""}, {1, "n\"2", 4, "n1"}};
  };
  f.env->cluster.drain = [](const std::string& node, std::function<void(bool)> done) {
    done(node == "n1");
  };
  expect(ask(*admin, get("/admin/v1/cluster")), 200,
         R"({"nodes":[{"node_id":"n1","address":"127.0.0.1:4242",)"
         R"("http_address":"127.0.0.1:8080","admin_address":"127.0.0.1:9090",)"
         R"("status":"up","shards":5,"actors":12,"heartbeat_age_ms":40},)"
         R"({"node_id":"n\"2","address":"h:1","http_address":"h:2",)"
         R"("admin_address":"h:3","status":"draining","shards":0,"actors":0,)"
         R"("heartbeat_age_ms":-1}],"shards":8,"this_node":"node-1"})");
  expect(ask(*admin, get("/admin/v1/shards")), 200,
         R"({"shards":[{"shard":0,"owner":"n1","epoch":3,"target":""},{"shard":1,)"
         R"("owner":"n\"2","epoch":4,"target":"n1"}]})");
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/n1/drain", "")), 202,
         R"({"node_id":"n1","status":"draining"})");
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/n9/drain", "")), 404,
         error_body("not_found", "no such node: n9"));

  // /metrics through make_handler, which counts every status it answers.
  bridge_fixture g;
  g.env->extra_metrics = [] { return std::string{"surge_extra 1\n"}; };
  g.env->metrics.rate_limited = 3;
  auto h =
      net::make_handler(g.env, std::make_shared<const net::router>(net::make_admin_router(g.env)));
  auto call = [&](std::string raw) { return answer_to(h, std::move(raw)); };
  call(get("/healthz"));
  call(get("/nowhere"));
  auto m = call(get("/metrics"));
  expect(m, 200, R"(# HELP surge_up 1 while the node serves.
# TYPE surge_up gauge
surge_up 1
# HELP surge_http_responses_total HTTP responses by status.
# TYPE surge_http_responses_total counter
surge_http_responses_total{code="200"} 1
surge_http_responses_total{code="404"} 1
# HELP surge_http_rate_limited_total Storefront writes refused 429 rate_limited.
# TYPE surge_http_rate_limited_total counter
surge_http_rate_limited_total 3
# HELP surge_entities_active Live entity actors on this node.
# TYPE surge_entities_active gauge
surge_entities_active{kind="sku"} 0
surge_entities_active{kind="cart"} 0
surge_extra 1
)");
  CHECK(m.content_type == "text/plain; version=0.0.4");
}

TEST_CASE("bridge: make_handler records durations by kind, route template, method and code") {
  bridge_fixture f;
  f.env->registry = std::make_shared<net::node_metrics>("node-1", "0.1.0");
  auto handler_of = [&](net::router rt, net::http_kind kind) {
    return net::make_handler(f.env, std::make_shared<const net::router>(std::move(rt)), kind);
  };
  auto store = handler_of(net::make_storefront_router(f.env), net::http_kind::shopper);
  auto admin = handler_of(net::make_admin_router(f.env), net::http_kind::admin);
  auto call = [](const net::handler& h, std::string raw) { return answer_to(h, std::move(raw)); };
  constexpr int n = 4;
  for (int i = 0; i < n; ++i) {
    CHECK(call(store, get("/api/v1/products/A1")).status == 200);
    CHECK(call(store, get("/healthz")).status == 200);
    CHECK(call(admin, get("/readyz")).status == 200);
  }
  CHECK(call(store, get("/nowhere")).status == 404);
  CHECK(call(store, with_body("BREW", "/api/v1/products/A1", "")).status == 405);
  auto m = call(admin, get("/metrics"));
  REQUIRE(m.status == 200);
  for (
      const auto* line : {
          R"(surge_http_request_duration_seconds_count{code="200",kind="shopper",method="GET",route="/api/v1/products/{sku}"} 4)",
          R"(surge_http_request_duration_seconds_count{code="200",kind="probe",method="GET",route="/healthz"} 4)",
          R"(surge_http_request_duration_seconds_count{code="200",kind="probe",method="GET",route="/readyz"} 4)",
          R"(surge_http_request_duration_seconds_count{code="404",kind="shopper",method="GET",route="unmatched"} 1)",
          R"(surge_http_request_duration_seconds_count{code="405",kind="shopper",method="other",route="unmatched"} 1)",
          R"(surge_http_responses_total{code="200"} 12)",
          R"(surge_build_info{node="node-1",version="0.1.0"} 1)",
      }) {
    CHECK_MESSAGE(m.body.find(std::string{line} + "\n") != std::string::npos, line);
  }
  // The history: 503 until the node keeps one, then its body.
  expect(call(admin, get("/admin/v1/metrics/history")), 503,
         error_body("unavailable", "this node keeps no metrics history"));
  auto history = std::make_shared<net::metrics_history>(180, 5);
  history->add(f.env->registry->sample(1000));
  f.env->history = history;
  auto h = call(admin, get("/admin/v1/metrics/history"));
  CHECK(h.status == 200);
  CHECK(h.body.rfind(R"({"node_id":"node-1","step_s":5,"t":[],)", 0) == 0);
}

TEST_CASE("bridge: to_http_error maps every entity error to API.md's status and code") {
  using actors::errc;
  const struct {
    errc code;
    int status;
    const char* name;
    const char* fallback;
  } rows[] = {
      {errc::not_found, 404, "not_found", "not found"},
      {errc::sold_out, 409, "sold_out", "sold out"},
      {errc::limit_exceeded, 409, "limit_exceeded", "limit exceeded"},
      {errc::conflict, 409, "conflict", "conflict"},
      {errc::invalid, 400, "bad_request", "invalid request"},
      {errc::payment_declined, 402, "payment_declined", "payment declined"},
      {errc::hold_expired, 409, "hold_expired", "a hold expired"},
      {errc::empty_cart, 409, "empty_cart", "the cart is empty"},
      {errc::idempotency_conflict, 422, "idempotency_conflict",
       "the key was used for another request"},
      {errc::checkout_in_progress, 409, "checkout_in_progress",
       "a checkout of this cart is under way"},
      {errc::currency_mismatch, 409, "currency_mismatch", "the cart is in another currency"},
      {errc::login_required, 401, "login_required", "sign in first"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    auto r = net::to_http_error(actors::make_error(row.code, "why \"exactly\""));
    expect(r, row.status, error_body(row.name, R"(why \"exactly\")"));
    CHECK(r.headers.empty());
    expect(net::to_http_error(actors::make_error(row.code)), row.status,
           error_body(row.name, row.fallback));
  }
  // Unavailable, any other category (storage, CAF timeouts) and unknown codes: 503, retry.
  for (const auto& err : {actors::make_error(errc::unavailable, "db down"),
                          caf::make_error(caf::sec::request_timeout),
                          caf::error{static_cast<uint8_t>(200), actors::error_category}}) {
    auto r = net::to_http_error(err);
    expect(r, 503, error_body("unavailable", "temporarily unavailable, retry shortly"));
    CHECK(header(r, "Retry-After") == "1");
  }
}
