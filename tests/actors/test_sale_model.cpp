// sale_model: a sale's waiting room decided and replayed, without actors or storage.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "surge/actors/errors.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/sale_model.hpp"

using namespace surge;
using surge::actors::errc;
using surge::actors::sale_model;
using surge::actors::ticket_state;

namespace {

constexpr int64_t start = 1'000'000;
constexpr int64_t ttl = 60'000;

/// A model and the events it applied (its journal).
struct journaled {
  sale_model m;
  proto::SaleBatch journal;

  void apply(const proto::SaleEvent& ev) {
    m.apply(ev);
    *journal.add_events() = ev;
  }
  /// Joins `customer` at `now`; returns its seq.
  uint64_t join(const std::string& customer, int64_t now = 10) {
    auto d = m.decide_join(customer, now);
    REQUIRE(d);
    if (*d) {
      apply(**d);
    }
    return *m.seq_of(customer);
  }
  void lottery(uint64_t seed, int64_t now = start) {
    auto ev = m.decide_lottery(seed, now);
    REQUIRE(ev);
    apply(*ev);
  }
  /// Admits as the inputs allow; returns how many.
  int64_t admit(const sale_model::admit_inputs& in) {
    const int64_t before = m.admitted();
    if (auto ev = m.decide_admit(in)) {
      apply(*ev);
    }
    return m.admitted() - before;
  }
};

std::string customer(int i) {
  return "customer-" + std::to_string(1'000'000'000 + i); // 20 bytes
}

/// Inputs with a fast fixed rate: only stock and the line limit admission.
sale_model::admit_inputs plenty(int64_t now, int64_t available, int64_t open = 0) {
  sale_model::admit_inputs in;
  in.now_ms = now;
  in.sale_rate = 1e9;
  in.since_last_s = 1;
  in.available = available;
  in.open_passes = open;
  return in;
}

std::vector<int64_t> ranks(const sale_model& m) {
  std::vector<int64_t> out;
  for (uint64_t s = 0; s < m.tickets(); ++s) {
    out.push_back(m.rank(s).value_or(-1));
  }
  return out;
}

int code(errc x) {
  return static_cast<int>(x);
}

} // namespace

TEST_CASE("lottery_order is a permutation fixed by its seed, and every order of 3 occurs") {
  const auto a = actors::lottery_order(42, 1000);
  CHECK(a == actors::lottery_order(42, 1000));
  CHECK(a != actors::lottery_order(43, 1000));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < sorted.size(); ++i) {
    REQUIRE(sorted[i] == i);
  }
  std::set<std::vector<uint32_t>> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    seen.insert(actors::lottery_order(seed, 3));
  }
  CHECK(seen.size() == 6);
  actors::lottery_rng rng{7};
  for (int i = 0; i < 1000; ++i) {
    CHECK(rng.below(10) < 10);
  }
}

TEST_CASE("the lottery ranks the pre-queue reproducibly from its seed, replay included") {
  journaled a, b, c;
  for (int i = 0; i < 200; ++i) {
    a.join(customer(i));
    b.join(customer(i));
    c.join(customer(i));
  }
  CHECK_FALSE(a.m.ranked());
  CHECK_FALSE(a.m.rank(0));
  CHECK_FALSE(a.m.position(0));
  a.lottery(0xfeedULL);
  b.lottery(0xfeedULL);
  c.lottery(0xbeefULL);
  CHECK(a.m.ranked());
  CHECK(a.m.lottery_seed() == 0xfeedULL);
  CHECK(a.m.prequeue() == 200);
  CHECK(ranks(a.m) == ranks(b.m));
  CHECK(ranks(a.m) != ranks(c.m));
  // Every rank once; the order is not the join order.
  auto r = ranks(a.m);
  auto sorted = r;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 200; ++i) {
    REQUIRE(sorted[static_cast<std::size_t>(i)] == i);
  }
  CHECK(r != sorted);
  CHECK_FALSE(a.m.decide_lottery(1, start + 5)); // once
  // Replaying the journal gives the same order.
  sale_model replayed;
  replayed.apply(a.journal);
  CHECK(ranks(replayed) == ranks(a.m));
  CHECK(replayed.lottery_seed() == a.m.lottery_seed());
}

TEST_CASE("after the lottery, arrivals are ranked after the pre-queue in join order") {
  journaled j;
  for (int i = 0; i < 10; ++i) {
    j.join(customer(i));
  }
  j.lottery(9);
  int64_t last = -1;
  for (int i = 10; i < 50; ++i) {
    const auto seq = j.join(customer(i), start + i);
    const auto r = j.m.rank(seq);
    REQUIRE(r);
    CHECK(*r == static_cast<int64_t>(seq));
    CHECK(*r > last);
    CHECK(*j.m.position(seq) == *r + 1);
    last = *r;
  }
  for (uint64_t s = 0; s < 10; ++s) {
    CHECK(*j.m.rank(s) < 10);
  }
}

TEST_CASE("a customer joins once: the second join is the same ticket, no event") {
  journaled j;
  const auto a = j.join("alice");
  const auto b = j.join("bob");
  auto again = j.m.decide_join("alice", 99);
  REQUIRE(again);
  CHECK_FALSE(*again);
  CHECK(j.join("alice") == a);
  CHECK(a != b);
  CHECK(j.m.tickets() == 2);
  CHECK(j.m.customer(a) == "alice");
  CHECK(j.m.customer(b) == "bob");
  CHECK_FALSE(j.m.seq_of("carol"));
  // Bad customer ids.
  for (const std::string& bad : {std::string{}, std::string(257, 'x'), std::string{"a\0b", 3}}) {
    auto d = j.m.decide_join(bad, 1);
    REQUIRE_FALSE(d);
    CHECK(d.error().code() == code(errc::invalid));
  }
  CHECK(j.m.decide_join(std::string(256, 'x'), 1));
}

TEST_CASE("a forged or foreign ticket maps to no join number") {
  const actors::id_keys ids{"sale-model-test"};
  const auto t = ids.ticket_for("s1", 5);
  CHECK(ids.ticket_seq("s1", t) == 5u);
  CHECK_FALSE(ids.ticket_seq("s2", t)); // another sale's
  auto forged = t;
  forged.back() = forged.back() == '0' ? '1' : '0';
  CHECK_FALSE(ids.ticket_seq("s1", forged));
  CHECK_FALSE(ids.ticket_seq("s1", "t5-"));
  CHECK_FALSE(ids.ticket_seq("s1", "t6" + t.substr(2))); // another seq under seq 5's MAC
}

TEST_CASE("positions never grow, whatever the admissions") {
  journaled j;
  for (int i = 0; i < 300; ++i) {
    j.join(customer(i));
  }
  j.lottery(1234);
  std::vector<int64_t> last(5000, INT64_MAX);
  actors::lottery_rng rng{5}; // the test's own dice
  int64_t now = start;
  int next = 300;
  for (int round = 0; round < 400; ++round) {
    now += 250;
    if (rng.below(2) == 0) {
      for (uint64_t k = rng.below(6); k > 0; --k) {
        j.join(customer(next++), now);
      }
    }
    auto in = plenty(now, static_cast<int64_t>(rng.below(5)), 0);
    in.sale_rate = static_cast<double>(rng.below(20));
    in.since_last_s = 0.25 * static_cast<double>(rng.below(8));
    j.admit(in);
    for (uint64_t s = 0; s < j.m.tickets(); ++s) {
      const auto p = j.m.position(s);
      const auto at = j.m.admitted_at(s);
      REQUIRE(p.has_value() != at.has_value()); // ranked: waiting or admitted
      if (p) {
        REQUIRE(*p >= 1);
        REQUIRE(*p <= last[s]);
        last[s] = *p;
      } else {
        last[s] = 0;
      }
    }
  }
  CHECK(j.m.admitted() > 0);
  CHECK(j.m.admitted() <= static_cast<int64_t>(j.m.tickets()));
}

TEST_CASE("admission: the rate's budget, the stock not promised to open passes, the line") {
  journaled j;
  for (int i = 0; i < 1000; ++i) {
    j.join(customer(i));
  }
  // Nothing before the lottery.
  CHECK(j.m.admit_budget(plenty(start, 100)) == 0);
  j.lottery(77);
  // Rate: 4/s over 250 ms is one; 2/s over 250 ms is none yet; a pause counts up to 1 s.
  sale_model::admit_inputs in = plenty(start, 1000);
  in.sale_rate = 4;
  in.since_last_s = 0.25;
  CHECK(j.m.admit_budget(in) == 1);
  in.sale_rate = 2;
  CHECK(j.m.admit_budget(in) == 0);
  in.since_last_s = 0.5;
  CHECK(j.m.admit_budget(in) == 1);
  in.sale_rate = 10;
  in.since_last_s = 3600;
  CHECK(j.m.admit_budget(in) == 10);
  in.sale_rate = 0.2; // one shopper every 5 s: the pause counts up to 5 s
  in.since_last_s = 3600;
  CHECK(j.m.admit_budget(in) == 1);
  in.sale_rate = 0; // auto: the controller's rate
  in.auto_rate = 50;
  in.since_last_s = 1;
  CHECK(j.m.admit_budget(in) == 50);
  in.auto_rate = 0;
  CHECK(j.m.admit_budget(in) == 0);

  // 100 units left: at most 100 passes, whatever the rate.
  int64_t now = start;
  CHECK(j.admit(plenty(now, 100, 0)) == 100);
  CHECK(j.admit(plenty(now += 250, 100, 100)) == 0);
  // 60 admitted shoppers hold a unit each (their passes used): 40 available, 40 open.
  CHECK(j.admit(plenty(now += 250, 40, 40)) == 0);
  // Their holds expire back into stock: 100 available, 40 passes still open: 60 more.
  CHECK(j.admit(plenty(now += 250, 100, 40)) == 60);
  CHECK(j.m.admitted() == 160);
  // Open passes beyond the stock (stale figures) admit nobody.
  CHECK(j.admit(plenty(now += 250, 10, 50)) == 0);
  // Never beyond the tickets.
  CHECK(j.admit(plenty(now += 250, 1'000'000)) == 840);
  CHECK(j.m.admitted() == 1000);
  CHECK(j.admit(plenty(now += 250, 1'000'000)) == 0);
  CHECK_FALSE(j.m.decide_admit(plenty(now, 1'000'000)));
}

TEST_CASE("admission times: admitted_at and admitted_as_of by binary search") {
  journaled j;
  for (int i = 0; i < 10; ++i) {
    j.join(customer(i));
  }
  j.lottery(3);
  CHECK(j.m.admitted_as_of(start + 1'000'000) == 0);
  j.admit(plenty(start + 100, 3)); // ranks 0..2 at +100
  j.admit(plenty(start + 200, 2)); // ranks 3..4 at +200
  j.admit(plenty(start + 300, 4)); // ranks 5..8 at +300
  CHECK(j.m.admitted() == 9);
  CHECK(j.m.admitted_as_of(start + 99) == 0);
  CHECK(j.m.admitted_as_of(start + 100) == 3);
  CHECK(j.m.admitted_as_of(start + 250) == 5);
  CHECK(j.m.admitted_as_of(start + 300) == 9);
  for (uint64_t s = 0; s < 10; ++s) {
    const int64_t r = *j.m.rank(s);
    const auto at = j.m.admitted_at(s);
    if (r < 3) {
      CHECK(at == start + 100);
    } else if (r < 5) {
      CHECK(at == start + 200);
    } else if (r < 9) {
      CHECK(at == start + 300);
    } else {
      CHECK_FALSE(at);
      CHECK(j.m.position(s) == 1);
    }
  }
}

TEST_CASE("ticket states: waiting, sold_out and back, admitted until its pass expires, expired") {
  journaled j;
  const auto a = j.join("a");
  const auto b = j.join("b");
  const int64_t end = start + 3'600'000;
  auto ctx = [&](int64_t now, bool sold_out) {
    return sale_model::ticket_context{now, ttl, sold_out, now >= end};
  };
  CHECK(j.m.state_of(a, ctx(10, false)) == ticket_state::waiting); // before the lottery
  j.lottery(11);
  const uint64_t first = *j.m.rank(a) == 0 ? a : b;
  const uint64_t second = first == a ? b : a;
  j.admit(plenty(start + 1000, 1)); // the first in line, at start + 1 s
  CHECK(j.m.state_of(first, ctx(start + 1000, false)) == ticket_state::admitted);
  CHECK(j.m.state_of(first, ctx(start + 1000 + ttl - 1, false)) == ticket_state::admitted);
  CHECK(j.m.state_of(first, ctx(start + 1000 + ttl, false)) == ticket_state::expired);
  CHECK(j.m.state_of(first, ctx(start + 2000, true)) == ticket_state::admitted); // sold out
  CHECK(j.m.state_of(second, ctx(start + 2000, false)) == ticket_state::waiting);
  CHECK(j.m.state_of(second, ctx(start + 2000, true)) == ticket_state::sold_out);
  CHECK(j.m.state_of(second, ctx(start + 2250, false)) == ticket_state::waiting); // stock back
  CHECK(j.m.position(second) == 1);
  CHECK(j.m.state_of(second, ctx(end, false)) == ticket_state::expired); // the sale ended
  CHECK(j.m.state_of(second, ctx(end - 1, false)) == ticket_state::waiting);
}

TEST_CASE("a snapshot round trip gives the same model, and both go on alike") {
  journaled j;
  for (int i = 0; i < 500; ++i) {
    j.join(customer(i));
  }
  j.lottery(0x1234'5678'9abc'def0ULL);
  for (int i = 500; i < 700; ++i) {
    j.join(customer(i), start + i);
  }
  j.admit(plenty(start + 1000, 37));
  j.admit(plenty(start + 2000, 100));
  const auto snap = j.m.snapshot();
  sale_model copy{snap};
  CHECK(copy.snapshot().SerializeAsString() == snap.SerializeAsString());
  CHECK(ranks(copy) == ranks(j.m));
  CHECK(copy.admitted() == j.m.admitted());
  CHECK(copy.lottery_seed() == j.m.lottery_seed());
  for (uint64_t s = 0; s < j.m.tickets(); ++s) {
    REQUIRE(copy.customer(s) == j.m.customer(s));
    REQUIRE(copy.seq_of(j.m.customer(s)) == s);
    REQUIRE(copy.admitted_at(s) == j.m.admitted_at(s));
    REQUIRE(copy.position(s) == j.m.position(s));
  }
  // The snapshot plus the journal after it equals the whole journal.
  journaled more;
  more.m = copy;
  for (int i = 700; i < 720; ++i) {
    more.join(customer(i), start + 5000);
    j.join(customer(i), start + 5000);
  }
  more.admit(plenty(start + 6000, 50));
  j.admit(plenty(start + 6000, 50));
  sale_model replayed{snap};
  replayed.apply(more.journal);
  CHECK(replayed.snapshot().SerializeAsString() == j.m.snapshot().SerializeAsString());
  sale_model full;
  full.apply(j.journal);
  CHECK(full.snapshot().SerializeAsString() == j.m.snapshot().SerializeAsString());
  // An empty model too.
  CHECK(sale_model{sale_model{}.snapshot()}.tickets() == 0);
}

TEST_CASE("the auto rate: additive increase while rate-bound, halved when over budget") {
  using actors::auto_admission;
  double r = auto_admission::start;
  r = auto_admission::next(r, false, true);
  CHECK(r == auto_admission::start + auto_admission::step);
  CHECK(auto_admission::next(r, false, false) == r); // not bound by the rate: no increase
  CHECK(auto_admission::next(r, true, true) == r / 2);
  for (int i = 0; i < 20; ++i) {
    r = auto_admission::next(r, true, false);
  }
  CHECK(r == auto_admission::floor);
  for (int i = 0; i < 10'000; ++i) {
    r = auto_admission::next(r, false, true);
  }
  CHECK(r == auto_admission::ceiling);
}

TEST_CASE("a million tickets fit in well under 120 bytes each") {
  constexpr int n = 1'000'000;
  sale_model m;
  proto::SaleEvent ev;
  ev.set_at_ms(10);
  for (int i = 0; i < n / 2; ++i) {
    ev.set_joined(customer(i));
    m.apply(ev);
  }
  ev.Clear();
  ev.set_lottery(99);
  m.apply(ev); // half of them in the pre-queue
  for (int i = n / 2; i < n; ++i) {
    ev.set_joined(customer(i));
    m.apply(ev);
  }
  REQUIRE(m.tickets() == static_cast<uint64_t>(n));
  const double per_ticket = static_cast<double>(m.bytes_used()) / n;
  MESSAGE("bytes per ticket: " << per_ticket);
  CHECK(per_ticket < 120);
  CHECK(per_ticket > 20); // the ids themselves are counted
  // Every customer is found again, and a stranger is not.
  for (int i = 0; i < n; i += 997) {
    REQUIRE(m.seq_of(customer(i)) == static_cast<uint64_t>(i));
  }
  CHECK_FALSE(m.seq_of("customer-0000000000x"));
}
