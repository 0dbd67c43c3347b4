-- Order history and what `aisle batch copurchase` fits from it.
--
-- orders and order_lines are written by the stream workers from order.placed
-- events, idempotently by order id. A fit is a set of co-purchase neighbours
-- and popularity rows written in one transaction; serving reads the newest
-- fit, so a reader sees a whole fit or the one before, never a mix.

-- +goose Up
CREATE TABLE orders (
    id        text PRIMARY KEY,
    user_id   text NOT NULL,
    store_id  text NOT NULL REFERENCES stores (id),
    placed_at timestamptz NOT NULL
);
CREATE INDEX orders_placed_at_idx ON orders (placed_at);
CREATE INDEX orders_user_id_idx ON orders (user_id);

CREATE TABLE order_lines (
    order_id   text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id text NOT NULL REFERENCES products (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE copurchase_fits (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fitted_at timestamptz NOT NULL,
    since     timestamptz NOT NULL, -- orders placed from here on were fitted
    orders    integer NOT NULL CHECK (orders >= 0)
);

-- A product's top co-purchase neighbours, by Jaccard similarity.
CREATE TABLE copurchase_neighbours (
    fit_id       bigint NOT NULL REFERENCES copurchase_fits (id) ON DELETE CASCADE,
    product_id   text NOT NULL,
    neighbour_id text NOT NULL,
    score        double precision NOT NULL,
    PRIMARY KEY (fit_id, product_id, neighbour_id)
);

-- A store's most popular products (store_id '' is every store together):
-- the share of its orders that contain each.
CREATE TABLE product_popularity (
    fit_id     bigint NOT NULL REFERENCES copurchase_fits (id) ON DELETE CASCADE,
    store_id   text NOT NULL,
    product_id text NOT NULL,
    score      double precision NOT NULL,
    PRIMARY KEY (fit_id, store_id, product_id)
);

-- +goose Down
DROP TABLE product_popularity;
DROP TABLE copurchase_neighbours;
DROP TABLE copurchase_fits;
DROP TABLE order_lines;
DROP TABLE orders;
