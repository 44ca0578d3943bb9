#include "queue_stream.hpp"

#include <algorithm>
#include <cmath>
#include <pthread.h>

#include "call.hpp"
#include "encode.hpp"
#include "errors.hpp"
#include "event_stream.hpp"
#include "handlers.hpp"
#include "surge/actors/deadline.hpp"
#include "surge/actors/errors.hpp"

namespace surge::net::bridge {

std::string position_event(const std::string& ticket_json) {
  std::string ev;
  ev.reserve(32 + ticket_json.size());
  ev.append("event: position\ndata: ").append(ticket_json).append("\n\n");
  return ev;
}

follow_step follow(const actors::ticket_view& base, const actors::queue_summary& s,
                   const persistence::sale_record* sale, int64_t now_ms) {
  follow_step out{base, false};
  auto& v = out.view;
  auto expire = [&v] {
    v.state = "expired";
    v.position = 0;
    v.eta_s = -1;
    v.pass.clear();
    v.pass_expires_at_ms = 0;
  };
  if (base.state == "admitted") {
    if (base.pass_expires_at_ms > 0 && now_ms >= base.pass_expires_at_ms) {
      expire();
    }
    return out;
  }
  if (base.state != "waiting" && base.state != "sold_out") {
    return out; // expired, or a state this bridge does not know: as the queue said
  }
  if (s.phase == "ended") {
    expire();
    return out;
  }
  const auto state = s.phase == "sold_out" ? "sold_out" : "waiting";
  if (base.rank < 0) {
    out.refetch = s.ranked;
    v.state = state;
    v.position = 0;
    v.eta_s = sale != nullptr ? std::max<int64_t>(0, (sale->starts_at_ms - now_ms + 999) / 1000)
                              : base.eta_s;
    return out;
  }
  if (base.rank < s.admitted) {
    out.refetch = true; // admitted since: only the queue has its pass
    return out;
  }
  auto position = base.rank - s.admitted + 1;
  if (base.position > 0) {
    position = std::min(position, base.position);
  }
  v.state = state;
  v.position = position;
  // The queue's own estimate: admissions lately, else the sale's fixed rate.
  const double rate = s.admit_rate >= 0.01 ? s.admit_rate
                      : sale != nullptr    ? sale->admission_rate
                                           : 0;
  v.eta_s = rate > 0 ? static_cast<int64_t>(std::ceil(static_cast<double>(position) / rate)) : -1;
  return out;
}

bool eta_moved(int64_t sent, int64_t now) {
  if ((sent < 0) != (now < 0)) {
    return true;
  }
  if (sent < 0) {
    return false;
  }
  const auto d = sent > now ? sent - now : now - sent;
  return d >= 2 && d * 5 >= std::max(sent, now);
}

queue_watcher::queue_watcher(bridge_env& env, std::chrono::milliseconds period,
                             std::chrono::milliseconds keep_alive, std::size_t max_fetches)
    : env_(env)
    , period_(period)
    , keep_alive_(keep_alive)
    , max_fetches_(std::max<std::size_t>(1, max_fetches)) {}

queue_watcher::~queue_watcher() {
  stop();
}

void queue_watcher::subscribe(std::shared_ptr<stream_sink> sink, actors::ticket_view base,
                              const actors::ticket_view& shown, std::string sent,
                              std::shared_ptr<void> slot) {
  uint64_t id = 0;
  auto sale_id = base.sale_id;
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      sink->close();
      return;
    }
    if (!thread_.joinable()) {
      thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "surge-queue");
        run();
      });
    }
    id = ++next_id_;
    follower f;
    f.sink = sink;
    f.base = std::move(base);
    f.shown = shown;
    f.sent = std::move(sent);
    f.slot = std::move(slot);
    sales_[sale_id].followers.emplace(id, std::move(f));
    ++streams_;
  }
  // Outside the lock: a stream that has ended already runs this at once.
  sink->on_close([w = weak_from_this(), sale_id, id] {
    if (auto self = w.lock()) {
      self->unsubscribe(sale_id, id);
    }
  });
}

void queue_watcher::unsubscribe(const std::string& sale_id, uint64_t id) {
  std::shared_ptr<void> slot; // released outside the lock
  std::lock_guard lk(mu_);
  auto it = sales_.find(sale_id);
  if (it == sales_.end()) {
    return;
  }
  auto f = it->second.followers.find(id);
  if (f == it->second.followers.end()) {
    return;
  }
  slot = std::move(f->second.slot);
  it->second.followers.erase(f);
  --streams_;
  if (it->second.followers.empty() && !it->second.watching) {
    sales_.erase(it);
  }
}

void queue_watcher::stop() {
  std::unordered_map<std::string, sale_state> left;
  std::thread t;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    left.swap(sales_);
    stale_.clear();
    retry_.clear();
    streams_ = 0;
    t = std::move(thread_);
  }
  cv_.notify_all();
  if (t.joinable()) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach(); // the last reference went in the thread's own call (node gone)
    } else {
      t.join();
    }
  }
  for (auto& [sale, st] : left) {
    for (auto& [id, f] : st.followers) {
      f.sink->close();
    }
  }
}

std::size_t queue_watcher::streams() const {
  std::lock_guard lk(mu_);
  return streams_;
}

std::size_t queue_watcher::watched() const {
  std::lock_guard lk(mu_);
  return sales_.size();
}

namespace {

/// A not_found from the queue means the stream's sale is gone only when this node's index no
/// longer has it either (a queue that has not loaded a new sale yet answers not_found too).
bool sale_gone(const bridge_env& env, const std::string& sale_id, const caf::error& err) {
  return actors::is(err, actors::errc::not_found) && (!env.sales || !env.sales->find(sale_id));
}

} // namespace

void queue_watcher::ask_summary(const std::string& sale_id) {
  std::weak_ptr<queue_watcher> w = weak_from_this();
  ask<actors::queue_summary>(
      env_, env_.sale_queues->acquire_routed(sale_id),
      [w, sale_id](actors::queue_summary& s) {
        if (auto self = w.lock()) {
          answer a;
          a.sale_id = sale_id;
          a.ok = true;
          a.summary = std::move(s);
          self->answered(std::move(a));
        }
      },
      [w, sale_id](caf::error& err) {
        if (auto self = w.lock()) {
          answer a;
          a.sale_id = sale_id;
          a.gone = sale_gone(self->env_, sale_id, err);
          self->answered(std::move(a));
        }
      },
      actors::watch_atom::value);
}

void queue_watcher::ask_ticket(const std::string& sale_id, uint64_t id, const std::string& ticket) {
  std::weak_ptr<queue_watcher> w = weak_from_this();
  ask<actors::ticket_view>(
      env_, env_.sale_queues->acquire_routed(sale_id),
      [w, sale_id, id](actors::ticket_view& t) {
        if (auto self = w.lock()) {
          answer a;
          a.sale_id = sale_id;
          a.id = id;
          a.ok = true;
          a.ticket = std::move(t);
          self->answered(std::move(a));
        }
      },
      [w, sale_id, id](caf::error& err) {
        if (auto self = w.lock()) {
          answer a;
          a.sale_id = sale_id;
          a.id = id;
          a.gone = sale_gone(self->env_, sale_id, err);
          self->answered(std::move(a));
        }
      },
      caf::get_atom::value, ticket);
}

void queue_watcher::answered(answer a) {
  {
    std::lock_guard lk(mu_);
    answers_.push_back(std::move(a));
  }
  cv_.notify_one();
}

actors::sale_index::sale_ptr queue_watcher::sale_of(const std::string& sale_id) const {
  return env_.sales ? env_.sales->find(sale_id) : nullptr;
}

void queue_watcher::update(const std::string& sale_id, sale_state& st, uint64_t id, follower& f,
                           const persistence::sale_record* sale, int64_t now_ms, sends& out) {
  if (!st.summary) {
    return;
  }
  auto step = follow(f.base, *st.summary, sale, now_ms);
  if (step.refetch && !f.fetching && !f.stale) {
    f.stale = true;
    stale_.emplace_back(sale_id, id);
  }
  auto& v = step.view;
  const auto& was = f.shown;
  // A position shown is never followed by a larger one (the queue's positions never grow; a
  // summary older than the ticket's own answer must not make it look so).
  if (v.state == "waiting" && was.state == "waiting" && was.position > 0 &&
      (v.position == 0 || v.position > was.position)) {
    v.position = was.position;
  }
  const bool same = v.state == was.state && v.position == was.position && v.pass == was.pass &&
                    v.pass_expires_at_ms == was.pass_expires_at_ms;
  if (same && !eta_moved(was.eta_s, v.eta_s)) {
    return;
  }
  auto json = ticket_json(v);
  f.shown = v;
  if (json == f.sent) {
    return;
  }
  f.sent = json;
  out.emplace_back(f.sink, position_event(json));
}

void queue_watcher::handle(answer& a, int64_t now_ms, sends& out,
                           std::vector<std::shared_ptr<stream_sink>>& gone) {
  if (a.id != 0) {
    --fetching_;
  }
  auto it = sales_.find(a.sale_id);
  if (it == sales_.end()) {
    return;
  }
  auto& st = it->second;
  if (a.id == 0) {
    st.watching = false;
    if (a.gone) {
      for (auto& [id, f] : st.followers) {
        gone.push_back(f.sink); // closing it unsubscribes it (outside the lock)
      }
      return;
    }
    if (st.followers.empty()) {
      sales_.erase(it);
      return;
    }
    if (!a.ok) {
      return; // unanswered for now: the next round asks again
    }
    const auto& s = a.summary;
    const bool moved = !st.summary || st.summary->admitted != s.admitted ||
                       st.summary->phase != s.phase || st.summary->ranked != s.ranked ||
                       st.summary->admit_rate != s.admit_rate;
    st.summary = std::move(a.summary);
    // Passes expire and countdowns run with the clock: every second, every follower again.
    if (moved || now_ms - st.followed_ms >= 1000) {
      st.followed_ms = now_ms;
      const auto sale = sale_of(a.sale_id);
      for (auto& [id, f] : st.followers) {
        update(a.sale_id, st, id, f, sale.get(), now_ms, out);
      }
    }
    return;
  }
  auto fit = st.followers.find(a.id);
  if (fit == st.followers.end()) {
    return;
  }
  auto& f = fit->second;
  f.fetching = false;
  if (a.gone) {
    gone.push_back(f.sink);
    return;
  }
  if (!a.ok) {
    if (!f.stale) {
      f.stale = true; // ask again next round, not at once (the queue may be failing over)
      retry_.emplace_back(a.sale_id, a.id);
    }
    return;
  }
  f.base = std::move(a.ticket);
  update(a.sale_id, st, a.id, f, sale_of(a.sale_id).get(), now_ms, out);
}

void queue_watcher::run() {
  using clock = std::chrono::steady_clock;
  auto next_round = clock::now() + period_;
  auto next_keep_alive = clock::now() + keep_alive_;
  sends out;
  std::vector<std::shared_ptr<stream_sink>> gone;
  std::vector<std::string> summaries;
  std::vector<std::tuple<std::string, uint64_t, std::string>> tickets;
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait_until(lk, std::min(next_round, next_keep_alive),
                   [this] { return stopping_ || !answers_.empty(); });
    if (stopping_) {
      return;
    }
    out.clear();
    gone.clear();
    summaries.clear();
    tickets.clear();
    const auto now_ms = actors::system_now_ms();
    auto done = std::move(answers_);
    answers_.clear();
    for (auto& a : done) {
      handle(a, now_ms, out, gone);
    }
    const auto now = clock::now();
    if (now >= next_round) {
      next_round = now + period_;
      stale_.insert(stale_.end(), retry_.begin(), retry_.end());
      retry_.clear();
      for (auto& [sale_id, st] : sales_) {
        if (!st.watching && !st.followers.empty()) {
          st.watching = true;
          summaries.push_back(sale_id);
        }
      }
    }
    // Tickets to ask again: as answers free room, not only once a round (after a lottery every
    // stream of the sale asks once; they go max_fetches_ at a time, back to back).
    while (fetching_ < max_fetches_ && !stale_.empty()) {
      auto [sale_id, id] = std::move(stale_.front());
      stale_.pop_front();
      auto it = sales_.find(sale_id);
      if (it == sales_.end()) {
        continue;
      }
      auto fit = it->second.followers.find(id);
      if (fit == it->second.followers.end() || fit->second.fetching) {
        continue;
      }
      fit->second.stale = false;
      fit->second.fetching = true;
      ++fetching_;
      tickets.emplace_back(sale_id, id, fit->second.base.ticket);
    }
    if (now >= next_keep_alive) {
      next_keep_alive = now + keep_alive_;
      for (auto& [sale_id, st] : sales_) {
        for (auto& [id, f] : st.followers) {
          out.emplace_back(f.sink, std::string{stream_keep_alive});
        }
      }
    }
    lk.unlock();
    // Outside the lock: sending posts to the connections; asking sends requests; closing a
    // stream unsubscribes it.
    uint64_t events = 0;
    for (auto& [sink, text] : out) {
      events += text.front() == 'e' ? 1 : 0;
      sink->send(std::move(text));
    }
    env_.metrics.stream_events.fetch_add(events, std::memory_order_relaxed);
    out.clear();
    for (auto& sink : gone) {
      sink->close();
    }
    gone.clear();
    for (const auto& sale_id : summaries) {
      ask_summary(sale_id);
    }
    for (const auto& [sale_id, id, ticket] : tickets) {
      ask_ticket(sale_id, id, ticket);
    }
    lk.lock();
  }
}

void stream_ticket(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p, responder r) {
  if (auto refused = find_queue(*env, p[0], &p[1])) {
    return r(std::move(*refused));
  }
  if (!env->queues) {
    return r(not_found("no such ticket"));
  }
  auto taken = take_stream_slot(*env);
  if (auto* busy = std::get_if<http_response>(&taken)) {
    return r(std::move(*busy));
  }
  auto held = std::get<stream_slot>(std::move(taken));
  ask<actors::ticket_view>(
      *env, env->sale_queues->acquire_routed(p[0]),
      [env, r, held](actors::ticket_view& t) mutable {
        auto slot = std::move(*held);
        auto resp = event_stream([env, t, slot](std::shared_ptr<stream_sink> s) {
          auto json = ticket_json(t);
          std::string first{stream_retry};
          first += position_event(json);
          env->metrics.stream_events.fetch_add(1, std::memory_order_relaxed);
          s->send(std::move(first));
          env->queues->subscribe(std::move(s), t, t, std::move(json), slot);
        });
        slot.reset(); // the stream's producer holds it now
        r(std::move(resp));
      },
      [r, held](caf::error& err) mutable {
        held->reset();
        r(to_http_error(err));
      },
      caf::get_atom::value, std::move(p[1]));
}

} // namespace surge::net::bridge
