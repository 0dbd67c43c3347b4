-- Which order.labeled event labelled an assessment, and whether the stream
-- step that recorded it reported it. A step that records its labels and fails
-- before reporting them is retried: its labels are then recognised as its
-- own (label_event, not yet label_reported) and counted as applied, while a
-- redelivery after the report, or another label of the order, is a
-- duplicate (postgres.LabelFraudAssessments). A label recorded before this
-- migration has no event, so no later delivery is taken for it.

-- +goose Up
ALTER TABLE fraud_assessments
    ADD COLUMN label_event    text,
    ADD COLUMN label_reported boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE fraud_assessments DROP COLUMN label_reported, DROP COLUMN label_event;
