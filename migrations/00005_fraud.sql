-- Fraud risk: the model registry and the assessments audit.
--
-- fraud_models holds every model `aisle train fraud` fits: the document is
-- models.FraudModel as JSON (feature schema, standardisation, weights), with
-- the training window and metrics. At most one version is active; serving
-- polls it and swaps to a newly activated one without a restart.
--
-- fraud_assessments keeps every assessment with the model version and the
-- raw feature values it was made from, so any decision can be explained and
-- audited later. The label columns are filled when order.labeled arrives.

-- +goose Up
CREATE TABLE fraud_models (
    version      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trained_at   timestamptz NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    model        jsonb NOT NULL CHECK (jsonb_typeof(model) = 'object'),
    metrics      jsonb NOT NULL CHECK (jsonb_typeof(metrics) = 'object'),
    active       boolean NOT NULL DEFAULT false,
    activated_at timestamptz
);
CREATE UNIQUE INDEX fraud_models_one_active ON fraud_models ((true)) WHERE active;

CREATE TABLE fraud_assessments (
    order_id      text PRIMARY KEY,
    user_id       text NOT NULL,
    store_id      text NOT NULL,
    amount_cents  bigint NOT NULL,
    order_time    timestamptz NOT NULL,
    score         double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    decision      text NOT NULL CHECK (decision IN ('APPROVE', 'REVIEW', 'BLOCK')),
    reasons       jsonb NOT NULL CHECK (jsonb_typeof(reasons) = 'array'),
    features      jsonb NOT NULL CHECK (jsonb_typeof(features) = 'object'),
    model_version bigint NOT NULL REFERENCES fraud_models (version),
    assessed_at   timestamptz NOT NULL,
    fraud         boolean,
    labeled_at    timestamptz
);
CREATE INDEX fraud_assessments_assessed_at ON fraud_assessments (assessed_at);

-- +goose Down
DROP TABLE fraud_assessments;
DROP TABLE fraud_models;
