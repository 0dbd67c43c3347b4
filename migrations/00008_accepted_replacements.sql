-- Replacements shoppers made, from pick.replaced events: the shopper put
-- replacement_product_id in the order instead of product_id, which the
-- customer accepted. Replacement suggestions rank a candidate higher the
-- more often it was accepted for the same product.
--
-- One row per event, keyed by its id, so a redelivered event is recorded
-- once; the rows grow with pick.replaced events only (a minority of picks).

-- +goose Up
CREATE TABLE accepted_replacements (
    event_id               text PRIMARY KEY,
    store_id               text NOT NULL,
    product_id             text NOT NULL,
    replacement_product_id text NOT NULL,
    replaced_at            timestamptz NOT NULL
);
CREATE INDEX accepted_replacements_product_idx ON accepted_replacements (product_id, replacement_product_id);

-- +goose Down
DROP TABLE accepted_replacements;
