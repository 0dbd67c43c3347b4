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
		fmt.Fprintf(tw, "mixed workload against %s: open loop, %.0f req/s offered (latency from when each was due), at most %d in flight, for %.1f s\n", r.URL, r.OfferedRate, r.Concurrency, r.Elapsed.Seconds())
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
