#pragma once

// Calling entity actors from HTTP I/O threads (private to the bridge). An I/O thread never
// waits on an actor: it hands the request to a caller actor (spawn_callers, bridge.hpp) with a
// plain send, and the caller's response handler calls the HTTP responder.

#include <functional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
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

/// ask() answering an HTTP request: `ok(Result&)` turns the reply into the response, any error
/// becomes to_http_error's. `r` is called exactly once, on a caller's thread.
template <class Result, class Handle, class Ok, class... Ts>
void call(bridge_env& env, Handle dest, responder r, Ok ok, Ts... xs) {
  ask<Result>(
      env, dest, [r, ok](Result& x) mutable { r(ok(x)); },
      [r](caf::error& err) mutable { r(to_http_error(err)); }, xs...);
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
