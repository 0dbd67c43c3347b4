package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/streaming"
)

const recommendationsQuery = `query($session: ID!, $store: ID!, $first: Int) {
  recommendations(sessionId: $session, storeId: $store, first: $first) { product { id name } score reason }
}`

type recommendation struct {
	Product struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"product"`
	Score  float64 `json:"score"`
	Reason string  `json:"reason"`
}

func recommendedIDs(recs []recommendation) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.Product.ID
	}
	return ids
}

func (ts *testServer) recommendations(key, sessionID, storeID string, first int) []recommendation {
	ts.t.Helper()
	var data struct {
		Recommendations []recommendation `json:"recommendations"`
	}
	ts.mustData(key, recommendationsQuery, map[string]any{"session": sessionID, "store": storeID, "first": first}, &data)
	return data.Recommendations
}

const recordSessionEvent = `mutation($session: ID!, $store: ID!, $type: SessionEventType!, $product: ID, $user: ID) {
  recordSessionEvent(input: {sessionId: $session, storeId: $store, type: $type, productId: $product, userId: $user}) { eventId topic }
}`

// sessionEvent records a session event through the API; user is needed for
// service keys only.
func (ts *testServer) sessionEvent(key, sessionID, storeID, eventType, productID, user string) {
	ts.t.Helper()
	vars := map[string]any{"session": sessionID, "store": storeID, "type": eventType, "product": productID}
	if user != "" {
		vars["user"] = user
	}
	var data struct {
		RecordSessionEvent struct {
			Topic string `json:"topic"`
		} `json:"recordSessionEvent"`
	}
	ts.mustData(key, recordSessionEvent, vars, &data)
	if data.RecordSessionEvent.Topic != aisle.TopicSessions {
		ts.t.Fatalf("recordSessionEvent receipt = %+v", data.RecordSessionEvent)
	}
}

// placeOrders publishes order.placed events to the server's broker, waits
// until order history has them all, and fits co-purchase neighbours with
// `aisle batch copurchase`.
func (ts *testServer) placeOrders(storeID string, baskets [][]string) {
	ts.t.Helper()
	producer, err := streaming.NewProducer(ts.main.KafkaBrokers, slog.New(slog.DiscardHandler))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer producer.Close()
	amount := int64(4200)
	for i, basket := range baskets {
		o := aisle.OrderPlaced{
			OrderID: fmt.Sprintf("o-%d", i), UserID: fmt.Sprintf("u-%d", i%5), StoreID: storeID, AmountCents: &amount,
			CardFingerprint: "card-1", DeviceID: "dev-1", IP: "192.0.2.1", AddressHash: "addr-1",
		}
		for _, p := range basket {
			o.Items = append(o.Items, aisle.OrderItem{ProductID: p, Quantity: 1})
		}
		data, _ := json.Marshal(o) // plain strings and numbers always encode
		ev := aisle.Event{ID: fmt.Sprintf("e-order-%d", i), Type: aisle.TypeOrderPlaced, Time: time.Now(), Source: "test", Data: data}
		if _, err := producer.Publish(context.Background(), ev, ""); err != nil {
			ts.t.Fatal(err)
		}
	}
	want := fmt.Sprintf("%d orders", len(baskets))
	eventually(ts.t.(*testing.T), 20*time.Second, func() string {
		var out bytes.Buffer
		err := run(context.Background(), []string{"batch", "copurchase", "--database-url", ts.main.Config.DatabaseURL}, &out, io.Discard)
		if err != nil || !strings.Contains(out.String(), want) {
			return fmt.Sprintf("batch copurchase: %v %s (want %s)", err, out.String(), want)
		}
		return ""
	})
}

func TestRecommendationsFollowTheSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "--recommend-refresh", "100ms")
	store, p := ts.store(20)
	service := ts.createKey(aisle.RoleService, "", "")
	alice := ts.createKey(aisle.RoleCustomer, "", "u-alice")

	// Order history: p[0] is in every order (the store's most popular),
	// p[1] and p[2] are bought together.
	var baskets [][]string
	for i := range 12 {
		basket := []string{p[0], p[10+i%5]}
		if i < 6 {
			basket = append(basket, p[1], p[2])
		}
		baskets = append(baskets, basket)
	}
	ts.placeOrders(store.ID, baskets)

	// A cold session gets the popular items.
	eventually(t, 10*time.Second, func() string {
		recs := ts.recommendations(alice, "ss-alice", store.ID, 5)
		if len(recs) == 0 || recs[0].Product.ID != p[0] || recs[0].Reason != "popular at this store" {
			return fmt.Sprintf("cold session got %+v, want %s first, popular (the fit is not loaded yet?)", recs, p[0])
		}
		return ""
	})

	// Another customer's recent session: viewed p[5], added p[6].
	ts.sessionEvent(service, "ss-other", store.ID, "VIEW", p[5], "u-other")
	ts.sessionEvent(service, "ss-other", store.ID, "ADD_TO_CART", p[6], "u-other")

	// Alice adds p[1] to her cart and views p[5].
	ts.sessionEvent(alice, "ss-alice", store.ID, "ADD_TO_CART", p[1], "")
	ts.sessionEvent(alice, "ss-alice", store.ID, "VIEW", p[5], "")
	// placeOrders' retries may have saved fits of part of the orders, which
	// serving can still hold for a moment: wait for the whole fit's answer.
	eventually(t, 10*time.Second, func() string {
		recs := ts.recommendations(alice, "ss-alice", store.ID, 10)
		ids := recommendedIDs(recs)
		switch {
		case slices.Contains(ids, p[1]):
			return fmt.Sprintf("the cart item %s is recommended: %v", p[1], ids)
		case !slices.Contains(ids, p[2]) || !slices.Contains(ids, p[6]):
			return fmt.Sprintf("got %v, want %s (bought with the cart item) and %s (the neighbour session's)", ids, p[2], p[6])
		}
		for _, r := range recs {
			switch {
			case r.Product.ID == p[2] && !strings.HasPrefix(r.Reason, "often bought with "):
				return fmt.Sprintf("%s's reason = %q, want co-purchase", p[2], r.Reason)
			case r.Product.ID == p[6] && !strings.HasPrefix(r.Reason, "people who viewed "):
				return fmt.Sprintf("%s's reason = %q, want the neighbour session", p[6], r.Reason)
			}
		}
		return ""
	})

	// p[2] runs out at the store: it disappears.
	for range 6 {
		ts.reportPick(service, store.ID, p[2], "NOT_FOUND")
	}
	eventually(t, 10*time.Second, func() string {
		if ids := recommendedIDs(ts.recommendations(alice, "ss-alice", store.ID, 10)); slices.Contains(ids, p[2]) {
			return fmt.Sprintf("out-of-stock %s still recommended: %v", p[2], ids)
		}
		return ""
	})
}

// Before any co-purchase fit, recommendations come from what the stream has
// tallied live: a fresh session gets the store's most added products, and a
// cart add brings what other sessions added with it, then more of its kind,
// with scores that tell them apart and reasons that say what the session did.
func TestRecommendationsLiveBeforeAnyFit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	service := ts.createKey(aisle.RoleService, "", "")
	alice := ts.createKey(aisle.RoleCustomer, "", "u-alice")
	var data struct {
		Stores struct {
			Edges []struct {
				Node struct {
					ID       string `json:"id"`
					Products struct {
						Edges []struct {
							Node struct{ ID, Name, Category string } `json:"node"`
						} `json:"edges"`
					} `json:"products"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"stores"`
	}
	ts.mustData("", `{ stores(first: 1) { edges { node { id products(first: 100) { edges { node { id name category } } } } } } }`, nil, &data)
	store := data.Stores.Edges[0].Node
	category := make(map[string]string)
	var eggs, bacon, milk, charcoal string // eggs; two products of other categories; a third
	for _, e := range store.Products.Edges {
		p := e.Node
		category[p.ID] = p.Category
		switch {
		case eggs == "":
			eggs = p.ID
		case p.Category == category[eggs]:
		case bacon == "":
			bacon = p.ID
		case milk == "" && p.Category != category[bacon]:
			milk = p.ID
		case charcoal == "" && milk != "" && p.Category != category[bacon] && p.Category != category[milk]:
			charcoal = p.ID
		}
	}
	if charcoal == "" {
		t.Fatalf("the store's first 100 products span fewer than 4 categories: %v", category)
	}

	// Others' carts: eggs with bacon four times, with milk once; charcoal
	// alone three times.
	add := func(session, product string) {
		ts.sessionEvent(service, session, store.ID, "ADD_TO_CART", product, "u-"+session)
	}
	for i := range 4 {
		add(fmt.Sprintf("ss-eb-%d", i), eggs)
		add(fmt.Sprintf("ss-eb-%d", i), bacon)
	}
	add("ss-em", eggs)
	add("ss-em", milk)
	for i := range 3 {
		add(fmt.Sprintf("ss-c-%d", i), charcoal)
	}

	// A fresh session: the most added products, eggs (5) before bacon (4).
	eventually(t, 20*time.Second, func() string {
		recs := ts.recommendations(alice, "ss-fresh", store.ID, 3)
		if ids := recommendedIDs(recs); !slices.Equal(ids, []string{eggs, bacon, charcoal}) || recs[0].Reason != "popular at this store" {
			return fmt.Sprintf("fresh session got %+v, want %s, %s, %s, popular at this store", recs, eggs, bacon, charcoal)
		}
		return ""
	})

	// Alice adds eggs: bacon, then milk, then more of eggs' category.
	ts.sessionEvent(alice, "ss-alice", store.ID, "ADD_TO_CART", eggs, "")
	eventually(t, 20*time.Second, func() string {
		recs := ts.recommendations(alice, "ss-alice", store.ID, 10)
		ids := recommendedIDs(recs)
		if len(ids) < 10 || ids[0] != bacon || ids[1] != milk || slices.Contains(ids, eggs) {
			return fmt.Sprintf("after eggs got %v, want %s, %s, then eggs' category", ids, bacon, milk)
		}
		if !(recs[0].Score > recs[1].Score && recs[1].Score > recs[2].Score) {
			return fmt.Sprintf("scores do not tell bacon, milk and the rest apart: %+v", recs[:3])
		}
		var products struct {
			Products []struct{ ID, Category string } `json:"products"`
		}
		ts.mustData("", `query($ids: [ID!]!) { products(ids: $ids) { id category } }`, map[string]any{"ids": ids[2:]}, &products)
		for i, p := range products.Products {
			if p.Category != category[eggs] {
				return fmt.Sprintf("%s (%s) is neither added with eggs nor of eggs' category %s: %v", p.ID, p.Category, category[eggs], ids)
			}
			if r := recs[i+2]; !strings.HasPrefix(r.Reason, "similar to ") {
				return fmt.Sprintf("%s's reason = %q, want similar to eggs", r.Product.ID, r.Reason)
			}
		}
		for _, r := range recs {
			if strings.Contains(r.Reason, "viewed") {
				return fmt.Sprintf("%s's reason %q says viewed; eggs were added to the cart", r.Product.ID, r.Reason)
			}
		}
		return ""
	})
}

// Bad arguments get clear errors and no data (who may read and record
// sessions is TestTenantIsolation's).
func TestRecommendationsRejectBadArguments(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, _ := ts.store(1)
	alice := ts.createKey(aisle.RoleCustomer, "", "u-alice")
	cases := []struct {
		name, query, code string
		vars              map[string]any
	}{
		{"a view without a product", recordSessionEvent, aisle.EINVALID, map[string]any{"session": "ss-alice", "store": store.ID, "type": "VIEW"}},
		{"an unknown store", recommendationsQuery, aisle.ENOTFOUND, map[string]any{"session": "ss-alice", "store": "s-404"}},
		{"too many", recommendationsQuery, aisle.EINVALID, map[string]any{"session": "ss-alice", "store": store.ID, "first": 51}},
	}
	for _, tc := range cases {
		resp := ts.query(alice, tc.query, tc.vars)
		if code := resp.code(t); code != tc.code {
			t.Errorf("%s: code %s, want %s (%q)", tc.name, code, tc.code, resp.Errors[0].Message)
		}
		if string(resp.Data) != "null" {
			t.Errorf("%s: data = %s, want none", tc.name, resp.Data)
		}
	}
}

func TestRecommendationsUpdatedOnSessionChange(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	store, p := ts.store(3)
	alice := ts.createKey(aisle.RoleCustomer, "", "u-alice")
	service := ts.createKey(aisle.RoleService, "", "")
	// A neighbour session links p[0] to p[1] and p[2]. Its changes do not
	// notify alice's subscription, so wait until the stream workers have
	// applied them all.
	for _, product := range p {
		ts.sessionEvent(service, "ss-other", store.ID, "ADD_TO_CART", product, "u-other")
	}
	fs, err := features.Open(context.Background(), ts.main.Config.RedisURL, ts.main.Config.RedisPrefix, models.DefaultAvailabilityModel(), features.WithCluster(ts.main.Config.RedisCluster))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	eventually(t, 10*time.Second, func() string {
		st, err := fs.Session(context.Background(), "ss-other")
		if err != nil || len(st.Session.Cart) != len(p) {
			return fmt.Sprintf("ss-other = %+v, %v; want %d items in its cart", st, err, len(p))
		}
		return ""
	})

	ws, err := ts.dialWS(map[string]any{"Authorization": "Bearer " + alice})
	if err != nil {
		t.Fatal(err)
	}
	const sub = `subscription($session: ID!, $store: ID!) { recommendationsUpdated(sessionId: $session, storeId: $store) { product { id } reason } }`
	ws.subscribe("1", sub, map[string]any{"session": "ss-alice", "store": store.ID})
	next := func() []string {
		t.Helper()
		msg, err := ws.next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var payload struct {
			Data struct {
				RecommendationsUpdated []recommendation `json:"recommendationsUpdated"`
			} `json:"data"`
		}
		if msg.Type != "next" || json.Unmarshal(msg.Payload, &payload) != nil {
			t.Fatalf("want a next message, got %+v", msg)
		}
		return recommendedIDs(payload.Data.RecommendationsUpdated)
	}
	// Without order history, a cold session gets what carts held most.
	if first := next(); !slices.Equal(first, p) {
		t.Fatalf("a cold session without order history got %v, want the live popular %v", first, p)
	}
	ts.sessionEvent(alice, "ss-alice", store.ID, "ADD_TO_CART", p[0], "")
	got := next()
	if !slices.Contains(got, p[1]) || !slices.Contains(got, p[2]) || slices.Contains(got, p[0]) {
		t.Fatalf("after adding %s: %v, want %s and %s but not the cart item", p[0], got, p[1], p[2])
	}
}
