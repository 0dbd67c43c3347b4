package loadtest

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one bounded load run.
type Config struct {
	URL string // http://host:port of `aisle serve`
	// Keys are service API keys. HTTP workers take them in turn, and sockets
	// ConnectionsPerKey at a time, so that per-key limits of the server
	// apply to a share of the load only.
	Keys              []string
	ConnectionsPerKey int
	Duration          time.Duration // of the mixed workload
	Requests          int64         // stop the mixed workload after this many operations (0: Duration alone)
	Concurrency       int           // HTTP operations in flight (with a Rate: at most)
	// Rate, when positive, sends the mixed workload open loop: this many
	// operations per second, each timed from when it was due.
	Rate          float64
	Subscriptions int // subscriptions open during the run
	// SubscriptionsPerConnection are multiplexed on one websocket, as
	// graphql-transport-ws clients do: Subscriptions of them need
	// Connections() websockets.
	SubscriptionsPerConnection int
	FanoutProducts             int // store-products the availabilityChanged subscribers watch
	FanoutRounds               int // measured publish rounds (after one warm-up round)
	Mix                        Mix
	Log                        *slog.Logger
}

// Mix weighs the HTTP operations of the mixed workload.
type Mix map[string]int

// DefaultMix is mostly reads, as a storefront's traffic is.
const DefaultMix = "stores=1,availability=4,recommendations=2,orderRisk=1,reportPick=2,recordSessionEvent=2,assessOrder=1"

// Operations are the HTTP operations a Mix can name.
// Besides the default mix's, "typename" is `{ __typename }`, the floor of
// any GraphQL request, and "availability100" the availability of a store's
// first 100 products, the hot read of BENCHMARKS.md §1, and "storeListing100"
// a page of a store's first 100 products with each one's availability
// nested (Store.products, Product.availability).
var Operations = []string{"stores", "availability", "availability100", "storeListing100", "recommendations", "orderRisk", "reportPick", "recordSessionEvent", "assessOrder", "typename"}

// ParseMix reads "name=weight,..." over Operations.
func ParseMix(s string) (Mix, error) {
	mix := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		w, err := strconv.Atoi(weight)
		if !ok || err != nil || w < 0 {
			return nil, fmt.Errorf("mix: want name=weight, got %q", part)
		}
		if !slices.Contains(Operations, name) {
			return nil, fmt.Errorf("mix: unknown operation %q (known: %s)", name, strings.Join(Operations, ", "))
		}
		mix[name] = w
	}
	total := 0
	for _, w := range mix {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix: every weight is 0")
	}
	return mix, nil
}

// Connections is how many websockets carry the subscriptions.
func (c Config) Connections() int {
	return (c.Subscriptions + c.SubscriptionsPerConnection - 1) / c.SubscriptionsPerConnection
}

// Validate refuses a config that would not make a bounded run.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("a server URL is required")
	case len(c.Keys) == 0:
		return errors.New("at least one API key is required")
	case c.Duration <= 0 && c.Requests <= 0:
		return errors.New("the duration or the request count must be positive")
	case c.Rate < 0:
		return fmt.Errorf("the rate must not be negative, got %g", c.Rate)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Subscriptions < 0 || c.FanoutRounds < 0:
		return errors.New("subscriptions and fan-out rounds must not be negative")
	case c.FanoutProducts < 1:
		return fmt.Errorf("fan-out products must be at least 1, got %d", c.FanoutProducts)
	case c.SubscriptionsPerConnection < 1:
		return fmt.Errorf("subscriptions per connection must be at least 1, got %d", c.SubscriptionsPerConnection)
	case c.ConnectionsPerKey < 1:
		return fmt.Errorf("connections per key must be at least 1, got %d", c.ConnectionsPerKey)
	case len(c.Mix) == 0:
		return errors.New("the operation mix is empty")
	}
	return nil
}
