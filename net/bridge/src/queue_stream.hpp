#pragma once

// The waiting room's live position (private to the bridge): GET /api/v1/sales/{sale_id}/queue/
// {ticket}/stream as Server-Sent Events, and the node's queue watcher behind it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "surge/net/bridge.hpp"

namespace surge::net::bridge {

/// One event of a queue stream: `event: position`, data the ticket JSON (encode.hpp's
/// ticket_json).
std::string position_event(const std::string& ticket_json);

/// What a stream shows of its ticket, worked out from the queue's last answer for the ticket
/// (`base`) and the queue's latest summary: the view to show, and whether the ticket must be
/// asked again because something only its own answer carries has changed — its rank (the lottery
/// just ran), or its pass (its rank was admitted just now).
struct follow_step {
  actors::ticket_view view;
  bool refetch = false;
};

/// follow(): `sale` is the sale as this node's index has it (null: unknown), for its start (eta
/// before the lottery) and its fixed admission rate; `now_ms` the clock. The estimates are the
/// queue's own (sale.cpp): seconds until the start before the lottery, position / rate after it
/// (the rate admissions ran at lately, else the sale's fixed rate; unknown with neither).
/// - admitted: stays admitted until its pass expires, then expired (no pass);
/// - expired: stays so;
/// - waiting or sold_out: expired once the sale ended; unranked: waiting (or sold_out while the
///   sale is) with no position and eta = seconds until the start, refetch once the summary is
///   ranked; ranked and admitted now (rank < admitted): as base, refetch; ranked otherwise:
///   position rank - admitted + 1 (never more than base's own), state sold_out while the sale is,
///   else waiting.
/// Pure; unit-tested in tests/net/queue_stream_test.cpp.
follow_step follow(const actors::ticket_view& base, const actors::queue_summary& s,
                   const persistence::sale_record* sale, int64_t now_ms);

/// Whether a stream that last got an eta of `sent` (seconds; -1 none) gets an event only for the
/// eta changing to `now`: when it appears or disappears, or moves by at least a fifth (and at
/// least 2 s). An eta that merely counts down does not make an event each second.
bool eta_moved(int64_t sent, int64_t now);

/// The node's queue watcher: the open queue streams by sale, and one thread that, every
/// `period`, asks each watched sale's queue ONCE for its summary (watch_atom) and works every
/// stream's view out from it (follow()), asking a ticket itself (get_atom) only when its stream
/// opens and when follow() says it must — at most `max_fetches` such asks in flight, the rest
/// queued and asked as answers come back. A stream gets an event when its JSON changes; every
/// `keep_alive` a comment. So N streams of one sale cost one summary call per period, not N calls.
/// The thread only sends requests and posts to the streams' connections; nothing waits for it. A
/// stream leaves when its connection ends; a sale without streams is forgotten; a sale that is gone
/// (deleted) closes its streams.
class queue_watcher : public std::enable_shared_from_this<queue_watcher> {
 public:
  queue_watcher(bridge_env& env, std::chrono::milliseconds period,
                std::chrono::milliseconds keep_alive, std::size_t max_fetches = 256);
  ~queue_watcher(); ///< stop()
  queue_watcher(const queue_watcher&) = delete;
  queue_watcher& operator=(const queue_watcher&) = delete;

  /// Adds `sink` as a stream of `base.ticket` of `base.sale_id`, which was sent `sent` (the data
  /// of its first event, ticket_json of `shown`). `slot` is released when the stream leaves.
  /// Starts the thread on first use. Any thread.
  void subscribe(std::shared_ptr<stream_sink> sink, actors::ticket_view base,
                 const actors::ticket_view& shown, std::string sent, std::shared_ptr<void> slot);

  /// Ends the thread and closes every stream; later subscribers are closed at once. Idempotent.
  void stop();

  /// Streams and sales watched right now (tests).
  std::size_t streams() const;
  std::size_t watched() const;

 private:
  struct follower {
    std::shared_ptr<stream_sink> sink;
    actors::ticket_view base; ///< the queue's last answer for this ticket
    actors::ticket_view shown;
    std::string sent; ///< data of the last event
    bool fetching = false;
    bool stale = false; ///< queued in stale_ to be asked again
    std::shared_ptr<void> slot;
  };
  struct sale_state {
    std::unordered_map<uint64_t, follower> followers;
    std::optional<actors::queue_summary> summary;
    int64_t followed_ms = 0; ///< when every follower was last worked out from the summary
    bool watching = false;   ///< a summary call is on its way
  };
  /// An answer of the queue, handed to the thread.
  struct answer {
    std::string sale_id;
    uint64_t id = 0; ///< the follower asked for (ticket answers), 0 for summaries
    bool ok = false;
    bool gone = false; ///< not_found: the sale or the ticket is no more
    actors::queue_summary summary;
    actors::ticket_view ticket;
  };
  using sends = std::vector<std::pair<std::shared_ptr<stream_sink>, std::string>>;

  void run();
  void unsubscribe(const std::string& sale_id, uint64_t id);
  void ask_summary(const std::string& sale_id);
  void ask_ticket(const std::string& sale_id, uint64_t id, const std::string& ticket);
  void answered(answer a);
  /// Works `f`'s view out from `st`'s summary and queues its event when its JSON changed.
  /// REQUIRES: mu_ held.
  void update(const std::string& sale_id, sale_state& st, uint64_t id, follower& f,
              const persistence::sale_record* sale, int64_t now_ms, sends& out);
  /// The sale as this node's index has it, or null.
  actors::sale_index::sale_ptr sale_of(const std::string& sale_id) const;
  /// Handles one answer. REQUIRES: mu_ held.
  void handle(answer& a, int64_t now_ms, sends& out,
              std::vector<std::shared_ptr<stream_sink>>& gone);

  bridge_env& env_;
  const std::chrono::milliseconds period_;
  const std::chrono::milliseconds keep_alive_;
  const std::size_t max_fetches_;
  mutable std::mutex mu_;
  std::condition_variable cv_;                         ///< answers arrived, or stop
  std::unordered_map<std::string, sale_state> sales_;  ///< guarded by mu_
  std::deque<std::pair<std::string, uint64_t>> stale_; ///< followers to ask again; guarded by mu_
  /// Followers whose ask failed: into stale_ at the next round; guarded by mu_.
  std::vector<std::pair<std::string, uint64_t>> retry_;
  std::vector<answer> answers_; ///< not yet handled; guarded by mu_
  std::size_t fetching_ = 0;    ///< ticket asks in flight; guarded by mu_
  uint64_t next_id_ = 0;        ///< guarded by mu_
  std::size_t streams_ = 0;     ///< guarded by mu_
  bool stopping_ = false;       ///< guarded by mu_
  std::thread thread_;          ///< started by the first subscribe(), guarded by mu_
};

} // namespace surge::net::bridge
