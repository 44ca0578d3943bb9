// The outgoing webhooks' delivery log (runtime/src/fulfilment.hpp), read and steered on the
// webhook pool's threads: what each shop endpoint was sent, how often, what it answered, and
// "deliver again" for one it lost or that was given up on.

#include <charconv>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "errors.hpp"
#include "handlers.hpp"
#include "surge/net/json_writer.hpp"

namespace surge::net::bridge {

namespace {

/// Runs `job(store)` on the webhook pool; 503 when this node has none or it cannot reach
/// PostgreSQL.
template <class Job>
void on_webhook_log(bridge_env& env, responder& r, Job job) {
  if (env.webhook_log == nullptr) {
    return r(error_response(503, "unavailable", "the webhook log is not available on this node"));
  }
  env.webhook_log->submit([r, job = std::move(job)](persistence::webhook_store* db) mutable {
    if (db == nullptr) {
      return r(error_response(503, "unavailable", "webhook log unavailable"));
    }
    job(*db);
  });
}

/// A positive integer in decimal, or nullopt.
std::optional<int64_t> positive(std::string_view s) {
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || n < 1) {
    return std::nullopt;
  }
  return n;
}

void time_member(json::writer& w, const char* name, int64_t ms) {
  if (ms > 0) {
    w.member(name, rfc3339_ms(ms));
  } else {
    w.member_null(name);
  }
}

/// The members of a delivery as the log shows it (into an open object); with `body` its JSON
/// body too.
void delivery_members(json::writer& w, const persistence::webhook_delivery& d, bool body) {
  w.member("id", d.id).member("endpoint", d.endpoint);
  w.member("event_id", "evt_" + std::to_string(d.event_id)).member("event_type", d.event_type);
  w.member("order_id", d.order_id).member("status", d.status).member("attempts", d.attempts);
  if (d.last_status > 0) {
    w.member("last_status", d.last_status);
  } else {
    w.member_null("last_status");
  }
  w.member("last_error", d.last_error);
  time_member(w, "created_at", d.created_at_ms);
  time_member(w, "first_attempt_at", d.first_attempt_at_ms);
  time_member(w, "last_attempt_at", d.last_attempt_at_ms);
  time_member(w, "next_attempt_at", d.status == "pending" ? d.next_attempt_at_ms : 0);
  time_member(w, "delivered_at", d.delivered_at_ms);
  if (body) {
    w.member("body", d.body);
  }
}

/// The filter of GET /admin/v1/webhooks/deliveries, or the 400 naming the bad parameter.
std::variant<persistence::webhook_store::filter, http_response> filter_of(const http_request& req) {
  static const std::set<std::string> known{"endpoint", "order_id", "status", "before", "limit"};
  for (const auto& [name, value] : req.query) {
    if (known.count(name) == 0) {
      return bad_request("unknown parameter '" + name + "'");
    }
  }
  persistence::webhook_store::filter f;
  auto text = [&](const char* name) { return std::string{req.param(name).value_or("")}; };
  f.endpoint = text("endpoint");
  f.order_id = text("order_id");
  if (f.endpoint.size() > 64 || f.order_id.size() > 200) {
    return bad_request("'endpoint' or 'order_id' is too long");
  }
  f.status = text("status");
  if (!f.status.empty() && f.status != "pending" && f.status != "delivered" && f.status != "dead") {
    return bad_request("'status' must be one of pending, delivered, dead");
  }
  if (auto v = text("before"); !v.empty()) {
    auto n = positive(v);
    if (!n) {
      return bad_request("'before' must be a delivery id");
    }
    f.before_id = *n;
  }
  if (auto v = text("limit"); !v.empty()) {
    auto n = positive(v);
    if (!n || *n > 200) {
      return bad_request("'limit' must be an integer between 1 and 200");
    }
    f.limit = static_cast<std::size_t>(*n);
  }
  return f;
}

} // namespace

void list_webhook_endpoints(std::shared_ptr<bridge_env> env, http_request&&, path_params&&,
                            responder r) {
  on_webhook_log(*env, r, [env, r](persistence::webhook_store& db) {
    auto stats = db.stats();
    if (!stats) {
      return r(to_http_error(stats.error()));
    }
    json::writer w{256};
    w.begin_object().key("endpoints").begin_array();
    // Every configured endpoint, and any other the log still holds (one removed since).
    std::set<std::string> listed;
    auto write = [&](const std::string& name, const std::string* url) {
      persistence::webhook_endpoint_stats s{name};
      for (const auto& x : *stats) {
        if (x.endpoint == name) {
          s = x;
        }
      }
      w.begin_object().member("name", name);
      if (url != nullptr) {
        w.member("url", *url);
      } else {
        w.member_null("url");
      }
      w.member("configured", url != nullptr).member("pending", s.pending);
      w.member("delivered", s.delivered).member("dead", s.dead);
      time_member(w, "oldest_pending_at", s.oldest_pending_ms);
      w.end_object();
      listed.insert(name);
    };
    for (const auto& [name, url] : env->webhook_endpoints) {
      write(name, &url);
    }
    for (const auto& s : *stats) {
      if (!listed.contains(s.endpoint)) {
        write(s.endpoint, nullptr);
      }
    }
    w.end_array();
    r(json_response(200, w.end_object().take()));
  });
}

void list_webhook_deliveries(std::shared_ptr<bridge_env> env, http_request&& req, path_params&&,
                             responder r) {
  auto parsed = filter_of(req);
  if (auto* refused = std::get_if<http_response>(&parsed)) {
    return r(std::move(*refused));
  }
  on_webhook_log(*env, r,
                 [f = std::get<persistence::webhook_store::filter>(std::move(parsed)),
                  r](persistence::webhook_store& db) {
                   auto page = db.list(f);
                   if (!page) {
                     return r(to_http_error(page.error()));
                   }
                   json::writer w{64 + page->size() * 400};
                   w.begin_object().key("items").begin_array();
                   for (const auto& d : *page) {
                     w.begin_object();
                     delivery_members(w, d, false);
                     w.end_object();
                   }
                   w.end_array();
                   if (page->size() == f.limit && !page->empty()) {
                     w.member("next_before", page->back().id);
                   } else {
                     w.member_null("next_before");
                   }
                   r(json_response(200, w.end_object().take()));
                 });
}

void get_webhook_delivery(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p,
                          responder r) {
  auto id = positive(p[0]);
  if (!id) {
    return r(not_found("no such delivery"));
  }
  on_webhook_log(*env, r, [id = *id, r](persistence::webhook_store& db) {
    auto got = db.get(id);
    if (!got) {
      return r(to_http_error(got.error()));
    }
    if (!*got) {
      return r(not_found("no such delivery"));
    }
    const auto& [d, attempts] = **got;
    json::writer out{1024 + d.body.size() + attempts.size() * 160};
    out.begin_object();
    delivery_members(out, d, true);
    out.key("history").begin_array();
    for (const auto& a : attempts) {
      out.begin_object().member("attempt", a.attempt);
      time_member(out, "at", a.at_ms);
      if (a.status > 0) {
        out.member("status", a.status);
      } else {
        out.member_null("status");
      }
      out.member("error", a.error).member("duration_ms", a.duration_ms).end_object();
    }
    out.end_array();
    r(json_response(200, out.end_object().take()));
  });
}

void redeliver_webhook(std::shared_ptr<bridge_env> env, http_request&&, path_params&& p,
                       responder r) {
  auto id = positive(p[0]);
  if (!id) {
    return r(not_found("no such delivery"));
  }
  on_webhook_log(*env, r, [id = *id, r](persistence::webhook_store& db) {
    auto done = db.redeliver(id);
    if (!done) {
      return r(to_http_error(done.error()));
    }
    if (!*done) {
      return r(not_found("no such delivery"));
    }
    auto got = db.get(id);
    if (!got || !*got) {
      return r(json_response(202, "{\"id\":" + std::to_string(id) + ",\"status\":\"pending\"}"));
    }
    json::writer w{1024};
    w.begin_object();
    delivery_members(w, (*got)->first, false);
    r(json_response(202, w.end_object().take()));
  });
}

} // namespace surge::net::bridge
