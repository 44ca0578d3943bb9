#include "webhooks.hpp"

#include <ctime>
#include <exception>
#include <iostream>
#include <map>
#include <thread>
#include <utility>
#include <variant>

#include "surge/net/payments/gateway.hpp"
#include "surge/net/payments/http_client.hpp"
#include "surge/net/payments/webhook.hpp"
#include "surge/net/text.hpp"

namespace surge::paysim {

namespace json = surge::net::json;
namespace payments = surge::net::payments;
using steady = std::chrono::steady_clock;

namespace {

/// `hex` decoded, or nullopt when it is not an even number of hex digits.
std::optional<std::string> from_hex(const std::string& hex) {
  if (hex.empty() || hex.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = net::text::hex_value(hex[i]);
    const int lo = net::text::hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

} // namespace

struct webhook_sender::job {
  uint64_t row = 0;
  outgoing_event event;
  int tries = 0; ///< made so far
};

/// One --webhook-to URL and the thread that posts to it. `due` is guarded by the sender's mu_.
struct webhook_sender::worker {
  std::string gateway;
  std::string url;
  std::string secret;                  ///< form: as given
  std::optional<std::string> json_key; ///< json: the secret hex-decoded
  payments::http_url where;
  std::unique_ptr<payments::detail::http_client> client; // used by `thread` only
  std::thread thread;
  std::condition_variable wake;
  std::multimap<steady::time_point, job> due; // guarded by mu_
};

webhook_sender::webhook_sender(const std::vector<webhook_target>& targets) {
  for (const auto& t : targets) {
    auto w = std::make_unique<worker>();
    w->gateway = t.gateway;
    w->url = t.url;
    w->secret = t.secret;
    w->json_key = from_hex(t.secret);
    auto parsed = payments::parse_http_url(t.url, true);
    w->where = std::get<payments::http_url>(parsed); // REQUIRES: valid
    workers_.push_back(std::move(w));
  }
}

webhook_sender::~webhook_sender() {
  stop();
}

std::string webhook_sender::start() {
  std::lock_guard lock{mu_};
  if (started_ || stopping_) {
    return {};
  }
  for (auto& w : workers_) {
    // https: verified against the system's trust store (the shop's certificate must chain to it).
    try {
      w->client = std::make_unique<payments::detail::http_client>(
          w->where.host, w->where.port,
          w->where.tls ? payments::detail::make_client_tls({}) : nullptr);
    } catch (const std::exception& e) {
      return "webhooks of " + w->gateway + ": " + e.what();
    }
  }
  started_ = true;
  for (auto& w : workers_) {
    w->thread = std::thread{[this, raw = w.get()] { run(*raw); }};
  }
  return {};
}

void webhook_sender::stop() {
  {
    std::lock_guard lock{mu_};
    stopping_ = true;
    for (auto& w : workers_) {
      w->wake.notify_all();
    }
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) {
      w->thread.join();
    }
  }
}

bool webhook_sender::enabled(const std::string& gateway) const {
  for (const auto& w : workers_) {
    if (w->gateway == gateway) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> webhook_sender::json_key(const std::string& gateway) const {
  for (const auto& w : workers_) {
    if (w->gateway == gateway) {
      return w->json_key;
    }
  }
  return std::nullopt;
}

void webhook_sender::post(outgoing_event e) {
  worker* w = nullptr;
  for (auto& candidate : workers_) {
    if (candidate->gateway == e.gateway) {
      w = candidate.get();
    }
  }
  if (w == nullptr) {
    return;
  }
  std::lock_guard lock{mu_};
  row r;
  r.id = next_row_id_++;
  r.gateway = e.gateway;
  r.type = e.type;
  r.charge_id = e.charge_id;
  r.url = w->url;
  if (!e.form && !w->json_key) {
    r.status = "failed";
    r.error = "the secret is not hex: json-style events cannot be signed";
  } else if (w->due.size() >= max_queued) {
    r.status = "failed";
    r.error = "queue full";
  } else if (stopping_) {
    r.status = "failed";
    r.error = "stopping";
  } else {
    w->due.emplace(steady::now(), job{r.id, std::move(e), 0});
    w->wake.notify_one();
  }
  add_row(std::move(r));
}

void webhook_sender::add_row(row r) {
  log_.push_back(std::move(r));
  while (log_.size() > max_log_rows) {
    log_.pop_front();
  }
}

webhook_sender::row* webhook_sender::row_of(uint64_t id) {
  if (log_.empty() || id < log_.front().id) {
    return nullptr;
  }
  const auto at = static_cast<std::size_t>(id - log_.front().id);
  return at < log_.size() ? &log_[at] : nullptr;
}

void webhook_sender::run(worker& w) {
  std::unique_lock lock{mu_};
  while (!stopping_) {
    if (w.due.empty()) {
      w.wake.wait(lock);
      continue;
    }
    const auto at = w.due.begin()->first;
    if (at > steady::now()) {
      w.wake.wait_until(lock, at);
      continue;
    }
    job j = std::move(w.due.begin()->second);
    w.due.erase(w.due.begin());
    lock.unlock();

    std::vector<std::pair<std::string, std::string>> headers;
    if (j.event.form) {
      headers.emplace_back("Stripe-Signature",
                           payments::form_signature(w.secret, std::time(nullptr), j.event.body));
    }
    auto r = w.client->exchange("POST", w.where.path, "application/json", j.event.body, headers,
                                try_timeout);
    ++j.tries;
    const bool ok = r.what == payments::detail::exchange_result::outcome::answered &&
                    r.status >= 200 && r.status < 300;

    lock.lock();
    row* line = row_of(j.row);
    if (line != nullptr) {
      line->attempts = j.tries;
      line->http_status = r.status;
      line->error = ok                ? std::string{}
                    : r.error.empty() ? "HTTP " + std::to_string(r.status)
                                      : r.error;
    }
    if (ok) {
      if (line != nullptr) {
        line->status = "delivered";
      }
    } else if (j.tries < max_tries) {
      const auto wait = first_backoff * (1 << (j.tries - 1));
      w.due.emplace(steady::now() + wait, std::move(j));
    } else {
      if (line != nullptr) {
        line->status = "failed";
      }
      std::cerr << "paysim: webhook " << j.event.type << " of " << j.event.charge_id << " to "
                << w.url << " failed after " << j.tries
                << " tries: " << (r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error)
                << std::endl;
    }
  }
}

json::array webhook_sender::rows() const {
  json::array out;
  std::lock_guard lock{mu_};
  for (const row& r : log_) {
    out.push_back(
        json::value{json::object{{"id", json::value{static_cast<int64_t>(r.id)}},
                                 {"gateway", json::value{r.gateway}},
                                 {"type", json::value{r.type}},
                                 {"charge", json::value{r.charge_id}},
                                 {"url", json::value{r.url}},
                                 {"status", json::value{r.status}},
                                 {"attempts", json::value{static_cast<int64_t>(r.attempts)}},
                                 {"http_status", json::value{static_cast<int64_t>(r.http_status)}},
                                 {"error", json::value{r.error}}}});
  }
  return out;
}

} // namespace surge::paysim
