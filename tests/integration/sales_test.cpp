// Sales and the waiting room (issue 17) on a real node (PostgreSQL, Redis, sockets): the admin
// API of sales, the sale window's edges, the queue with its lottery and passes, the sold-out
// notification (polling and Server-Sent Events) and holds expiring back into the queue.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "paysim_process.hpp"
#include "sale_support.hpp"
#include "sse_client.hpp"

namespace surge::itest {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// A shopper's ticket, polled until `pred` holds on it (bounded by `limit`); REQUIREs that it did.
ticket_state wait_ticket(shopper& s, const std::string& sale, const std::string& t,
                         std::chrono::milliseconds limit,
                         const std::function<bool(const ticket_state&)>& pred,
                         const std::string& what) {
  ticket_state last;
  const bool ok = eventually(limit, [&] {
    auto r = s.ticket(sale, t);
    if (r.status != 200) {
      return false;
    }
    last = ticket_of(parse_json(r.body));
    return pred(last);
  });
  REQUIRE_MESSAGE(ok,
                  s.id() << "'s ticket never " << what << "; last: " << json::serialize(last.body));
  return last;
}

bool admitted(const ticket_state& t) {
  return t.state == "admitted" && !t.pass.empty();
}

/// Joins `sale`; REQUIREs 201 and returns the ticket.
std::string join_new(shopper& s, const std::string& sale) {
  auto r = s.join(sale);
  REQUIRE_MESSAGE(r.status == 201, s.id() << " joins " << sale << ": " << describe(r));
  auto body = parse_json(r.body);
  check_ticket_shape(body);
  CHECK(str_of(body, "sale_id") == sale);
  return str_of(body, "ticket");
}

/// A surge-paysim with one gateway ("alpha", json), and the node flag that pays through it.
struct gateway {
  ptest::paysim_process ps{{"alpha"}};
  std::string flag() const { return "--payments.gateways=" + ps.setting("json"); }
};

/// POST /api/v1/carts/{cart}/checkout paying with tok_ok.
response buy(shopper& s, const std::string& cart, const std::string& key) {
  auto req = json_request("POST", "/api/v1/carts/" + cart + "/checkout",
                          R"({"payment":{"method":"card","token":"tok_ok"}})");
  req.headers.emplace_back("Idempotency-Key", key);
  return s.http().send(req);
}

} // namespace

TEST_SUITE("sales") {
  TEST_CASE("admin: PUT checks each field, 409 on overlap; GET, list, DELETE; product JSON and "
            "page show the sale") {
    node_process node;
    api a{node};
    for (const auto* sku : {"SA", "SB", "SC"}) {
      a.add_product({.sku = sku, .name = sku, .price_cents = 1000}, 5);
    }
    const auto now = wall_ms();
    sale_spec s{.name = "Black Friday",
                .skus = {"SA", "SB"},
                .starts_at_ms = now + 3600000,
                .ends_at_ms = now + 7200000};
    auto& admin = a.admin();

    // Each bad field: 400 naming it.
    const auto base = sale_body(s);
    auto with = [&](const std::string& from, const std::string& to) {
      auto b = base;
      const auto at = b.find(from);
      REQUIRE(at != std::string::npos);
      return b.replace(at, from.size(), to);
    };
    const std::pair<std::string, std::string> bad[] = {
        {with("\"name\":\"Black Friday\"", "\"name\":\"\""), "'name'"},
        {with("\"name\":\"Black Friday\"", "\"name\":7"), "'name'"},
        {with("[\"SA\",\"SB\"]", "[]"), "'skus'"},
        {with("[\"SA\",\"SB\"]", "[\"SA\",\"SA\"]"), "'skus'"},
        {with("[\"SA\",\"SB\"]", "[\"SA\",\"NOPE\"]"), "NOPE"},
        {with("\"starts_at\":\"", "\"starts_at\":\"x"), "'starts_at'"},
        {with("\"ends_at\":\"" + rfc3339(s.ends_at_ms), "\"ends_at\":\"" + rfc3339(s.starts_at_ms)),
         "'ends_at'"},
        {with("\"per_customer_limit\":0", "\"per_customer_limit\":-2"), "'per_customer_limit'"},
        {with("\"enabled\":false", "\"enabled\":1"), "'queue.enabled'"},
        {with("\"admission_rate\":\"auto\"", "\"admission_rate\":-1"), "'queue.admission_rate'"},
        {with("\"pass_ttl\":60", "\"pass_ttl\":\"soon\""), "'queue.pass_ttl'"},
    };
    for (const auto& [body, field] : bad) {
      CAPTURE(body);
      auto r = admin.put("/admin/v1/sales/bf", body);
      check_error(r, 400, "bad_request");
      CHECK_MESSAGE(r.body.find(field) != std::string::npos, r.body);
    }
    check_error(admin.put("/admin/v1/sales/b*f", base), 400, "bad_request");
    CHECK(admin.get("/admin/v1/sales/bf").status == 404);

    // Created with the defaults shown.
    auto made = put_sale(a, "bf", s);
    CHECK(keys_of(made) == std::vector<std::string>{"ends_at", "name", "per_customer_limit",
                                                    "queue", "sale_id", "skus", "starts_at",
                                                    "state", "updated_at"});
    CHECK(str_of(made, "sale_id") == "bf");
    CHECK(str_of(made, "state") == "scheduled");
    CHECK(parse_rfc3339_ms(str_of(made, "starts_at")) == s.starts_at_ms);
    CHECK(parse_rfc3339_ms(str_of(made, "ends_at")) == s.ends_at_ms);
    CHECK(array_of(made, "skus").size() == 2);
    const auto& q = member(made, "queue");
    CHECK(member(q, "enabled") == json::value{false});
    CHECK(str_of(q, "admission_rate") == "auto");
    CHECK(int_of(q, "pass_ttl") == 60);
    auto dflt = admin.put("/admin/v1/sales/bf",
                          R"({"name":"Black Friday","skus":["SA","SB"],"starts_at":")" +
                              rfc3339(s.starts_at_ms) + R"(","ends_at":")" + rfc3339(s.ends_at_ms) +
                              R"("})");
    REQUIRE_MESSAGE(dflt.status == 200, describe(dflt));
    CHECK(int_of(member(parse_json(dflt.body), "queue"), "pass_ttl") == 300);
    CHECK(int_of(parse_json(dflt.body), "per_customer_limit") == 0);
    // Replaced: the same sale, a new name and queue settings.
    s.name = "Black Friday 2";
    s.queue = true;
    s.admission_rate = "20";
    s.pass_ttl = "\"5m\"";
    made = put_sale(a, "bf", s);
    CHECK(str_of(made, "name") == "Black Friday 2");
    CHECK(int_of(member(made, "queue"), "admission_rate") == 20);
    CHECK(int_of(member(made, "queue"), "pass_ttl") == 300);

    // A SKU in an overlapping sale: 409; the same SKU after it ends is fine.
    sale_spec other{.name = "Other",
                    .skus = {"SC", "SB"},
                    .starts_at_ms = s.starts_at_ms + 60000,
                    .ends_at_ms = s.ends_at_ms + 60000};
    check_error(admin.put("/admin/v1/sales/other", sale_body(other)), 409, "conflict");
    other.starts_at_ms = s.ends_at_ms;
    other.ends_at_ms = s.ends_at_ms + 3600000;
    put_sale(a, "other", other);

    // GET: the sale and its stats (an object, or null when the queue did not answer).
    auto got = get_sale(a, "bf");
    CHECK(str_of(got, "name") == "Black Friday 2");
    const auto& stats = member(got, "stats");
    CHECK((stats.is_null() || stats.is_object()));
    if (stats.is_object()) {
      for (const auto* k : {"waiting", "admitted", "sold", "sold_out_at", "lottery_seed"}) {
        CHECK_MESSAGE(stats.find(k) != nullptr, k);
      }
      CHECK(member(stats, "lottery_seed").is_null());
    }
    // The list, by start.
    auto list = admin.get("/admin/v1/sales");
    REQUIRE(list.status == 200);
    const auto items = array_of(parse_json(list.body), "items");
    REQUIRE(items.size() == 2);
    CHECK(str_of(items[0], "sale_id") == "bf");
    CHECK(str_of(items[1], "sale_id") == "other");
    check_error(admin.get("/admin/v1/sales?x=1"), 400, "bad_request");

    // Product JSON and the node's product page show the sale and its start.
    auto p = a.product("SA");
    REQUIRE(p.find("sale") != nullptr);
    const auto& sale = member(p, "sale");
    CHECK(str_of(sale, "sale_id") == "bf");
    CHECK(str_of(sale, "name") == "Black Friday 2");
    CHECK(str_of(sale, "state") == "scheduled");
    CHECK(parse_rfc3339_ms(str_of(sale, "starts_at")) == s.starts_at_ms);
    CHECK(member(member(sale, "queue"), "enabled") == json::value{true});
    CHECK(a.product("SC").find("sale") != nullptr); // "other", later
    auto page = a.store().get("/p/SA");
    REQUIRE(page.status == 200);
    CHECK(page.body.find("Black Friday 2") != std::string::npos);
    CHECK(page.body.find(rfc3339(s.starts_at_ms)) != std::string::npos);

    // DELETE: 204, then 404; the product no longer shows it.
    CHECK(admin.del("/admin/v1/sales/bf").status == 204);
    CHECK(admin.get("/admin/v1/sales/bf").status == 404);
    CHECK(admin.del("/admin/v1/sales/bf").status == 404);
    CHECK(a.product("SA").find("sale") == nullptr);
    CHECK(a.store().get("/p/SA").body.find("Black Friday") == std::string::npos);
  }

  TEST_CASE("window edges: sale_not_started before the start, sale_ended after the end") {
    node_process node;
    api a{node};
    a.add_product({.sku = "W1", .name = "W1", .price_cents = 500}, 10);
    const auto now = wall_ms();
    sale_spec s{.skus = {"W1"}, .starts_at_ms = now + 3000, .ends_at_ms = now + 7000};
    put_sale(a, "edge", s);
    a.add_product({.sku = "W2", .name = "W2", .price_cents = 500}, 10);
    put_sale(a, "edgeq",
             {.skus = {"W2"},
              .starts_at_ms = s.starts_at_ms,
              .ends_at_ms = s.ends_at_ms,
              .queue = true});
    const auto cart = a.create_cart();
    // Joining (auth off: the body names the customer): a queue must be on, a customer named.
    auto& store = a.store();
    check_error(store.post("/api/v1/sales/edge/queue", R"({"customer_id":"c1"})"), 409, "conflict");
    check_error(store.post("/api/v1/sales/edgeq/queue", "{}"), 400, "bad_request");
    check_error(store.post("/api/v1/sales/edgeq/queue", R"({"customer_id":"c 1"})"), 400,
                "bad_request");
    CHECK(store.post("/api/v1/sales/edgeq/queue", R"({"customer_id":"c1"})").status == 201);

    auto early = a.put_item(cart, "W1", 1);
    check_error(early, 409, "sale_not_started");
    CHECK(str_of(member(a.product("W1"), "sale"), "state") == "scheduled");

    // Polling until the start: the first 200 comes no earlier than starts_at.
    response r;
    REQUIRE(eventually(10s, [&] {
      r = a.put_item(cart, "W1", 1);
      return r.status != 409;
    }));
    REQUIRE_MESSAGE(r.status == 200, describe(r));
    CHECK(wall_ms() >= s.starts_at_ms);
    CHECK(str_of(member(a.product("W1"), "sale"), "state") == "live");

    // After the end, growing the hold is refused; shrinking is always allowed.
    REQUIRE(eventually(10s, [&] {
      // Each try grows the line from 1 to 2 (shrinking back is always allowed).
      const auto shrunk = a.put_item(cart, "W1", 1);
      REQUIRE_MESSAGE(shrunk.status == 200, describe(shrunk));
      r = a.put_item(cart, "W1", 2);
      return r.status != 200;
    }));
    check_error(r, 409, "sale_ended");
    CHECK(wall_ms() >= s.ends_at_ms);
    CHECK(str_of(member(a.product("W1"), "sale"), "state") == "ended");
    CHECK(a.put_item(cart, "W1", 0).status == 200);
    // The queue of an ended sale takes no one.
    check_error(store.post("/api/v1/sales/edgeq/queue", R"({"customer_id":"c2"})"), 409,
                "sale_ended");
  }

  TEST_CASE("the queue: lottery at the start, positions, passes checked, joining twice") {
    node_config cfg;
    cfg.extra = customer_auth_flags();
    node_process node{cfg};
    api a{node};
    for (const auto* sku : {"Q1", "Q2", "Q3"}) {
      a.add_product({.sku = sku, .name = sku, .price_cents = 700}, 10);
    }
    const auto now = wall_ms();
    const auto start = now + 4000;
    // q1 admits slowly (positions can be seen), q2 and q3 as stock allows; q3's passes last 5 s.
    put_sale(a, "q1",
             {.skus = {"Q1"},
              .starts_at_ms = start,
              .ends_at_ms = start + 600000,
              .queue = true,
              .admission_rate = "0.5",
              .pass_ttl = "60"});
    put_sale(a, "q2",
             {.skus = {"Q2"}, .starts_at_ms = start, .ends_at_ms = start + 600000, .queue = true});
    put_sale(a, "q3",
             {.skus = {"Q3"},
              .starts_at_ms = start,
              .ends_at_ms = start + 600000,
              .queue = true,
              .pass_ttl = "\"5s\""});
    shopper alice{a.store_port(), "alice"};
    shopper bob{a.store_port(), "bob"};

    // Join: a token is needed; unknown sales and tickets are 404.
    check_error(a.store().post(shopper::queue_path("q1"), ""), 401, "login_required");
    check_error(alice.join("nope"), 404, "not_found");
    const auto ta = join_new(alice, "q1");
    const auto tb = join_new(bob, "q1");
    CHECK(ta != tb);
    check_error(alice.ticket("q1", "t0-0000"), 404, "not_found");
    check_error(alice.ticket("q1", tb + "x"), 404, "not_found");
    CHECK(alice.ticket("q2", ta).status == 404); // another sale's ticket
    // Before the start: waiting, no position, an estimate of the time to the start.
    auto before = ticket_of(parse_json(alice.ticket("q1", ta).body));
    CHECK(before.state == "waiting");
    CHECK(before.position == -1);
    CHECK(member(before.body, "eta_s").is_int());
    CHECK(member(get_sale(a, "q1"), "stats").is_object());
    CHECK(member(member(get_sale(a, "q1"), "stats"), "lottery_seed").is_null());
    // Joining again: the same ticket, 200.
    auto again = alice.join("q1");
    REQUIRE(again.status == 200);
    CHECK(str_of(parse_json(again.body), "ticket") == ta);
    const auto a2 = join_new(alice, "q2");
    const auto a3 = join_new(alice, "q3");
    const auto b3 = join_new(bob, "q3");
    const auto cart = alice.new_cart();
    check_error(alice.add(cart, "Q1", 1), 409, "sale_not_started");

    // The lottery at the start: both ranked, positions 1 and 2 (or already admitted), the seed
    // shown in the admin's stats.
    auto ra = wait_ticket(
        alice, "q1", ta, 15s, [](const ticket_state& t) { return t.position > 0 || admitted(t); },
        "ranked");
    auto rb = wait_ticket(
        bob, "q1", tb, 5s, [](const ticket_state& t) { return t.position > 0 || admitted(t); },
        "ranked");
    MESSAGE("after the lottery: alice " << json::serialize(ra.body) << ", bob "
                                        << json::serialize(rb.body));
    if (ra.position > 0 && rb.position > 0) {
      CHECK(std::set<int64_t>{ra.position, rb.position} == std::set<int64_t>{1, 2});
    } else {
      CHECK((ra.position > 0 || rb.position > 0 || (admitted(ra) && admitted(rb))));
    }
    const auto seed = member(member(get_sale(a, "q1"), "stats"), "lottery_seed");
    REQUIRE(seed.is_string());
    const auto& hex = std::get<std::string>(seed.get());
    CHECK(!hex.empty());
    CHECK(hex.find_first_not_of("0123456789abcdef") == std::string::npos);

    // q3 admits as stock allows: alice's pass there lasts 5 s (tried once it expired, below).
    auto p3 = wait_ticket(alice, "q3", a3, 15s, admitted, "admitted");

    // Both admitted in time (0.5 per second): each has a pass.
    auto pa = wait_ticket(alice, "q1", ta, 20s, admitted, "admitted");
    auto pb = wait_ticket(bob, "q1", tb, 20s, admitted, "admitted");
    check_ticket_shape(pa.body);
    CHECK(parse_rfc3339_ms(str_of(pa.body, "pass_expires_at")) > wall_ms());
    auto p2 = wait_ticket(alice, "q2", a2, 15s, admitted, "admitted");

    // Passes: none, forged, another customer's, another sale's: 403 queue_required.
    check_error(alice.add(cart, "Q1", 1), 403, "queue_required");
    check_error(alice.add(cart, "Q1", 1, "forged.pass"), 403, "queue_required");
    auto tampered = pa.pass;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    check_error(alice.add(cart, "Q1", 1, tampered), 403, "queue_required");
    check_error(alice.add(cart, "Q1", 1, pb.pass), 403, "queue_required");
    check_error(alice.add(cart, "Q1", 1, p2.pass), 403, "queue_required");
    // The right pass: 200; the line may change with it.
    auto ok = alice.add(cart, "Q1", 1, pa.pass);
    REQUIRE_MESSAGE(ok.status == 200, describe(ok));
    CHECK(int_of(line_at(parse_json(ok.body), "Q1"), "qty") == 1);
    CHECK(alice.add(cart, "Q2", 1, p2.pass).status == 200);
    // Shrinking never needs a pass.
    CHECK(alice.add(cart, "Q1", 0).status == 200);

    // An expired pass (q3's last 5 s): 403, and the ticket says expired.
    wait_ticket(
        alice, "q3", a3, 10s, [](const ticket_state& t) { return t.state == "expired"; },
        "expired");
    CHECK(wall_ms() >= *parse_rfc3339_ms(str_of(p3.body, "pass_expires_at")));
    check_error(alice.add(cart, "Q3", 1, p3.pass), 403, "queue_required");
    // Bob's q3 ticket is bob's: his pass does not work for alice either.
    auto bp3 = ticket_of(parse_json(bob.ticket("q3", b3).body));
    if (!bp3.pass.empty()) {
      check_error(alice.add(cart, "Q3", 1, bp3.pass), 403, "queue_required");
    }
  }

  TEST_CASE("sold out: a waiting shopper is told within 2 s, by polling and on its stream") {
    gateway gw;
    node_config cfg;
    cfg.extra = customer_auth_flags();
    cfg.extra.push_back(gw.flag());
    node_process node{cfg};
    api a{node};
    a.add_product({.sku = "ONE", .name = "One", .price_cents = 9900}, 1);
    const auto start = wall_ms() + 3000;
    put_sale(a, "last",
             {.skus = {"ONE"},
              .starts_at_ms = start,
              .ends_at_ms = start + 600000,
              .queue = true,
              .pass_ttl = "120"});
    shopper s1{a.store_port(), "s1"};
    shopper s2{a.store_port(), "s2"};
    const auto t1 = join_new(s1, "last");
    const auto t2 = join_new(s2, "last");

    // One unit: one pass at most. Whoever the lottery put first is admitted; the other waits.
    std::string buyer_ticket, waiter_ticket;
    shopper* buyer = nullptr;
    shopper* waiter = nullptr;
    REQUIRE(eventually(20s, [&] {
      auto x = ticket_of(parse_json(s1.ticket("last", t1).body));
      auto y = ticket_of(parse_json(s2.ticket("last", t2).body));
      if (admitted(x)) {
        buyer = &s1, waiter = &s2, buyer_ticket = t1, waiter_ticket = t2;
      } else if (admitted(y)) {
        buyer = &s2, waiter = &s1, buyer_ticket = t2, waiter_ticket = t1;
      }
      return buyer != nullptr;
    }));
    auto w = ticket_of(parse_json(waiter->ticket("last", waiter_ticket).body));
    CHECK(w.state == "waiting");
    CHECK(w.position == 1);
    const auto pass = ticket_of(parse_json(buyer->ticket("last", buyer_ticket).body)).pass;

    // The waiter follows its ticket on a stream: the first event at once.
    sse_client stream{a.store_port(),
                      shopper::queue_path("last") + "/" + waiter_ticket + "/stream"};
    REQUIRE(stream.status() == 200);
    CHECK(stream.header("Content-Type") == "text/event-stream");
    auto first = stream.next_named("position");
    CHECK(ticket_of(parse_json(first.data)).state == "waiting");
    check_ticket_shape(parse_json(first.data));

    // The buyer buys the unit.
    const auto cart = buyer->new_cart();
    auto held = buyer->add(cart, "ONE", 1, pass);
    REQUIRE_MESSAGE(held.status == 200, describe(held));
    auto order = buy(*buyer, cart, "sold-out-1");
    REQUIRE_MESSAGE(order.status == 201, describe(order));
    const auto sold = clock::now();

    // The waiter is told sold_out: by polling within the bound (the time is reported) ...
    ticket_state told;
    REQUIRE(eventually(10s, [&] {
      told = ticket_of(parse_json(waiter->ticket("last", waiter_ticket).body));
      return told.state == "sold_out";
    }));
    const auto took = std::chrono::duration<double>(clock::now() - sold).count();
    MESSAGE("sold_out seen by polling " << took << " s after the last unit sold (goal < 2 s)");
    CHECK(told.position == -1);
    CHECK(told.pass.empty());
    // ... and on the stream.
    for (;;) {
      auto ev = stream.next_named("position");
      auto t = ticket_of(parse_json(ev.data));
      if (t.state == "sold_out") {
        break;
      }
      CHECK(t.state == "waiting");
    }
    MESSAGE("sold_out on the stream " << std::chrono::duration<double>(clock::now() - sold).count()
                                      << " s after the last unit sold");
    auto st = member(get_sale(a, "last"), "stats");
    REQUIRE(st.is_object());
    CHECK(int_of(st, "sold") == 1);
    CHECK(member(st, "sold_out_at").is_string());

    // Streams of unknown tickets are 404 before any stream starts.
    sse_client forged{a.store_port(), shopper::queue_path("last") + "/t1-00/stream"};
    CHECK(forged.status() == 404);
  }

  TEST_CASE("holds expiring back into the queue: the next shopper is admitted") {
    node_config cfg;
    cfg.extra = customer_auth_flags();
    cfg.holds_ttl = "3s";
    node_process node{cfg};
    api a{node};
    a.add_product({.sku = "HX", .name = "Hx", .price_cents = 100}, 1);
    const auto start = wall_ms() + 3000;
    put_sale(a, "back",
             {.skus = {"HX"},
              .starts_at_ms = start,
              .ends_at_ms = start + 600000,
              .queue = true,
              .pass_ttl = "300"});
    shopper s1{a.store_port(), "h1"};
    shopper s2{a.store_port(), "h2"};
    const auto t1 = join_new(s1, "back");
    const auto t2 = join_new(s2, "back");
    shopper* first = nullptr;
    shopper* second = nullptr;
    std::string first_ticket, second_ticket;
    REQUIRE(eventually(20s, [&] {
      if (admitted(ticket_of(parse_json(s1.ticket("back", t1).body)))) {
        first = &s1, second = &s2, first_ticket = t1, second_ticket = t2;
      } else if (admitted(ticket_of(parse_json(s2.ticket("back", t2).body)))) {
        first = &s2, second = &s1, first_ticket = t2, second_ticket = t1;
      }
      return first != nullptr;
    }));
    const auto pass = ticket_of(parse_json(first->ticket("back", first_ticket).body)).pass;
    const auto cart = first->new_cart();
    auto held = first->add(cart, "HX", 1, pass);
    REQUIRE_MESSAGE(held.status == 200, describe(held));
    const auto hold_expires =
        *parse_rfc3339_ms(str_of(line_at(parse_json(held.body), "HX"), "hold_expires_at"));

    // While the hold lives, nothing is available but something is held: the second waits, not
    // sold out.
    auto w = ticket_of(parse_json(second->ticket("back", second_ticket).body));
    CHECK(w.state == "waiting");
    CHECK(w.position == 1);
    // The hold expires (holds.ttl 3 s) and the unit comes back: the second is admitted.
    auto got = wait_ticket(*second, "back", second_ticket, 30s, admitted, "admitted");
    CHECK(wall_ms() >= hold_expires);
    const auto cart2 = second->new_cart();
    auto r = second->add(cart2, "HX", 1, got.pass);
    CHECK_MESSAGE(r.status == 200, describe(r));
  }
}

} // namespace surge::itest
