#pragma once

// Shoppers: a bounded number of client threads, each running journeys (new cart, add items,
// change a quantity, remove one, checkout with a payment token, retries with the same
// Idempotency-Key, or walk away and let the holds expire; and, while a checkout runs, a second
// hand that edits the cart or checks it out with another key through another node) against the
// nodes that are up, an operator thread adding stock to the hot SKUs, and a prober that, after a
// put/delete of a SKU failed, asks for that SKU's stock every 200 ms until it answers (so that G5
// sees when each shard came back, however rarely shoppers want it). Every request goes into the
// history.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"
#include "model.hpp"

namespace surge::chaos {

struct load_options {
  int clients = 8;
  uint64_t seed = 1;
  std::vector<std::string> hot;            ///< few SKUs most journeys want, little stock
  std::vector<std::string> cold;           ///< many SKUs, plenty of stock
  std::chrono::milliseconds timeout{6000}; ///< per request
};

class load {
 public:
  load(cluster_env& env, load_options o);
  ~load();
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  /// Puts the catalog in place through node 0's admin API (recorded in the history).
  void load_catalog(int64_t hot_stock, int64_t cold_stock);
  void start();
  /// Stops the threads (each finishes its request in flight; bounded by the timeout).
  void stop();

  uint64_t ops() const { return ops_.load(); }
  uint64_t errors() const { return errors_.load(); }
  /// Cart changes and second checkouts sent while the cart's checkout was running.
  uint64_t meddled() const { return meddled_.load(); }
  /// Every operation so far, in order of start.
  std::vector<operation> history() const;

 private:
  void shopper(int client);
  void operator_loop();
  void probe_loop();
  /// Index of a node that is up (any node when none is), drawn from `rng_value`; with
  /// `whole`, only among the nodes not cut off by a partition (when there are any).
  int pick_node(uint64_t rng_value, bool whole = false) const;
  void record(operation&& op);
  /// Sends `op`'s request over `via` and records it: numbers it, times it and reads the answer
  /// into it. Returns what was recorded. Touches no state but next_id_ and the history, so any
  /// thread may call it.
  operation send_recorded(http_client& via, operation op, const std::string& method,
                          const std::string& target, const std::string& body,
                          const std::vector<std::pair<std::string, std::string>>& headers = {});

  cluster_env& env_;
  const load_options o_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> ops_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> meddled_{0};
  mutable std::mutex mtx_;
  std::vector<operation> history_;
  std::set<std::string> to_probe_; ///< guarded by mtx_: SKUs whose last write failed
  std::vector<std::thread> threads_;
};

} // namespace surge::chaos
