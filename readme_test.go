package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock is a fenced copy-paste block of the README: sh or graphql.
type readmeBlock struct {
	line      int    // of the opening fence
	lang      string // "sh" or "graphql"
	text      string
	directive string // the <!-- readme_test: ... --> line before it, without the markers
}

// readmeBlocks returns the README's sh and graphql blocks in order. Other
// fences (diagrams, sample output, CSV, JSON) are not commands to paste.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	var cur *readmeBlock
	var body []string
	previous := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			lang := strings.TrimPrefix(line, "```")
			cur = &readmeBlock{line: n, lang: lang}
			if d, ok := strings.CutPrefix(previous, "<!-- readme_test: "); ok {
				cur.directive = strings.TrimSuffix(d, " -->")
			}
			body = nil
		case cur != nil && line == "```":
			cur.text = strings.Join(body, "\n")
			if cur.lang == "sh" || cur.lang == "graphql" {
				blocks = append(blocks, *cur)
			}
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
		previous = line
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unclosed fence", cur.line)
	}
	return blocks
}

// readmeVariables are the values a user would give the variables a README
// document declares.
var readmeVariables = map[string]any{"store": "s-1"}

// Every copy-paste block of the README works as pasted against a server
// started as the walkthroughs say (AISLE_DEMO=1), with what a user would
// substitute: the key the previous `keys create` printed, the server's own
// addresses. A block the test cannot run says so, with the reason, in a
// <!-- readme_test: not run: REASON --> line before it.
func TestReadmeBlocks(t *testing.T) {
	t.Parallel()
	blocks := readmeBlocks(t)
	if len(blocks) < 10 {
		t.Fatalf("found %d blocks in README.md; is the parser right?", len(blocks))
	}
	ts := startServer(t, "--demo")
	bin := filepath.Join(t.TempDir(), "aisle")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"DATABASE_URL="+ts.main.Config.DatabaseURL,
		"REDIS_URL="+ts.main.Config.RedisURL,
		"AISLE_REDIS_PREFIX="+ts.main.Config.RedisPrefix,
		"KAFKA_BROKERS="+strings.Join(ts.main.KafkaBrokers, ","),
	)
	addr := strings.TrimPrefix(ts.url, "http://")
	key := ""
	keyLine := regexp.MustCompile(`aisle_\S+\s*$`)
	for _, b := range blocks {
		where := fmt.Sprintf("README.md:%d", b.line)
		switch {
		case strings.HasPrefix(b.directive, "not run: ") && len(strings.TrimPrefix(b.directive, "not run: ")) > 10:
			continue
		case strings.HasPrefix(b.directive, "needs kcat: "):
			if _, err := exec.LookPath("kcat"); err != nil {
				t.Logf("%s: kcat is not installed here; not run", where)
				continue
			}
		case b.directive != "":
			t.Fatalf("%s: unknown directive %q (want 'not run: REASON' or 'needs kcat: REASON')", where, b.directive)
		}
		t.Logf("%s: running the %s block", where, b.lang)
		switch b.lang {
		case "sh":
			script := strings.NewReplacer("go run . ", bin+" ", "127.0.0.1:9092", ts.main.KafkaBrokers[0], "localhost:8080", addr).Replace(b.text)
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s\n%s", where, err, b.text, out)
			}
			if k := keyLine.FindString(string(out)); k != "" {
				key = strings.TrimSpace(k)
			}
		case "graphql":
			runReadmeGraphQL(t, ts, where, key, b.text)
		}
	}
}

// runReadmeGraphQL runs a README document with the key: a subscription
// until its first event, a query or mutation until it answers without
// errors and, for a query, with no empty list (the demo's events may not
// have arrived yet).
func runReadmeGraphQL(t *testing.T, ts *testServer, where, key, doc string) {
	t.Helper()
	vars := map[string]any{}
	for name, v := range readmeVariables {
		if strings.Contains(doc, "$"+name) {
			vars[name] = v
		}
	}
	if strings.HasPrefix(strings.TrimSpace(doc), "subscription") {
		init := map[string]any{}
		if key != "" {
			init["Authorization"] = "Bearer " + key
		}
		ws, err := ts.dialWS(init)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		ws.subscribe("readme", doc, vars)
		// The demo's checkout alerts within minutes (TestDemoModeAlertsOnRisk).
		msg, err := ws.next(4 * time.Minute)
		if err != nil || msg.Type != "next" || bytes.Contains(msg.Payload, []byte(`"errors"`)) {
			t.Fatalf("%s: %s %s %v\n%s", where, msg.Type, msg.Payload, err, doc)
		}
		return
	}
	isQuery := strings.HasPrefix(strings.TrimSpace(doc), "query") || strings.HasPrefix(strings.TrimSpace(doc), "{")
	eventually(t, 2*time.Minute, func() string {
		resp := ts.query(key, doc, vars)
		switch {
		case len(resp.Errors) > 0:
			return fmt.Sprintf("%s: %+v\n%s", where, resp.Errors, doc)
		case isQuery && bytes.Contains(resp.Data, []byte("[]")):
			return fmt.Sprintf("%s: an empty list: %s", where, resp.Data)
		}
		return ""
	})
}
