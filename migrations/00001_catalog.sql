-- The catalog: retailers own stores; stores carry an assortment of products;
-- every product belongs to one category. IDs are readable strings (r-1, s-1,
-- p-1, dairy) because they travel in events and GraphQL as they are.

-- +goose Up
CREATE TABLE retailers (
    id   text PRIMARY KEY,
    name text NOT NULL CHECK (name <> '')
);

CREATE TABLE stores (
    id          text PRIMARY KEY,
    retailer_id text NOT NULL REFERENCES retailers (id),
    name        text NOT NULL CHECK (name <> '')
);
CREATE INDEX stores_retailer_id_idx ON stores (retailer_id);
-- Keyset pagination orders stores by (name, id).
CREATE INDEX stores_name_id_idx ON stores (name, id);

CREATE TABLE categories (
    id   text PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name <> '')
);

CREATE TABLE products (
    id          text PRIMARY KEY,
    category_id text NOT NULL REFERENCES categories (id),
    name        text NOT NULL CHECK (name <> '')
);
CREATE INDEX products_category_id_idx ON products (category_id);
-- Keyset pagination orders a store's products by (name, id).
CREATE INDEX products_name_id_idx ON products (name, id);

-- A store's assortment: the products it carries.
CREATE TABLE store_products (
    store_id   text NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    product_id text NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    PRIMARY KEY (store_id, product_id)
);
CREATE INDEX store_products_product_id_idx ON store_products (product_id);

-- Product name search is a case-insensitive substring match (ILIKE '%q%').
-- A trigram index makes it fast; pg_trgm is a trusted contrib extension, but
-- where it is not installed the search still works, only without the index.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX products_name_trgm_idx ON products USING gin (name gin_trgm_ops);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE store_products;
DROP TABLE products;
DROP TABLE categories;
DROP TABLE stores;
DROP TABLE retailers;
