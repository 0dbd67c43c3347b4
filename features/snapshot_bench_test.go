package features_test

import (
	"fmt"
	"testing"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features/featurestest"
)

// benchStoreProducts is about what a store carries.
const benchStoreProducts = 1600

// BenchmarkSnapshotFanOut measures the completion of a snapshot that
// counted one product of a store carrying benchStoreProducts: its fan-out
// applies a zero to each other product. Its baseline is
// BenchmarkSnapshotLevels, the same number of levels applied by a worker.
func BenchmarkSnapshotFanOut(b *testing.B) {
	products := make([]string, benchStoreProducts)
	for i := range products {
		products[i] = fmt.Sprint("p-", i)
	}
	carried := carriedList(products...)
	n := 0
	for b.Loop() {
		b.StopTimer()
		s := featurestest.MustOpen(b)
		n++
		snap := fmt.Sprint("snap-", n)
		batch := []aisle.Update{{Event: snapshotLevel(snap, products[0], 5, snapCounted)}, {Event: snapshotCompleted(snap, 1)}}
		b.StartTimer()
		if _, err := s.ApplyInventory(b.Context(), batch, carried); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchStoreProducts-1)*float64(b.N)/b.Elapsed().Seconds(), "zeros/s")
}

// BenchmarkSnapshotLevels is BenchmarkSnapshotFanOut's baseline: as many
// plain levels, in batches of the stream's size.
func BenchmarkSnapshotLevels(b *testing.B) {
	const batchSize = 1000
	for b.Loop() {
		b.StopTimer()
		s := featurestest.MustOpen(b)
		updates := make([]aisle.Update, benchStoreProducts-1)
		for i := range updates {
			updates[i] = aisle.Update{Event: feed(fmt.Sprint("lvl-", i), aisle.StoreProduct{StoreID: "s-1", ProductID: fmt.Sprint("p-", i+1)}, 0, snapSent)}
		}
		b.StartTimer()
		for lo := 0; lo < len(updates); lo += batchSize {
			if _, err := s.ApplyAvailability(b.Context(), updates[lo:min(lo+batchSize, len(updates))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchStoreProducts-1)*float64(b.N)/b.Elapsed().Seconds(), "levels/s")
}
