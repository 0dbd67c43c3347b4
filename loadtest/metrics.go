package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Memory is the server's memory as its /metrics page reports it.
type Memory struct {
	HeapInuse  float64 `json:"heap_inuse_bytes"`  // go_memstats_heap_inuse_bytes: live heap and garbage not yet collected
	StackInuse float64 `json:"stack_inuse_bytes"` // go_memstats_stack_inuse_bytes: goroutine stacks
	Sys        float64 `json:"sys_bytes"`         // go_memstats_sys_bytes: everything the Go runtime took from the OS
	RSS        float64 `json:"rss_bytes"`         // process_resident_memory_bytes
	Goroutines float64 `json:"goroutines"`        // go_goroutines
	NextGC     float64 `json:"next_gc_bytes"`     // go_memstats_next_gc_bytes: the heap goal the last GC set
	GOGC       float64 `json:"gogc_percent"`      // go_gc_gogc_percent
	GCs        float64 `json:"gcs"`               // go_gc_duration_seconds_count: GCs completed
	// Subscriptions is aisle_live_subscriptions summed over the hubs.
	Subscriptions float64 `json:"live_subscriptions"`
}

// InUse is the Go memory the process holds for objects and stacks,
// garbage not yet collected included.
func (m Memory) InUse() float64 { return m.HeapInuse + m.StackInuse }

// Live estimates, from above, the live heap the last GC found plus the
// stacks. The runtime sets its heap goal to live + (live + scanned stacks +
// globals) × GOGC/100, and /metrics has neither the live heap nor the
// scanned stack size, so this takes goal / (1 + GOGC/100) as the live heap:
// that overstates it by (scanned stacks + globals) × GOGC / (100 + GOGC),
// the globals' part a constant that cancels in a difference of two scrapes
// of one process, the stacks' part at most half the stacks in use at
// GOGC=100 (goroutine stacks are mostly unscanned headroom). Unlike InUse it
// holds no garbage, but it is only as recent as the last GC.
func (m Memory) Live() float64 {
	if m.GOGC <= 0 { // GOGC=off: no goal to work back from
		return m.InUse()
	}
	return m.NextGC/(1+m.GOGC/100) + m.StackInuse
}

// ScrapeMemory reads the server's memory figures from httpURL/metrics.
func ScrapeMemory(ctx context.Context, client *http.Client, httpURL string) (Memory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpURL+"/metrics", nil)
	if err != nil {
		return Memory{}, err
	}
	res, err := client.Do(req)
	if err != nil {
		return Memory{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return Memory{}, fmt.Errorf("scrape metrics: HTTP %d", res.StatusCode)
	}
	var m Memory
	gauges := map[string]*float64{
		"go_memstats_heap_inuse_bytes":  &m.HeapInuse,
		"go_memstats_stack_inuse_bytes": &m.StackInuse,
		"go_memstats_sys_bytes":         &m.Sys,
		"process_resident_memory_bytes": &m.RSS,
		"go_goroutines":                 &m.Goroutines,
		"go_memstats_next_gc_bytes":     &m.NextGC,
		"go_gc_gogc_percent":            &m.GOGC,
		"go_gc_duration_seconds_count":  &m.GCs,
	}
	found := 0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		if p := gauges[name]; p != nil {
			*p = v
			found++
		} else if strings.HasPrefix(name, "aisle_live_subscriptions{") {
			m.Subscriptions += v
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("scrape metrics: %w", err)
	}
	if found != len(gauges) {
		return Memory{}, fmt.Errorf("scrape metrics: found %d of the %d Go and process gauges", found, len(gauges))
	}
	return m, nil
}
