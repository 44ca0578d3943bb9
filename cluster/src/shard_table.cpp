#include "surge/cluster/shard_table.hpp"

#include <algorithm>
#include <utility>

namespace surge::cluster {

namespace {

constexpr uint64_t epoch_bits = 40;
constexpr uint64_t epoch_mask = (uint64_t{1} << epoch_bits) - 1;
constexpr uint64_t slot_bits = 20;
constexpr uint64_t slot_mask = (uint64_t{1} << slot_bits) - 1;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr uint64_t fnv_basis = 14695981039346656037ULL;

uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

} // namespace

uint32_t shard_of(std::string_view key, uint32_t shards) {
  return static_cast<uint32_t>(fnv1a(fnv_basis, key) % std::max<uint32_t>(shards, 1));
}

uint32_t shard_of(std::string_view kind, std::string_view id, uint32_t shards) {
  const auto h = fnv1a(fnv1a(fnv1a(fnv_basis, kind), ":"), id);
  return static_cast<uint32_t>(h % std::max<uint32_t>(shards, 1));
}

shard_table::shard_table(std::string node_id, uint32_t shards)
    : node_id_(std::move(node_id))
    , shards_(std::max<uint32_t>(shards, 1))
    , words_(new std::atomic<uint64_t>[shards_]) {
  for (uint32_t i = 0; i < shards_; ++i) {
    words_[i].store(0);
  }
  slots_.push_back(node_id_); // slot 0: this node
}

uint64_t shard_table::pack(state s, uint32_t slot, uint64_t epoch) {
  return (static_cast<uint64_t>(s) << (epoch_bits + slot_bits)) |
         ((static_cast<uint64_t>(slot) & slot_mask) << epoch_bits) | (epoch & epoch_mask);
}

uint32_t shard_table::shard_of(std::string_view kind, std::string_view id) const {
  return cluster::shard_of(kind, id, shards_);
}

shard_table::entry shard_table::get(uint32_t shard) const {
  entry e;
  if (shard >= shards_) {
    return e;
  }
  const uint64_t w = words_[shard].load(std::memory_order_acquire);
  e.st = static_cast<state>(w >> (epoch_bits + slot_bits));
  e.epoch = w & epoch_mask;
  if (e.st != state::none) {
    const auto slot = static_cast<std::size_t>((w >> epoch_bits) & slot_mask);
    std::lock_guard<std::mutex> guard{mtx_};
    e.owner = slot < slots_.size() ? slots_[slot] : std::string{};
  }
  return e;
}

actors::placement::route shard_table::resolve(uint32_t shard) const {
  route r;
  if (shard >= shards_) {
    return r;
  }
  const uint64_t w = words_[shard].load(std::memory_order_acquire);
  const auto st = static_cast<state>(w >> (epoch_bits + slot_bits));
  r.epoch = w & epoch_mask;
  if (st == state::local) {
    if (!lease_live()) {
      return route{}; // our lease ran out: nobody may serve it from here
    }
    r.at = where::local;
    r.node = node_id_;
    r.gateway = local_gateway_; // set once before any traffic
    return r;
  }
  if (st == state::remote) {
    const auto slot = static_cast<std::size_t>((w >> epoch_bits) & slot_mask);
    std::lock_guard<std::mutex> guard{mtx_};
    if (slot < slots_.size()) {
      auto i = peers_.find(slots_[slot]);
      if (i != peers_.end() && i->second) {
        r.at = where::remote;
        r.node = slots_[slot];
        r.gateway = i->second;
      }
    }
  }
  return r; // none, leaving, or a peer not connected yet
}

bool shard_table::serving(uint32_t shard, uint64_t epoch) const {
  if (shard >= shards_) {
    return false;
  }
  const uint64_t w = words_[shard].load(std::memory_order_acquire);
  const auto st = static_cast<state>(w >> (epoch_bits + slot_bits));
  // Leaving: still ours until the handover commits, so entities may finish what they hold.
  return (st == state::local || st == state::leaving) && (w & epoch_mask) == (epoch & epoch_mask) &&
         lease_live();
}

bool shard_table::serving_for(uint32_t shard, uint64_t epoch,
                              std::chrono::milliseconds margin) const {
  const auto m = std::chrono::duration_cast<std::chrono::nanoseconds>(margin).count();
  return serving(shard, epoch) && now_ns() + m < deadline_ns_.load(std::memory_order_acquire);
}

void shard_table::refresh_soon() {
  std::function<void()> f;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    f = refresh_;
  }
  if (f) {
    f();
  }
}

void shard_table::on_refresh_request(std::function<void()> f) {
  std::lock_guard<std::mutex> guard{mtx_};
  refresh_ = std::move(f);
}

void shard_table::set_local_gateway(caf::actor gw) {
  local_gateway_ = std::move(gw);
}

void shard_table::set_peer(const std::string& node, caf::actor gateway) {
  std::lock_guard<std::mutex> guard{mtx_};
  peers_[node] = std::move(gateway);
}

void shard_table::drop_peer(const std::string& node) {
  std::lock_guard<std::mutex> guard{mtx_};
  peers_.erase(node);
}

caf::actor shard_table::peer(const std::string& node) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = peers_.find(node);
  return i == peers_.end() ? caf::actor{} : i->second;
}

void shard_table::suspect(const std::string& node) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (std::find(suspects_.begin(), suspects_.end(), node) == suspects_.end()) {
      suspects_.push_back(node);
    }
  }
  refresh_soon();
}

std::vector<std::string> shard_table::take_suspects() {
  std::lock_guard<std::mutex> guard{mtx_};
  return std::exchange(suspects_, {});
}

uint32_t shard_table::slot_of(const std::string& node) {
  auto i = std::find(slots_.begin(), slots_.end(), node);
  if (i != slots_.end()) {
    return static_cast<uint32_t>(i - slots_.begin());
  }
  slots_.push_back(node);
  return static_cast<uint32_t>(slots_.size() - 1);
}

void shard_table::set(uint32_t shard, state s, uint64_t epoch, const std::string& owner) {
  if (shard >= shards_) {
    return;
  }
  uint32_t slot = 0;
  if (s == state::remote) {
    std::lock_guard<std::mutex> guard{mtx_};
    slot = slot_of(owner);
  }
  words_[shard].store(pack(s, slot, epoch), std::memory_order_release);
}

void shard_table::set_lease_deadline(std::chrono::steady_clock::time_point deadline) {
  deadline_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count(),
      std::memory_order_release);
}

std::chrono::steady_clock::time_point shard_table::lease_deadline() const {
  return std::chrono::steady_clock::time_point{
      std::chrono::nanoseconds{deadline_ns_.load(std::memory_order_acquire)}};
}

bool shard_table::lease_live() const {
  return now_ns() < deadline_ns_.load(std::memory_order_acquire);
}

} // namespace surge::cluster
