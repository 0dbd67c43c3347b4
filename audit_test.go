package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestGraphQLOverHTTPAudit runs graphql-http's server audits (the GraphQL
// over HTTP spec's MUSTs and SHOULDs), pinned in testdata/audit, against a
// whole server: no audit may fail, and no warning may appear but those
// the README's Limits section says Aisle departs from on purpose.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	t.Parallel()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed: the audit needs Node.js")
	}
	if out, err := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefix", "testdata/audit").CombinedOutput(); err != nil {
		t.Fatalf("npm ci --prefix testdata/audit: %v\n%s", err, out)
	}
	ts := startServer(t)
	out, err := exec.Command("node", "testdata/audit/audit.mjs", ts.url+"/graphql").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var counts map[string]int
	if jsonErr := json.Unmarshal([]byte(lines[len(lines)-1]), &counts); jsonErr != nil {
		t.Fatalf("audit: %v %v\n%s", err, jsonErr, out)
	}
	t.Logf("graphql-http audit: %v\n%s", counts, out)
	// The README's Limits section says why each of these stays.
	allowed := map[string]bool{
		"572B": true, "FDE2": true, "7B9B": true, // 422, not 200, for request errors to application/json clients
	}
	for _, line := range lines[:len(lines)-1] {
		status, id, _ := strings.Cut(line, "\t")
		id, _, _ = strings.Cut(id, "\t")
		if status == "error" || (status == "warn" && !allowed[id]) {
			t.Errorf("audit %s", line)
		}
	}
}
