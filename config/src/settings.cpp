#include "surge/config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <unistd.h>

extern char** environ;

namespace surge::config {

namespace {

using std::chrono::milliseconds;

// -- the table -----------------------------------------------------------------------------------

enum class kind { string, integer, port, duration, boolean, enumeration, fraction };

/// A parsed value; which alternative is held follows from the setting's kind.
using value = std::variant<std::string, int64_t, milliseconds, bool, double>;

using setter = std::function<void(node_options&, const value&)>;

/// One setting. `lo`/`hi` bound integers (and ports); `dlo`/`dhi` bound durations.
struct setting_def {
  std::string name;
  kind type = kind::string;
  std::string default_text; ///< parsed like any other source; node.id's is computed at load
  std::string help;
  int64_t lo = 0;
  int64_t hi = 0;
  milliseconds dlo{0};
  milliseconds dhi{0};
  std::vector<std::string> choices; ///< for kind::enumeration
  bool allow_empty = true;          ///< for kind::string
  setter store;
};

/// Stores a parsed value into `member`, converting to the member's type. The table's bounds
/// guarantee the conversion is lossless.
template <class T>
setter into(T node_options::*member) {
  return [member](node_options& opts, const value& v) {
    if constexpr (std::is_same_v<T, bool>) {
      opts.*member = std::get<bool>(v);
    } else if constexpr (std::is_same_v<T, double>) {
      opts.*member = std::get<double>(v);
    } else if constexpr (std::is_integral_v<T>) {
      opts.*member = static_cast<T>(std::get<int64_t>(v));
    } else if constexpr (std::is_same_v<T, milliseconds>) {
      opts.*member = std::get<milliseconds>(v);
    } else {
      opts.*member = std::get<std::string>(v);
    }
  };
}

/// The fields every kind shares; the factories below fill in the rest.
setting_def base(std::string name, kind type, std::string def, std::string help, setter store) {
  setting_def s;
  s.name = std::move(name);
  s.type = type;
  s.default_text = std::move(def);
  s.help = std::move(help);
  s.store = std::move(store);
  return s;
}

template <class T>
setting_def text_setting(std::string name, std::string def, std::string help,
                         T node_options::*member, bool allow_empty) {
  auto s = base(std::move(name), kind::string, std::move(def), std::move(help), into(member));
  s.allow_empty = allow_empty;
  return s;
}

template <class T>
setting_def int_setting(std::string name, int64_t lo, int64_t hi, std::string def, std::string help,
                        T node_options::*member) {
  auto s = base(std::move(name), kind::integer, std::move(def), std::move(help), into(member));
  s.lo = lo;
  s.hi = hi;
  return s;
}

setting_def port_setting(std::string name, std::string def, std::string help,
                         uint16_t node_options::*member) {
  auto s = base(std::move(name), kind::port, std::move(def), std::move(help), into(member));
  s.lo = 1;
  s.hi = 65535;
  return s;
}

setting_def bool_setting(std::string name, std::string def, std::string help,
                         bool node_options::*member) {
  return base(std::move(name), kind::boolean, std::move(def), std::move(help), into(member));
}

setting_def duration_setting(std::string name, milliseconds lo, milliseconds hi, std::string def,
                             std::string help, milliseconds node_options::*member) {
  auto s = base(std::move(name), kind::duration, std::move(def), std::move(help), into(member));
  s.dlo = lo;
  s.dhi = hi;
  return s;
}

setting_def enum_setting(std::string name, std::vector<std::string> choices, std::string def,
                         std::string help, std::string node_options::*member) {
  auto s = base(std::move(name), kind::enumeration, std::move(def), std::move(help), into(member));
  s.choices = std::move(choices);
  return s;
}

setting_def fraction_setting(std::string name, std::string def, std::string help,
                             double node_options::*member) {
  return base(std::move(name), kind::fraction, std::move(def), std::move(help), into(member));
}

constexpr milliseconds ms(int64_t n) {
  return milliseconds{n};
}
constexpr milliseconds secs(int64_t n) {
  return milliseconds{n * 1000};
}
constexpr milliseconds days(int64_t n) {
  return secs(n * 86400);
}

/// Every setting of surge-node, in --help order: one row per entry of settings.def. Nothing else
/// in this file names a setting except node.id's computed default and the rules in validate().
const std::vector<setting_def>& settings_table() {
// The .def's macros, here calling the factories above; SURGE_CHOICES unwraps "(a, b)" to "a, b".
#define SURGE_CHOICES(...) __VA_ARGS__
#define SURGE_TEXT(member, name, allow_empty, def, help)                                           \
  text_setting(name, def, help, &node_options::member, allow_empty),
#define SURGE_INTEGER(member, type, name, lo, hi, def, help)                                       \
  int_setting(name, lo, hi, def, help, &node_options::member),
#define SURGE_PORT(member, name, def, help) port_setting(name, def, help, &node_options::member),
#define SURGE_DURATION(member, name, lo, hi, def, help)                                            \
  duration_setting(name, lo, hi, def, help, &node_options::member),
#define SURGE_BOOLEAN(member, name, def, help) bool_setting(name, def, help, &node_options::member),
#define SURGE_ENUMERATION(member, name, choices, def, help)                                        \
  enum_setting(name, {SURGE_CHOICES choices}, def, help, &node_options::member),
#define SURGE_FRACTION(member, name, def, help)                                                    \
  fraction_setting(name, def, help, &node_options::member),
  static const std::vector<setting_def> table = {
#include "surge/config/settings.def"
  };
#undef SURGE_CHOICES
  return table;
}

const setting_def* find_setting(std::string_view name) {
  for (const auto& s : settings_table()) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

/// "http.port" -> "SURGE_HTTP_PORT".
std::string env_name(std::string_view name) {
  std::string out = "SURGE_";
  for (char c : name) {
    out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

/// Best guess at the setting an unknown SURGE_ variable meant: "SURGE_HTTP_PROT" -> "http.prot".
std::string guess_name(std::string_view var) {
  std::string out;
  bool dotted = false;
  for (char c : var.substr(6)) {
    if (c == '_' && !dotted) {
      out += '.';
      dotted = true;
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

// -- values --------------------------------------------------------------------------------------

/// Parses a whole string as a decimal int64 (optional leading '-'); nothing else is accepted.
std::optional<int64_t> parse_int(std::string_view text) {
  int64_t v = 0;
  if (text.empty() || text.front() == '+') {
    return std::nullopt;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return v;
}

/// Parses a whole string as a plain decimal number in 0..1 ("0", "1", "0.25", ".5"); no sign,
/// exponent, inf or nan.
std::optional<double> parse_fraction(std::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789.") != std::string_view::npos) {
    return std::nullopt;
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || !(v >= 0.0 && v <= 1.0)) {
    return std::nullopt;
  }
  return v;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") {
    return true;
  }
  if (text == "false" || text == "0" || text == "no" || text == "off") {
    return false;
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) {
      out += sep;
    }
    out += p;
  }
  return out;
}

/// What a value of this setting must look like, for error messages and --help.
std::string expectation(const setting_def& s) {
  switch (s.type) {
  case kind::string:
    return s.allow_empty ? "a string" : "a non-empty string";
  case kind::integer:
  case kind::port:
    return "an integer in " + std::to_string(s.lo) + ".." + std::to_string(s.hi);
  case kind::duration:
    return "a duration (e.g. 250ms, 30s, 10m, 1h, 2d) in " + format_duration(s.dlo) + ".." +
           format_duration(s.dhi);
  case kind::boolean:
    return "true or false";
  case kind::enumeration:
    return "one of " + join(s.choices, "|");
  case kind::fraction:
    return "a number in 0..1 (e.g. 0.25)";
  }
  return "a value";
}

/// Parses `text` for setting `s`; nullopt if it is ill-typed or out of bounds.
std::optional<value> parse_value(const setting_def& s, const std::string& text) {
  switch (s.type) {
  case kind::string:
    if (!s.allow_empty && text.empty()) {
      return std::nullopt;
    }
    return value{text};
  case kind::integer:
  case kind::port: {
    auto v = parse_int(text);
    if (!v || *v < s.lo || *v > s.hi) {
      return std::nullopt;
    }
    return value{*v};
  }
  case kind::duration: {
    milliseconds d{0};
    if (!parse_duration(text, d) || d < s.dlo || d > s.dhi) {
      return std::nullopt;
    }
    return value{d};
  }
  case kind::boolean: {
    auto b = parse_bool(text);
    if (!b) {
      return std::nullopt;
    }
    return value{*b};
  }
  case kind::enumeration:
    if (std::find(s.choices.begin(), s.choices.end(), text) == s.choices.end()) {
      return std::nullopt;
    }
    return value{text};
  case kind::fraction: {
    auto f = parse_fraction(text);
    if (!f) {
      return std::nullopt;
    }
    return value{*f};
  }
  }
  return std::nullopt;
}

// -- sources -------------------------------------------------------------------------------------

/// One `name = value` from some source; `origin` is "command line", "environment SURGE_X" or
/// "file PATH:LINE".
struct assignment {
  std::string name;
  std::string text;
  std::string origin;
};

load_error unknown_setting(const std::string& name, const std::string& origin) {
  return load_error{"unknown setting '" + name + "' (" + origin + ")"};
}

/// Applies `a` to `opts`; on failure returns the error naming the setting and its origin.
std::optional<load_error> apply(const assignment& a, node_options& opts,
                                std::map<std::string, std::string>& origins) {
  const setting_def* s = find_setting(a.name);
  if (s == nullptr) {
    return unknown_setting(a.name, a.origin);
  }
  auto v = parse_value(*s, a.text);
  if (!v) {
    return load_error{"setting '" + a.name + "' (" + a.origin + "): expected " + expectation(*s) +
                      ", got '" + a.text + "'"};
  }
  s->store(opts, *v);
  origins[a.name] = a.origin;
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) {
    return {};
  }
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

/// Splits a file value into its text, dropping a trailing comment (a '#' or ';' preceded by
/// whitespace, outside quotes) and surrounding double quotes (inside which \" and \\ escape).
/// Returns nullopt for an unterminated quote or text after the closing quote.
std::optional<std::string> file_value(std::string_view raw) {
  raw = trim(raw);
  if (!raw.empty() && raw.front() == '"') {
    std::string out;
    size_t i = 1;
    for (; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\\' && i + 1 < raw.size() && (raw[i + 1] == '"' || raw[i + 1] == '\\')) {
        out += raw[++i];
      } else if (c == '"') {
        break;
      } else {
        out += c;
      }
    }
    if (i >= raw.size()) {
      return std::nullopt;
    }
    auto rest = trim(raw.substr(i + 1));
    if (!rest.empty() && rest.front() != '#' && rest.front() != ';') {
      return std::nullopt;
    }
    return out;
  }
  for (size_t i = 1; i < raw.size(); ++i) {
    if ((raw[i] == '#' || raw[i] == ';') && (raw[i - 1] == ' ' || raw[i - 1] == '\t')) {
      raw = trim(raw.substr(0, i));
      break;
    }
  }
  if (!raw.empty() && (raw.front() == '#' || raw.front() == ';')) {
    return std::string{};
  }
  return std::string{raw};
}

/// Reads the config file into `out`; returns an error naming the file (and line) on failure.
std::optional<load_error> read_file(const std::string& path, std::vector<assignment>& out) {
  std::ifstream in(path);
  if (!in) {
    return load_error{"cannot read config file '" + path + "'"};
  }
  std::string line;
  std::string group;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string origin = "file " + path + ":" + std::to_string(line_no);
    auto text = trim(line);
    if (text.empty() || text.front() == '#' || text.front() == ';') {
      continue;
    }
    if (text.front() == '[') {
      auto close = text.find(']');
      auto rest =
          close == std::string_view::npos ? std::string_view{} : trim(text.substr(close + 1));
      auto name =
          close == std::string_view::npos ? std::string_view{} : trim(text.substr(1, close - 1));
      if (name.empty() || (!rest.empty() && rest.front() != '#' && rest.front() != ';')) {
        return load_error{"malformed group header '" + std::string{text} + "' (" + origin + ")"};
      }
      group = std::string{name};
      continue;
    }
    auto eq = text.find('=');
    if (eq == std::string_view::npos) {
      return load_error{"expected 'name = value', got '" + std::string{text} + "' (" + origin +
                        ")"};
    }
    auto key = std::string{trim(text.substr(0, eq))};
    if (key.empty()) {
      return load_error{"missing setting name before '=' (" + origin + ")"};
    }
    std::string name = group.empty() ? key : group + "." + key;
    auto v = file_value(text.substr(eq + 1));
    if (!v) {
      return load_error{"setting '" + name + "' (" + origin +
                        "): unterminated or malformed quoted value"};
    }
    out.push_back({std::move(name), std::move(*v), std::move(origin)});
  }
  if (in.bad()) {
    return load_error{"cannot read config file '" + path + "'"};
  }
  return std::nullopt;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// Collects SURGE_* variables naming settings; errors on one naming none.
std::optional<load_error> read_env(const environment& env,
                                   const std::vector<std::string>& ignored_prefixes,
                                   std::vector<assignment>& out) {
  std::map<std::string, const setting_def*> by_env;
  for (const auto& s : settings_table()) {
    by_env[env_name(s.name)] = &s;
  }
  for (const auto& [var, text] : env) {
    if (!starts_with(var, "SURGE_") || var == "SURGE_CONFIG" || starts_with(var, "SURGE_TEST_")) {
      continue;
    }
    bool ignored = std::any_of(ignored_prefixes.begin(), ignored_prefixes.end(),
                               [&](const std::string& p) { return starts_with(var, p); });
    if (ignored) {
      continue;
    }
    auto it = by_env.find(var);
    if (it == by_env.end()) {
      return unknown_setting(guess_name(var), "environment " + var);
    }
    out.push_back({it->second->name, text, "environment " + var});
  }
  return std::nullopt;
}

/// Parses the command line into `inv`'s flags and `out`'s settings.
std::optional<load_error> read_args(const std::vector<std::string>& args, invocation& inv,
                                    std::vector<assignment>& out) {
  const std::string origin = "command line";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      inv.help = true;
      continue;
    }
    if (arg == "--version") {
      inv.version = true;
      continue;
    }
    if (arg == "--migrate-only") {
      inv.migrate_only = true;
      continue;
    }
    if (!starts_with(arg, "--") || arg.size() == 2) {
      return load_error{"unexpected argument '" + arg + "' (command line): settings are written " +
                        "--name=value; see --help"};
    }
    auto eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::optional<std::string> text;
    if (eq != std::string::npos) {
      text = arg.substr(eq + 1);
    }
    if (name == "config") {
      if (!text) {
        if (i + 1 >= args.size()) {
          return load_error{"option '--config' (command line): missing file name"};
        }
        text = args[++i];
      }
      if (text->empty()) {
        return load_error{"option '--config' (command line): empty file name"};
      }
      inv.config_file = *text;
      continue;
    }
    if (name == "help" || name == "version" || name == "migrate-only") {
      return load_error{"flag '--" + name + "' (command line) takes no value"};
    }
    const setting_def* s = find_setting(name);
    if (s == nullptr) {
      return unknown_setting(name, origin);
    }
    if (!text) {
      bool next_is_value = i + 1 < args.size() && !starts_with(args[i + 1], "-");
      if (s->type == kind::boolean && !next_is_value) {
        text = "true";
      } else if (i + 1 >= args.size()) {
        return load_error{"setting '" + name + "' (command line): missing value"};
      } else {
        text = args[++i];
      }
    }
    out.push_back({std::move(name), std::move(*text), origin});
  }
  return std::nullopt;
}

std::string computed_node_id() {
  char host[256] = {};
  std::string name = "surge";
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') {
    name = host;
  }
  return name + "-" + std::to_string(static_cast<long long>(getpid()));
}

/// The first entry of the comma list `list` that is not an origin, or nullopt. An origin is
/// "http://" or "https://" (`any_scheme`: any RFC 3986 scheme, or the entry "*") and a host with
/// an optional port, nothing more (no path, query, fragment or user info).
std::optional<std::string> bad_origin(std::string_view list, bool any_scheme) {
  for (std::string_view rest = list; !rest.empty();) {
    const auto comma = rest.find(',');
    const auto entry = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (entry.empty() || (any_scheme && entry == "*")) {
      continue;
    }
    std::string lower;
    for (char c : entry) {
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string_view host = lower;
    if (any_scheme) {
      const auto sep = host.find("://");
      const auto scheme = host.substr(0, sep);
      const bool scheme_ok = sep != std::string_view::npos && !scheme.empty() &&
                             std::isalpha(scheme[0]) != 0 &&
                             scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-.") ==
                                 std::string_view::npos;
      host.remove_prefix(scheme_ok ? sep + 3 : 0);
    } else {
      for (std::string_view scheme : {"https://", "http://"}) {
        if (starts_with(host, scheme)) {
          host.remove_prefix(scheme.size());
          break;
        }
      }
    }
    if (host.size() == lower.size() || host.empty() ||
        host.find_first_of("/?#@ \t") != std::string_view::npos) {
      return std::string{entry};
    }
    // any_scheme (a newer rule): a port is digits, and there is a host before it.
    if (const auto colon = host.rfind(':');
        any_scheme && colon != std::string_view::npos && host.back() != ']' &&
        (colon == 0 || colon + 1 == host.size() ||
         host.substr(colon + 1).find_first_not_of("0123456789") != std::string_view::npos)) {
      return std::string{entry};
    }
  }
  return std::nullopt;
}

/// Rules spanning several settings.
std::optional<load_error> validate(const node_options& opts,
                                   const std::map<std::string, std::string>& origins) {
  if (!is_loopback(opts.admin_host) && opts.admin_token.empty()) {
    auto it = origins.find("admin.host");
    std::string where = it == origins.end() ? "default" : it->second;
    return load_error{"setting 'admin.token' is required when admin.host ('" + opts.admin_host +
                      "', " + where + ") is not a loopback address"};
  }
  // The cluster port authenticates nobody without mutual TLS: off loopback it needs cluster.tls,
  // or the operator's explicit cluster.insecure. An empty host binds every address.
  if (!is_loopback(opts.cluster_host) && !opts.cluster_tls && !opts.cluster_insecure) {
    auto it = origins.find("cluster.host");
    std::string where = it == origins.end() ? "default" : it->second;
    return load_error{"setting 'cluster.host' ('" + opts.cluster_host + "', " + where +
                      ") is not a loopback address: any host that reaches the cluster port could "
                      "act as a member. Set 'cluster.tls=true' (mutual TLS with cluster.tls_cert, "
                      "cluster.tls_key and cluster.tls_ca) or, to accept that, "
                      "'cluster.insecure=true'"};
  }
  // Each admin.allowed_origins entry is an exact origin: http(s)://host[:port], nothing more.
  if (auto bad = bad_origin(opts.admin_allowed_origins, false)) {
    return load_error{"setting 'admin.allowed_origins': '" + *bad +
                      "' is not an origin (http://host[:port] or https://host[:port], no path)"};
  }
  // Each http.cors_origins entry is an origin of any scheme, or "*".
  if (auto bad = bad_origin(opts.http_cors_origins, true)) {
    return load_error{"setting 'http.cors_origins': '" + *bad +
                      "' is not an origin (scheme://host[:port], no path) nor '*'"};
  }
  if (!opts.payments_return_url.empty() && !starts_with(opts.payments_return_url, "http://") &&
      !starts_with(opts.payments_return_url, "https://")) {
    return load_error{"setting 'payments.return_url': not an http:// or https:// URL"};
  }
  if (opts.auth_dev_login && opts.auth_jwt_secret.empty()) {
    return load_error{"setting 'auth.dev_login' is on but 'auth.jwt_secret' is empty: dev sign-in "
                      "signs its tokens with auth.jwt_secret"};
  }
  // Each pg.read_urls entry is a libpq URI (the replicas' connection strings); empty entries
  // are left out, as the node does.
  for (std::string_view rest = opts.pg_read_urls; !rest.empty();) {
    const auto comma = rest.find(',');
    const auto entry = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (entry.empty()) {
      continue;
    }
    if (!starts_with(entry, "postgresql://") && !starts_with(entry, "postgres://")) {
      return load_error{"setting 'pg.read_urls': '" + std::string{entry} +
                        "' is not a PostgreSQL URL (postgresql://... or postgres://...)"};
    }
  }
  if (opts.cluster_lease < 3 * opts.cluster_heartbeat) {
    return load_error{"setting 'cluster.lease' must be at least three times cluster.heartbeat ('" +
                      std::to_string(opts.cluster_heartbeat.count()) +
                      "ms'), so that a member "
                      "renews its lease before it runs out"};
  }
  if (opts.cluster_tls) {
    for (const auto& [name, value] : {std::pair{"cluster.tls_cert", &opts.cluster_tls_cert},
                                      std::pair{"cluster.tls_key", &opts.cluster_tls_key},
                                      std::pair{"cluster.tls_ca", &opts.cluster_tls_ca}}) {
      if (value->empty()) {
        return load_error{std::string{"setting '"} + name + "' is required when cluster.tls is on"};
      }
    }
  }
  // Peers reach this node at cluster.advertise, or at cluster.host when it is empty: a wildcard
  // bind address (every interface) names no interface they could reach.
  if (!opts.cluster_advertise.empty()) {
    if (!parse_advertise(opts.cluster_advertise)) {
      return load_error{"setting 'cluster.advertise' ('" + opts.cluster_advertise +
                        "') is not host, host:port, [v6] or [v6]:port (port 1..65535) of an "
                        "address other members can reach (not 0.0.0.0 or ::)"};
    }
  } else if (is_wildcard(opts.cluster_host)) {
    auto it = origins.find("cluster.host");
    std::string where = it == origins.end() ? "default" : it->second;
    return load_error{"setting 'cluster.host' ('" + opts.cluster_host + "', " + where +
                      ") listens on every address, which other members cannot reach: set "
                      "'cluster.advertise' to the address they reach this node at (e.g. the pod "
                      "IP)"};
  }
  return std::nullopt;
}

std::variant<invocation, load_error> load_impl(const std::vector<std::string>& args,
                                               const environment& env,
                                               const std::vector<std::string>& ignored_prefixes) {
  invocation inv;
  std::vector<assignment> cli;
  if (auto err = read_args(args, inv, cli)) {
    return *err;
  }
  std::map<std::string, std::string> origins;
  for (const auto& s : settings_table()) {
    std::string def = s.name == "node.id" ? computed_node_id() : s.default_text;
    if (auto err = apply({s.name, def, "default"}, inv.options, origins)) {
      return *err;
    }
  }
  origins.clear();
  if (inv.help || inv.version) {
    return inv;
  }
  std::vector<assignment> file;
  if (inv.config_file.empty()) {
    if (auto it = env.find("SURGE_CONFIG"); it != env.end() && !it->second.empty()) {
      inv.config_file = it->second;
    }
  }
  if (!inv.config_file.empty()) {
    if (auto err = read_file(inv.config_file, file)) {
      return *err;
    }
  }
  std::vector<assignment> from_env;
  if (auto err = read_env(env, ignored_prefixes, from_env)) {
    return *err;
  }
  for (const auto* source : {&file, &from_env, &cli}) {
    for (const auto& a : *source) {
      if (auto err = apply(a, inv.options, origins)) {
        return *err;
      }
    }
  }
  if (auto err = validate(inv.options, origins)) {
    return *err;
  }
  return inv;
}

} // namespace

std::variant<invocation, load_error> load(const std::vector<std::string>& args,
                                          const environment& env) {
  return load(args, env, {});
}

std::variant<invocation, load_error> load(const std::vector<std::string>& args,
                                          const environment& env,
                                          const std::vector<std::string>& ignored_env_prefixes) {
  try {
    return load_impl(args, env, ignored_env_prefixes);
  } catch (const std::exception& e) {
    return load_error{std::string{"cannot load settings: "} + e.what()};
  } catch (...) {
    return load_error{"cannot load settings: unknown error"};
  }
}

node_options defaults() {
  auto loaded = load({}, {});
  if (auto* err = std::get_if<load_error>(&loaded)) {
    // The table's own defaults break a rule of validate(): a bug that settings_test catches.
    throw std::logic_error{"the settings' defaults do not load: " + err->message};
  }
  return std::get<invocation>(std::move(loaded)).options;
}

environment process_environment() {
  environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry{*e};
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    env.emplace(std::string{entry.substr(0, eq)}, std::string{entry.substr(eq + 1)});
  }
  return env;
}

std::string help_text(const std::string& program) {
  std::ostringstream out;
  out << "Usage: " << program << " [flags] [--name=value | --name value]...\n\n"
      << "Flags:\n"
      << "  -h, --help        print this text and exit\n"
      << "  --version         print the version and exit\n"
      << "  --migrate-only    apply the database schema migrations and exit\n"
      << "  --config=FILE     read settings from FILE ('name = value' lines or [group] sections;\n"
      << "                    '#'/';' comments); SURGE_CONFIG names it when --config is absent\n\n"
      << "Settings (command line beats environment beats file beats default):\n";
  for (const auto& s : settings_table()) {
    std::string def = s.name == "node.id"      ? "hostname-pid"
                      : s.default_text.empty() ? "(empty)"
                                               : s.default_text;
    out << "  --" << s.name << "=VALUE   (default " << def << "; env " << env_name(s.name) << ")\n"
        << "      " << s.help << "; " << expectation(s) << "\n";
  }
  return out.str();
}

bool parse_duration(const std::string& text, milliseconds& out) {
  std::string_view t{text};
  size_t digits = 0;
  while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') {
    ++digits;
  }
  if (digits == 0) {
    return false;
  }
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + digits, n);
  if (ec != std::errc{} || end != t.data() + digits) {
    return false;
  }
  auto unit = t.substr(digits);
  uint64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return false;
  }
  constexpr auto max = static_cast<uint64_t>(std::numeric_limits<milliseconds::rep>::max());
  if (n > max / scale) {
    return false;
  }
  out = milliseconds{static_cast<milliseconds::rep>(n * scale)};
  return true;
}

std::optional<milliseconds> parse_cli_duration(const std::string& text) {
  std::string t = text;
  double unit_ms = 1000;
  if (t.size() > 2 && t.compare(t.size() - 2, 2, "ms") == 0) {
    unit_ms = 1;
    t.resize(t.size() - 2);
  } else if (!t.empty() && t.back() == 's') {
    t.pop_back();
  } else if (!t.empty() && t.back() == 'm') {
    unit_ms = 60000;
    t.pop_back();
  } else if (!t.empty() && t.back() == 'h') {
    unit_ms = 3600000;
    t.pop_back();
  }
  char* end = nullptr;
  const double x = t.empty() ? -1 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || !(x >= 0) || x * unit_ms > 365 * 86400e3) {
    return std::nullopt;
  }
  return milliseconds{std::llround(x * unit_ms)};
}

std::string format_duration(milliseconds d) {
  auto n = d.count();
  if (n != 0) {
    if (n % 86'400'000 == 0) {
      return std::to_string(n / 86'400'000) + "d";
    }
    if (n % 3'600'000 == 0) {
      return std::to_string(n / 3'600'000) + "h";
    }
    if (n % 60'000 == 0) {
      return std::to_string(n / 60'000) + "m";
    }
    if (n % 1000 == 0) {
      return std::to_string(n / 1000) + "s";
    }
  }
  return std::to_string(n) + "ms";
}

bool is_wildcard(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

std::optional<advertised> parse_advertise(std::string_view text) {
  advertised out;
  std::string_view host = text;
  std::string_view port;
  bool v6 = false;
  if (starts_with(text, "[")) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.size() < 2 || rest[0] != ':') {
        return std::nullopt;
      }
      port = rest.substr(1);
    }
    v6 = true;
  } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    if (text.find(':', colon + 1) != std::string_view::npos) {
      v6 = true; // a bare IPv6 address: no port
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) {
        return std::nullopt;
      }
    }
  }
  const std::string_view allowed =
      v6 ? "0123456789abcdefABCDEF:."
         : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
  if (host.empty() || host.find_first_not_of(allowed) != std::string_view::npos ||
      is_wildcard(host) || (v6 && host.find_first_not_of(":0") == std::string_view::npos)) {
    return std::nullopt;
  }
  if (!port.empty()) {
    auto n = parse_int(port);
    if (!n || *n < 1 || *n > 65535 ||
        port.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(*n);
  }
  out.host = std::string{host};
  return out;
}

bool is_loopback(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") {
    return true;
  }
  if (!starts_with(host, "127.")) {
    return false;
  }
  int parts = 0;
  std::string_view rest = host;
  while (true) {
    auto dot = rest.find('.');
    auto part = rest.substr(0, dot);
    auto n = parse_int(part);
    if (!n || *n < 0 || *n > 255 || part.size() > 3) {
      return false;
    }
    ++parts;
    if (dot == std::string_view::npos) {
      break;
    }
    rest = rest.substr(dot + 1);
  }
  return parts == 4;
}

} // namespace surge::config
