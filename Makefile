# The README's two commands are `make run` and `make test`; .ci/run calls the latter.
.PHONY: run test web services generate check-generated vet bench

GO ?= go

run: web services
	$(GO) run .

test: web services check-generated vet
	$(GO) test -count=1 ./...

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
