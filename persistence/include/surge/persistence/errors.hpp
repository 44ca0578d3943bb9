#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace surge::persistence {

/// Errors of the storage adapters. libpqxx exceptions and hiredis null replies are translated
/// into these at the adapter's edge; nothing above persistence/ sees a storage exception.
enum class errc : uint8_t {
  /// The server could not be reached or the connection broke; the operation may be retried.
  /// A commit that fails this way may or may not have been applied (see journal::commit).
  unavailable = 1,
  /// A (stream, seq) that is already in the journal: another writer got there first.
  conflict,
  /// Stored bytes that cannot be decoded.
  corrupt,
  /// A precondition on the caller's side (bad argument).
  invalid,
  /// A commit for a shard whose lease epoch is no longer the committer's: another node owns the
  /// shard now (G4). Nothing of the transaction was applied.
  fenced,
};

/// Category atom of persistence errors (at most 10 characters, as every CAF atom).
constexpr caf::atom_value error_category = caf::atom("persist");

const char* to_string(errc x);

/// The CAF category of persistence errors. Every error-code enumeration of Surge declares its
/// `category_of` beside it; make_error() and is() below serve them all (found by ADL, and
/// brought into other layers' namespaces with using-declarations).
constexpr caf::atom_value category_of(errc) {
  return error_category;
}

/// Builds a CAF error of `code`'s category carrying the human message `what`; found by ADL for
/// `make_error(errc::...)`.
template <class E>
requires requires(E e) {
  category_of(e);
}
caf::error make_error(E code, std::string what = {}) {
  return caf::error{static_cast<uint8_t>(code), category_of(code),
                    caf::make_message(std::move(what))};
}

/// True when `err` is the error `code` of `code`'s category.
template <class E>
requires requires(E e) {
  category_of(e);
}
bool is(const caf::error& err, E code) {
  return err.category() == category_of(code) && err.code() == static_cast<uint8_t>(code);
}

} // namespace surge::persistence
