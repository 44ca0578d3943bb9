#include "surge/actors/order.hpp"

#include <caf/all.hpp>

#include <iterator>
#include <optional>
#include <utility>

#include "entity.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"
#include "surge/actors/order_model.hpp"
#include "surge/config/log.hpp"
#include "surge/persistence/errors.hpp"

// The order actor runs order_model's effects and feeds their answers back to it. Answers that
// come from the ports' own threads (the order store's pool, the payment service) arrive as
// (answer_atom, order_input) messages; answers of other actors arrive through request().then().
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::actors::order_input)

namespace surge::actors {
namespace {

using answer_atom = caf::atom_constant<caf::atom("answer")>;

using order_impl =
    order_actor::extend<caf::reacts_to<answer_atom, order_input>, caf::reacts_to<tick_atom>>;

struct order_state {
  static inline const char* name = "surge.order";

  // Set at spawn.
  std::string order_id;
  std::shared_ptr<const entity_env> env;
  order_links links;
  entity_fence fence;

  // Owned by the actor.
  std::optional<order_model> model; ///< the order's decisions; made at spawn
  /// Everyone waiting for the step under way (as many as the model counts).
  std::vector<caf::typed_response_promise<order_view>> waiters;
  /// Every operator waiting for the refund step under way (as many as the model counts).
  std::vector<caf::typed_response_promise<refund_view>> refund_waiters;
  detail::entity_life life; ///< loaded once the model is; passivates once no step is under way
  /// A reconcile came while loading (a gateway's webhook wakes a passive order this way): it is
  /// decided once the order is loaded.
  bool reconcile_when_loaded = false;
  /// A reconcile is due at the end of payments.action_ttl of an order in requires_action (it
  /// gives the payment up unless the shopper finished). Lost with the actor: the reconciler
  /// finds such orders too.
  bool action_timer = false;
};

using self_ptr = order_impl::stateful_pointer<order_state>;

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("order");
  return lg;
}

caf::error no_pg() {
  return persistence::make_error(persistence::errc::unavailable, "no PostgreSQL connection");
}

void run(self_ptr self, std::vector<order_effect> effects);

/// While the order waits for the shopper's 3-D Secure, a reconcile is due when its time is up.
void arm_action_timer(self_ptr self) {
  auto& st = self->state;
  const auto& o = st.model->current().order;
  if (st.action_timer || !o || o->status != "requires_action" || !o->payment) {
    return;
  }
  st.action_timer = true;
  const int64_t left =
      o->payment->charged_at_ms + st.env->opts.action_ttl.count() - st.env->now_ms();
  // Past the deadline already (a release that has not gone through yet): again in a while.
  const auto due = std::chrono::milliseconds{left > 0 ? left + 50 : 5000};
  self->delayed_send(caf::actor_cast<order_impl>(self), due, reconcile_atom::value);
}

/// Decides `in`, adopts the decision and runs its effects. Log lines (and the payment calls
/// started) carry the request id of the checkout under way, if any.
void step(self_ptr self, order_input in) {
  auto& m = *self->state.model;
  surge::log::request_scope scope{m.current().current.request_id};
  run(self, m.apply(m.decide(in)));
  arm_action_timer(self);
}

/// Sends `ask(line)` (a request to the line's SKU) for every line; feeds `made(tally)` to the
/// model once all answered. not_found: the hold is gone; conflict: it is no longer what the
/// order bought (defence in depth: the cart's claim keeps its lines as they were). Either way
/// it cannot be sold.
template <class Ask, class Made>
void ask_each_line(self_ptr self, const std::vector<persistence::order_line_record>& lines, Ask ask,
                   Made made) {
  struct pending {
    std::size_t remaining = 0;
    line_tally tally;
  };
  auto t = std::make_shared<pending>();
  t->remaining = lines.size();
  auto one = [self, t, made](bool ok, bool gone) {
    t->tally.gone += !ok && gone ? 1 : 0;
    t->tally.failed += !ok && !gone ? 1 : 0;
    if (--t->remaining == 0) {
      step(self, made(t->tally));
    }
  };
  for (const auto& line : lines) {
    ask(line).then([one](stock_view&) { one(true, false); },
                   [one](caf::error& err) {
                     one(false, is(err, errc::not_found) || is(err, errc::conflict));
                   });
  }
}

/// Answers every promise of `waiters` with `answer`, and forgets them.
template <class T>
void deliver_all(std::vector<caf::typed_response_promise<T>>& waiters,
                 const caf::expected<T>& answer) {
  auto all = std::move(waiters);
  waiters.clear();
  for (auto& rp : all) {
    if (answer) {
      rp.deliver(*answer);
    } else {
      rp.deliver(answer.error());
    }
  }
}

/// Runs one effect of the model. Each effect with an answer feeds it back through step().
struct executor {
  self_ptr self;

  order_state& st() const { return self->state; }

  order_impl handle() const { return caf::actor_cast<order_impl>(self); }

  void operator()(order_fx::claim_cart& e) const {
    auto s = self;
    const auto budget = call_budget(e.deadline_ms, st().env->opts.call_timeout);
    if (!budget) { // the shopper no longer waits: nothing is claimed, nothing charged
      caf::anon_send(handle(), answer_atom::value,
                     order_input{order_in::claimed{caf::make_error(caf::sec::request_timeout),
                                                   st().env->now_ms()}});
      return;
    }
    self->request(st().links.carts->acquire(e.cart_id), *budget, checkout_atom::value, e.order_id,
                  true, e.principal)
        .then(
            [s](cart_view& cart) {
              step(s, order_in::claimed{std::move(cart), s->state.env->now_ms()});
            },
            [s](caf::error& err) {
              step(s, order_in::claimed{std::move(err), s->state.env->now_ms()});
            });
  }

  void operator()(order_fx::release_cart& e) const {
    self->request(st().links.carts->acquire(e.cart_id), st().env->opts.call_timeout,
                  checkout_atom::value, e.order_id, false, std::string{})
        .then([](cart_view&) {}, [](caf::error&) {}); // a cart gone or down: its claim lapses
  }

  void operator()(order_fx::clear_cart& e) const {
    auto s = self;
    self->request(st().links.carts->acquire(e.cart_id), st().env->opts.call_timeout,
                  clear_atom::value, std::move(e.hold_ids))
        .then([s](cart_view&) { step(s, order_in::cleared{}); },
              [s](caf::error&) { step(s, order_in::cleared{}); });
  }

  void operator()(order_fx::create& e) const {
    st().env->orders->submit([h = handle(), rec = std::move(e.order)](persistence::order_store* s) {
      order_in::created out{no_pg()};
      if (s != nullptr) {
        out.result = s->create(rec);
      }
      caf::anon_send(h, answer_atom::value, order_input{std::move(out)});
    });
  }

  void operator()(order_fx::update& e) const {
    st().env->orders->submit([h = handle(), id = std::move(e.order_id),
                              change = std::move(e.change)](persistence::order_store* s) {
      order_in::stored out{s == nullptr ? no_pg() : s->update(id, change)};
      caf::anon_send(h, answer_atom::value, order_input{std::move(out)});
    });
  }

  /// The fence of every payment call that moves money: true while this node still serves the
  /// order's shard at the epoch it loaded it with (with a margin); empty when not clustered.
  std::function<bool()> fence() const {
    if (st().fence.shard < 0 || st().env->cluster == nullptr) {
      return {};
    }
    return [cluster = st().env->cluster, shard = static_cast<uint32_t>(st().fence.shard),
            epoch = st().fence.epoch, margin = st().env->opts.payment_lease_margin] {
      return cluster->serving_for(shard, epoch, margin);
    };
  }

  void operator()(order_fx::charge& e) const {
    auto& req = e.request;
    // A charge must not go out once another node may own this order: its lookup could then
    // miss a charge still on the way and charge the key a second time (on another gateway).
    req.may_send = fence();
    st().env->payments->charge(std::move(req), [h = handle(), env = st().env](charge_result r) {
      caf::anon_send(h, answer_atom::value,
                     order_input{order_in::charged{std::move(r), env->now_ms()}});
    });
  }

  void operator()(order_fx::lookup& e) const {
    st().env->payments->lookup(e.idempotency_key, [h = handle(), env = st().env](charge_result r) {
      caf::anon_send(h, answer_atom::value,
                     order_input{order_in::charged{std::move(r), env->now_ms()}});
    });
  }

  void operator()(order_fx::confirm_lines& e) const {
    auto s = self;
    auto ask = [s, order_id = e.order_id, cart_id = e.cart_id](const auto& line) {
      return s->request(s->state.links.skus->acquire(line.sku), s->state.env->opts.call_timeout,
                        confirm_atom::value, line.hold_id, order_id, cart_id, line.qty);
    };
    ask_each_line(self, e.lines, ask,
                  [](const line_tally& t) { return order_in::lines_confirmed{t}; });
  }

  void operator()(order_fx::return_lines& e) const {
    auto s = self;
    auto ask = [s, order_id = e.order_id](const auto& line) {
      return s->request(s->state.links.skus->acquire(line.sku), s->state.env->opts.call_timeout,
                        return_atom::value, line.hold_id, order_id);
    };
    ask_each_line(self, e.lines, ask,
                  [](const line_tally& t) { return order_in::lines_returned{t}; });
  }

  void operator()(order_fx::renew_holds& e) const {
    auto s = self;
    struct pending {
      std::size_t remaining = 0;
      line_tally tally;
    };
    auto t = std::make_shared<pending>();
    t->remaining = e.lines.size();
    auto one = [s, t](bool ok, bool gone) {
      t->tally.gone += !ok && gone ? 1 : 0;
      t->tally.failed += !ok && !gone ? 1 : 0;
      if (--t->remaining == 0) {
        step(s, order_in::holds_renewed{t->tally});
      }
    };
    for (const auto& line : e.lines) {
      auto sku = st().links.skus->acquire(line.sku);
      hold_request same{e.cart_id, e.customer_id, line.qty, e.currency};
      self->request(sku, st().env->opts.call_timeout, hold_atom::value, same)
          .then(
              [s, one, sku, line, same](hold_view& v) mutable {
                if (v.hold_id == line.hold_id) {
                  one(true, false);
                  return;
                }
                // Its hold had expired: setting the qty made a new one, which nobody bought.
                same.qty = 0;
                s->request(sku, s->state.env->opts.call_timeout, hold_atom::value, same)
                    .then([](hold_view&) {}, [](caf::error&) {}); // else it expires (G6)
                one(false, true);
              },
              [one](caf::error& err) {
                one(false,
                    is(err, errc::not_found) || is(err, errc::conflict) || is(err, errc::sold_out));
              });
    }
  }

  void operator()(order_fx::drop_holds& e) const {
    auto s = self;
    auto remaining = std::make_shared<std::size_t>(e.lines.size());
    std::vector<std::string> hold_ids;
    for (const auto& l : e.lines) {
      hold_ids.push_back(l.hold_id);
    }
    // The cart last: once the holds are given back its lines leave it, which ends the claim.
    auto clear = [s, cart = e.cart_id, hold_ids]() {
      s->request(s->state.links.carts->acquire(cart), s->state.env->opts.call_timeout,
                 clear_atom::value, hold_ids)
          .then([s](cart_view&) { step(s, order_in::holds_dropped{}); },
                [s](caf::error&) { step(s, order_in::holds_dropped{}); });
    };
    for (const auto& line : e.lines) {
      hold_request none{e.cart_id, e.customer_id, 0, e.currency};
      auto done = [remaining, clear] {
        if (--*remaining == 0) {
          clear();
        }
      };
      self->request(st().links.skus->acquire(line.sku), st().env->opts.call_timeout,
                    hold_atom::value, none)
          .then([done](hold_view&) { done(); }, [done](caf::error&) { done(); });
    }
  }

  void operator()(order_fx::refund& e) const {
    st().env->payments->refund(std::move(e.request), [h = handle()](refund_result r) {
      caf::anon_send(h, answer_atom::value, order_input{order_in::refunded{std::move(r)}});
    });
  }

  // Captures and voids are fenced like charges: only the order's owner settles its money.
  void operator()(order_fx::capture& e) const {
    e.request.may_send = fence();
    st().env->payments->capture(std::move(e.request), [h = handle()](settle_result r) {
      caf::anon_send(h, answer_atom::value, order_input{order_in::settled{std::move(r)}});
    });
  }

  void operator()(order_fx::void_payment& e) const {
    e.request.may_send = fence();
    st().env->payments->void_authorization(std::move(e.request), [h = handle()](settle_result r) {
      caf::anon_send(h, answer_atom::value, order_input{order_in::settled{std::move(r)}});
    });
  }

  void operator()(order_fx::reply& e) const { deliver_all(st().waiters, e.answer); }

  void operator()(order_fx::refund_reply& e) const { deliver_all(st().refund_waiters, e.answer); }

  void operator()(order_fx::quit& e) const { self->quit(std::move(e.reason)); }

  void operator()(order_fx::log& e) const {
    using lvl = order_fx::log::level;
    static constexpr spdlog::level::level_enum levels[] = {
        spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err};
    static_assert(static_cast<std::size_t>(lvl::error) + 1 == std::size(levels));
    logger()->log(levels[static_cast<std::size_t>(e.lvl)], "{}", e.text);
  }
};

void run(self_ptr self, std::vector<order_effect> effects) {
  for (auto& e : effects) {
    std::visit(executor{self}, e);
  }
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  st.life.arm_tick(self, st.env->now_ms(), st.env->opts.idle_timeout.count());
}

/// The prologue of a command received through the directory: held back (skip) while loading,
/// then counted. nullopt: decide it now.
std::optional<caf::result<order_view>> admit(self_ptr self) {
  auto& st = self->state;
  if (auto held = st.life.admit<order_view>(st.env->now_ms())) {
    return held;
  }
  schedule_tick(self);
  return std::nullopt;
}

order_impl::behavior_type running(self_ptr self) {
  return {
      [=](checkout_atom, checkout_request& req) -> caf::result<order_view> {
        surge::log::request_scope scope{req.request_id};
        auto& st = self->state;
        if (auto held = admit(self)) {
          return std::move(*held);
        }
        auto d = st.model->decide(order_in::checkout{std::move(req)});
        if (d.refused) {
          return std::move(d.refused);
        }
        auto rp = self->make_response_promise<order_view>();
        st.waiters.push_back(rp); // answered by the model's next reply
        run(self, st.model->apply(std::move(d)));
        return rp;
      },
      [=](caf::get_atom, const std::string& principal) -> caf::result<order_view> {
        auto& st = self->state;
        if (auto held = admit(self)) {
          return std::move(*held);
        }
        auto v = st.model->view_for(principal);
        if (!v) {
          return std::move(v.error());
        }
        return std::move(*v);
      },
      [=](refund_atom, order_refund_request& req) -> caf::result<refund_view> {
        auto& st = self->state;
        if (auto held = st.life.admit<refund_view>(st.env->now_ms())) {
          return std::move(*held);
        }
        schedule_tick(self);
        auto d = st.model->decide(order_in::refund_asked{std::move(req)});
        if (d.refused) {
          return std::move(d.refused);
        }
        if (d.answered) {
          auto v = std::move(*d.answered);
          st.model->apply(std::move(d));
          return v;
        }
        auto rp = self->make_response_promise<refund_view>();
        st.refund_waiters.push_back(rp); // answered by the model's next refund_reply
        run(self, st.model->apply(std::move(d)));
        return rp;
      },
      [=](reconcile_atom) {
        self->state.action_timer = false; // this may be it; armed again while still waiting
        if (!self->state.life.loaded) {
          self->state.reconcile_when_loaded = true; // decided once loaded
          return;
        }
        admit(self);
        step(self, order_in::reconcile{});
      },
      [=](answer_atom, order_input& in) {
        auto& st = self->state;
        const bool loading = !st.model->loaded();
        step(self, std::move(in));
        if (loading && st.model->loaded()) {
          st.life.activated(st.env->now_ms());
          schedule_tick(self);
          if (std::exchange(st.reconcile_when_loaded, false)) {
            step(self, order_in::reconcile{});
          }
        }
      },
      [=](tick_atom) {
        auto& st = self->state;
        st.life.tick.fired();
        if (!st.life.passivate(self, *st.links.orders, st.order_id, st.model->idle(), true,
                               st.env->now_ms(), st.env->opts.idle_timeout.count())) {
          schedule_tick(self);
        }
      },
      [=](handoff_atom, bool graceful) {
        auto& st = self->state;
        // The order is in PostgreSQL: the next owner loads it and resumes any step left.
        if (auto err = st.life.hand_off(graceful, st.order_id)) {
          self->quit(std::move(err));
          return;
        }
        schedule_tick(self);
      },
  };
}

order_impl::behavior_type order_main(self_ptr self, std::string order_id,
                                     std::shared_ptr<const entity_env> env, order_links links,
                                     entity_fence fence) {
  auto& st = self->state;
  st.order_id = order_id;
  st.env = std::move(env);
  st.links = links;
  st.fence = fence;
  st.model.emplace(order_id, order_terms{st.env->opts.holds_ttl, st.env->opts.verify_customers,
                                         st.env->opts.capture_after_confirm,
                                         st.env->opts.action_ttl, st.env->opts.return_url});
  auto* dir = links.orders;
  self->attach_functor(
      [dir, order_id, addr = self->address()](const caf::error&) { dir->forget(order_id, addr); });
  st.env->orders->submit(
      [h = caf::actor_cast<order_impl>(self), order_id](persistence::order_store* s) {
        order_in::loaded out{no_pg()};
        if (s != nullptr) {
          out.order = s->load(order_id);
        }
        caf::anon_send(h, answer_atom::value, order_input{std::move(out)});
      });
  return running(self);
}

} // namespace

order_actor spawn_order(caf::actor_system& sys, const std::string& order_id,
                        std::shared_ptr<const entity_env> env, order_links links,
                        entity_fence fence) {
  return sys.spawn(order_main, order_id, std::move(env), links, fence);
}

} // namespace surge::actors
