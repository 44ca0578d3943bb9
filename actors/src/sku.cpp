#include "surge/actors/sku.hpp"

#include <caf/all.hpp>

#include <limits>
#include <optional>

#include "entity.hpp"
#include "entity_load.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/ids.hpp"
#include "surge/actors/sku_model.hpp"
#include "surge/config/log.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::actors {
namespace {

/// What activation read from storage, handed from a pool thread to the actor.
using sku_loaded = detail::entity_loaded<proto::SkuSnapshot, proto::EventBatch>;

} // namespace
} // namespace surge::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::sku_loaded)

namespace surge::actors {
namespace {

using sku_impl = sku_actor::extend<caf::reacts_to<loaded_atom, sku_loaded>,
                                   caf::reacts_to<committed_atom, uint64_t, caf::error>,
                                   caf::reacts_to<tick_atom>>;

/// Runs once a batch's fate is known: nullptr on commit, the error otherwise.
using completion = std::function<void(const caf::error*)>;

struct batch {
  proto::EventBatch events;
  std::vector<completion> done;
  bool has_product = false;
  std::optional<persistence::snapshot> snap;
};

struct sku_state {
  static inline const char* name = "surge.sku";

  // Set at spawn.
  std::string sku;
  std::string stream;
  std::shared_ptr<const entity_env> env;
  sku_directory* dir = nullptr;
  entity_fence fence;

  // Owned by the actor.
  sku_model model;  ///< committed state + the batch in flight + the pending batch
  uint64_t seq = 0; ///< the last journal seq handed to the journal
  batch pending;    ///< filling while `flight` commits
  batch flight;
  bool in_flight = false;
  std::size_t since_snapshot = 0; ///< events journaled since the last snapshot
  detail::entity_life life;
};

using self_ptr = sku_impl::stateful_pointer<sku_state>;

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("sku");
  return lg;
}

stock_view stock_of(const sku_state& st) {
  const auto& m = st.model;
  return stock_view{st.sku,        m.on_hand(),          m.held(),      m.sold(),
                    m.available(), st.env->opts.node_id, st.fence.epoch};
}

persistence::product_record record_of(const proto::Product& p) {
  return persistence::product_record{
      p.sku(),         p.name(),     p.description(),       p.category(),
      p.price_cents(), p.currency(), p.per_customer_limit()};
}

product_view product_of(const sku_state& st) {
  return product_view{record_of(st.model.product()), st.model.available()};
}

hold_view hold_of(const sku_state& st, const std::string& cart_id) {
  hold_view v;
  v.sku = st.sku;
  v.price_cents = st.model.product().price_cents();
  v.currency = st.model.product().currency();
  if (const auto* h = st.model.hold_of_cart(cart_id)) {
    v.hold_id = h->hold_id();
    v.qty = h->qty();
    v.expires_at_ms = h->expires_at_ms();
  }
  return v;
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
  // The model now is exactly the committed state plus this batch.
  req.stock =
      persistence::stock_record{st.sku, st.model.on_hand(), st.model.held(), st.model.sold()};
  if (st.flight.has_product) {
    req.product = record_of(st.model.product());
  }
  // Snapshot every `snapshot_every` events, but never more often than the snapshot's own size
  // in events: building one costs O(holds), so this keeps the cost per event constant.
  st.since_snapshot += static_cast<std::size_t>(st.flight.events.events_size());
  const std::size_t size =
      st.model.hold_count() + st.model.customer_count() + st.model.confirmation_count();
  if (st.since_snapshot >= std::max<std::size_t>(st.env->opts.snapshot_every, size)) {
    st.since_snapshot = 0;
    req.snap = persistence::snapshot{st.stream, seq, st.model.snapshot().SerializeAsString()};
    st.flight.snap = req.snap;
  }
  st.in_flight = true;
  auto h = caf::actor_cast<sku_impl>(self);
  st.env->journal->submit(std::move(req), [h, seq](const caf::error& err) {
    caf::anon_send(h, committed_atom::value, seq, err);
  });
}

/// Appends an applied event to the pending batch; `done` runs when that batch's fate is known.
/// Counts a decided end of a hold in the env's hold_counters (for the node's metrics; holds
/// placed are counted by the hold handler, which knows whether a hold is new).
void count_hold_event(const entity_env& env, const proto::SkuEvent& ev) {
  if (env.holds == nullptr) {
    return;
  }
  auto& h = *env.holds;
  if (ev.has_hold_confirmed()) {
    h.confirmed.fetch_add(1, std::memory_order_relaxed);
  } else if (ev.has_hold_released()) {
    (ev.hold_released().reason() == proto::HoldEnded::EXPIRED ? h.expired : h.released)
        .fetch_add(1, std::memory_order_relaxed);
  }
}

void append(self_ptr self, proto::SkuEvent ev, completion done) {
  auto& st = self->state;
  count_hold_event(*st.env, ev);
  st.pending.has_product |= ev.has_product_set();
  *st.pending.events.add_events() = std::move(ev);
  if (done) {
    st.pending.done.push_back(std::move(done));
  }
  flush(self);
}

/// Runs `done` once everything the current state reflects is committed: at once when nothing is
/// pending, else with the newest uncommitted batch. A reply that reports state (a read, or a
/// command that changes nothing) must never get ahead of the commit of that state.
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

/// Storage failed under us: what we hold in memory is no longer known to be durable. Answer
/// everyone, then quit; the next incarnation reloads the truth.
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

void expire_holds(self_ptr self) {
  auto& st = self->state;
  for (auto& ev : st.model.decide_expiry(st.env->now_ms())) {
    st.model.apply(ev);
    append(self, std::move(ev), nullptr);
  }
}

/// How long the SKU may be idle before it passivates (an unknown SKU goes soon).
int64_t idle_limit(const sku_state& st) {
  return st.model.exists() ? st.env->opts.idle_timeout.count()
                           : std::min<int64_t>(st.env->opts.idle_timeout.count(), 5000);
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.life.tick.fired();
  expire_holds(self);
  const bool quiet = !st.in_flight && st.pending.events.events_size() == 0;
  // Live holds keep it here (their expiry is its timer); handing over, they go with the
  // journal: the next owner reloads them.
  if (st.life.passivate(self, *st.dir, st.sku, quiet, st.model.hold_count() == 0, st.env->now_ms(),
                        idle_limit(st))) {
    return;
  }
  schedule_tick(self);
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

/// False (and the command must be refused) when this node's lease on the shard ran out.
bool lease_live(const sku_state& st) {
  return st.fence.shard < 0 || st.env->cluster == nullptr ||
         st.env->cluster->serving(static_cast<uint32_t>(st.fence.shard), st.fence.epoch);
}

caf::error lease_lost(const sku_state& st) {
  return make_error(errc::unavailable, "this node no longer serves " + st.stream);
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  st.life.arm_tick(self, st.env->now_ms(), idle_limit(st), st.model.next_expiry());
}

/// Why a command received through the directory is not decided now: held back (skip) while
/// loading, refused when this node's lease on the shard ran out; nullopt: decide it. Counts the
/// command (for passivation) once it is no longer held back.
template <class T>
std::optional<caf::result<T>> admit(self_ptr self) {
  auto& st = self->state;
  if (auto held = st.life.admit<T>(st.env->now_ms())) {
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
  auto h = caf::actor_cast<sku_impl>(self);
  detail::load_stream<proto::SkuSnapshot, proto::EventBatch>(
      self->state.env, self->state.stream,
      [h](sku_loaded out) { caf::anon_send(h, loaded_atom::value, std::move(out)); });
}

sku_impl::behavior_type running(self_ptr self);

void on_loaded(self_ptr self, sku_loaded& in) {
  auto& st = self->state;
  if (in.err) {
    logger()->error("activation of {} failed: {}", st.stream, caf::to_string(in.err));
    self->quit(in.err); // held-back commands are answered with an error by CAF
    return;
  }
  st.model = sku_model{in.snap};
  for (const auto& b : in.batches) {
    st.model.apply(b);
  }
  st.seq = in.seq;
  st.since_snapshot = in.since_snapshot;
  st.life.activated(st.env->now_ms());
  logger()->debug("activated {} at seq {} ({} batches replayed)", st.stream, st.seq,
                  in.batches.size());
  expire_holds(self);
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
  schedule_tick(self);
}

/// Delivers `value` to `rp` when the batch commits, the error otherwise.
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

/// Answers `view` once the state it reflects is committed (a read, or a command that changes
/// nothing).
template <class T>
caf::result<T> reply_when_durable(self_ptr self, T view) {
  auto rp = self->make_response_promise<T>();
  after_durable(self, reply_with(rp, std::move(view)));
  return rp;
}

/// Applies a decided event, appends it to the pending batch, and answers what `view_of` makes
/// of the new state once that batch is committed.
template <class ViewOf>
auto apply_and_reply(self_ptr self, proto::SkuEvent ev, ViewOf view_of)
    -> caf::result<decltype(view_of(self->state))> {
  auto& st = self->state;
  st.model.apply(ev);
  auto rp = self->make_response_promise<decltype(view_of(st))>();
  append(self, std::move(ev), reply_with(rp, view_of(st)));
  return rp;
}

/// A read of the SKU (its stock or its product): admitted like a command, errc::not_found for
/// an SKU that does not exist, and answered with what `view_of` makes of the state once that
/// state is durable.
template <class ViewOf>
auto read_view(self_ptr self, ViewOf view_of) -> caf::result<decltype(view_of(self->state))> {
  using view = decltype(view_of(self->state));
  auto& st = self->state;
  if (auto refused = admit<view>(self)) {
    return std::move(*refused);
  }
  if (!st.model.exists()) {
    return make_error(errc::not_found, "unknown SKU");
  }
  return reply_when_durable(self, view_of(st));
}

sku_impl::behavior_type running(self_ptr self) {
  return {
      [=](hold_atom, hold_request& req) -> caf::result<hold_view> {
        surge::log::request_scope scope{req.request_id};
        auto& st = self->state;
        if (auto refused = admit<hold_view>(self)) {
          return std::move(*refused);
        }
        expire_holds(self); // a hold past its expiry is gone, whether or not the timer ran
        const auto& o = st.env->opts;
        const hold_record* current = st.model.hold_of_cart(req.cart_id);
        sku_model::hold_terms terms{st.env->now_ms(), o.holds_ttl.count(),
                                    o.holds_max_lifetime.count()};
        // Only a growing hold is checked against the SKU's sale.
        if (st.env->sales != nullptr && req.qty > (current != nullptr ? current->qty() : 0)) {
          terms.sale = st.env->sales->gate_of(st.sku, terms.now_ms);
        }
        const bool fresh = current == nullptr;
        auto decided = st.model.decide_hold(req, terms, fresh ? random_id("h_") : std::string{});
        if (!decided) {
          logger()->debug("{}: hold of cart {} for {} refused: {}", st.stream, req.cart_id, req.qty,
                          caf::to_string(decided.error()));
          return std::move(decided.error());
        }
        logger()->debug("{}: hold of cart {} set to {}", st.stream, req.cart_id, req.qty);
        if (!*decided) { // nothing changes
          return reply_when_durable(self, hold_of(st, req.cart_id));
        }
        if (fresh && (**decided).has_hold_set() && st.env->holds != nullptr) {
          st.env->holds->placed.fetch_add(1, std::memory_order_relaxed);
        }
        auto res = apply_and_reply(self, std::move(**decided),
                                   [&](const sku_state& s) { return hold_of(s, req.cart_id); });
        if (req.qty > 0 && st.env->hot_skus != nullptr) { // a hold placed: count it once durable
          after_durable(self, [self](const caf::error* err) {
            if (err == nullptr) {
              self->state.env->hot_skus->record(self->state.sku, self->state.env->now_ms());
            }
          });
        }
        schedule_tick(self);
        return res;
      },
      [=](confirm_atom, std::string& hold_id, std::string& order_id, std::string& cart_id,
          int64_t qty) -> caf::result<stock_view> {
        auto& st = self->state;
        if (auto refused = admit<stock_view>(self)) {
          return std::move(*refused);
        }
        expire_holds(self); // an expired hold is never sold
        auto decided = st.model.decide_confirm(hold_id, order_id, cart_id, qty, st.env->now_ms());
        if (!decided) {
          return std::move(decided.error());
        }
        if (!*decided) { // confirmed before for this order: a retry
          return reply_when_durable(self, stock_of(st));
        }
        return apply_and_reply(self, std::move(**decided), stock_of);
      },
      [=](return_atom, std::string& hold_id, std::string& order_id) -> caf::result<stock_view> {
        auto& st = self->state;
        if (auto refused = admit<stock_view>(self)) {
          return std::move(*refused);
        }
        auto decided = st.model.decide_return(hold_id, order_id, st.env->now_ms());
        if (!decided) { // nothing sold for this order under that hold, or returned before
          return reply_when_durable(self, stock_of(st));
        }
        return apply_and_reply(self, std::move(*decided), stock_of);
      },
      [=](stock_atom, const stock_change& chg) -> caf::result<stock_view> {
        surge::log::request_scope scope{chg.request_id};
        auto& st = self->state;
        if (auto refused = admit<stock_view>(self)) {
          return std::move(*refused);
        }
        auto decided = st.model.decide_stock(chg.set, chg.value, st.env->now_ms());
        if (!decided) {
          return std::move(decided.error());
        }
        logger()->info("{}: on_hand {} {}", st.stream, chg.set ? "set to" : "changed by",
                       chg.value);
        return apply_and_reply(self, std::move(*decided), stock_of);
      },
      [=](stock_atom) { return read_view(self, stock_of); },
      [=](product_atom, persistence::product_record& rec) -> caf::result<product_view> {
        auto& st = self->state;
        if (auto refused = admit<product_view>(self)) {
          return std::move(*refused);
        }
        proto::Product p;
        p.set_sku(st.sku);
        p.set_name(rec.name);
        p.set_description(rec.description);
        p.set_category(rec.category);
        p.set_price_cents(rec.price_cents);
        p.set_currency(rec.currency);
        p.set_per_customer_limit(rec.per_customer_limit);
        return apply_and_reply(self, st.model.decide_product(p, st.env->now_ms()), product_of);
      },
      [=](product_atom) { return read_view(self, product_of); },
      [=](loaded_atom, sku_loaded& in) { on_loaded(self, in); },
      [=](committed_atom, uint64_t seq, const caf::error& err) { on_committed(self, seq, err); },
      [=](tick_atom) {
        if (self->state.life.loaded) {
          on_tick(self);
        }
      },
      [=](handoff_atom, bool graceful) { on_handoff(self, graceful); },
  };
}

sku_impl::behavior_type sku_main(self_ptr self, std::string sku,
                                 std::shared_ptr<const entity_env> env, sku_directory* dir,
                                 entity_fence fence) {
  auto& st = self->state;
  st.fence = fence;
  st.sku = sku;
  st.stream = "sku:" + sku;
  st.env = std::move(env);
  st.dir = dir;
  self->attach_functor(
      [dir, sku, addr = self->address()](const caf::error&) { dir->forget(sku, addr); });
  start_load(self);
  return running(self);
}

} // namespace

sku_actor spawn_sku(caf::actor_system& sys, const std::string& sku,
                    std::shared_ptr<const entity_env> env, sku_directory* dir, entity_fence fence) {
  return sys.spawn(sku_main, sku, std::move(env), dir, fence);
}

int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace surge::actors
