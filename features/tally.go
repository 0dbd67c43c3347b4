package features

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/models"
)

// LivePopular returns the n products added to carts most often at the
// store, by the live tally (see ApplySessions), most often first, scored
// by how often (ties by product id).
func (s *Store) LivePopular(ctx context.Context, storeID string, n int) ([]models.ItemScore, error) {
	zs, err := s.rdb.ZRevRangeWithScores(ctx, s.key("popz", storeID), 0, int64(n-1)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read live popularity of store %s: %w", storeID, err)
	}
	out := itemScores(zs)
	models.SortItemScores(out)
	return out, nil
}

// LiveCoOccurrence returns, for each of productIDs, up to k products that
// sessions added to their carts together with it, by the live tally (see
// ApplySessions), strongest first. The strength of a pair is a cosine: the
// sessions that added both, over the geometric mean of each one's adds, so
// that a product everybody buys is not everybody's neighbour. Two pipelined
// round trips.
func (s *Store) LiveCoOccurrence(ctx context.Context, productIDs []string, k int) (map[string][]models.ItemScore, error) {
	if len(productIDs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	ranges := make([]*redis.ZSliceCmd, len(productIDs))
	counts := make([]*redis.StringCmd, len(productIDs))
	for i, p := range productIDs {
		ranges[i] = pipe.ZRevRangeWithScores(ctx, s.key("coz", p), 0, int64(k-1))
		counts[i] = pipe.HGet(ctx, s.key("co", p), "n")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read live co-occurrence: %w", err)
	}
	adds := make(map[string]float64)
	for i, p := range productIDs {
		adds[p] = parseCount(counts[i].Val())
	}
	var others []string
	for _, r := range ranges {
		for _, z := range r.Val() {
			if id, _ := z.Member.(string); id != "" {
				if _, ok := adds[id]; !ok {
					adds[id] = 0
					others = append(others, id)
				}
			}
		}
	}
	if len(others) > 0 {
		pipe = s.rdb.Pipeline()
		gets := make([]*redis.StringCmd, len(others))
		for i, p := range others {
			gets[i] = pipe.HGet(ctx, s.key("co", p), "n")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read live add counts: %w", err)
		}
		for i, p := range others {
			adds[p] = parseCount(gets[i].Val())
		}
	}
	out := make(map[string][]models.ItemScore, len(productIDs))
	for i, p := range productIDs {
		for _, nb := range itemScores(ranges[i].Val()) {
			if n := adds[p] * adds[nb.ProductID]; n > 0 {
				nb.Score /= math.Sqrt(n)
				out[p] = append(out[p], nb)
			}
		}
		models.SortItemScores(out[p])
	}
	return out, nil
}

func itemScores(zs []redis.Z) []models.ItemScore {
	out := make([]models.ItemScore, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, models.ItemScore{ProductID: id, Score: z.Score})
	}
	return out
}

// parseCount reads a tally's "n"; a missing tally counts none.
func parseCount(v string) float64 {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return n
}
