#include "stock_stream.hpp"

#include <charconv>
#include <optional>
#include <pthread.h>

#include "call.hpp"
#include "errors.hpp"
#include "event_stream.hpp"
#include "handlers.hpp"
#include "queue_stream.hpp"
#include "surge/net/text.hpp"
#include "validation.hpp"

namespace surge::net::bridge {

std::string stock_event(const std::string& sku, int64_t available) {
  // SKUs are letters, digits and "._-" (valid_sku): nothing to escape in JSON.
  const auto n = std::to_string(available);
  std::string ev;
  ev.reserve(64 + 2 * sku.size());
  ev.append("id: ").append(n).append("\nevent: stock\ndata: {\"sku\":\"").append(sku);
  ev.append("\",\"available\":").append(n).append("}\n\n");
  return ev;
}

stock_watcher::stock_watcher(bridge_env& env, std::chrono::milliseconds period,
                             std::chrono::milliseconds keep_alive)
    : env_(env)
    , period_(period)
    , keep_alive_(keep_alive) {}

stock_watcher::~stock_watcher() {
  stop();
}

void stock_watcher::subscribe(const std::string& sku, std::shared_ptr<stream_sink> sink,
                              int64_t available, std::shared_ptr<void> slot) {
  uint64_t id = 0;
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      sink->close();
      return;
    }
    if (!thread_.joinable()) {
      thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "surge-stock");
        run();
      });
    }
    id = ++next_id_;
    skus_[sku].streams.emplace(id, stream{sink, available, std::move(slot)});
    ++streams_;
  }
  // Outside the lock: a stream that has ended already runs this at once.
  sink->on_close([w = weak_from_this(), sku, id] {
    if (auto self = w.lock()) {
      self->unsubscribe(sku, id);
    }
  });
}

void stock_watcher::unsubscribe(const std::string& sku, uint64_t id) {
  std::shared_ptr<void> slot; // released outside the lock
  std::lock_guard lk(mu_);
  auto it = skus_.find(sku);
  if (it == skus_.end()) {
    return;
  }
  auto s = it->second.streams.find(id);
  if (s == it->second.streams.end()) {
    return;
  }
  slot = std::move(s->second.slot);
  it->second.streams.erase(s);
  --streams_;
  if (it->second.streams.empty() && !it->second.reading) {
    skus_.erase(it);
  }
}

void stock_watcher::stop() {
  std::unordered_map<std::string, sku_state> left;
  std::thread t;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    left.swap(skus_);
    streams_ = 0;
    t = std::move(thread_);
  }
  cv_.notify_all();
  if (t.joinable()) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach(); // the last reference went in the thread's own read (node gone)
    } else {
      t.join();
    }
  }
  for (auto& [sku, st] : left) {
    for (auto& [id, s] : st.streams) {
      s.sink->close();
    }
  }
}

std::size_t stock_watcher::streams() const {
  std::lock_guard lk(mu_);
  return streams_;
}

std::size_t stock_watcher::watched() const {
  std::lock_guard lk(mu_);
  return skus_.size();
}

void stock_watcher::read(const std::string& sku) {
  std::weak_ptr<stock_watcher> w = weak_from_this();
  ask<actors::product_view>(
      env_, env_.skus->acquire_routed(sku),
      [w, sku](actors::product_view& v) {
        if (auto self = w.lock()) {
          self->answered({sku, true, v.available});
        }
      },
      [w, sku](caf::error&) {
        if (auto self = w.lock()) {
          self->answered({sku, false, 0});
        }
      },
      actors::product_atom::value);
}

void stock_watcher::answered(reading r) {
  {
    std::lock_guard lk(mu_);
    readings_.push_back(std::move(r));
  }
  cv_.notify_one();
}

void stock_watcher::run() {
  using clock = std::chrono::steady_clock;
  auto next_read = clock::now() + period_;
  auto next_keep_alive = clock::now() + keep_alive_;
  std::vector<std::pair<std::shared_ptr<stream_sink>, const std::string*>> sends;
  std::vector<std::string> events; // what `sends` point into
  std::vector<std::string> to_read;
  static const std::string keep_alive_comment{stream_keep_alive};
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait_until(lk, std::min(next_read, next_keep_alive),
                   [this] { return stopping_ || !readings_.empty(); });
    if (stopping_) {
      return;
    }
    sends.clear();
    events.clear();
    to_read.clear();
    // The answers: each stream whose last event differs gets one with the new figure.
    auto done = std::move(readings_);
    readings_.clear();
    events.reserve(done.size()); // no reallocation: `sends` points into it
    uint64_t sent_events = 0;
    for (auto& r : done) {
      auto it = skus_.find(r.sku);
      if (it == skus_.end()) {
        continue;
      }
      it->second.reading = false;
      if (it->second.streams.empty()) {
        skus_.erase(it);
        continue;
      }
      if (!r.ok) {
        continue; // unreadable for now: the next round asks again
      }
      const std::string* ev = nullptr;
      for (auto& [id, s] : it->second.streams) {
        if (s.last == r.available) {
          continue;
        }
        if (ev == nullptr) {
          ev = &events.emplace_back(stock_event(r.sku, r.available));
        }
        s.last = r.available;
        sends.emplace_back(s.sink, ev);
        ++sent_events;
      }
    }
    const auto now = clock::now();
    if (now >= next_read) {
      next_read = now + period_;
      for (auto& [sku, st] : skus_) {
        if (!st.reading && !st.streams.empty()) {
          st.reading = true;
          to_read.push_back(sku);
        }
      }
    }
    if (now >= next_keep_alive) {
      next_keep_alive = now + keep_alive_;
      for (auto& [sku, st] : skus_) {
        for (auto& [id, s] : st.streams) {
          sends.emplace_back(s.sink, &keep_alive_comment);
        }
      }
    }
    lk.unlock();
    // Outside the lock: sending posts to the connections; reading sends requests.
    env_.metrics.stream_events.fetch_add(sent_events, std::memory_order_relaxed);
    for (auto& [sink, text] : sends) {
      sink->send(*text);
    }
    sends.clear(); // the sinks are not kept beyond the round
    for (const auto& sku : to_read) {
      read(sku);
    }
    lk.lock();
  }
}

namespace {

/// The Last-Event-ID header as a stock figure, when it is one.
std::optional<int64_t> last_event_id(const http_request& req) {
  auto h = req.header("last-event-id");
  if (!h) {
    return std::nullopt;
  }
  const auto v = text::trim_space(*h);
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || end != v.data() + v.size() || v.empty()) {
    return std::nullopt;
  }
  return n;
}

} // namespace

void stream_stock(std::shared_ptr<bridge_env> env, http_request&& req, path_params&& p,
                  responder r) {
  if (!valid_sku(p[0]) || !env->stock) {
    return r(not_found("no such product"));
  }
  auto taken = take_stream_slot(*env);
  if (auto* busy = std::get_if<http_response>(&taken)) {
    return r(std::move(*busy));
  }
  auto held = std::get<stream_slot>(std::move(taken));
  const auto last_id = last_event_id(req);
  auto sku = std::move(p[0]);
  auto dest = env->skus->acquire_routed(sku);
  ask<actors::product_view>(
      *env, std::move(dest),
      [env, r, sku, last_id, held](actors::product_view& v) mutable {
        auto slot = std::move(*held);
        auto resp = event_stream(
            [env, sku, available = v.available, last_id, slot](std::shared_ptr<stream_sink> s) {
              std::string first{stream_retry};
              if (last_id != available) {
                first += stock_event(sku, available);
                env->metrics.stream_events.fetch_add(1, std::memory_order_relaxed);
              }
              s->send(std::move(first));
              env->stock->subscribe(sku, std::move(s), available, slot);
            });
        slot.reset(); // the stream's producer holds it now
        r(std::move(resp));
      },
      [r, held](caf::error& err) mutable {
        held->reset();
        r(to_http_error(err));
      },
      actors::product_atom::value);
}

} // namespace surge::net::bridge

namespace surge::net {

void stop_streams(bridge_env& env) {
  if (env.stock) {
    env.stock->stop();
  }
  if (env.queues) {
    env.queues->stop();
  }
}

} // namespace surge::net
