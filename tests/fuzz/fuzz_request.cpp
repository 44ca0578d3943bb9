// libFuzzer target: one HTTP request through parse_request (default limits) and, when it parses,
// through a router with API.md's storefront and admin routes whose handlers parse the JSON body
// and check that json::writer's text of what was read parses back to the same value (also nested
// in a document) and that serialize() writes that text; its X-Forwarded-For goes
// through client_address. The raw input is also read as an http.trusted_proxies list and as an
// X-Forwarded-For value. A body that is a JSON object also goes through the bridge's sale body
// parser (PUT /admin/v1/sales/{sale_id}, net/bridge/src/json_body.cpp), whose record must keep
// its promises. Any crash, sanitizer report or failed check (abort) is a bug.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.hpp"
#include "json_body.hpp"
#include "listener_options.hpp"
#include "surge/net/address.hpp"
#include "surge/net/json.hpp"
#include "surge/net/json_writer.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/router.hpp"
#include "validation.hpp"

namespace net = surge::net;
namespace json = surge::net::json;

namespace {

constexpr surge::fuzz::checker check{"fuzz_request"};

/// An error body must be API.md's error shape.
void check_error_body(const net::http_response& r) {
  auto v = json::parse(r.body);
  check(std::holds_alternative<json::value>(v), "error body is JSON");
  const auto* e = std::get<json::value>(v).find("error");
  check(e != nullptr && e->find("code") != nullptr && e->find("message") != nullptr,
        "error body has error.code and error.message");
}

void json_round_trip(const std::string& body) {
  auto parsed = json::parse(body);
  if (auto* err = std::get_if<json::parse_error>(&parsed)) {
    check(err->offset <= body.size(), "error offset inside the input");
    check_error_body(net::error_response(400, "bad_request", err->message));
    return;
  }
  const auto& read = std::get<json::value>(parsed);
  // What the parser read, written by json::writer, parses back to the same value.
  const std::string once = json::writer{body.size()}.write(read).take();
  check(json::valid_utf8(once), "the writer's text is valid UTF-8");
  auto again = json::parse(once);
  check(std::holds_alternative<json::value>(again), "the writer's text parses");
  check(std::get<json::value>(again) == read, "written and parsed again: the same value");
  check(json::serialize(std::get<json::value>(again)) == once, "serialize writes the same text");
  // Inside a document, as a member and an array element, the same holds.
  json::writer w;
  w.begin_object().key("v").write(read).key("a").begin_array().write(read).end_array();
  json::parse_limits deeper;
  deeper.max_depth += 2;
  auto nested = json::parse(w.end_object().take(), deeper);
  check(std::holds_alternative<json::value>(nested), "a nested write parses");
  const auto& doc = std::get<json::value>(nested);
  check(doc.find("v") != nullptr && *doc.find("v") == read, "the member is the value");
}

/// A JSON object body as a sale (the admin's PUT): refused with a message naming a field, or a
/// record within the parser's promises.
void check_sale_body(const json::value& body) {
  namespace bridge = surge::net::bridge;
  std::string err;
  auto rec = bridge::sale_fields(body, "drop-1", err);
  if (!rec) {
    check(err.size() > 2 && err.find('\'') != std::string::npos, "a refusal names its field");
    return;
  }
  check(rec->sale_id == "drop-1", "the sale id is the path's");
  check(!rec->name.empty() && rec->name.size() <= 200 && json::valid_utf8(rec->name),
        "a name of 1 to 200 bytes of UTF-8");
  check(!rec->skus.empty() && rec->skus.size() <= bridge::max_sale_skus, "1 to 100 SKUs");
  for (std::size_t i = 0; i < rec->skus.size(); ++i) {
    check(bridge::valid_sku(rec->skus[i]), "valid SKUs");
    for (std::size_t j = 0; j < i; ++j) {
      check(rec->skus[i] != rec->skus[j], "distinct SKUs");
    }
  }
  check(rec->starts_at_ms >= 0 && rec->ends_at_ms > rec->starts_at_ms, "ends after it starts");
  check(rec->per_customer_limit >= 0 && rec->per_customer_limit <= bridge::max_qty,
        "a limit within bounds");
  check(rec->admission_rate >= 0 && rec->admission_rate <= bridge::max_admission_rate,
        "a rate within bounds (0: auto)");
  check(rec->pass_ttl_ms >= 1000 && rec->pass_ttl_ms <= bridge::max_pass_ttl_ms &&
            rec->pass_ttl_ms % 1000 == 0,
        "a pass ttl of whole seconds within bounds");
}

net::router make_router() {
  net::router r;
  auto h = [](net::http_request&& req, net::path_params&& params, net::responder respond) {
    for (const auto& p : params) {
      check(!p.empty() && json::valid_utf8(p), "captures are non-empty UTF-8");
    }
    if (!req.body.empty()) {
      json_round_trip(req.body);
      auto parsed = json::parse(req.body);
      if (auto* v = std::get_if<json::value>(&parsed); v != nullptr && v->is_object()) {
        check_sale_body(*v);
      }
    }
    net::http_response ok;
    ok.body = "{}";
    respond(std::move(ok));
  };
  const char* routes[][2] = {
      {"GET", "/healthz"},
      {"GET", "/readyz"},
      {"GET", "/api/v1/products"},
      {"GET", "/api/v1/products/{sku}"},
      {"POST", "/api/v1/carts"},
      {"GET", "/api/v1/carts/{cart_id}"},
      {"PUT", "/api/v1/carts/{cart_id}/items/{sku}"},
      {"DELETE", "/api/v1/carts/{cart_id}/items/{sku}"},
      {"POST", "/api/v1/carts/{cart_id}/checkout"},
      {"GET", "/api/v1/orders/{order_id}"},
      {"GET", "/p/{sku}"},
      {"PUT", "/admin/v1/products/{sku}"},
      {"POST", "/admin/v1/products/{sku}/stock"},
      {"GET", "/admin/v1/products/{sku}/stock"},
      {"GET", "/admin/v1/cluster"},
      {"POST", "/admin/v1/nodes/{node_id}/drain"},
      {"GET", "/metrics"},
      {"GET", "/console"},
      {"PUT", "/admin/v1/sales/{sale_id}"},
      {"GET", "/admin/v1/sales/{sale_id}"},
      {"POST", "/api/v1/sales/{sale_id}/queue"},
  };
  for (const auto& rt : routes) {
    r.add(rt[0], rt[1], h);
  }
  return r;
}

/// The client of X-Forwarded-For `xff` from a trusted peer: the peer or an address that the
/// header names, which prints and parses back to itself.
void check_client_address(std::optional<std::string_view> xff) {
  static const net::cidr_set trusted = [] {
    auto s = net::cidr_set::parse("127.0.0.1/32, ::1/128, 10.0.0.0/8, fd00::/8");
    check(std::holds_alternative<net::cidr_set>(s), "the trusted set parses");
    return std::get<net::cidr_set>(s);
  }();
  const auto peer = net::ip_address::v4(0x7f000001);
  const auto client = net::client_address(peer, xff, trusted);
  const auto text = client.to_string();
  const auto again = net::parse_ip(text);
  check(again.has_value() && *again == client, "the client address round-trips as text");
  bool named = false;
  if (xff) {
    std::string_view rest = *xff;
    while (!named) {
      const std::size_t comma = rest.find(',');
      std::string_view entry = rest.substr(0, comma);
      while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) {
        entry.remove_prefix(1);
      }
      while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) {
        entry.remove_suffix(1);
      }
      const auto a = net::parse_ip(entry);
      named = a && *a == client;
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  check(client == peer || named, "the client is the peer or an entry of the header");
  // An untrusted peer is always the client.
  check(net::client_address(net::ip_address::v4(0xC6336401), xff, trusted) ==
            net::ip_address::v4(0xC6336401),
        "an untrusted peer is the client");
}

/// `raw` as an http.trusted_proxies list: when it parses, every block prints as a CIDR that
/// parses back to the same block and contains its own base.
void check_cidr_list(std::string_view raw) {
  auto parsed = net::cidr_set::parse(raw);
  if (auto* err = std::get_if<std::string>(&parsed)) {
    check(!err->empty(), "a refused list says why");
    return;
  }
  const auto& set = std::get<net::cidr_set>(parsed);
  for (const auto& b : set.blocks()) {
    check(b.prefix <= 128, "prefix within 128 bits");
    check(b.contains(b.base) && set.contains(b.base), "a block contains its base");
    auto again = net::cidr_set::parse(b.to_string());
    check(std::holds_alternative<net::cidr_set>(again), "a printed block parses");
    const auto& blocks = std::get<net::cidr_set>(again).blocks();
    check(blocks.size() == 1 && blocks[0].base == b.base && blocks[0].prefix == b.prefix,
          "a printed block parses back to itself");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const net::router router = make_router();
  static const net::server_options limits = surge::test::listener();
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  check_cidr_list(raw);
  check_client_address(raw);

  auto result = net::parse_request(raw, limits);
  if (auto* err = std::get_if<net::http_response>(&result)) {
    check(err->status == 400 || err->status == 413 || err->status == 414 || err->status == 431,
          "parse errors are 400, 413, 414 or 431");
    check_error_body(*err);
    return 0;
  }
  auto& req = std::get<net::http_request>(result);
  check(!req.path.empty() && req.path.front() == '/', "path starts with '/'");
  check(json::valid_utf8(req.path), "path is UTF-8");
  check(req.body.size() <= limits.body_limit, "body within the limit");
  for (const auto& [k, v] : req.query) {
    check(json::valid_utf8(k) && json::valid_utf8(v), "query is UTF-8");
  }
  // Also the raw body as JSON, whatever the route.
  json_round_trip(req.body);
  check_client_address(req.header("x-forwarded-for"));

  bool answered = false;
  router.dispatch(std::move(req), [&answered](net::http_response r) {
    answered = true;
    if (r.status != 200) {
      check(r.status == 404 || r.status == 405, "router answers 404 or 405");
      check_error_body(r);
    }
  });
  check(answered, "every request is answered");
  return 0;
}
