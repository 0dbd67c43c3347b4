package resolvers

import (
	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/streamstatus"
)

// inventoryLevels reads updateInventory's two forms: productId and
// quantity, or levels; each level without a time takes the input's.
func inventoryLevels(input graph.UpdateInventoryInput) ([]availability.InventoryLevel, error) {
	at := deref(input.Time)
	switch single := input.ProductID != nil || input.Quantity != nil; {
	case single && input.Levels != nil:
		return nil, aisle.Errorf(aisle.EINVALID, "give either productId and quantity, or levels, not both")
	case single && (input.ProductID == nil || input.Quantity == nil):
		return nil, aisle.Errorf(aisle.EINVALID, "productId and quantity go together")
	case single:
		return []availability.InventoryLevel{{ProductID: *input.ProductID, Quantity: int64(*input.Quantity), Time: at}}, nil
	case input.Levels == nil:
		return nil, aisle.Errorf(aisle.EINVALID, "give productId and quantity, or levels")
	}
	levels := make([]availability.InventoryLevel, len(input.Levels))
	for i, l := range input.Levels {
		levels[i] = availability.InventoryLevel{ProductID: l.ProductID, Quantity: int64(l.Quantity), Time: at}
		if l.Time != nil {
			levels[i].Time = *l.Time
		}
	}
	return levels, nil
}

// inventoryFeed reads updateInventory's feed and snapshot: a snapshot goes
// with feed SNAPSHOT and with it only.
func inventoryFeed(input graph.UpdateInventoryInput) (availability.InventoryFeed, error) {
	switch {
	case input.Feed == nil && input.Snapshot == nil:
		return availability.InventoryFeed{}, nil
	case input.Feed == nil || (*input.Feed == graph.FeedKindSnapshot) != (input.Snapshot != nil):
		return availability.InventoryFeed{}, aisle.Errorf(aisle.EINVALID, "feed SNAPSHOT and snapshot go together")
	case *input.Feed == graph.FeedKindDelta:
		return availability.InventoryFeed{Kind: aisle.FeedDelta}, nil
	}
	feed := availability.InventoryFeed{Kind: aisle.FeedSnapshot, SnapshotID: input.Snapshot.ID, CountedAt: deref(input.Snapshot.CountedAt)}
	if n := input.Snapshot.CompleteWithLevels; n != nil {
		if *n < 1 {
			return availability.InventoryFeed{}, aisle.Errorf(aisle.EINVALID, "completeWithLevels %d is out of range: at least 1", *n)
		}
		feed.CompleteWithLevels = int64(*n)
	}
	return feed, nil
}

func newStatusAlert(prev, next availability.Item) *graph.StatusAlert {
	return &graph.StatusAlert{PreviousStatus: graph.AvailabilityStatus(prev.Status), Availability: newItemAvailability(next)}
}

func newPipelineStatus(s streamstatus.Status) *graph.PipelineStatus {
	out := &graph.PipelineStatus{MeasuredAt: s.MeasuredAt.UTC(), ConsumerGroup: s.ConsumerGroup, Topics: make([]*graph.TopicStatus, len(s.Topics))}
	for i, t := range s.Topics {
		ts := &graph.TopicStatus{Topic: t.Topic, EventsPerSecond: t.EventsPerSecond, Lag: int(t.Lag)}
		if !t.NewestAppliedAt.IsZero() {
			at, age := t.NewestAppliedAt.UTC(), s.MeasuredAt.Sub(t.NewestAppliedAt).Seconds()
			ts.NewestAppliedAt, ts.NewestAppliedAgeSeconds = &at, &age
		}
		out.Topics[i] = ts
	}
	return out
}
