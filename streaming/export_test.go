package streaming

import (
	"context"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is the embedded broker's kfake cluster, for tests that hold or
// inspect its requests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// BufferedRecords counts the records the producer holds that the broker
// has not acknowledged yet.
func (p *Producer) BufferedRecords() int64 { return p.cl.BufferedProduceRecords() }

// Produce is the producer's raw write (the dead-letter queue's).
func (p *Producer) Produce(ctx context.Context, recs []*kgo.Record) (kgo.ProduceResults, error) {
	return p.produce(ctx, recs)
}
