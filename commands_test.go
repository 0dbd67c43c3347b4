package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestEvalCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"eval"}, {"eval", "weather"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage: aisle eval availability|recommendations|fraud") {
			t.Errorf("%v: %v, want the usage", args, err)
		}
	}
	if err := run(context.Background(), []string{"eval", "fraud", "--seed", "x"}, io.Discard, io.Discard); err == nil {
		t.Error("eval fraud --seed x: no error")
	}

	// The contract output: one JSON object with the seed, the model's
	// metrics and each baseline's.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"eval", "availability", "--seed", "2", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var report struct {
		Seed      int64                     `json:"seed"`
		Model     map[string]any            `json:"model"`
		Baselines map[string]map[string]any `json:"baselines"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if report.Seed != 2 || report.Model["log_loss"] == nil || report.Model["ece"] == nil || len(report.Baselines) == 0 {
		t.Errorf("report %+v, want seed 2 with the model's log_loss and ece and baselines", report)
	}
}

// AISLE_REDIS_CLUSTER is a boolean that --redis-cluster overrides.
func TestRedisClusterFlag(t *testing.T) {
	t.Setenv("AISLE_REDIS_CLUSTER", "maybe")
	if err := NewMain(io.Discard).ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "AISLE_REDIS_CLUSTER") {
		t.Errorf("AISLE_REDIS_CLUSTER=maybe: %v, want an error naming it", err)
	}
	t.Setenv("AISLE_REDIS_CLUSTER", "true")
	m := NewMain(io.Discard)
	if err := m.ParseFlags(nil); err != nil || !m.Config.RedisCluster {
		t.Errorf("AISLE_REDIS_CLUSTER=true: cluster %v, error %v", m.Config.RedisCluster, err)
	}
	m = NewMain(io.Discard)
	if err := m.ParseFlags([]string{"--redis-cluster=false"}); err != nil || m.Config.RedisCluster {
		t.Errorf("--redis-cluster=false over AISLE_REDIS_CLUSTER=true: cluster %v, error %v", m.Config.RedisCluster, err)
	}
}
