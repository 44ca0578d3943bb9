#pragma once

// sku_journal payloads (protobuf surge.proto.EventBatch) to the checker's model and back (the
// encoder is for tests).

#include <optional>
#include <string>
#include <vector>

#include "model.hpp"

namespace surge::chaos {

/// The events of one EventBatch payload; nullopt when it does not parse.
std::optional<std::vector<journal_event>> decode_batch(const std::string& payload);

/// The EventBatch payload for `events` (product_set carries only an empty product).
std::string encode_batch(const std::vector<journal_event>& events);

} // namespace surge::chaos
