package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedImports is the README's architecture sketch as a rule: which of
// our packages each package may import. The data path reads top to bottom;
// a package missing here fails the test, so a new one must take its place.
var allowedImports = map[string][]string{
	"aisle":         {},
	"models":        {},
	"live":          {},
	"ratelimit":     {},
	"migrations":    {},
	"simulate":      {"aisle"},
	"streaming":     {"aisle"},
	"streamstatus":  {"aisle"},
	"auth":          {"aisle"},
	"features":      {"aisle", "models"},
	"postgres":      {"aisle", "models", "migrations"},
	"availability":  {"aisle", "models", "features", "postgres", "live"},
	"recommend":     {"aisle", "models", "features", "postgres", "live", "availability"},
	"fraud":         {"aisle", "models", "features", "postgres"},
	"merchandising": {"aisle", "postgres"},
	"pipeline":      {"aisle", "streaming", "features", "postgres", "availability", "recommend", "fraud"},
	"eval":          {"aisle", "models", "features", "simulate", "fraud"},
	"graph":         {"aisle", "postgres", "recommend"},
	"resolvers":     {"aisle", "models", "graph", "postgres", "live", "availability", "recommend", "fraud", "merchandising", "streamstatus"},
	"httpapi":       {"aisle", "auth", "graph", "resolvers", "postgres", "ratelimit", "live"}, // live: the hub wakes a websocket's subscription when a value is ready
	"loadtest":      {},
}

func TestImportGraphFollowsTheArchitecture(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/aisle/aisle"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok || strings.HasPrefix(pkg, "internal/") || strings.HasSuffix(pkg, "test") {
			continue // package main wires everything; internal/ and *test are test helpers
		}
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s has no place in the architecture (allowedImports)", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours || strings.HasPrefix(dep, "internal/") {
				continue
			}
			if !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, against the architecture", pkg, dep)
			}
		}
	}
}
