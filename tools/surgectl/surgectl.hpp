#pragma once

// surgectl: the operator's CLI over the admin API (shared/API.md) and the order event stream.
// The pieces main.cpp puts together; each reports failures as a cli_error with the exit code.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "surge/net/json.hpp"
#include "surge/tools/cli.hpp"
#include "surge/tools/text.hpp"

namespace surge::ctl {

namespace cli = tools::cli;

/// Exit codes.
enum exit_code : int {
  exit_ok = 0,
  exit_server_error = 1, ///< the server answered an error (or Redis did); not found; timed out
  exit_usage = 2,        ///< bad command line
  exit_unreachable = 3,  ///< cannot connect (or no answer in time)
};

/// A failure that ends the command with `code`; `what()` is the message for stderr.
struct cli_error : std::runtime_error {
  cli_error(int code, const std::string& message)
      : std::runtime_error(message)
      , code(code) {}
  int code;
};

/// How surgectl's command lines are written (tools/common's cli.hpp): words (the command and
/// its arguments) and flags in any order, "--" ends the flags.
tools::cli::syntax command_line();

/// The command line of a command with flags of its own (token, catalog).
struct own_flags {
  std::map<std::string, std::string> values; ///< by flag name
  bool help = false;                         ///< --help
  std::vector<std::string> words;            ///< the command and its arguments
};

/// Parses `args` (the whole command line after the program name) with `names` as the flags that
/// take a value, and --help; each flag once; an unknown flag is "--x is not a flag of 'COMMAND'".
/// Throws cli::usage_error.
own_flags parse_own_flags(const std::vector<std::string>& args, const std::string& command,
                          std::initializer_list<const char*> names);

/// Parses a duration: N or Ns (seconds, fractions allowed), Nms, Nm. `what` names the flag in
/// the message. Throws cli_error(exit_usage).
std::chrono::milliseconds parse_duration(const std::string& what, const std::string& s);

// ------------------------------------------------------------------------------- admin API

struct endpoint {
  std::string host;
  uint16_t port = 0;
};

/// Parses http://host[:port][/]; port 80 when absent. Throws cli_error(exit_usage).
endpoint parse_admin_url(const std::string& url);

struct http_answer {
  int status = 0;
  std::string body;
};

/// More request headers (name, value).
using header_list = std::vector<std::pair<std::string, std::string>>;

/// One request to the admin API (bearer `token` when non-empty, plus `headers`), bounded by
/// `timeout`. Throws cli_error(exit_unreachable) when it cannot connect or gets no answer.
http_answer admin_call(const endpoint& ep, const std::string& token, const std::string& method,
                       const std::string& target, const std::string& body,
                       std::chrono::milliseconds timeout, const header_list& headers = {});

/// The admin API's bearer token: `flag` (--token) when given; else $SURGE_ADMIN_TOKEN when set and
/// not empty; else the content of data/admin.token in the current directory (what scripts/run.sh
/// generates) without its trailing newline, when that file exists, with a warning on stderr when
/// group or others may read it; else empty (no Authorization header).
std::string admin_token(const std::optional<std::string>& flag);

/// `s` percent-encoded as one path segment.
using tools::path_segment;

/// Where and how the admin commands talk, and how they print.
struct admin_session {
  endpoint ep;
  std::string token; ///< empty: no Authorization header
  bool json = false; ///< print the server's JSON instead of tables
};

/// A 2xx answer and its body parsed.
struct json_answer {
  http_answer raw;
  surge::net::json::value v;
};

/// One admin call whose answer must be 2xx JSON. Anything else throws cli_error(exit_server_error)
/// with the server's {"error":{code,message}}; with `s.json` that body is also printed on stdout.
/// Connection failures throw cli_error(exit_unreachable).
json_answer admin_json(const admin_session& s, const std::string& method, const std::string& target,
                       const std::string& body = {}, const header_list& headers = {});

/// Throws cli_error(exit_server_error) for the answer `a` that is not what was asked for:
/// "error STATUS CODE: MESSAGE" from the server's {"error":{code,message}}, else the status and
/// body; with `s.json` the body is also printed on stdout. `v`: the body parsed, when it is JSON.
[[noreturn]] void throw_refusal(const admin_session& s, const http_answer& a);
[[noreturn]] void throw_refusal(const admin_session& s, const http_answer& a,
                                const surge::net::json::value* v);

/// Prints the body as the server sent it, newline-terminated, on stdout.
void print_raw(const http_answer& a);

/// The member `key` of `obj` as text: strings as they are, integers in decimal, "-" when absent.
std::string text_of(const surge::net::json::value& obj, const char* key);

/// The integer member `key` of `obj`, or `fallback`.
int64_t int_of(const surge::net::json::value& obj, const char* key, int64_t fallback = 0);

// ---------------------------------------------------------------------- cluster commands

/// `status`: one screen: this node, members by status, shards assigned/unassigned/moving.
int cmd_status(const admin_session& s);

/// `nodes`: one row per member.
int cmd_nodes(const admin_session& s);

/// `shards`: shards per node and the moves under way; `all`: every shard.
int cmd_shards(const admin_session& s, bool all);

/// `drain NODE`: asks that NODE hand over its shards. With `wait`, polls the cluster until NODE
/// owns none (progress on stderr): exit 0 when it does, exit 1 when `*wait` ran out.
int cmd_drain(const admin_session& s, const std::string& node,
              std::optional<std::chrono::milliseconds> wait);

/// `undrain NODE`: asks that a draining NODE serve again (the cluster gives it shards back).
int cmd_undrain(const admin_session& s, const std::string& node);

// ---------------------------------------------------------------------------- orders tail

struct tail_options {
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string stream = "surge:orders";
  std::string from = "$";                           ///< "0", "$" or a stream entry id
  std::optional<uint64_t> count;                    ///< stop after this many distinct orders
  std::optional<std::chrono::milliseconds> timeout; ///< stop after this long without a new one
  bool json = false;
};

/// Follows the stream, printing each order (by `key`) once on stdout. Returns the exit code;
/// throws cli_error on connection (exit_unreachable) or Redis (exit_server_error) failures.
int orders_tail(const tail_options& opts);

/// Set by SIGINT/SIGTERM.
bool interrupted();

// ---------------------------------------------------------------------------------- token

/// `token`: prints a development customer token (tools/surgectl/token.cpp). `args` is the whole
/// command line after the program name. Throws cli_error: exit_usage for bad flags,
/// exit_server_error when no usable secret is found.
int cmd_token(const std::vector<std::string>& args);

// ---------------------------------------------------------------------------------- sales

/// `sales list|get|put|delete` (sales.cpp): `args` is the whole command line after the program
/// name (the command takes its own flags, --admin, --token and --json among them). Throws
/// cli_error: exit_usage for bad flags or a sale file that is not a JSON object, exit_server_error
/// for the server's refusals, exit_unreachable when it cannot connect.
int cmd_sales(const std::vector<std::string>& args);

// ----------------------------------------------------------------------------------- roll

/// `roll` (roll.cpp): a rolling upgrade, one node at a time (drain, restart command, ready,
/// balanced). `args` is the whole command line after the program name (the command takes its own
/// flags, --admin and --token among them). Throws cli_error: exit_usage for bad flags,
/// exit_server_error when a step fails or times out (the message names the node and the step),
/// exit_unreachable when the admin API cannot be reached at the start.
int cmd_roll(const std::vector<std::string>& args);

// -------------------------------------------------------------------------------- catalog

/// `catalog generate|queries|import` (catalog.cpp): `args` is the whole command line after the
/// program name (the command takes its own flags, --admin and --token among them). Throws
/// cli_error: exit_usage for bad flags; see catalog_import for the rest.
int cmd_catalog(const std::vector<std::string>& args);

struct import_options {
  std::string file = "-";   ///< "-": stdin
  uint64_t batch = 5000;    ///< lines per POST /admin/v1/products:import (1 to 10000)
  uint64_t concurrency = 4; ///< batches in flight at once
  /// Bytes per POST at most (the node's http.body_limit, 65536 unless it is set otherwise); a
  /// batch that still gets 413 is sent again as two halves.
  uint64_t max_bytes = 65536;
};

/// `catalog import` (catalog_import.cpp): posts the NDJSON of `o.file` in batches; a batch that
/// gets 503 or no answer is sent again with backoff (up to 8 tries), one that gets 413 as two
/// halves. Progress and a summary on
/// stderr. Returns exit_ok when every line was imported, exit_server_error (the first errors
/// printed) when a line or a batch was refused; throws cli_error(exit_unreachable) when a batch
/// still gets no answer after its tries, cli_error(exit_server_error) when the file cannot be read.
int catalog_import(const admin_session& s, const import_options& o);

/// The admin session of `--admin` (else $SURGECTL_ADMIN, else http://127.0.0.1:9090) and
/// `--token` (admin_token()). Throws cli_error(exit_usage) for a bad URL.
admin_session open_session(const std::optional<std::string>& admin,
                           const std::optional<std::string>& token);

// --------------------------------------------------------------------------------- output

/// Prints `rows` (the first is the header) as aligned columns; columns named in `right` are
/// right-aligned.
inline void print_table(const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right) {
  std::cout << tools::format_table(rows, right);
}

/// 1234 and "USD" -> "12.34 USD".
std::string money(int64_t cents, const std::string& currency);

/// A duration for people: "850ms", "4.2s", "3m05s", "2h07m", "3d04h".
std::string human_duration(int64_t ms);

} // namespace surge::ctl
