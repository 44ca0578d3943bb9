#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "surge/actors/payments.hpp"
#include "surge/net/payments/gateway.hpp"

namespace surge::net::payments {

/// The settings payments.*. No defaults of their own: the node fills them from its settings
/// (runtime/wiring.hpp: router_options_of), as tests do from the defaults.
struct router_options {
  std::chrono::milliseconds timeout{};          ///< per gateway call (connect + write + read)
  int max_tries = 0;                            ///< charge calls per gateway on retryable errors
  int lookup_tries = 0;                         ///< lookups per gateway to resolve an unknown
  std::chrono::milliseconds backoff_base{};     ///< first retry delay (before jitter)
  std::chrono::milliseconds backoff_cap{};      ///< longest retry delay
  int breaker_threshold = 0;                    ///< consecutive failures that open a breaker
  std::chrono::milliseconds breaker_cooldown{}; ///< open this long, then one probe call
  std::size_t threads = 0;                      ///< the pool that makes the blocking calls
  int refund_tries = 0;                         ///< refund calls at most (same key each time)
  std::chrono::milliseconds refund_deadline{};  ///< a refund's calls and waits, all together
};

/// One gateway's figures since its router started (payment_router::stats(); the admin API's
/// GET /admin/v1/payments).
struct gateway_stats {
  std::string name;
  std::string breaker; ///< closed, open or half_open
  // Charge calls by what the gateway answered: approved, declined, failed (an error or a
  // refusal: retryable or rejected) and unknown (no answer: timeout after sending).
  uint64_t approved = 0;
  uint64_t declined = 0;
  uint64_t failed = 0;
  uint64_t unknown = 0;
  uint64_t refunds = 0;   ///< refund calls the gateway confirmed
  uint64_t failovers = 0; ///< charges that moved on from this gateway to the next one
  /// Latency of its calls (charge, lookup, refund), from a log-bucketed histogram (within
  /// about 10 %); nullopt before the first call.
  std::optional<double> p50_ms;
  std::optional<double> p99_ms;
};

/// Optional hooks for the node's metrics (the runtime connects them to net's registry). Called
/// on the router's pool threads; each must be cheap and must not block.
struct payment_observer {
  /// One call to a gateway: `op` charge|lookup|refund, `outcome` approved|declined|failed
  /// (retryable)|unknown|not_found|rejected, and refunded for an approved refund.
  std::function<void(const std::string& gateway, std::string_view op, std::string_view outcome,
                     double seconds)>
      call;
  /// A charge moved on from `gateway` to the next one.
  std::function<void(const std::string& gateway)> failover;
};

/// A gateway's circuit breaker as metrics show it.
struct breaker_status {
  std::string gateway;
  int state = 0; ///< 0 closed, 1 half-open, 2 open
};

/// actors::payment_service over an ordered list of gateways (failover in that order).
///
/// charge(): per gateway, skipped while its circuit breaker is open; retryable failures are
/// retried (bounded, exponential backoff with jitter) with the same idempotency key; an unknown
/// outcome (timeout after sending, or an ambiguous 5xx) is resolved by looking the key up on the
/// SAME gateway, and only a definitive not_found moves on to the next gateway. approved and
/// declined are final (a decline never fails over); a request the gateway rejects (4xx, e.g. an
/// idempotency conflict) ends as failed without failover. All gateways down: failed. An outcome
/// that stays unknown: unknown, and no other gateway is asked to charge.
///
/// lookup(): asks each gateway whose breaker lets it; approved/declined when one has the key,
/// failed when every gateway says not_found, unknown when some could not be asked.
///
/// refund(): to the gateway named in the request only (no failover; one that is not configured
/// is unknown, nothing sent). Retryable failures and unknown outcomes are tried again with the
/// same key (the gateway replays a key's refund, so a retry is also how a timeout is resolved),
/// with backoff, at most `refund_tries` calls within `refund_deadline` (each call's timeout is
/// cut to what is left of it). refunded and rejected are final; still open at the end: unknown.
/// Each call asks the gateway's breaker first, as charge() does: while it is open nothing more is
/// sent and the refund is unknown. An empty refund key is rejected without a call.
///
/// capture() and void_authorization(): of an authorisation (charge_request::capture false), to
/// the gateway that approved it, exactly like refund() (same retries, bounds and breaker): done
/// (captured / voided), rejected, or unknown. charge() and lookup() say where an approved
/// charge's money stands (charge_result::money).
///
/// Threads: the blocking calls, the backoff waits and the callbacks run on the router's own
/// pool (`threads`), never on the caller's. A breaker counts retryable and unknown outcomes of
/// charge and refund calls as failures; a half-open breaker lets one probe call through. Lifecycle:
/// the destructor stops: queued and running work ends quickly (callbacks still run once: failed
/// when nothing was sent, else unknown; refunds unknown), then the pool is joined. Not copyable.
class payment_router final : public actors::payment_service {
 public:
  payment_router(std::vector<std::unique_ptr<gateway>> gateways, router_options opts,
                 payment_observer observe = {});
  ~payment_router() override;
  payment_router(const payment_router&) = delete;
  payment_router& operator=(const payment_router&) = delete;

  void charge(actors::charge_request req, callback done) override;
  void lookup(std::string idempotency_key, callback done) override;
  void refund(actors::refund_request req, refund_callback done) override;
  void capture(actors::settle_request req, settle_callback done) override;
  void void_authorization(actors::settle_request req, settle_callback done) override;

  /// Each gateway's figures, in failover order. Thread-safe; never waits on a call.
  std::vector<gateway_stats> stats() const;
  /// Every gateway's breaker, in failover order. Thread-safe.
  std::vector<breaker_status> breakers() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace surge::net::payments
