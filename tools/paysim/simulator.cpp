#include "simulator.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "surge/net/json.hpp"
#include "surge/net/request_parser.hpp"
#include "surge/net/router.hpp"
#include "surge/net/server.hpp"

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

/// One line of the charge log. Approved and declined entries are the gateway's idempotent
/// records; failed entries (503) record a call the gateway refused to process.
struct entry {
  std::string gateway;
  std::string key;
  int64_t amount = 0;
  std::string currency; ///< lower case
  status st = status::failed;
  std::string id;
  std::string reason;   ///< decline reason
  bool slow = false;    ///< charged with tok_slow: its new refunds are answered late too
  int64_t refunded = 0; ///< approved only: the sum of its refunds
};

enum class refund_status { refunded, rejected, failed };

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

/// What a refund call gets.
struct refund_decision {
  enum class kind {
    refunded,
    replayed,
    conflict,     ///< the key was used for another charge, amount or currency
    unavailable,  ///< the gateway is down (--outage)
    no_charge,    ///< this gateway has no such charge
    not_approved, ///< the charge was declined: nothing to give back
    currency,     ///< the currency is not the charge's
    too_much,     ///< more than what is left of the charge
  } what = kind::unavailable;
  refund_entry record;
  int64_t left = 0;  ///< what is left of the charge (too_much)
  bool slow = false; ///< answer after --slow-ms (a new refund of a tok_slow charge)
  std::string message;
};

/// What a charge call gets.
struct decision {
  enum class kind { charged, replayed, conflict, unavailable } what = kind::unavailable;
  entry record;
  bool slow = false; ///< answer after --slow-ms
  std::string message;
};

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string upper(std::string_view s) {
  std::string out{s};
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
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

/// Form style: a charge object. Declined charges have status "failed" like the real thing.
json::value form_charge(const entry& e) {
  json::object o{{"id", str(e.id)},
                 {"object", str("charge")},
                 {"status", str(e.st == status::approved ? "succeeded" : "failed")},
                 {"amount", json::value{e.amount}},
                 {"currency", str(e.currency)}};
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
      {"amount", obj({{"value", json::value{e.amount}}, {"currency", str(upper(e.currency))}})}};
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

  struct gw {
    std::string name;
    std::unique_ptr<net::http_server> server;
    std::atomic<bool> down{false};
  };
  std::vector<std::unique_ptr<gw>> gws; // fixed after start()

  mutable std::mutex mu;
  std::vector<entry> log;                                            // guarded by mu
  std::map<std::pair<std::size_t, std::string>, std::size_t> by_key; // guarded by mu: into log
  std::map<std::string, std::size_t> by_id;                          // guarded by mu: into log
  std::vector<refund_entry> refunds;                                 // guarded by mu
  std::map<std::pair<std::size_t, std::string>, std::size_t> refund_by_key; // guarded by mu
  std::mt19937_64 rng;                                                      // guarded by mu
  uint64_t next_id = 1;                                                     // guarded by mu

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
                  const std::string& token) {
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
        d.what = decision::kind::conflict;
        d.message = "idempotency key '" + key + "' was used with " + std::to_string(first.amount) +
                    " " + first.currency;
        return d;
      }
      d.what = decision::kind::replayed;
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
    by_key.emplace(std::pair{g, key}, log.size());
    by_id.emplace(e.id, log.size());
    log.push_back(e);
    d.what = decision::kind::charged;
    d.record = std::move(e);
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
        d.what = refund_decision::kind::conflict;
        d.message = "idempotency key '" + key + "' was used for a refund of " +
                    std::to_string(first.amount) + " " + first.currency + " of charge " +
                    first.charge_id;
        return d;
      }
      d.what = refund_decision::kind::replayed;
      d.record = first;
      return d;
    }
    e.st = refund_status::rejected;
    if (!at) {
      d.what = refund_decision::kind::no_charge;
      d.message = "no such charge: '" + (charge_id.empty() ? charge_key : charge_id) + "'";
    } else if (log[*at].st != status::approved) {
      d.what = refund_decision::kind::not_approved;
      d.message = "charge " + log[*at].id + " was declined: nothing to refund";
    } else if (e.currency != log[*at].currency) {
      d.what = refund_decision::kind::currency;
      d.message = "charge " + log[*at].id + " is in " + log[*at].currency + ", not " + e.currency;
    } else if (amount > log[*at].amount - log[*at].refunded) {
      d.what = refund_decision::kind::too_much;
      d.left = log[*at].amount - log[*at].refunded;
      d.message = "refund amount (" + std::to_string(amount) +
                  ") is greater than the unrefunded amount of charge " + log[*at].id + " (" +
                  std::to_string(d.left) + ")";
    } else {
      e.st = refund_status::refunded;
      e.id = "re_" + gws[g]->name + "_" + std::to_string(next_id++);
      log[*at].refunded += amount;
      refund_by_key.emplace(std::pair{g, key}, refunds.size());
      d.what = refund_decision::kind::refunded;
      d.slow = log[*at].slow;
    }
    refunds.push_back(e);
    d.record = std::move(e);
    return d;
  }

  milliseconds delay_for(const refund_decision& d) const {
    return opts.latency +
           (d.what == refund_decision::kind::refunded && d.slow ? opts.slow : milliseconds{});
  }

  std::optional<entry> find(std::size_t g, const std::string& key) const {
    std::lock_guard lock{mu};
    if (auto it = by_key.find({g, key}); it != by_key.end()) {
      return log[it->second];
    }
    return std::nullopt;
  }

  milliseconds delay_for(const decision& d) const {
    return opts.latency +
           (d.what == decision::kind::charged && d.slow ? opts.slow : milliseconds{});
  }

  // ---- form style ----

  void form_charge_handler(std::size_t g, http_request&& req, responder r) {
    const auto key = req.header("idempotency-key");
    if (!key || key->empty()) {
      return answer(
          std::move(r),
          json_response(400, form_error("invalid_request_error", "missing_idempotency_key",
                                        "the Idempotency-Key header is required")),
          opts.latency);
    }
    http_request form;
    if (!net::decode_target("/?" + req.body, form)) {
      return answer(std::move(r),
                    json_response(400, form_error("invalid_request_error", "parameter_invalid",
                                                  "the body is not valid form data")),
                    opts.latency);
    }
    const auto amount = positive_int(form.param("amount").value_or(""));
    const auto currency = form.param("currency");
    const auto source = form.param("source");
    if (!amount || !currency || currency->empty() || !source || source->empty()) {
      return answer(std::move(r),
                    json_response(400, form_error("invalid_request_error", "parameter_missing",
                                                  "amount (positive integer), currency and "
                                                  "source are required")),
                    opts.latency);
    }
    const decision d =
        decide(g, std::string{*key}, *amount, std::string{*currency}, std::string{*source});
    http_response res;
    switch (d.what) {
    case decision::kind::unavailable:
      res = json_response(503, form_error("api_error", "unavailable", d.message));
      break;
    case decision::kind::conflict:
      res =
          json_response(422, form_error("idempotency_error", "idempotency_key_in_use", d.message));
      break;
    case decision::kind::charged:
    case decision::kind::replayed:
      if (d.record.st == status::approved) {
        res = json_response(200, form_charge(d.record));
      } else {
        res = json_response(402, obj({{"error", obj({{"type", str("card_error")},
                                                     {"code", str("card_declined")},
                                                     {"message", str(d.record.reason)},
                                                     {"charge", str(d.record.id)}})}}));
      }
      break;
    }
    if (d.what == decision::kind::replayed) {
      res.headers.emplace_back("Idempotent-Replayed", "true");
    }
    answer(std::move(r), std::move(res), delay_for(d));
  }

  void form_lookup_handler(std::size_t g, http_request&& req, responder r) {
    if (gws[g]->down.load()) {
      return answer(std::move(r),
                    json_response(503, form_error("api_error", "unavailable",
                                                  gws[g]->name + " is unavailable")),
                    opts.latency);
    }
    const auto key = req.param("idempotency_key");
    if (!key) {
      return answer(std::move(r),
                    json_response(400, form_error("invalid_request_error", "parameter_missing",
                                                  "idempotency_key is required")),
                    opts.latency);
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

  void form_refund_handler(std::size_t g, http_request&& req, responder r) {
    auto bad = [&](std::string code, std::string msg) {
      answer(
          std::move(r),
          json_response(400, form_error("invalid_request_error", std::move(code), std::move(msg))),
          opts.latency);
    };
    const auto key = req.header("idempotency-key");
    if (!key || key->empty()) {
      return bad("missing_idempotency_key", "the Idempotency-Key header is required");
    }
    http_request form;
    if (!net::decode_target("/?" + req.body, form)) {
      return bad("parameter_invalid", "the body is not valid form data");
    }
    const auto charge = form.param("charge");
    const auto amount = positive_int(form.param("amount").value_or(""));
    if (!charge || charge->empty() || !amount) {
      return bad("parameter_missing", "charge and amount (positive integer) are required");
    }
    const refund_decision d = decide_refund(g, std::string{*key}, std::string{*charge}, {}, *amount,
                                            std::string{form.param("currency").value_or("")});
    http_response res;
    switch (d.what) {
    case refund_decision::kind::unavailable:
      res = json_response(503, form_error("api_error", "unavailable", d.message));
      break;
    case refund_decision::kind::conflict:
      res =
          json_response(422, form_error("idempotency_error", "idempotency_key_in_use", d.message));
      break;
    case refund_decision::kind::no_charge:
      res = json_response(404, form_error("invalid_request_error", "resource_missing", d.message));
      break;
    case refund_decision::kind::not_approved:
      res = json_response(400,
                          form_error("invalid_request_error", "charge_not_refundable", d.message));
      break;
    case refund_decision::kind::currency:
      res = json_response(400, form_error("invalid_request_error", "currency_mismatch", d.message));
      break;
    case refund_decision::kind::too_much:
      res = json_response(400, form_error("invalid_request_error", "amount_too_large", d.message));
      break;
    case refund_decision::kind::refunded:
    case refund_decision::kind::replayed:
      res = json_response(200, obj({{"id", str(d.record.id)},
                                    {"object", str("refund")},
                                    {"amount", json::value{d.record.amount}},
                                    {"charge", str(d.record.charge_id)},
                                    {"currency", str(d.record.currency)},
                                    {"status", str("succeeded")}}));
      break;
    }
    if (d.what == refund_decision::kind::replayed) {
      res.headers.emplace_back("Idempotent-Replayed", "true");
    }
    answer(std::move(r), std::move(res), delay_for(d));
  }

  // ---- JSON style ----

  void json_charge_handler(std::size_t g, http_request&& req, responder r) {
    auto bad = [&](std::string msg) {
      answer(std::move(r), json_response(400, json_error(400, "validation", std::move(msg))),
             opts.latency);
    };
    auto parsed = json::parse(req.body);
    const auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || !v->is_object()) {
      return bad("the body must be a JSON object");
    }
    const json::value* ref = v->find("reference");
    const json::value* amount = v->find("amount");
    const json::value* method = v->find("paymentMethod");
    const json::value* value = amount != nullptr ? amount->find("value") : nullptr;
    const json::value* currency = amount != nullptr ? amount->find("currency") : nullptr;
    const json::value* token = method != nullptr ? method->find("token") : nullptr;
    if (ref == nullptr || !ref->is_string() || std::get<std::string>(ref->get()).empty()) {
      return bad("reference (string) is required");
    }
    if (value == nullptr || !value->is_int() || std::get<int64_t>(value->get()) <= 0 ||
        currency == nullptr || !currency->is_string()) {
      return bad("amount.value (positive integer) and amount.currency are required");
    }
    if (token == nullptr || !token->is_string()) {
      return bad("paymentMethod.token is required");
    }
    const decision d =
        decide(g, std::get<std::string>(ref->get()), std::get<int64_t>(value->get()),
               std::get<std::string>(currency->get()), std::get<std::string>(token->get()));
    http_response res;
    switch (d.what) {
    case decision::kind::unavailable:
      res = json_response(503, json_error(503, "unavailable", d.message));
      break;
    case decision::kind::conflict:
      res = json_response(422, json_error(422, "idempotency_conflict", d.message));
      break;
    case decision::kind::charged:
    case decision::kind::replayed:
      res = json_response(200, json_payment(d.record));
      break;
    }
    answer(std::move(r), std::move(res), delay_for(d));
  }

  void json_lookup_handler(std::size_t g, path_params&& p, responder r) {
    if (gws[g]->down.load()) {
      return answer(
          std::move(r),
          json_response(503, json_error(503, "unavailable", gws[g]->name + " is unavailable")),
          opts.latency);
    }
    if (auto e = find(g, p.at(0))) {
      return answer(std::move(r), json_response(200, json_payment(*e)), opts.latency);
    }
    answer(std::move(r),
           json_response(404, json_error(404, "not_found", "no payment with reference " + p.at(0))),
           opts.latency);
  }

  void json_refund_handler(std::size_t g, http_request&& req, responder r) {
    auto bad = [&](std::string msg) {
      answer(std::move(r), json_response(400, json_error(400, "validation", std::move(msg))),
             opts.latency);
    };
    auto parsed = json::parse(req.body);
    const auto* v = std::get_if<json::value>(&parsed);
    if (v == nullptr || !v->is_object()) {
      return bad("the body must be a JSON object");
    }
    auto text = [v](const char* k) -> std::optional<std::string> {
      const json::value* m = v->find(k);
      if (m == nullptr) {
        return std::string{};
      }
      if (!m->is_string()) {
        return std::nullopt;
      }
      return std::get<std::string>(m->get());
    };
    const auto ref = text("reference");
    const auto payment_ref = text("paymentReference");
    const auto psp_ref = text("paymentPspReference");
    const json::value* amount = v->find("amount");
    const json::value* value = amount != nullptr ? amount->find("value") : nullptr;
    const json::value* currency = amount != nullptr ? amount->find("currency") : nullptr;
    if (!ref || ref->empty()) {
      return bad("reference (string) is required");
    }
    if (!payment_ref || !psp_ref || (payment_ref->empty() && psp_ref->empty())) {
      return bad("paymentReference or paymentPspReference (string) is required");
    }
    if (value == nullptr || !value->is_int() || std::get<int64_t>(value->get()) <= 0 ||
        currency == nullptr || !currency->is_string() ||
        std::get<std::string>(currency->get()).empty()) {
      return bad("amount.value (positive integer) and amount.currency are required");
    }
    const refund_decision d =
        decide_refund(g, *ref, *psp_ref, *payment_ref, std::get<int64_t>(value->get()),
                      std::get<std::string>(currency->get()));
    http_response res;
    switch (d.what) {
    case refund_decision::kind::unavailable:
      res = json_response(503, json_error(503, "unavailable", d.message));
      break;
    case refund_decision::kind::conflict:
      res = json_response(422, json_error(422, "idempotency_conflict", d.message));
      break;
    case refund_decision::kind::no_charge:
      res = json_response(404, json_error(404, "not_found", d.message));
      break;
    case refund_decision::kind::not_approved:
      res = json_response(422, json_error(422, "not_refundable", d.message));
      break;
    case refund_decision::kind::currency:
      res = json_response(422, json_error(422, "currency_mismatch", d.message));
      break;
    case refund_decision::kind::too_much:
      res = json_response(422, json_error(422, "refund_exceeds_balance", d.message));
      break;
    case refund_decision::kind::refunded:
    case refund_decision::kind::replayed:
      res = json_response(200, obj({{"pspReference", str(d.record.id)},
                                    {"paymentPspReference", str(d.record.charge_id)},
                                    {"paymentReference", str(d.record.charge_key)},
                                    {"reference", str(d.record.key)},
                                    {"amount", obj({{"value", json::value{d.record.amount}},
                                                    {"currency", str(upper(d.record.currency))}})},
                                    {"status", str("refunded")}}));
      break;
    }
    answer(std::move(r), std::move(res), delay_for(d));
  }

  // ---- control ----

  void outage_handler(std::size_t g, http_request&& req, responder r) {
    auto parsed = json::parse(req.body);
    const auto* v = std::get_if<json::value>(&parsed);
    const json::value* down = v != nullptr ? v->find("down") : nullptr;
    if (down == nullptr || !down->is_bool()) {
      return r(net::error_response(400, "bad_request", "expected {\"down\":true|false}"));
    }
    gws[g]->down.store(std::get<bool>(down->get()));
    r(json_response(200, obj({{"gateway", str(gws[g]->name)}, {"down", *down}})));
  }

  void charges_handler(responder r) {
    json::array out;
    {
      std::lock_guard lock{mu};
      for (const entry& e : log) {
        out.push_back(obj({{"gateway", str(e.gateway)},
                           {"idempotency_key", str(e.key)},
                           {"amount_cents", json::value{e.amount}},
                           {"currency", str(e.currency)},
                           {"status", str(to_string(e.st))},
                           {"refunded_cents", json::value{e.refunded}}}));
      }
    }
    r(json_response(200, json::value{std::move(out)}));
  }

  void refunds_handler(responder r) {
    json::array out;
    {
      std::lock_guard lock{mu};
      for (const refund_entry& e : refunds) {
        out.push_back(obj({{"gateway", str(e.gateway)},
                           {"idempotency_key", str(e.key)},
                           {"charge_idempotency_key", str(e.charge_key)},
                           {"amount_cents", json::value{e.amount}},
                           {"currency", str(e.currency)},
                           {"status", str(to_string(e.st))}}));
      }
    }
    r(json_response(200, json::value{std::move(out)}));
  }

  net::router make_router(std::size_t g) {
    net::router rt;
    rt.add("POST", "/v1/charges", [this, g](http_request&& q, path_params&&, responder r) {
      form_charge_handler(g, std::move(q), std::move(r));
    });
    rt.add("GET", "/v1/charges", [this, g](http_request&& q, path_params&&, responder r) {
      form_lookup_handler(g, std::move(q), std::move(r));
    });
    rt.add("POST", "/payments", [this, g](http_request&& q, path_params&&, responder r) {
      json_charge_handler(g, std::move(q), std::move(r));
    });
    rt.add("GET", "/payments/{reference}", [this, g](http_request&&, path_params&& p, responder r) {
      json_lookup_handler(g, std::move(p), std::move(r));
    });
    rt.add("POST", "/v1/refunds", [this, g](http_request&& q, path_params&&, responder r) {
      form_refund_handler(g, std::move(q), std::move(r));
    });
    rt.add("POST", "/refunds", [this, g](http_request&& q, path_params&&, responder r) {
      json_refund_handler(g, std::move(q), std::move(r));
    });
    rt.add("POST", "/_outage", [this, g](http_request&& q, path_params&&, responder r) {
      outage_handler(g, std::move(q), std::move(r));
    });
    rt.add("GET", "/_charges",
           [this](http_request&&, path_params&&, responder r) { charges_handler(std::move(r)); });
    rt.add("GET", "/_refunds",
           [this](http_request&&, path_params&&, responder r) { refunds_handler(std::move(r)); });
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
  s.timer_thread = std::thread{[&s] { s.timers.run(); }};
  for (std::size_t g = 0; g < s.opts.gateways.size(); ++g) {
    auto gw = std::make_unique<impl::gw>();
    gw->name = s.opts.gateways[g].name;
    s.gws.push_back(std::move(gw));
  }
  for (std::size_t g = 0; g < s.gws.size(); ++g) {
    net::server_options so;
    so.host = s.opts.gateways[g].host;
    so.port = s.opts.gateways[g].port;
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
  }
  return {};
}

std::vector<gateway_address> simulator::endpoints() const {
  std::vector<gateway_address> out;
  for (std::size_t g = 0; g < impl_->gws.size(); ++g) {
    uint16_t port = impl_->gws[g]->server ? impl_->gws[g]->server->port() : 0;
    out.push_back({impl_->gws[g]->name, impl_->opts.gateways[g].host, port});
  }
  return out;
}

void simulator::stop() {
  impl& s = *impl_;
  for (auto& gw : s.gws) {
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
