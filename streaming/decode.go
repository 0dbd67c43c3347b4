package streaming

import (
	"context"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// reject is a record bound for the dead-letter topic.
type reject struct {
	rec    *kgo.Record
	kind   string // rejectDecode, rejectInvalid or rejectUnknownEntity
	typ    string // the event type, "invalid" when it did not decode
	reason string
}

// decoded is what decodeRecords makes of a partition's records.
type decoded struct {
	updates []aisle.Update // to apply, in offset order
	from    []*kgo.Record  // from[i] is the record of updates[i]
	rejects []reject
}

// lookupFunc returns the entities among the given ones that do not exist
// (see lookupUnknown).
type lookupFunc func(retailerIDs, storeIDs, productIDs []string) (aisle.Unknown, error)

// lookupUnknown asks cat which of the entities do not exist.
func lookupUnknown(ctx context.Context, cat Catalog, retailerIDs, storeIDs, productIDs []string) (u aisle.Unknown, err error) {
	if len(retailerIDs) > 0 {
		if u.Retailers, err = cat.UnknownRetailers(ctx, retailerIDs); err != nil {
			return aisle.Unknown{}, err
		}
	}
	if len(storeIDs) > 0 || len(productIDs) > 0 {
		if u.Stores, u.Products, err = cat.UnknownIDs(ctx, storeIDs, productIDs); err != nil {
			return aisle.Unknown{}, err
		}
	}
	return u, nil
}

// decodeRecords is the one rule by which the stream workers and Replay
// accept records, so that replay rebuilds what the workers wrote: each
// record of one partition (in offset order, from the topic with the given
// id) is decoded and validated by aisle.DecodeEvent, and the events naming
// retailers, stores or products that lookup says are unknown are rejected,
// unless an earlier catalog event of the batch creates them. An event's
// time is judged "too far in the future" against its record's timestamp,
// the time the producer or broker stamped it: the workers' clock when they
// process it would accept, after a lag or outage longer than the allowed
// skew, events a replay rejects. decodeRecords fails only when lookup does,
// which it calls once, and only when some record decoded.
func decodeRecords(topicID string, recs []*kgo.Record, lookup lookupFunc) (decoded, error) {
	var d decoded
	for _, r := range recs {
		ev, err := aisle.DecodeEvent(r.Value, r.Topic, r.Timestamp)
		if err != nil {
			kind := rejectInvalid
			if !json.Valid(r.Value) {
				kind = rejectDecode
			}
			d.rejects = append(d.rejects, reject{r, kind, "invalid", aisle.ErrorMessage(err)})
			continue
		}
		d.updates = append(d.updates, aisle.Update{
			Event:  ev,
			Origin: aisle.Origin{Topic: r.Topic, TopicID: topicID, Partition: r.Partition, Offset: r.Offset},
		})
		d.from = append(d.from, r)
	}
	if len(d.updates) == 0 {
		return d, nil
	}
	unknown, err := lookup(references(d.updates))
	if err != nil {
		return decoded{}, err
	}
	if unknown.None() {
		return d, nil // all known
	}
	kept := 0
	for i, u := range d.updates {
		if reason := unknown.Reason(u.Event); reason != "" {
			d.rejects = append(d.rejects, reject{d.from[i], rejectUnknownEntity, u.Event.Type, reason})
			continue
		}
		unknown.Created(u.Event)
		d.updates[kept], d.from[kept] = u, d.from[i]
		kept++
	}
	d.updates, d.from = d.updates[:kept], d.from[:kept]
	return d, nil
}

// references returns the distinct retailers, stores and products the
// updates name.
func references(updates []aisle.Update) (retailerIDs, storeIDs, productIDs []string) {
	seen := map[string]bool{}
	add := func(ids []string, kind string, to *[]string) {
		for _, id := range ids {
			if !seen[kind+id] {
				seen[kind+id] = true
				*to = append(*to, id)
			}
		}
	}
	for _, u := range updates {
		stores, products := u.Event.References()
		add(stores, "s", &storeIDs)
		add(products, "p", &productIDs)
		add(u.Event.RetailerReferences(), "r", &retailerIDs)
	}
	return retailerIDs, storeIDs, productIDs
}
