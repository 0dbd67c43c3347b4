-- Found-rate priors for the availability model, fitted by `aisle batch priors`
-- and loaded by serving. The document is models.AvailabilityPriors as JSON, so
-- the schema does not change when the model's fields do. Every fit is kept;
-- the newest one is used.

-- +goose Up
CREATE TABLE availability_priors (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fitted_at timestamptz NOT NULL,
    document  jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object')
);

-- +goose Down
DROP TABLE availability_priors;
