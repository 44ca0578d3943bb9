#include "simulator.hpp"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <type_traits>

#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/router.hpp"
#include "surge/net/server.hpp"
#include "tls_front.hpp"

namespace surge::paysim {

namespace asio = boost::asio;
namespace json = surge::net::json;
using net::http_request;
using net::http_response;
using net::path_params;
using net::responder;
using std::chrono::milliseconds;

namespace {

enum class status { approved, declined, failed };

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
  money funds = money::captured; ///< approved only
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

/// Form style: a charge object. Declined charges have status "failed" like the real thing; an
/// authorisation is "succeeded" with "captured": false until captured, "canceled" once voided.
json::value form_charge(const entry& e) {
  const bool ok = e.st == status::approved;
  json::object o{{"id", str(e.id)},
                 {"object", str("charge")},
                 {"status", str(!ok                        ? "failed"
                                : e.funds == money::voided ? "canceled"
                                                           : "succeeded")},
                 {"amount", json::value{e.amount}},
                 {"currency", str(e.currency)},
                 {"captured", json::value{ok && e.funds == money::captured}}};
  if (e.st != status::approved) {
    o.emplace_back("failure_code", str("card_declined"));
    o.emplace_back("failure_message", str(e.reason));
  }
  return obj(std::move(o));
}

json::value form_error(std::string type, std::string code, std::string message) {
  return obj({{"error", obj({{"type", str(std::move(type))},
                             {"code", str(std::move(code))},
                             {"message", str(std::move(message))}})}});
}

/// JSON style: a payment result.
json::value json_payment(const entry& e) {
  json::object o{
      {"pspReference", str(e.id)},
      {"resultCode", str(e.st == status::approved ? "Authorised" : "Refused")},
      {"merchantReference", str(e.key)},
      {"amount", obj({{"value", json::value{e.amount}}, {"currency", str(upper(e.currency))}})},
      {"captured", json::value{e.st == status::approved && e.funds == money::captured}},
      {"cancelled", json::value{e.st == status::approved && e.funds == money::voided}}};
  if (e.st != status::approved) {
    o.emplace_back("refusalReason", str(e.reason));
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
                  const std::string& token, bool capture = true) {
    std::lock_guard lock{mu};
    decision d;
    entry e{gws[g]->name, key, amount, lower(currency), status::failed, {}, {}, false, 0};
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
      d.message = "charge " + log[*at].id + " was declined: nothing to refund";
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

  /// Answers a form-style call: `res` (marked when replayed) after its delay.
  void form_answer(responder r, http_response res, const outcome& d) {
    if (d.what == verdict::replayed) {
      res.headers.emplace_back("Idempotent-Replayed", "true");
    }
    answer(std::move(r), std::move(res), delay_for(d));
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
    const decision d = decide(g, call->first, *amount, std::string{*currency}, std::string{*source},
                              capture == "true");
    http_response res;
    if (!with_record(d.what)) {
      res = form_refused(d);
    } else if (d.record.st == status::approved) {
      res = json_response(200, form_charge(d.record));
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
      data.push_back(form_charge(*e));
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
    form_answer(std::move(r),
                with_record(d.what) ? json_response(200, form_charge(d.record)) : form_refused(d),
                d);
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
    const decision d =
        decide(g, *ref, *value, *currency, *token, manual == nullptr || *manual != "true");
    answer(std::move(r),
           with_record(d.what) ? json_response(200, json_payment(d.record)) : json_refused(d),
           delay_for(d));
  }

  void json_lookup_handler(std::size_t g, http_request&&, path_params&& p, responder r) {
    if (auto res = down_answer(g, json_refused)) {
      return answer(std::move(r), std::move(*res), opts.latency);
    }
    if (auto e = find(g, p.at(0))) {
      return answer(std::move(r), json_response(200, json_payment(*e)), opts.latency);
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
    answer(std::move(r),
           with_record(d.what)
               ? json_response(201, obj({{"pspReference", str("md_" + d.record.id + "_" +
                                                              (voiding ? "cancel" : "capture"))},
                                         {"paymentPspReference", str(d.record.id)},
                                         {"reference", str(*ref)},
                                         {"status", str("received")}}))
               : json_refused(d),
           delay_for(d));
  }

  void json_capture_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    json_settle(g, std::move(req), std::move(p), std::move(r), false);
  }

  void json_cancel_handler(std::size_t g, http_request&& req, path_params&& p, responder r) {
    json_settle(g, std::move(req), std::move(p), std::move(r), true);
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
    static constexpr std::array<gateway_route, 11> routes{{
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
    so.handler_timeout = s.opts.latency + s.opts.slow + milliseconds{10000};
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
  s.work.reset();
  s.timers.stop();
  if (s.timer_thread.joinable()) {
    s.timer_thread.join();
  }
}

} // namespace surge::paysim
