// Package pipeline is the one table of which steps apply each event topic's
// records: the stream workers run every step of a topic in order, and
// `aisle replay` re-runs the steps that rebuild what can be rebuilt from
// the topics (the Redis features and the catalog).
package pipeline

import (
	"context"
	"log/slog"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/streaming"
)

// step is one applier of a topic's records. Replayed steps rebuild state
// from the topic alone; the others are upserts keyed by order that already
// hold every event the workers consumed, so replaying them would cost a
// write per order for nothing.
type step struct {
	topic    string
	applier  streaming.Applier
	replayed bool
}

// steps is the table, in the order each topic's steps run: features first,
// then what the topics keep in PostgreSQL.
func steps(fs *features.Store, db *postgres.DB, log *slog.Logger) []step {
	availabilityFeatures := streaming.Applier{Name: "availability", Apply: fs.ApplyAvailability}
	// The feed's levels and the zeros its complete snapshots imply for the
	// carried products they left out (features.ApplyInventory).
	inventoryFeatures := streaming.Applier{Name: "availability", Apply: func(ctx context.Context, updates []aisle.Update) ([]bool, error) {
		return fs.ApplyInventory(ctx, updates, db.CarriedProducts)
	}}
	uncarried := streaming.Applier{Name: "uncarried_check", Apply: availability.FlagUncarried(db, log)}
	return []step{
		{aisle.TopicInventory, inventoryFeatures, true},
		{aisle.TopicInventory, uncarried, false},
		{aisle.TopicPicking, availabilityFeatures, true},
		{aisle.TopicPicking, streaming.Applier{Name: "accepted_replacements", Apply: recommend.AcceptedReplacements(db)}, false},
		{aisle.TopicPicking, uncarried, false},
		{aisle.TopicSessions, streaming.Applier{Name: "sessions", Apply: fs.ApplySessions}, true},
		{aisle.TopicOrders, streaming.Applier{Name: "velocity", Apply: fs.ApplyVelocity}, true},
		{aisle.TopicOrders, streaming.Applier{Name: "order_history", Apply: recommend.OrderHistory(db)}, false},
		{aisle.TopicLabels, streaming.Applier{Name: "label_risk", Apply: fs.ApplyLabels}, true},
		{aisle.TopicLabels, streaming.Applier{Name: "assessment_labels", Apply: fraud.RecordLabels(db)}, false},
		{aisle.TopicCatalog, catalogApplier(db), true},
	}
}

// Stream returns the stream workers' appliers of each topic, in order.
func Stream(fs *features.Store, db *postgres.DB, log *slog.Logger) map[string][]streaming.Applier {
	appliers := map[string][]streaming.Applier{}
	for _, s := range steps(fs, db, log) {
		appliers[s.topic] = append(appliers[s.topic], s.applier)
	}
	return appliers
}

// Replay returns the applier `aisle replay` re-runs for each of topics: the
// Redis features, and the catalog from aisle.catalog (last-writer-wins by
// event time, so replaying it onto a fresh database rebuilds the same rows,
// and onto a current one changes nothing).
func Replay(fs *features.Store, db *postgres.DB, log *slog.Logger, topics []string) map[string]streaming.Applier {
	wanted := map[string]bool{}
	for _, t := range topics {
		wanted[t] = true
	}
	appliers := map[string]streaming.Applier{}
	for _, s := range steps(fs, db, log) {
		if s.replayed && wanted[s.topic] {
			appliers[s.topic] = s.applier
		}
	}
	return appliers
}

// catalogApplier applies aisle.catalog's events to the PostgreSQL catalog.
func catalogApplier(db *postgres.DB) streaming.Applier {
	return streaming.Applier{Name: "catalog", Apply: func(ctx context.Context, updates []aisle.Update) ([]bool, error) {
		events := make([]*aisle.Decoded, len(updates))
		for i, u := range updates {
			events[i] = u.Event
		}
		return db.ApplyEvents(ctx, events)
	}}
}
