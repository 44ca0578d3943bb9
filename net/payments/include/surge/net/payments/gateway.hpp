#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "surge/actors/payments.hpp"

namespace surge::net::payments {

/// How one call to one gateway ended.
enum class attempt_kind {
  approved,  ///< the gateway charged (refund(): refunded) the key, now or on an earlier call
  declined,  ///< the gateway refused the card: definitive, nothing charged
  retryable, ///< not processed, try again: connection refused, 429, 5xx (refund(): also 409)
  unknown,   ///< the request was sent but no usable answer came (timeout, reset): may be charged
  not_found, ///< lookup only: the gateway has no charge for the key
  rejected,  ///< the gateway refused the request itself (4xx but 429; refund(): but 429, 409):
             ///< definitive, not retried
  /// charge() and lookup(): the charge waits for the shopper's authentication (3-D Secure) at
  /// `attempt::action_url`; definitive for this call (never failed over), open at the gateway.
  requires_action,
};

const char* to_string(attempt_kind x);

struct attempt {
  attempt_kind kind = attempt_kind::unknown;
  std::string charge_id; ///< the gateway's id (approved/declined, when it gave one)
  std::string message;   ///< decline reason or error text, for logs
  int http_status = 0;   ///< 0 when no response arrived
  /// retryable only: the request reached the gateway and it answered 5xx other than 503, so it
  /// may have processed it; the caller looks the key up before it charges anywhere else.
  bool ambiguous = false;
  std::string refund_id; ///< refund() approved: the gateway's id of the refund
  /// charge() or lookup() approved: where the charge's money stands (an authorisation made with
  /// charge_request::capture false is `authorized` until captured or voided).
  actors::funds money = actors::funds::captured;
  std::string action_url = {}; ///< requires_action: where the shopper authenticates
};

/// One payment gateway, spoken to over HTTP/1.1 (plain, or TLS with the gateway's certificate
/// verified) with blocking calls.
///
/// Thread-safe: calls may run concurrently from several threads; each call takes a kept-alive
/// connection from a small per-instance pool (or opens one) and gives it back afterwards. Every
/// call returns within about `timeout` (connect, write and read together) and never throws.
class gateway {
 public:
  virtual ~gateway() = default;

  virtual const std::string& name() const = 0;

  /// Asks the gateway to charge `req` under `req.idempotency_key`. Safe to repeat with the same
  /// key: the gateway charges a key at most once.
  virtual attempt charge(const actors::charge_request& req, std::chrono::milliseconds timeout) = 0;

  /// What the gateway knows of `idempotency_key`: approved, declined, not_found, or an error kind.
  virtual attempt lookup(const std::string& idempotency_key, std::chrono::milliseconds timeout) = 0;

  /// Asks the gateway to give back `req.amount_cents` of the charge `req.charge_id` (of key
  /// `req.charge_key`) under `req.idempotency_key`. approved (refunded, now or on an earlier
  /// call with this key), rejected (no such charge, more than is left, another refund under the
  /// same key, ...), or an error kind. Safe to repeat with the same key: the gateway refunds a key
  /// at most once, and a repeat answers as the first call did.
  virtual attempt refund(const actors::refund_request& req, std::chrono::milliseconds timeout) = 0;

  /// Asks the gateway to take the money of the authorisation `req.charge_id` under
  /// `req.idempotency_key`: approved (captured, now or on an earlier call with this key),
  /// rejected (no such authorisation, declined, voided, captured under another key, ...), or an
  /// error kind (409, the key in use: retryable). Safe to repeat with the same key.
  virtual attempt capture(const actors::settle_request& req, std::chrono::milliseconds timeout) = 0;

  /// Asks the gateway to release the authorisation `req.charge_id` (nothing is taken): approved
  /// (voided, now or before), rejected (no such authorisation, declined, captured: refund it
  /// instead), or an error kind. Safe to repeat.
  virtual attempt void_authorization(const actors::settle_request& req,
                                     std::chrono::milliseconds timeout) = 0;
};

/// The wire style of a gateway (net/payments/README.md has the fields).
enum class gateway_kind {
  form, ///< POST /v1/charges (form body, Idempotency-Key header), GET /v1/charges?idempotency_key=,
        ///< POST /v1/refunds (form body naming the charge id, Idempotency-Key header),
        ///< POST /v1/charges/{id}/capture and /cancel (an authorisation: capture=false)
  json, ///< POST /payments (JSON, "reference" is the key), GET /payments/{reference},
        ///< POST /refunds (JSON, "reference" is the refund key, "paymentReference" the charge's),
        ///< POST /payments/{pspReference}/captures and /cancels (additionalData.manualCapture)
};

/// One entry of the `payments.gateways` setting.
struct gateway_spec {
  std::string name;
  gateway_kind kind = gateway_kind::form;
  std::string host;
  uint16_t port = 0;
  bool tls = false; ///< https://: TLS, the certificate verified for `host`

  bool operator==(const gateway_spec&) const = default;
};

/// An http(s) URL's parts.
struct http_url {
  bool tls = false; ///< https://
  std::string host; ///< a name, an IPv4 address or an IPv6 address (without brackets)
  uint16_t port = 0;
  std::string path = "/"; ///< with_path only: from the first '/' on (query included)
};

/// Parses `http://host:port` or `https://host[:port]` (443), hosts as parse_gateways() takes
/// them; with `with_path`, a path (and query) may follow, else at most a trailing '/'. The parts,
/// or a message saying what is wrong (without the url).
std::variant<http_url, std::string> parse_http_url(std::string_view url, bool with_path);

/// `u` as a URL again (an IPv6 host in brackets).
std::string to_string(const http_url& u);

/// How TLS gateways are verified (`payments.ca_file`).
struct tls_options {
  /// PEM file of the CAs a gateway's certificate must chain to (a private CA, or a bundle);
  /// empty: the system's trust store (OpenSSL's default paths, /etc/ssl/certs on Debian).
  std::string ca_file;
};

/// Whether `tls` can be used: the CA file exists and holds at least one certificate. Empty when
/// it can; otherwise a message naming the file and what is wrong. Reads the file.
std::string check_tls(const tls_options& tls);

/// Parses `payments.gateways`: a comma-separated, ordered list of `name=url` or
/// `name=kind+url`, kind `form` (the default) or `json`, url `http://host:port` or
/// `https://host:port` with an optional trailing '/' (an https url without a port is port 443).
/// Names are [A-Za-z0-9_-]+ and unique; hosts are names, IPv4 or [IPv6]. Blank input is an empty
/// list. Returns the list, or a message naming the offending entry (a path, a missing port, ...
/// are errors).
std::variant<std::vector<gateway_spec>, std::string> parse_gateways(std::string_view setting);

/// A gateway client of `spec.kind`. Construction does no network I/O; a TLS gateway reads
/// `tls.ca_file` (or the system's trust store) and throws std::runtime_error when it cannot
/// (check_tls() says so beforehand).
std::unique_ptr<gateway> make_gateway(const gateway_spec& spec, const tls_options& tls = {});

} // namespace surge::net::payments
