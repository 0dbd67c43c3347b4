package resolvers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
)

func TestErrorPresenter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason      string
		err         error
		code        string
		message     string
		logsTheCase bool
	}{
		{
			reason:  "a domain error keeps its code and user-safe message",
			err:     aisle.Errorf(aisle.EFORBIDDEN, "store s-2 belongs to another retailer"),
			code:    aisle.EFORBIDDEN,
			message: "store s-2 belongs to another retailer",
		},
		{
			reason:  "wrapping does not hide the domain error",
			err:     fmt.Errorf("update inventory: %w", aisle.Errorf(aisle.ENOTFOUND, "unknown store s-9")),
			code:    aisle.ENOTFOUND,
			message: "unknown store s-9",
		},
		{
			reason:  "a domain error the executor wrapped with a path is still found",
			err:     gqlerror.WrapPath(nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required")),
			code:    aisle.EUNAUTHENTICATED,
			message: "an API key is required",
		},
		{
			reason:      "an internal error is logged and shown generically",
			err:         fmt.Errorf("read availability evidence: %w", errors.New("dial tcp 127.0.0.1:6379: connection refused")),
			code:        aisle.EINTERNAL,
			message:     "internal error",
			logsTheCase: true,
		},
		{
			reason:  "an executor error about the document keeps its own code",
			err:     &gqlerror.Error{Message: "Cannot query field \"nope\"", Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}},
			code:    "GRAPHQL_VALIDATION_FAILED",
			message: "Cannot query field \"nope\"",
		},
		{
			reason:  "an executor error without a code is the caller's input",
			err:     &gqlerror.Error{Message: "Int cannot represent non-integer value"},
			code:    aisle.EINVALID,
			message: "Int cannot represent non-integer value",
		},
		{
			reason:  "a cancelled request is reported as unavailable, not internal",
			err:     fmt.Errorf("publish: %w", context.DeadlineExceeded),
			code:    aisle.EUNAVAILABLE,
			message: "the request was cancelled or timed out",
		},
	} {
		var logs bytes.Buffer
		present := ErrorPresenter(slog.New(slog.NewTextHandler(&logs, nil)))
		got := present(context.Background(), tc.err)
		if got.Extensions["code"] != tc.code || got.Message != tc.message {
			t.Errorf("%s: got %q %q, want %q %q", tc.reason, got.Extensions["code"], got.Message, tc.code, tc.message)
		}
		if logged := strings.Contains(logs.String(), "connection refused"); logged != tc.logsTheCase {
			t.Errorf("%s: logged details = %v, want %v (logs: %s)", tc.reason, logged, tc.logsTheCase, logs.String())
		}
	}
}
