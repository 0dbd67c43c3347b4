package main

// The deploy files (Dockerfile, compose.yaml, deploy/kubernetes/) and the
// README's Configuration table are kept in step with the binary: every
// variable the files set is one the binary reads, the manifests have the
// shape docs/deploy.md promises, and the table lists exactly serve's flags
// with the variables they read.

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/aisle/aisle/internal/proctest"
)

// acceptedVariables returns the environment variables the binary reads:
// those its source passes to env or os.Getenv, and those behind parsed
// flags (flagEnv).
func acceptedVariables(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			reads := false
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				reads = fn.Name == "env"
			case *ast.SelectorExpr:
				pkg, ok := fn.X.(*ast.Ident)
				reads = ok && pkg.Name == "os" && (fn.Sel.Name == "Getenv" || fn.Sel.Name == "LookupEnv")
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); reads && ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil {
					out[v] = true
				}
			}
			return true
		})
	}
	for _, v := range flagEnv {
		out[v] = true
	}
	if !out["DATABASE_URL"] || !out["AISLE_PARTITIONS"] {
		t.Fatalf("found only %v in the source: the scan misses how variables are read", slices.Sorted(maps.Keys(out)))
	}
	return out
}

// kubernetesDocs returns every document of the manifests under deploy/kubernetes.
func kubernetesDocs(t *testing.T) map[string][]map[string]any {
	t.Helper()
	files, err := filepath.Glob("deploy/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	out := map[string][]map[string]any{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(data), -1) {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if m != nil {
				out[name] = append(out[name], m)
			}
		}
	}
	return out
}

// envNames collects the names of every `env:` entry under v.
func envNames(v any, add func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if list, ok := child.([]any); ok && k == "env" {
				for _, e := range list {
					if m, ok := e.(map[string]any); ok {
						add(m["name"].(string))
					}
				}
				continue
			}
			envNames(child, add)
		}
	case []any:
		for _, child := range v {
			envNames(child, add)
		}
	}
}

func TestDeployFilesSetOnlyAcceptedVariables(t *testing.T) {
	accepted := acceptedVariables(t)
	set := map[string][]string{} // variable → where it is set
	add := func(where string) func(string) {
		return func(v string) { set[v] = append(set[v], where) }
	}

	for name, docs := range kubernetesDocs(t) {
		for _, doc := range docs {
			switch doc["kind"] {
			case "ConfigMap":
				for k := range doc["data"].(map[string]any) {
					add(name + " ConfigMap")(k)
				}
			case "Secret":
				for k := range doc["stringData"].(map[string]any) {
					add(name + " Secret")(k)
				}
			default:
				envNames(doc, add(name))
			}
		}
	}

	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	aisleServices := 0
	for name, s := range compose.Services {
		if !strings.HasPrefix(s.Image, "aisle") {
			continue // another engine's image, its own variables
		}
		aisleServices++
		for k := range s.Environment {
			add("compose.yaml " + name)(k)
		}
	}
	if aisleServices < 3 {
		t.Errorf("compose.yaml runs %d aisle services, want migrate, api and stream", aisleServices)
	}

	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, instr := range regexp.MustCompile(`(?m)^ENV ((?:.*\\\n)*.*)$`).FindAllStringSubmatch(string(dockerfile), -1) {
		for _, m := range regexp.MustCompile(`([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(instr[1], -1) {
			add("Dockerfile")(m[1])
		}
	}

	for _, required := range []string{"DATABASE_URL", "DATABASE_DIRECT_URL", "REDIS_URL", "KAFKA_BROKERS", "AISLE_ROLE", "AISLE_WEB_DIR"} {
		if len(set[required]) == 0 {
			t.Errorf("no deploy file sets %s", required)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(set)) {
		if !accepted[v] {
			t.Errorf("%s is set in %v, but the binary reads no such variable", v, set[v])
		}
	}
}

// TestKubernetesManifests checks what docs/deploy.md promises of them.
func TestKubernetesManifests(t *testing.T) {
	kinds := map[string][]map[string]any{}
	for _, docs := range kubernetesDocs(t) {
		for _, doc := range docs {
			kind, _ := doc["kind"].(string)
			kinds[kind] = append(kinds[kind], doc)
		}
	}
	roles := map[string]bool{}
	for _, d := range kinds["Deployment"] {
		name := d["metadata"].(map[string]any)["name"].(string)
		spec := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		c := spec["containers"].([]any)[0].(map[string]any)
		for _, e := range c["env"].([]any) {
			if e := e.(map[string]any); e["name"] == "AISLE_ROLE" {
				roles[e["value"].(string)] = true
			}
		}
		for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
			p, ok := c[probe].(map[string]any)
			if !ok || p["httpGet"].(map[string]any)["path"] != path {
				t.Errorf("%s: %s is %v, want an HTTP GET of %s", name, probe, c[probe], path)
			}
		}
		requests, _ := c["resources"].(map[string]any)["requests"].(map[string]any)
		if requests["cpu"] == nil || requests["memory"] == nil {
			t.Errorf("%s requests %v, want cpu and memory", name, requests)
		}
	}
	if !roles["api"] || !roles["stream"] || len(kinds["Deployment"]) != 2 {
		t.Errorf("deployments with roles %v, want one api and one stream deployment", roles)
	}
	if len(kinds["PodDisruptionBudget"]) != 2 {
		t.Errorf("%d PodDisruptionBudgets, want one for api and one for stream", len(kinds["PodDisruptionBudget"]))
	}
	if len(kinds["Job"]) != 1 {
		t.Fatalf("%d Jobs, want the migrations Job", len(kinds["Job"]))
	}
	job := kinds["Job"][0]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if args := job["containers"].([]any)[0].(map[string]any)["args"]; !slices.Equal(anyStrings(args), []string{"migrate"}) {
		t.Errorf("the Job runs %v, want migrate", args)
	}
	refits := map[string]bool{}
	for _, cj := range kinds["CronJob"] {
		name := cj["metadata"].(map[string]any)["name"].(string)
		spec := cj["spec"].(map[string]any)
		if spec["concurrencyPolicy"] != "Forbid" {
			t.Errorf("%s: concurrencyPolicy %v, want Forbid: a refit that overruns the next must not run twice", name, spec["concurrencyPolicy"])
		}
		pod := spec["jobTemplate"].(map[string]any)["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		c := pod["containers"].([]any)[0].(map[string]any)
		if args := anyStrings(c["args"]); len(args) >= 2 && args[0] == "batch" {
			refits[args[1]] = true
		} else {
			t.Errorf("%s runs %v, want a batch job", name, args)
		}
		requests, _ := c["resources"].(map[string]any)["requests"].(map[string]any)
		if requests["cpu"] == nil || requests["memory"] == nil {
			t.Errorf("%s requests %v, want cpu and memory", name, requests)
		}
	}
	if !refits["priors"] || !refits["copurchase"] || len(kinds["CronJob"]) != 2 {
		t.Errorf("CronJobs run batch %v, want priors and copurchase once each", slices.Sorted(maps.Keys(refits)))
	}
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, s := range list {
		out = append(out, s.(string))
	}
	return out
}

// TestREADMEConfigurationTable: the table lists every flag of serve once,
// each with the variable it reads ("—" for none).
func TestREADMEConfigurationTable(t *testing.T) {
	bin := proctest.Build(t, ".")
	var usage bytes.Buffer
	cmd := exec.Command(bin, "serve", "-h")
	cmd.Stdout, cmd.Stderr = &usage, &usage
	_ = cmd.Run()                // -h exits non-zero
	flags := map[string]string{} // flag → its usage text
	var last string
	for _, line := range strings.Split(usage.String(), "\n") {
		if m := regexp.MustCompile(`^  -(\S+)`).FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = ""
		} else if last != "" {
			flags[last] += line
		}
	}
	if len(flags) < 10 {
		t.Fatalf("serve -h listed only %d flags:\n%s", len(flags), usage.String())
	}

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	accepted := acceptedVariables(t)
	row := regexp.MustCompile("^\\| (`([A-Z0-9_]+)`|—) \\| `--([a-z0-9-]+)` \\|")
	listed := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") && !strings.HasPrefix(line, "| —") {
			continue
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("README Configuration row not of the form | `VARIABLE` or — | `--flag` | …: %s", line)
			continue
		}
		variable, flag := m[2], m[3]
		if listed[flag] {
			t.Errorf("README lists --%s twice", flag)
		}
		listed[flag] = true
		text, ok := flags[flag]
		if !ok {
			t.Errorf("README lists --%s, which serve does not have", flag)
			continue
		}
		if variable != "" && !accepted[variable] {
			t.Errorf("README says --%s reads %s, which the binary never reads", flag, variable)
		}
		if named := regexp.MustCompile(`\(([A-Z][A-Z0-9_]+)[;=) ]`).FindStringSubmatch(text); named != nil && named[1] != variable {
			t.Errorf("README says --%s reads %q; its usage says %s", flag, variable, named[1])
		}
	}
	for _, flag := range slices.Sorted(maps.Keys(flags)) {
		if !listed[flag] {
			t.Errorf("serve's --%s is missing from the README's Configuration table", flag)
		}
	}
}
