#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace surge::net {

/// Request ids (`X-Request-Id`): the id a client or proxy sent is kept when it is 1-128
/// characters of `[A-Za-z0-9._:-]`; otherwise (absent, empty, too long, other characters) the
/// server makes a new one. Standard library and libcrypto only; thread-safe.

/// True when `id` may be taken as a request's id as it is.
bool valid_request_id(std::string_view id);

/// A new id: 32 lowercase hex digits, 128 bits from OpenSSL's CSPRNG (RAND_bytes, drawn per
/// thread in batches of 64 ids; a forked child draws its own). Aborts only when the CSPRNG
/// cannot be seeded (no usable source of randomness: a broken invariant).
std::string new_request_id();

/// The id of a request whose X-Request-Id header is `header` (nullopt: none sent): the header
/// when valid_request_id, else new_request_id().
std::string request_id_for(std::optional<std::string_view> header);

} // namespace surge::net
