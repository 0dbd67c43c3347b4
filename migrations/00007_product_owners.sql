-- Which retailer created a product through the API. Products form one
-- marketplace catalog, so the catalog events carry no owner; this table is
-- the API's own authorization state, like api_keys: a retailer key may
-- create products and replace those it created, and products without an
-- owner (imported, or created by a service key) only a service key may
-- replace.

-- +goose Up
CREATE TABLE product_owners (
    product_id  text PRIMARY KEY,
    retailer_id text NOT NULL
);

-- +goose Down
DROP TABLE product_owners;
