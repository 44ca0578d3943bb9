#include "surge/actors/sale.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <unordered_map>

#include "entity.hpp"
#include "entity_load.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/sale_model.hpp"
#include "surge/config/log.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::actors {
namespace {

/// What activation read from storage, handed from a pool thread to the actor.
using sale_loaded = detail::entity_loaded<proto::SaleSnapshot, proto::SaleBatch>;

} // namespace
} // namespace surge::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::sale_loaded)

namespace surge::actors {
namespace {

using sale_impl = sale_actor::extend<caf::reacts_to<loaded_atom, sale_loaded>,
                                     caf::reacts_to<committed_atom, uint64_t, caf::error>,
                                     caf::reacts_to<tick_atom>>;

/// How often the SKUs' stock is read and admission decided.
constexpr int64_t read_interval_ms = 250;
/// A warm_atom keeps the actor reading (and active) this long.
constexpr int64_t warm_window_ms = 5000;
/// The admission rate shown and used for eta_s: an EWMA over about this many seconds.
constexpr double rate_window_s = 10;

/// Runs once a batch's fate is known: nullptr on commit, the error otherwise.
using completion = std::function<void(const caf::error*)>;

struct batch {
  proto::SaleBatch events;
  std::vector<completion> done;
  std::optional<persistence::snapshot> snap;
};

/// The last stock read of one SKU of the sale (soft state).
struct sku_read {
  bool in_flight = false;
  bool answered = false;       ///< answered at least once since activation
  int64_t sent_ms = 0;         ///< wall clock when the read in flight was sent
  int64_t figures_sent_ms = 0; ///< wall clock when the read behind the figures was sent
  std::chrono::steady_clock::time_point sent{};
  int64_t available = 0;
  int64_t held = 0;
  int64_t sold = 0;
};

/// A pass reported used (soft state): it no longer needs a unit counted for it.
struct used_pass {
  int64_t expires_ms = 0;
  int64_t used_ms = 0;
};

struct sale_state {
  static inline const char* name = "surge.sale";

  // Set at spawn.
  std::string sale_id;
  std::string stream;
  std::shared_ptr<const entity_env> env;
  sale_directory* dir = nullptr;
  sku_directory* skus = nullptr;
  entity_fence fence;

  // Owned by the actor: the journaled state.
  sale_model model; ///< committed state + the batch in flight + the pending batch
  uint64_t seq = 0; ///< the last journal seq handed to the journal
  batch pending;    ///< filling while `flight` commits
  batch flight;
  bool in_flight = false;
  std::size_t since_snapshot = 0; ///< events journaled since the last snapshot
  detail::entity_life life;

  // Soft state (not journaled: rebuilt by the next incarnation's reads).
  std::unordered_map<std::string, sku_read> reads;
  int64_t next_read_ms = 0;
  int64_t round_max_latency_ms = 0; ///< of the reads answered since the last round
  int round_reads = 0;              ///< reads answered (or failed) since the last round
  bool round_failed = false;        ///< a read failed or timed out since the last round
  double auto_rate = auto_admission::start;
  int64_t last_admit_ms = 0; ///< the last admission (or activation / the lottery)
  double rate_ewma = 0;
  int64_t ewma_at_ms = 0;
  int64_t ewma_admitted = 0;
  std::unordered_map<uint64_t, used_pass> used; ///< by seq
  int64_t last_warm_ms = std::numeric_limits<int64_t>::min() / 2;
  int64_t sold_out_at_ms = 0; ///< 0: not sold out
  bool warned_no_ids = false;
};

using self_ptr = sale_impl::stateful_pointer<sale_state>;

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("sales");
  return lg;
}

int64_t now_of(const sale_state& st) {
  return st.env->now_ms();
}

sale_index::sale_ptr definition(const sale_state& st) {
  return st.env->sales != nullptr ? st.env->sales->find(st.sale_id) : nullptr;
}

std::string ticket_of(const sale_state& st, uint64_t seq) {
  return st.env->ids ? st.env->ids->ticket_for(st.sale_id, seq) : "t" + std::to_string(seq);
}

/// The seq of `ticket` when it is one of this sale's issued tickets, else nullopt.
std::optional<uint64_t> seq_of_ticket(const sale_state& st, const std::string& ticket) {
  std::optional<uint64_t> seq;
  if (st.env->ids) {
    seq = st.env->ids->ticket_seq(st.sale_id, ticket);
  } else if (ticket.size() > 1 && ticket.size() <= 21 && ticket[0] == 't' &&
             ticket.find_first_not_of("0123456789", 1) == std::string::npos) {
    seq = std::strtoull(ticket.c_str() + 1, nullptr, 10);
  }
  if (!seq || *seq >= st.model.tickets()) {
    return std::nullopt;
  }
  return seq;
}

/// Every SKU of the sale answered, with nothing available and nothing held.
bool sold_out(const sale_state& st, const sale_record& def) {
  if (def.skus.empty()) {
    return false;
  }
  for (const auto& sku : def.skus) {
    auto i = st.reads.find(sku);
    if (i == st.reads.end() || !i->second.answered || i->second.available > 0 ||
        i->second.held > 0) {
      return false;
    }
  }
  return true;
}

bool warm(const sale_state& st, const sale_record& def) {
  for (const auto& sku : def.skus) {
    auto i = st.reads.find(sku);
    if (i == st.reads.end() || !i->second.answered) {
      return false;
    }
  }
  return true;
}

/// The stock figures summed over the SKUs that answered, and the oldest read behind them.
struct stock_sum {
  int64_t available = 0;
  int64_t held = 0;
  int64_t sold = 0;
  int64_t as_of_ms = std::numeric_limits<int64_t>::max();
};

stock_sum stock_of(const sale_state& st, const sale_record& def) {
  stock_sum s;
  for (const auto& sku : def.skus) {
    auto i = st.reads.find(sku);
    if (i == st.reads.end() || !i->second.answered) {
      s.as_of_ms = std::numeric_limits<int64_t>::min();
      continue;
    }
    s.available += i->second.available;
    s.held += i->second.held;
    s.sold += i->second.sold;
    s.as_of_ms = std::min(s.as_of_ms, i->second.figures_sent_ms);
  }
  return s;
}

/// The rate eta_s divides by: what admissions did lately, else the sale's fixed rate; 0: unknown.
double eta_rate(const sale_state& st, const sale_record& def) {
  if (st.rate_ewma >= 0.01) {
    return st.rate_ewma;
  }
  return def.admission_rate > 0 ? def.admission_rate : 0;
}

bool reading(const sale_state& st, const sale_record& def, int64_t now) {
  return now < def.ends_at_ms &&
         (now - st.last_warm_ms < warm_window_ms || now >= def.starts_at_ms);
}

ticket_view view_of(sale_state& st, uint64_t seq, const sale_record& def, int64_t now,
                    bool created) {
  const auto& m = st.model;
  ticket_view v;
  v.sale_id = st.sale_id;
  v.ticket = ticket_of(st, seq);
  v.created = created;
  const bool ended = now >= def.ends_at_ms;
  const auto state = m.state_of(seq, {now, def.pass_ttl_ms, sold_out(st, def), ended});
  v.state = to_string(state);
  if (const auto r = m.rank(seq)) {
    v.rank = *r;
  }
  if (const auto at = m.admitted_at(seq)) {
    v.admitted_at_ms = *at;
  }
  switch (state) {
  case ticket_state::admitted:
    v.eta_s = 0;
    v.pass_expires_at_ms = v.admitted_at_ms + def.pass_ttl_ms;
    if (st.env->ids) {
      v.pass = st.env->ids->sign_pass(
          sale_pass{st.sale_id, std::string{m.customer(seq)}, v.ticket, v.pass_expires_at_ms});
    } else if (!st.warned_no_ids) {
      st.warned_no_ids = true;
      logger()->warn("{}: no ids.secret keys: admitted tickets get no pass", st.stream);
    }
    break;
  case ticket_state::waiting:
  case ticket_state::sold_out:
    if (const auto p = m.position(seq)) {
      v.position = *p;
      const double rate = eta_rate(st, def);
      if (state == ticket_state::waiting && rate > 0) {
        v.eta_s = static_cast<int64_t>(std::ceil(static_cast<double>(*p) / rate));
      }
    } else if (!m.ranked() && state == ticket_state::waiting) {
      v.eta_s = std::max<int64_t>(0, (def.starts_at_ms - now + 999) / 1000);
    }
    break;
  case ticket_state::expired:
    break;
  }
  return v;
}

std::string hex64(uint64_t x) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, x >>= 4) {
    out[static_cast<std::size_t>(i)] = digits[x & 0xf];
  }
  return out;
}

queue_summary summary_of(const sale_state& st, const sale_record& def, int64_t now) {
  const auto& m = st.model;
  queue_summary s;
  s.sale_id = st.sale_id;
  const bool is_sold_out = sold_out(st, def);
  if (now >= def.ends_at_ms) {
    s.phase = "ended";
  } else if (now >= def.starts_at_ms) {
    s.phase = is_sold_out ? "sold_out" : "open";
  } else {
    s.phase = now - st.last_warm_ms < warm_window_ms ? "warming" : "scheduled";
  }
  s.ranked = m.ranked();
  s.tickets = static_cast<int64_t>(m.tickets());
  s.admitted = m.admitted();
  s.waiting = now >= def.ends_at_ms || is_sold_out ? 0 : s.tickets - s.admitted;
  s.admit_rate = st.rate_ewma;
  s.pass_ttl_ms = def.pass_ttl_ms;
  const auto sum = stock_of(st, def);
  s.available = sum.available;
  s.held = sum.held;
  s.sold = sum.sold;
  s.sold_out_at_ms = is_sold_out ? st.sold_out_at_ms : 0;
  if (m.ranked()) {
    s.lottery_seed = hex64(m.lottery_seed());
  }
  s.warm = warm(st, def);
  s.updated_at_ms = now;
  return s;
}

void schedule_tick(self_ptr self);

/// Hands the pending batch to the journal unless one is in flight.
void flush(self_ptr self) {
  auto& st = self->state;
  if (st.in_flight || st.pending.events.events_size() == 0) {
    return;
  }
  st.flight = std::move(st.pending);
  st.pending = batch{};
  const uint64_t seq = ++st.seq;
  persistence::commit_request req;
  req.batch = persistence::journal_batch{st.stream, seq, st.flight.events.SerializeAsString()};
  req.shard = st.fence.shard;
  req.epoch = st.fence.epoch;
  if (req.shard >= 0) {
    req.node = st.env->opts.node_id;
  }
  // As a SKU does: every `snapshot_every` events, but never more often than the snapshot's own
  // size in events (it costs O(tickets)), so the cost per event stays constant.
  st.since_snapshot += static_cast<std::size_t>(st.flight.events.events_size());
  const auto size = static_cast<std::size_t>(st.model.tickets());
  if (st.since_snapshot >= std::max<std::size_t>(st.env->opts.snapshot_every, size)) {
    st.since_snapshot = 0;
    req.snap = persistence::snapshot{st.stream, seq, st.model.snapshot().SerializeAsString()};
    st.flight.snap = req.snap;
  }
  st.in_flight = true;
  auto h = caf::actor_cast<sale_impl>(self);
  st.env->journal->submit(std::move(req), [h, seq](const caf::error& err) {
    caf::anon_send(h, committed_atom::value, seq, err);
  });
}

/// Appends an applied event to the pending batch; `done` runs when that batch's fate is known.
void append(self_ptr self, proto::SaleEvent ev, completion done) {
  auto& st = self->state;
  *st.pending.events.add_events() = std::move(ev);
  if (done) {
    st.pending.done.push_back(std::move(done));
  }
  flush(self);
}

/// Runs `done` once everything the current state reflects is committed.
void after_durable(self_ptr self, completion done) {
  auto& st = self->state;
  if (st.pending.events.events_size() > 0) {
    st.pending.done.push_back(std::move(done));
  } else if (st.in_flight) {
    st.flight.done.push_back(std::move(done));
  } else {
    done(nullptr);
  }
}

/// Storage failed under us: answer everyone, then quit; the next incarnation reloads the truth.
void fail_all(self_ptr self, const caf::error& cause) {
  auto& st = self->state;
  auto err = make_error(errc::unavailable, "journal commit failed: " + caf::to_string(cause));
  for (auto* b : {&st.flight, &st.pending}) {
    for (auto& done : b->done) {
      done(&err);
    }
    b->done.clear();
  }
  self->quit(err);
}

/// False (commands are refused, nothing is decided) when this node's lease on the shard ran out.
bool lease_live(const sale_state& st) {
  return st.fence.shard < 0 || st.env->cluster == nullptr ||
         st.env->cluster->serving(static_cast<uint32_t>(st.fence.shard), st.fence.epoch);
}

caf::error lease_lost(const sale_state& st) {
  return make_error(errc::unavailable, "this node no longer serves " + st.stream);
}

/// At or after the start: journals the lottery (seeded from getrandom) unless it ran, so that
/// every later join is ordered after the pre-queue.
void maybe_lottery(self_ptr self, const sale_record& def, int64_t now) {
  auto& st = self->state;
  if (st.model.ranked() || now < def.starts_at_ms || st.life.handing_off || !lease_live(st)) {
    return;
  }
  const std::string hex = random_id("").substr(0, 16); // 64 bits from getrandom
  const uint64_t seed = std::strtoull(hex.c_str(), nullptr, 16);
  auto ev = st.model.decide_lottery(seed, now);
  if (!ev) {
    return;
  }
  st.model.apply(*ev);
  logger()->info("{}: lottery over {} tickets, seed {}", st.stream, st.model.prequeue(),
                 hex64(seed));
  append(self, std::move(*ev), nullptr);
  st.last_admit_ms = now;
  schedule_tick(self); // reading starts now
}

/// Open passes: admitted within the pass TTL, minus those reported used before the stock figures
/// at hand were read (a pass used after them still counts: its hold is not in them yet).
int64_t open_passes(sale_state& st, const sale_record& def, int64_t now, int64_t figures_ms) {
  const auto& m = st.model;
  int64_t open = m.admitted() - m.admitted_as_of(now - def.pass_ttl_ms);
  for (auto i = st.used.begin(); i != st.used.end();) {
    if (i->second.expires_ms <= now) {
      i = st.used.erase(i);
      continue;
    }
    if (i->second.used_ms < figures_ms) {
      --open;
    }
    ++i;
  }
  return std::max<int64_t>(open, 0);
}

/// Notes when the sale became sold out (figures just read), or that it no longer is.
void track_sold_out(sale_state& st, const sale_record& def, int64_t now) {
  if (!sold_out(st, def)) {
    st.sold_out_at_ms = 0;
  } else if (st.sold_out_at_ms == 0) {
    st.sold_out_at_ms = now;
    logger()->info("{}: sold out ({} tickets, {} admitted)", st.stream, st.model.tickets(),
                   st.model.admitted());
  }
}

/// The figures of a read that just came back changed: the sale may be sold out, or no more.
void figures_changed(sale_state& st) {
  if (const auto def = definition(st)) {
    track_sold_out(st, *def, now_of(st));
  }
}

/// One round (every read_interval_ms while reading): the auto controller, the admission decision
/// with the figures at hand, the admission rate, the summary; then the next reads.
void read_round(self_ptr self, const sale_record& def, int64_t now) {
  auto& st = self->state;
  auto& m = st.model;
  const auto sum = stock_of(st, def);
  const bool open = now >= def.starts_at_ms && now < def.ends_at_ms;
  // Latency of this round: reads answered since the last one, and reads still out.
  int64_t latency = st.round_max_latency_ms;
  bool any = st.round_reads > 0;
  for (const auto& [sku, r] : st.reads) {
    if (r.in_flight) {
      latency = std::max(latency, now - r.sent_ms);
      any = true;
    }
  }
  const bool over = st.round_failed || latency > st.env->opts.sales_latency_budget.count();
  st.round_max_latency_ms = 0;
  st.round_reads = 0;
  st.round_failed = false;
  track_sold_out(st, def, now);
  if (open && m.ranked() && !st.life.handing_off && lease_live(st)) {
    sale_model::admit_inputs in;
    in.now_ms = now;
    in.sale_rate = def.admission_rate;
    in.auto_rate = st.auto_rate;
    in.since_last_s = static_cast<double>(now - st.last_admit_ms) / 1000.0;
    in.available = sum.available;
    in.open_passes = open_passes(st, def, now, sum.as_of_ms);
    const int64_t budget = m.admit_budget(in);
    if (def.admission_rate <= 0 && any) { // AIMD, while the sale is open
      auto unlimited = in;
      unlimited.auto_rate = std::numeric_limits<double>::max() / 4;
      unlimited.since_last_s = 1;
      const bool rate_bound = m.admit_budget(unlimited) > budget;
      st.auto_rate = auto_admission::next(st.auto_rate, over, rate_bound);
    }
    if (auto ev = m.decide_admit(in)) {
      m.apply(*ev);
      append(self, std::move(*ev), nullptr);
      st.last_admit_ms = now;
    } else if (in.available - in.open_passes <= 0 || m.admitted() >= int64_t(m.tickets())) {
      // Held back by stock or nobody waiting: no rate credit piles up meanwhile.
      st.last_admit_ms = now;
    }
  }
  // The admission rate (EWMA over rate_window_s).
  if (st.ewma_at_ms == 0) {
    st.ewma_at_ms = now;
    st.ewma_admitted = m.admitted();
  } else if (now > st.ewma_at_ms) {
    const double dt = static_cast<double>(now - st.ewma_at_ms) / 1000.0;
    const double inst = static_cast<double>(m.admitted() - st.ewma_admitted) / dt;
    const double alpha = 1.0 - std::exp(-dt / rate_window_s);
    st.rate_ewma += alpha * (inst - st.rate_ewma);
    st.ewma_at_ms = now;
    st.ewma_admitted = m.admitted();
  }
  if (st.env->sale_stats != nullptr) {
    st.env->sale_stats->publish(summary_of(st, def, now));
  }
  // The next reads: one per SKU at most at a time.
  const auto timeout = st.env->opts.call_timeout;
  auto h = caf::actor_cast<sale_impl>(self);
  for (const auto& sku : def.skus) {
    auto& r = st.reads[sku];
    if (r.in_flight || st.skus == nullptr) {
      continue;
    }
    r.in_flight = true;
    r.sent_ms = now;
    r.sent = std::chrono::steady_clock::now();
    auto target = st.skus->acquire_routed(sku);
    self->request(target.handle, timeout, stock_atom::value)
        .then(
            [self, sku](stock_view& v) {
              auto& s = self->state;
              auto& rd = s.reads[sku];
              rd.in_flight = false;
              ++s.round_reads;
              rd.answered = true;
              rd.figures_sent_ms = rd.sent_ms;
              rd.available = v.available;
              rd.held = v.held;
              rd.sold = v.sold;
              const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - rd.sent);
              s.round_max_latency_ms = std::max<int64_t>(s.round_max_latency_ms, took.count());
              figures_changed(s);
            },
            [self, sku](caf::error& err) {
              auto& s = self->state;
              auto& rd = s.reads[sku];
              rd.in_flight = false;
              ++s.round_reads;
              if (err.category() == error_category &&
                  err.code() == static_cast<uint8_t>(errc::not_found)) {
                // No such SKU: it sells nothing.
                rd.answered = true;
                rd.figures_sent_ms = rd.sent_ms;
                rd.available = rd.held = rd.sold = 0;
                figures_changed(s);
                return;
              }
              s.round_failed = true;
              logger()->debug("{}: stock read of {} failed: {}", s.stream, sku,
                              caf::to_string(err));
            });
  }
  st.next_read_ms = now + read_interval_ms;
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.life.tick.fired();
  const int64_t now = now_of(st);
  const auto def = definition(st);
  bool warm_now = false;
  if (def) {
    maybe_lottery(self, *def, now);
    if (reading(st, *def, now) && !st.life.handing_off && now >= st.next_read_ms) {
      read_round(self, *def, now);
    }
    warm_now = now - st.last_warm_ms < warm_window_ms && now < def->ends_at_ms;
  }
  const bool quiet = !st.in_flight && st.pending.events.events_size() == 0;
  if (st.life.passivate(self, *st.dir, st.sale_id, quiet, !warm_now, now,
                        st.env->opts.idle_timeout.count())) {
    return;
  }
  schedule_tick(self);
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  const int64_t now = now_of(st);
  std::optional<int64_t> also;
  if (const auto def = definition(st)) {
    if (reading(st, *def, now)) {
      also = std::max(st.next_read_ms, now);
    } else if (!st.model.ranked()) {
      also = def->starts_at_ms; // the lottery (reading starts then, or with a warm_atom)
    }
  } else {
    also = now + 1000; // the index may not be loaded yet: look again
  }
  st.life.arm_tick(self, now, st.env->opts.idle_timeout.count(), also);
}

/// The shard leaves this node (see sku.hpp).
void on_handoff(self_ptr self, bool graceful) {
  auto& st = self->state;
  if (auto err = st.life.hand_off(graceful, st.stream)) {
    fail_all(self, std::move(err));
    return;
  }
  if (st.life.loaded) {
    on_tick(self);
  }
}

/// Why a command received through the directory is not decided now: held back (skip) while
/// loading, refused when this node's lease on the shard ran out; nullopt: decide it.
template <class T>
std::optional<caf::result<T>> admit(self_ptr self) {
  auto& st = self->state;
  if (auto held = st.life.admit<T>(now_of(st))) {
    return held;
  }
  if (!lease_live(st)) {
    return caf::result<T>{lease_lost(st)};
  }
  return std::nullopt;
}

/// Reads snapshot + journal on the storage pools (never on this actor's thread) and sends the
/// result back as `loaded`.
void start_load(self_ptr self) {
  auto h = caf::actor_cast<sale_impl>(self);
  detail::load_stream<proto::SaleSnapshot, proto::SaleBatch>(
      self->state.env, self->state.stream,
      [h](sale_loaded out) { caf::anon_send(h, loaded_atom::value, std::move(out)); });
}

sale_impl::behavior_type running(self_ptr self);

void on_loaded(self_ptr self, sale_loaded& in) {
  auto& st = self->state;
  if (in.err) {
    logger()->error("activation of {} failed: {}", st.stream, caf::to_string(in.err));
    self->quit(in.err); // held-back commands are answered with an error by CAF
    return;
  }
  st.model = sale_model{in.snap};
  for (const auto& b : in.batches) {
    st.model.apply(b);
  }
  st.seq = in.seq;
  st.since_snapshot = in.since_snapshot;
  const int64_t now = now_of(st);
  st.life.activated(now);
  st.last_admit_ms = now;
  logger()->debug("activated {} at seq {} ({} batches replayed, {} tickets, {} admitted)",
                  st.stream, st.seq, in.batches.size(), st.model.tickets(), st.model.admitted());
  if (const auto def = definition(st)) {
    maybe_lottery(self, *def, now);
  }
  schedule_tick(self);
  self->become(running(self)); // re-examines the commands held back while loading
}

void on_committed(self_ptr self, uint64_t seq, const caf::error& err) {
  auto& st = self->state;
  if (!st.in_flight || seq != st.seq) {
    logger()->error("{}: commit result for seq {} while {} is current", st.stream, seq, st.seq);
    return;
  }
  st.in_flight = false;
  if (err) {
    logger()->warn("{}: commit of seq {} failed: {}", st.stream, seq, caf::to_string(err));
    fail_all(self, err);
    return;
  }
  auto done = std::move(st.flight.done);
  auto snap = std::move(st.flight.snap);
  st.flight = batch{};
  for (auto& d : done) {
    d(nullptr);
  }
  if (snap) {
    st.env->redis->submit([snap = std::move(*snap)](redis_conn* r) {
      if (r != nullptr) {
        r->snapshots->put(snap); // best effort: PostgreSQL has it already
      }
    });
  }
  flush(self);
}

template <class T>
completion reply_with(caf::typed_response_promise<T> rp, T value) {
  return [rp, value = std::move(value)](const caf::error* err) mutable {
    if (err != nullptr) {
      rp.deliver(*err);
    } else {
      rp.deliver(value);
    }
  };
}

/// Answers `view` once the state it reflects is committed: answers never show uncommitted state.
template <class T>
caf::result<T> reply_when_durable(self_ptr self, T view) {
  auto rp = self->make_response_promise<T>();
  after_durable(self, reply_with(rp, std::move(view)));
  return rp;
}

caf::error unknown_sale() {
  return make_error(errc::not_found, "unknown sale");
}

sale_impl::behavior_type running(self_ptr self) {
  return {
      [=](join_atom, std::string& customer, std::string& request_id) -> caf::result<ticket_view> {
        surge::log::request_scope scope{request_id};
        auto& st = self->state;
        if (auto refused = admit<ticket_view>(self)) {
          return std::move(*refused);
        }
        const auto def = definition(st);
        if (!def) {
          return unknown_sale();
        }
        const int64_t now = now_of(st);
        if (now >= def->ends_at_ms) {
          return make_error(errc::sale_ended, "the sale has ended");
        }
        maybe_lottery(self, *def, now); // the journal's order defines the pre-queue
        auto decided = st.model.decide_join(customer, now);
        if (!decided) {
          return std::move(decided.error());
        }
        if (!*decided) { // joined before: the same ticket
          return reply_when_durable(self,
                                    view_of(st, *st.model.seq_of(customer), *def, now, false));
        }
        st.model.apply(**decided);
        const uint64_t seq = st.model.tickets() - 1;
        auto rp = self->make_response_promise<ticket_view>();
        append(self, std::move(**decided), reply_with(rp, view_of(st, seq, *def, now, true)));
        schedule_tick(self);
        return rp;
      },
      [=](caf::get_atom, std::string& ticket) -> caf::result<ticket_view> {
        auto& st = self->state;
        if (auto refused = admit<ticket_view>(self)) {
          return std::move(*refused);
        }
        const auto def = definition(st);
        if (!def) {
          return unknown_sale();
        }
        const int64_t now = now_of(st);
        maybe_lottery(self, *def, now);
        const auto seq = seq_of_ticket(st, ticket);
        if (!seq) {
          return make_error(errc::not_found, "unknown ticket");
        }
        return reply_when_durable(self, view_of(st, *seq, *def, now, false));
      },
      [=](watch_atom) -> caf::result<queue_summary> {
        auto& st = self->state;
        if (auto refused = admit<queue_summary>(self)) {
          return std::move(*refused);
        }
        const auto def = definition(st);
        if (!def) {
          return unknown_sale();
        }
        const int64_t now = now_of(st);
        maybe_lottery(self, *def, now);
        return reply_when_durable(self, summary_of(st, *def, now));
      },
      [=](used_atom, std::string& ticket) -> caf::result<void> {
        auto& st = self->state;
        if (auto refused = admit<void>(self)) {
          return std::move(*refused);
        }
        const auto def = definition(st);
        const auto seq = seq_of_ticket(st, ticket);
        if (!def || !seq) {
          return {};
        }
        const int64_t now = now_of(st);
        if (const auto at = st.model.admitted_at(*seq); at && now < *at + def->pass_ttl_ms) {
          st.used[*seq] = used_pass{*at + def->pass_ttl_ms, now};
        }
        return {};
      },
      [=](warm_atom) -> caf::result<void> {
        auto& st = self->state;
        if (auto refused = admit<void>(self)) {
          return std::move(*refused);
        }
        st.last_warm_ms = now_of(st);
        schedule_tick(self);
        return {};
      },
      [=](loaded_atom, sale_loaded& in) { on_loaded(self, in); },
      [=](committed_atom, uint64_t seq, const caf::error& err) { on_committed(self, seq, err); },
      [=](tick_atom) {
        if (self->state.life.loaded) {
          on_tick(self);
        }
      },
      [=](handoff_atom, bool graceful) { on_handoff(self, graceful); },
  };
}

sale_impl::behavior_type sale_main(self_ptr self, std::string sale_id,
                                   std::shared_ptr<const entity_env> env, sale_directory* dir,
                                   sku_directory* skus, entity_fence fence) {
  auto& st = self->state;
  st.fence = fence;
  st.sale_id = sale_id;
  st.stream = "sale:" + sale_id;
  st.env = std::move(env);
  st.dir = dir;
  st.skus = skus;
  self->attach_functor(
      [dir, sale_id, board = st.env->sale_stats, addr = self->address()](const caf::error&) {
        if (board != nullptr) {
          board->erase(sale_id); // passivated, handed over or failed: no longer this node's queue
        }
        dir->forget(sale_id, addr);
      });
  start_load(self);
  return running(self);
}

} // namespace

sale_actor spawn_sale(caf::actor_system& sys, const std::string& sale_id,
                      std::shared_ptr<const entity_env> env, sale_directory* dir,
                      sku_directory* skus, entity_fence fence) {
  return sys.spawn(sale_main, sale_id, std::move(env), dir, skus, fence);
}

} // namespace surge::actors
