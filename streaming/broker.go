// Package streaming moves Aisle's events through Kafka: the producer used by
// the API, the consumer-group workers that validate events and write features
// (rejects go to the dead-letter topic), and the embedded Kafka-protocol
// broker of the default run mode. It is the only package importing franz-go.
package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
)

// DefaultBrokerAddr is where the embedded broker listens by default, the
// address Kafka tools (kcat -b localhost:9092) expect.
const DefaultBrokerAddr = "127.0.0.1:9092"

// Topics returns the topics Aisle reads and writes; EnsureTopics creates them.
func Topics() []string {
	return append(slices.Clone(aisle.EventTopics), aisle.TopicDLQ)
}

// Broker is an in-process Kafka-protocol broker (franz-go's kfake), a single
// node that real Kafka clients can talk to.
type Broker struct {
	cluster *kfake.Cluster
}

// StartEmbeddedBroker starts a broker listening on addr (DefaultBrokerAddr
// when empty; "127.0.0.1:0" picks a free port). With a dataDir it keeps its
// log, topics and committed offsets there, so a restart with the same
// directory loses nothing. Topics created without a partition count get
// partitions (when > 0). ctx bounds the start-up check that the broker
// answers.
func StartEmbeddedBroker(ctx context.Context, addr, dataDir string, partitions int32, log *slog.Logger) (*Broker, error) {
	if addr == "" {
		addr = DefaultBrokerAddr
	}
	if log == nil {
		log = slog.Default()
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake listens on 127.0.0.1 with a port of its choosing; we listen
		// on the configured address instead and it advertises that one.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.WithLogger(kfakeLogger{log}),
	}
	if partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(int(partitions)))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("embedded Kafka broker: %s is already in use (another aisle or Kafka running? set KAFKA_BROKERS to use that broker, or choose another address): %w", addr, err)
	} else if err != nil {
		return nil, fmt.Errorf("embedded Kafka broker on %s (data dir %q): %w", addr, dataDir, err)
	}
	b := &Broker{cluster: c}
	if err := b.ping(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// StartEmbeddedCluster starts an in-memory cluster of nodes brokers, with
// node ids 0..nodes-1, each on a free local port: for tests and the soak
// of what a multi-broker Kafka does to clients (partition leaders moving,
// a broker leaving and coming back). The brokers share one log, as
// replicas in sync would. Topics created without a partition count get
// partitions (when > 0).
func StartEmbeddedCluster(ctx context.Context, nodes int, partitions int32, log *slog.Logger) (*Broker, error) {
	if nodes < 1 {
		return nil, fmt.Errorf("embedded Kafka cluster: %d brokers, want at least 1", nodes)
	}
	if log == nil {
		log = slog.Default()
	}
	opts := []kfake.Opt{kfake.NumBrokers(nodes), kfake.WithLogger(kfakeLogger{log})}
	if partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(int(partitions)))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded Kafka cluster of %d brokers: %w", nodes, err)
	}
	b := &Broker{cluster: c}
	if err := b.ping(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// ShuffleLeaders moves the leadership of every partition to a broker chosen
// at random, as a leader election does: clients must find the new leaders.
func (b *Broker) ShuffleLeaders() { b.cluster.ShufflePartitionLeaders() }

// RemoveNode stops the broker with id node listening and hands its
// partitions to the others, as when a broker dies.
func (b *Broker) RemoveNode(node int32) error {
	if err := b.cluster.RemoveNode(node); err != nil {
		return fmt.Errorf("remove Kafka broker %d: %w", node, err)
	}
	return nil
}

// AddNode brings a broker back on addr's port (host:port, as Addrs listed
// it before RemoveNode), so that clients whose seed list names it reach it
// again, and returns its node id. It gets a new id, as a replaced broker
// would: the in-process broker cannot cut the connections clients still
// hold to the removed one, and a client would keep sending the removed
// node's requests there. Partitions move among all brokers, the new one
// included.
func (b *Broker) AddNode(addr string) (int32, error) {
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("add Kafka broker at %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return 0, fmt.Errorf("add Kafka broker at %q: %w", addr, err)
	}
	node, _, err := b.cluster.AddNode(-1, port)
	if err != nil {
		return 0, fmt.Errorf("add Kafka broker on port %d: %w", port, err)
	}
	return node, nil
}

// ping checks that the broker answers a metadata request at the address it
// advertises.
func (b *Broker) ping(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		return fmt.Errorf("embedded Kafka broker: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("embedded Kafka broker at %v does not answer: %w", b.Addrs(), err)
	}
	return nil
}

// Addrs returns the host:port the broker listens on, for clients' seed list.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Close stops the broker, first saving its state when it has a data
// directory. Calling it again does nothing.
func (b *Broker) Close() { b.cluster.Close() }

// EnsureTopics creates Aisle's topics on the cluster at brokers, with
// partitions partitions each (the broker's default when <= 0), except
// aisle.catalog, which has one: its events name each other (a store its
// retailer, an assortment its store and product), and one partition keeps
// them in the order they were published, so a dependant is never applied
// before what it names. Each partition has replicationFactor replicas (the
// broker's default.replication.factor when <= 0; a real cluster wants 3, so
// that losing a broker loses nothing). Topics that exist already are left as
// they are.
func EnsureTopics(ctx context.Context, brokers []string, partitions int32, replicationFactor int16) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	defer cl.Close()
	if partitions <= 0 {
		partitions = -1
	}
	if replicationFactor <= 0 {
		replicationFactor = -1
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	others := slices.DeleteFunc(Topics(), func(t string) bool { return t == aisle.TopicCatalog })
	for _, create := range []struct {
		partitions int32
		topics     []string
	}{{partitions, others}, {PartitionsOf(aisle.TopicCatalog, partitions), []string{aisle.TopicCatalog}}} {
		resps, err := adm.CreateTopics(ctx, create.partitions, replicationFactor, nil, create.topics...)
		if err != nil {
			return fmt.Errorf("ensure topics on %v: %w", brokers, err)
		}
		for _, r := range resps.Sorted() {
			if errors.Is(r.Err, kerr.InvalidReplicationFactor) {
				return fmt.Errorf("create topic %s with %d replicas per partition: more than the cluster's brokers? (%w)", r.Topic, replicationFactor, r.Err)
			}
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
			}
		}
	}
	return nil
}

// PartitionsOf is how many partitions EnsureTopics gives topic when the
// others get partitions: aisle.catalog always has one.
func PartitionsOf(topic string, partitions int32) int32 {
	if topic == aisle.TopicCatalog {
		return 1
	}
	return partitions
}

// kfakeLogger passes the broker's warnings and errors to slog.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error("kafka broker: " + fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		l.log.Warn("kafka broker: " + fmt.Sprintf(msg, args...))
	}
}
