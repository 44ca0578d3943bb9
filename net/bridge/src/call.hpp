#pragma once

// Calling entity actors from HTTP I/O threads (private to the bridge). An I/O thread never
// waits on an actor. A call to an entity of this node goes straight into the entity's mailbox
// with a reply sink as its sender, and the entity's answer runs the handler on the thread that
// answers: no caller actor in between, no timer in CAF's clock (the HTTP request's own deadline,
// http.request_timeout, bounds it, and the entity gives the calls it makes what is left of it).
// A call to a stub (the entity lives on another node, whose answer can be lost with it) goes
// through a caller actor (spawn_callers, bridge.hpp) with a timeout of env.call_timeout.

#include <functional>
#include <string>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/send.hpp>

#include "errors.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// A piece of work for a caller actor: issue a request and answer the HTTP responder.
struct call_job {
  std::function<void(caf::event_based_actor*)> run;
};

} // namespace surge::net::bridge

// Caller actors live in this process only: a job (a closure) never crosses a node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(surge::net::bridge::call_job)

namespace surge::net::bridge {

/// The caller actor for this I/O thread's next call (round robin per thread).
/// REQUIRES: env.callers is not empty.
const caf::actor& pick_caller(bridge_env& env);

/// The sender of one request to a local entity: a CAF actor that is never scheduled and has no
/// mailbox. The answer (or CAF's bounce of the request when the entity has gone) arrives in
/// enqueue() on the thread that sends it, which runs `ok(Result&)` or `failed(caf::error&)`
/// there and then. Should the last reference to the sink go with no answer (a promise the
/// entity dropped), `failed` runs with sec::request_receiver_down: exactly one of them runs.
template <class Result, class Ok, class Failed>
class reply_sink final : public caf::monitorable_actor {
 public:
  reply_sink(caf::actor_config& cfg, Ok ok, Failed failed)
      : caf::monitorable_actor(cfg)
      , ok_(std::move(ok))
      , failed_(std::move(failed)) {}

  ~reply_sink() override {
    if (!answered_) {
      auto err = caf::make_error(caf::sec::request_receiver_down);
      failed_(err);
    }
  }

  void enqueue(caf::mailbox_element_ptr what, caf::execution_unit*) override {
    if (!what || answered_ || !what->mid.is_response()) {
      return; // only the one answer means anything to a sink
    }
    answered_ = true;
    auto msg = what->move_content_to_message();
    what.reset();
    if (msg.match_elements<Result>()) {
      ok_(msg.get_mutable_as<Result>(0));
    } else if (msg.match_elements<caf::error>()) {
      failed_(msg.get_mutable_as<caf::error>(0));
    } else {
      auto err = caf::make_error(caf::sec::unexpected_response);
      failed_(err);
    }
  }

  const char* name() const override { return "surge.reply_sink"; }

 private:
  Ok ok_;
  Failed failed_;
  bool answered_ = false; ///< set by enqueue(), read by the destructor (after the last release)
};

/// Sends (xs...) to `dest`, a local entity, as a request from a new reply_sink: exactly one of
/// `ok(Result&)` and `failed(caf::error&)` runs, on the thread that answers, and must not block.
/// Only for actors of this node that answer themselves: a request delegated on to another node
/// would carry the sink over BASP, and CAF's registry would keep it (calls to stubs use ask()).
template <class Result, class Handle, class Ok, class Failed, class... Ts>
void ask_local(caf::actor_system& sys, const Handle& dest, Ok ok, Failed failed, Ts&&... xs) {
  auto* receiver = caf::actor_cast<caf::abstract_actor*>(dest);
  if (receiver == nullptr) {
    auto err = caf::make_error(caf::sec::invalid_argument);
    failed(err);
    return;
  }
  caf::actor_config cfg;
  auto sink = caf::make_actor<reply_sink<Result, Ok, Failed>, caf::strong_actor_ptr>(
      sys.next_actor_id(), sys.node(), &sys, cfg, std::move(ok), std::move(failed));
  receiver->enqueue(caf::make_mailbox_element(std::move(sink), caf::make_message_id(1), {},
                                              std::forward<Ts>(xs)...),
                    nullptr);
}

/// Sends (xs...) to `dest` through a caller actor, within env.call_timeout; exactly one of
/// `ok(Result&)` and `failed(caf::error&)` runs, on a caller's thread, and must not block.
template <class Result, class Handle, class Ok, class Failed, class... Ts>
void ask(bridge_env& env, Handle dest, Ok ok, Failed failed, Ts... xs) {
  auto timeout = env.call_timeout;
  caf::anon_send(pick_caller(env), call_job{[=](caf::event_based_actor* self) mutable {
                   self->request(dest, timeout, xs...)
                       .then([ok](Result& x) mutable { ok(x); },
                             [failed](caf::error& err) mutable { failed(err); });
                 }});
}

/// ask() to an entity the directory routed: straight to a local incarnation (ask_local), through
/// a caller actor with a timeout to a stub.
template <class Result, class Handle, class Ok, class Failed, class... Ts>
void ask(bridge_env& env, actors::routed_handle<Handle> dest, Ok ok, Failed failed, Ts... xs) {
  if (dest.remote || env.system == nullptr) {
    return ask<Result>(env, std::move(dest.handle), std::move(ok), std::move(failed),
                       std::move(xs)...);
  }
  ask_local<Result>(*env.system, dest.handle, std::move(ok), std::move(failed), std::move(xs)...);
}

/// ask() answering an HTTP request: `ok(Result&)` turns the reply into the response, any error
/// becomes to_http_error's. `r` is called exactly once, on the thread that answers.
template <class Result, class Dest, class Ok, class... Ts>
void call(bridge_env& env, Dest dest, responder r, Ok ok, Ts... xs) {
  ask<Result>(
      env, std::move(dest), [r, ok](Result& x) mutable { r(ok(x)); },
      [r](caf::error& err) mutable { r(to_http_error(err)); }, std::move(xs)...);
}

/// The deadline of a call made now (call() waits env.call_timeout): entities give the calls
/// they make on its behalf what is left of it (actors/deadline.hpp).
inline int64_t call_deadline(const bridge_env& env) {
  return actors::deadline_after(env.call_timeout);
}

/// An `ok` for call(): the reply as the JSON body `encode` writes (encode.hpp), with `status`.
template <class View>
auto answer(int status, std::string (*encode)(const View&)) {
  return [status, encode](View& v) { return json_response(status, encode(v)); };
}

} // namespace surge::net::bridge
