#include <array>
#include <exception>
#include <string>

#include <pqxx/pqxx>

#include "pg_util.hpp"
#include "surge/persistence/errors.hpp"
#include "surge/persistence/pg.hpp"

namespace surge::persistence {

namespace {

/// The schema, one entry per version. SKUs collate "C" so that listings page in byte order,
/// whatever the database's locale. Append only: an applied migration never changes.
struct migration {
  int version;
  const char* sql;
};

constexpr std::array<migration, 14> migrations{{
    {1, R"sql(
CREATE TABLE sku_journal (
  stream       text        NOT NULL,
  seq          bigint      NOT NULL,
  payload      bytea       NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, seq)
);
CREATE TABLE snapshots (
  stream     text        PRIMARY KEY,
  seq        bigint      NOT NULL,
  payload    bytea       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
  sku                text        COLLATE "C" PRIMARY KEY,
  name               text        NOT NULL DEFAULT '',
  description        text        NOT NULL DEFAULT '',
  category           text        NOT NULL DEFAULT '',
  price_cents        bigint      NOT NULL DEFAULT 0,
  currency           text        NOT NULL DEFAULT 'USD',
  per_customer_limit bigint      NOT NULL DEFAULT 0,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(description, '') || ' ' ||
                          coalesce(category, ''))) STORED
);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_category_sku_idx ON products (category, sku);
CREATE INDEX products_price_idx ON products (price_cents);
CREATE TABLE stock (
  sku        text        COLLATE "C" PRIMARY KEY,
  on_hand    bigint      NOT NULL DEFAULT 0,
  held       bigint      NOT NULL DEFAULT 0,
  sold       bigint      NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
)sql"},
    {2, R"sql(
-- Snapshots are protobuf: compressing them costs more CPU than it saves space.
ALTER TABLE snapshots ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE TABLE orders (
  order_id        text        PRIMARY KEY,
  idempotency_key text        NOT NULL UNIQUE,
  fingerprint     text        NOT NULL,
  cart_id         text        NOT NULL,
  customer_id     text        NOT NULL DEFAULT '',
  status          text        NOT NULL
                  CHECK (status IN ('pending', 'paid', 'confirmed', 'failed', 'cancelled')),
  reason          text        NOT NULL DEFAULT '',
  total_cents     bigint      NOT NULL,
  currency        text        NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_unsettled_idx ON orders (updated_at) WHERE status IN ('pending', 'paid');
CREATE TABLE order_lines (
  order_id    text   REFERENCES orders ON DELETE CASCADE,
  line        int,
  sku         text   NOT NULL,
  qty         bigint NOT NULL,
  price_cents bigint NOT NULL,
  hold_id     text   NOT NULL,
  PRIMARY KEY (order_id, line)
);
CREATE TABLE payments (
  order_id        text        PRIMARY KEY REFERENCES orders,
  idempotency_key text        NOT NULL,
  gateway         text        NOT NULL DEFAULT '',
  charge_id       text        NOT NULL DEFAULT '',
  status          text        NOT NULL,
  amount_cents    bigint      NOT NULL,
  currency        text        NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE outbox (
  id           bigserial   PRIMARY KEY,
  topic        text        NOT NULL,
  key          text        NOT NULL,
  payload      text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz
);
CREATE INDEX outbox_undelivered_idx ON outbox (id) WHERE delivered_at IS NULL;
)sql"},
    {3, R"sql(
-- Cluster (DESIGN.md "Cluster"): members renew one lease for all their shards by heartbeat;
-- a shard's owner may commit while its member lease is live and its epoch is current.
CREATE TABLE members (
  node_id      text        PRIMARY KEY,
  address      text        NOT NULL,            -- host:port of the CAF middleman
  http_address text        NOT NULL DEFAULT '',
  admin_address text       NOT NULL DEFAULT '',
  incarnation  bigint      NOT NULL,
  status       text        NOT NULL,            -- joining, up, draining, left
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  lease_until  timestamptz NOT NULL DEFAULT now(),
  actors       bigint      NOT NULL DEFAULT 0
);
CREATE TABLE shard_leases (
  shard       integer     PRIMARY KEY,
  owner       text,                              -- NULL: unassigned
  epoch       bigint      NOT NULL DEFAULT 0,    -- +1 on every change of owner
  target      text,                              -- planned move: the owner hands over to it
  assigned_at timestamptz NOT NULL DEFAULT now()
);
-- Every change of a lease, for audits (G4: one writer per shard and epoch).
CREATE TABLE shard_history (
  id        bigserial   PRIMARY KEY,
  shard     integer     NOT NULL,
  epoch     bigint      NOT NULL,
  owner     text,
  reason    text        NOT NULL,
  at        timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE sku_journal ADD COLUMN shard integer, ADD COLUMN epoch bigint, ADD COLUMN node_id text;

CREATE FUNCTION surge_fence(p_node text, p_shards integer[], p_epochs bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  stale text;
BEGIN
  PERFORM 1 FROM shard_leases WHERE shard = ANY(p_shards) ORDER BY shard FOR SHARE;
  SELECT string_agg(f.shard::text, ',') INTO stale
    FROM unnest(p_shards, p_epochs) AS f(shard, epoch)
    LEFT JOIN shard_leases l ON l.shard = f.shard
   WHERE l.shard IS NULL OR l.owner IS DISTINCT FROM p_node OR l.epoch <> f.epoch;
  IF stale IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'SF001', MESSAGE = 'fenced: stale lease of shard(s) ' || stale;
  END IF;
END $$;
)sql"},
    // The hold sweeper's question, "which SKUs hold stock?", without a scan of every SKU.
    {4, R"sql(
CREATE INDEX stock_holding ON stock (sku) WHERE held > 0;
)sql"},
    // Secrets every node of the database shares (ids.secret, or its fingerprint when the
    // operator configures it), and refunds of orders cancelled after their charge: a refund the
    // gateway has not confirmed yet keeps the order on the reconciler's list.
    {5, R"sql(
CREATE TABLE shared_secrets (
  name       text        PRIMARY KEY,
  value      text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE orders
  ADD COLUMN refund_status  text CHECK (refund_status IN ('pending', 'refunded', 'failed')),
  ADD COLUMN refund_id      text,
  ADD COLUMN refunded_cents bigint NOT NULL DEFAULT 0;
DROP INDEX orders_unsettled_idx;
CREATE INDEX orders_unsettled_idx ON orders (updated_at)
  WHERE status IN ('pending', 'paid') OR refund_status = 'pending';
)sql"},
    // Operators' refunds (a list per order, besides the cancellation's single refund kept in the
    // orders row), the times an order's timeline is built from, and the indexes of the admin
    // search (newest first, by status, by customer, by id prefix). Idempotent: every statement
    // may run again. New time columns have no value for older rows (NULL: not known), never an
    // invented one; their defaults apply to rows written from now on.
    {6, R"sql(
CREATE TABLE IF NOT EXISTS order_refunds (
  order_id          text        NOT NULL REFERENCES orders ON DELETE CASCADE,
  refund_id         text        NOT NULL,
  idempotency_key   text        NOT NULL,
  fingerprint       text        NOT NULL DEFAULT '',
  gateway_key       text        NOT NULL,
  status            text        NOT NULL CHECK (status IN ('pending', 'refunded', 'failed')),
  gateway_refund_id text        NOT NULL DEFAULT '',
  amount_cents      bigint      NOT NULL CHECK (amount_cents >= 0),
  lines             text        NOT NULL DEFAULT '',
  message           text        NOT NULL DEFAULT '',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  settled_at        timestamptz,
  PRIMARY KEY (order_id, refund_id),
  UNIQUE (order_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS order_refunds_pending_idx ON order_refunds (updated_at)
  WHERE status = 'pending';
ALTER TABLE orders ADD COLUMN IF NOT EXISTS claimed_at timestamptz;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS status_at timestamptz;
ALTER TABLE orders ALTER COLUMN status_at SET DEFAULT now();
ALTER TABLE payments ADD COLUMN IF NOT EXISTS charged_at timestamptz;
ALTER TABLE payments ALTER COLUMN charged_at SET DEFAULT now();
CREATE INDEX IF NOT EXISTS orders_created_idx ON orders (created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS orders_status_created_idx
  ON orders (status, created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS orders_customer_created_idx
  ON orders (customer_id, created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS orders_id_prefix_idx ON orders (order_id text_pattern_ops);
CREATE INDEX IF NOT EXISTS outbox_key_idx ON outbox (key);
)sql"},
    // Each member's build version (CMake PROJECT_VERSION), shown in GET /admin/v1/cluster. IF NOT
    // EXISTS: harmless if it ever runs again under another number.
    {7, R"sql(
ALTER TABLE members ADD COLUMN IF NOT EXISTS version text NOT NULL DEFAULT '';
)sql"},
    // Product search (issue 15, pg_catalog.cpp): an English weighted tsvector (name and sku A,
    // description B, category C) beside the 'simple' one that list_products keeps using, trigrams
    // of the lowercased name for typos, the exact-SKU lookup, the keyset orders of the sorts, and
    // the time a product was first written (upserts never set it; existing rows get now()).
    {8, R"sql(
CREATE EXTENSION IF NOT EXISTS pg_trgm;
ALTER TABLE products ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE products ADD COLUMN IF NOT EXISTS search_en tsvector GENERATED ALWAYS AS (
  setweight(to_tsvector('english', coalesce(name, '')), 'A') ||
  setweight(to_tsvector('english', coalesce(sku, '')), 'A') ||
  setweight(to_tsvector('english', coalesce(description, '')), 'B') ||
  setweight(to_tsvector('english', coalesce(category, '')), 'C')) STORED;
CREATE INDEX IF NOT EXISTS products_search_en_idx ON products USING gin (search_en);
CREATE INDEX IF NOT EXISTS products_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS products_sku_lower_idx ON products (lower(sku));
CREATE INDEX IF NOT EXISTS products_name_sku_idx ON products (name, sku);
CREATE INDEX IF NOT EXISTS products_price_sku_idx ON products (price_cents, sku);
CREATE INDEX IF NOT EXISTS products_price_desc_sku_idx ON products (price_cents DESC, sku);
CREATE INDEX IF NOT EXISTS products_created_sku_idx ON products (created_at DESC, sku);
)sql"},
    // Sales (issue 17, pg_sales.cpp): a window over SKUs, a per-customer limit and the waiting
    // room's settings; admission_rate 0 is "auto". Every node's sale index reads the sales not
    // ended (ends_at); a put looks for other sales naming its SKUs (the GIN index on skus).
    {9, R"sql(
CREATE TABLE IF NOT EXISTS sales (
  sale_id            text             PRIMARY KEY,
  name               text             NOT NULL DEFAULT '',
  skus               text[]           NOT NULL CHECK (cardinality(skus) >= 1),
  starts_at          timestamptz      NOT NULL,
  ends_at            timestamptz      NOT NULL,
  per_customer_limit bigint           NOT NULL DEFAULT 0 CHECK (per_customer_limit >= 0),
  queue_enabled      boolean          NOT NULL DEFAULT false,
  admission_rate     double precision NOT NULL DEFAULT 0 CHECK (admission_rate >= 0),
  pass_ttl_ms        bigint           NOT NULL CHECK (pass_ttl_ms > 0),
  updated_at         timestamptz      NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS sales_ends_idx ON sales (ends_at);
CREATE INDEX IF NOT EXISTS sales_skus_idx ON sales USING gin (skus);
)sql"},
    // Each member's cluster protocol (cluster/protocol.hpp; issue 18). Expand only: nullable, no
    // default, so a release before it (which names its columns and leaves these alone) runs
    // unchanged on this schema. protocol counts only while protocol_incarnation is the row's
    // incarnation: a node id restarted on an older release (which bumps the incarnation and
    // writes no protocol) reads as legacy_protocol, not as the protocol it had before.
    {10, R"sql(
ALTER TABLE members ADD COLUMN IF NOT EXISTS protocol integer;
ALTER TABLE members ADD COLUMN IF NOT EXISTS protocol_incarnation bigint;
)sql"},
    // An order cancelled after its payment was only authorised (payments.capture=after_confirm;
    // issue 19) releases the authorisation: its "refund" ends voided. Expand only: a release
    // before it never writes voided.
    {11, R"sql(
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_refund_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_refund_status_check
  CHECK (refund_status IN ('pending', 'refunded', 'failed', 'voided'));
)sql"},
    // Outgoing webhooks (issue 19): one delivery per shop endpoint and order event, filled by
    // the fulfilment consumer group from the order streams; the dispatcher sends, retries and
    // records every attempt. New tables only: a release before it never reads them.
    {12, R"sql(
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id               bigserial   PRIMARY KEY,
  endpoint         text        NOT NULL,
  event_id         bigint      NOT NULL,
  event_type       text        NOT NULL,
  order_id         text        NOT NULL,
  body             text        NOT NULL,
  status           text        NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts         integer     NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  lease_until      timestamptz,
  first_attempt_at timestamptz,
  last_attempt_at  timestamptz,
  last_status      integer,
  last_error       text        NOT NULL DEFAULT '',
  delivered_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (endpoint, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx
  ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_order_idx
  ON webhook_deliveries (order_id, endpoint, event_id);
CREATE TABLE IF NOT EXISTS webhook_attempts (
  delivery_id bigint      NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempt     integer     NOT NULL,
  at          timestamptz NOT NULL,
  status      integer,
  error       text        NOT NULL DEFAULT '',
  duration_ms bigint      NOT NULL,
  PRIMARY KEY (delivery_id, attempt, at)
);
)sql"},
    // 3-D Secure (issue 19): an order waits in requires_action while the shopper authenticates
    // (its reason is where they do). Expand only: a release before it never writes the status;
    // the reconciler finds such orders once they are older than payments.action_ttl.
    {13, R"sql(
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
  CHECK (status IN ('pending', 'paid', 'confirmed', 'failed', 'cancelled', 'requires_action'));
CREATE INDEX IF NOT EXISTS orders_action_idx ON orders (updated_at)
  WHERE status = 'requires_action';
)sql"},
    // Fast failover (issue 20). The PostgreSQL backend of each member's heartbeat connection:
    // when a peer loses its connection to a member and that backend is gone too, the member's
    // process died, and its lease ends at once instead of at expiry. And which members cannot
    // reach which over the cluster's connections: a member most others cannot reach is cut
    // off (its heartbeat stops renewing its lease). Expand only: a release before it never
    // writes either (NULL pid: never ended early; no report: never cut off).
    {14, R"sql(
ALTER TABLE members ADD COLUMN IF NOT EXISTS heartbeat_pid integer;
CREATE TABLE IF NOT EXISTS member_suspicions (
  suspect      text        NOT NULL,
  suspected_by text        NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (suspect, suspected_by)
);
)sql"},
}};

/// Key of the session-level advisory lock that serialises migrations across nodes ("Surge").
constexpr long long migration_lock_key = 0x5375726765;

} // namespace

caf::error migrate(const std::string& url) {
  auto connected = detail::connect(url);
  if (!connected) {
    return std::move(connected.error());
  }
  auto conn = std::move(*connected);
  try {
    {
      pqxx::nontransaction tx{*conn};
      tx.exec_params("SELECT pg_advisory_lock($1)", migration_lock_key);
      tx.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
              " version integer PRIMARY KEY,"
              " applied_at timestamptz NOT NULL DEFAULT now())");
    }
    int current = 0;
    {
      pqxx::nontransaction tx{*conn};
      current = tx.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations")[0].as<int>();
    }
    for (const auto& m : migrations) {
      if (m.version <= current) {
        continue;
      }
      pqxx::work tx{*conn};
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations(version) VALUES ($1)", m.version);
      tx.commit();
    }
    {
      pqxx::nontransaction tx{*conn};
      tx.exec_params("SELECT pg_advisory_unlock($1)", migration_lock_key);
    }
  } catch (const std::exception& e) {
    // The advisory lock is session-level: closing the connection releases it.
    return make_error(errc::unavailable, std::string{"migration failed: "} + e.what());
  }
  return caf::none;
}

} // namespace surge::persistence
