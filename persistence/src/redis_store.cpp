#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "surge/persistence/errors.hpp"
#include "surge/persistence/orders.hpp"
#include "surge/persistence/redis.hpp"

namespace surge::persistence {

namespace {

struct redis_endpoint {
  std::string host;
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
};

bool parse_int(std::string_view text, int& out) {
  if (text.empty()) {
    return false;
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

/// Parses redis://[[user]:password@]host[:port][/db].
caf::expected<redis_endpoint> parse_redis_url(const std::string& url) {
  constexpr std::string_view scheme = "redis://";
  auto bad = [&](const char* why) {
    return make_error(errc::invalid, "malformed Redis URL '" + url + "': " + why);
  };
  if (url.rfind(scheme, 0) != 0) {
    return bad("expected redis://");
  }
  std::string_view rest{url};
  rest.remove_prefix(scheme.size());
  redis_endpoint ep;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto auth = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    auto colon = auth.find(':');
    if (colon == std::string_view::npos) {
      ep.password = std::string{auth};
    } else {
      ep.user = std::string{auth.substr(0, colon)};
      ep.password = std::string{auth.substr(colon + 1)};
    }
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    auto db = rest.substr(slash + 1);
    if (!db.empty() && (!parse_int(db, ep.db) || ep.db < 0)) {
      return bad("database is not a number");
    }
  }
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    if (!parse_int(hostport.substr(colon + 1), ep.port) || ep.port <= 0 || ep.port > 65535) {
      return bad("port is not a number in 1..65535");
    }
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty() || hostport.find_first_of(" /?#@") != std::string_view::npos) {
    return bad("missing or invalid host");
  }
  ep.host = std::string{hostport};
  return ep;
}

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

struct context_deleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;

/// One hiredis connection. Not thread-safe. Once a command fails at the connection level the
/// connection is unhealthy for good (hiredis cannot resume it); the owner makes a new one.
class redis_connection {
 public:
  redis_connection(context_ptr ctx, std::chrono::milliseconds timeout)
      : ctx_(std::move(ctx))
      , timeout_(timeout) {}

  bool healthy() const { return healthy_; }

  /// Runs a command (printf-like, %b for binary); a reply or errc::unavailable.
  template <class... Ts>
  caf::expected<reply_ptr> command(const char* fmt, Ts... args) {
    if (!healthy_) {
      return make_error(errc::unavailable, "connection to Redis is broken");
    }
    reply_ptr reply{static_cast<redisReply*>(redisCommand(ctx_.get(), fmt, args...))};
    if (!reply) {
      healthy_ = false;
      return make_error(errc::unavailable, std::string{"Redis connection error: "} +
                                               (ctx_->err != 0 ? ctx_->errstr : "no reply"));
    }
    return checked(std::move(reply));
  }

  /// Runs a command given as binary-safe arguments. `wait`: how long the server may take
  /// beyond the command timeout (a blocking read), added to the socket timeout for this call.
  caf::expected<reply_ptr> command_argv(const std::vector<std::string>& args,
                                        std::chrono::milliseconds wait = {}) {
    if (!healthy_) {
      return make_error(errc::unavailable, "connection to Redis is broken");
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    const bool extended = wait.count() > 0;
    if (extended && redisSetTimeout(ctx_.get(), to_timeval(timeout_ + wait)) != REDIS_OK) {
      healthy_ = false;
      return make_error(errc::unavailable, "cannot set the Redis command timeout");
    }
    reply_ptr reply{static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()))};
    if (!reply) {
      healthy_ = false;
      return make_error(errc::unavailable, std::string{"Redis connection error: "} +
                                               (ctx_->err != 0 ? ctx_->errstr : "no reply"));
    }
    if (extended && redisSetTimeout(ctx_.get(), to_timeval(timeout_)) != REDIS_OK) {
      healthy_ = false;
      return make_error(errc::unavailable, "cannot restore the Redis command timeout");
    }
    return checked(std::move(reply));
  }

  /// Queues a command (printf-like) in the output buffer without sending it; false when the
  /// connection is broken. get_reply() sends what is queued and reads the replies in order.
  template <class... Ts>
  bool append(const char* fmt, Ts... args) {
    if (!healthy_) {
      return false;
    }
    if (redisAppendCommand(ctx_.get(), fmt, args...) != REDIS_OK) {
      healthy_ = false;
      return false;
    }
    return true;
  }

  /// The reply to the oldest appended command not yet answered; errc::unavailable when the
  /// connection broke (then every later reply is lost too).
  caf::expected<reply_ptr> get_reply() {
    if (!healthy_) {
      return make_error(errc::unavailable, "connection to Redis is broken");
    }
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
      healthy_ = false;
      return make_error(errc::unavailable, std::string{"Redis connection error: "} +
                                               (ctx_->err != 0 ? ctx_->errstr : "no reply"));
    }
    return checked(reply_ptr{static_cast<redisReply*>(raw)});
  }

  static timeval to_timeval(std::chrono::milliseconds d) {
    const auto ms = d.count();
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  }

 private:
  static caf::expected<reply_ptr> checked(reply_ptr reply) {
    if (reply->type == REDIS_REPLY_ERROR) {
      return make_error(errc::unavailable,
                        std::string{"Redis error: "} + std::string{reply->str, reply->len});
    }
    return reply;
  }

  const context_ptr ctx_;
  const std::chrono::milliseconds timeout_;
  bool healthy_ = true;
};

caf::expected<std::unique_ptr<redis_connection>> connect(const redis_options& opts) {
  auto ep = parse_redis_url(opts.url);
  if (!ep) {
    return ep.error();
  }
  if (opts.timeout.count() <= 0) {
    return make_error(errc::invalid, "redis_options::timeout must be positive (redis.timeout)");
  }
  const timeval tv = redis_connection::to_timeval(opts.timeout);
  context_ptr ctx{redisConnectWithTimeout(ep->host.c_str(), ep->port, tv)};
  if (!ctx) {
    return make_error(errc::unavailable, "cannot allocate a Redis context");
  }
  if (ctx->err != 0) {
    return make_error(errc::unavailable, "cannot connect to Redis at " + ep->host + ":" +
                                             std::to_string(ep->port) + ": " + ctx->errstr);
  }
  if (redisSetTimeout(ctx.get(), tv) != REDIS_OK) {
    return make_error(errc::unavailable, "cannot set the Redis command timeout");
  }
  auto conn = std::make_unique<redis_connection>(std::move(ctx), opts.timeout);
  if (!ep->password.empty()) {
    auto r = ep->user.empty() ? conn->command("AUTH %b", ep->password.data(), ep->password.size())
                              : conn->command("AUTH %b %b", ep->user.data(), ep->user.size(),
                                              ep->password.data(), ep->password.size());
    if (!r) {
      return r.error();
    }
  }
  if (ep->db != 0) {
    if (auto r = conn->command("SELECT %d", ep->db); !r) {
      return r.error();
    }
  }
  return conn;
}

/// What every Redis adapter shares: its own connection and the key prefix. `Port` is the
/// interface it implements; the adapter is healthy while its connection is.
template <class Port>
class redis_adapter : public Port {
 public:
  redis_adapter(std::unique_ptr<redis_connection> conn, std::string prefix)
      : conn_(std::move(conn))
      , prefix_(std::move(prefix)) {}

  bool healthy() const override { return conn_->healthy(); }

 protected:
  /// GET `key`: its value, nullopt when the key does not exist, errc::corrupt with
  /// `not_a_value` when it holds something that is not a string (or shorter than `min_len`), or
  /// the connection's error.
  caf::expected<std::optional<std::string>>
  get_string(const std::string& key, const std::string& not_a_value, std::size_t min_len = 0) {
    auto r = conn_->command("GET %b", key.data(), key.size());
    if (!r) {
      return r.error();
    }
    const auto& reply = **r;
    if (reply.type == REDIS_REPLY_NIL) {
      return std::optional<std::string>{};
    }
    if (reply.type != REDIS_REPLY_STRING || reply.len < min_len) {
      return make_error(errc::corrupt, not_a_value);
    }
    return std::optional<std::string>{std::string{reply.str, reply.len}};
  }

  const std::unique_ptr<redis_connection> conn_;
  const std::string prefix_;
};

/// Snapshots as one binary value per stream: an 8-byte big-endian seq, then the payload. One
/// SET replaces both atomically.
class redis_snapshot_cache final : public redis_adapter<snapshot_cache> {
 public:
  using redis_adapter::redis_adapter;

  caf::error put(const snapshot& snap) override {
    std::string value(8, '\0');
    for (int i = 0; i < 8; ++i) {
      value[i] = static_cast<char>((snap.seq >> (8 * (7 - i))) & 0xff);
    }
    value += snap.payload;
    auto key = key_of(snap.stream);
    auto r = conn_->command("SET %b %b", key.data(), key.size(), value.data(), value.size());
    return r ? caf::error{} : r.error();
  }

  caf::expected<std::optional<snapshot>> get(const std::string& stream) override {
    auto value =
        get_string(key_of(stream), "snapshot value of " + stream + " is not <seq><payload>", 8);
    if (!value) {
      return value.error();
    }
    if (!*value) {
      return std::optional<snapshot>{};
    }
    const std::string& v = **value;
    uint64_t seq = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      seq = (seq << 8) | static_cast<unsigned char>(v[i]);
    }
    return std::optional<snapshot>{snapshot{stream, seq, v.substr(8)}};
  }

 private:
  std::string key_of(const std::string& stream) const { return prefix_ + "snap:" + stream; }
};

/// Carts as one binary value with a PX expiry.
class redis_cart_store final : public redis_adapter<cart_store> {
 public:
  using redis_adapter::redis_adapter;

  caf::error put(const std::string& cart_id, const std::string& payload,
                 std::chrono::seconds ttl) override {
    if (ttl.count() <= 0) {
      return make_error(errc::invalid, "cart TTL must be positive");
    }
    auto key = key_of(cart_id);
    const long long ms = std::chrono::milliseconds{ttl}.count();
    auto r = conn_->command("SET %b %b PX %lld", key.data(), key.size(), payload.data(),
                            payload.size(), ms);
    return r ? caf::error{} : r.error();
  }

  /// One pipelined round trip: every SET is queued, then the replies are read in order.
  std::vector<caf::error> put_many(const std::vector<cart_put>& puts) override {
    std::vector<caf::error> out(puts.size());
    std::vector<std::size_t> sent;
    sent.reserve(puts.size());
    std::string key;
    for (std::size_t i = 0; i < puts.size(); ++i) {
      const auto& p = puts[i];
      if (p.ttl.count() <= 0) {
        out[i] = make_error(errc::invalid, "cart TTL must be positive");
        continue;
      }
      key = key_of(p.cart_id);
      const long long ms = std::chrono::milliseconds{p.ttl}.count();
      if (!conn_->append("SET %b %b PX %lld", key.data(), key.size(), p.payload.data(),
                         p.payload.size(), ms)) {
        out[i] = make_error(errc::unavailable, "connection to Redis is broken");
        continue;
      }
      sent.push_back(i);
    }
    for (auto i : sent) {
      if (auto r = conn_->get_reply(); !r) {
        out[i] = r.error();
      }
    }
    return out;
  }

  caf::expected<std::optional<std::string>> get(const std::string& cart_id) override {
    return get_string(key_of(cart_id), "cart value of " + cart_id + " is not a string");
  }

 private:
  std::string key_of(std::string_view cart_id) const {
    std::string key;
    key.reserve(prefix_.size() + 5 + cart_id.size());
    key.append(prefix_).append("cart:").append(cart_id);
    return key;
  }
};

std::string as_string(const redisReply* r) {
  return std::string{r->str, r->len};
}

bool is_string(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

/// "$", "<ms>" or "<ms>-<seq>": what XREAD accepts as the id to read after.
bool valid_read_id(std::string_view id) {
  if (id == "$") {
    return true;
  }
  auto dash = id.find('-');
  if (dash == std::string_view::npos) {
    return all_digits(id);
  }
  return all_digits(id.substr(0, dash)) && all_digits(id.substr(dash + 1));
}

/// A Redis Stream per name (prefix + name): XADD appends, XREAD reads after an id.
class redis_event_stream final : public redis_adapter<event_stream> {
 public:
  using redis_adapter::redis_adapter;

  caf::expected<std::string>
  append(const std::string& stream,
         const std::vector<std::pair<std::string, std::string>>& fields) override {
    if (fields.empty()) {
      return make_error(errc::invalid, "a stream entry needs at least one field");
    }
    std::vector<std::string> args;
    args.reserve(3 + 2 * fields.size());
    args.emplace_back("XADD");
    args.push_back(prefix_ + stream);
    args.emplace_back("*");
    for (const auto& [k, v] : fields) {
      args.push_back(k);
      args.push_back(v);
    }
    auto r = conn_->command_argv(args);
    if (!r) {
      return r.error();
    }
    if (!is_string(r->get())) {
      return make_error(errc::corrupt, "XADD did not answer an entry id");
    }
    return as_string(r->get());
  }

  caf::expected<std::vector<entry>> read(const std::string& stream, const std::string& after_id,
                                         std::size_t count,
                                         std::chrono::milliseconds block) override {
    if (count == 0 || block.count() < 0 || !valid_read_id(after_id)) {
      return make_error(errc::invalid,
                        "XREAD needs a count > 0, a block >= 0 and an id ($, <ms> or <ms>-<seq>)");
    }
    return read_with({"XREAD"}, stream, after_id, count, block);
  }

  caf::error create_group(const std::string& stream, const std::string& group) override {
    auto r = conn_->command_argv({"XGROUP", "CREATE", prefix_ + stream, group, "0", "MKSTREAM"});
    if (!r) {
      // An existing group is what the caller wants.
      if (caf::to_string(r.error()).find("BUSYGROUP") != std::string::npos) {
        return caf::none;
      }
      return std::move(r.error());
    }
    return caf::none;
  }

  caf::expected<std::vector<entry>> read_group(const std::string& stream, const std::string& group,
                                               const std::string& consumer, std::size_t count,
                                               std::chrono::milliseconds block) override {
    if (count == 0 || block.count() < 0) {
      return make_error(errc::invalid, "XREADGROUP needs a count > 0 and a block >= 0");
    }
    return read_with({"XREADGROUP", "GROUP", group, consumer}, stream, ">", count, block);
  }

  caf::expected<std::size_t> ack(const std::string& stream, const std::string& group,
                                 const std::vector<std::string>& ids) override {
    if (ids.empty()) {
      return std::size_t{0};
    }
    std::vector<std::string> args{"XACK", prefix_ + stream, group};
    args.insert(args.end(), ids.begin(), ids.end());
    auto r = conn_->command_argv(args);
    if (!r) {
      return r.error();
    }
    if (r->get()->type != REDIS_REPLY_INTEGER) {
      return make_error(errc::corrupt, "XACK did not answer a count");
    }
    return static_cast<std::size_t>(r->get()->integer);
  }

  caf::expected<claimed> autoclaim(const std::string& stream, const std::string& group,
                                   const std::string& consumer, std::chrono::milliseconds min_idle,
                                   const std::string& cursor, std::size_t count) override {
    if (count == 0 || min_idle.count() < 0 || cursor == "$" || !valid_read_id(cursor)) {
      return make_error(errc::invalid,
                        "XAUTOCLAIM needs a count > 0, an idle time >= 0 and a start id");
    }
    auto r = conn_->command_argv({"XAUTOCLAIM", prefix_ + stream, group, consumer,
                                  std::to_string(min_idle.count()), cursor, "COUNT",
                                  std::to_string(count)});
    if (!r) {
      return r.error();
    }
    // [next, [[id, [f, v, ...]], ...], [deleted ids]] (Redis 7; 6.2 has no third element)
    const auto* reply = r->get();
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || !is_string(reply->element[0]) ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
      return make_error(errc::corrupt, "unexpected XAUTOCLAIM reply");
    }
    claimed out;
    out.next = as_string(reply->element[0]);
    if (auto err = parse_entries(reply->element[1], out.entries)) {
      return err;
    }
    return out;
  }

  caf::expected<std::vector<pending_entry>> pending(const std::string& stream,
                                                    const std::string& group,
                                                    const std::string& consumer,
                                                    std::size_t count) override {
    if (count == 0) {
      return make_error(errc::invalid, "XPENDING needs a count > 0");
    }
    auto r = conn_->command_argv(
        {"XPENDING", prefix_ + stream, group, "-", "+", std::to_string(count), consumer});
    if (!r) {
      return r.error();
    }
    // [[id, consumer, idle ms, deliveries], ...]
    const auto* reply = r->get();
    auto bad = [] { return make_error(errc::corrupt, "unexpected XPENDING reply"); };
    if (reply->type != REDIS_REPLY_ARRAY) {
      return bad();
    }
    std::vector<pending_entry> out;
    out.reserve(reply->elements);
    for (std::size_t i = 0; i < reply->elements; ++i) {
      const auto* e = reply->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 || !is_string(e->element[0]) ||
          !is_string(e->element[1]) || e->element[2]->type != REDIS_REPLY_INTEGER ||
          e->element[3]->type != REDIS_REPLY_INTEGER) {
        return bad();
      }
      out.push_back(pending_entry{as_string(e->element[0]), as_string(e->element[1]),
                                  e->element[2]->integer, e->element[3]->integer});
    }
    return out;
  }

 private:
  /// `head` (XREAD, or XREADGROUP GROUP g c) with [BLOCK block] COUNT count STREAMS
  /// <prefix+stream> <id>, waiting up to `block` for the first entry (0: not at all; BLOCK 0
  /// would wait forever), parsed.
  caf::expected<std::vector<entry>> read_with(std::vector<std::string> head,
                                              const std::string& stream, const std::string& id,
                                              std::size_t count, std::chrono::milliseconds block) {
    if (block.count() > 0) {
      head.emplace_back("BLOCK");
      head.push_back(std::to_string(block.count()));
    }
    head.emplace_back("COUNT");
    head.push_back(std::to_string(count));
    head.emplace_back("STREAMS");
    head.push_back(prefix_ + stream);
    head.push_back(id);
    auto r = conn_->command_argv(head, block);
    if (!r) {
      return r.error();
    }
    return parse(r->get());
  }

  /// Parses [[key, [[id, [f1, v1, ...]], ...]]]; nil (nothing before the timeout) is empty.
  static caf::expected<std::vector<entry>> parse(const redisReply* reply) {
    std::vector<entry> out;
    if (reply->type == REDIS_REPLY_NIL) {
      return out;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
      return make_error(errc::corrupt, "unexpected XREAD reply");
    }
    for (std::size_t s = 0; s < reply->elements; ++s) {
      const auto* st = reply->element[s];
      if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
          st->element[1]->type != REDIS_REPLY_ARRAY) {
        return make_error(errc::corrupt, "unexpected XREAD reply");
      }
      if (auto err = parse_entries(st->element[1], out)) {
        return err;
      }
    }
    return out;
  }

  /// Appends the entries of [[id, [f1, v1, ...]], ...] to `out`. An entry deleted meanwhile has
  /// nil fields (kept, with none).
  static caf::error parse_entries(const redisReply* entries, std::vector<entry>& out) {
    auto bad = [] { return make_error(errc::corrupt, "unexpected stream entries in a reply"); };
    out.reserve(out.size() + entries->elements);
    for (std::size_t i = 0; i < entries->elements; ++i) {
      const auto* e = entries->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !is_string(e->element[0])) {
        return bad();
      }
      entry x;
      x.id = as_string(e->element[0]);
      const auto* fv = e->element[1];
      if (fv->type == REDIS_REPLY_ARRAY) {
        if (fv->elements % 2 != 0) {
          return bad();
        }
        x.fields.reserve(fv->elements / 2);
        for (std::size_t j = 0; j + 1 < fv->elements; j += 2) {
          if (!is_string(fv->element[j]) || !is_string(fv->element[j + 1])) {
            return bad();
          }
          x.fields.emplace_back(as_string(fv->element[j]), as_string(fv->element[j + 1]));
        }
      } else if (fv->type != REDIS_REPLY_NIL) {
        return bad();
      }
      out.push_back(std::move(x));
    }
    return caf::none;
  }
};

} // namespace

caf::expected<std::unique_ptr<event_stream>> make_redis_event_stream(const redis_options& opts) {
  auto conn = connect(opts);
  if (!conn) {
    return conn.error();
  }
  return std::unique_ptr<event_stream>{new redis_event_stream(std::move(*conn), opts.prefix)};
}

caf::expected<std::unique_ptr<snapshot_cache>>
make_redis_snapshot_cache(const redis_options& opts) {
  auto conn = connect(opts);
  if (!conn) {
    return conn.error();
  }
  return std::unique_ptr<snapshot_cache>{new redis_snapshot_cache(std::move(*conn), opts.prefix)};
}

caf::expected<std::unique_ptr<cart_store>> make_redis_cart_store(const redis_options& opts) {
  auto conn = connect(opts);
  if (!conn) {
    return conn.error();
  }
  return std::unique_ptr<cart_store>{new redis_cart_store(std::move(*conn), opts.prefix)};
}

} // namespace surge::persistence
