package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Write prints the report as tables.
func (r *Report) Write(out io.Writer) error {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	kb := func(b float64) string { return fmt.Sprintf("%.1f", b/1024) }
	mb := func(b float64) string { return fmt.Sprintf("%.1f", b/(1<<20)) }
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	if r.OfferedRate > 0 {
		fmt.Fprintf(tw, "mixed workload against %s: open loop, %.0f req/s offered (latency from when each was due), at most %d in flight, for %.1f s: %d sent of %d due\n", r.URL, r.OfferedRate, r.Concurrency, r.Elapsed.Seconds(), r.Sent, r.Due)
	} else {
		fmt.Fprintf(tw, "mixed workload against %s: %d in flight for %.1f s\n", r.URL, r.Concurrency, r.Elapsed.Seconds())
	}
	fmt.Fprintln(tw, "operation\tok\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\t")
	line := func(name string, o OpReport) {
		var errs []string
		for _, code := range slices.Sorted(maps.Keys(o.Errors)) {
			errs = append(errs, fmt.Sprintf("%s=%d", code, o.Errors[code]))
		}
		e := strings.Join(errs, " ")
		if e == "" {
			e = "0"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", name, o.N, o.PerSecond, ms(o.P50), ms(o.P95), ms(o.P99), ms(o.Max), e)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Operations)) {
		line(name, *r.Operations[name])
	}
	line("all", r.Total)
	fmt.Fprintln(tw)

	s := r.Subs
	fmt.Fprintf(tw, "subscriptions: %d requested, %d per connection, %d connections over %d keys in %.1f s, %d subscriptions established, %d failed, %d connections dropped by the server\n",
		s.Requested, s.PerConnection, s.Connected, s.Keys, s.ConnectTime.Seconds(), s.Established, s.Requested-s.Established, s.Dropped)
	for _, reason := range slices.Sorted(maps.Keys(s.Failures)) {
		fmt.Fprintf(tw, "  failed: %d × %s\n", s.Failures[reason], reason)
	}
	fmt.Fprintln(tw, "kind\tsubscriptions\tmessages\terrors\tcompleted by the server\t")
	for _, kind := range slices.Sorted(maps.Keys(s.ByKind)) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", kind, s.ByKind[kind], s.Messages[kind], s.Errors[kind], s.Completed[kind])
	}
	fmt.Fprintln(tw)

	m := r.Memory
	fmt.Fprintln(tw, "server memory (/metrics)\tbefore\tconnected\tsubscribed\twith\tafter closing\t")
	row := func(name string, v func(Memory) float64, format func(float64) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", name, format(v(m.Before)), format(v(m.Connected)), format(v(m.Subscribed)), format(v(m.With)), format(v(m.After)))
	}
	row("live heap + stacks (GC goal), MiB", Memory.Live, mb)
	row("heap in use + stacks, MiB", Memory.InUse, mb)
	row("stacks, MiB", func(m Memory) float64 { return m.StackInuse }, mb)
	row("resident set (RSS), MiB", func(m Memory) float64 { return m.RSS }, mb)
	row("goroutines", func(m Memory) float64 { return m.Goroutines }, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	fmt.Fprintf(tw, "per subscription, its share of the connection included: %s KiB live heap + stacks (closing released %s KiB), %s KiB heap in use + stacks, %s KiB RSS, %.1f goroutines\n",
		kb(m.LivePerSubscription), kb(m.ReleasedPerSubscription), kb(m.InUsePerSubscription), kb(m.RSSPerSubscription), m.GoroutinesPerSubscription)
	fmt.Fprintf(tw, "a bare connection: %s KiB live heap + stacks, %.1f goroutines; each subscription adds %s KiB, %.1f goroutines\n",
		kb(m.LivePerConnection), m.GoroutinesPerConnection, kb(m.LiveAddedPerSubscription), m.GoroutinesAddedPerSubscription)
	fmt.Fprintln(tw)

	f := r.Fanout
	fmt.Fprintf(tw, "fan-out: %d rounds to %d availabilityChanged subscribers: %d deliveries expected, %d missed (warm-up round: %d missed)\n",
		f.Rounds, f.Subscribers, f.Expected, f.Missed, f.WarmupMiss)
	fmt.Fprintln(tw, "reportPick sent → message read\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t\n", ms(f.Latency.P50), ms(f.Latency.P95), ms(f.Latency.P99), ms(f.Latency.Max))
	for _, n := range r.Notes {
		fmt.Fprintln(tw, "note:", n)
	}
	return tw.Flush()
}

// Report is what a run measured.
type Report struct {
	URL         string  `json:"url"`
	Concurrency int     `json:"concurrency"`
	OfferedRate float64 `json:"offered_per_second,omitempty"` // open loop: operations due per second
	// Open loop: operations sent, and due by the end of the run; more due
	// than sent means the server's backlog held the sender back (--concurrency
	// in flight) and the unsent ones are in no latency.
	Sent       int64                `json:"sent,omitempty"`
	Due        int64                `json:"due,omitempty"`
	Elapsed    time.Duration        `json:"elapsed_ns"` // of the mixed workload
	Operations map[string]*OpReport `json:"operations"`
	Total      OpReport             `json:"total"`
	Subs       SubscriptionReport   `json:"subscriptions"`
	Memory     MemoryReport         `json:"memory"`
	Fanout     FanoutReport         `json:"fanout"`
	Notes      []string             `json:"notes,omitempty"`

	errExamples map[string]string          // code → one message, for the log
	latencies   map[string][]time.Duration // by operation
}

// OpReport is one operation's figures over the mixed workload.
type OpReport struct {
	Latencies
	PerSecond float64        `json:"per_second"`
	Errors    map[string]int `json:"errors,omitempty"` // by extensions.code
}

// ErrorCount sums the errors by code.
func (o OpReport) ErrorCount() int {
	n := 0
	for _, c := range o.Errors {
		n += c
	}
	return n
}

// SubscriptionReport counts the websocket side.
type SubscriptionReport struct {
	Requested     int            `json:"requested"`
	PerConnection int            `json:"per_connection"` // subscriptions multiplexed on one socket
	Connected     int            `json:"connected"`      // sockets acknowledged
	Established   int            `json:"established"`    // subscriptions sent on them
	Keys          int            `json:"keys"`
	ConnectTime   time.Duration  `json:"connect_ns"` // to establish all of them
	Failures      map[string]int `json:"failures,omitempty"`
	ByKind        map[string]int `json:"by_kind"`
	Messages      map[string]int `json:"messages"`            // next messages by kind
	Errors        map[string]int `json:"errors,omitempty"`    // error messages by kind
	Completed     map[string]int `json:"completed,omitempty"` // subscriptions the server completed, by kind
	Dropped       int            `json:"dropped"`             // connections the server ended before the run did
}

// MemoryReport is the server's memory at five points of the run, each
// scraped right after the server completed two GCs (see settle), and its
// growth per connection and per subscription.
type MemoryReport struct {
	Before     Memory `json:"before"`     // warmed up, no sockets
	Connected  Memory `json:"connected"`  // every socket acknowledged, none subscribed: the baseline of a bare connection
	Subscribed Memory `json:"subscribed"` // one subscription on every socket
	With       Memory `json:"with"`       // still subscribed, after the workload and the fan-out
	After      Memory `json:"after"`      // sockets closed
	// LivePerSubscription is the growth of the live heap plus stacks
	// (Memory.Live) from Before to Subscribed per subscription, its share
	// of the connection it runs on included; LivePerConnection what a bare
	// connection costs (Before to Connected, per connection);
	// LiveAddedPerSubscription what a subscription adds to its connection
	// (Connected to Subscribed); ReleasedPerSubscription
	// what closing gave back (With to After). InUsePerSubscription and
	// RSSPerSubscription are the growth from Before to Subscribed of heap in
	// use plus stacks (garbage included) and of the resident set.
	LivePerSubscription       float64 `json:"live_bytes_per_subscription"`
	LivePerConnection         float64 `json:"live_bytes_per_connection"`
	LiveAddedPerSubscription  float64 `json:"live_bytes_added_per_subscription"`
	ReleasedPerSubscription   float64 `json:"released_bytes_per_subscription"`
	InUsePerSubscription      float64 `json:"inuse_bytes_per_subscription"`
	RSSPerSubscription        float64 `json:"rss_bytes_per_subscription"`
	GoroutinesPerConnection   float64 `json:"goroutines_per_connection"`
	GoroutinesPerSubscription float64 `json:"goroutines_per_subscription"`
	// GoroutinesAddedPerSubscription excludes the connection's.
	GoroutinesAddedPerSubscription float64 `json:"goroutines_added_per_subscription"`
}

// FanoutReport times one published change to every subscriber of it.
type FanoutReport struct {
	Rounds      int       `json:"rounds"`
	Subscribers int       `json:"subscribers"` // availabilityChanged subscribers
	Expected    int       `json:"expected"`    // deliveries the measured rounds should make
	Latency     Latencies `json:"latency"`     // reportPick sent → message read, per delivery
	Missed      int       `json:"missed"`
	WarmupMiss  int       `json:"warmup_missed"`
}
