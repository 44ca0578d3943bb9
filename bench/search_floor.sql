-- The SQL of one search, for the floor of the search row (scripts/benchmarks.sh sends it straight
-- to PostgreSQL with pgbench, 100 clients, the same queries as the node). pgbench variables:
-- :q (the query text) and :category ('' for none); with -M prepared they are parameters.
-- Keep it the statement the node runs for GET /api/v1/search?q=&category= (persistence/): until
-- the search SQL lands there, this is the listing's (pg_catalog.cpp, GET /api/v1/products).
SELECT p.sku, p.name, p.description, p.category, p.price_cents, p.currency,
       p.per_customer_limit, coalesce(s.on_hand - s.held - s.sold, 0) AS available
  FROM products p LEFT JOIN stock s ON s.sku = p.sku
 WHERE (numnode(plainto_tsquery('simple', :q::text)) = 0
        OR p.search @@ plainto_tsquery('simple', :q::text))
   AND (:category::text = '' OR p.category = :category::text)
 ORDER BY p.sku LIMIT 20;
