#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "surge/actors/directory.hpp"
#include "surge/actors/env.hpp"
#include "surge/actors/messages.hpp"
#include "surge/actors/sku.hpp"

namespace surge::actors {

/// The sale actor `sale:<sale_id>`: the waiting room of one sale (API.md "Sales and the waiting
/// room"), sharded, journaled and fenced like a SKU. Its definition is the node's sale_index
/// entry (entity_env::sales); unknown there: not_found.
///
///   (join_atom, customer_id, request_id) -> ticket_view  the customer's ticket, made on the first
///                                                        join (created = true) and answered only
///                                                        once journaled; the same ticket again
///                                                        after; sale_ended after ends_at;
///                                                        invalid for an empty customer
///   (caf::get_atom, ticket)              -> ticket_view  not_found for a forged or unknown ticket
///   (watch_atom)                         -> queue_summary the queue as a whole (watchers, admin)
///   (used_atom, ticket)                  a cart took stock with this ticket's pass (soft state:
///                                        an admitted shopper with a hold no longer needs stock
///                                        counted for them)
///   (warm_atom)                          from the prewarm scheduler (sales.prewarm before the
///                                        start until the end): stay active, read the SKUs
///   (handoff_atom, bool)                 the shard leaves this node (like every entity)
///
/// Order: tickets joined before starts_at form the pre-queue, ranked by a lottery at the start
/// (a Fisher-Yates shuffle driven by a seeded generator whose seed is journaled, so that a
/// replay or a test reproduces it); later joins are ranked after them in arrival order.
/// Admission: ranks [0, admitted) are admitted; `admitted` only grows, and is journaled before
/// any answer shows it, so positions never grow, failover included. It grows at the sale's
/// admission_rate (auto: additive increase while the SKUs answer within sales.latency_budget,
/// halved when they do not), but never past what stock can serve: open passes (admitted, not
/// expired, not used) stay below the units available across the sale's SKUs. Stock is read from
/// the SKU actors every 250 ms; with nothing available and nothing held the sale is sold out
/// and every waiting ticket says so; should holds expire and stock come back, admission resumes.
/// Passes are signed with entity_env::ids (ids.hpp sign_pass) and expire pass_ttl after
/// admission; a ticket whose pass expired, or still waiting when the sale ended, is expired.
///
/// Memory: tickets are kept compactly (see sale_model); a position is O(1).
using sale_actor =
    caf::typed_actor<caf::replies_to<join_atom, std::string, std::string>::with<ticket_view>,
                     caf::replies_to<caf::get_atom, std::string>::with<ticket_view>,
                     caf::replies_to<watch_atom>::with<queue_summary>,
                     caf::reacts_to<used_atom, std::string>, caf::reacts_to<warm_atom>,
                     caf::reacts_to<handoff_atom, bool>>;

using sale_directory = directory<sale_actor>;

/// Spawns the sale actor for `sale_id`. `env`, `dir` and `skus` must outlive it.
sale_actor spawn_sale(caf::actor_system& sys, const std::string& sale_id,
                      std::shared_ptr<const entity_env> env, sale_directory* dir,
                      sku_directory* skus, entity_fence fence = {});

} // namespace surge::actors
