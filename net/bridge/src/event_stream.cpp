#include "event_stream.hpp"

namespace surge::net::bridge {

std::variant<stream_slot, http_response> take_stream_slot(bridge_env& env) {
  auto& open = env.metrics.streams_open;
  if (open.fetch_add(1) >= env.max_streams) {
    open.fetch_sub(1);
    auto resp = error_response(503, "unavailable",
                               "this node has " + std::to_string(env.max_streams) +
                                   " event streams open (stock and queue); retry shortly");
    resp.headers.emplace_back("Retry-After", "2");
    return resp;
  }
  return std::make_shared<std::shared_ptr<void>>(static_cast<void*>(&open), [](void* p) {
    static_cast<std::atomic<std::size_t>*>(p)->fetch_sub(1);
  });
}

http_response event_stream(stream_fn start) {
  http_response resp;
  resp.content_type = "text/event-stream";
  resp.headers.emplace_back("Cache-Control", "no-store");
  resp.headers.emplace_back("X-Accel-Buffering", "no");
  resp.stream = std::move(start);
  return resp;
}

} // namespace surge::net::bridge
