# The aisle image: one static binary that plays every role (serve --role
# api|stream, migrate, batch jobs), with the GraphiQL page and the dashboard
# assets under /web. Build from the repository root:
#
#   docker build -t aisle .
#
# docs/deploy.md says how to run it.

# GraphiQL's pinned npm packages (web/package-lock.json) and, where the
# dashboard is present, its own (web/dashboard/package-lock.json).
FROM node:22-bookworm-slim AS web
WORKDIR /src/web
COPY web/ ./
RUN npm ci --no-audit --no-fund \
 && if [ -f dashboard/package-lock.json ]; then npm ci --prefix dashboard --no-audit --no-fund; fi

# A static binary: no cgo, so it runs on an image with no C library.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/aisle .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aisle /aisle
COPY --from=web /src/web /web
# Where the binary finds its assets, and where the embedded broker would
# keep its log (only without KAFKA_BROKERS, for trying the image alone).
ENV AISLE_WEB_DIR=/web \
    AISLE_DATA_DIR=/tmp/aisle-data
EXPOSE 8080 9090
USER nonroot
ENTRYPOINT ["/aisle"]
CMD ["serve"]
