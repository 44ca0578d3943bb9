// surgectl token: mints a development customer token (HS256 JWT, net/customer_auth.hpp) from the
// node's auth.jwt_secret, for `Authorization: Bearer` in local runs, scripts and tests.

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "surge/net/customer_auth.hpp"
#include "surgectl.hpp"

namespace surge::ctl {

namespace {

constexpr const char* token_usage_text =
    R"(usage: surgectl token --customer=ID [--ttl=1h] [--issuer=ISS] [--audience=AUD]
                      [--secret-file=FILE]

prints a development customer token (an HS256 JWT) on stdout, for
'Authorization: Bearer <token>' on the storefront API of a node whose auth.jwt_secret is the
same secret. The token says sub=ID, iat=now, exp=now+TTL, and iss/aud when given.

  --customer=ID          the customer id (1 to 255 bytes of UTF-8, no control characters)
  --ttl=DURATION         lifetime, e.g. 90s, 30m, 1h (default), 24h; at least 1s
  --issuer=ISS           "iss" (needed when the node sets auth.jwt_issuer)
  --audience=AUD         "aud" (needed when the node sets auth.jwt_audience)
  --secret-file=FILE     the secret; trailing line breaks are ignored. Without it:
                         $SURGE_AUTH_JWT_SECRET, else the file data/jwt.secret in the current
                         directory (scripts/run.sh writes it). At least 32 bytes. Never printed.

exit status: 0 printed; 1 no usable secret; 2 usage error
)";

/// The secret file scripts/run.sh writes, relative to the current directory.
constexpr const char* default_secret_file = "data/jwt.secret";
/// A secret file larger than this is not a secret file.
constexpr std::size_t max_secret_file_bytes = 64 * 1024;

cli_error usage(const std::string& message) {
  return cli_error(exit_usage, message);
}

/// The secret and where it came from (for messages; the secret itself is never printed).
struct secret_source {
  std::string secret;
  std::string origin;
};

/// The content of `path` without trailing line breaks (as `$(cat FILE)` gives it to the node).
/// Throws cli_error(exit_server_error) when it cannot be read or is empty.
std::string read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw cli_error(exit_server_error,
                    "cannot read the secret file " + path + ": " + std::strerror(errno));
  }
  std::string s(max_secret_file_bytes + 1, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  if (in.bad()) {
    throw cli_error(exit_server_error, "cannot read the secret file " + path);
  }
  s.resize(static_cast<std::size_t>(in.gcount()));
  if (s.size() > max_secret_file_bytes) {
    throw cli_error(exit_server_error, "the secret file " + path + " is larger than 64 KiB");
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  if (s.empty()) {
    throw cli_error(exit_server_error, "the secret file " + path + " is empty");
  }
  return s;
}

/// --secret-file, else $SURGE_AUTH_JWT_SECRET, else ./data/jwt.secret when it exists.
/// Throws cli_error(exit_server_error) when there is none.
secret_source find_secret(const std::string& secret_file) {
  if (!secret_file.empty()) {
    return {read_secret_file(secret_file), secret_file};
  }
  if (const char* env = std::getenv("SURGE_AUTH_JWT_SECRET"); env != nullptr && *env != '\0') {
    return {env, "SURGE_AUTH_JWT_SECRET"};
  }
  if (std::ifstream probe(default_secret_file); probe) {
    return {read_secret_file(default_secret_file), default_secret_file};
  }
  throw cli_error(exit_server_error,
                  "no secret to sign with: pass --secret-file=FILE, set SURGE_AUTH_JWT_SECRET "
                  "(the node's auth.jwt_secret), or run where data/jwt.secret is (scripts/run.sh "
                  "writes it)");
}

} // namespace

int cmd_token(const std::vector<std::string>& args) {
  auto parsed =
      parse_own_flags(args, "token", {"customer", "ttl", "issuer", "audience", "secret-file"});
  auto& flags = parsed.values;
  const auto& words = parsed.words;
  const bool help = parsed.help;
  if (help) {
    std::cout << token_usage_text;
    return exit_ok;
  }
  if (words.size() != 1 || words[0] != "token") {
    throw usage("too many arguments: surgectl token --customer=ID [flags]");
  }
  if (flags.count("customer") == 0) {
    throw usage("token needs --customer=ID");
  }
  net::token_claims claims;
  claims.subject = flags["customer"];
  if (auto problem = net::customer_id_problem(claims.subject); !problem.empty()) {
    throw usage("--customer: the customer id " + problem);
  }
  if (flags.count("ttl") != 0) {
    const auto ttl = parse_duration("--ttl", flags["ttl"]);
    if (ttl < std::chrono::seconds{1}) {
      throw usage("--ttl must be at least 1s, got '" + flags["ttl"] + "'");
    }
    claims.ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
  }
  claims.issuer = flags["issuer"];
  claims.audience = flags["audience"];

  const auto source = find_secret(flags["secret-file"]);
  auto minted = net::mint_hs256_token(source.secret, claims, std::chrono::system_clock::now());
  if (auto* e = std::get_if<net::auth_error>(&minted)) {
    // The secret's length may be named, never the secret.
    throw cli_error(exit_server_error, e->message + " (secret from " + source.origin + ")");
  }
  std::cout << std::get<std::string>(minted) << "\n";
  return exit_ok;
}

} // namespace surge::ctl
