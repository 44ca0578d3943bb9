#pragma once

// Live stock (private to the bridge): GET /api/v1/products/{sku}/stock/stream as Server-Sent
// Events, and the node's stock watcher behind it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// One stock event of `sku`: `id: <available>`, `event: stock`, data {"sku","available"}.
std::string stock_event(const std::string& sku, int64_t available);

/// The node's stock watcher: the open stock streams by SKU, and one thread that, every
/// `period`, reads each watched SKU's product view (the same call as GET /api/v1/products/{sku},
/// never two reads of one SKU at once) and sends each of its streams an event when `available`
/// differs from the last one that stream got; every `keep_alive` it sends every stream a
/// comment. The thread only sends requests and posts to the streams' connections: it never
/// waits for an entity, and no I/O or CAF thread waits for it (the answers hand it their
/// readings). A stream leaves when its connection ends; an SKU without streams is forgotten.
class stock_watcher : public std::enable_shared_from_this<stock_watcher> {
 public:
  stock_watcher(bridge_env& env, std::chrono::milliseconds period,
                std::chrono::milliseconds keep_alive);
  ~stock_watcher(); ///< stop()
  stock_watcher(const stock_watcher&) = delete;
  stock_watcher& operator=(const stock_watcher&) = delete;

  /// Adds `sink` as a stream of `sku` that was last sent `available`. `slot` is released when
  /// the stream leaves (it counts the stream as open). Starts the thread on first use. Any thread.
  void subscribe(const std::string& sku, std::shared_ptr<stream_sink> sink, int64_t available,
                 std::shared_ptr<void> slot);

  /// Ends the thread and closes every stream (their connections close); later subscribers are
  /// closed at once. Idempotent.
  void stop();

  /// Streams and SKUs watched right now (tests).
  std::size_t streams() const;
  std::size_t watched() const;

 private:
  struct stream {
    std::shared_ptr<stream_sink> sink;
    int64_t last = 0; ///< `available` of the last event it got
    std::shared_ptr<void> slot;
  };
  struct sku_state {
    std::unordered_map<uint64_t, stream> streams;
    bool reading = false; ///< a read is on its way
  };
  struct reading {
    std::string sku;
    bool ok = false;
    int64_t available = 0;
  };

  void run();
  void unsubscribe(const std::string& sku, uint64_t id);
  void read(const std::string& sku);
  void answered(reading r);

  bridge_env& env_;
  const std::chrono::milliseconds period_;
  const std::chrono::milliseconds keep_alive_;
  mutable std::mutex mu_;
  std::condition_variable cv_;                      ///< readings arrived, or stop
  std::unordered_map<std::string, sku_state> skus_; ///< guarded by mu_
  std::vector<reading> readings_;                   ///< answers not yet handled; guarded by mu_
  uint64_t next_id_ = 0;                            ///< guarded by mu_
  std::size_t streams_ = 0;                         ///< guarded by mu_
  bool stopping_ = false;                           ///< guarded by mu_
  std::thread thread_; ///< started by the first subscribe(), guarded by mu_
};

} // namespace surge::net::bridge
