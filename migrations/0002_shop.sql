-- 0002_shop.sql: the example application's tables (scripts/purchase.lua,
-- scripts/nightly_report.lua). A real deployment replaces these.
CREATE TABLE accounts (
  id      INTEGER PRIMARY KEY,
  owner   TEXT    NOT NULL,
  balance INTEGER NOT NULL CHECK (balance >= 0)  -- cents
);

CREATE TABLE orders (
  id         INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts (id),
  item       TEXT    NOT NULL,
  price      INTEGER NOT NULL,  -- cents
  job_id     INTEGER NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE receipts (
  id         INTEGER PRIMARY KEY,
  order_id   INTEGER NOT NULL UNIQUE REFERENCES orders (id),
  provider   TEXT    NOT NULL,  -- the payment provider's reference
  created_at INTEGER NOT NULL
);

CREATE TABLE reports (
  id         INTEGER PRIMARY KEY,
  day        TEXT    NOT NULL,
  orders     INTEGER NOT NULL,
  revenue    INTEGER NOT NULL,  -- cents
  created_at INTEGER NOT NULL
);

INSERT INTO accounts (id, owner, balance) VALUES
  (1, 'ada', 10000), (2, 'grace', 2500), (3, 'linus', 500);
