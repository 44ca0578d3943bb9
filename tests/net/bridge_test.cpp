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
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <doctest/doctest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include "listener_options.hpp"
#include "memory_catalog.hpp"
#include "memory_journal.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/net/bridge.hpp"
#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/server.hpp"

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

/// The request ids the scripted entities were given (item changes, stock changes, checkouts), in
/// the order they came.
struct seen_request_ids {
  std::mutex mu;
  std::vector<std::string> ids;
  void add(const std::string& id) {
    std::lock_guard lk(mu);
    ids.push_back(id);
  }
  std::vector<std::string> take() {
    std::lock_guard lk(mu);
    return std::exchange(ids, {});
  }
};
seen_request_ids entity_request_ids;

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
        entity_request_ids.add(c.request_id);
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
                 const std::string& principal, int64_t deadline_ms, const std::string& request_id,
                 const std::string& /*pass*/) -> caf::result<actors::cart_view> {
        last_item_deadline.store(deadline_ms);
        entity_request_ids.add(request_id);
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
        entity_request_ids.add(r.request_id);
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
      [id](actors::refund_atom,
           const actors::order_refund_request& r) -> caf::result<actors::refund_view> {
        if (r.idempotency_key == "k-none") {
          return actors::make_error(actors::errc::not_refundable, "nothing left");
        }
        actors::refund_view v{"rf_" + r.idempotency_key, id, 0, r.lines, "refunded", false};
        for (const auto& l : r.lines) {
          v.amount_cents += l.qty * 100;
        }
        v.status = r.idempotency_key == "k-pending" ? "pending" : "refunded";
        v.replay = r.idempotency_key == "k-replay";
        return v;
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
    env->system = &sys;
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
         [&answer](net::http_response resp) { answer.set_value(net::plain(std::move(resp))); });
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
  expect(ask(store, get("/api/v1/products?sort=price")), 400,
         error_body("bad_request", "unknown parameter 'sort'"));
  expect(ask(store, get("/api/v1/products?limit=1&limit=2")), 400,
         error_body("bad_request", "'limit' is given more than once"));
  // Listings are conditional, with the node's catalog Cache-Control.
  auto listed = ask(store, get("/api/v1/products?limit=2"));
  CHECK(header(listed, "Cache-Control") == "public, max-age=1");
  const auto listed_etag = header(listed, "ETag");
  CHECK(!listed_etag.empty());
  expect(ask(store, get("/api/v1/products?limit=2", "If-None-Match: " + listed_etag + "\r\n")), 304,
         "");
  // Search and categories: parameters are checked here; the in-memory catalog cannot search.
  expect(ask(store, get("/api/v1/search?sort=price")), 400,
         error_body("bad_request",
                    "'sort' must be one of relevance, name, price_asc, price_desc, newest"));
  expect(ask(store, get("/api/v1/search?facets=brand")), 400,
         error_body("bad_request", "'facets' must be a comma list of category, price"));
  expect(ask(store, get("/api/v1/search?min_price=9&max_price=1")), 400,
         error_body("bad_request", "'min_price' is more than 'max_price'"));
  expect(ask(store, get("/api/v1/search?a%20b=1")), 400,
         error_body("bad_request", "unknown parameter"));
  expect(ask(store, get("/api/v1/categories?all=1")), 400,
         error_body("bad_request", "unknown parameter 'all'"));
  expect(ask(store, get("/api/v1/search?q=x&facets=price,category")), 503,
         error_body("unavailable", "temporarily unavailable, retry shortly"));
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

TEST_CASE("bridge: admin refunds, order search parameters and the NDJSON import") {
  bridge_fixture f;
  const auto admin = net::make_admin_router(f.env);
  const std::string path = "/admin/v1/orders/o_1/refunds";
  const auto with_key = [](const std::string& key) {
    return "Content-Type: application/json\r\nIdempotency-Key: " + key + "\r\n";
  };
  expect(ask(admin, with_body("POST", path, "{}")), 400,
         error_body("bad_request", "the Idempotency-Key header is required"));
  expect(ask(admin, with_body("POST", path, R"({"lines":[{"sku":"A1","qty":2}]})", with_key("k1"))),
         201,
         R"({"refund_id":"rf_k1","order_id":"o_1","amount_cents":200,)"
         R"("lines":[{"sku":"A1","qty":2}],"status":"refunded"})");
  expect(ask(admin, with_body("POST", path, "", with_key("k-replay"))), 200,
         R"({"refund_id":"rf_k-replay","order_id":"o_1","amount_cents":0,"lines":[],)"
         R"("status":"refunded"})");
  CHECK(ask(admin, with_body("POST", path, "{}", with_key("k-pending"))).status == 202);
  expect(ask(admin, with_body("POST", path, "{}", with_key("k-none"))), 409,
         error_body("not_refundable", "nothing left"));
  expect(ask(admin, with_body("POST", path, R"({"lines":[]})", with_key("k2"))), 400,
         error_body("bad_request",
                    R"('lines' must be an array of 1 to 1000 {\"sku\",\"qty\"} objects)"));
  expect(ask(admin, with_body("POST", path, R"({"lines":[{"sku":"A1","qty":0}]})", with_key("k2"))),
         400, error_body("bad_request", "lines[0]: 'qty' must be between 1 and 10000, got 0"));
  expect(ask(admin, with_body("POST", "/admin/v1/orders/o!1/refunds", "{}", with_key("k2"))), 404,
         error_body("not_found", "no such order"));

  // Searches are validated before they reach the (here absent) order query pool.
  expect(ask(admin, get("/admin/v1/orders?colour=red")), 400,
         error_body("bad_request", "unknown parameter 'colour'"));
  expect(ask(admin, get("/admin/v1/orders?since=2026-02-30T00:00:00Z")), 400,
         error_body("bad_request", "'since' must be an RFC 3339 time"));
  expect(ask(admin, get("/admin/v1/orders?status=confirmed&until=2026-11-28T08:30:00.5%2B01:00")),
         503, error_body("unavailable", "order queries are not available on this node"));

  // The import: a good line, a blank one, a bad one, a line whose stock the SKU refuses.
  const std::string ndjson = "Content-Type: application/x-ndjson\r\n";
  const std::string lines = R"({"sku":"N1","name":"n","price_cents":5,"stock":3})"
                            "\n\n"
                            R"({"sku":"N2","price_cents":5})"
                            "\n"
                            R"({"sku":"E4","name":"e","price_cents":5,"stock":1})"
                            "\n"
                            R"({"sku":"N1","name":"n2","price_cents":6})";
  expect(ask(admin, with_body("POST", "/admin/v1/products:import", lines, ndjson)), 200,
         R"({"imported":2,"failed":2,"errors":[{"line":3,"code":"bad_request",)"
         R"("message":"'name' is required"},{"line":4,"code":"conflict","message":"scripted"}]})");
  expect(ask(admin,
             with_body("PUT", "/admin/v1/products/N1", R"({"name":"n","price_cents":5})", ndjson)),
         415,
         error_body("unsupported_media_type",
                    "admin requests with a body need Content-Type: application/json"));
}

TEST_CASE("bridge: cluster, shards, drain and metrics") {
  bridge_fixture f;
  auto admin = std::make_shared<const net::router>(net::make_admin_router(f.env));
  expect(ask(*admin, get("/admin/v1/cluster")), 200,
         R"({"nodes":[],"shards":8,"this_node":"node-1","min_protocol":2,)"
         R"("features":["versioned_hello"]})");
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
  f.env->cluster.drain = [](const std::string& node, net::cluster_admin::change_done done) {
    done(node == "n1" ? net::cluster_admin::change::done : net::cluster_admin::change::not_found);
  };
  expect(ask(*admin, get("/admin/v1/cluster")), 200,
         R"({"nodes":[{"node_id":"n1","address":"127.0.0.1:4242",)"
         R"("http_address":"127.0.0.1:8080","admin_address":"127.0.0.1:9090",)"
         R"("status":"up","shards":5,"actors":12,"heartbeat_age_ms":40,"protocol":1},)"
         R"({"node_id":"n\"2","address":"h:1","http_address":"h:2",)"
         R"("admin_address":"h:3","status":"draining","shards":0,"actors":0,)"
         R"("heartbeat_age_ms":-1,"protocol":1}],"shards":8,"this_node":"node-1",)"
         R"("min_protocol":1,"features":[]})");
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
  expect(call(admin, get("/admin/v1/metrics/history?scope=local")), 503,
         error_body("unavailable", "this node keeps no metrics history"));
  auto history = std::make_shared<net::metrics_history>(180, 5);
  history->add(f.env->registry->sample(1000));
  f.env->history = history;
  auto h = call(admin, get("/admin/v1/metrics/history?scope=local"));
  CHECK(h.status == 200);
  CHECK(h.body.rfind(R"({"node_id":"node-1","step_s":5,"t":[],)", 0) == 0);
  // Cluster-wide (the fan-out; this fixture's cluster view lists no other member).
  h = call(admin, get("/admin/v1/metrics/history"));
  CHECK(h.status == 200);
  CHECK(h.body.rfind(R"({"nodes":[{"node_id":"node-1","step_s":5,"t":[],)", 0) == 0);
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
      {errc::not_refundable, 409, "not_refundable", "nothing of this order can be refunded"},
      {errc::sale_not_started, 409, "sale_not_started", "the sale has not started yet"},
      {errc::sale_ended, 409, "sale_ended", "the sale has ended"},
      {errc::queue_required, 403, "queue_required",
       "this sale admits shoppers through its queue: join it and send the pass (Surge-Pass)"},
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

namespace {

/// The access log a test reads: a logger named "access" writing each message as it is.
struct access_capture {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;

  access_capture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_pattern("%v");
    logger = std::make_shared<spdlog::logger>("access", std::move(sink));
  }

  std::vector<std::string> lines() const {
    std::vector<std::string> all;
    std::istringstream in{out.str()};
    for (std::string line; std::getline(in, line);) {
      all.push_back(line);
    }
    return all;
  }
};

/// Parses `raw` as the server would (from peer 127.0.0.1) and hands it to `h` (make_handler);
/// waits for the answer.
net::http_response serve(const net::handler& h, std::string raw) {
  auto parsed = net::parse_request(raw, surge::test::listener());
  REQUIRE_MESSAGE(std::holds_alternative<net::http_request>(parsed), raw);
  auto& req = std::get<net::http_request>(parsed);
  req.peer = *net::parse_ip("127.0.0.1");
  std::promise<net::http_response> answer;
  auto done = answer.get_future();
  h(std::move(req),
    [&answer](net::http_response resp) { answer.set_value(net::plain(std::move(resp))); });
  REQUIRE(done.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  return done.get();
}

net::handler storefront_handler(bridge_fixture& f) {
  return net::make_handler(f.env,
                           std::make_shared<const net::router>(net::make_storefront_router(f.env)));
}

std::string string_member(const net::json::value& v, std::string_view key) {
  const auto* m = v.find(key);
  REQUIRE_MESSAGE(m != nullptr, key);
  REQUIRE(m->is_string());
  return std::get<std::string>(m->get());
}

} // namespace

TEST_CASE("bridge: access log lines") {
  bridge_fixture f;
  access_capture cap;
  f.env->access_log = cap.logger;
  f.env->access_sample = 1;
  f.env->node_id = "n-\"1\"";
  f.env->trusted_proxies = std::get<net::cidr_set>(net::cidr_set::parse("127.0.0.1/32"));
  const auto h = storefront_handler(f);

  auto r = serve(
      h, get("/api/v1/products/A1", "X-Request-Id: rid-1\r\nX-Forwarded-For: 203.0.113.9\r\n"));
  CHECK(r.status == 200);
  auto lines = cap.lines();
  REQUIRE(lines.size() == 1);
  auto parsed = net::json::parse(lines[0]);
  REQUIRE(std::holds_alternative<net::json::value>(parsed));
  const auto& v = std::get<net::json::value>(parsed);
  const auto time = string_member(v, "time");
  CHECK(time.size() == 24);
  CHECK(time.back() == 'Z');
  const auto* took = v.find("duration_ms");
  REQUIRE(took != nullptr);
  REQUIRE(took->is_number());
  std::string duration = lines[0].substr(lines[0].find("\"duration_ms\":") + 14);
  duration = duration.substr(0, duration.find(','));
  // The whole line, byte for byte, but for the time and the duration.
  CHECK(lines[0] == R"({"time":")" + time +
                        R"(","request_id":"rid-1","method":"GET","route":"/api/v1/products/{sku}",)"
                        R"("path":"/api/v1/products/A1","status":200,"duration_ms":)" +
                        duration + R"(,"client":"203.0.113.9","node":"n-\"1\"","bytes":)" +
                        std::to_string(r.body.size()) + "}");

  // No id sent (and no server to make one): the bridge makes one. No route: "unmatched".
  r = serve(h, get("/nowhere%20here"));
  CHECK(r.status == 404);
  lines = cap.lines();
  REQUIRE(lines.size() == 2);
  parsed = net::json::parse(lines[1]);
  REQUIRE(std::holds_alternative<net::json::value>(parsed));
  const auto& w = std::get<net::json::value>(parsed);
  CHECK(string_member(w, "request_id").size() == 32);
  CHECK(string_member(w, "route") == "unmatched");
  CHECK(string_member(w, "path") == "/nowhere here");
  CHECK(string_member(w, "client") == "127.0.0.1");
}

TEST_CASE("bridge: access log sampling") {
  bridge_fixture f;
  access_capture cap;
  f.env->access_log = cap.logger;
  const auto h = storefront_handler(f);
  auto not_ready = [&] { f.env->cluster.serving = [] { return false; }; };

  SUBCASE("0: none, not even a 5xx") {
    f.env->access_sample = 0;
    not_ready();
    CHECK(serve(h, get("/healthz")).status == 200);
    CHECK(serve(h, get("/readyz")).status == 503);
    CHECK(cap.lines().empty());
  }
  SUBCASE("1: every request") {
    f.env->access_sample = 1;
    for (int i = 0; i < 20; ++i) {
      serve(h, get("/healthz"));
    }
    CHECK(cap.lines().size() == 20);
  }
  SUBCASE("a share, and every 5xx") {
    f.env->access_sample = 0.5;
    for (int i = 0; i < 400; ++i) {
      serve(h, get("/healthz"));
    }
    const auto sampled = cap.lines().size();
    CHECK(sampled > 100); // 200 expected; 10 standard deviations either way
    CHECK(sampled < 300);
    f.env->access_sample = 0.001;
    not_ready();
    for (int i = 0; i < 30; ++i) {
      CHECK(serve(h, get("/readyz")).status == 503);
    }
    CHECK(cap.lines().size() == sampled + 30);
  }
}

TEST_CASE("bridge: the request id goes with item changes, stock changes and checkouts") {
  bridge_fixture f;
  entity_request_ids.take();
  const auto store = storefront_handler(f);
  const auto admin =
      net::make_handler(f.env, std::make_shared<const net::router>(net::make_admin_router(f.env)));
  const std::string json = "Content-Type: application/json\r\n";
  CHECK(serve(store, with_body("PUT", "/api/v1/carts/c_1/items/Z9", R"({"qty":3})",
                               json + "X-Request-Id: put-1\r\n"))
            .status == 200);
  CHECK(
      serve(store, with_body("DELETE", "/api/v1/carts/c_1/items/Z9", "", "X-Request-Id: del-1\r\n"))
          .status == 200);
  CHECK(serve(admin, with_body("POST", "/admin/v1/products/N1/stock", R"({"set":4})",
                               json + "X-Request-Id: stock-1\r\n"))
            .status == 200);
  CHECK(serve(store, with_body("POST", "/api/v1/carts/c_1/checkout",
                               R"({"payment":{"method":"card","token":"tok_ok"}})",
                               json + "Idempotency-Key: k-1\r\nX-Request-Id: co-1\r\n"))
            .status == 201);
  CHECK(entity_request_ids.take() == std::vector<std::string>{"put-1", "del-1", "stock-1", "co-1"});
}

TEST_CASE("bridge: undrain, and drain refused when no other member would serve") {
  bridge_fixture f;
  auto admin = std::make_shared<const net::router>(net::make_admin_router(f.env));
  using change = net::cluster_admin::change;
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/n1/undrain", "")), 503,
         error_body("unavailable", "this node is not a cluster member"));
  auto answer = [](const std::string& node, net::cluster_admin::change_done done) {
    done(node == "n1"       ? change::done
         : node == "last"   ? change::refused
         : node == "broken" ? change::unavailable
                            : change::not_found);
  };
  f.env->cluster.drain = answer;
  f.env->cluster.undrain = answer;
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/n1/undrain", "")), 202,
         R"({"node_id":"n1","status":"up"})");
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/n9/undrain", "")), 404,
         error_body("not_found", "no such node: n9"));
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/last/drain", "")), 409,
         error_body("conflict", "no other member would still serve: every other member is "
                                "down, left or draining"));
  expect(ask(*admin, with_body("POST", "/admin/v1/nodes/broken/drain", "")), 503,
         error_body("unavailable", "the membership store is out of reach; retry shortly"));
  // The version shows when a member recorded one.
  // The version shows when a member recorded one; the protocol always (0: legacy, 1). The
  // minimum protocol counts live members only: a protocol-1 member that is down holds nothing
  // back, one that is up does.
  f.env->cluster.nodes = [] {
    net::cluster_admin::node_row n{"n1", "a:1", "a:2", "a:3", "up", 1, 2, 3};
    n.version = "0.1.0";
    n.protocol = 2;
    net::cluster_admin::node_row old{"n2", "b:1", "b:2", "b:3", "down", 0, 0, 9000};
    return std::vector<net::cluster_admin::node_row>{n, old};
  };
  expect(ask(*admin, get("/admin/v1/cluster")), 200,
         R"({"nodes":[{"node_id":"n1","address":"a:1","http_address":"a:2","admin_address":)"
         R"("a:3","status":"up","shards":1,"actors":2,"heartbeat_age_ms":3,"version":"0.1.0",)"
         R"("protocol":2},{"node_id":"n2","address":"b:1","http_address":"b:2",)"
         R"("admin_address":"b:3","status":"down","shards":0,"actors":0,)"
         R"("heartbeat_age_ms":9000,"protocol":1}],"shards":8,"this_node":"node-1",)"
         R"("min_protocol":2,"features":["versioned_hello"]})");
}

namespace {

/// A second member: its own bridge (node id "n2", admin token "tok") behind a real admin server.
struct peer_member {
  bridge_fixture f;
  std::unique_ptr<net::http_server> server;

  peer_member() {
    f.env->node_id = "n2";
    f.env->admin_token = "tok";
    auto r = std::make_shared<const net::router>(net::make_admin_router(f.env));
    server =
        std::make_unique<net::http_server>(surge::test::listener(), net::make_handler(f.env, r));
    REQUIRE(!server->start());
  }
  ~peer_member() {
    server->stop(std::chrono::milliseconds{0});
    net::stop_peers(*f.env);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
};

/// node-1 (this node), n2 (`peer`), n3 (draining, nothing listens at its address), n4 (down) and
/// n5 (left): only n2 and n3 are asked.
std::vector<net::cluster_admin::node_row> members_with(const peer_member& peer) {
  return {{"node-1", "x:1", "x:2", "x:3", "up", 1, 0, 0},
          {"n2", "x:1", "x:2", peer.address(), "up", 1, 0, 0},
          {"n3", "x:1", "x:2", "127.0.0.1:1", "draining", 1, 0, 0},
          {"n4", "x:1", "x:2", peer.address(), "down", 1, 0, 0},
          {"n5", "x:1", "x:2", peer.address(), "left", 1, 0, 0}};
}

/// The errors of a merged answer, as node id -> message.
std::map<std::string, std::string> errors_of(const net::http_response& r) {
  auto v = std::get<net::json::value>(net::json::parse(r.body));
  std::map<std::string, std::string> out;
  for (const auto& e : std::get<net::json::array>(v.find("errors")->get())) {
    out[std::get<std::string>(e.find("node_id")->get())] =
        std::get<std::string>(e.find("message")->get());
  }
  return out;
}

} // namespace

TEST_CASE("bridge: cluster-wide payments: local part, peers asked with the token, errors listed") {
  peer_member peer;
  bridge_fixture f;
  f.env->admin_token = "tok";
  net::payments::gateway_stats g;
  g.name = "alpha";
  g.breaker = "half_open";
  g.approved = 3;
  g.declined = 1;
  g.failed = 2;
  g.unknown = 0;
  g.refunds = 1;
  g.failovers = 2;
  g.p50_ms = 12.5;
  f.env->payment_stats = [g] { return std::vector<net::payments::gateway_stats>{g}; };
  f.env->cluster.nodes = [&peer] { return members_with(peer); };
  auto admin = std::make_shared<const net::router>(net::make_admin_router(f.env));
  const std::string auth = "Authorization: Bearer tok\r\n";
  const std::string mine = R"({"node_id":"node-1","gateways":[{"name":"alpha","breaker":)"
                           R"("half_open","calls":{"approved":3,"declined":1,"failed":2,)"
                           R"("unknown":0},"refunds":1,"failovers":2,"latency_ms":{"p50":12.5,)"
                           R"("p99":null}}]})";
  expect(ask(*admin, get("/admin/v1/payments?scope=local", auth)), 200, mine);
  expect(ask(*admin, get("/admin/v1/payments?scope=all", auth)), 400,
         error_body("bad_request",
                    R"('scope' must be \"local\" (this node only) or absent (the cluster))"));
  expect(ask(*admin, get("/admin/v1/payments?x=1", auth)), 400,
         error_body("bad_request", "unknown parameter 'x'"));

  auto all = ask(*admin, get("/admin/v1/payments", auth));
  CHECK(all.status == 200);
  CHECK(all.body.rfind(R"({"nodes":[)" + mine + R"(,{"node_id":"n2","gateways":[]}],"errors":[)",
                       0) == 0);
  auto errors = errors_of(all);
  REQUIRE(errors.size() == 1);
  CHECK(errors.count("n3") == 1); // nothing listens there

  // The request's own Authorization goes along: without it, n2 refuses its part.
  f.env->admin_token.clear();
  auto admin_open = std::make_shared<const net::router>(net::make_admin_router(f.env));
  auto refused = ask(*admin_open, get("/admin/v1/payments"));
  CHECK(refused.status == 200);
  errors = errors_of(refused);
  CHECK(errors["n2"] == "HTTP 401: a valid bearer token is required");
  CHECK(errors.count("n3") == 1);
  net::stop_peers(*f.env);
}

TEST_CASE("bridge: cluster-wide hot SKUs: counts summed per SKU, top by rate, stock filled in") {
  peer_member peer;
  actors::hot_sku_tracker there;
  peer.f.env->hot_skus = &there;
  bridge_fixture f;
  actors::hot_sku_tracker here;
  f.env->hot_skus = &here;
  f.env->cluster.nodes = [&peer] { return members_with(peer); };
  const auto now = actors::system_now_ms();
  for (int i = 0; i < 30; ++i) {
    here.record("A1", now);
  }
  for (int i = 0; i < 10; ++i) {
    here.record("A2", now);
  }
  for (int i = 0; i < 25; ++i) {
    there.record("A2", now); // moved between owners within the window: both counts add up
  }
  there.record("A3", now);
  auto admin = std::make_shared<const net::router>(net::make_admin_router(f.env));
  const std::string auth = "Authorization: Bearer tok\r\n";
  expect(
      ask(*admin, get("/admin/v1/hot-skus?scope=local&limit=1", auth)), 200,
      R"({"node_id":"node-1","window_s":10,"items":[{"sku":"A1","rate":3.0,"reservations":30}]})");
  expect(ask(*admin, get("/admin/v1/hot-skus?limit=0", auth)), 400,
         error_body("bad_request", "'limit' must be an integer between 1 and 100"));
  expect(ask(*admin, get("/admin/v1/hot-skus?limit=101", auth)), 400,
         error_body("bad_request", "'limit' must be an integer between 1 and 100"));
  expect(ask(*admin, get("/admin/v1/hot-skus?sku=A1", auth)), 400,
         error_body("bad_request", "unknown parameter 'sku'"));

  auto top = ask(*admin, get("/admin/v1/hot-skus?limit=2", auth));
  CHECK(top.status == 200);
  // The stock of each is its SKU actor's (scripted: on_hand 10, held 2, sold 1).
  const std::string stock =
      R"("on_hand":10,"held":2,"sold":1,"available":7,"owner_node":"node-\"1\"",)"
      R"("epoch":18446744073709})";
  CHECK(top.body.rfind(R"({"items":[{"sku":"A2","rate":3.5,"reservations":35,)" + stock +
                           R"(,{"sku":"A1","rate":3.0,"reservations":30,)" + stock +
                           R"(],"window_s":10,"nodes":["node-1","n2"],"errors":[)",
                       0) == 0);
  CHECK(errors_of(top).count("n3") == 1);
  auto all = ask(*admin, get("/admin/v1/hot-skus", auth));
  CHECK(all.body.find(R"({"sku":"A3","rate":0.1,"reservations":1,)") != std::string::npos);
  net::stop_peers(*f.env);
}

TEST_CASE("bridge: a member that takes its connection but never answers is an error after 2 s") {
  // A listening socket that never accepts: the kernel completes the connect, nobody answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const auto silent = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  bridge_fixture f;
  f.env->cluster.nodes = [silent] {
    return std::vector<net::cluster_admin::node_row>{{"node-1", "x", "x", "x", "up", 1, 0, 0},
                                                     {"quiet", "x", "x", silent, "up", 1, 0, 0}};
  };
  auto admin = std::make_shared<const net::router>(net::make_admin_router(f.env));
  auto r = ask(*admin, get("/admin/v1/payments"));
  CHECK(r.status == 200);
  CHECK(r.body.rfind(R"({"nodes":[{"node_id":"node-1","gateways":[]}],"errors":[)", 0) == 0);
  CHECK(errors_of(r)["quiet"] == "no answer within 2000 ms");
  net::stop_peers(*f.env);
  ::close(fd);
}
