package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/streaming/streamingtest"
)

// chromiumPath finds Debian's chromium (.ci/run installs it).
func chromiumPath() (string, bool) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, true
		}
	}
	return "", false
}

// TestDashboardShowsAStoreLiveOffline opens /dashboard in headless Chromium
// (testdata/browser drives it with playwright-core): the page loads with no
// request leaving the server, and an inventory event produced straight to
// Kafka changes its product's cell in the live grid.
func TestDashboardShowsAStoreLiveOffline(t *testing.T) {
	t.Parallel()
	chromium, ok := chromiumPath()
	if !ok {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run does): the dashboard test needs a browser")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed: the dashboard test needs Node.js")
	}
	if out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", "testdata/browser").CombinedOutput(); err != nil {
		t.Fatalf("npm ci --prefix testdata/browser: %v\n%s", err, out)
	}
	ts := startServer(t)
	store, products := ts.store(3)
	warm, target := products[1], products[2]
	key := ts.createKey(aisle.RoleService, "", "")

	cmd := exec.Command("node", "testdata/browser/dashboard.mjs", ts.url, key, store.ID, warm, target)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var requests []string
	hear := func() string {
		t.Helper()
		for lines.Scan() {
			line := lines.Text()
			if list, ok := strings.CutPrefix(line, "REQUESTS "); ok {
				if err := json.Unmarshal([]byte(list), &requests); err != nil {
					t.Fatalf("requests: %v: %s", err, list)
				}
				continue
			}
			return line
		}
		return ""
	}
	defer func() {
		stdin.Close()
		for hear() != "" { // to the end, where the driver lists the requests
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("the browser driver failed: %v\n%s", err, stderr.String())
		}
		checkRequestsStayLocal(t, ts.url, requests)
	}()
	say := func(s string) {
		t.Helper()
		if _, err := fmt.Fprintln(stdin, s); err != nil {
			t.Fatalf("tell the driver %s: %v\n%s", s, err, stderr.String())
		}
	}
	produce := func(product string, quantity int) {
		t.Helper()
		data, err := json.Marshal(aisle.InventoryLevel{StoreID: store.ID, ProductID: product, Quantity: new(int64(quantity))})
		if err != nil {
			t.Fatal(err)
		}
		value, err := json.Marshal(aisle.Event{ID: aisle.NewEventID(), Type: aisle.TypeInventoryLevel, Time: time.Now().UTC(), Source: "dashboard-test", Data: data})
		if err != nil {
			t.Fatal(err)
		}
		streamingtest.Produce(t, ts.main.KafkaBrokers, &kgo.Record{Topic: aisle.TopicInventory, Key: []byte(store.ID + ":" + product), Value: value})
	}

	if got := hear(); got != "READY" {
		t.Fatalf("the dashboard did not show store %s: %q\n%s", store.ID, got, stderr.String())
	}
	for round := 0; ; round++ {
		produce(warm, 20+round)
		say("WARM")
		got := hear()
		if got == "WARM ok" {
			break
		}
		if got != "WARM no" || round == 10 {
			t.Fatalf("the grid never changed for warm-up events: %q\n%s", got, stderr.String())
		}
	}
	produce(target, 0)
	say("TARGET")
	got := hear()
	ms, ok := strings.CutPrefix(got, "CHANGED ")
	if !ok {
		t.Fatalf("the target product's cell did not change: %q\n%s", got, stderr.String())
	}
	t.Logf("an inventory event produced to Kafka changed its cell in the browser %s ms after the broker acknowledged it", ms)
}

// checkRequestsStayLocal fails for any request the page made to anything
// but the server, and when it made none (the driver did not report).
func checkRequestsStayLocal(t *testing.T, serverURL string, requests []string) {
	t.Helper()
	server, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(requests) == 0 {
		t.Fatal("the driver reported no requests")
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || u.Host != server.Host {
			t.Errorf("the page requested %s, which is not this server (%s)", r, server.Host)
		}
	}
}

// TestDashboardIsOffInProduction: production answers 404 at /dashboard
// unless --dashboard turns it on.
func TestDashboardIsOffInProduction(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--env", "production"}, http.StatusNotFound},
		{[]string{"--env", "production", "--dashboard"}, http.StatusOK},
		{nil, http.StatusOK},
	} {
		ts := startServer(t, c.args...)
		res, err := http.Get(ts.url + "/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%v: GET /dashboard answered %d, want %d", c.args, res.StatusCode, c.want)
		}
	}
}
