-- 0004_refunds.sql: the example application's refunds (scripts/checkout.lua:
-- a purchase that was not approved, or not paid in time, is given back).
CREATE TABLE refunds (
  id         INTEGER PRIMARY KEY,
  order_id   INTEGER NOT NULL UNIQUE REFERENCES orders (id),
  reason     TEXT    NOT NULL,
  created_at INTEGER NOT NULL
);
