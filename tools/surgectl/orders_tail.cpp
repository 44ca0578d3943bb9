// `surgectl orders tail`: follows the Redis stream the node's outbox relay writes (fields
// event_id, key = order id, payload = the order as JSON). The relay delivers at least once, so
// entries are de-duplicated by key: every order is printed once.

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <unordered_set>

#include "surge/net/json.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace json = surge::net::json;

namespace {

using clock = std::chrono::steady_clock;
using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;
using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;

/// The longest single XREAD BLOCK: Ctrl-C is noticed within this.
constexpr std::chrono::milliseconds poll_slice{500};

struct redis_target {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
};

/// redis://[[user]:password@]host[:port][/db]
redis_target parse_redis_url(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) {
    throw cli_error(exit_usage, "--redis expects redis://host[:port][/db], got '" + url + "'");
  }
  redis_target t;
  std::string rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    const auto auth = rest.substr(0, at);
    const auto colon = auth.find(':');
    t.password = colon == std::string::npos ? auth : auth.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  auto number = [&](const std::string& s, int lo, int hi, const char* what) {
    int x = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (ec != std::errc{} || end != s.data() + s.size() || x < lo || x > hi) {
      throw cli_error(exit_usage, std::string{"--redis: bad "} + what + " in '" + url + "'");
    }
    return x;
  };
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const auto db = rest.substr(slash + 1);
    t.db = db.empty() ? 0 : number(db, 0, 1 << 20, "database number");
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    t.port = number(rest.substr(colon + 1), 1, 65535, "port");
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) {
    t.host = rest;
  }
  return t;
}

class redis {
 public:
  explicit redis(const std::string& url)
      : url_(url) {
    const auto t = parse_redis_url(url);
    const timeval tv{3, 0};
    ctx_.reset(redisConnectWithTimeout(t.host.c_str(), t.port, tv));
    if (!ctx_ || ctx_->err != 0) {
      throw cli_error(exit_unreachable, "cannot connect to Redis at " + url + ": " +
                                            (ctx_ ? ctx_->errstr : "out of memory"));
    }
    if (!t.password.empty()) {
      command({"AUTH", t.password});
    }
    if (t.db != 0) {
      command({"SELECT", std::to_string(t.db)});
    }
  }

  /// Runs `args`; a connection failure throws exit_unreachable, an error reply exit_server_error.
  reply_ptr command(const std::vector<std::string>& args,
                    std::chrono::milliseconds io_timeout = std::chrono::seconds{3}) {
    const auto secs = io_timeout.count() / 1000;
    const timeval tv{static_cast<time_t>(secs),
                     static_cast<suseconds_t>((io_timeout.count() % 1000) * 1000)};
    redisSetTimeout(ctx_.get(), tv);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    reply_ptr r{static_cast<redisReply*>(redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()),
                                                          argv.data(), lens.data())),
                &freeReplyObject};
    if (!r) {
      throw cli_error(exit_unreachable, "Redis at " + url_ + ": " + ctx_->errstr);
    }
    if (r->type == REDIS_REPLY_ERROR) {
      throw cli_error(exit_server_error, "Redis " + args[0] + ": " + std::string{r->str, r->len});
    }
    return r;
  }

 private:
  std::string url_;
  context_ptr ctx_{nullptr, &redisFree};
};

std::string str(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
             ? std::string{r->str, r->len}
             : std::string{};
}

struct order_line {
  std::string order_id;
  std::string status = "?";
  std::string total = "?";
  std::string lines = "?";
};

/// The columns of one order from its payload (what cannot be read shows as "?").
order_line summarize(const std::string& key, const std::string& payload) {
  order_line out;
  out.order_id = key;
  auto parsed = json::parse(payload);
  const auto* v = std::get_if<json::value>(&parsed);
  if (v == nullptr || !v->is_object()) {
    return out;
  }
  auto text = [&](const char* name) -> std::string {
    const auto* m = v->find(name);
    return m != nullptr && m->is_string() ? std::get<std::string>(m->get()) : std::string{};
  };
  if (const auto s = text("status"); !s.empty()) {
    out.status = s;
  }
  if (const auto* t = v->find("total_cents"); t != nullptr && t->is_int()) {
    out.total = money(std::get<int64_t>(t->get()), text("currency"));
  }
  if (const auto* ls = v->find("lines"); ls != nullptr && ls->is_array()) {
    std::string joined;
    for (const auto& l : std::get<json::array>(ls->get())) {
      const auto* sku = l.find("sku");
      const auto* qty = l.find("qty");
      if (sku == nullptr || !sku->is_string() || qty == nullptr || !qty->is_int()) {
        continue;
      }
      joined += (joined.empty() ? "" : ",") + std::get<std::string>(sku->get()) + " x" +
                std::to_string(std::get<int64_t>(qty->get()));
    }
    out.lines = joined.empty() ? "-" : joined;
  }
  return out;
}

std::string pad(const std::string& s, std::size_t w, bool right = false) {
  if (s.size() >= w) {
    return s;
  }
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

} // namespace

int orders_tail(const tail_options& opts) {
  redis r{opts.redis_url};
  std::string last_id = opts.from;
  if (last_id == "$") {
    // Resolve "$" once, so that entries arriving between two reads are not skipped.
    auto top = r.command({"XREVRANGE", opts.stream, "+", "-", "COUNT", "1"});
    last_id = "0-0";
    if (top->type == REDIS_REPLY_ARRAY && top->elements == 1 &&
        top->element[0]->type == REDIS_REPLY_ARRAY && top->element[0]->elements >= 1) {
      last_id = str(top->element[0]->element[0]);
    }
  }

  if (!opts.json) {
    std::cout << pad("ORDER_ID", 36) << pad("STATUS", 11) << pad("TOTAL", 16, true) << "  LINES"
              << std::endl;
  }
  std::unordered_set<std::string> seen;
  uint64_t printed = 0;
  auto last_news = clock::now();
  while (!interrupted()) {
    if (opts.count && printed >= *opts.count) {
      break;
    }
    auto block = poll_slice;
    if (opts.timeout) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          last_news + *opts.timeout - clock::now());
      if (left <= std::chrono::milliseconds{0}) {
        break;
      }
      block = std::min(block, left);
    }
    const auto batch = opts.count ? std::min<uint64_t>(*opts.count - printed, 500) : 500;
    auto rep = r.command({"XREAD", "COUNT", std::to_string(std::max<uint64_t>(batch, 100)), "BLOCK",
                          std::to_string(std::max<int64_t>(block.count(), 1)), "STREAMS",
                          opts.stream, last_id},
                         block + std::chrono::seconds{3});
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
      continue; // nothing within `block`
    }
    // [[stream, [[id, [field, value, ...]], ...]]]
    const auto* streams = rep.get();
    for (std::size_t s = 0; s < streams->elements; ++s) {
      const auto* st = streams->element[s];
      if (st->type != REDIS_REPLY_ARRAY || st->elements != 2) {
        continue;
      }
      const auto* entries = st->element[1];
      for (std::size_t i = 0; i < entries->elements; ++i) {
        const auto* e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) {
          continue;
        }
        last_id = str(e->element[0]);
        std::string key;
        std::string payload;
        const auto* fields = e->element[1];
        for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
          const auto name = str(fields->element[f]);
          if (name == "key") {
            key = str(fields->element[f + 1]);
          } else if (name == "payload") {
            payload = str(fields->element[f + 1]);
          }
        }
        if (key.empty() || !seen.insert(key).second) {
          continue; // a redelivery (or not an order event)
        }
        if (opts.count && printed >= *opts.count) {
          continue;
        }
        ++printed;
        last_news = clock::now();
        if (opts.json) {
          std::cout << payload << std::endl;
        } else {
          const auto o = summarize(key, payload);
          std::cout << pad(o.order_id, 36) << pad(o.status, 11) << pad(o.total, 16, true) << "  "
                    << o.lines << std::endl;
        }
      }
    }
  }
  return exit_ok;
}

} // namespace surge::ctl
