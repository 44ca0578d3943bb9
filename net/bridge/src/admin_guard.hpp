#pragma once

// The admin API's request hygiene (private to the bridge).

#include <functional>
#include <memory>

#include "handlers.hpp"
#include "surge/net/router.hpp"

namespace surge::net::bridge {

/// Admin routes check, in this order, and answer the first failure:
///  1. the bearer token, when admin.token is set: 401 unauthorized;
///  2. an Origin header, when present: the console's own (http:// or https:// + Host) or one of
///     admin.allowed_origins, else 403 forbidden (a browser page of another site, or "null");
///  3. POST and PUT: Content-Type application/json (parameters allowed), else 415
///     unsupported_media_type (a missing one too), so that a page cannot send a "simple" cross-site
///     form or text/plain request.
/// Requests without Origin (curl, surgectl) pass 2. A refused request changes nothing.
/// env->admin_allowed_origins is read once, here, when the route is made.
/// `ndjson`: the route also accepts application/x-ndjson in 3 (POST /admin/v1/products:import
/// only).
router::route_handler admin_only(std::shared_ptr<bridge_env> env, std::function<endpoint> f,
                                 bool ndjson = false);

} // namespace surge::net::bridge
