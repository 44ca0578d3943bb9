#pragma once

namespace surge::persistence {

/// What every storage port (journal, snapshot_cache, cart_store, order_store, event_stream,
/// membership_store, catalog) is: one connection to its server. An instance is NOT thread-safe
/// and its calls block: use it from one dedicated thread (a worker_pool's, the commit_queue's),
/// never from a CAF scheduler thread or an HTTP I/O thread.
class connection_port {
 public:
  virtual ~connection_port() = default;

  /// False once the connection broke; the owner then makes a new instance.
  virtual bool healthy() const = 0;
};

} // namespace surge::persistence
