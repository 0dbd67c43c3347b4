package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/models"
)

// SaveAvailabilityPriors stores a new fit of the availability priors as a
// JSON document; LoadAvailabilityPriors returns the newest. Older fits stay
// for auditing.
func (db *DB) SaveAvailabilityPriors(ctx context.Context, p models.AvailabilityPriors) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode availability priors: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO availability_priors (fitted_at, document) VALUES ($1, $2)`,
		db.Now(), doc); err != nil {
		return fmt.Errorf("save availability priors: %w", err)
	}
	return nil
}

// LoadAvailabilityPriors returns the newest stored priors, or
// models.DefaultAvailabilityPriors when none were ever saved, so that serving
// gives sensible answers before the first `aisle batch priors`.
func (db *DB) LoadAvailabilityPriors(ctx context.Context) (models.AvailabilityPriors, error) {
	var doc []byte
	err := db.pool.QueryRow(ctx, `SELECT document FROM availability_priors ORDER BY id DESC LIMIT 1`).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return models.DefaultAvailabilityPriors(), nil
	}
	if err != nil {
		return models.AvailabilityPriors{}, fmt.Errorf("load availability priors: %w", err)
	}
	var p models.AvailabilityPriors
	if err := json.Unmarshal(doc, &p); err != nil {
		return models.AvailabilityPriors{}, fmt.Errorf("decode availability priors: %w", err)
	}
	return p, nil
}
