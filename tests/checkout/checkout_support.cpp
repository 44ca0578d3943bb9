#include "checkout_support.hpp"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <tuple>

namespace surge::itest {

std::unique_ptr<paysim_process> start_paysim(std::vector<std::string> extra) {
  return std::make_unique<paysim_process>(std::vector<std::string>{"alpha", "beta"},
                                          std::move(extra));
}

node_config paying_node(const paysim_process& ps, std::vector<std::string> more,
                        std::string holds_ttl) {
  node_config cfg;
  cfg.holds_ttl = std::move(holds_ttl);
  cfg.extra.push_back(
      "--payments.gateways=alpha=form+http://127.0.0.1:" + std::to_string(ps.port(0)) +
      ",beta=json+http://127.0.0.1:" + std::to_string(ps.port(1)));
  cfg.extra.insert(cfg.extra.end(), more.begin(), more.end());
  return cfg;
}

void add_product(api& a, const std::string& sku, int64_t price_cents, int64_t on_hand) {
  a.put_product({.sku = sku, .name = "Product " + sku, .price_cents = price_cents});
  a.set_stock(sku, on_hand);
}

std::string filled_cart(api& a, const std::vector<line_spec>& lines) {
  const auto cart = a.create_cart();
  for (const auto& l : lines) {
    auto r = a.put_item(cart, l.sku, l.qty);
    REQUIRE_MESSAGE(r.status == 200, "PUT " << l.sku << " x" << l.qty << ": " << describe(r));
  }
  return cart;
}

std::string payment_body(const std::string& token) {
  return R"({"payment":{"method":"card","token":")" + token + "\"}}";
}

request checkout_request(const std::string& cart, const std::string& key,
                         const std::string& token) {
  auto req = json_request("POST", "/api/v1/carts/" + cart + "/checkout", payment_body(token));
  if (!key.empty()) {
    req.headers.emplace_back("Idempotency-Key", key);
  }
  return req;
}

response checkout(http_client& c, const std::string& cart, const std::string& key,
                  const std::string& token) {
  return c.send(checkout_request(cart, key, token));
}

json::value check_order(const response& r, int status, const std::string& cart,
                        const std::string& want_status, std::vector<line_spec> lines,
                        int64_t after_ms) {
  REQUIRE_MESSAGE(r.status == status, "want " << status << " order, got " << describe(r));
  auto o = parse_json(r.body);
  INFO("order: " << r.body);
  CHECK(keys_of(o) == std::vector<std::string>{"cart_id", "created_at", "currency", "lines",
                                               "order_id", "status", "total_cents"});
  CHECK(!str_of(o, "order_id").empty());
  CHECK(str_of(o, "cart_id") == cart);
  CHECK(str_of(o, "status") == want_status);
  CHECK(str_of(o, "currency") == "USD");
  int64_t total = 0;
  for (const auto& l : lines) {
    total += l.qty * l.price_cents;
  }
  CHECK(int_of(o, "total_cents") == total);
  using row = std::tuple<std::string, int64_t, int64_t>;
  std::vector<row> got;
  for (const auto& l : array_of(o, "lines")) {
    CHECK(keys_of(l) == std::vector<std::string>{"price_cents", "qty", "sku"});
    got.emplace_back(str_of(l, "sku"), int_of(l, "qty"), int_of(l, "price_cents"));
  }
  std::vector<row> want;
  for (const auto& l : lines) {
    want.emplace_back(l.sku, l.qty, l.price_cents);
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  CHECK(got == want);
  const auto created = parse_rfc3339_ms(str_of(o, "created_at"));
  CHECK_MESSAGE(created.has_value(), "created_at is not RFC 3339 UTC");
  if (created) {
    CHECK(*created >= after_ms - 2000);
    CHECK(*created <= wall_ms() + 2000);
  }
  return o;
}

bool same_json(const std::string& a, const std::string& b) {
  auto pa = json::parse(a);
  auto pb = json::parse(b);
  const auto* va = std::get_if<json::value>(&pa);
  const auto* vb = std::get_if<json::value>(&pb);
  return va != nullptr && vb != nullptr && json::serialize(*va) == json::serialize(*vb);
}

std::vector<logged_charge> charges_for(const paysim_process& ps, const std::string& key) {
  std::vector<logged_charge> out;
  for (auto& c : ps.charges()) {
    if (c.key == key) {
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::size_t count_status(const std::vector<logged_charge>& log, const std::string& status) {
  return static_cast<std::size_t>(std::count_if(
      log.begin(), log.end(), [&](const logged_charge& c) { return c.status == status; }));
}

std::string describe(const std::vector<logged_charge>& log) {
  std::string out = "[";
  for (const auto& c : log) {
    out += (out.size() > 1 ? ", " : "") + c.gateway + " " + c.key + " " +
           std::to_string(c.amount_cents) + " " + c.currency + " " + c.status;
  }
  return out + "]";
}

namespace {

struct redis_target {
  std::string host;
  int port = 6379;
  std::string password;
  int db = 0;
};

/// redis://[:pw@]host[:port][/db], as tests/support reads SURGE_TEST_REDIS_URL.
redis_target parse_redis(const std::string& url) {
  redis_target t;
  std::string rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    auto auth = rest.substr(0, at);
    t.password = auth.substr(auth.find(':') == std::string::npos ? 0 : auth.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    auto db = rest.substr(slash + 1);
    t.db = db.empty() ? 0 : std::stoi(db);
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    t.port = std::stoi(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  t.host = rest;
  return t;
}

using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;
using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

reply_ptr command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (r == nullptr) {
    throw std::runtime_error("Redis " + args[0] + ": " + c->errstr);
  }
  reply_ptr out{r, &freeReplyObject};
  if (r->type == REDIS_REPLY_ERROR) {
    throw std::runtime_error("Redis " + args[0] + ": " + std::string{r->str, r->len});
  }
  return out;
}

std::string text(const redisReply* r) {
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
    throw std::runtime_error("XRANGE: unexpected reply type " + std::to_string(r->type));
  }
  return std::string{r->str, r->len};
}

} // namespace

std::vector<stream_entry> xrange(const std::string& redis_url, const std::string& key) {
  const auto t = parse_redis(redis_url);
  timeval tv{2, 0};
  context_ptr c{redisConnectWithTimeout(t.host.c_str(), t.port, tv), &redisFree};
  if (!c || c->err != 0) {
    throw std::runtime_error("cannot reach Redis at " + redis_url + ": " +
                             (c ? c->errstr : "out of memory"));
  }
  redisSetTimeout(c.get(), tv);
  if (!t.password.empty()) {
    command(c.get(), {"AUTH", t.password});
  }
  if (t.db != 0) {
    command(c.get(), {"SELECT", std::to_string(t.db)});
  }
  auto r = command(c.get(), {"XRANGE", key, "-", "+"});
  if (r->type != REDIS_REPLY_ARRAY) {
    throw std::runtime_error("XRANGE " + key + ": not an array");
  }
  std::vector<stream_entry> out;
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY || e->element[1]->elements % 2 != 0) {
      throw std::runtime_error("XRANGE " + key + ": malformed entry");
    }
    stream_entry se;
    se.id = text(e->element[0]);
    const redisReply* kv = e->element[1];
    for (std::size_t j = 0; j + 1 < kv->elements; j += 2) {
      se.fields[text(kv->element[j])] = text(kv->element[j + 1]);
    }
    out.push_back(std::move(se));
  }
  return out;
}

} // namespace surge::itest
