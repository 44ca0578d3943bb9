#pragma once

// Activation of a journaled entity (SKU, sale), private to actors/src: its newest snapshot and
// the journal batches after it, read on the storage pools, never on the actor's thread.

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>

#include "surge/actors/env.hpp"
#include "surge/persistence/errors.hpp"

namespace surge::actors::detail {

/// An entity's state as storage holds it: `snap` (default when none) and the batches after it.
template <class Snapshot, class Batch>
struct entity_loaded {
  caf::error err;
  Snapshot snap;
  uint64_t seq = 0;               ///< seq of the last batch applied by `snap` + `batches`
  std::vector<Batch> batches;     ///< after the snapshot, ascending
  std::size_t since_snapshot = 0; ///< events in `batches`
};

/// Reads `stream` for activation and calls `deliver(entity_loaded&&)` once, on a PostgreSQL
/// pool thread: the Redis snapshot when PostgreSQL still has the batch it was taken at (then the
/// journal after it), else PostgreSQL's own snapshot and journal. A gap in the journal or a
/// payload that does not parse is errc::corrupt; storage failures are passed on.
template <class Snapshot, class Batch, class Deliver>
void load_stream(const std::shared_ptr<const entity_env>& env, std::string stream,
                 Deliver deliver) {
  env->redis->submit([env, stream = std::move(stream),
                      deliver = std::move(deliver)](redis_conn* r) mutable {
    std::optional<persistence::snapshot> cached;
    if (r != nullptr) {
      if (auto got = r->snapshots->get(stream); got && *got) {
        cached = std::move(**got);
      }
    }
    env->pg->submit([stream, cached = std::move(cached),
                     deliver = std::move(deliver)](persistence::journal* pg) mutable {
      entity_loaded<Snapshot, Batch> out;
      auto fail = [&](caf::error err) {
        out.err = std::move(err);
        deliver(std::move(out));
      };
      if (pg == nullptr) {
        return fail(persistence::make_error(persistence::errc::unavailable, "no PostgreSQL"));
      }
      std::optional<persistence::snapshot> base;
      std::vector<persistence::journal_batch> rows;
      if (cached && cached->seq > 0) {
        // Trust the cached snapshot only if PostgreSQL has the batch it was taken at.
        auto got = pg->read(stream, cached->seq - 1);
        if (!got) {
          return fail(std::move(got.error()));
        }
        if (!got->empty() && got->front().seq == cached->seq) {
          base = std::move(cached);
          rows.assign(std::make_move_iterator(got->begin() + 1),
                      std::make_move_iterator(got->end()));
        }
      }
      if (!base) {
        auto snap = pg->load_snapshot(stream);
        if (!snap) {
          return fail(std::move(snap.error()));
        }
        base = std::move(*snap);
        auto got = pg->read(stream, base ? base->seq : 0);
        if (!got) {
          return fail(std::move(got.error()));
        }
        rows = std::move(*got);
      }
      uint64_t seq = 0;
      if (base) {
        if (!out.snap.ParseFromString(base->payload)) {
          return fail(persistence::make_error(persistence::errc::corrupt, "snapshot of " + stream));
        }
        seq = base->seq;
      }
      for (auto& row : rows) {
        if (row.seq != seq + 1) {
          return fail(persistence::make_error(persistence::errc::corrupt,
                                              "journal gap in " + stream + " after seq " +
                                                  std::to_string(seq)));
        }
        Batch b;
        if (!b.ParseFromString(row.payload)) {
          return fail(
              persistence::make_error(persistence::errc::corrupt,
                                      "journal row " + std::to_string(row.seq) + " of " + stream));
        }
        out.since_snapshot += static_cast<std::size_t>(b.events_size());
        out.batches.push_back(std::move(b));
        seq = row.seq;
      }
      out.seq = seq;
      deliver(std::move(out));
    });
  });
}

} // namespace surge::actors::detail
