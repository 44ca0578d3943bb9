#include "fulfilment.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>
#include <set>
#include <sstream>

#include "surge/config/log.hpp"
#include "surge/net/json.hpp"
#include "surge/net/payments/http_client.hpp"
#include "surge/net/payments/webhook.hpp"
#include "surge/net/text.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::runtime {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto lg = surge::log::get("webhooks");
  return lg;
}

/// How long an earlier event of an order with no delivery row yet holds the later ones back
/// (persistence/webhooks.hpp): far beyond a consumer's lag, short enough that an event lost on
/// the way (or older than the endpoint) does not stop an order's later events for long.
constexpr std::chrono::minutes missing_event_wait{5};

/// Beyond webhooks.timeout, how long a claimed delivery stays leased (a dispatcher that dies
/// mid-attempt leaves it due again after this).
constexpr std::chrono::seconds lease_margin{30};

/// `name=value,...` into pairs; a message naming `setting` and the entry when one has no '='
/// or an empty side.
std::variant<std::vector<std::pair<std::string, std::string>>, std::string>
split_pairs(std::string_view text, const char* setting, bool secret_values) {
  std::vector<std::pair<std::string, std::string>> out;
  if (net::text::trim_space(text).empty()) {
    return out;
  }
  for (;;) {
    const auto comma = text.find(',');
    const auto entry = net::text::trim_space(text.substr(0, comma));
    const auto eq = entry.find('=');
    const std::string shown = secret_values ? "'" + std::string{entry.substr(0, eq)} + "=...'"
                                            : "'" + std::string{entry} + "'";
    if (eq == std::string_view::npos || net::text::trim_space(entry.substr(0, eq)).empty() ||
        net::text::trim_space(entry.substr(eq + 1)).empty()) {
      return std::string{setting} + ": " + shown + " is not name=value";
    }
    out.emplace_back(std::string{net::text::trim_space(entry.substr(0, eq))},
                     std::string{net::text::trim_space(entry.substr(eq + 1))});
    if (comma == std::string_view::npos) {
      return out;
    }
    text.remove_prefix(comma + 1);
  }
}

bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
}

/// A word of [a-z0-9_]+, or with `dotted` such words joined by single dots: event types.
bool valid_type_word(std::string_view s, bool dotted) {
  if (s.empty() || s.size() > 64 || s.front() == '.' || s.back() == '.' ||
      s.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [dotted](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (dotted && c == '.');
  });
}

const std::string* field(const std::vector<std::pair<std::string, std::string>>& fields,
                         std::string_view name) {
  for (const auto& [k, v] : fields) {
    if (k == name) {
      return &v;
    }
  }
  return nullptr;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

std::variant<std::vector<webhook_target>, std::string>
parse_webhook_targets(std::string_view endpoints, std::string_view secrets) {
  auto eps = split_pairs(endpoints, "webhooks.endpoints", false);
  if (auto* err = std::get_if<std::string>(&eps)) {
    return *err;
  }
  auto keys = split_pairs(secrets, "webhooks.secrets", true);
  if (auto* err = std::get_if<std::string>(&keys)) {
    return *err;
  }
  std::vector<webhook_target> out;
  for (auto& [name, url] : std::get<0>(eps)) {
    if (!valid_name(name)) {
      return "webhooks.endpoints: '" + name + "': the name must be letters, digits, '_' or '-'";
    }
    if (std::any_of(out.begin(), out.end(), [&](const auto& t) { return t.name == name; })) {
      return "webhooks.endpoints: the name '" + name + "' appears twice";
    }
    auto parsed = net::payments::parse_http_url(url, true);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      return "webhooks.endpoints: '" + name + "=" + url + "': " + *err;
    }
    out.push_back(webhook_target{name, std::get<net::payments::http_url>(std::move(parsed)), {}});
  }
  std::set<std::string> seen;
  for (auto& [name, secret] : std::get<0>(keys)) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& t) { return t.name == name; });
    if (it == out.end()) {
      return "webhooks.secrets: '" + name + "' is not an endpoint in webhooks.endpoints";
    }
    if (!seen.insert(name).second) {
      return "webhooks.secrets: '" + name + "' appears twice";
    }
    if (secret.size() < 16) {
      return "webhooks.secrets: the secret of '" + name + "' is shorter than 16 characters";
    }
    it->secret = secret;
  }
  for (const auto& t : out) {
    if (t.secret.empty()) {
      return "webhooks.secrets: no secret for the endpoint '" + t.name + "'";
    }
  }
  return out;
}

std::variant<order_event, std::string>
event_of_entry(std::string_view topic,
               const std::vector<std::pair<std::string, std::string>>& fields) {
  const auto* id = field(fields, "event_id");
  const auto* key = field(fields, "key");
  const auto* payload = field(fields, "payload");
  if (id == nullptr || key == nullptr || payload == nullptr) {
    return std::string{"the entry lacks event_id, key or payload"};
  }
  order_event ev;
  const auto [end, ec] = std::from_chars(id->data(), id->data() + id->size(), ev.event_id);
  if (ec != std::errc{} || end != id->data() + id->size() || ev.event_id <= 0) {
    return "event_id '" + id->substr(0, 32) + "' is not a positive integer";
  }
  if (key->empty() || key->size() > 200 || !net::json::valid_utf8(*key)) {
    return std::string{"the key (order id) is empty, too long or not UTF-8"};
  }
  ev.order_id = *key;
  auto parsed = net::json::parse(*payload);
  if (auto* err = std::get_if<net::json::parse_error>(&parsed)) {
    return "the payload is not JSON: " + err->message;
  }
  const auto& data = std::get<net::json::value>(parsed);
  if (!data.is_object()) {
    return std::string{"the payload is not a JSON object"};
  }
  // An order's event is named by its status; a refund's names itself (order.refunded, ...).
  const bool is_order = topic == "orders";
  const char* what = is_order ? "status" : "event";
  const auto* word = data.find(what);
  if (word == nullptr || !word->is_string() ||
      !valid_type_word(std::get<std::string>(word->get()), !is_order)) {
    return std::string{"the payload has no valid \""} + what + "\"";
  }
  ev.type = (is_order ? "order." : "") + std::get<std::string>(word->get());
  ev.body = "{\"id\":\"evt_" + std::to_string(ev.event_id) + "\",\"type\":";
  net::json::append_quoted(ev.body, ev.type);
  ev.body += ",\"order_id\":";
  net::json::append_quoted(ev.body, ev.order_id);
  ev.body += ",\"data\":" + net::json::serialize(data) + "}";
  return ev;
}

std::optional<std::chrono::milliseconds> retry_after(const retry_policy& p, int attempt,
                                                     int64_t first_attempt_ms, int64_t now_ms,
                                                     double jitter) {
  const int64_t left = first_attempt_ms + p.give_up_after.count() - now_ms;
  if (left <= 0) {
    return std::nullopt;
  }
  // base * 2^(attempt-1) without overflow: past 2^40 it is beyond any max anyway.
  const int shift = std::clamp(attempt - 1, 0, 40);
  const double grown = static_cast<double>(p.base.count()) * std::ldexp(1.0, shift);
  double wait = std::min(grown, static_cast<double>(p.max.count()));
  wait *= 1.0 - 0.1 * std::clamp(jitter, 0.0, 0.999);
  const auto ms = std::max<int64_t>(1, static_cast<int64_t>(wait));
  return std::chrono::milliseconds{std::min(ms, left)};
}

// ---------------------------------------------------------------------------------------------

struct fulfilment::target_client {
  webhook_target target;
  std::unique_ptr<net::payments::detail::http_client> http;
};

/// One thread sending due deliveries, on its own connection.
class fulfilment::dispatcher {
 public:
  dispatcher(fulfilment& f, std::size_t index)
      : f_(f)
      , rng_(std::random_device{}() + index)
      , loop_("webhooks", std::chrono::milliseconds{250}, [this] { step(); }) {}

  void stop() {
    stopping_ = true;
    loop_.stop();
  }

 private:
  void step() {
    if (!reconnect(store_,
                   [this] { return persistence::make_pg_webhook_store(f_.opts_.pg_url); })) {
      return;
    }
    for (int n = 0; n < 100 && !stopping_; ++n) {
      auto d = store_->claim(f_.opts_.timeout + lease_margin, missing_event_wait);
      if (!d) {
        logger()->warn("webhooks: claiming a delivery: {}", caf::to_string(d.error()));
        return;
      }
      if (!*d) {
        return; // nothing due
      }
      send(**d);
    }
  }

  void send(const persistence::webhook_delivery& d) {
    const auto started = std::chrono::steady_clock::now();
    persistence::webhook_store::outcome o;
    auto it = std::find_if(f_.clients_.begin(), f_.clients_.end(),
                           [&](const auto& c) { return c->target.name == d.endpoint; });
    if (it == f_.clients_.end()) {
      o.error = "the endpoint is not in webhooks.endpoints on this node";
    } else {
      const auto& t = (*it)->target;
      const int64_t now_s = unix_ms() / 1000;
      auto r = (*it)->http->exchange(
          "POST", t.url.path, "application/json", d.body,
          {{"Surge-Signature", net::payments::form_signature(t.secret, now_s, d.body)},
           {"Surge-Event-Id", "evt_" + std::to_string(d.event_id)},
           {"Surge-Event-Type", d.event_type},
           {"Surge-Delivery-Attempt", std::to_string(d.attempts)},
           {"User-Agent", "Surge-Webhooks/1"}},
          f_.opts_.timeout);
      using oc = net::payments::detail::exchange_result::outcome;
      if (r.what == oc::answered) {
        o.status = r.status;
        o.delivered = r.status >= 200 && r.status < 300;
        if (!o.delivered) {
          o.error = "answered HTTP " + std::to_string(r.status);
        }
      } else {
        o.error = (r.what == oc::not_sent ? "not sent: " : "no answer: ") + r.error;
      }
    }
    o.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (!o.delivered) {
      o.retry_in = retry_after(f_.opts_.retry, d.attempts, d.first_attempt_at_ms, unix_ms(),
                               std::uniform_real_distribution<double>{0.0, 1.0}(rng_));
    }
    if (o.delivered) {
      ++f_.counters_.delivered;
    } else if (o.retry_in) {
      ++f_.counters_.failed;
      logger()->debug("webhooks: {} to {} (attempt {}) failed: {}; again in {} ms", d.event_type,
                      d.endpoint, d.attempts, o.error, o.retry_in->count());
    } else {
      ++f_.counters_.dead;
      logger()->warn("webhooks: gave up on event evt_{} ({}) for {} after {} attempts: {}",
                     d.event_id, d.event_type, d.endpoint, d.attempts, o.error);
    }
    if (auto err = store_->record(d.id, d.attempts, o)) {
      // The lease runs out and the delivery is sent again: the shop de-duplicates by event id.
      logger()->warn("webhooks: recording attempt {} of delivery {}: {}", d.attempts, d.id,
                     caf::to_string(err));
    }
  }

  fulfilment& f_;
  std::mt19937_64 rng_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<persistence::webhook_store> store_; ///< owned by the thread
  periodic loop_;                                     ///< last: starts the thread
};

// ---------------------------------------------------------------------------------------------

fulfilment::fulfilment(options opts)
    : opts_(std::move(opts)) {
  std::shared_ptr<boost::asio::ssl::context> tls;
  for (const auto& t : opts_.targets) {
    if (t.url.tls && !tls) {
      tls = net::payments::detail::make_client_tls(opts_.ca_file); // throws naming the file
    }
    clients_.push_back(std::make_unique<target_client>(
        target_client{t, std::make_unique<net::payments::detail::http_client>(
                             t.url.host, t.url.port, t.url.tls ? tls : nullptr)}));
  }
  if (opts_.targets.empty()) {
    return;
  }
  for (std::size_t i = 0; i < opts_.concurrency; ++i) {
    dispatchers_.push_back(std::make_unique<dispatcher>(*this, i));
  }
  consumer_ =
      std::make_unique<periodic>("fulfil", std::chrono::milliseconds{50}, [this] { consume(); });
  std::string names;
  for (const auto& t : opts_.targets) {
    names += (names.empty() ? "" : ", ") + t.name + " (" + net::payments::to_string(t.url) + ")";
  }
  logger()->info("webhooks: delivering order events to {} as consumer {} of group {}", names,
                 opts_.consumer, group);
}

fulfilment::~fulfilment() {
  stop();
}

void fulfilment::stop() {
  if (consumer_) {
    consumer_->stop();
  }
  for (auto& d : dispatchers_) {
    d->stop();
  }
}

void fulfilment::consume() {
  // Without PostgreSQL nothing could be stored: read and claim nothing, so that an outage does
  // not count against the entries' attempts.
  if (!reconnect(store_, [this] { return persistence::make_pg_webhook_store(opts_.pg_url); })) {
    return;
  }
  if (!reconnect(stream_, [this] { return persistence::make_redis_event_stream(opts_.redis); })) {
    groups_ready_.clear(); // a Redis that restarted empty has lost the groups
    return;
  }
  for (const std::string topic : topics) {
    if (!groups_ready_[topic]) {
      if (auto err = stream_->create_group(topic, group)) {
        logger()->warn("webhooks: creating group {} on stream {}: {}", group, topic,
                       caf::to_string(err));
        continue;
      }
      groups_ready_[topic] = true;
    }
    if (!claim_stale(*stream_, topic)) {
      return;
    }
    auto entries =
        stream_->read_group(topic, group, opts_.consumer, 100, std::chrono::milliseconds{200});
    if (!entries) {
      if (caf::to_string(entries.error()).find("NOGROUP") != std::string::npos) {
        groups_ready_[topic] = false; // the stream or the group was deleted: make it again
      } else {
        logger()->warn("webhooks: reading stream {}: {}", topic, caf::to_string(entries.error()));
      }
      continue;
    }
    if (!entries->empty() && !store_entries(*stream_, topic, *entries, {})) {
      return;
    }
  }
}

bool fulfilment::claim_stale(persistence::event_stream& s, const std::string& topic) {
  auto& cursor = claim_cursor_[topic];
  if (cursor.empty()) {
    cursor = "0-0";
  }
  auto got = s.autoclaim(topic, group, opts_.consumer, opts_.claim_idle, cursor, 100);
  if (!got) {
    logger()->warn("webhooks: claiming stale entries of {}: {}", topic,
                   caf::to_string(got.error()));
    return true; // the read goes on
  }
  cursor = got->next;
  if (got->entries.empty()) {
    return true;
  }
  auto mine = s.pending(topic, group, opts_.consumer, 1000);
  if (!mine) {
    return true;
  }
  std::map<std::string, int64_t> deliveries;
  for (const auto& p : *mine) {
    deliveries[p.id] = p.deliveries;
  }
  logger()->info("webhooks: claimed {} entries of {} left pending by a consumer",
                 got->entries.size(), topic);
  return store_entries(s, topic, got->entries, deliveries);
}

bool fulfilment::store_entries(persistence::event_stream& s, const std::string& topic,
                               const std::vector<persistence::event_stream::entry>& entries,
                               const std::map<std::string, int64_t>& deliveries) {
  std::vector<std::string> done; // acknowledged at the end
  auto dead_letter = [&](const persistence::event_stream::entry& e, const std::string& why,
                         int64_t times) {
    auto fields = e.fields;
    fields.emplace_back("dead_reason", why);
    fields.emplace_back("source_id", e.id);
    fields.emplace_back("deliveries", std::to_string(times));
    if (auto id = s.append(topic + ":dead", fields); !id) {
      logger()->warn("webhooks: dead-lettering entry {} of {}: {}", e.id, topic,
                     caf::to_string(id.error()));
      return; // stays pending: dead-lettered again later
    }
    logger()->error("webhooks: entry {} of stream {} moved to {}:dead: {}", e.id, topic, topic,
                    why);
    ++counters_.dead_lettered;
    done.push_back(e.id);
  };
  struct batch_item {
    std::string entry_id;
    std::vector<persistence::webhook_delivery> rows;
  };
  std::vector<batch_item> items;
  for (const auto& e : entries) {
    const auto times = deliveries.contains(e.id) ? deliveries.at(e.id) : int64_t{1};
    if (times > static_cast<int64_t>(opts_.max_attempts)) {
      dead_letter(e, "handed out " + std::to_string(times) + " times without being stored", times);
      continue;
    }
    if (e.fields.empty()) {
      done.push_back(e.id); // deleted from the stream meanwhile: nothing to deliver
      continue;
    }
    auto ev = event_of_entry(topic, e.fields);
    if (auto* why = std::get_if<std::string>(&ev)) {
      dead_letter(e, *why, times); // it would never read better
      continue;
    }
    auto& event = std::get<order_event>(ev);
    batch_item item{e.id, {}};
    for (const auto& t : opts_.targets) {
      persistence::webhook_delivery d;
      d.endpoint = t.name;
      d.event_id = event.event_id;
      d.event_type = event.type;
      d.order_id = event.order_id;
      d.body = event.body;
      item.rows.push_back(std::move(d));
    }
    items.push_back(std::move(item));
  }
  bool ok = true;
  if (!items.empty()) {
    std::vector<persistence::webhook_delivery> all;
    for (const auto& i : items) {
      all.insert(all.end(), i.rows.begin(), i.rows.end());
    }
    if (auto added = store_->enqueue(all)) {
      for (const auto& i : items) {
        done.push_back(i.entry_id);
      }
      counters_.stored += items.size();
    } else if (persistence::is(added.error(), persistence::errc::unavailable)) {
      logger()->warn("webhooks: storing deliveries: {}", caf::to_string(added.error()));
      ok = false; // pending: claimed again once PostgreSQL is back
    } else {
      // One entry the database refuses must not hold the others back: one by one; the one
      // refused stays pending and is dead-lettered after webhooks.max_attempts.
      for (const auto& i : items) {
        if (store_->enqueue(i.rows)) {
          done.push_back(i.entry_id);
          ++counters_.stored;
        }
      }
    }
  }
  if (!done.empty()) {
    if (auto acked = s.ack(topic, group, done); !acked) {
      // Handed out again after claim_idle; stored again as nothing (same event ids).
      logger()->warn("webhooks: acknowledging {} entries of {}: {}", done.size(), topic,
                     caf::to_string(acked.error()));
    }
  }
  return ok;
}

std::string fulfilment::metrics_text() const {
  std::ostringstream out;
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& v) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
        << name << ' ' << v.load() << '\n';
  };
  counter("surge_webhook_events_stored_total",
          "Order-stream entries this node's consumer stored as webhook deliveries.",
          counters_.stored);
  counter("surge_webhook_dead_letters_total",
          "Order-stream entries this node moved to a dead-letter stream (<stream>:dead).",
          counters_.dead_lettered);
  out << "# HELP surge_webhook_attempts_total Webhook delivery attempts this node made, by "
         "outcome (delivered: 2xx; failed: retried later; dead: given up).\n"
         "# TYPE surge_webhook_attempts_total counter\n"
      << "surge_webhook_attempts_total{outcome=\"delivered\"} " << counters_.delivered.load()
      << "\nsurge_webhook_attempts_total{outcome=\"failed\"} " << counters_.failed.load()
      << "\nsurge_webhook_attempts_total{outcome=\"dead\"} " << counters_.dead.load() << '\n';
  return out.str();
}

} // namespace surge::runtime
