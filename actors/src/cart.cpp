#include "surge/actors/cart.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <limits>
#include <optional>

#include "entity.hpp"
#include "surge.pb.h"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/config/log.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::actors {
namespace {

/// The sale a waiting-room pass (the Surge-Pass header) admits `customer` to, when it opens
/// under ids.secret, has not expired and is that customer's; else "". An anonymous cart never
/// has a pass: a pass is bound to a customer.
std::string pass_sale_of(const entity_env& env, const std::string& pass,
                         const std::string& customer) {
  if (pass.empty() || customer.empty() || !env.ids) {
    return {};
  }
  auto p = env.ids->open_pass(pass);
  if (!p || p->customer_id != customer || p->expires_at_ms <= env.now_ms()) {
    return {};
  }
  return std::move(p->sale_id);
}

/// A cart as Redis had it (nullopt: no such cart), or why it could not be read.
struct cart_loaded {
  caf::error err;
  std::optional<std::string> payload;
};

} // namespace
} // namespace surge::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::cart_loaded)

namespace surge::actors {
namespace {

using cart_impl =
    cart_actor::extend<caf::reacts_to<loaded_atom, cart_loaded>,
                       caf::reacts_to<saved_atom, uint64_t, caf::error>, caf::reacts_to<tick_atom>>;

using completion = std::function<void(const caf::error*)>;

struct cart_state {
  static inline const char* name = "surge.cart";

  // Set at spawn.
  std::string cart_id;
  std::shared_ptr<const entity_env> env;
  cart_directory* carts = nullptr;
  sku_directory* skus = nullptr;

  // Owned by the actor.
  detail::entity_life life;
  bool exists = false;
  proto::Cart cart;
  std::vector<completion> waiting; ///< answered after the next Redis write
  std::vector<completion> writing; ///< answered when the write in flight ends
  bool write_in_flight = false;
  uint64_t write_seq = 0;
  std::size_t outstanding = 0;                ///< hold requests to SKU actors not yet answered
  std::vector<std::function<void()>> settled; ///< run once `outstanding` is back to 0
  /// Hold requests to SKU actors of this node in flight (a local actor always answers, so no
  /// CAF timer each): the tick answers one request_timeout once its deadline (system clock)
  /// has passed, one tick for them all; its reply, should it come later, is dropped as a timed
  /// out reply is (the hold expires on the SKU). Calls to stubs keep CAF's timeout.
  struct pending_hold {
    uint64_t seq = 0;
    int64_t deadline_ms = 0;
    caf::typed_response_promise<cart_view> rp;
  };
  std::vector<pending_hold> pending;
  uint64_t hold_seq = 0;
};

using self_ptr = cart_impl::stateful_pointer<cart_state>;

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("cart");
  return lg;
}

cart_view view_of(const cart_state& st) {
  cart_view v;
  v.cart_id = st.cart_id;
  v.customer_id = st.cart.customer_id();
  for (const auto& l : st.cart.lines()) {
    v.items.push_back(cart_line_view{l.sku(), l.qty(), l.price_cents(), l.currency(), l.hold_id(),
                                     l.hold_expires_at_ms()});
    v.total_cents += l.qty() * l.price_cents();
    if (v.currency.empty()) {
      v.currency = l.currency();
    }
  }
  return v; // an empty cart has no currency yet: its first line fixes it
}

/// The currency the cart's lines other than `sku`'s fix (empty: none; a new line may be in any).
std::string currency_besides(const cart_state& st, const std::string& sku) {
  for (const auto& l : st.cart.lines()) {
    if (l.sku() != sku && !l.currency().empty()) {
      return l.currency();
    }
  }
  return {};
}

/// Whether `principal` (a verified customer, or empty) may see and use the cart: any holder of
/// the id may use an anonymous cart, only its customer a customer's (when customers are
/// verified). Everyone else is told there is no such cart, so that its existence is not revealed.
bool may_use(const cart_state& st, const std::string& principal) {
  return !st.env->opts.verify_customers || st.cart.customer_id().empty() ||
         st.cart.customer_id() == principal;
}

/// How long a checkout's claim stands at most (entity_options::cart_claim_lifetime).
int64_t claim_ms(const cart_state& st) {
  return st.env->opts.cart_claim_lifetime.count();
}

/// The order whose checkout holds the cart right now, or "".
const std::string& claimed_by(const cart_state& st) {
  static const std::string none;
  if (st.cart.checkout_order_id().empty() ||
      st.env->now_ms() - st.cart.checkout_since_ms() >= claim_ms(st)) {
    return none;
  }
  return st.cart.checkout_order_id();
}

void end_claim(cart_state& st) {
  st.cart.clear_checkout_order_id();
  st.cart.clear_checkout_since_ms();
}

void write_now(self_ptr self) {
  auto& st = self->state;
  st.writing = std::move(st.waiting);
  st.waiting.clear();
  st.write_in_flight = true;
  const uint64_t seq = ++st.write_seq;
  st.cart.set_updated_at_ms(st.env->now_ms());
  auto payload = st.cart.SerializeAsString();
  // An empty cart costs memory and holds nothing: it goes soon (carts.empty_ttl).
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(
      st.cart.lines().empty() ? st.env->opts.carts_empty_ttl : st.env->opts.carts_ttl);
  auto h = caf::actor_cast<cart_impl>(self);
  auto done = [h, seq](caf::error err) {
    caf::anon_send(h, saved_atom::value, seq, std::move(err));
  };
  st.env->cart_writes->push(cart_write{st.cart_id, std::move(payload), ttl, std::move(done)});
}

/// Writes the cart to Redis (sharing a write with changes that arrive meanwhile); `done` runs
/// once the state it belongs to is stored.
void save(self_ptr self, completion done) {
  auto& st = self->state;
  st.waiting.push_back(std::move(done));
  if (!st.write_in_flight) {
    write_now(self);
  }
}

/// Runs `done` once the state the cart has now is stored: at once when no write is pending.
void after_stored(self_ptr self, completion done) {
  auto& st = self->state;
  if (!st.waiting.empty()) {
    st.waiting.push_back(std::move(done));
  } else if (st.write_in_flight) {
    st.writing.push_back(std::move(done));
  } else {
    done(nullptr);
  }
}

completion reply_view(self_ptr self, caf::typed_response_promise<cart_view> rp) {
  return [self, rp](const caf::error* err) mutable {
    if (err != nullptr) {
      rp.deliver(make_error(errc::unavailable, "cart not stored: " + caf::to_string(*err)));
    } else {
      rp.deliver(view_of(self->state));
    }
  };
}

/// Runs `f` once no hold request of this cart is in flight (at once when none is).
void when_settled(self_ptr self, std::function<void()> f) {
  auto& st = self->state;
  if (st.outstanding == 0) {
    f();
  } else {
    st.settled.push_back(std::move(f));
  }
}

/// A hold request came back: when it was the last one in flight, run what waited for that.
void hold_answered(self_ptr self) {
  auto& st = self->state;
  if (--st.outstanding > 0) {
    return;
  }
  auto waiting = std::move(st.settled);
  st.settled.clear();
  for (auto& f : waiting) {
    f();
  }
}

void apply_hold(cart_state& st, const hold_view& hv) {
  auto* lines = st.cart.mutable_lines();
  auto i = std::find_if(lines->begin(), lines->end(),
                        [&](const proto::CartLine& l) { return l.sku() == hv.sku; });
  if (hv.qty == 0) {
    if (i != lines->end()) {
      lines->erase(i);
    }
    return;
  }
  proto::CartLine* line = i != lines->end() ? &*i : st.cart.add_lines();
  line->set_sku(hv.sku);
  line->set_qty(hv.qty);
  line->set_price_cents(hv.price_cents);
  line->set_currency(hv.currency);
  line->set_hold_id(hv.hold_id);
  line->set_hold_expires_at_ms(hv.expires_at_ms);
}

int64_t idle_limit(const cart_state& st) {
  return st.exists ? st.env->opts.idle_timeout.count()
                   : std::min<int64_t>(st.env->opts.idle_timeout.count(), 5000);
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  const int64_t now = st.env->now_ms();
  std::optional<int64_t> due;
  if (!st.pending.empty()) {
    // The earliest deadline, in the entity's clock (ticks are armed in it).
    const int64_t sys_now = system_now_ms();
    for (const auto& p : st.pending) {
      const int64_t at = now + std::max<int64_t>(p.deadline_ms - sys_now, 0);
      due = due ? std::min(*due, at) : at;
    }
  }
  st.life.arm_tick(self, now, idle_limit(st), due);
}

/// Answers request_timeout to the hold requests whose deadline has passed.
void expire_holds(self_ptr self) {
  auto& st = self->state;
  const int64_t now = system_now_ms();
  std::vector<cart_state::pending_hold> expired;
  for (auto i = st.pending.begin(); i != st.pending.end();) {
    if (i->deadline_ms <= now) {
      expired.push_back(std::move(*i));
      i = st.pending.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& p : expired) {
    p.rp.deliver(caf::make_error(caf::sec::request_timeout)); // the cart stays as it was
    hold_answered(self);
  }
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.life.tick.fired();
  expire_holds(self);
  const bool quiet = !st.write_in_flight && st.waiting.empty() && st.outstanding == 0;
  if (st.life.passivate(self, *st.carts, st.cart_id, quiet, true, st.env->now_ms(),
                        idle_limit(st))) {
    return;
  }
  schedule_tick(self);
}

/// The prologue of a command received through the directory: held back (skip) while loading,
/// then counted; with `principal`, also not_found unless the cart exists and `principal` may use
/// it. nullopt: decide it now.
std::optional<caf::result<cart_view>> admit(self_ptr self, const std::string* principal) {
  auto& st = self->state;
  if (auto held = st.life.admit<cart_view>(st.env->now_ms())) {
    return held;
  }
  schedule_tick(self);
  if (principal != nullptr && (!st.exists || !may_use(st, *principal))) {
    return caf::result<cart_view>{make_error(errc::not_found, "no such cart")};
  }
  return std::nullopt;
}

cart_impl::behavior_type running(self_ptr self);

void on_loaded(self_ptr self, cart_loaded& in) {
  auto& st = self->state;
  if (in.err) {
    logger()->warn("loading cart {} failed: {}", st.cart_id, caf::to_string(in.err));
    self->quit(in.err);
    return;
  }
  if (in.payload) {
    if (!st.cart.ParseFromString(*in.payload)) {
      logger()->error("cart {} in Redis is corrupt", st.cart_id);
      self->quit(persistence::make_error(persistence::errc::corrupt, "cart " + st.cart_id));
      return;
    }
    st.exists = true;
  }
  st.life.activated(st.env->now_ms());
  schedule_tick(self);
  self->become(running(self)); // re-examines the commands held back while loading
}

void on_saved(self_ptr self, uint64_t seq, const caf::error& err) {
  auto& st = self->state;
  if (!st.write_in_flight || seq != st.write_seq) {
    return;
  }
  st.write_in_flight = false;
  if (err) {
    logger()->warn("writing cart {} failed: {}", st.cart_id, caf::to_string(err));
  }
  auto done = std::move(st.writing);
  st.writing.clear();
  for (auto& d : done) {
    d(err ? &err : nullptr);
  }
  if (!st.waiting.empty()) {
    write_now(self);
  }
}

cart_impl::behavior_type running(self_ptr self) {
  return {
      [=](create_atom, std::string& customer_id) -> caf::result<cart_view> {
        auto& st = self->state;
        if (auto refused = admit(self, nullptr)) {
          return std::move(*refused);
        }
        if (st.exists) {
          return make_error(errc::conflict, "cart exists");
        }
        st.exists = true;
        st.cart.set_cart_id(st.cart_id);
        st.cart.set_customer_id(customer_id);
        st.cart.set_created_at_ms(st.env->now_ms());
        auto rp = self->make_response_promise<cart_view>();
        save(self, reply_view(self, rp));
        return rp;
      },
      [=](caf::get_atom, const std::string& principal) -> caf::result<cart_view> {
        if (auto refused = admit(self, &principal)) {
          return std::move(*refused);
        }
        auto rp = self->make_response_promise<cart_view>();
        after_stored(self, reply_view(self, rp));
        return rp;
      },
      [=](item_atom, std::string& sku, int64_t qty, bool must_exist, const std::string& principal,
          int64_t deadline_ms, const std::string& request_id,
          const std::string& pass) -> caf::result<cart_view> {
        surge::log::request_scope scope{request_id};
        auto& st = self->state;
        if (auto refused = admit(self, &principal)) {
          return std::move(*refused);
        }
        if (!claimed_by(st).empty()) {
          // The checkout read these lines and pays for them: they stay as they are until it
          // ends (a decline or failure gives the cart back).
          return make_error(errc::checkout_in_progress,
                            "a checkout of this cart is under way; its lines cannot change");
        }
        if (must_exist) {
          const auto& lines = st.cart.lines();
          if (std::none_of(lines.begin(), lines.end(),
                           [&](const proto::CartLine& l) { return l.sku() == sku; })) {
            return make_error(errc::not_found, "the cart has no line for " + sku);
          }
        }
        const auto budget = call_budget(deadline_ms, st.env->opts.call_timeout);
        if (!budget) {
          return caf::make_error(caf::sec::request_timeout); // nobody waits: the cart stays
        }
        auto rp = self->make_response_promise<cart_view>();
        ++st.outstanding;
        hold_request req{st.cart_id,
                         st.cart.customer_id(),
                         qty,
                         currency_besides(st, sku),
                         st.env->opts.verify_customers,
                         request_id,
                         pass_sale_of(*st.env, pass, st.cart.customer_id())};
        auto dest = st.skus->acquire_routed(sku);
        const uint64_t seq = dest.remote ? 0 : ++st.hold_seq;
        if (seq != 0) {
          st.pending.push_back({seq, system_now_ms() + budget->count(), rp});
          schedule_tick(self);
        }
        // Whether the reply may still answer: false once the tick answered it (timed out).
        auto claim = [self, seq] {
          if (seq == 0) {
            return true;
          }
          auto& p = self->state.pending;
          auto i = std::find_if(p.begin(), p.end(), [&](const auto& x) { return x.seq == seq; });
          if (i == p.end()) {
            return false;
          }
          p.erase(i);
          return true;
        };
        self->request(dest.handle, seq != 0 ? caf::duration{caf::infinite} : caf::duration{*budget},
                      hold_atom::value, std::move(req))
            .then(
                [=](hold_view& hv) mutable {
                  if (!claim()) {
                    return;
                  }
                  surge::log::request_scope answer_scope{request_id};
                  logger()->debug("cart {}: line {} is now {} (hold {})", self->state.cart_id,
                                  hv.sku, hv.qty, hv.hold_id);
                  apply_hold(self->state, hv);
                  save(self, reply_view(self, rp));
                  hold_answered(self);
                },
                [=](caf::error& err) mutable {
                  if (!claim()) {
                    return;
                  }
                  rp.deliver(std::move(err)); // the cart stays as it was
                  hold_answered(self);
                });
        return rp;
      },
      [=](clear_atom, const std::vector<std::string>& hold_ids) -> caf::result<cart_view> {
        auto& st = self->state;
        if (auto refused = admit(self, nullptr)) {
          return std::move(*refused);
        }
        if (!st.exists) {
          return make_error(errc::not_found, "no such cart");
        }
        auto* lines = st.cart.mutable_lines();
        auto sold = [&](const proto::CartLine& l) {
          return std::find(hold_ids.begin(), hold_ids.end(), l.hold_id()) != hold_ids.end();
        };
        lines->erase(std::remove_if(lines->begin(), lines->end(), sold), lines->end());
        end_claim(st);
        auto rp = self->make_response_promise<cart_view>();
        save(self, reply_view(self, rp));
        return rp;
      },
      [=](checkout_atom, const std::string& order_id, bool begin,
          const std::string& principal) -> caf::result<cart_view> {
        auto& st = self->state;
        if (auto refused = admit(self, nullptr)) {
          return std::move(*refused);
        }
        if (!st.exists || (begin && !may_use(st, principal))) {
          return make_error(errc::not_found, "no such cart");
        }
        if (!begin) {
          auto rp = self->make_response_promise<cart_view>();
          if (st.cart.checkout_order_id() == order_id) {
            end_claim(st);
            save(self, reply_view(self, rp));
          } else {
            after_stored(self, reply_view(self, rp));
          }
          return rp;
        }
        const auto& holder = claimed_by(st);
        if (!holder.empty() && holder != order_id) {
          return make_error(errc::conflict,
                            "another checkout (another Idempotency-Key) has claimed this cart");
        }
        if (holder != order_id) {
          st.cart.set_checkout_order_id(order_id);
          st.cart.set_checkout_since_ms(st.env->now_ms());
        }
        auto rp = self->make_response_promise<cart_view>();
        // Answered with the lines once the hold changes already under way have landed and the
        // claim is stored (it outlives this incarnation); no later change gets in.
        when_settled(self, [self, rp]() mutable { save(self, reply_view(self, rp)); });
        return rp;
      },
      [=](loaded_atom, cart_loaded& in) { on_loaded(self, in); },
      [=](saved_atom, uint64_t seq, const caf::error& err) { on_saved(self, seq, err); },
      [=](tick_atom) {
        if (self->state.life.loaded) {
          on_tick(self);
        }
      },
      [=](handoff_atom, bool graceful) {
        auto& st = self->state;
        // The cart is in Redis: the next owner loads it from there.
        if (auto err = st.life.hand_off(graceful, "cart " + st.cart_id)) {
          self->quit(std::move(err));
          return;
        }
        if (st.life.loaded) {
          on_tick(self);
        }
      },
  };
}

cart_impl::behavior_type cart_main(self_ptr self, std::string cart_id,
                                   std::shared_ptr<const entity_env> env, cart_directory* carts,
                                   sku_directory* skus) {
  auto& st = self->state;
  st.cart_id = cart_id;
  st.env = std::move(env);
  st.carts = carts;
  st.skus = skus;
  self->attach_functor([carts, cart_id, addr = self->address()](const caf::error&) {
    carts->forget(cart_id, addr);
  });
  auto h = caf::actor_cast<cart_impl>(self);
  st.env->redis->submit([h, cart_id](redis_conn* r) {
    cart_loaded out;
    if (r == nullptr) {
      out.err = persistence::make_error(persistence::errc::unavailable, "no Redis connection");
    } else if (auto got = r->carts->get(cart_id); !got) {
      out.err = std::move(got.error());
    } else {
      out.payload = std::move(*got);
    }
    caf::anon_send(h, loaded_atom::value, std::move(out));
  });
  return running(self);
}

} // namespace

cart_actor spawn_cart(caf::actor_system& sys, const std::string& cart_id,
                      std::shared_ptr<const entity_env> env, cart_directory* carts,
                      sku_directory* skus) {
  return sys.spawn(cart_main, cart_id, std::move(env), carts, skus);
}

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::surge>();
}

} // namespace surge::actors
