#pragma once

// A scripted twin of the payment gateways behind actors::payment_service, for tests of the
// order actor. Header-only.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "surge/actors/payments.hpp"

namespace surge::fakes {

/// The gateways' side: what each idempotency key was charged and refunded, and how the next
/// calls go. Shared by every fake_payment_service on it (several nodes, or a node and its
/// restart), like real gateways outliving the nodes that call them. Thread-safe.
///
/// Like a real gateway (and surge-paysim), a key is charged at most once: a charge of a key the
/// gateways already decided answers that decision again. Tokens: "tok_ok" approves,
/// "tok_decline" and any other token decline, unless scripted.
class fake_gateways {
 public:
  /// How a charge call goes.
  enum class outcome {
    approve,     ///< approved (and recorded at the gateway)
    decline,     ///< declined (recorded)
    fail,        ///< every gateway refused to process it (outage): nothing charged or recorded
    lost_answer, ///< approved and recorded, but the answer is lost: the call says unknown and a
                 ///< lookup finds the approval (a timeout, then a lookup)
    unknown,     ///< the call says unknown and nothing reached a gateway (a lookup finds none)
  };

  /// How a refund call goes.
  enum class refund_outcome {
    refund,  ///< refunded (recorded; the same refund key answers the same refund again)
    reject,  ///< the gateway refuses it: definitive
    unknown, ///< the outcome could not be learned: nothing recorded, ask again later
  };

  /// One charge as a gateway keeps it.
  struct charge_record {
    std::string key;
    std::string gateway;
    std::string charge_id;
    actors::charge_status status = actors::charge_status::approved; ///< approved or declined
    int64_t amount_cents = 0;
    std::string currency;
    int64_t refunded_cents = 0;
    actors::funds money = actors::funds::captured; ///< approved only
  };

  /// One refund call and how it went.
  struct refund_call {
    actors::refund_request request;
    actors::refund_status status = actors::refund_status::unknown;
    std::string refund_id;
  };

  /// Charges paid with `token` go `how`; approvals come from `gateway`.
  void script_token(const std::string& token, outcome how, std::string gateway = "alpha") {
    std::lock_guard<std::mutex> guard{mtx_};
    tokens_[token] = {how, std::move(gateway)};
  }

  /// The next `n` charge calls, whatever their token, go `how` (before the tokens' scripts).
  void script_next_charges(outcome how, std::size_t n = 1) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (std::size_t i = 0; i < n; ++i) {
      next_charges_.push_back(how);
    }
  }

  /// The next `n` lookups answer unknown (the gateways could not all be asked).
  void script_unknown_lookups(std::size_t n = 1) {
    std::lock_guard<std::mutex> guard{mtx_};
    unknown_lookups_ += n;
  }

  /// The next `n` refund calls go `how` (the default is refund).
  void script_next_refunds(refund_outcome how, std::size_t n = 1) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (std::size_t i = 0; i < n; ++i) {
      next_refunds_.push_back(how);
    }
  }

  /// The answers of charges paid with `token` are held (the gateway decides and records them at
  /// once) until release(token): a test acts while such a charge is in flight. An answer held
  /// when its service is destroyed is lost, as when the calling node dies.
  void hold(const std::string& token) {
    std::lock_guard<std::mutex> guard{mtx_};
    held_.insert(token);
  }

  void release(const std::string& token) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      held_.erase(token);
    }
    cv_.notify_all();
  }

  /// Charge calls made for `key` so far (whatever they answered).
  std::size_t charge_calls(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = calls_.find(key);
    return i == calls_.end() ? 0 : i->second;
  }

  /// Charge calls made for any key so far.
  std::size_t charge_calls() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::size_t n = 0;
    for (const auto& [key, c] : calls_) {
      n += c;
    }
    return n;
  }

  /// Waits (bounded by `limit`) until `n` charge calls for `key` were made; false on time-out.
  bool await_charge_calls(const std::string& key, std::size_t n,
                          std::chrono::milliseconds limit = std::chrono::seconds{20}) const {
    std::unique_lock<std::mutex> lock{mtx_};
    return cv_.wait_for(lock, limit, [&] {
      auto i = calls_.find(key);
      return i != calls_.end() && i->second >= n;
    });
  }

  /// What the gateways keep of `key`, if a gateway has it.
  std::optional<charge_record> charge_of(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = charges_.find(key);
    if (i == charges_.end()) {
      return std::nullopt;
    }
    return i->second;
  }

  /// Approved charges over all keys (each key at most once).
  std::size_t approved() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::size_t n = 0;
    for (const auto& [key, c] : charges_) {
      n += c.status == actors::charge_status::approved ? 1 : 0;
    }
    return n;
  }

  /// Every refund call so far, in order.
  std::vector<refund_call> refund_calls() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return refund_calls_;
  }

 private:
  friend class fake_payment_service;

  struct token_script {
    outcome how = outcome::decline;
    std::string gateway = "alpha";
  };

  /// REQUIRES: mtx_ held. Decides (and records) one charge call.
  actors::charge_result charge_locked(const actors::charge_request& req) {
    using actors::charge_status;
    ++calls_[req.idempotency_key];
    cv_.notify_all();
    if (auto i = charges_.find(req.idempotency_key); i != charges_.end()) {
      return result_of(i->second); // the key's first decision, again
    }
    token_script script{req.token == "tok_ok" ? outcome::approve : outcome::decline, "alpha"};
    if (auto i = tokens_.find(req.token); i != tokens_.end()) {
      script = i->second;
    }
    if (!next_charges_.empty()) {
      script.how = next_charges_.front();
      next_charges_.pop_front();
    }
    switch (script.how) {
    case outcome::fail:
      return {charge_status::failed, "", "", "every gateway refused to process it"};
    case outcome::unknown:
      return {charge_status::unknown, "", "", "timed out before any gateway had it"};
    case outcome::approve:
    case outcome::decline:
    case outcome::lost_answer:
      break;
    }
    auto& c = charges_[req.idempotency_key];
    c.key = req.idempotency_key;
    c.gateway = script.gateway;
    c.charge_id = "ch_" + std::to_string(++ids_);
    c.status = script.how == outcome::decline ? charge_status::declined : charge_status::approved;
    c.amount_cents = req.amount_cents;
    c.currency = req.currency;
    c.money = req.capture ? actors::funds::captured : actors::funds::authorized;
    if (script.how == outcome::lost_answer) {
      return {charge_status::unknown, "", "", "timed out; the gateway may have it"};
    }
    return result_of(c);
  }

  /// REQUIRES: mtx_ held.
  actors::charge_result lookup_locked(const std::string& key) {
    if (unknown_lookups_ > 0) {
      --unknown_lookups_;
      return {actors::charge_status::unknown, "", "", "the gateways could not all be asked"};
    }
    if (auto i = charges_.find(key); i != charges_.end()) {
      return result_of(i->second);
    }
    return {actors::charge_status::failed, "", "", "no gateway has the key"};
  }

  /// REQUIRES: mtx_ held. Decides (and records) one refund call.
  actors::refund_result refund_locked(const actors::refund_request& req) {
    using actors::refund_status;
    refund_call call{req, refund_status::unknown, ""};
    actors::refund_result out;
    if (auto i = refunds_.find(req.idempotency_key); i != refunds_.end()) {
      out = {refund_status::refunded, i->second, "replayed"};
    } else {
      auto how = refund_outcome::refund;
      if (!next_refunds_.empty()) {
        how = next_refunds_.front();
        next_refunds_.pop_front();
      }
      auto c = charges_.find(req.charge_key);
      const bool refundable = c != charges_.end() && c->second.gateway == req.gateway &&
                              c->second.status == actors::charge_status::approved &&
                              c->second.refunded_cents + req.amount_cents <= c->second.amount_cents;
      if (how == refund_outcome::unknown) {
        out = {refund_status::unknown, "", "timed out"};
      } else if (how == refund_outcome::reject || !refundable) {
        out = {refund_status::rejected, "", "refused"};
      } else {
        c->second.refunded_cents += req.amount_cents;
        const auto id = "re_" + std::to_string(++ids_);
        refunds_[req.idempotency_key] = id;
        out = {refund_status::refunded, id, "refunded"};
      }
    }
    call.status = out.status;
    call.refund_id = out.refund_id;
    refund_calls_.push_back(std::move(call));
    return out;
  }

  /// REQUIRES: mtx_ held. Decides one capture (`voiding` false) or void: like a gateway, of an
  /// approved authorisation of that gateway only; a repeat of what is done is done again.
  actors::settle_result settle_locked(const actors::settle_request& req, bool voiding) {
    using actors::funds;
    using actors::settle_status;
    auto c = charges_.find(req.charge_key);
    if (c == charges_.end() || c->second.gateway != req.gateway ||
        c->second.status != actors::charge_status::approved) {
      return {settle_status::rejected, "no such authorisation"};
    }
    const funds want = voiding ? funds::voided : funds::captured;
    if (c->second.money == funds::authorized) {
      c->second.money = want;
    }
    if (c->second.money != want) {
      return {settle_status::rejected,
              std::string{"the charge is "} + actors::to_string(c->second.money)};
    }
    return {settle_status::done, actors::to_string(want)};
  }

  static actors::charge_result result_of(const charge_record& c) {
    actors::charge_result r{c.status, c.gateway, c.charge_id, actors::to_string(c.status)};
    r.money = c.money;
    return r;
  }

  mutable std::mutex mtx_;
  mutable std::condition_variable cv_;
  std::map<std::string, token_script> tokens_;
  std::deque<outcome> next_charges_;
  std::size_t unknown_lookups_ = 0;
  std::deque<refund_outcome> next_refunds_;
  std::set<std::string> held_;
  std::map<std::string, std::size_t> calls_;     ///< charge calls per key
  std::map<std::string, charge_record> charges_; ///< what the gateways decided, per key
  std::map<std::string, std::string> refunds_;   ///< refund key -> refund id
  std::vector<refund_call> refund_calls_;
  uint64_t ids_ = 0;
};

/// A node's payment service on fake_gateways: every call is decided by the gateways at once and
/// answered on one of the service's own threads (never the caller's), exactly once — unless the
/// service is destroyed while the answer is held (fake_gateways::hold), which loses it as a
/// crash would. A held answer occupies one of the `threads` until released.
class fake_payment_service final : public actors::payment_service {
 public:
  explicit fake_payment_service(std::shared_ptr<fake_gateways> gateways, std::size_t threads = 4)
      : gateways_(std::move(gateways)) {
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }

  ~fake_payment_service() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    {
      std::lock_guard<std::mutex> guard{gateways_->mtx_};
      gone_ = true;
    }
    cv_.notify_all();
    gateways_->cv_.notify_all();
    for (auto& t : threads_) {
      t.join();
    }
  }

  fake_payment_service(const fake_payment_service&) = delete;
  fake_payment_service& operator=(const fake_payment_service&) = delete;

  void charge(actors::charge_request req, callback done) override {
    submit([this, req = std::move(req), done = std::move(done)] {
      if (req.may_send && !req.may_send()) {
        done({actors::charge_status::unknown, "", "", "not sent: the order moved"});
        return;
      }
      std::unique_lock<std::mutex> lock{gateways_->mtx_};
      auto r = gateways_->charge_locked(req);
      gateways_->cv_.wait(lock, [&] { return gone_ || gateways_->held_.count(req.token) == 0; });
      if (gone_) {
        return; // the node died with the answer on its way
      }
      lock.unlock();
      done(std::move(r));
    });
  }

  void lookup(std::string idempotency_key, callback done) override {
    answer([this, key = std::move(idempotency_key)] { return gateways_->lookup_locked(key); },
           std::move(done));
  }

  void refund(actors::refund_request req, refund_callback done) override {
    answer([this, req = std::move(req)] { return gateways_->refund_locked(req); }, std::move(done));
  }

  void capture(actors::settle_request req, settle_callback done) override {
    answer([this, req = std::move(req)] { return gateways_->settle_locked(req, false); },
           std::move(done));
  }

  void void_authorization(actors::settle_request req, settle_callback done) override {
    answer([this, req = std::move(req)] { return gateways_->settle_locked(req, true); },
           std::move(done));
  }

 private:
  /// Answers `done` with what the gateways `decide` (under their lock), on a service thread.
  template <class Decide, class Done>
  void answer(Decide decide, Done done) {
    submit([this, decide = std::move(decide), done = std::move(done)] {
      std::unique_lock<std::mutex> lock{gateways_->mtx_};
      auto r = decide();
      lock.unlock();
      done(std::move(r));
    });
  }

  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock{mtx_};
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) {
          return; // calls not yet answered are lost with the node
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  const std::shared_ptr<fake_gateways> gateways_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  bool gone_ = false; ///< guarded by gateways_->mtx_
  std::vector<std::thread> threads_;
};

} // namespace surge::fakes
