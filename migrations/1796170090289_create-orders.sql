-- Up Migration
-- Orders: an id chosen by the client (or a UUID made by the service) and an exact amount.
-- seq orders the list newest first and is the pagination cursor; it never changes.
CREATE TABLE orders (
  id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  amount     numeric(17, 2) NOT NULL CHECK (amount > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

-- Down Migration
DROP TABLE orders;
