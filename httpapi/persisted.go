package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
)

// codePersistedQueryNotFound is the code automatic-persisted-query clients
// (Apollo's, graphql-ws's) understand: "I do not know this hash". Under an
// allowlist they then send the full document, which is refused with
// FORBIDDEN unless it is on the list.
const codePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"

// PersistedOperations is an allowlist of GraphQL documents by the lowercase
// hex SHA-256 of their text. With it, the server runs only those documents:
// a request names one by hash alone (extensions.persistedQuery.sha256Hash,
// as in automatic persisted queries) or sends a document whose hash is on
// the list. Variables and operation names are free.
type PersistedOperations struct {
	byHash map[string]string
}

// LoadPersistedOperations reads a JSON object mapping SHA-256 hex to
// document, and checks that each document hashes to its key, so that a
// stale or hand-edited entry fails at start-up rather than at request time.
func LoadPersistedOperations(path string) (*PersistedOperations, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("persisted operations: %w", err)
	}
	var byHash map[string]string
	if err := json.Unmarshal(raw, &byHash); err != nil {
		return nil, fmt.Errorf("persisted operations %s: want a JSON object of sha256 hex → document: %w", path, err)
	}
	if len(byHash) == 0 {
		return nil, fmt.Errorf("persisted operations %s: the allowlist is empty, so no operation could run", path)
	}
	for hash, doc := range byHash {
		if got := sha256Hex(doc); got != hash {
			return nil, fmt.Errorf("persisted operations %s: the document under %q hashes to %s (keys are the lowercase hex SHA-256 of the document's exact text)", path, hash, got)
		}
	}
	return &PersistedOperations{byHash: byHash}, nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var (
	_ graphql.HandlerExtension          = (*PersistedOperations)(nil)
	_ graphql.OperationParameterMutator = (*PersistedOperations)(nil)
)

func (*PersistedOperations) ExtensionName() string                   { return "PersistedOperations" }
func (*PersistedOperations) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters fills in the document of a hash-only request
// and refuses any document not on the list. It runs before parsing, so an
// unlisted document costs no parse.
func (p *PersistedOperations) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	hash, err := persistedQueryHash(params.Extensions)
	if err != nil {
		return err
	}
	if params.Query == "" && hash == "" {
		return nil // gqlgen answers that no operation was given
	}
	if params.Query == "" {
		doc, ok := p.byHash[hash]
		if !ok {
			limitRejections.WithLabelValues(limitPersisted).Inc()
			return &gqlerror.Error{
				Message:    "PersistedQueryNotFound: this server runs only allowlisted operations, and none has this sha256Hash",
				Extensions: map[string]any{"code": codePersistedQueryNotFound},
			}
		}
		params.Query = doc
		return nil
	}
	got := sha256Hex(params.Query)
	if hash != "" && hash != got {
		return &gqlerror.Error{
			Message:    "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query",
			Extensions: map[string]any{"code": aisle.EINVALID},
		}
	}
	if _, ok := p.byHash[got]; !ok {
		limitRejections.WithLabelValues(limitPersisted).Inc()
		return &gqlerror.Error{
			Message:    "this server runs only allowlisted (persisted) operations, and this document is not one of them",
			Extensions: map[string]any{"code": aisle.EFORBIDDEN},
		}
	}
	return nil
}

// persistedQueryHash reads extensions.persistedQuery.sha256Hash, "" when
// the request has none.
func persistedQueryHash(extensions map[string]any) (string, *gqlerror.Error) {
	pq, ok := extensions["persistedQuery"]
	if !ok {
		return "", nil
	}
	fields, _ := pq.(map[string]any)
	hash, ok := fields["sha256Hash"].(string)
	if !ok {
		return "", &gqlerror.Error{
			Message:    "extensions.persistedQuery must be an object with a string sha256Hash",
			Extensions: map[string]any{"code": aisle.EINVALID},
		}
	}
	return strings.ToLower(hash), nil
}
