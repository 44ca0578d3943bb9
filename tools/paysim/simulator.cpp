#include "simulator.hpp"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>

#include "surge/net/json.hpp"
#include "surge/net/payments/webhook.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/router.hpp"
#include "surge/net/server.hpp"
#include "surge/net/text.hpp"
#include "tls_front.hpp"
#include "webhooks.hpp"

namespace surge::paysim {

namespace asio = boost::asio;
namespace json = surge::net::json;
using net::http_request;
using net::http_response;
using net::path_params;
using net::responder;
using std::chrono::milliseconds;

namespace {

/// requires_action: a tok_3ds charge waiting for the shopper's 3-D Secure authentication (the
/// page GET /3ds/{id}); it becomes approved or declined there, or voided when abandoned.
enum class status { approved, declined, failed, requires_action };

/// Where an approved charge's money stands: taken, reserved (an authorisation: capture=false),
/// or released (a voided authorisation).
enum class money { captured, authorized, voided };

/// One line of the charge log. Approved and declined entries are the gateway's idempotent
/// records; failed entries (503) record a call the gateway refused to process.
struct entry {
  std::string gateway;
  std::string key;
  int64_t amount = 0;
  std::string currency; ///< lower case
  status st = status::failed;
  std::string id;
  std::string reason;            ///< decline reason
  bool slow = false;             ///< charged with tok_slow: its new refunds are answered late too
  int64_t refunded = 0;          ///< approved only: the sum of its refunds
  money funds = money::captured; ///< approved only (requires_action: what approval will make)
  bool json = false;             ///< made through the JSON style: its webhooks are that style's
  std::string description = {};  ///< what the request sent as description (shopperStatement)
  std::string return_url = {};   ///< 3-D Secure: where the page sends the shopper back
};

/// What a charge request carries besides its key, amount, currency and token.
struct charge_extras {
  bool json = false;
  std::string description;
  std::string return_url;
};

enum class refund_status { refunded, rejected, failed };

const char* to_string(status s) {
  switch (s) {
  case status::approved:
    return "approved";
  case status::declined:
    return "declined";
  case status::failed:
    return "failed";
  case status::requires_action:
    return "requires_action";
  }
  return "?";
}

const char* to_string(refund_status s) {
  switch (s) {
  case refund_status::refunded:
    return "refunded";
  case refund_status::rejected:
    return "rejected";
  case refund_status::failed:
    return "failed";
  }
  return "?";
}

/// One line of the refund log. Refunded entries are the gateway's idempotent records (by key);
/// rejected ones record a refusal (no such charge, more than is left, ...), failed ones a call the
/// gateway refused to process (503). Only refunded entries are replayed.
struct refund_entry {
  std::string gateway;
  std::string key;
  std::string charge_key; ///< of the charge, when one was found (else what the request named)
  std::string charge_id;  ///< of the charge, when one was found
  std::size_t charge = 0; ///< refunded only: index of the charge in the charge log
  int64_t amount = 0;
  std::string currency; ///< lower case
  refund_status st = refund_status::failed;
  std::string id;
};

/// How a charge or a refund call ends. A charge call ends in one of the first four.
enum class verdict {
  recorded,     ///< charged or refunded now
  replayed,     ///< the key's first answer again
  conflict,     ///< the key was used for another charge, amount or currency
  unavailable,  ///< the gateway is down (--outage)
  no_charge,    ///< refund: this gateway has no such charge
  not_approved, ///< refund: the charge was declined (or is not captured): nothing to give back
  currency,     ///< refund: the currency is not the charge's
  too_much,     ///< refund: more than what is left of the charge
  wrong_state,  ///< capture/void: the charge is not an open authorisation
  not_all,      ///< capture: not the authorised amount
};

/// What a charge or refund call gets, but its record.
struct outcome {
  verdict what = verdict::unavailable;
  bool slow = false; ///< answer after --slow-ms (a new tok_slow charge, a new refund of one)
  std::string message;
};

/// What a charge call gets.
struct decision : outcome {
  entry record;
};

/// What a refund call gets.
struct refund_decision : outcome {
  refund_entry record;
  int64_t left = 0; ///< what is left of the charge (too_much)
};

/// True when the call is answered with its record (else it was refused).
bool with_record(verdict v) {
  return v == verdict::recorded || v == verdict::replayed;
}

/// How each wire style answers a refused call: the form style's HTTP status, error type and
/// code, the JSON style's HTTP status and errorCode. Indexed by verdict (from conflict on).
struct refusal {
  int form_status;
  const char* form_type;
  const char* form_code;
  int json_status;
  const char* json_code;
};

constexpr std::array<refusal, 8> refusals{{
    {422, "idempotency_error", "idempotency_key_in_use", 422, "idempotency_conflict"},
    {503, "api_error", "unavailable", 503, "unavailable"},
    {404, "invalid_request_error", "resource_missing", 404, "not_found"},
    {400, "invalid_request_error", "charge_not_refundable", 422, "not_refundable"},
    {400, "invalid_request_error", "currency_mismatch", 422, "currency_mismatch"},
    {400, "invalid_request_error", "amount_too_large", 422, "refund_exceeds_balance"},
    {400, "invalid_request_error", "charge_not_open", 422, "not_open"},
    {400, "invalid_request_error", "amount_mismatch", 422, "amount_mismatch"},
}};

/// REQUIRES: !with_record(v).
const refusal& refusal_of(verdict v) {
  return refusals[static_cast<std::size_t>(v) - static_cast<std::size_t>(verdict::conflict)];
}

std::string lower(std::string_view s) {
  return boost::algorithm::to_lower_copy(std::string{s});
}

std::string upper(std::string_view s) {
  return boost::algorithm::to_upper_copy(std::string{s});
}

http_response json_response(int code, const json::value& v) {
  http_response r;
  r.status = code;
  r.body = json::serialize(v);
  return r;
}

json::value obj(json::object o) {
  return json::value{std::move(o)};
}

json::value str(std::string s) {
  return json::value{std::move(s)};
}

/// `s`, or JSON null when it is empty.
json::value str_or_null(const std::string& s) {
  return s.empty() ? json::value{} : str(s);
}

/// Form style: a charge object. Declined charges have status "failed" like the real thing; an
/// authorisation is "succeeded" with "captured": false until captured, "canceled" once voided; a
/// 3-D Secure charge still open is "requires_action", its next_action sending the shopper to
/// `action_url`.
json::value form_charge(const entry& e, const std::string& action_url = {}) {
  const bool ok = e.st == status::approved;
  json::object o{{"id", str(e.id)},
                 {"object", str("charge")},
                 {"status", str(e.st == status::requires_action ? "requires_action"
                                : !ok                           ? "failed"
                                : e.funds == money::voided      ? "canceled"
                                                                : "succeeded")},
                 {"amount", json::value{e.amount}},
                 {"currency", str(e.currency)},
                 {"captured", json::value{ok && e.funds == money::captured}},
                 {"amount_refunded", json::value{e.refunded}},
                 {"description", str_or_null(e.description)}};
  if (e.st == status::declined) {
    o.emplace_back("failure_code", str("card_declined"));
    o.emplace_back("failure_message", str(e.reason));
  }
  if (e.st == status::requires_action) {
    o.emplace_back("next_action",
                   obj({{"type", str("redirect_to_url")},
                        {"redirect_to_url", obj({{"url", str(action_url)},
                                                 {"return_url", str_or_null(e.return_url)}})}}));
  }
  return obj(std::move(o));
}

json::value form_error(std::string type, std::string code, std::string message) {
  return obj({{"error", obj({{"type", str(std::move(type))},
                             {"code", str(std::move(code))},
                             {"message", str(std::move(message))}})}});
}

/// JSON style: a payment result; a 3-D Secure payment still open is "RedirectShopper", its action
/// sending the shopper to `action_url`.
json::value json_payment(const entry& e, const std::string& action_url = {}) {
  json::object o{
      {"pspReference", str(e.id)},
      {"resultCode", str(e.st == status::approved          ? "Authorised"
                         : e.st == status::requires_action ? "RedirectShopper"
                                                           : "Refused")},
      {"merchantReference", str(e.key)},
      {"amount", obj({{"value", json::value{e.amount}}, {"currency", str(upper(e.currency))}})},
      {"captured", json::value{e.st == status::approved && e.funds == money::captured}},
      {"cancelled", json::value{e.st == status::approved && e.funds == money::voided}}};
  if (e.st == status::declined) {
    o.emplace_back("refusalReason", str(e.reason));
  }
  if (e.st == status::requires_action) {
    o.emplace_back("action", obj({{"type", str("redirect")},
                                  {"method", str("GET")},
                                  {"url", str(action_url)},
                                  {"paymentMethodType", str("scheme")}}));
  }
  return obj(std::move(o));
}

json::value json_error(int code, std::string error_code, std::string message) {
  return obj({{"status", json::value{static_cast<int64_t>(code)}},
              {"errorCode", str(std::move(error_code))},
              {"message", str(std::move(message))},
              {"errorType", str(code == 503 ? "internal" : "validation")}});
}

std::optional<int64_t> positive_int(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v <= 0) {
    return std::nullopt;
  }
  return v;
}

/// One line of GET /_charges (an entry) or GET /_refunds (a refund_entry).
template <class Line>
json::value log_row(const Line& e) {
  json::object o{{"gateway", str(e.gateway)}, {"idempotency_key", str(e.key)}};
  if constexpr (std::is_same_v<Line, refund_entry>) {
    o.emplace_back("charge_idempotency_key", str(e.charge_key));
  }
  o.emplace_back("amount_cents", json::value{e.amount});
  o.emplace_back("currency", str(e.currency));
  if constexpr (std::is_same_v<Line, entry>) {
    // An authorisation shows where its money stands; a charge taken at once stays "approved".
    const bool open = e.st == status::approved && e.funds != money::captured;
    o.emplace_back("status", str(!open                          ? to_string(e.st)
                                 : e.funds == money::authorized ? "authorized"
                                                                : "voided"));
  } else {
    o.emplace_back("status", str(to_string(e.st)));
  }
  if constexpr (std::is_same_v<Line, entry>) {
    o.emplace_back("refunded_cents", json::value{e.refunded});
  }
  return obj(std::move(o));
}

/// The form style's answer to a refused call. REQUIRES: !with_record(d.what).
http_response form_refused(const outcome& d) {
  const refusal& f = refusal_of(d.what);
  return json_response(f.form_status, form_error(f.form_type, f.form_code, d.message));
}

/// The JSON style's answer to a refused call. REQUIRES: !with_record(d.what).
http_response json_refused(const outcome& d) {
  const refusal& f = refusal_of(d.what);
  return json_response(f.json_status, json_error(f.json_status, f.json_code, d.message));
}

/// Member `key` of `v`, or nullptr when `v` is nullptr or has none.
const json::value* member(const json::value* v, std::string_view key) {
  return v != nullptr ? v->find(key) : nullptr;
}

/// The positive integer in `v`, or nullopt.
std::optional<int64_t> positive_int(const json::value* v) {
  if (v == nullptr || !v->is_int() || std::get<int64_t>(v->get()) <= 0) {
    return std::nullopt;
  }
  return std::get<int64_t>(v->get());
}

/// The string in `v`, or nullptr.
const std::string* string_in(const json::value* v) {
  return v != nullptr && v->is_string() ? &std::get<std::string>(v->get()) : nullptr;
}

// ---- 3-D Secure pages ----

/// A return_url/returnUrl the simulator takes: http(s)://..., printable ASCII without spaces (so
/// it can go into a Location header as it is), at most 2048 characters.
bool valid_return_url(std::string_view u) {
  return (u.starts_with("http://") || u.starts_with("https://")) && u.size() <= 2048 &&
         std::all_of(u.begin(), u.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

/// `return_url` with `charge=<id>&result=<result>` added to its query (before any fragment).
std::string with_result(const std::string& return_url, const std::string& id, const char* result) {
  const std::size_t hash = return_url.find('#');
  std::string out = return_url.substr(0, hash);
  if (out.find('?') == std::string::npos) {
    out += '?';
  } else if (out.back() != '?' && out.back() != '&') {
    out += '&';
  }
  out += "charge=" + net::text::url_encode(id) + "&result=" + result;
  if (hash != std::string::npos) {
    out += return_url.substr(hash);
  }
  return out;
}

using net::text::html_escape;

/// A small HTML page: `title` as title and heading, then `body` (HTML, already escaped).
http_response html_page(int code, const std::string& title, const std::string& body) {
  http_response r;
  r.status = code;
  r.content_type = "text/html; charset=utf-8";
  r.body = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
           "</title></head>\n<body>\n<h1>" + html_escape(title) + "</h1>\n" + body +
           "</body></html>\n";
  return r;
}

/// "19.99 USD": `cents` in units of `currency` (two decimals).
std::string money_text(int64_t cents, const std::string& currency) {
  const int64_t units = cents / 100;
  const int64_t rest = cents % 100;
  return std::to_string(units) + "." + (rest < 10 ? "0" : "") + std::to_string(rest) + " " +
         upper(currency);
}

/// How a 3-D Secure charge that is no longer open ended, for its pages.
const char* ending_of(const entry& e) {
  if (e.st == status::declined) {
    return "failed";
  }
  return e.funds == money::voided ? "voided" : "succeeded";
}

/// Now as the json style's eventDate: 2024-05-01T12:00:00+00:00.
std::string event_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &utc);
  return buf;
}

/// What a gateway posts to its --webhook-to URL about a charge.
enum class event { authorised, declined, captured, voided, refunded };

} // namespace

struct simulator::impl {
  explicit impl(options o)
      : opts(std::move(o))
      , rng(opts.seed) {}

  const options opts;

  // Timer thread for delayed answers.
  asio::io_context timers;
  asio::executor_work_guard<asio::io_context::executor_type> work{timers.get_executor()};
  std::thread timer_thread;

  std::shared_ptr<asio::ssl::context> tls; // set by start() with TLS on; outlives the fronts
  struct gw {
    std::string name;
    std::unique_ptr<net::http_server> server;
    std::unique_ptr<tls_front> front; // with TLS on
    std::atomic<bool> down{false};
  };
  std::vector<std::unique_ptr<gw>> gws; // fixed after start()
  /// Added to every capture's answer (GET/PUT /_faults); any thread.
  std::atomic<int64_t> capture_delay_ms{opts.capture_delay.count()};

  mutable std::mutex mu;
  std::vector<entry> log;                                            // guarded by mu
  std::map<std::pair<std::size_t, std::string>, std::size_t> by_key; // guarded by mu: into log
  std::map<std::string, std::size_t> by_id;                          // guarded by mu: into log
  std::vector<refund_entry> refunds;                                 // guarded by mu
  std::map<std::pair<std::size_t, std::string>, std::size_t> refund_by_key; // guarded by mu
  /// guarded by mu: capture or void key -> (the charge in log, whether it voided)
  std::map<std::pair<std::size_t, std::string>, std::pair<std::size_t, bool>> settle_by_key;
  std::mt19937_64 rng;  // guarded by mu
  uint64_t next_id = 1; // guarded by mu

  webhook_sender hooks{opts.webhooks}; // started by start(), stopped by stop()
  std::atomic<uint64_t> next_event{1}; // form-style event ids

  /// Answers `res` after `delay` (from the timer thread), or at once.
  void answer(responder r, http_response res, milliseconds delay) {
    if (delay.count() <= 0) {
      r(std::move(res));
      return;
    }
    auto t = std::make_shared<asio::steady_timer>(timers, delay);
    t->async_wait(
        [t, r = std::move(r), res = std::move(res)](const boost::system::error_code&) { r(res); });
  }

  /// The idempotent heart: records or replays the charge of `key` on gateway `g`.
  decision decide(std::size_t g, const std::string& key, int64_t amount, std::string currency,
                  const std::string& token, bool capture = true, const charge_extras& x = {}) {
    std::lock_guard lock{mu};
    decision d;
    entry e{gws[g]->name, key, amount, lower(currency), status::failed, {}, {}, false, 0};
    e.json = x.json;
    e.description = x.description;
    e.return_url = x.return_url;
    if (gws[g]->down.load() || (token == "tok_down_first" && g == 0)) {
      log.push_back(e);
      d.message = gws[g]->name + " is unavailable";
      return d;
    }
    if (auto it = by_key.find({g, key}); it != by_key.end()) {
      const entry& first = log[it->second];
      if (first.amount != amount || first.currency != e.currency) {
        d.what = verdict::conflict;
        d.message = "idempotency key '" + key + "' was used with " + std::to_string(first.amount) +
                    " " + first.currency;
        return d;
      }
      d.what = verdict::replayed;
      d.record = first;
      return d;
    }
    e.id = "ch_" + gws[g]->name + "_" + std::to_string(next_id++);
    if (token == "tok_ok") {
      std::bernoulli_distribution roll{std::clamp(opts.decline_rate, 0.0, 1.0)};
      if (roll(rng)) {
        e.st = status::declined;
        e.reason = "simulated decline (--decline-rate)";
      } else {
        e.st = status::approved;
      }
    } else if (token == "tok_slow" || token == "tok_down_first") {
      e.st = status::approved;
      d.slow = token == "tok_slow";
      e.slow = d.slow;
    } else if (token == "tok_decline") {
      e.st = status::declined;
      e.reason = "card declined";
    } else if (token == "tok_3ds") {
      e.st = status::requires_action; // until the shopper completes or fails GET /3ds/{id}
    } else {
      e.st = status::declined;
      e.reason = "unknown payment token '" + token + "'";
    }
    if (!capture) {
      e.funds = money::authorized; // approved: reserved until captured or voided
    }
    by_key.emplace(std::pair{g, key}, log.size());
    by_id.emplace(e.id, log.size());
    log.push_back(e);
    d.what = verdict::recorded;
    d.record = std::move(e);
    return d;
  }

  /// The idempotent heart of captures (`voiding` false) and voids: of gateway `g`'s
  /// authorisation `charge_id`, under `key`. A capture takes the whole authorised `amount` (0:
  /// the authorised amount); a void of a voided authorisation is done again.
  decision decide_settle(std::size_t g, const std::string& key, const std::string& charge_id,
                         int64_t amount, bool voiding) {
    std::lock_guard lock{mu};
    decision d;
    const char* op = voiding ? "void" : "capture";
    if (gws[g]->down.load()) {
      d.message = gws[g]->name + " is unavailable";
      return d;
    }
    const auto at = find_charge(g, charge_id, {});
    if (auto it = settle_by_key.find({g, key}); it != settle_by_key.end()) {
      if (!at || it->second != std::pair{*at, voiding}) {
        d.what = verdict::conflict;
        d.message = "idempotency key '" + key + "' was used for another capture or void";
        return d;
      }
      d.what = verdict::replayed;
      d.record = log[*at];
      return d;
    }
    if (!at) {
      d.what = verdict::no_charge;
      d.message = "no such charge: '" + charge_id + "'";
      return d;
    }
    entry& e = log[*at];
    const money want = voiding ? money::voided : money::captured;
    if (e.st == status::requires_action) {
      if (!voiding) {
        d.what = verdict::wrong_state;
        d.message = "charge " + e.id +
                    " waits for 3-D Secure authentication (requires_action): it cannot be captured";
        return d;
      }
      // Abandoned before the shopper authenticated: nothing was taken, nothing ever will be.
      e.st = status::approved;
      e.funds = money::voided;
      settle_by_key.emplace(std::pair{g, key}, std::pair{*at, voiding});
      d.what = verdict::recorded;
      d.record = e;
      return d;
    }
    if (e.st != status::approved || (e.funds != money::authorized && e.funds != want) ||
        (e.funds == money::captured && !voiding)) {
      d.what = verdict::wrong_state;
      d.message = "charge " + e.id + " is not an open authorisation (" +
                  (e.st != status::approved     ? "declined"
                   : e.funds == money::captured ? "captured"
                                                : "voided") +
                  "): it cannot be " + (voiding ? "voided" : "captured");
      return d;
    }
    if (!voiding && amount != 0 && amount != e.amount) {
      d.what = verdict::not_all;
      d.message = std::string{op} + " of " + std::to_string(amount) + ": charge " + e.id +
                  " authorised " + std::to_string(e.amount) + " (captures take all of it)";
      return d;
    }
    d.what = e.funds == want ? verdict::replayed : verdict::recorded;
    d.slow = e.slow && d.what == verdict::recorded;
    e.funds = want;
    settle_by_key.emplace(std::pair{g, key}, std::pair{*at, voiding});
    d.record = e;
    return d;
  }

  /// The charge log index of gateway `g`'s charge with id `charge_id` (when not empty) and key
  /// `charge_key` (when not empty). REQUIRES: mu held; at least one of them not empty.
  std::optional<std::size_t> find_charge(std::size_t g, const std::string& charge_id,
                                         const std::string& charge_key) const {
    std::optional<std::size_t> at;
    if (!charge_id.empty()) {
      if (auto it = by_id.find(charge_id);
          it != by_id.end() && log[it->second].gateway == gws[g]->name) {
        at = it->second;
      }
    } else if (auto it = by_key.find({g, charge_key}); it != by_key.end()) {
      at = it->second;
    }
    if (at && !charge_key.empty() && log[*at].key != charge_key) {
      return std::nullopt; // the id and the key name different charges
    }
    return at;
  }

  /// The idempotent heart of refunds: records or replays refund `key` of `amount` on gateway
  /// `g` against the charge named by `charge_id` and/or `charge_key`. `currency` empty: the
  /// charge's.
  refund_decision decide_refund(std::size_t g, const std::string& key, const std::string& charge_id,
                                const std::string& charge_key, int64_t amount,
                                const std::string& currency) {
    std::lock_guard lock{mu};
    refund_decision d;
    refund_entry e{gws[g]->name,          key, charge_key, charge_id, 0, amount, lower(currency),
                   refund_status::failed, {}};
    const auto at = find_charge(g, charge_id, charge_key);
    if (at) {
      e.charge_key = log[*at].key;
      e.charge_id = log[*at].id;
      e.charge = *at;
      if (e.currency.empty()) {
        e.currency = log[*at].currency;
      }
    }
    if (gws[g]->down.load()) {
      refunds.push_back(e);
      d.message = gws[g]->name + " is unavailable";
      return d;
    }
    if (auto it = refund_by_key.find({g, key}); it != refund_by_key.end()) {
      const refund_entry& first = refunds[it->second];
      if (!at || *at != first.charge || first.amount != amount || first.currency != e.currency) {
        d.what = verdict::conflict;
        d.message = "idempotency key '" + key + "' was used for a refund of " +
                    std::to_string(first.amount) + " " + first.currency + " of charge " +
                    first.charge_id;
        return d;
      }
      d.what = verdict::replayed;
      d.record = first;
      return d;
    }
    e.st = refund_status::rejected;
    if (!at) {
      d.what = verdict::no_charge;
      d.message = "no such charge: '" + (charge_id.empty() ? charge_key : charge_id) + "'";
    } else if (log[*at].st != status::approved) {
      d.what = verdict::not_approved;
      d.message = "charge " + log[*at].id +
                  (log[*at].st == status::requires_action ? " waits for 3-D Secure authentication"
                                                          : " was declined") +
                  ": nothing to refund";
    } else if (log[*at].funds != money::captured) {
      d.what = verdict::not_approved;
      d.message = "charge " + log[*at].id + " is not captured (" +
                  (log[*at].funds == money::voided ? "voided" : "authorised only") +
                  "): nothing to refund";
    } else if (e.currency != log[*at].currency) {
      d.what = verdict::currency;
      d.message = "charge " + log[*at].id + " is in " + log[*at].currency + ", not " + e.currency;
    } else if (amount > log[*at].amount - log[*at].refunded) {
      d.what = verdict::too_much;
      d.left = log[*at].amount - log[*at].refunded;
      d.message = "refund amount (" + std::to_string(amount) +
                  ") is greater than the unrefunded amount of charge " + log[*at].id + " (" +
                  std::to_string(d.left) + ")";
    } else {
      e.st = refund_status::refunded;
      e.id = "re_" + gws[g]->name + "_" + std::to_string(next_id++);
      log[*at].refunded += amount;
      refund_by_key.emplace(std::pair{g, key}, refunds.size());
      d.what = verdict::recorded;
      d.slow = log[*at].slow;
    }
    refunds.push_back(e);
    d.record = std::move(e);
    return d;
  }

  std::optional<entry> find(std::size_t g, const std::string& key) const {
    std::lock_guard lock{mu};
    if (auto it = by_key.find({g, key}); it != by_key.end()) {
      return log[it->second];
    }
    return std::nullopt;
  }

  /// How long a call's answer waits: --latency-ms, plus --slow-ms for a new slow one.
  milliseconds delay_for(const outcome& d) const {
    return opts.latency + (d.what == verdict::recorded && d.slow ? opts.slow : milliseconds{});
  }

  /// The 503 of a lookup on gateway `g` while it is down, in the style `refused` writes.
  std::optional<http_response> down_answer(std::size_t g,
                                           http_response (*refused)(const outcome&)) const {
    if (!gws[g]->down.load()) {
      return std::nullopt;
    }
    return refused({verdict::unavailable, false, gws[g]->name + " is unavailable"});
  }

  // ---- form style ----

  /// Answers 400 with a form-style invalid_request_error.
  void form_bad(responder r, std::string code, std::string msg) {
    answer(std::move(r),
           json_response(400, form_error("invalid_request_error", std::move(code), std::move(msg))),
           opts.latency);
  }

  /// The Idempotency-Key header and the decoded form body of a form-style POST; nullopt after
  /// answering 400 when either is missing or malformed.
  std::optional<std::pair<std::string, http_request>> form_call(const http_request& req,
                                                                responder& r) {
    const auto key = req.header("idempotency-key");
    if (!key || key->empty()) {
      form_bad(std::move(r), "missing_idempotency_key", "the Idempotency-Key header is required");
      return std::nullopt;
    }
    http_request form;
    if (!net::decode_target("/?" + req.body, form)) {
      form_bad(std::move(r), "parameter_invalid", "the body is not valid form data");
      return std::nullopt;
    }
    return std::pair{std::string{*key}, std::move(form)};
  }

  /// Answers a form-style call: `res` (marked when replayed) after its delay (plus `extra`).
  void form_answer(responder r, http_response res, const outcome& d, milliseconds extra = {}) {
    if (d.what == verdict::replayed) {
      res.headers.emplace_back("Idempotent-Replayed", "true");
    }
    answer(std::move(r), std::move(res), delay_for(d) + extra);
  }

  /// What a capture's answer waits on top of delay_for() (a void's: nothing).
  milliseconds settle_delay(bool voiding) const {
    return voiding ? milliseconds{} : milliseconds{capture_delay_ms.load()};
  }

  void form_charge_handler(std::size_t g, http_request&& req, path_params&&, responder r) {
    auto call = form_call(req, r);
    if (!call) {
      return;
    }
    const http_request& form = call->second;
    const auto amount = positive_int(form.param("amount").value_or(""));
    const auto currency = form.param("currency");
    const auto source = form.param("source");
    if (!amount || !currency || currency->empty() || !source || source->empty()) {
      return form_bad(std::move(r), "parameter_missing",
                      "amount (positive integer), currency and source are required");
    }
    const auto capture = form.param("capture").value_or("true");
    if (capture != "true" && capture != "false") {
      return form_bad(std::move(r), "parameter_invalid", "capture must be true or false");
    }
    const std::string return_url{form.param("return_url").value_or("")};
    if (!return_url.empty() && !valid_return_url(return_url)) {
      return form_bad(std::move(r), "url_invalid",
                      "return_url must be an http(s) URL of printable characters");
    }
    const decision d = decide(
        g, call->first, *amount, std::string{*currency}, std::string{*source}, capture == "true",
        {false, std::string{form.param("description").value_or("")}, return_url});
    notify_charged(d);
    http_response res;
    if (!with_record(d.what)) {
      res = form_refused(d);
    } else if (d.record.st == status::approved || d.record.st == status::requires_action) {
      res = json_response(200, form_charge(d.record, action_url(g, req, d.record.id)));
    } else {
      res = json_response(402, obj({{"error", obj({{"type", str("card_error")},
                                                   {"code", str("card_declined")},
                                                   {"message", str(d.record.reason)},
                                                   {"charge", str(d.record.id)}})}}));
    }
    form_answer(std::move(r), std::move(res), d);
  }

  void form_lookup_handler(std::size_t g, http_request&& req, path_params&&, responder r) {
    if (auto res = down_answer(g, form_refused)) {
      return answer(std::move(r), std::move(*res), opts.latency);
    }
    const auto key = req.param("idempotency_key");
    if (!key) {
      return form_bad(std::move(r), "parameter_missing", "idempotency_key is required");
    }
    json::array data;
    if (auto e = find(g, std::string{*key})) {
      data.push_back(form_charge(*e, action_url(g, req, e->id)));
    }
    answer(
        std::move(r),
        json_response(200, obj({{"object", str("list")}, {"data", json::value{std::move(data)}}})),
        opts.latency);
  }

  void form_refund_handler(std::size_t g, http_request&& req, path_params&&, responder r) {
    auto call = form_call(req, r);
    if (!call) {
      return;
    }
    const http_request& form = call->second;
    const auto charge = form.param("charge");
    const auto amount = positive_int(form.param("amount").value_or(""));
    if (!charge || charge->empty() || !amount) {
      return form_bad(std::move(r), "parameter_missing",
                      "charge and amount (positive integer) are required");
    }
    const refund_decision d = decide_refund(g, call->first, std::string{*charge}, {}, *amount,
                                            std::string{form.param("currency").value_or("")});
    notify_refunded(d);
    form_answer(std::move(r),
                with_record(d.what)
                    ? json_response(200, obj({{"id", str(d.record.id)},
                                              {"object", str("refund")},
                                              {"amount", json::value{d.record.amount}},
                                              {"charge", str(d.record.charge_id)},
                                              {"currency", str(d.record.currency)},
                                              {"status", str("succeeded")}}))
                    : form_refused(d),
                d);
  }

  /// POST /v1/charges/{id}/capture and /cancel: the charge object, captured or canceled.
  void form_settle(std::size_t g, http_request&& req, path_params&& p, responder r, bool voiding) {
    auto call = form_call(req, r);
    if (!call) {
      return;
    }
    const auto amount_text = call->second.param("amount");
    const auto amount = positive_int(amount_text.value_or(""));
    if (amount_text && !amount) {
      return form_bad(std::move(r), "parameter_invalid", "amount must be a positive integer");
    }
    const decision d = decide_settle(g, call->first, p.at(0), amount.value_or(0), voiding);
    notify_settled(d, voiding);
    form_answer(std::move(r),
                with_record(d.what) ? json_response(200, form_charge(d.record)) : form_refused(d),
                d, settle_delay(voiding));
  }

  void form_capture_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    form_settle(g, std::move(req), std::move(p), std::move(r), false);
  }

  void form_cancel_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    form_settle(g, std::move(req), std::move(p), std::move(r), true);
  }

  // ---- JSON style ----

  /// Answers 400 with a JSON-style validation error.
  void json_bad(responder r, std::string msg) {
    answer(std::move(r), json_response(400, json_error(400, "validation", std::move(msg))),
           opts.latency);
  }

  /// The JSON object body of a JSON-style POST; nullopt after answering 400 when it is not one.
  std::optional<json::value> json_call(const http_request& req, responder& r) {
    auto parsed = json::parse(req.body);
    auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || !v->is_object()) {
      json_bad(std::move(r), "the body must be a JSON object");
      return std::nullopt;
    }
    return std::move(*v);
  }

  void json_charge_handler(std::size_t g, http_request&& req, path_params&&, responder r) {
    const auto v = json_call(req, r);
    if (!v) {
      return;
    }
    const json::value* amount = v->find("amount");
    const std::string* ref = string_in(v->find("reference"));
    const auto value = positive_int(member(amount, "value"));
    const std::string* currency = string_in(member(amount, "currency"));
    const std::string* token = string_in(member(v->find("paymentMethod"), "token"));
    if (ref == nullptr || ref->empty()) {
      return json_bad(std::move(r), "reference (string) is required");
    }
    if (!value || currency == nullptr) {
      return json_bad(std::move(r),
                      "amount.value (positive integer) and amount.currency are required");
    }
    if (token == nullptr) {
      return json_bad(std::move(r), "paymentMethod.token is required");
    }
    const std::string* manual = string_in(member(v->find("additionalData"), "manualCapture"));
    const json::value* return_member = v->find("returnUrl");
    const std::string* return_url = string_in(return_member);
    if (return_member != nullptr &&
        (return_url == nullptr || (!return_url->empty() && !valid_return_url(*return_url)))) {
      return json_bad(std::move(r), "returnUrl must be an http(s) URL of printable characters");
    }
    const std::string* statement = string_in(v->find("shopperStatement"));
    const decision d =
        decide(g, *ref, *value, *currency, *token, manual == nullptr || *manual != "true",
               {true, statement != nullptr ? *statement : std::string{},
                return_url != nullptr ? *return_url : std::string{}});
    notify_charged(d);
    answer(std::move(r),
           with_record(d.what)
               ? json_response(200, json_payment(d.record, action_url(g, req, d.record.id)))
               : json_refused(d),
           delay_for(d));
  }

  void json_lookup_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    if (auto res = down_answer(g, json_refused)) {
      return answer(std::move(r), std::move(*res), opts.latency);
    }
    if (auto e = find(g, p.at(0))) {
      return answer(std::move(r), json_response(200, json_payment(*e, action_url(g, req, e->id))),
                    opts.latency);
    }
    answer(std::move(r),
           json_response(404, json_error(404, "not_found", "no payment with reference " + p.at(0))),
           opts.latency);
  }

  void json_refund_handler(std::size_t g, http_request&& req, path_params&&, responder r) {
    const auto v = json_call(req, r);
    if (!v) {
      return;
    }
    // A member that is absent reads as "", one that is not a string as nullopt.
    auto text = [&v](const char* k) -> std::optional<std::string> {
      const json::value* m = v->find(k);
      if (m == nullptr) {
        return std::string{};
      }
      if (const std::string* s = string_in(m)) {
        return *s;
      }
      return std::nullopt;
    };
    const auto ref = text("reference");
    const auto payment_ref = text("paymentReference");
    const auto psp_ref = text("paymentPspReference");
    const json::value* amount = v->find("amount");
    const auto value = positive_int(member(amount, "value"));
    const std::string* currency = string_in(member(amount, "currency"));
    if (!ref || ref->empty()) {
      return json_bad(std::move(r), "reference (string) is required");
    }
    if (!payment_ref || !psp_ref || (payment_ref->empty() && psp_ref->empty())) {
      return json_bad(std::move(r), "paymentReference or paymentPspReference (string) is required");
    }
    if (!value || currency == nullptr || currency->empty()) {
      return json_bad(std::move(r),
                      "amount.value (positive integer) and amount.currency are required");
    }
    const refund_decision d = decide_refund(g, *ref, *psp_ref, *payment_ref, *value, *currency);
    notify_refunded(d);
    answer(std::move(r),
           with_record(d.what)
               ? json_response(200,
                               obj({{"pspReference", str(d.record.id)},
                                    {"paymentPspReference", str(d.record.charge_id)},
                                    {"paymentReference", str(d.record.charge_key)},
                                    {"reference", str(d.record.key)},
                                    {"amount", obj({{"value", json::value{d.record.amount}},
                                                    {"currency", str(upper(d.record.currency))}})},
                                    {"status", str("refunded")}}))
               : json_refused(d),
           delay_for(d));
  }

  /// POST /payments/{pspReference}/captures and /cancels: 201 received (Adyen's modification
  /// answer; the simulator has done it by then).
  void json_settle(std::size_t g, http_request&& req, path_params&& p, responder r, bool voiding) {
    const auto v = json_call(req, r);
    if (!v) {
      return;
    }
    const std::string* ref = string_in(v->find("reference"));
    if (ref == nullptr || ref->empty()) {
      return json_bad(std::move(r), "reference (string) is required");
    }
    const json::value* amount = v->find("amount");
    const auto value = positive_int(member(amount, "value"));
    if (amount != nullptr && !value) {
      return json_bad(std::move(r), "amount.value must be a positive integer");
    }
    const decision d = decide_settle(g, *ref, p.at(0), value.value_or(0), voiding);
    notify_settled(d, voiding);
    answer(std::move(r),
           with_record(d.what)
               ? json_response(201, obj({{"pspReference", str("md_" + d.record.id + "_" +
                                                              (voiding ? "cancel" : "capture"))},
                                         {"paymentPspReference", str(d.record.id)},
                                         {"reference", str(*ref)},
                                         {"status", str("received")}}))
               : json_refused(d),
           delay_for(d) + settle_delay(voiding));
  }

  void json_capture_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    json_settle(g, std::move(req), std::move(p), std::move(r), false);
  }

  void json_cancel_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    json_settle(g, std::move(req), std::move(p), std::move(r), true);
  }

  // ---- 3-D Secure ----

  /// Where the shopper authenticates gateway `g`'s charge `id`: http(s)://<the Host header of
  /// `req`: the gateway as the client reached it>/3ds/<id>; the bound address when the request
  /// has no usable Host.
  std::string action_url(std::size_t g, const http_request& req, const std::string& id) const {
    std::string host{req.header("host").value_or("")};
    const bool usable = !host.empty() && host.size() <= 255 &&
                        std::all_of(host.begin(), host.end(),
                                    [](char c) {
                                      return std::isalnum(static_cast<unsigned char>(c)) ||
                                             c == '.' || c == '-' || c == ':' || c == '[' ||
                                             c == ']';
                                    }) &&
                        (host.front() == '[' || std::count(host.begin(), host.end(), ':') <= 1);
    if (!usable) {
      const std::string& bound = opts.gateways[g].host;
      const uint16_t port = gws[g]->front ? gws[g]->front->port() : gws[g]->server->port();
      host = (bound.find(':') != std::string::npos ? "[" + bound + "]" : bound) + ":" +
             std::to_string(port);
    }
    return std::string{opts.tls_cert.empty() ? "http://" : "https://"} + host + "/3ds/" +
           net::text::url_encode(id);
  }

  /// Ends gateway `g`'s 3-D Secure charge `id`: approved (`ok`: captured, or authorized when it
  /// was made with capture=false) or declined ("authentication failed"). 404 when the gateway
  /// has no such charge; 409 when it is not waiting for authentication (any more); else 200.
  /// The charge as it is then (404: empty).
  std::pair<int, entry> decide_3ds(std::size_t g, const std::string& id, bool ok) {
    std::lock_guard lock{mu};
    const auto at = id.empty() ? std::nullopt : find_charge(g, id, {});
    if (!at) {
      return {404, entry{}};
    }
    entry& e = log[*at];
    if (e.st != status::requires_action) {
      return {409, e};
    }
    if (ok) {
      e.st = status::approved;
    } else {
      e.st = status::declined;
      e.reason = "authentication failed";
    }
    return {200, e};
  }

  /// GET /3ds/{id}: the shopper's page. While the charge waits, its gateway, amount and two
  /// forms (complete, fail); once it has ended, how. 404 for an unknown id.
  void threeds_page_handler(std::size_t g, http_request&&, path_params&& p, responder r) {
    const std::string& id = p.at(0);
    std::optional<entry> e;
    {
      std::lock_guard lock{mu};
      if (auto at = id.empty() ? std::nullopt : find_charge(g, id, {})) {
        e = log[*at];
      }
    }
    if (!e) {
      return r(html_page(404, "Unknown payment",
                         "<p>" + html_escape(gws[g]->name) + " has no charge " + html_escape(id) +
                             ".</p>\n"));
    }
    std::string body = "<p>Gateway: <b>" + html_escape(e->gateway) + "</b></p>\n<p>Amount: <b>" +
                       html_escape(money_text(e->amount, e->currency)) +
                       "</b></p>\n<p>Charge: " + html_escape(e->id) + "</p>\n";
    if (e->st == status::requires_action) {
      const std::string base = "/3ds/" + html_escape(net::text::url_encode(e->id));
      body += "<form method=\"post\" action=\"" + base +
              "/complete\"><button type=\"submit\">Complete authentication</button></form>\n"
              "<form method=\"post\" action=\"" +
              base + "/fail\"><button type=\"submit\">Fail authentication</button></form>\n";
    } else {
      body += std::string{"<p>This payment is no longer waiting for authentication ("} +
              ending_of(*e) + ").</p>\n";
    }
    r(html_page(200, "3-D Secure authentication", body));
  }

  /// POST /3ds/{id}/complete and /fail: ends the charge (decide_3ds), posts its event, then sends
  /// the shopper to its return_url (303, with charge= and result=), or says the outcome (200).
  void threeds_end(std::size_t g, const std::string& id, responder r, bool ok) {
    const auto [code, e] = decide_3ds(g, id, ok);
    if (code == 404) {
      return r(html_page(404, "Unknown payment",
                         "<p>" + html_escape(gws[g]->name) + " has no charge " + html_escape(id) +
                             ".</p>\n"));
    }
    if (code == 409) {
      return r(html_page(409, "Already finished",
                         "<p>Charge " + html_escape(e.id) +
                             " is no longer waiting for authentication (" + ending_of(e) +
                             ").</p>\n"));
    }
    emit(e, ok ? event::authorised : event::declined);
    const char* result = ok ? "succeeded" : "failed";
    if (e.return_url.empty()) {
      return r(html_page(200, ok ? "Payment authenticated" : "Authentication failed",
                         "<p>Charge " + html_escape(e.id) + " " + result + ".</p>\n"));
    }
    const std::string to = with_result(e.return_url, e.id, result);
    http_response res = html_page(
        303, "See Other", "<p><a href=\"" + html_escape(to) + "\">Back to the shop</a></p>\n");
    res.headers.emplace_back("Location", to);
    r(std::move(res));
  }

  void threeds_complete_handler(std::size_t g, http_request&&, path_params&& p, responder r) {
    threeds_end(g, p.at(0), std::move(r), true);
  }

  void threeds_fail_handler(std::size_t g, http_request&&, path_params&& p, responder r) {
    threeds_end(g, p.at(0), std::move(r), false);
  }

  // ---- outgoing webhooks ----

  /// Posts event `ev` of charge `e` (`refunded`: of its refund `rf`) to its gateway's
  /// --webhook-to URL, in the wire style the charge was made in (webhook.hpp's schemes); nothing
  /// when the gateway has none. Never blocks: webhook_sender delivers it.
  void emit(const entry& e, event ev, const refund_entry* rf = nullptr) {
    if (!hooks.enabled(e.gateway)) {
      return;
    }
    const auto i = static_cast<std::size_t>(ev);
    outgoing_event out;
    out.gateway = e.gateway;
    out.form = !e.json;
    out.charge_id = e.id;
    if (out.form) {
      static constexpr std::array<const char*, 5> types{"charge.succeeded", "charge.failed",
                                                        "charge.captured", "charge.canceled",
                                                        "charge.refunded"};
      out.type = types[i];
      out.body = json::serialize(
          obj({{"id", str("evt_" + e.gateway + "_" + std::to_string(next_event.fetch_add(1)))},
               {"object", str("event")},
               {"type", str(out.type)},
               {"created", json::value{static_cast<int64_t>(std::time(nullptr))}},
               {"livemode", json::value{false}},
               {"data", obj({{"object", form_charge(e)}})}}));
    } else {
      static constexpr std::array<const char*, 5> codes{"AUTHORISATION", "AUTHORISATION", "CAPTURE",
                                                        "CANCELLATION", "REFUND"};
      static constexpr const char* merchant = "paysim";
      out.type = codes[i];
      const bool success = ev != event::declined;
      std::string psp = e.id;
      std::string original;
      int64_t value = e.amount;
      if (ev == event::captured || ev == event::voided) {
        psp = "md_" + e.id + (ev == event::captured ? "_capture" : "_cancel");
        original = e.id;
      } else if (ev == event::refunded && rf != nullptr) {
        psp = rf->id;
        original = e.id;
        value = rf->amount;
      }
      const std::string currency = upper(e.currency);
      const auto key = hooks.json_key(e.gateway); // none: post() logs it failed
      const std::string mac =
          key ? net::payments::json_item_signature(*key, psp, original, merchant, e.key, value,
                                                   currency, out.type, success)
              : std::string{};
      json::object item{
          {"additionalData", obj({{"hmacSignature", str(mac)}})},
          {"amount", obj({{"value", json::value{value}}, {"currency", str(currency)}})},
          {"eventCode", str(out.type)},
          {"eventDate", str(event_date())},
          {"merchantAccountCode", str(merchant)},
          {"merchantReference", str(e.key)},
          {"pspReference", str(psp)},
          {"reason", str(ev == event::declined ? e.reason : std::string{})},
          {"success", str(success ? "true" : "false")}};
      if (!original.empty()) {
        item.emplace_back("originalReference", str(original));
      }
      json::array items;
      items.push_back(obj({{"NotificationRequestItem", obj(std::move(item))}}));
      out.body = json::serialize(
          obj({{"live", str("false")}, {"notificationItems", json::value{std::move(items)}}}));
    }
    hooks.post(std::move(out));
  }

  /// The event of a charge call: a new approved or declined charge (not a replay, not one that
  /// waits for 3-D Secure).
  void notify_charged(const decision& d) {
    if (d.what != verdict::recorded) {
      return;
    }
    if (d.record.st == status::approved) {
      emit(d.record, event::authorised);
    } else if (d.record.st == status::declined) {
      emit(d.record, event::declined);
    }
  }

  /// The event of a new capture or void.
  void notify_settled(const decision& d, bool voiding) {
    if (d.what == verdict::recorded) {
      emit(d.record, voiding ? event::voided : event::captured);
    }
  }

  /// The event of a new refund (the charge's, as it is after it).
  void notify_refunded(const refund_decision& d) {
    if (d.what != verdict::recorded) {
      return;
    }
    entry charge;
    {
      std::lock_guard lock{mu};
      charge = log[d.record.charge];
    }
    emit(charge, event::refunded, &d.record);
  }

  // ---- control ----

  void outage_handler(std::size_t g, http_request&& req, path_params&&, responder r) {
    auto parsed = json::parse(req.body);
    const auto* v = std::get_if<json::value>(&parsed);
    const json::value* down = v != nullptr ? v->find("down") : nullptr;
    if (down == nullptr || !down->is_bool()) {
      return r(net::error_response(400, "bad_request", "expected {\"down\":true|false}"));
    }
    gws[g]->down.store(std::get<bool>(down->get()));
    r(json_response(200, obj({{"gateway", str(gws[g]->name)}, {"down", *down}})));
  }

  /// GET /_faults, and PUT /_faults with a JSON object of the knobs to change (the others keep
  /// their value): {"capture_delay_ms":N}, N in [0, max_capture_delay]. Every gateway at once.
  /// Answers 200 with every knob; 400 for a bad body or an unknown knob.
  void faults_handler(http_request&& req, path_params&&, responder r) {
    if (req.method == "PUT") {
      auto parsed = json::parse(req.body);
      const auto* v = std::get_if<json::value>(&parsed);
      if (v == nullptr || !v->is_object()) {
        return r(net::error_response(400, "bad_request", "expected {\"capture_delay_ms\":N}"));
      }
      for (const auto& [name, knob] : std::get<json::object>(v->get())) {
        if (name != "capture_delay_ms") {
          return r(net::error_response(400, "bad_request", "unknown fault knob '" + name + "'"));
        }
        if (!knob.is_int() || std::get<int64_t>(knob.get()) < 0 ||
            std::get<int64_t>(knob.get()) > max_capture_delay.count()) {
          return r(net::error_response(400, "bad_request",
                                       "capture_delay_ms must be an integer in [0, " +
                                           std::to_string(max_capture_delay.count()) + "]"));
        }
      }
      if (const json::value* d = v->find("capture_delay_ms")) {
        capture_delay_ms.store(std::get<int64_t>(d->get()));
      }
    }
    r(json_response(200, obj({{"capture_delay_ms", json::value{capture_delay_ms.load()}}})));
  }

  /// Answers the charge or the refund log (GET /_charges, GET /_refunds): a JSON array of
  /// log_row() of each line.
  template <class Line>
  void log_handler(const std::vector<Line>& lines, responder r) {
    json::array out;
    {
      std::lock_guard lock{mu};
      for (const Line& e : lines) {
        out.push_back(log_row(e));
      }
    }
    r(json_response(200, json::value{std::move(out)}));
  }

  /// A request handler of one gateway.
  using gateway_handler = void (impl::*)(std::size_t, http_request&&, path_params&&, responder);

  struct gateway_route {
    const char* method;
    const char* path;
    gateway_handler handler;
  };

  net::router make_router(std::size_t g) {
    static constexpr std::array<gateway_route, 14> routes{{
        {"POST", "/v1/charges", &impl::form_charge_handler},
        {"GET", "/v1/charges", &impl::form_lookup_handler},
        {"POST", "/v1/charges/{id}/capture", &impl::form_capture_handler},
        {"POST", "/v1/charges/{id}/cancel", &impl::form_cancel_handler},
        {"POST", "/payments", &impl::json_charge_handler},
        {"GET", "/payments/{reference}", &impl::json_lookup_handler},
        {"POST", "/payments/{reference}/captures", &impl::json_capture_handler},
        {"POST", "/payments/{reference}/cancels", &impl::json_cancel_handler},
        {"POST", "/v1/refunds", &impl::form_refund_handler},
        {"POST", "/refunds", &impl::json_refund_handler},
        {"POST", "/_outage", &impl::outage_handler},
        {"GET", "/3ds/{id}", &impl::threeds_page_handler},
        {"POST", "/3ds/{id}/complete", &impl::threeds_complete_handler},
        {"POST", "/3ds/{id}/fail", &impl::threeds_fail_handler},
    }};
    net::router rt;
    for (const gateway_route& route : routes) {
      rt.add(route.method, route.path,
             [this, g, h = route.handler](http_request&& q, path_params&& p, responder r) {
               (this->*h)(g, std::move(q), std::move(p), std::move(r));
             });
    }
    rt.add("GET", "/_charges",
           [this](http_request&&, path_params&&, responder r) { log_handler(log, std::move(r)); });
    rt.add("GET", "/_refunds", [this](http_request&&, path_params&&, responder r) {
      log_handler(refunds, std::move(r));
    });
    rt.add("GET", "/_webhooks", [this](http_request&&, path_params&&, responder r) {
      r(json_response(200, json::value{hooks.rows()}));
    });
    for (const char* method : {"GET", "PUT"}) {
      rt.add(method, "/_faults", [this](http_request&& q, path_params&& p, responder r) {
        faults_handler(std::move(q), std::move(p), std::move(r));
      });
    }
    rt.add("GET", "/healthz", [](http_request&&, path_params&&, responder r) {
      r(json_response(200, obj({{"status", str("ok")}})));
    });
    return rt;
  }
};

simulator::simulator(options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}

simulator::~simulator() {
  stop();
}

std::string simulator::start() {
  impl& s = *impl_;
  if (!s.opts.tls_cert.empty()) {
    try {
      s.tls = make_server_tls(s.opts.tls_cert, s.opts.tls_key);
    } catch (const std::exception& e) {
      return std::string{"paysim: "} + e.what();
    }
  }
  if (std::string err = s.hooks.start(); !err.empty()) {
    return "paysim: " + err;
  }
  s.timer_thread = std::thread{[&s] { s.timers.run(); }};
  for (std::size_t g = 0; g < s.opts.gateways.size(); ++g) {
    auto gw = std::make_unique<impl::gw>();
    gw->name = s.opts.gateways[g].name;
    s.gws.push_back(std::move(gw));
  }
  for (std::size_t g = 0; g < s.gws.size(); ++g) {
    net::server_options so;
    so.host = s.tls ? "127.0.0.1" : s.opts.gateways[g].host;
    so.port = s.tls ? 0 : s.opts.gateways[g].port;
    // A gateway's own limits (not a node's settings): generous for the JSON it takes.
    so.io_threads = 2;
    so.body_limit = 64 * 1024;
    so.header_limit = 8 * 1024;
    so.target_limit = 2048;
    so.read_timeout = milliseconds{15000};
    so.handler_timeout = s.opts.latency + s.opts.slow + max_capture_delay + milliseconds{10000};
    so.idle_timeout = milliseconds{60000};
    so.max_connections = 100000;
    auto rt = std::make_shared<const net::router>(s.make_router(g));
    s.gws[g]->server = std::make_unique<net::http_server>(
        so, [rt](http_request&& q, responder r) { rt->dispatch(std::move(q), std::move(r)); });
    if (const auto ec = s.gws[g]->server->start()) {
      const std::string msg = "paysim: " + s.gws[g]->name + " cannot listen on " + so.host + ":" +
                              std::to_string(so.port) + ": " + ec.message();
      stop();
      return msg;
    }
    if (s.tls) {
      const auto& at = s.opts.gateways[g];
      s.gws[g]->front =
          std::make_unique<tls_front>(*s.tls, at.host, at.port, s.gws[g]->server->port());
      if (const auto ec = s.gws[g]->front->start()) {
        const std::string msg = "paysim: " + s.gws[g]->name + " cannot listen (TLS) on " + at.host +
                                ":" + std::to_string(at.port) + ": " + ec.message();
        stop();
        return msg;
      }
    }
  }
  return {};
}

std::vector<gateway_address> simulator::endpoints() const {
  std::vector<gateway_address> out;
  for (std::size_t g = 0; g < impl_->gws.size(); ++g) {
    const auto& gw = *impl_->gws[g];
    const uint16_t plain = gw.server ? gw.server->port() : 0;
    if (gw.front) {
      out.push_back({gw.name, impl_->opts.gateways[g].host, gw.front->port(), plain});
    } else {
      out.push_back({gw.name, impl_->opts.gateways[g].host, plain, 0});
    }
  }
  return out;
}

void simulator::stop() {
  impl& s = *impl_;
  for (auto& gw : s.gws) {
    if (gw->front) {
      gw->front->stop();
    }
    if (gw->server) {
      gw->server->stop(milliseconds{1000});
    }
  }
  s.hooks.stop();
  s.work.reset();
  s.timers.stop();
  if (s.timer_thread.joinable()) {
    s.timer_thread.join();
  }
}

} // namespace surge::paysim
