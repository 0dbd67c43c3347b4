package features_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/internal/faulttest"
	"github.com/aisle/aisle/models"
)

// Size of BenchmarkMemory's workload.
const (
	memoryEvents     = 1_000_000
	memoryStores     = 20
	memoryProducts   = 500 // 20 × 500 = 10,000 store-products
	memoryPartitions = 6
	memoryBatch      = 1000
)

// BenchmarkMemory measures what Redis retains per event: 1,000,000
// availability events (4 picks to 1 feed level, as the ingest benchmark)
// over 10,000 store-products, applied with Kafka origins spread over 6
// partitions per topic, on a redis-server of its own (no persistence) so
// that used_memory is ours alone. It reports the keys left, used_memory
// grown, and the memory of the entities' state alone: the same keys holding
// only the availability fields, with the same TTLs, written to the emptied
// server and measured the same way. Run it with -benchtime 1x.
func BenchmarkMemory(b *testing.B) {
	srv := faulttest.StartRedis(b, "--appendonly", "no")
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	const prefix = "aisle-memory:"
	fs, err := features.Open(ctx, srv.URL(), prefix, models.DefaultAvailabilityModel())
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()

	for b.Loop() {
		if err := rdb.FlushAll(ctx).Err(); err != nil { // our own server
			b.Fatal(err)
		}
		before := usedMemory(b, rdb)
		start := time.Now()
		offsets := map[string]int64{}
		batch := make([]aisle.Update, 0, memoryBatch)
		for i := range memoryEvents {
			sp := aisle.StoreProduct{StoreID: fmt.Sprint("s-", i%memoryStores), ProductID: fmt.Sprint("p-", (i/memoryStores)%memoryProducts)}
			at := time.UnixMilli(1_780_000_000_000 + int64(i)*10)
			d := &aisle.Decoded{Event: aisle.Event{ID: fmt.Sprint("e-", i), Time: at}}
			topic := aisle.TopicPicking
			if i%5 == 0 {
				topic = aisle.TopicInventory
				q := int64(i % 40)
				d.Type = aisle.TypeInventoryLevel
				d.Inventory = &aisle.InventoryLevel{StoreID: sp.StoreID, ProductID: sp.ProductID, Quantity: &q}
			} else {
				d.Type = aisle.TypePickFound
				if i%5 == 3 {
					d.Type = aisle.TypePickNotFound
				}
				d.Pick = &aisle.Pick{StoreID: sp.StoreID, ProductID: sp.ProductID, ShopperID: "sh-1", OrderID: "o-1"}
			}
			// A store-product's events stay in one partition, as keyed records do.
			part := int32(i % memoryStores % memoryPartitions)
			tp := topic + "/" + strconv.Itoa(int(part))
			batch = append(batch, aisle.Update{Event: d, Origin: aisle.Origin{Topic: topic, TopicID: "0123456789abcdef0123456789abcdef", Partition: part, Offset: offsets[tp]}})
			offsets[tp]++
			if len(batch) == memoryBatch || i == memoryEvents-1 {
				applied, err := fs.ApplyAvailability(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				for j, a := range applied {
					if !a {
						b.Fatalf("event %d not applied", i-len(batch)+1+j)
					}
				}
				batch = batch[:0]
			}
		}
		elapsed := time.Since(start)
		used := usedMemory(b, rdb) - before
		keys, err := rdb.DBSize(ctx).Result()
		if err != nil {
			b.Fatal(err)
		}
		state := stateOnly(b, rdb, prefix)

		b.ReportMetric(float64(keys), "keys")
		b.ReportMetric(float64(used), "used_memory_bytes")
		b.ReportMetric(float64(state), "state_bytes")
		b.ReportMetric(float64(used)/float64(state), "memory/state")
		b.ReportMetric(float64(used)/memoryEvents, "bytes/event")
		b.ReportMetric(memoryEvents/elapsed.Seconds(), "events/s")
	}
}

// stateOnly reads every availability hash under prefix, empties the server
// and writes them back with their availability fields alone and their TTLs,
// and returns the used_memory that adds.
func stateOnly(b *testing.B, rdb *redis.Client, prefix string) int64 {
	ctx := context.Background()
	type entity struct {
		key    string
		fields map[string]string
		ttl    time.Duration
	}
	var entities []entity
	iter := rdb.Scan(ctx, 0, prefix+"avail:*", 1000).Iterator()
	for iter.Next(ctx) {
		entities = append(entities, entity{key: iter.Val()})
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	pipe := rdb.Pipeline()
	all := make([]*redis.MapStringStringCmd, len(entities))
	ttls := make([]*redis.DurationCmd, len(entities))
	for i, e := range entities {
		all[i] = pipe.HGetAll(ctx, e.key)
		ttls[i] = pipe.PTTL(ctx, e.key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	state := map[string]bool{"ver": true, "found": true, "not_found": true, "at_ms": true, "feed_qty": true, "feed_at_ms": true}
	for i := range entities {
		entities[i].fields = map[string]string{}
		for f, v := range all[i].Val() {
			if state[f] {
				entities[i].fields[f] = v
			} else if !features.IsBookkeeping(f) {
				b.Fatalf("%s: field %q is neither state nor bookkeeping", entities[i].key, f)
			}
		}
		entities[i].ttl = ttls[i].Val()
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	before := usedMemory(b, rdb)
	pipe = rdb.Pipeline()
	for _, e := range entities {
		pipe.HSet(ctx, e.key, e.fields)
		pipe.PExpire(ctx, e.key, e.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	return usedMemory(b, rdb) - before
}

// usedMemory is INFO memory's used_memory.
func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}
