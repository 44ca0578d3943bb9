#pragma once

// What the bridge's Server-Sent Events streams share (private to the bridge): the stock streams
// (stock_stream.hpp) and the queue streams (queue_stream.hpp) count against one limit,
// http.max_streams, answer with the same head, open with the same retry hint and send the same
// keep-alive comment.

#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// The first bytes of every stream: how long a client waits before it reconnects.
inline constexpr std::string_view stream_retry = "retry: 2000\n\n";

/// What every stream gets every 15 s: a comment, so that proxies keep the connection.
inline constexpr std::string_view stream_keep_alive = ": keep-alive\n\n";

/// A stream's place among env.max_streams, shared by both answers of the ask that opens it: the
/// result moves the inner slot to the watcher (which drops it when the stream leaves); an error
/// resets it before answering, so a refused stream no longer counts once its client knows.
using stream_slot = std::shared_ptr<std::shared_ptr<void>>;

/// One of env.max_streams for a stream about to open (env.metrics.streams_open counts it until
/// the slot is released), or the 503 `unavailable` with Retry-After to answer when all are
/// taken. Any thread.
std::variant<stream_slot, http_response> take_stream_slot(bridge_env& env);

/// The 200 head of an event stream (text/event-stream, Cache-Control: no-store,
/// X-Accel-Buffering: no) whose body `start` produces once the head is queued.
http_response event_stream(stream_fn start);

} // namespace surge::net::bridge
