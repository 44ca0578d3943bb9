#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "surge/actors/directory.hpp"
#include "surge/actors/env.hpp"
#include "surge/actors/messages.hpp"

namespace surge::actors {

/// The SKU actor `sku:<sku>`: the single writer of one SKU's stock (see sku_model).
///
///   (hold_atom, hold_request)          -> hold_view    set the cart's hold to exactly qty
///   (confirm_atom, hold_id, order_id, cart_id, qty)
///                                      -> stock_view   held -> sold, when the hold is still
///                                                      what the order bought (else conflict)
///   (return_atom, hold_id, order_id)   -> stock_view   sold -> available (order cancelled)
///   (stock_atom, stock_change)         -> stock_view   set/add on_hand
///   (stock_atom)                       -> stock_view
///   (product_atom, product_record)     -> product_view create/update catalog data
///   (product_atom)                     -> product_view
///
/// Contract: a command is decided against the in-memory state, applied, and appended to the
/// current journal batch; the reply is sent only after that batch is committed to PostgreSQL
/// (group commit: one batch in flight, the next one filling). Errors (errc): not_found,
/// sold_out, limit_exceeded, currency_mismatch, login_required, conflict, invalid, and for a
/// hold that grows on a SKU in a sale (entity_env::sales, read at each such hold)
/// sale_not_started, sale_ended and queue_required, are answered at once and journal nothing;
/// unavailable means the commit failed, nothing of it was acknowledged, and the actor quits so
/// that the next incarnation reloads the truth from storage.
///
/// Lifecycle: spawned by the SKU directory on first use; loads the newest snapshot (Redis first,
/// PostgreSQL as truth) and replays the journal after it, holding back commands until then;
/// releases expired holds on activation, by a timer, and before it decides a hold or a
/// confirmation; a hold is renewed by each set, but never past holds.max_lifetime; snapshots every
/// `snapshot_every` events (but never more often than the snapshot's own size in events) to
/// PostgreSQL (same transaction) and Redis; passivates after `idle_timeout` without commands when
/// it has no holds and nothing in flight.
///
/// Cluster: the actor acts under `fence` (its shard's lease epoch). Every journal commit is
/// fenced by it in PostgreSQL (a stale epoch fails the commit: the actor answers unavailable and
/// quits), and a command arriving after this node's lease ran out is refused as unavailable.
/// (handoff_atom, true): finish what is in flight, then passivate even with live holds (the
/// next owner reloads them and runs their expiry); (handoff_atom, false): answer everything
/// pending with unavailable and quit at once.
using sku_actor = caf::typed_actor<
    caf::replies_to<hold_atom, hold_request>::with<hold_view>,
    caf::replies_to<confirm_atom, std::string, std::string, std::string, int64_t>::with<stock_view>,
    caf::replies_to<return_atom, std::string, std::string>::with<stock_view>,
    caf::replies_to<stock_atom, stock_change>::with<stock_view>,
    caf::replies_to<stock_atom>::with<stock_view>,
    caf::replies_to<product_atom, persistence::product_record>::with<product_view>,
    caf::replies_to<product_atom>::with<product_view>, caf::reacts_to<handoff_atom, bool>>;

using sku_directory = directory<sku_actor>;

/// Spawns the SKU actor for `sku`. `env` and `dir` must outlive it.
sku_actor spawn_sku(caf::actor_system& sys, const std::string& sku,
                    std::shared_ptr<const entity_env> env, sku_directory* dir,
                    entity_fence fence = {});

} // namespace surge::actors
