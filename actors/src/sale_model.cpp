#include "surge/actors/sale_model.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "surge/actors/errors.hpp"

namespace surge::actors {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

constexpr std::size_t min_slots = 16;

} // namespace

lottery_rng::lottery_rng(uint64_t seed) {
  for (auto& s : s_) {
    s = splitmix64(seed);
  }
}

uint64_t lottery_rng::next() {
  const uint64_t out = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return out;
}

uint64_t lottery_rng::below(uint64_t n) {
  unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
  auto low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n; // 2^64 mod n
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

std::vector<uint32_t> lottery_order(uint64_t seed, uint32_t n) {
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) {
    order[i] = i;
  }
  lottery_rng rng{seed};
  for (uint32_t i = n; i > 1; --i) {
    const auto j = static_cast<uint32_t>(rng.below(i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

double auto_admission::next(double rate, bool over, bool rate_bound) {
  if (over) {
    rate /= 2;
  } else if (rate_bound) {
    rate += step;
  }
  return std::clamp(rate, floor, ceiling);
}

const char* to_string(ticket_state s) {
  switch (s) {
  case ticket_state::waiting:
    return "waiting";
  case ticket_state::admitted:
    return "admitted";
  case ticket_state::sold_out:
    return "sold_out";
  case ticket_state::expired:
    return "expired";
  }
  return "waiting";
}

sale_model::sale_model(const proto::SaleSnapshot& snap)
    : arena_(snap.customers())
    , ranked_(snap.ranked())
    , seed_(snap.lottery_seed())
    , lottery_at_ms_(snap.lottery_at_ms()) {
  ends_.reserve(static_cast<std::size_t>(snap.customer_ends_size()));
  uint32_t last = 0;
  for (uint32_t end : snap.customer_ends()) {
    // A snapshot is written by snapshot() alone; keep offsets inside the arena regardless.
    end = std::clamp<uint32_t>(end, last, static_cast<uint32_t>(arena_.size()));
    ends_.push_back(end);
    last = end;
  }
  std::size_t slots = min_slots;
  while (slots * 3 < (ends_.size() + 1) * 4) {
    slots *= 2;
  }
  rehash(slots);
  if (ranked_) {
    prequeue_ = std::min<uint64_t>(snap.prequeue(), tickets());
    run_lottery();
  }
  const int n = std::min(snap.step_through_size(), snap.step_at_ms_size());
  steps_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    steps_.push_back(step{snap.step_through(i), snap.step_at_ms(i)});
  }
  admitted_ = steps_.empty()
                  ? 0
                  : std::min<int64_t>(steps_.back().through, static_cast<int64_t>(tickets()));
}

uint64_t sale_model::hash_of(std::string_view customer) const {
  return std::hash<std::string_view>{}(customer);
}

std::string_view sale_model::customer(uint64_t seq) const {
  const uint32_t begin = seq == 0 ? 0 : ends_[seq - 1];
  return std::string_view{arena_}.substr(begin, ends_[seq] - begin);
}

std::optional<uint64_t> sale_model::seq_of(std::string_view customer) const {
  if (slots_.empty()) {
    return std::nullopt;
  }
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash_of(customer) & mask;; i = (i + 1) & mask) {
    const uint32_t s = slots_[i];
    if (s == 0) {
      return std::nullopt;
    }
    if (this->customer(s - 1) == customer) {
      return uint64_t{s - 1};
    }
  }
}

void sale_model::rehash(std::size_t slots) {
  slots_.assign(slots, 0);
  const std::size_t mask = slots - 1;
  for (uint32_t seq = 0; seq < ends_.size(); ++seq) {
    std::size_t i = hash_of(customer(seq)) & mask;
    while (slots_[i] != 0) {
      i = (i + 1) & mask;
    }
    slots_[i] = seq + 1;
  }
}

void sale_model::index(uint32_t seq) {
  if (slots_.size() * 3 < (ends_.size() + 1) * 4) { // would pass 3/4 full
    rehash(std::max(min_slots, slots_.size() * 2));
    return; // rehash() indexed every seq, this one included
  }
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash_of(customer(seq)) & mask;
  while (slots_[i] != 0) {
    i = (i + 1) & mask;
  }
  slots_[i] = seq + 1;
}

void sale_model::add_customer(std::string_view customer) {
  arena_.append(customer);
  ends_.push_back(static_cast<uint32_t>(arena_.size()));
  index(static_cast<uint32_t>(ends_.size() - 1));
}

void sale_model::run_lottery() {
  const auto n = static_cast<uint32_t>(prequeue_);
  const auto order = lottery_order(seed_, n);
  rank_of_.assign(n, 0);
  for (uint32_t r = 0; r < n; ++r) {
    rank_of_[order[r]] = r;
  }
}

std::optional<int64_t> sale_model::rank(uint64_t seq) const {
  if (!ranked_) {
    return std::nullopt;
  }
  if (seq < prequeue_) {
    return int64_t{rank_of_[seq]};
  }
  return static_cast<int64_t>(seq);
}

std::optional<int64_t> sale_model::position(uint64_t seq) const {
  const auto r = rank(seq);
  if (!r || *r < admitted_) {
    return std::nullopt;
  }
  return *r - admitted_ + 1;
}

std::optional<int64_t> sale_model::admitted_at(uint64_t seq) const {
  const auto r = rank(seq);
  if (!r || *r >= admitted_) {
    return std::nullopt;
  }
  // The first step whose prefix contains rank r.
  auto i = std::upper_bound(steps_.begin(), steps_.end(), *r,
                            [](int64_t rank, const step& s) { return rank < s.through; });
  return i == steps_.end() ? steps_.back().at_ms : i->at_ms;
}

int64_t sale_model::admitted_as_of(int64_t t_ms) const {
  auto i = std::partition_point(steps_.begin(), steps_.end(),
                                [t_ms](const step& s) { return s.at_ms <= t_ms; });
  return i == steps_.begin() ? 0 : std::prev(i)->through;
}

ticket_state sale_model::state_of(uint64_t seq, const ticket_context& c) const {
  if (const auto at = admitted_at(seq)) {
    return c.now_ms < *at + c.pass_ttl_ms ? ticket_state::admitted : ticket_state::expired;
  }
  if (c.ended) {
    return ticket_state::expired;
  }
  return c.sold_out ? ticket_state::sold_out : ticket_state::waiting;
}

caf::expected<std::optional<proto::SaleEvent>> sale_model::decide_join(std::string_view customer,
                                                                       int64_t now_ms) const {
  if (customer.empty() || customer.size() > max_customer ||
      customer.find('\0') != std::string_view::npos) {
    return make_error(errc::invalid, "a customer id of 1.." + std::to_string(max_customer) +
                                         " bytes without NUL is needed to join");
  }
  if (seq_of(customer)) {
    return std::optional<proto::SaleEvent>{};
  }
  if (tickets() >= max_tickets ||
      arena_.size() + customer.size() > std::numeric_limits<uint32_t>::max()) {
    return make_error(errc::unavailable, "the queue is full");
  }
  proto::SaleEvent ev;
  ev.set_at_ms(now_ms);
  ev.set_joined(std::string{customer});
  return std::optional<proto::SaleEvent>{std::move(ev)};
}

std::optional<proto::SaleEvent> sale_model::decide_lottery(uint64_t seed, int64_t now_ms) const {
  if (ranked_) {
    return std::nullopt;
  }
  proto::SaleEvent ev;
  ev.set_at_ms(now_ms);
  ev.set_lottery(seed);
  return ev;
}

int64_t sale_model::admit_budget(const admit_inputs& in) const {
  if (!ranked_) {
    return 0;
  }
  const int64_t waiting = static_cast<int64_t>(tickets()) - admitted_;
  const double rate = in.sale_rate > 0 ? in.sale_rate : in.auto_rate;
  if (waiting <= 0 || !(rate > 0)) {
    return 0;
  }
  // Time without admissions counts up to a second (or one shopper's interval at slow rates):
  // a pause never turns into a burst.
  const double window = std::max(1.0, 1.0 / rate);
  const double budget = std::floor(rate * std::clamp(in.since_last_s, 0.0, window));
  const int64_t by_rate =
      budget >= 9.0e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(budget);
  const int64_t by_stock =
      std::max<int64_t>(0, in.available - std::max<int64_t>(0, in.open_passes));
  return std::min({by_rate, by_stock, waiting});
}

std::optional<proto::SaleEvent> sale_model::decide_admit(const admit_inputs& in) const {
  const int64_t n = admit_budget(in);
  if (n <= 0) {
    return std::nullopt;
  }
  proto::SaleEvent ev;
  ev.set_at_ms(in.now_ms);
  ev.set_admitted(admitted_ + n);
  return ev;
}

void sale_model::apply(const proto::SaleEvent& ev) {
  switch (ev.kind_case()) {
  case proto::SaleEvent::kJoined:
    // Decided events never repeat a customer nor pass the limits; a replay stays total.
    if (!seq_of(ev.joined()) && tickets() < max_tickets &&
        arena_.size() + ev.joined().size() <= std::numeric_limits<uint32_t>::max()) {
      add_customer(ev.joined());
    }
    break;
  case proto::SaleEvent::kLottery:
    if (!ranked_) {
      ranked_ = true;
      seed_ = ev.lottery();
      lottery_at_ms_ = ev.at_ms();
      prequeue_ = tickets();
      run_lottery();
    }
    break;
  case proto::SaleEvent::kAdmitted: {
    const int64_t through = std::min<int64_t>(ev.admitted(), static_cast<int64_t>(tickets()));
    if (ranked_ && through > admitted_) {
      // Steps stay ordered by time too (a clock that stepped back counts as no time).
      const int64_t at = steps_.empty() ? ev.at_ms() : std::max(ev.at_ms(), steps_.back().at_ms);
      steps_.push_back(step{through, at});
      admitted_ = through;
    }
    break;
  }
  case proto::SaleEvent::KIND_NOT_SET:
    break;
  }
}

void sale_model::apply(const proto::SaleBatch& batch) {
  for (const auto& ev : batch.events()) {
    apply(ev);
  }
}

proto::SaleSnapshot sale_model::snapshot() const {
  proto::SaleSnapshot s;
  s.set_tickets(tickets());
  s.set_customers(arena_);
  s.mutable_customer_ends()->Reserve(static_cast<int>(ends_.size()));
  for (uint32_t e : ends_) {
    s.add_customer_ends(e);
  }
  s.set_ranked(ranked_);
  s.set_lottery_seed(seed_);
  s.set_lottery_at_ms(lottery_at_ms_);
  s.set_prequeue(ranked_ ? prequeue_ : 0);
  for (const auto& st : steps_) {
    s.add_step_through(st.through);
    s.add_step_at_ms(st.at_ms);
  }
  return s;
}

std::size_t sale_model::bytes_used() const {
  const std::size_t arena = arena_.capacity() > 15 ? arena_.capacity() + 1 : 0; // + its NUL
  return sizeof(*this) + arena + ends_.capacity() * sizeof(uint32_t) +
         slots_.capacity() * sizeof(uint32_t) + rank_of_.capacity() * sizeof(uint32_t) +
         steps_.capacity() * sizeof(step);
}

} // namespace surge::actors
