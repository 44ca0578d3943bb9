#include "surge/cluster/membership_driver.hpp"

#include <algorithm>
#include <atomic>

#include <fmt/format.h>

#include "log.hpp"
#include "surge/actors/errors.hpp"

namespace surge::cluster {

namespace {

using detail::logger;

/// The text of a store error.
std::string what(const caf::error& err) {
  auto text = actors::message_of(err);
  return text.empty() ? caf::to_string(err) : text;
}

/// Microseconds since the epoch, and larger than any earlier incarnation of this process (two
/// members of one node id in one process: tests).
int64_t next_incarnation() {
  static std::atomic<int64_t> last{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto prev = last.load();
  int64_t next = 0;
  do {
    next = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, next));
  return next;
}

/// True (and logged) when the store call of a round failed: the round ends.
template <class T>
bool round_failed(const caf::expected<T>& answer) {
  if (answer) {
    return false;
  }
  logger()->warn("membership round failed: {}", what(answer.error()));
  return true;
}

} // namespace

membership_driver::membership_driver(membership_options opts, shard_table& table,
                                     membership_hooks hooks, membership_store_factory connect,
                                     membership_clock clock)
    : opts_(opts)
    , table_(table)
    , hooks_(std::move(hooks))
    , connect_(std::move(connect))
    , clock_(std::move(clock))
    , model_(std::move(opts)) {}

bool membership_driver::ensure(std::unique_ptr<persistence::membership_store>& store) {
  if (store && store->healthy()) {
    return true;
  }
  auto made = connect_();
  if (!made) {
    logger()->warn("membership: {}", caf::to_string(made.error()));
    store.reset();
    return false;
  }
  store = std::move(*made);
  return true;
}

void membership_driver::set_deadline_locked(std::chrono::steady_clock::time_point t) {
  table_.set_lease_deadline(t);
}

void membership_driver::execute(const std::vector<membership_step>& steps) {
  for (const auto& s : steps) {
    switch (s.what) {
    case membership_step::kind::set_shard:
      table_.set(s.shard, s.state, s.epoch, s.node);
      break;
    case membership_step::kind::release:
      if (s.why == membership_step::cause::lost) {
        logger()->warn("shard {} lost (now {} at epoch {})", s.shard,
                       s.node.empty() ? "unassigned" : s.node, s.epoch);
      }
      hooks_.release(s.shard, s.graceful);
      break;
    case membership_step::kind::connect:
      if (hooks_.connect) {
        hooks_.connect(s.node, s.host, s.port);
      }
      break;
    }
  }
}

std::string membership_driver::start() {
  if (!ensure(map_)) {
    return "cannot reach PostgreSQL at " + opts_.pg_url;
  }
  incarnation_ = next_incarnation();
  persistence::member_registration r;
  r.node_id = opts_.node_id;
  r.address = opts_.address;
  r.http_address = opts_.http_address;
  r.admin_address = opts_.admin_address;
  r.incarnation = incarnation_;
  r.shards = opts_.shards;
  r.lease = opts_.lease;
  r.version = opts_.version;
  r.protocol = opts_.protocol;
  auto shards = map_->register_member(r);
  if (!shards) {
    return "cannot register the member: " + what(shards.error());
  }
  if (*shards != opts_.shards) {
    return "setting 'cluster.shards' is " + std::to_string(opts_.shards) +
           " but the database has " + std::to_string(*shards) +
           " shards (fixed for the life of a database)";
  }
  std::lock_guard<std::mutex> guard{mtx_};
  set_deadline_locked(model_.registered(clock_()));
  return {};
}

bool membership_driver::beat(uint64_t actors) {
  const auto sent = clock_();
  const auto started = std::chrono::steady_clock::now(); // real time, whatever clock_ is
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (model_.fenced_out()) {
      return false;
    }
  }
  // A heartbeat that starts or ends late eats into the lease: said, with how late, so that a
  // lapse can be told from a starved thread (late start) or a slow database (slow answer).
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (last_beat_end_ != std::chrono::steady_clock::time_point{} &&
      started - last_beat_end_ > 3 * opts_.heartbeat) {
    logger()->warn("membership: heartbeat started {} ms after the previous one ended (every {} "
                   "ms): this thread waited for a CPU",
                   duration_cast<milliseconds>(started - last_beat_end_).count(),
                   opts_.heartbeat.count());
  }
  const auto began_ms = now_ms();
  beat_began_ms_ = began_ms;
  auto renewed = [&](bool ok) {
    beat_began_ms_ = 0;
    this->took(began_ms);
    last_beat_end_ = std::chrono::steady_clock::now();
    const auto took = last_beat_end_ - started;
    if (took > 2 * opts_.heartbeat) {
      logger()->warn("membership: heartbeat took {} ms (lease {} ms)",
                     duration_cast<milliseconds>(took).count(), opts_.lease.count());
    }
    if (hooks_.lease_renewed) {
      hooks_.lease_renewed(std::chrono::duration<double>(took).count(), ok);
    }
  };
  if (!ensure(beat_)) {
    renewed(false);
    return false; // the lease deadline passes by itself
  }
  auto outcome =
      beat_->heartbeat(opts_.node_id, incarnation_, opts_.lease, actors, opts_.cut_off_grace);
  renewed(outcome && *outcome == persistence::heartbeat_outcome::renewed);
  if (!outcome) {
    logger()->warn("heartbeat failed: {}", what(outcome.error()));
    return false;
  }
  std::lock_guard<std::mutex> guard{mtx_};
  if (*outcome == persistence::heartbeat_outcome::cut_off) {
    if (!cut_off_) {
      logger()->warn("membership: most members cannot reach this node: its lease is not renewed "
                     "and it stops serving until they can again");
    }
    cut_off_ = true;
    model_.cut_off(clock_());
    set_deadline_locked(model_.lease_deadline());
    return false;
  }
  if (cut_off_ && *outcome == persistence::heartbeat_outcome::renewed) {
    logger()->info("membership: the other members reach this node again");
  }
  cut_off_ = false;
  const auto out = model_.heartbeat_answered(*outcome == persistence::heartbeat_outcome::renewed,
                                             sent, clock_());
  if (out.deadline) {
    set_deadline_locked(*out.deadline);
  }
  if (out.lapsed) {
    logger()->warn("membership: the lease lapsed; serving again once the map is applied");
  }
  return out.lapsed || out.fenced;
}

void membership_driver::round() {
  const auto began_ms = now_ms();
  const auto started = std::chrono::steady_clock::now(); // real time, whatever clock_ is
  round_began_ms_ = began_ms;
  round_steps();
  round_began_ms_ = 0;
  took(began_ms);
  if (const auto real = std::chrono::steady_clock::now() - started; real > opts_.lease / 2) {
    logger()->warn("membership: a map round took {} ms (lease {} ms)",
                   std::chrono::duration_cast<std::chrono::milliseconds>(real).count(),
                   opts_.lease.count());
  }
}

void membership_driver::round_steps() {
  if (!ensure(map_)) {
    return; // the lease deadline passes by itself
  }
  std::optional<std::vector<membership_step>> dropped;
  bool live = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    dropped = model_.drop_if_fenced();
  }
  if (dropped) {
    execute(*dropped);
    logger()->error("membership: another incarnation registered this node id: this node serves "
                    "no shard");
  }
  run_drain_requests();
  end_dead_suspects();
  report_unreachable_peers();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    live = model_.allocates(clock_());
  }
  if (live && !allocate_round()) {
    return;
  }
  std::vector<uint32_t> taken;
  if (!read_and_apply(taken)) {
    return;
  }
  {
    // After a lapse: the map is applied (lost shards dropped), so the lease renewed by the
    // heartbeat may count again, from when that heartbeat was sent.
    std::lock_guard<std::mutex> guard{mtx_};
    bool revived = false;
    if (auto deadline = model_.after_map(clock_(), revived)) {
      set_deadline_locked(*deadline);
    }
    if (revived) {
      logger()->info("membership: the lease is live again");
    }
  }
  if (!finish_handovers()) {
    return;
  }
  wake_holds(taken);
}

void membership_driver::run_drain_requests() {
  decltype(drains_) todo;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    todo.swap(drains_);
  }
  for (auto& req : todo) {
    if (req.undrained) {
      auto found = map_->clear_draining(req.node);
      if (!found) {
        logger()->warn("undrain of {}: {}", req.node, what(found.error()));
      } else if (*found) {
        logger()->info("node {} is up (undrained)", req.node);
      }
      req.undrained(std::move(found));
      continue;
    }
    auto answer = map_->set_draining(req.node);
    if (!answer) {
      logger()->warn("drain of {}: {}", req.node, what(answer.error()));
    } else if (*answer == persistence::drain_outcome::draining) {
      logger()->info("node {} is draining", req.node);
    } else if (*answer == persistence::drain_outcome::last_serving) {
      logger()->warn("drain of {} refused: no other member would still serve", req.node);
    }
    req.drained(std::move(answer));
  }
}

void membership_driver::end_dead_suspects() {
  std::map<std::string, std::chrono::steady_clock::time_point> suspects;
  const auto now = clock_();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& node : table_.take_suspects()) {
      unreachable_.insert(node);
      suspects_.try_emplace(std::move(node), now);
    }
    suspects = suspects_;
  }
  if (suspects.empty()) {
    return;
  }
  auto members = map_->members();
  if (round_failed(members)) {
    return;
  }
  std::vector<std::string> done;
  for (const auto& [node, since] : suspects) {
    auto m = std::find_if(members->begin(), members->end(),
                          [&](const auto& r) { return r.node_id == node; });
    // Not a live member any more (expired, left, gone), or alive after all for a lease.
    if (m == members->end() || !m->live || m->status == "left" || now - since > opts_.lease) {
      done.push_back(node);
      continue;
    }
    auto gone = map_->expire_if_gone(m->node_id, m->incarnation);
    if (round_failed(gone)) {
      return;
    }
    if (*gone) {
      logger()->warn("node {}: its connection to this node closed and PostgreSQL has no session "
                     "of it any more (its process ended): its lease ends now",
                     node);
      done.push_back(node);
    }
  }
  std::lock_guard<std::mutex> guard{mtx_};
  for (const auto& node : done) {
    suspects_.erase(node);
  }
}

void membership_driver::report_unreachable_peers() {
  const auto now = clock_();
  std::vector<std::string> list;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    const auto& nodes = model_.nodes();
    for (auto i = unreachable_.begin(); i != unreachable_.end();) {
      auto n = std::find_if(nodes.begin(), nodes.end(),
                            [&](const node_info& x) { return x.node_id == *i; });
      // Reached again, or not serving anyway (down, left): nothing to report.
      const bool drop =
          table_.peer(*i) || n == nodes.end() || n->status == "down" || n->status == "left";
      i = drop ? unreachable_.erase(i) : std::next(i);
    }
    list.assign(unreachable_.begin(), unreachable_.end());
    // A report counts for a lease: say it again well before that.
    if (list == reported_ && (list.empty() || now - reported_at_ < opts_.lease / 2)) {
      return;
    }
  }
  if (auto err = map_->report_unreachable(opts_.node_id, list)) {
    logger()->warn("membership: could not report unreachable peers: {}", what(err));
    return;
  }
  if (!list.empty() && list != reported_) {
    logger()->warn("membership: cannot reach member(s) {} since their connection went down",
                   fmt::join(list, ", "));
  }
  std::lock_guard<std::mutex> guard{mtx_};
  reported_ = std::move(list);
  reported_at_ = now;
}

int64_t membership_driver::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_().time_since_epoch()).count();
}

void membership_driver::took(int64_t began_ms) {
  const auto done_ms = now_ms();
  if (done_ms - slow_at_ms_ > 5 * opts_.lease.count() || done_ms - began_ms >= slow_ms_) {
    slow_ms_ = done_ms - began_ms;
    slow_at_ms_ = done_ms;
  }
}

std::chrono::milliseconds membership_driver::patience() const {
  const auto now = now_ms();
  int64_t worst = now - slow_at_ms_ <= 5 * opts_.lease.count() ? slow_ms_.load() : 0;
  for (const auto began : {beat_began_ms_.load(), round_began_ms_.load()}) {
    if (began != 0) {
      worst = std::max(worst, now - began);
    }
  }
  return std::chrono::milliseconds{std::clamp<int64_t>(worst, 0, 2 * opts_.lease.count())};
}

bool membership_driver::allocate_round() {
  allocation_plan planned;
  auto done =
      map_->allocation_round([&](const std::vector<persistence::member_record>& members,
                                 const std::vector<persistence::shard_lease_record>& leases) {
        planned = model_.plan(members, leases, patience()); // reads options only: no lock
        return membership_model::changes_of(planned);
      });
  if (round_failed(done)) {
    return false;
  }
  if (*done && ((*done)->assigned > 0 || !planned.moves.empty())) {
    logger()->info("allocator: {} shard(s) assigned, {} move(s) planned, {} cancelled",
                   (*done)->assigned, planned.moves.size(), planned.cancels.size());
  }
  return true;
}

bool membership_driver::read_and_apply(std::vector<uint32_t>& taken) {
  auto members = map_->members();
  if (round_failed(members)) {
    return false;
  }
  auto leases = map_->leases();
  if (round_failed(leases)) {
    return false;
  }
  std::vector<std::string> connected;
  for (const auto& m : *members) {
    if (table_.peer(m.node_id)) {
      connected.push_back(m.node_id);
    }
  }
  auto is_connected = [&](const std::string& node) {
    return std::find(connected.begin(), connected.end(), node) != connected.end();
  };
  membership_model::map_outcome out;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    out = model_.apply_map(*members, *leases, clock_(), is_connected);
  }
  execute(out.steps);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    model_.map_applied();
  }
  taken = std::move(out.taken);
  return true;
}

bool membership_driver::finish_handovers() {
  std::vector<uint32_t> shards;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    shards = model_.handovers();
  }
  for (auto shard : shards) {
    const auto left = hooks_.local_count(shard);
    membership_model::handover_decision d;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      d = model_.decide_handover(shard, left, clock_());
    }
    if (!d.complete) {
      continue;
    }
    if (d.overdue) {
      logger()->warn("handover of shard {} overdue: stopping its entities", shard);
      hooks_.release(shard, false);
    }
    auto epoch = map_->complete_handover(opts_.node_id, shard, d.epoch, d.target);
    if (round_failed(epoch)) {
      return false;
    }
    std::vector<membership_step> steps;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      steps = model_.handover_done(shard, *epoch);
    }
    execute(steps);
    if (*epoch) {
      logger()->debug("shard {} handed over to {}", shard, d.target);
    }
  }
  return true;
}

bool membership_driver::wake_holds(const std::vector<uint32_t>& taken) {
  if (taken.empty() || !hooks_.wake_sku) {
    return true;
  }
  auto holding = map_->skus_holding();
  if (round_failed(holding)) {
    return false;
  }
  std::vector<std::string> wake;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    wake = model_.skus_to_wake(taken, *holding);
  }
  for (const auto& sku : wake) {
    hooks_.wake_sku(sku);
  }
  return true;
}

void membership_driver::ask_drain(const std::string& node, drain_done done) {
  std::lock_guard<std::mutex> guard{mtx_};
  drains_.push_back(status_request{node, std::move(done), {}});
}

void membership_driver::request_drain(const std::string& node, std::function<void(bool)> done) {
  ask_drain(node, [done = std::move(done)](caf::expected<persistence::drain_outcome> answer) {
    done(answer && *answer == persistence::drain_outcome::draining);
  });
}

void membership_driver::ask_undrain(const std::string& node, undrain_done done) {
  std::lock_guard<std::mutex> guard{mtx_};
  drains_.push_back(status_request{node, {}, std::move(done)});
}

void membership_driver::stop() {
  bool fenced = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    fenced = model_.fenced_out();
  }
  // Mark the member left so that its shards (if any) are reassigned at once.
  if (map_ && map_->healthy() && !fenced) {
    if (auto left = map_->mark_left(opts_.node_id, incarnation_); !left) {
      logger()->warn("membership: could not mark the member left: {}", what(left.error()));
    }
  }
  std::lock_guard<std::mutex> guard{mtx_};
  set_deadline_locked(model_.stopped());
}

bool membership_driver::ready() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return model_.ready(clock_());
}

std::chrono::steady_clock::time_point membership_driver::next_round() const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (model_.handovers_pending()) {
    return clock_() + std::chrono::milliseconds{10};
  }
  if (!suspects_.empty()) {
    return clock_() + membership_model::failover_poll;
  }
  return model_.next_round(clock_());
}

bool membership_driver::handovers_pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return model_.handovers_pending();
}

std::vector<node_info> membership_driver::nodes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return model_.nodes();
}

std::vector<shard_info> membership_driver::shard_map() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return model_.shards();
}

} // namespace surge::cluster
