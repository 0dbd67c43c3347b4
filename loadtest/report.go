package loadtest

import (
	"fmt"
	"io"
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
	fmt.Fprintf(tw, "mixed workload against %s: %d in flight for %.1f s\n", r.URL, r.Concurrency, r.Elapsed.Seconds())
	fmt.Fprintln(tw, "operation\tok\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\t")
	line := func(name string, o OpReport) {
		var errs []string
		for _, code := range sortedKeys(o.Errors) {
			errs = append(errs, fmt.Sprintf("%s=%d", code, o.Errors[code]))
		}
		e := strings.Join(errs, " ")
		if e == "" {
			e = "0"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", name, o.N, o.PerSecond, ms(o.P50), ms(o.P95), ms(o.P99), ms(o.Max), e)
	}
	for _, name := range sortedKeys(r.Operations) {
		line(name, *r.Operations[name])
	}
	line("all", r.Total)
	fmt.Fprintln(tw)

	s := r.Subs
	fmt.Fprintf(tw, "subscriptions: %d requested, %d established over %d keys in %.1f s, %d failed, %d dropped by the server\n",
		s.Requested, s.Established, s.Keys, s.ConnectTime.Seconds(), s.Requested-s.Established, s.Dropped)
	for _, reason := range sortedKeys(s.Failures) {
		fmt.Fprintf(tw, "  failed: %d × %s\n", s.Failures[reason], reason)
	}
	fmt.Fprintln(tw, "kind\tsubscriptions\tmessages\terrors\t")
	for _, kind := range sortedKeys(s.ByKind) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", kind, s.ByKind[kind], s.Messages[kind], s.Errors[kind])
	}
	fmt.Fprintln(tw)

	m := r.Memory
	fmt.Fprintln(tw, "server memory (/metrics)\tbefore\topened\twith\tafter closing\tper subscription\t")
	fmt.Fprintf(tw, "live heap + stacks (from the GC goal), MiB\t%s\t%s\t%s\t%s\t%s KiB (closing released %s KiB)\t\n",
		mb(m.Before.Live()), mb(m.Opened.Live()), mb(m.With.Live()), mb(m.After.Live()), kb(m.LivePerSubscription), kb(m.ReleasedPerSubscription))
	fmt.Fprintf(tw, "heap in use + stacks, MiB\t%s\t%s\t%s\t%s\t%s KiB (before → opened)\t\n", mb(m.Before.InUse()), mb(m.Opened.InUse()), mb(m.With.InUse()), mb(m.After.InUse()), kb(m.InUsePerSubscription))
	fmt.Fprintf(tw, "resident set (RSS), MiB\t%s\t%s\t%s\t%s\t%s KiB (before → opened)\t\n", mb(m.Before.RSS), mb(m.Opened.RSS), mb(m.With.RSS), mb(m.After.RSS), kb(m.RSSPerSubscription))
	fmt.Fprintf(tw, "Go runtime total (sys), MiB\t%s\t%s\t%s\t%s\t\t\n", mb(m.Before.Sys), mb(m.Opened.Sys), mb(m.With.Sys), mb(m.After.Sys))
	fmt.Fprintf(tw, "goroutines\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", m.Before.Goroutines, m.Opened.Goroutines, m.With.Goroutines, m.After.Goroutines, m.GoroutinesPerSubscription)
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
