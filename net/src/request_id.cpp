#include "surge/net/request_id.hpp"

#include <openssl/rand.h>

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace surge::net {

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

namespace {

/// Bumped in a child process after fork(), so that it never hands out bytes its parent
/// buffered before the fork.
std::atomic<uint64_t> fork_generation{0};

/// 16 fresh bytes of the CSPRNG: taken from a per-thread batch filled by one RAND_bytes call
/// per `batch` ids (each RAND_bytes call costs a getpid() system call and a DRBG round).
const unsigned char* next_random_16() {
  static constexpr std::size_t batch = 64;
  struct buffer {
    std::array<unsigned char, 16 * batch> bytes{};
    std::size_t used = batch; // empty
    uint64_t generation = 0;
  };
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
  thread_local buffer buf;
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (buf.used == batch || buf.generation != generation) {
    if (RAND_bytes(buf.bytes.data(), static_cast<int>(buf.bytes.size())) != 1) {
      std::fputs("surge: RAND_bytes failed: no randomness for request ids\n", stderr);
      std::abort();
    }
    buf.used = 0;
    buf.generation = generation;
  }
  const unsigned char* out = buf.bytes.data() + 16 * buf.used;
  ++buf.used;
  return out;
}

} // namespace

std::string new_request_id() {
  const unsigned char* bytes = next_random_16();
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    id[2 * i] = hex[bytes[i] >> 4];
    id[2 * i + 1] = hex[bytes[i] & 0xF];
  }
  return id;
}

std::string request_id_for(std::optional<std::string_view> header) {
  if (header && valid_request_id(*header)) {
    return std::string{*header};
  }
  return new_request_id();
}

} // namespace surge::net
