#include "surge/actors/ids.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <pthread.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

namespace surge::actors {
namespace {

/// Bumped in every forked child, so that a child's threads refill instead of handing out bytes
/// that its parent also holds.
std::atomic<uint64_t> fork_generation{0};

void on_fork_child() {
  fork_generation.fetch_add(1, std::memory_order_relaxed);
}

/// Fills `out` from getrandom(2), blocking until the kernel's pool is initialised.
void os_random(unsigned char* out, std::size_t n) {
  while (n > 0) {
    ssize_t got = getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::fprintf(stderr, "surge: getrandom failed: %s\n", std::strerror(errno));
      std::abort();
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

/// A per-thread block of OS randomness: one system call per 32 ids instead of one each.
struct random_block {
  static constexpr std::size_t size = 512;
  unsigned char bytes[size];
  std::size_t used = size;
  uint64_t generation = 0;

  void take(unsigned char* out, std::size_t n) {
    static const bool registered = [] {
      return pthread_atfork(nullptr, nullptr, on_fork_child) == 0;
    }();
    (void)registered;
    const uint64_t gen = fork_generation.load(std::memory_order_relaxed);
    if (used + n > size || gen != generation) {
      os_random(bytes, size);
      used = 0;
      generation = gen;
    }
    std::memcpy(out, bytes + used, n);
    // What was handed out is not kept around.
    std::memset(bytes + used, 0, n);
    used += n;
  }
};

void append_hex(std::string& out, const unsigned char* p, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out += hex[p[i] >> 4];
    out += hex[p[i] & 0xF];
  }
}

std::string random_hex(std::string_view prefix, std::size_t bytes) {
  thread_local random_block block;
  unsigned char buf[64];
  block.take(buf, bytes);
  std::string id;
  id.reserve(prefix.size() + 2 * bytes);
  id.append(prefix);
  append_hex(id, buf, bytes);
  return id;
}

constexpr char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `in` as unpadded base64url.
std::string to_b64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += b64url[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) {
    out += b64url[(acc << (6 - bits)) & 0x3F];
  }
  return out;
}

/// Unpadded base64url back to bytes; nullopt on any other character or a dangling length.
std::optional<std::string> from_b64url(std::string_view in) {
  if (in.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* at = std::strchr(b64url, c);
    if (c == '\0' || at == nullptr) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(at - b64url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

/// A non-negative decimal of at most 19 digits, or nullopt.
std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

/// Equal MACs, compared in constant time.
bool same_mac(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// `s` split at each '.', or an empty vector when it has more than `max` parts.
std::vector<std::string_view> split_dots(std::string_view s, std::size_t max) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (parts.size() > max) {
      return {};
    }
    if (dot == std::string_view::npos) {
      return parts;
    }
    start = dot + 1;
  }
}

/// The bytes a pass's MAC covers: every field, NUL-separated (none may hold a NUL: checked).
std::string pass_payload(std::string_view sale, std::string_view customer, std::string_view ticket,
                         uint64_t expires) {
  std::string msg;
  msg.append(sale).append(1, '\0').append(customer).append(1, '\0').append(ticket);
  msg.append(1, '\0').append(std::to_string(expires));
  return msg;
}

constexpr std::size_t max_pass_field = 256;

} // namespace

std::string random_id(std::string_view prefix) {
  return random_hex(prefix, 16);
}

std::string random_secret() {
  return random_hex({}, 32);
}

id_keys::id_keys(std::string secret)
    : secret_(std::move(secret)) {
  if (secret_.empty()) {
    std::fprintf(stderr, "surge: id_keys needs a secret\n");
    std::abort();
  }
}

std::string id_keys::mac_hex(std::string_view domain, std::string_view data,
                             std::size_t bytes) const {
  // Domain separation: a MAC made for one purpose never equals one made for another.
  std::string msg;
  msg.reserve(domain.size() + 1 + data.size());
  msg.append(domain);
  msg += '\0';
  msg.append(data);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len) == nullptr ||
      len < bytes) {
    std::fprintf(stderr, "surge: HMAC-SHA-256 failed\n");
    std::abort();
  }
  std::string out;
  append_hex(out, mac, bytes);
  return out;
}

std::string id_keys::order_id_for(std::string_view idempotency_key) const {
  return "o_" + mac_hex("surge order id v1", idempotency_key, 16);
}

std::string id_keys::fingerprint() const {
  return mac_hex("surge ids.secret fingerprint v1", {}, 32);
}

// A pass: "p1.<b64url sale>.<b64url customer>.<ticket>.<expires ms>.<MAC, 32 hex>".
std::string id_keys::sign_pass(const sale_pass& p) const {
  const auto expires = static_cast<uint64_t>(std::max<int64_t>(p.expires_at_ms, 0));
  std::string out = "p1.";
  out += to_b64url(p.sale_id);
  out += '.';
  out += to_b64url(p.customer_id);
  out += '.';
  out += p.ticket;
  out += '.';
  out += std::to_string(expires);
  out += '.';
  out +=
      mac_hex("surge sale pass v1", pass_payload(p.sale_id, p.customer_id, p.ticket, expires), 16);
  return out;
}

std::optional<sale_pass> id_keys::open_pass(std::string_view token) const {
  if (token.size() > 1024) {
    return std::nullopt;
  }
  auto parts = split_dots(token, 6);
  if (parts.size() != 6 || parts[0] != "p1") {
    return std::nullopt;
  }
  auto sale = from_b64url(parts[1]);
  auto customer = from_b64url(parts[2]);
  auto expires = parse_u64(parts[4]);
  const auto ticket = parts[3];
  if (!sale || !customer || !expires || sale->empty() || customer->empty() ||
      sale->size() > max_pass_field || customer->size() > max_pass_field ||
      ticket.size() > max_pass_field || sale->find('\0') != std::string::npos ||
      customer->find('\0') != std::string::npos ||
      *expires > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::nullopt;
  }
  const auto want =
      mac_hex("surge sale pass v1", pass_payload(*sale, *customer, ticket, *expires), 16);
  if (!same_mac(want, parts[5])) {
    return std::nullopt;
  }
  return sale_pass{std::move(*sale), std::move(*customer), std::string{ticket},
                   static_cast<int64_t>(*expires)};
}

// A ticket: "t<seq>-<MAC of (sale, seq), 16 hex>".
std::string id_keys::ticket_for(std::string_view sale_id, uint64_t seq) const {
  const auto n = std::to_string(seq);
  std::string data{sale_id};
  data += '\0';
  data += n;
  return "t" + n + "-" + mac_hex("surge sale ticket v1", data, 8);
}

std::optional<uint64_t> id_keys::ticket_seq(std::string_view sale_id,
                                            std::string_view ticket) const {
  if (ticket.size() < 3 || ticket.size() > 64 || ticket[0] != 't') {
    return std::nullopt;
  }
  const auto dash = ticket.find('-');
  if (dash == std::string_view::npos) {
    return std::nullopt;
  }
  auto seq = parse_u64(ticket.substr(1, dash - 1));
  if (!seq) {
    return std::nullopt;
  }
  const auto want = ticket_for(sale_id, *seq);
  if (!same_mac(want, ticket)) {
    return std::nullopt;
  }
  return seq;
}

} // namespace surge::actors
