# The README's two commands are `make run` and `make test`; .ci/run calls the latter.
.PHONY: run build test test-cluster web services generate check-generated vet bench bench-cluster

GO ?= go

# run builds bin/aisle and runs it rather than `go run .`: Ctrl-C then
# reaches aisle alone, which drains and exits 0 (go run exits 1 after an
# interrupt, and make reports it as an error).
run: build web services
	./bin/aisle serve

# The binary, as the README's `aisle` commands name it: bin/aisle (go build
# alone cannot write ./aisle, the aisle/ package's directory).
build:
	$(GO) build -o bin/aisle .

test: web services check-generated vet
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory test-cluster

# The packages whose tests touch Redis run a second time on a local Redis
# Cluster of 3 masters + 3 replicas (started, or reused, by
# scripts/redis-cluster.sh on ports CLUSTER_PORT..CLUSTER_PORT+5; it keeps
# running for the next run: scripts/redis-cluster.sh stop). The root
# package's failover test runs only here, on a cluster of its own.
# TestDepRedisRestart stays on one node: it kills and restarts a
# redis-server of its own, a single server by design.
CLUSTER_PORT ?= 7100
REDIS_PACKAGES = . ./features/... ./ratelimit/ ./streaming/...
CLUSTER_SKIP = ^TestDepRedisRestart$$
test-cluster: services
	url=$$(./scripts/redis-cluster.sh start $(CLUSTER_PORT)) && \
	AISLE_REDIS_CLUSTER=true REDIS_URL="$$url" $(GO) test -count=1 -skip '$(CLUSTER_SKIP)' $(REDIS_PACKAGES)

# GraphiQL's npm packages, pinned by web/package-lock.json, served by the binary.
web: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund

services:
	./scripts/services.sh

generate:
	$(GO) generate ./...

# Generated code is committed; fail when it differs from what go generate makes.
check-generated: generate
	@git diff --exit-code -- graph resolvers || { echo "generated code is stale: run 'make generate' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- graph resolvers)" || { echo "go generate made untracked files:" >&2; git status --short -- graph resolvers >&2; exit 1; }

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:" >&2; gofmt -l $$(git ls-files '*.go') >&2; exit 1; }
	$(GO) vet ./...

# The figures of BENCHMARKS.md.
bench: web services
	$(GO) test -run '^$$' -bench 'Availability|Freshness' -benchtime 10000x .
	$(GO) test -run '^$$' -bench . -benchtime 3x ./streaming/
	$(GO) test -run '^$$' -bench ApplyVelocity -benchtime 50000x ./features/
	$(GO) test -run '^$$' -bench Recommendations -benchtime 5000x -timeout 40m .
	$(GO) test -run '^$$' -bench SessionIngest -benchtime 3x -timeout 20m .
	$(GO) test -run '^$$' -bench AssessOrder -benchtime 5000x .

# BENCHMARKS.md's one node vs cluster ingest figure (about two minutes).
bench-cluster: services
	GO=$(GO) ./scripts/bench-cluster.sh 3
