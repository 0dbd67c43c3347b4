package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

// Demo mode trains a fraud model at start and scores its simulated checkout
// through the fraud service, so riskAlerts speaks without any other step.
func TestDemoModeAlertsOnRisk(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--demo", "--demo-rate", "100")
	ops := ts.createKey(aisle.RoleOps, "", "")
	alerts, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + ops})
	if err != nil {
		t.Fatal(err)
	}
	alerts.subscribe("alerts", `subscription { riskAlerts(minScore: 0.3) { orderId score decision modelVersion } }`, nil)
	msg, err := alerts.next(4 * time.Minute)
	if err != nil {
		t.Fatalf("no risk alert from the demo's checkout: %v", err)
	}
	var alert struct {
		Data struct {
			RiskAlerts struct {
				OrderID      string  `json:"orderId"`
				Score        float64 `json:"score"`
				ModelVersion int     `json:"modelVersion"`
			} `json:"riskAlerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(msg.Payload, &alert); err != nil || alert.Data.RiskAlerts.OrderID == "" || alert.Data.RiskAlerts.ModelVersion != 1 {
		t.Fatalf("alert %s (%v), want a demo order scored by model version 1", msg.Payload, err)
	}
	t.Logf("first alert: %s", msg.Payload)
}
