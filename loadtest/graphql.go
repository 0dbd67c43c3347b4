package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Error is a failed GraphQL request: the first error's extensions.code, or
// HTTP_<status> when the answer carried no GraphQL error, or TRANSPORT when
// no answer came.
type Error struct {
	Code    string
	Status  int // 0 when no answer came
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// ErrorCode returns the Code of an *Error in err's chain, or TRANSPORT.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return "TRANSPORT"
}

// GraphQLError is one entry of a GraphQL answer's errors.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Post sends one GraphQL request as a client would (with key unless it is
// empty), decodes the answer's data into data and returns an *Error for any
// error.
func Post(ctx context.Context, client *http.Client, url, key string, body []byte, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := client.Do(req)
	if err != nil {
		return &Error{Code: "TRANSPORT", Message: err.Error()}
	}
	defer res.Body.Close()
	out := struct {
		Data   any            `json:"data"` // holds the caller's pointer: decoded in place
		Errors []GraphQLError `json:"errors"`
	}{Data: data}
	err = json.NewDecoder(res.Body).Decode(&out)
	_, _ = io.Copy(io.Discard, res.Body) // let the connection be reused
	switch {
	case len(out.Errors) > 0:
		code, _ := out.Errors[0].Extensions["code"].(string)
		if code == "" {
			code = fmt.Sprintf("HTTP_%d", res.StatusCode)
		}
		return &Error{Code: code, Status: res.StatusCode, Message: fmt.Sprintf("%+v", out.Errors)}
	case err != nil:
		return &Error{Code: fmt.Sprintf("HTTP_%d", res.StatusCode), Status: res.StatusCode, Message: "decode: " + err.Error()}
	case res.StatusCode != http.StatusOK:
		return &Error{Code: fmt.Sprintf("HTTP_%d", res.StatusCode), Status: res.StatusCode, Message: "no GraphQL errors"}
	}
	return nil
}

// Request encodes a GraphQL request body.
func Request(query string, variables map[string]any) []byte {
	body, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		panic(fmt.Sprintf("loadtest: variables must encode as JSON: %v", err)) // a programming error: variables are strings and numbers
	}
	return body
}
