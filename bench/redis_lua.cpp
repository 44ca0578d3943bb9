// The Redis baseline of `hot-sku`: what a shop that keeps stock in Redis does. One key per SKU
// and a Lua script that checks and decrements it atomically, run with EVALSHA over --clients
// connections, each keeping its share of --concurrency commands pipelined. Nothing is durable
// per reservation (no fsync, no journal): this is the speed Surge aims to match while durable.

#include <deque>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

#include "common.hpp"

namespace surge::bench {

namespace {

constexpr int64_t initial_qty = 1'000'000'000'000'000; // never sells out

/// KEYS[1] the SKU's quantity, ARGV[1] the units: the remaining quantity, or -1 when sold out.
constexpr const char* reserve_script = "local q = tonumber(redis.call('GET', KEYS[1]) or '0') "
                                       "local n = tonumber(ARGV[1]) "
                                       "if q >= n then return redis.call('DECRBY', KEYS[1], n) end "
                                       "return -1";

using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

reply_ptr command(redisContext* c, const char* what, const std::string& key) {
  reply_ptr r{static_cast<redisReply*>(redisCommand(c, what, key.data(), key.size())),
              &freeReplyObject};
  if (!r || r->type == REDIS_REPLY_ERROR) {
    throw std::runtime_error(std::string{"Redis: "} + what + " failed: " +
                             (r ? std::string{r->str, r->len} : std::string{c->errstr}));
  }
  return r;
}

/// One connection: keeps `depth` EVALSHA commands in flight; latency is append -> reply (the
/// commands appended while waiting go out with the next read, as a pipelining client's do).
void client_loop(redisContext* c, const std::string& sha, const std::string& key, int depth,
                 const phases& p, std::atomic<uint64_t>& measured, client_figures& out) {
  std::deque<clock::time_point> sent;
  for (uint64_t round = 0; round < 1'000'000'000'000ULL; ++round) {
    const auto now = clock::now();
    const bool more = now < p.measure_until && !interrupted().load(std::memory_order_relaxed);
    while (more && static_cast<int>(sent.size()) < depth) {
      if (redisAppendCommand(c, "EVALSHA %b 1 %b 1", sha.data(), sha.size(), key.data(),
                             key.size()) != REDIS_OK) {
        throw std::runtime_error("Redis: cannot append a command");
      }
      sent.push_back(clock::now());
    }
    if (sent.empty()) {
      return;
    }
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      // The connection is broken: what was in flight is unknown, so the check would fail.
      out.errors += sent.size();
      out.first_error = std::string{"connection: "} + c->errstr;
      return;
    }
    reply_ptr r{static_cast<redisReply*>(raw), &freeReplyObject};
    const auto t1 = clock::now();
    const auto t0 = sent.front();
    sent.pop_front();
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
      out.failed(r->type == REDIS_REPLY_ERROR ? std::string{r->str, r->len}
                                              : std::string{"sold out"});
      continue;
    }
    out.succeeded(p, t0, t1, measured);
  }
}

} // namespace

run_result run_redis_lua(const hot_sku_options& opts, const std::string& redis_prefix) {
  const std::string key = redis_prefix + "lua:stock:HOT";
  auto admin = connect_redis(opts.redis_url);
  command(admin.get(), "SET %b 1000000000000000", key);
  auto loaded = command(admin.get(), "SCRIPT LOAD %b", std::string{reserve_script});
  const std::string sha{loaded->str, loaded->len};

  const int depth = std::max(1, opts.concurrency / opts.clients);
  std::vector<redis_context> conns;
  for (int i = 0; i < opts.clients; ++i) {
    conns.push_back(connect_redis(opts.redis_url));
  }
  std::vector<std::unique_ptr<client_figures>> figures;
  for (int i = 0; i < opts.clients; ++i) {
    figures.push_back(std::make_unique<client_figures>());
  }
  std::cerr << "[redis-lua] " << opts.clients << " connections x " << depth
            << " pipelined EVALSHA\n";

  std::atomic<uint64_t> measured{0};
  const auto p = phases::starting_now(warmup_for(opts.duration), opts.duration);
  run_clients(opts.clients, "redis-lua", p, measured, "reservations", [&](int i) {
    const auto u = static_cast<std::size_t>(i);
    try {
      client_loop(conns[u].get(), sha, key, depth, p, measured, *figures[u]);
    } catch (const std::exception& e) {
      figures[u]->errors += 1;
      figures[u]->first_error = e.what();
    }
  });

  run_result res;
  res.system = "Redis Lua check-and-decrement (not durable, pipelined)";
  res.seconds = p.seconds();
  for (const auto& f : figures) {
    res.add(*f);
  }
  // Every successful script run took exactly one unit.
  auto left = command(admin.get(), "GET %b", key);
  const int64_t qty =
      left->type == REDIS_REPLY_STRING ? std::stoll(std::string{left->str, left->len}) : -1;
  command(admin.get(), "DEL %b", key);
  if (res.errors > 0) {
    res.failure =
        "redis-lua: " + std::to_string(res.errors) + " failed commands, first: " + res.first_error;
  } else if (initial_qty - qty != static_cast<int64_t>(res.total_ok)) {
    res.failure = "redis-lua: the key dropped by " + std::to_string(initial_qty - qty) + " but " +
                  std::to_string(res.total_ok) + " reservations succeeded";
  }
  return res;
}

} // namespace surge::bench
