package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestReadyzNamesFailingChecksWithoutTheirErrors(t *testing.T) {
	secret := errors.New("dial tcp 10.1.2.3:5432: postgres://aisle:hunter2@db/aisle refused")
	var logs strings.Builder
	h := Ops(func(context.Context) error {
		return errors.Join(&CheckFailed{Name: "postgres", Err: secret}, &CheckFailed{Name: "kafka", Err: secret})
	}, slog.New(slog.NewJSONHandler(&logs, nil)))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct {
		Status  string   `json:"status"`
		Failing []string `json:"failing"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/readyz body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Status != "unavailable" || !slices.Equal(body.Failing, []string{"postgres", "kafka"}) {
		t.Errorf("/readyz = %d %+v, want 503 failing [postgres kafka]", rec.Code, body)
	}
	if strings.Contains(rec.Body.String(), "10.1.2.3") || strings.Contains(rec.Body.String(), "hunter2") {
		t.Errorf("/readyz shows a check's error: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "10.1.2.3") {
		t.Errorf("the check's error is not logged: %s", logs.String())
	}
}
