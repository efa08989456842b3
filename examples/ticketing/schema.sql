-- Ticketing case study: events with a fixed capacity, and the orders that consume it.
-- Idempotent: the inventory service applies it on every start, under an advisory lock.

CREATE TABLE IF NOT EXISTS events (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    capacity   integer NOT NULL CHECK (capacity >= 0),
    price      numeric(12, 2) NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id   text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_name  text NOT NULL,
    qty        integer NOT NULL,
    amount     numeric(20, 2),
    charge_id  text,
    status     text NOT NULL DEFAULT 'paid',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS orders_event_id_idx ON orders (event_id);
