#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace surge::webhook_sink {

/// How the sink answers a webhook POST (the control paths are never affected).
enum class mode {
  ok,      ///< 200 {"received":true}, recorded
  fail,    ///< 500 {"error":"failing on demand"}, not recorded
  timeout, ///< the request is read, never answered; the connection closed after the delay
  slow,    ///< as ok, after the delay (recorded when answered)
  down,    ///< the connection closed right after the request is read, no answer
};

/// "ok", "fail", "timeout", "slow", "down".
const char* to_string(mode m);
/// The mode named `name` (as to_string writes it), or nullopt.
std::optional<mode> mode_named(std::string_view name);

/// The longest delay the sink takes (--delay-ms, PUT /_mode's delay_ms): one hour.
inline constexpr std::chrono::milliseconds max_delay{3'600'000};

struct options {
  std::string host;                    ///< an IP address (no brackets)
  uint16_t port = 0;                   ///< 0: any free port (see sink::port())
  std::string secret;                  ///< empty: signatures are not checked
  std::chrono::seconds tolerance{300}; ///< how far Surge-Signature's t may be from now
  mode initial = mode::ok;
  std::chrono::milliseconds delay{2000}; ///< slow and timeout; at most max_delay
};

/// The receiving end of Surge's outgoing webhooks, for tests (tools/README.md has the contract):
/// answers each `POST <any path>` as its mode says, checks Surge-Signature when it has a secret,
/// and records what it answered 200. Control API on the same port: GET /_events, DELETE /_events,
/// GET /_stats, PUT /_mode.
///
/// One I/O thread owns every connection and all the state (mode, log, counts); delayed answers
/// and closes are timers on it, so a slow or held connection never holds up another.
///
/// Lifecycle: start() binds and starts the thread; stop() (also the destructor) closes every
/// connection at once (delayed answers are not sent) and joins it. Not copyable.
class sink {
 public:
  explicit sink(options opts);
  ~sink();
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;

  /// Binds and listens; the error when the address cannot be bound. Connections are accepted
  /// (queued by the kernel) from the moment it returns.
  std::error_code start();

  /// The bound port. Valid after a successful start().
  uint16_t port() const;

  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace surge::webhook_sink
