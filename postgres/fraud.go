package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

// FraudModelVersion is one trained fraud model in the registry.
type FraudModelVersion struct {
	Version     int64
	TrainedAt   time.Time
	WindowStart time.Time // the training data's event times
	WindowEnd   time.Time
	Model       models.FraudModel
	Metrics     map[string]float64 // e.g. auc, average_precision, rows, frauds
	Active      bool
	ActivatedAt *time.Time
}

// SaveFraudModel stores a new, inactive model version and returns its number.
func (db *DB) SaveFraudModel(ctx context.Context, v FraudModelVersion) (int64, error) {
	model, err := json.Marshal(v.Model)
	if err != nil {
		return 0, fmt.Errorf("encode fraud model: %w", err)
	}
	metrics, err := json.Marshal(v.Metrics)
	if err != nil {
		return 0, fmt.Errorf("encode fraud model metrics: %w", err)
	}
	var version int64
	err = db.pool.QueryRow(ctx, `
		INSERT INTO fraud_models (trained_at, window_start, window_end, model, metrics)
		VALUES ($1, $2, $3, $4, $5) RETURNING version`,
		db.Now(), v.WindowStart, v.WindowEnd, model, metrics).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("save fraud model: %w", err)
	}
	return version, nil
}

const fraudModelColumns = `version, trained_at, window_start, window_end, model, metrics, active, activated_at`

func scanFraudModel(row pgx.Row) (FraudModelVersion, error) {
	var v FraudModelVersion
	var model, metrics []byte
	if err := row.Scan(&v.Version, &v.TrainedAt, &v.WindowStart, &v.WindowEnd, &model, &metrics, &v.Active, &v.ActivatedAt); err != nil {
		return v, err
	}
	if err := json.Unmarshal(model, &v.Model); err != nil {
		return v, fmt.Errorf("decode fraud model %d: %w", v.Version, err)
	}
	if err := json.Unmarshal(metrics, &v.Metrics); err != nil {
		return v, fmt.Errorf("decode fraud model %d metrics: %w", v.Version, err)
	}
	return v, nil
}

// FraudModels lists every model version, newest first.
func (db *DB) FraudModels(ctx context.Context) ([]FraudModelVersion, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+fraudModelColumns+` FROM fraud_models ORDER BY version DESC`)
	if err != nil {
		return nil, fmt.Errorf("list fraud models: %w", err)
	}
	defer rows.Close()
	var out []FraudModelVersion
	for rows.Next() {
		v, err := scanFraudModel(rows)
		if err != nil {
			return nil, fmt.Errorf("list fraud models: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list fraud models: %w", err)
	}
	return out, nil
}

// ActivateFraudModel makes version the active model (and no other).
// ENOTFOUND when there is no such version.
func (db *DB) ActivateFraudModel(ctx context.Context, version int64) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE fraud_models SET active = false WHERE active AND version <> $1`, version); err != nil {
			return fmt.Errorf("deactivate fraud models: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE fraud_models SET active = true, activated_at = $2 WHERE version = $1 AND NOT active`, version, db.Now())
		if err != nil {
			return fmt.Errorf("activate fraud model %d: %w", version, err)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM fraud_models WHERE version = $1)`, version).Scan(&exists); err != nil {
				return fmt.Errorf("activate fraud model %d: %w", version, err)
			}
			if !exists {
				return aisle.Errorf(aisle.ENOTFOUND, "fraud model version %d not found", version)
			}
		}
		return nil
	})
}

// ActiveFraudModelVersion returns the active version's number, and false when
// no version is active. It is what serving polls.
func (db *DB) ActiveFraudModelVersion(ctx context.Context) (int64, bool, error) {
	var version int64
	err := db.pool.QueryRow(ctx, `SELECT version FROM fraud_models WHERE active`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("read active fraud model: %w", err)
	}
	return version, true, nil
}

// FraudModel returns one model version; ENOTFOUND when there is none.
func (db *DB) FraudModel(ctx context.Context, version int64) (FraudModelVersion, error) {
	v, err := scanFraudModel(db.pool.QueryRow(ctx, `SELECT `+fraudModelColumns+` FROM fraud_models WHERE version = $1`, version))
	if err != nil {
		return v, formatError(err, fmt.Sprintf("fraud model version %d", version))
	}
	return v, nil
}

// FraudAssessment is one stored assessment of an order: what was decided,
// why, by which model, from which feature values.
type FraudAssessment struct {
	OrderID      string
	UserID       string
	StoreID      string
	AmountCents  int64
	OrderTime    time.Time
	Score        float64
	Decision     models.FraudDecision
	Reasons      []models.Contribution
	Features     map[string]float64 // raw feature values at scoring time
	ModelVersion int64
	AssessedAt   time.Time
	Fraud        *bool // the label, once known
	LabeledAt    *time.Time
}

// SaveFraudAssessment stores a; an order is assessed once, so when the order
// already has an assessment that one is returned instead, with created false.
//
// The insert does not wait for its WAL record to reach disk (synchronous
// commit off, for this transaction only): the flush costs about a
// millisecond on the scoring path, and a database crash within the next
// fraction of a second loses at most those audit rows, never corrupts them;
// the order itself is in Kafka.
func (db *DB) SaveFraudAssessment(ctx context.Context, a FraudAssessment) (stored FraudAssessment, created bool, err error) {
	reasons, err := json.Marshal(a.Reasons)
	if err != nil {
		return a, false, fmt.Errorf("encode reasons: %w", err)
	}
	feats, err := json.Marshal(a.Features)
	if err != nil {
		return a, false, fmt.Errorf("encode features: %w", err)
	}
	// One round trip: the transaction's statements go as one batch.
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN`)
	batch.Queue(`SET LOCAL synchronous_commit TO off`)
	insert := batch.Queue(`
		INSERT INTO fraud_assessments (order_id, user_id, store_id, amount_cents, order_time, score, decision,
		                               reasons, features, model_version, assessed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (order_id) DO NOTHING`,
		a.OrderID, a.UserID, a.StoreID, a.AmountCents, a.OrderTime, a.Score, string(a.Decision),
		reasons, feats, a.ModelVersion, a.AssessedAt)
	insert.Exec(func(tag pgconn.CommandTag) error {
		created = tag.RowsAffected() == 1
		return nil
	})
	batch.Queue(`COMMIT`)
	if err := db.pool.SendBatch(ctx, batch).Close(); err != nil {
		return a, false, fmt.Errorf("save fraud assessment of %s: %w", a.OrderID, err)
	}
	if created {
		return a, true, nil
	}
	stored, err = db.FraudAssessment(ctx, a.OrderID)
	return stored, false, err
}

// DeleteFraudAssessment deletes the assessment of an order made at
// assessedAt, unless it was labeled meanwhile. It undoes a
// SaveFraudAssessment whose order could not be published, so that the audit
// never holds an order the stream never saw; an assessment made again since
// (another assessedAt) is left alone.
func (db *DB) DeleteFraudAssessment(ctx context.Context, orderID string, assessedAt time.Time) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM fraud_assessments WHERE order_id = $1 AND assessed_at = $2 AND fraud IS NULL`,
		orderID, assessedAt)
	if err != nil {
		return fmt.Errorf("delete fraud assessment of %s: %w", orderID, err)
	}
	return nil
}

// FraudAssessment returns the assessment of an order; ENOTFOUND when it was
// never assessed.
func (db *DB) FraudAssessment(ctx context.Context, orderID string) (FraudAssessment, error) {
	var a FraudAssessment
	var decision string
	var reasons, feats []byte
	err := db.pool.QueryRow(ctx, `
		SELECT order_id, user_id, store_id, amount_cents, order_time, score, decision, reasons, features,
		       model_version, assessed_at, fraud, labeled_at
		FROM fraud_assessments WHERE order_id = $1`, orderID).
		Scan(&a.OrderID, &a.UserID, &a.StoreID, &a.AmountCents, &a.OrderTime, &a.Score, &decision, &reasons, &feats,
			&a.ModelVersion, &a.AssessedAt, &a.Fraud, &a.LabeledAt)
	if err != nil {
		return a, formatError(err, "assessment of order "+orderID)
	}
	a.Decision = models.FraudDecision(decision)
	if err := json.Unmarshal(reasons, &a.Reasons); err != nil {
		return a, fmt.Errorf("decode reasons of %s: %w", orderID, err)
	}
	if err := json.Unmarshal(feats, &a.Features); err != nil {
		return a, fmt.Errorf("decode features of %s: %w", orderID, err)
	}
	a.OrderTime, a.AssessedAt = a.OrderTime.UTC(), a.AssessedAt.UTC()
	return a, nil
}

// FraudLabel is the outcome of one order.
type FraudLabel struct {
	EventID   string // the order.labeled event's id
	OrderID   string
	Fraud     bool
	LabeledAt time.Time
}

// LabelFraudAssessments records labels on the assessments of their orders;
// an assessment keeps its first label, and labels of orders never assessed
// change nothing. labeled[i] says whether labels[i] labelled its assessment,
// now or in an earlier try of the same step that failed before reporting
// it: a retried step counts what it applied, while a redelivery after the
// step reported it and a second label of the order are duplicates. It is
// idempotent, so the stream workers may retry it. It takes two round trips:
// the labels, then marking the recorded ones reported.
func (db *DB) LabelFraudAssessments(ctx context.Context, labels []FraudLabel) (labeled []bool, err error) {
	labeled, err = db.recordFraudLabels(ctx, labels)
	if err != nil {
		return nil, err
	}
	var orders, events []string
	for i, l := range labels {
		if labeled[i] {
			orders, events = append(orders, l.OrderID), append(events, l.EventID)
		}
	}
	if len(orders) == 0 {
		return labeled, nil
	}
	_, err = db.pool.Exec(ctx, `
		UPDATE fraud_assessments a SET label_reported = true
		FROM unnest($1::text[], $2::text[]) AS l(order_id, event)
		WHERE a.order_id = l.order_id AND a.label_event = l.event`, orders, events)
	if err != nil {
		return nil, fmt.Errorf("label fraud assessments: mark reported: %w", err)
	}
	return labeled, nil
}

// recordFraudLabels is LabelFraudAssessments but for marking the labels
// reported: a label is recorded when its assessment has none yet, or when
// this event recorded it and was not reported.
func (db *DB) recordFraudLabels(ctx context.Context, labels []FraudLabel) (labeled []bool, err error) {
	batch := &pgx.Batch{}
	for _, l := range labels {
		if l.EventID == "" {
			return nil, fmt.Errorf("label fraud assessments: the label of order %s has no event id", l.OrderID)
		}
		batch.Queue(`
			UPDATE fraud_assessments SET fraud = $2, labeled_at = $3, label_event = $4
			WHERE order_id = $1 AND (fraud IS NULL OR (label_event = $4 AND NOT label_reported))`,
			l.OrderID, l.Fraud, l.LabeledAt, l.EventID)
	}
	results := db.pool.SendBatch(ctx, batch)
	defer results.Close()
	labeled = make([]bool, len(labels))
	for i := range labels {
		tag, err := results.Exec()
		if err != nil {
			return nil, fmt.Errorf("label fraud assessments: %w", err)
		}
		labeled[i] = tag.RowsAffected() == 1
	}
	return labeled, nil
}
