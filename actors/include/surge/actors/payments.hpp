#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace surge::actors {

/// One charge, as the order actor asks for it. `idempotency_key` is derived from the order and
/// is sent unchanged on every try, to every gateway, so that a gateway charges a key at most once.
struct charge_request {
  std::string idempotency_key;
  std::string order_id;
  int64_t amount_cents = 0;
  std::string currency;
  std::string token; ///< the shopper's payment token, e.g. "tok_ok"
  /// Asked right before every charge call goes out (empty: always true). False means the
  /// caller may no longer act for the order (its node lost the order's shard lease, or is about
  /// to): nothing more is sent and the outcome is unknown, so that the order's next owner, whose
  /// lookup may already have found no charge, is the only one that can charge the key.
  std::function<bool()> may_send;
  /// false: authorise only — the amount is reserved on the card, not taken, until capture()
  /// takes it or void_authorization() releases it (approved answers say funds::authorized).
  bool capture = true;
  /// Where the gateway sends the shopper back after Strong Customer Authentication (3-D
  /// Secure), when it asks for one (charge_status::requires_action); empty: no redirect back.
  std::string return_url = {};
};

enum class charge_status {
  approved, ///< the gateway took the money, or reserved it (charge_result::money), once per key
  declined, ///< the card was refused: a definitive no, nothing charged
  failed,   ///< every gateway refused to process it (outage): nothing charged
  unknown,  ///< the outcome could not be learned (timeouts, and lookups failed too)
  /// The gateway needs the shopper to authenticate (3-D Secure) before it decides: nothing is
  /// taken yet; charge_result::action_url is where the shopper goes. The charge stays open at
  /// that gateway (a lookup of the key answers requires_action until the shopper is done, then
  /// approved or declined); void_authorization() of it abandons it. Never failed over.
  requires_action,
};

const char* to_string(charge_status x);

/// Where the money of an approved charge stands.
enum class funds : uint8_t {
  captured,   ///< taken (a charge with capture, or an authorisation captured since)
  authorized, ///< reserved on the card only (charge_request::capture false, not captured yet)
  voided,     ///< the authorisation was released: nothing was taken
};

const char* to_string(funds x);

struct charge_result {
  charge_status status = charge_status::unknown;
  std::string gateway;           ///< which gateway answered (approved/declined)
  std::string charge_id;         ///< the gateway's id of the charge
  std::string message;           ///< for logs and the shopper-facing error
  funds money = funds::captured; ///< approved only: where its money stands now
  std::string action_url = {};   ///< requires_action only: where the shopper authenticates
};

/// A capture or a void of an authorisation (charge_request::capture false) that `gateway`
/// approved, as the order actor asks for it. Like a refund it goes to that gateway only, under
/// its own `idempotency_key` (derived by the caller from the charge's key, sent unchanged on
/// every try), so a retry never captures or voids twice.
struct settle_request {
  std::string idempotency_key; ///< the capture's or void's own key
  std::string charge_key;      ///< the authorisation's idempotency key
  std::string gateway;         ///< the gateway that approved it (charge_result::gateway)
  std::string charge_id;       ///< that gateway's id of it (charge_result::charge_id)
  int64_t amount_cents = 0;    ///< the authorised amount (captures take all of it)
  std::string currency;        ///< the authorisation's currency
  /// Asked right before every call goes out (empty: always true), as for charge_request: false
  /// means the caller no longer holds the order's lease, and nothing more is sent (unknown).
  std::function<bool()> may_send;
};

enum class settle_status {
  done,     ///< captured (the money is taken), or voided (released): now or on an earlier call
  rejected, ///< the gateway refused it (no such authorisation, captured already for a void,
            ///< voided already for a capture, ...): definitive
  unknown,  ///< the outcome could not be learned: ask again later with the same key
};

const char* to_string(settle_status x);

struct settle_result {
  settle_status status = settle_status::unknown;
  std::string message; ///< for logs and the order's reason
};

/// One refund of (part of) an approved charge, as the order actor asks for it. A refund goes to
/// the gateway that approved the charge, under its own `idempotency_key` (derived by the caller
/// from the charge's key and sent unchanged on every try), so a gateway refunds a key at most once.
struct refund_request {
  std::string idempotency_key; ///< the refund's own key, derived by the caller from charge_key
  std::string charge_key;      ///< the charge's idempotency key
  std::string gateway;         ///< the gateway that approved the charge (charge_result::gateway)
  std::string charge_id;       ///< that gateway's id of the charge (charge_result::charge_id)
  int64_t amount_cents = 0;    ///< how much to give back: at most what is left of the charge
  std::string currency;        ///< the charge's currency
};

enum class refund_status {
  refunded, ///< the money is given back (exactly once for this key)
  rejected, ///< the gateway refused it (no such charge, more than is left, ...): definitive
  unknown,  ///< the outcome could not be learned (timeouts, outage, circuit open): ask again later
            ///< with the same key; it is never refunded twice
};

const char* to_string(refund_status x);

struct refund_result {
  refund_status status = refund_status::unknown;
  std::string refund_id; ///< the gateway's id of the refund (refunded)
  std::string message;   ///< for logs and the order's reason
};

/// Payments through the configured gateways (failover in order, retries with backoff, a circuit
/// breaker per gateway). Implementations never block the caller: `done` runs exactly once, on
/// an implementation thread, and must not block. A timeout is never taken as "not charged": the
/// implementation looks the charge up by its key before it tries another gateway, so one key is
/// charged at most once across all gateways.
class payment_service {
 public:
  using callback = std::function<void(charge_result)>;
  using refund_callback = std::function<void(refund_result)>;
  using settle_callback = std::function<void(settle_result)>;
  virtual ~payment_service() = default;

  virtual void charge(charge_request req, callback done) = 0;

  /// What the gateways know of `idempotency_key` (for orders left pending by a crash):
  /// approved/declined when a gateway has it, failed when none has it, unknown when they
  /// could not all be asked.
  virtual void lookup(std::string idempotency_key, callback done) = 0;

  /// Gives back `req.amount_cents` of the charge `req.charge_id` through `req.gateway` only (no
  /// failover: the money is there). Retryable failures are retried with backoff and the same key,
  /// within a bounded time; an outcome still open then is unknown, and asking again later with
  /// the same key is safe. `done` runs exactly once, as for charge().
  virtual void refund(refund_request req, refund_callback done) = 0;

  /// Takes the authorised money of `req.charge_id` through `req.gateway` only, with the retries
  /// and bounds of refund(); `done` runs exactly once, as for charge().
  virtual void capture(settle_request req, settle_callback done) = 0;

  /// Releases the authorisation `req.charge_id` through `req.gateway` only (nothing is taken),
  /// with the retries and bounds of refund(); `done` runs exactly once, as for charge(). Also
  /// abandons a charge that still requires action (the shopper never authenticated).
  virtual void void_authorization(settle_request req, settle_callback done) = 0;
};

} // namespace surge::actors
