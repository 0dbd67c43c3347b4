-- What a marketplace's own catalog carries beyond ids and names, and the
-- bookkeeping that lets the aisle.catalog topic apply it idempotently and
-- last-writer-wins by event time.
--
-- Every catalog row records the event time of the upsert that wrote it
-- (event_at; NULL for rows written before the topic existed, such as an old
-- demo seed, which any event overrides). An upsert applies only when its event
-- time is later than the row's, so a redelivered or reordered event changes
-- nothing. An assortment removal deletes the row and leaves a tombstone with
-- its event time, so an older upsert arriving after the removal (another
-- partition, a replay) does not bring the product back.

-- +goose Up
ALTER TABLE retailers ADD COLUMN event_at timestamptz;

ALTER TABLE stores
    ADD COLUMN address  text,
    ADD COLUMN lat      double precision CHECK (lat BETWEEN -90 AND 90),
    ADD COLUMN lon      double precision CHECK (lon BETWEEN -180 AND 180),
    ADD COLUMN timezone text,
    ADD COLUMN event_at timestamptz;

ALTER TABLE products
    ADD COLUMN brand     text,
    ADD COLUMN size      text,
    ADD COLUMN gtin      text,
    ADD COLUMN image_url text,
    ADD COLUMN event_at  timestamptz;
CREATE INDEX products_brand_idx ON products (brand) WHERE brand IS NOT NULL;

ALTER TABLE store_products
    ADD COLUMN price_cents bigint CHECK (price_cents >= 0),
    ADD COLUMN aisle       text,
    ADD COLUMN event_at    timestamptz;

CREATE TABLE store_product_removals (
    store_id   text NOT NULL,
    product_id text NOT NULL,
    removed_at timestamptz NOT NULL,
    PRIMARY KEY (store_id, product_id)
);

-- +goose Down
DROP TABLE store_product_removals;
ALTER TABLE store_products DROP COLUMN price_cents, DROP COLUMN aisle, DROP COLUMN event_at;
DROP INDEX products_brand_idx;
ALTER TABLE products DROP COLUMN brand, DROP COLUMN size, DROP COLUMN gtin, DROP COLUMN image_url, DROP COLUMN event_at;
ALTER TABLE stores DROP COLUMN address, DROP COLUMN lat, DROP COLUMN lon, DROP COLUMN timezone, DROP COLUMN event_at;
ALTER TABLE retailers DROP COLUMN event_at;
