#include "api.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>

namespace surge::itest {

std::optional<int64_t> parse_rfc3339_ms(const std::string& s) {
  auto digits = [&](std::size_t from, std::size_t n) -> std::optional<int> {
    if (from + n > s.size()) {
      return std::nullopt;
    }
    int v = 0;
    for (std::size_t i = from; i < from + n; ++i) {
      if (s[i] < '0' || s[i] > '9') {
        return std::nullopt;
      }
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const auto year = digits(0, 4);
  const auto mon = digits(5, 2);
  const auto day = digits(8, 2);
  const auto hour = digits(11, 2);
  const auto min = digits(14, 2);
  const auto sec = digits(17, 2);
  if (s.size() < 20 || !year || s[4] != '-' || !mon || s[7] != '-' || !day || s[10] != 'T' ||
      !hour || s[13] != ':' || !min || s[16] != ':' || !sec || s.back() != 'Z' || *mon < 1 ||
      *mon > 12 || *day < 1 || *day > 31 || *hour > 23 || *min > 59 || *sec > 60) {
    return std::nullopt;
  }
  int64_t ms = 0;
  if (s.size() > 20) {
    // A fraction: '.' and 1 to 9 digits.
    const std::size_t n = s.size() - 21;
    if (s[19] != '.' || n < 1 || n > 9 || !digits(20, n)) {
      return std::nullopt;
    }
    std::string frac = s.substr(20, n) + "00";
    ms = std::stoi(frac.substr(0, 3));
  }
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *mon - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *min;
  tm.tm_sec = *sec;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

json::value parse_json(const std::string& body) {
  auto parsed = json::parse(body);
  if (auto* err = std::get_if<json::parse_error>(&parsed)) {
    FAIL("not JSON (" << err->message << "): " << body.substr(0, 500));
  }
  return std::get<json::value>(std::move(parsed));
}

const json::value& member(const json::value& obj, std::string_view key) {
  REQUIRE_MESSAGE(obj.is_object(),
                  "expected an object with '" << key << "', got " << json::serialize(obj));
  const json::value* v = obj.find(key);
  REQUIRE_MESSAGE(v != nullptr, "no '" << key << "' in " << json::serialize(obj));
  return *v;
}

int64_t int_of(const json::value& obj, std::string_view key) {
  const auto& v = member(obj, key);
  REQUIRE_MESSAGE(v.is_int(), "'" << key << "' is not an integer in " << json::serialize(obj));
  return std::get<int64_t>(v.get());
}

std::string str_of(const json::value& obj, std::string_view key) {
  const auto& v = member(obj, key);
  REQUIRE_MESSAGE(v.is_string(), "'" << key << "' is not a string in " << json::serialize(obj));
  return std::get<std::string>(v.get());
}

const json::array& array_of(const json::value& obj, std::string_view key) {
  const auto& v = member(obj, key);
  REQUIRE_MESSAGE(v.is_array(), "'" << key << "' is not an array in " << json::serialize(obj));
  return std::get<json::array>(v.get());
}

std::vector<std::string> keys_of(const json::value& obj) {
  std::vector<std::string> out;
  if (const auto* o = std::get_if<json::object>(&obj.get())) {
    for (const auto& [k, v] : *o) {
      out.push_back(k);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool wait_for_lock_waiter(const std::string& database_url, std::chrono::milliseconds limit) {
  pqxx::connection probe{database_url};
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    pqxx::nontransaction q{probe};
    if (q.exec1("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")[0]
            .as<int>() > 0) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

std::string describe(const response& r) {
  std::string out = std::to_string(r.status);
  if (!r.error.empty()) {
    out += " (" + r.error + ")";
  }
  out += " " + r.body.substr(0, 400);
  return out;
}

std::string error_mismatch(const response& r, int status, std::string_view code) {
  const std::string want = "want " + std::to_string(status) +
                           (code.empty() ? std::string{} : " " + std::string{code}) + ", got " +
                           describe(r);
  if (r.status != status) {
    return want;
  }
  auto parsed = json::parse(r.body);
  if (std::holds_alternative<json::parse_error>(parsed)) {
    return "error body is not JSON: " + want;
  }
  const auto& v = std::get<json::value>(parsed);
  if (keys_of(v) != std::vector<std::string>{"error"}) {
    return "error body is not {\"error\":{...}}: " + want;
  }
  const auto& e = *v.find("error");
  if (keys_of(e) != std::vector<std::string>{"code", "message"}) {
    return "error object is not {\"code\",\"message\"}: " + want;
  }
  const auto* c = e.find("code");
  const auto* m = e.find("message");
  if (!c->is_string() || !m->is_string() || std::get<std::string>(c->get()).empty() ||
      std::get<std::string>(m->get()).empty()) {
    return "code and message must be non-empty strings: " + want;
  }
  if (!code.empty() && std::get<std::string>(c->get()) != code) {
    return "wrong error code: " + want;
  }
  return {};
}

void check_error(const response& r, int status, std::string_view code) {
  const auto what = error_mismatch(r, status, code);
  CHECK_MESSAGE(what.empty(), what);
}

std::string product_body(const product_spec& p) {
  json::object o{{"name", p.name},         {"description", p.description},
                 {"category", p.category}, {"price_cents", p.price_cents},
                 {"currency", p.currency}, {"per_customer_limit", p.per_customer_limit}};
  return json::serialize(json::value{std::move(o)});
}

api::api(const node_process& node)
    : store_(node.http_port())
    , admin_(node.admin_port()) {
  admin_.set_bearer(node.admin_token());
}

json::value api::put_product(const product_spec& p) {
  auto r = admin_.put("/admin/v1/products/" + p.sku, product_body(p));
  REQUIRE_MESSAGE(r.status == 200, "PUT product " << p.sku << ": " << describe(r));
  return parse_json(r.body);
}

json::value api::set_stock(const std::string& sku, int64_t on_hand) {
  auto r = admin_.post("/admin/v1/products/" + sku + "/stock",
                       "{\"set\":" + std::to_string(on_hand) + "}");
  REQUIRE_MESSAGE(r.status == 200, "set stock " << sku << ": " << describe(r));
  return parse_json(r.body);
}

json::value api::add_product(const product_spec& p, int64_t on_hand) {
  put_product(p);
  return set_stock(p.sku, on_hand);
}

json::value api::stock(const std::string& sku) {
  auto r = admin_.get("/admin/v1/products/" + sku + "/stock");
  REQUIRE_MESSAGE(r.status == 200, "GET stock " << sku << ": " << describe(r));
  return parse_json(r.body);
}

json::value api::product(const std::string& sku) {
  auto r = store_.get("/api/v1/products/" + sku);
  REQUIRE_MESSAGE(r.status == 200, "GET product " << sku << ": " << describe(r));
  return parse_json(r.body);
}

std::string api::create_cart(const std::string& customer_id) {
  auto r = store_.post("/api/v1/carts", customer_id.empty()
                                            ? std::string{"{}"}
                                            : "{\"customer_id\":\"" + customer_id + "\"}");
  REQUIRE_MESSAGE(r.status == 201, "POST /api/v1/carts: " << describe(r));
  auto id = str_of(parse_json(r.body), "cart_id");
  REQUIRE(!id.empty());
  return id;
}

std::vector<std::string> api::create_carts(std::size_t n) {
  std::vector<request> reqs(n, json_request("POST", "/api/v1/carts", "{}"));
  auto res = send_all(store_.port(), reqs);
  std::vector<std::string> ids;
  std::set<std::string> distinct;
  for (const auto& r : res) {
    REQUIRE_MESSAGE(r.status == 201, "POST /api/v1/carts: " << describe(r));
    ids.push_back(str_of(parse_json(r.body), "cart_id"));
    distinct.insert(ids.back());
  }
  REQUIRE_MESSAGE(distinct.size() == n, "cart ids are not distinct");
  return ids;
}

std::vector<response> api::get_carts(const std::vector<std::string>& cart_ids) {
  std::vector<request> gets;
  for (const auto& id : cart_ids) {
    gets.push_back(request{"GET", "/api/v1/carts/" + id, {}, {}});
  }
  return send_all(store_.port(), gets);
}

json::value api::cart(const std::string& cart_id) {
  auto r = store_.get("/api/v1/carts/" + cart_id);
  REQUIRE_MESSAGE(r.status == 200, "GET cart " << cart_id << ": " << describe(r));
  return parse_json(r.body);
}

response api::put_item(const std::string& cart_id, const std::string& sku, int64_t qty) {
  return store_.put("/api/v1/carts/" + cart_id + "/items/" + sku,
                    "{\"qty\":" + std::to_string(qty) + "}");
}

double api::metric(const std::string& sample) {
  auto r = admin_.get("/metrics");
  REQUIRE_MESSAGE(r.status == 200, "GET /metrics: " << describe(r));
  std::istringstream in{r.body};
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
        line[sample.size()] == ' ') {
      return std::stod(line.substr(sample.size() + 1));
    }
  }
  FAIL("no sample " << sample << " in /metrics:\n" << r.body);
  return -1;
}

const json::value* line_of(const json::value& cart, std::string_view sku) {
  const json::value* items = cart.find("items");
  if (items == nullptr || !items->is_array()) {
    return nullptr;
  }
  for (const auto& l : std::get<json::array>(items->get())) {
    const json::value* s = l.find("sku");
    if (s != nullptr && s->is_string() && std::get<std::string>(s->get()) == sku) {
      return &l;
    }
  }
  return nullptr;
}

const json::value& line_at(const json::value& cart, std::string_view sku) {
  const auto* line = line_of(cart, sku);
  REQUIRE_MESSAGE(line != nullptr, "no line for " << sku << " in " << json::serialize(cart));
  return *line;
}

void check_stock(const json::value& stock, int64_t on_hand, int64_t held, int64_t sold) {
  INFO("stock: " << json::serialize(stock));
  CHECK(int_of(stock, "on_hand") == on_hand);
  CHECK(int_of(stock, "held") == held);
  CHECK(int_of(stock, "sold") == sold);
  CHECK(int_of(stock, "available") == on_hand - held - sold);
}

} // namespace surge::itest
