package features

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/models"
)

//go:embed atrisk.lua
var indexAtRiskSource string

// indexAtRiskScript writes one store's at-risk index (see atrisk.lua). It
// keeps no effectively-once bookkeeping of its own: writing the same state
// again gives the same index, and an older state never replaces a newer one.
var indexAtRiskScript = redis.NewScript(indexAtRiskSource)

// MaxAtRiskPerStore bounds a store's at-risk index. It is above the ~1,600
// products a store carries, so that in practice every product with
// evidence is indexed; when a store's index is full, the products least at
// risk are dropped first.
const MaxAtRiskPerStore = 4096

var atRiskEvicted = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_features_at_risk_evicted_total",
	Help: "Products dropped from a full per-store at-risk index (the least at risk first).",
})

// indexedState is the state of a store-product after an apply.
type indexedState struct {
	sp    aisle.StoreProduct
	state state
}

// indexAtRisk records states in their stores' at-risk indexes, one script
// call per store in one pipelined round trip. A product is scored with
// AtRiskScore as of its newest evidence, so that the same state always
// gets the same score (a replay rebuilds the same index).
func (s *Store) indexAtRisk(ctx context.Context, states []indexedState) error {
	byStore := make(map[string][]any)
	var order []string
	for _, st := range states {
		if st.state.ver == 0 {
			continue // no hash (an event that was skipped before it wrote anything)
		}
		id := st.sp.StoreID
		if _, ok := byStore[id]; !ok {
			order = append(order, id)
			byStore[id] = []any{MaxAtRiskPerStore, s.ttl.Milliseconds()}
		}
		byStore[id] = append(byStore[id], strconv.FormatFloat(s.AtRiskScore(st.state.evidence), 'g', -1, 64), st.sp.ProductID, st.state.ver)
	}
	calls := make([]call, len(order))
	for i, id := range order {
		calls[i] = call{indexAtRiskScript, []string{s.atRiskKey(id), s.atRiskVersionsKey(id)}, byStore[id]}
	}
	results, err := s.evalEach(ctx, calls)
	if err != nil {
		return fmt.Errorf("index at-risk products: %w", err)
	}
	for _, r := range results {
		if n, ok := r.(int64); ok && n > 0 {
			atRiskEvicted.Add(float64(n))
		}
	}
	return nil
}

// AtRiskScore is the score a state gets in its store's at-risk index: the
// model's probability as of the newest evidence, with the default priors
// (the stream workers do not load fitted priors; readers re-score the
// candidates with the served ones).
func (s *Store) AtRiskScore(e models.AvailabilityEvidence) float64 {
	return s.model.Probability(e, models.DefaultAvailabilityPriors(), "", "", e.UpdatedAt())
}

// AtRiskCandidates returns up to n product ids of storeID's at-risk index
// from rank offset on, lowest score first, and how many the index holds.
func (s *Store) AtRiskCandidates(ctx context.Context, storeID string, offset, n int) (productIDs []string, total int64, err error) {
	key := s.atRiskKey(storeID)
	pipe := s.rdb.Pipeline()
	ids := pipe.ZRange(ctx, key, int64(offset), int64(offset+n)-1)
	card := pipe.ZCard(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("read at-risk index of %s: %w", storeID, err)
	}
	return ids.Val(), card.Val(), nil
}

// DropAtRisk removes products from storeID's at-risk index: products the
// store no longer carries, found when the index is read.
func (s *Store) DropAtRisk(ctx context.Context, storeID string, productIDs []string) error {
	if len(productIDs) == 0 {
		return nil
	}
	members := make([]any, len(productIDs))
	for i, id := range productIDs {
		members[i] = id
	}
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, s.atRiskKey(storeID), members...)
	pipe.HDel(ctx, s.atRiskVersionsKey(storeID), productIDs...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("drop from the at-risk index of %s: %w", storeID, err)
	}
	return nil
}

// atRiskKey is storeID's at-risk index, in the store's bucket.
func (s *Store) atRiskKey(storeID string) string { return s.key("atrisk", storeID) }

// atRiskVersionsKey holds the version of each product's indexed state, in
// the same bucket as the index.
func (s *Store) atRiskVersionsKey(storeID string) string { return s.key("atriskver", storeID) }
