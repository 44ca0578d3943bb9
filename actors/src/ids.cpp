#include "surge/actors/ids.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <pthread.h>
#include <sys/random.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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

} // namespace surge::actors
