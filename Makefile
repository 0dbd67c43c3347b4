# The README's two commands are `make run` and `make test`; .ci/run calls the latter.
.PHONY: run build test test-tools test-cluster test-pgbouncer soak web services generate check-generated vet bench bench-cluster

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

# TEST_TIMEOUT bounds each package's tests: the root package's end-to-end
# and fault tests take about 6 minutes on 2 quiet cores, so go test's
# default of 10 minutes fails a run on a busy machine that would pass.
TEST_TIMEOUT ?= 30m
test: web services test-tools check-generated vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory test-cluster
	$(MAKE) --no-print-directory test-pgbouncer
	$(MAKE) --no-print-directory soak SOAK_DURATION=20s

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
	AISLE_REDIS_CLUSTER=true REDIS_URL="$$url" $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -skip '$(CLUSTER_SKIP)' $(REDIS_PACKAGES)

# The tests that touch PostgreSQL (the catalog with API keys, orders, the
# fraud registry and the change feed; keys; the root package's end-to-end,
# fraud and audit tests) run a second time through a local pgbouncer in
# transaction pooling mode (started, or reused, by scripts/pgbouncer.sh on
# PGBOUNCER_PORT; it keeps running for the next run: scripts/pgbouncer.sh
# stop). Test databases are created, migrated and dropped on PostgreSQL
# itself (postgrestest.DirectEnv), and the servers the tests start LISTEN
# there too: what needs a session never goes through the pooler.
# Not 6432: a pgbouncer service the package starts may listen there.
PGBOUNCER_PORT ?= 6440
PGBOUNCER_PACKAGES = ./postgres/... ./auth/
PGBOUNCER_ROOT_TESTS = ^(TestEventToFeatureToQuery|TestFraud.*|TestGraphQLOverHTTPAudit|TestCatalogTopic|TestRecommendationsFollowTheSession)$$
test-pgbouncer: services
	url=$$(./scripts/pgbouncer.sh start $(PGBOUNCER_PORT)) && \
	export DATABASE_URL="$$url" AISLE_TEST_DIRECT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable && \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PGBOUNCER_PACKAGES) && \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '$(PGBOUNCER_ROOT_TESTS)' .

# The cluster soak (soak_test.go): 3 stream workers, 2 API replicas, a Redis
# Cluster, 3 Kafka brokers and pgbouncer on this machine under a mixed load,
# one of each killed and restarted; it prints its report (BENCHMARKS.md).
# make test runs a 20 s one.
SOAK_DURATION ?= 3m
soak: services
	url=$$(./scripts/pgbouncer.sh start $(PGBOUNCER_PORT)) && \
	DATABASE_URL="$$url" AISLE_TEST_DIRECT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
	AISLE_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 60m .

# GraphiQL's npm packages, pinned by web/package-lock.json, served by the binary.
web: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund

services:
	./scripts/services.sh

# pgbouncer, chromium and kcat, installed when missing (Debian).
test-tools:
	./scripts/test-tools.sh

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
