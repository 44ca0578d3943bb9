// The bridge's pure pieces of sales (issue 17): the sale body's parser, the sale, ticket and
// product JSON, and how a queue stream works a ticket's view out from the queue's summary.
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "encode.hpp"
#include "json_body.hpp"
#include "queue_stream.hpp"
#include "surge/net/json.hpp"

namespace net = surge::net;
namespace actors = surge::actors;
namespace bridge = surge::net::bridge;
namespace json = surge::net::json;

namespace {

constexpr int64_t t0 = 1795766400000; // 2026-11-27T08:00:00.000Z

json::value parse(const std::string& text) {
  auto v = json::parse(text);
  REQUIRE(std::holds_alternative<json::value>(v));
  return std::get<json::value>(std::move(v));
}

/// The sale body's parse result: the record, or the error message.
std::variant<surge::persistence::sale_record, std::string> sale_of(const std::string& body) {
  std::string err;
  auto rec = bridge::sale_fields(parse(body), "drop-1", err);
  if (!rec) {
    return err;
  }
  return *rec;
}

std::string error_of(const std::string& body) {
  auto r = sale_of(body);
  REQUIRE_MESSAGE(std::holds_alternative<std::string>(r), body);
  return std::get<std::string>(r);
}

const std::string minimal =
    R"({"name":"Drop","skus":["A","B"],)"
    R"("starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z")";

} // namespace

TEST_CASE("sales: the PUT body, its defaults and each bad field named") {
  auto r = sale_of(minimal + "}");
  REQUIRE(std::holds_alternative<surge::persistence::sale_record>(r));
  auto rec = std::get<surge::persistence::sale_record>(r);
  CHECK(rec.sale_id == "drop-1");
  CHECK(rec.name == "Drop");
  CHECK(rec.skus == std::vector<std::string>{"A", "B"});
  CHECK(rec.starts_at_ms == t0);
  CHECK(rec.ends_at_ms == t0 + 3600000);
  CHECK(rec.per_customer_limit == 0);
  CHECK_FALSE(rec.queue_enabled);
  CHECK(rec.admission_rate == 0); // auto
  CHECK(rec.pass_ttl_ms == 300000);

  auto q = sale_of(minimal + R"(,"per_customer_limit":2,"queue":{"enabled":true,)"
                             R"("admission_rate":12.5,"pass_ttl":"5m"}})");
  REQUIRE(std::holds_alternative<surge::persistence::sale_record>(q));
  rec = std::get<surge::persistence::sale_record>(q);
  CHECK(rec.per_customer_limit == 2);
  CHECK(rec.queue_enabled);
  CHECK(rec.admission_rate == 12.5);
  CHECK(rec.pass_ttl_ms == 300000);
  q = sale_of(minimal + R"(,"queue":{"admission_rate":"auto","pass_ttl":90}})");
  REQUIRE(std::holds_alternative<surge::persistence::sale_record>(q));
  CHECK(std::get<surge::persistence::sale_record>(q).pass_ttl_ms == 90000);

  // Each bad field: the message names it.
  const std::pair<std::string, std::string> bad[] = {
      {R"({"skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'name'"},
      {R"({"name":"","skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'name'"},
      {R"({"name":"D","starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":[],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":"A","starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":["A","A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":["a/b"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T09:00:00Z"})",
       "'skus'"},
      {R"({"name":"D","skus":["A"],"ends_at":"2026-11-27T09:00:00Z"})", "'starts_at'"},
      {R"({"name":"D","skus":["A"],"starts_at":"tomorrow","ends_at":"2026-11-27T09:00:00Z"})",
       "'starts_at'"},
      {R"({"name":"D","skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":5})", "'ends_at'"},
      {R"({"name":"D","skus":["A"],"starts_at":"2026-11-27T08:00:00Z","ends_at":"2026-11-27T08:00:00Z"})",
       "'ends_at'"},
      {minimal + R"(,"per_customer_limit":-1})", "'per_customer_limit'"},
      {minimal + R"(,"queue":true})", "'queue'"},
      {minimal + R"(,"queue":{"enabled":"yes"}})", "'queue.enabled'"},
      {minimal + R"(,"queue":{"admission_rate":0}})", "'queue.admission_rate'"},
      {minimal + R"(,"queue":{"admission_rate":"fast"}})", "'queue.admission_rate'"},
      {minimal + R"(,"queue":{"pass_ttl":0}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":"1500ms"}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":"2d"}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":1.5}})", "'queue.pass_ttl'"},
      {minimal + R"(,"queue":{"pass_ttl":86401}})", "'queue.pass_ttl'"},
  };
  for (const auto& [body, field] : bad) {
    CAPTURE(body);
    CHECK(error_of(body).find(field) != std::string::npos);
  }

  CHECK(bridge::parse_duration_ms("90s") == 90000);
  CHECK(bridge::parse_duration_ms("5m") == 300000);
  CHECK(bridge::parse_duration_ms("1h") == 3600000);
  CHECK(bridge::parse_duration_ms("250ms") == 250);
  CHECK_FALSE(bridge::parse_duration_ms("s"));
  CHECK_FALSE(bridge::parse_duration_ms("5"));
  CHECK_FALSE(bridge::parse_duration_ms("-5s"));
  CHECK_FALSE(bridge::parse_duration_ms("99999999999999999999h"));
}

TEST_CASE("sales: sale, stats and ticket JSON") {
  surge::persistence::sale_record s;
  s.sale_id = "drop-1";
  s.name = "Drop \"1\"";
  s.skus = {"A", "B"};
  s.starts_at_ms = t0;
  s.ends_at_ms = t0 + 3600000;
  s.per_customer_limit = 1;
  s.queue_enabled = true;
  s.admission_rate = 0;
  s.pass_ttl_ms = 90000;
  s.updated_at_ms = t0 - 5000;
  const std::string head =
      R"({"sale_id":"drop-1","name":"Drop \"1\"","skus":["A","B"],)"
      R"("starts_at":"2026-11-27T08:00:00.000Z","ends_at":"2026-11-27T09:00:00.000Z",)"
      R"("per_customer_limit":1,"queue":{"enabled":true,"admission_rate":"auto","pass_ttl":90},)";
  CHECK(bridge::sale_json(s, t0 - 1) ==
        head + R"("state":"scheduled","updated_at":"2026-11-27T07:59:55.000Z"})");
  CHECK(bridge::sale_state(s, t0) == std::string{"live"});
  CHECK(bridge::sale_state(s, t0 + 3600000) == std::string{"ended"});
  CHECK(bridge::sale_json(s, t0, true, nullptr) ==
        head + R"("state":"live","updated_at":"2026-11-27T07:59:55.000Z","stats":null})");

  actors::queue_summary q;
  q.sale_id = "drop-1";
  q.phase = "sold_out";
  q.ranked = true;
  q.tickets = 20;
  q.admitted = 5;
  q.waiting = 15;
  q.admit_rate = 2.5;
  q.available = 0;
  q.held = 0;
  q.sold = 5;
  q.sold_out_at_ms = t0 + 1000;
  q.lottery_seed = "00ff";
  q.warm = true;
  s.admission_rate = 4;
  CHECK(bridge::sale_json(s, t0, true, &q) ==
        R"({"sale_id":"drop-1","name":"Drop \"1\"","skus":["A","B"],)"
        R"("starts_at":"2026-11-27T08:00:00.000Z","ends_at":"2026-11-27T09:00:00.000Z",)"
        R"("per_customer_limit":1,"queue":{"enabled":true,"admission_rate":4,"pass_ttl":90},)"
        R"("state":"live","updated_at":"2026-11-27T07:59:55.000Z","stats":{"waiting":15,)"
        R"("admitted":5,"sold":5,"sold_out_at":"2026-11-27T08:00:01.000Z","lottery_seed":"00ff",)"
        R"("tickets":20,"admit_rate":2.5,"available":0,"held":0,"warm":true,"phase":"sold_out"}})");
  q.sold_out_at_ms = 0;
  q.lottery_seed.clear();
  auto listed = parse(bridge::sales_json({s}, t0, {&q}));
  const auto& item = std::get<json::array>(listed.find("items")->get()).at(0);
  CHECK(item.find("stats")->find("sold_out_at")->is_null());
  CHECK(item.find("stats")->find("lottery_seed")->is_null());

  actors::ticket_view t;
  t.sale_id = "drop-1";
  t.ticket = "t3-abc";
  t.state = "waiting";
  t.position = 0;
  t.eta_s = 42;
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"waiting","position":null,"eta_s":42,)"
        R"("pass":null,"pass_expires_at":null})");
  t.position = 7;
  t.eta_s = -1;
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"waiting","position":7,"eta_s":null,)"
        R"("pass":null,"pass_expires_at":null})");
  t.state = "admitted";
  t.pass = "p.x";
  t.pass_expires_at_ms = t0;
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"admitted","position":null,)"
        R"("eta_s":null,"pass":"p.x","pass_expires_at":"2026-11-27T08:00:00.000Z"})");
  t.state = "sold_out";
  CHECK(bridge::ticket_json(t) ==
        R"({"sale_id":"drop-1","ticket":"t3-abc","state":"sold_out","position":null,)"
        R"("eta_s":null,"pass":null,"pass_expires_at":null})");
}

TEST_CASE("sales: product JSON carries the sale that governs its SKU") {
  actors::sale_index index;
  surge::persistence::sale_record s;
  s.sale_id = "drop-1";
  s.name = "Drop";
  s.skus = {"A"};
  s.starts_at_ms = t0;
  s.ends_at_ms = t0 + 60000;
  s.pass_ttl_ms = 300000;
  index.put(s);
  actors::product_view v;
  v.product.sku = "A";
  v.product.name = "A";
  v.product.currency = "EUR";
  v.available = 3;
  const std::string plain = bridge::product_json(v);
  CHECK(bridge::product_json(v, {}) == plain);
  CHECK(bridge::product_json(v, {&index, t0 - 1}) ==
        plain.substr(0, plain.size() - 1) +
            R"(,"sale":{"sale_id":"drop-1","name":"Drop","starts_at":"2026-11-27T08:00:00.000Z",)"
            R"("ends_at":"2026-11-27T08:01:00.000Z","state":"scheduled",)"
            R"("queue":{"enabled":false,"admission_rate":"auto","pass_ttl":300}}})");
  v.product.sku = "B";
  CHECK(bridge::product_json(v, {&index, t0}).find("\"sale\"") == std::string::npos);
}

TEST_CASE("sales: a queue stream's view from the ticket and the queue's summary") {
  actors::ticket_view base;
  base.sale_id = "s";
  base.ticket = "t9-x";
  base.state = "waiting";
  base.rank = -1;
  base.eta_s = 100;
  actors::queue_summary q;
  q.sale_id = "s";
  q.phase = "warming";

  // Before the lottery: no position, eta counting down to the start; ranked: ask again.
  auto step = bridge::follow(base, q, t0, t0 - 30500);
  CHECK(step.view.state == "waiting");
  CHECK(step.view.position == 0);
  CHECK(step.view.eta_s == 31);
  CHECK_FALSE(step.refetch);
  q.phase = "open";
  q.ranked = true;
  CHECK(bridge::follow(base, q, t0, t0 + 10).refetch);

  // Ranked: position from admitted, never above the ticket's own, eta from the rate.
  base.rank = 9;
  base.position = 10;
  q.admitted = 4;
  q.admit_rate = 2;
  step = bridge::follow(base, q, t0, t0 + 10);
  CHECK_FALSE(step.refetch);
  CHECK(step.view.position == 6);
  CHECK(step.view.eta_s == 3);
  q.admitted = 0; // an older summary than the ticket's answer
  CHECK(bridge::follow(base, q, t0, t0 + 10).view.position == 10);
  q.admit_rate = 0;
  q.admitted = 4;
  CHECK(bridge::follow(base, q, t0, t0 + 10).view.eta_s == -1);

  // Sold out and back.
  q.phase = "sold_out";
  CHECK(bridge::follow(base, q, t0, t0 + 10).view.state == "sold_out");
  base.state = "sold_out";
  q.phase = "open";
  CHECK(bridge::follow(base, q, t0, t0 + 10).view.state == "waiting");

  // Admitted now: ask for the pass.
  base.state = "waiting";
  q.admitted = 10;
  CHECK(bridge::follow(base, q, t0, t0 + 10).refetch);

  // The sale ended: a waiting ticket expired.
  q.phase = "ended";
  q.admitted = 4;
  step = bridge::follow(base, q, t0, t0 + 10);
  CHECK(step.view.state == "expired");
  CHECK(step.view.position == 0);

  // Admitted: until the pass expires.
  base.state = "admitted";
  base.pass = "p";
  base.pass_expires_at_ms = t0 + 1000;
  q.phase = "open";
  CHECK(bridge::follow(base, q, t0, t0 + 999).view.state == "admitted");
  step = bridge::follow(base, q, t0, t0 + 1000);
  CHECK(step.view.state == "expired");
  CHECK(step.view.pass.empty());

  CHECK(bridge::eta_moved(-1, 5));
  CHECK(bridge::eta_moved(5, -1));
  CHECK_FALSE(bridge::eta_moved(-1, -1));
  CHECK_FALSE(bridge::eta_moved(60, 59));
  CHECK_FALSE(bridge::eta_moved(60, 50));
  CHECK(bridge::eta_moved(60, 48));
  CHECK(bridge::eta_moved(4, 2));
  CHECK_FALSE(bridge::eta_moved(3, 2));
}
