package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/graph"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// The principals of the tenant-isolation matrix. Each tenant has a twin of
// the same role (customers A and B, retailers R1 and R2), so that every
// scoped operation is tried by its owner and by a peer who must not reach it.
const (
	pAnonymous = "anonymous"
	pBadKey    = "unknown key"
	pCustomerA = "customer A"
	pCustomerB = "customer B"
	pShopper   = "shopper"
	pAnyPicker = "shopper key bound to no shopper"
	pRetailer1 = "retailer R1"
	pRetailer2 = "retailer R2"
	pOps       = "ops"
	pService   = "service"
)

var isolationPrincipals = []string{pAnonymous, pBadKey, pCustomerA, pCustomerB, pShopper, pAnyPicker, pRetailer1, pRetailer2, pOps, pService}

// Identifiers of the tenants' private data. A principal's answers must never
// carry another tenant's: not in data, not in an error message.
const (
	isoUserA       = "u-iso-alice"
	isoUserB       = "u-iso-bob"
	isoShopperUser = "sh-iso"
	isoSessionA    = "ss-iso-alice"
	isoSessionB    = "ss-iso-bob"
	isoVictimOrder = "o-iso-victim"
	isoVictimUser  = "u-iso-victim"
	isoVictimCard  = "card-iso-victim"
	isoVictimDev   = "dev-iso-victim"
)

// isoAllowed is a rule's outcome for a principal that gets data.
const isoAllowed = ""

// isoRule maps every principal to isoAllowed or the extensions.code it must get.
type isoRule map[string]string

// isoPublic is the rule of storefront data: anyone, with a valid key or none.
func isoPublic() isoRule {
	r := isoRule{}
	for _, p := range isolationPrincipals {
		r[p] = isoAllowed
	}
	r[pBadKey] = aisle.EUNAUTHENTICATED // a key that is sent must be valid
	return r
}

// isoOnly allows the listed principals; callers without a key must
// authenticate, everyone else is FORBIDDEN.
func isoOnly(ps ...string) isoRule {
	r := isoRule{}
	for _, p := range isolationPrincipals {
		r[p] = aisle.EFORBIDDEN
	}
	r[pAnonymous], r[pBadKey] = aisle.EUNAUTHENTICATED, aisle.EUNAUTHENTICATED
	for _, p := range ps {
		r[p] = isoAllowed
	}
	return r
}

// but changes one principal's outcome, for a principal that passes the
// access check and is then refused for its input (e.g. a service key must
// name the user it acts for).
func (r isoRule) but(p, code string) isoRule {
	r[p] = code
	return r
}

// isolationCase is one operation of the matrix.
type isolationCase struct {
	name     string
	doc      string
	vars     map[string]any
	siblings []string // response keys of public fields beside the guarded ones: answered even when those are refused
	// nested names a guarded field below public ones (e.g. evidence inside
	// availability): refusing it nulls only that field, wherever it occurs.
	nested string
	rule   isoRule
}

// isolationWorld is the server and the tenants the matrix runs against.
type isolationWorld struct {
	ts             *testServer
	keys           map[string]string   // principal → API key; "" for anonymous
	store1, store2 testStore           // of retailers R1 and R2
	sessionProduct string              // a product of store1
	privateIDs     []string            // every tenant's private identifiers
	ownIDs         map[string][]string // principal → the private identifiers that are its own
	retailerIDs    map[string]string   // retailer principal → its retailer id
}

// TestTenantIsolation runs every root field (and the nested fields that reach
// other data) as every principal, over HTTP POST and GET and over the
// websocket, and checks each answer against the case's access rule: data
// for those allowed, the rule's code and no data for the others, and never
// another tenant's identifiers. Refused subscriptions must end and stay
// silent while their source changes. It fails when the schema has a field
// no case selects, so that a new field cannot ship without an access rule.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	w := newIsolationWorld(t)
	httpCases, wsCases := isolationCases(w)

	t.Run("every field has a rule", func(t *testing.T) {
		checkIsolationCoverage(t, append(slices.Clone(httpCases), wsCases...))
	})
	for _, transport := range []string{http.MethodPost, http.MethodGet} {
		t.Run(transport, func(t *testing.T) {
			for _, c := range httpCases {
				for _, p := range isolationPrincipals {
					t.Run(c.name+"/"+p, func(t *testing.T) {
						t.Parallel()
						w.checkHTTP(t, transport, c, p)
					})
				}
			}
		})
	}
	t.Run("websocket operations", func(t *testing.T) { w.checkWebsocketOperations(t, httpCases, false) })
	t.Run("websocket operations, key on the upgrade", func(t *testing.T) { w.checkWebsocketOperations(t, httpCases, true) })
	t.Run("websocket subscriptions", func(t *testing.T) { w.checkSubscriptions(t, wsCases) })
	t.Run("session claimed under a peer's subscription", w.checkClaimedSession)
}

func newIsolationWorld(t *testing.T) *isolationWorld {
	t.Helper()
	ts := startServer(t, "--fraud-model-poll", "100ms")
	w := &isolationWorld{ts: ts}
	stores := ts.stores(100, 2)
	w.store1 = stores[0]
	for _, s := range stores {
		if s.RetailerID != w.store1.RetailerID {
			w.store2 = s
			break
		}
	}
	if w.store2.ID == "" {
		t.Fatal("the demo catalog has a single retailer")
	}
	w.sessionProduct = w.store1.Products[0]
	w.keys = map[string]string{
		pAnonymous: "",
		pBadKey:    "aisle_not-a-real-key",
		pCustomerA: ts.createKey(aisle.RoleCustomer, "", isoUserA),
		pCustomerB: ts.createKey(aisle.RoleCustomer, "", isoUserB),
		pShopper:   ts.createKey(aisle.RoleShopper, "", isoShopperUser),
		pAnyPicker: ts.createKey(aisle.RoleShopper, "", ""),
		pRetailer1: ts.createKey(aisle.RoleRetailer, w.store1.RetailerID, ""),
		pRetailer2: ts.createKey(aisle.RoleRetailer, w.store2.RetailerID, ""),
		pOps:       ts.createKey(aisle.RoleOps, "", ""),
		pService:   ts.createKey(aisle.RoleService, "", ""),
	}
	w.privateIDs = []string{isoUserA, isoUserB, isoShopperUser, isoVictimUser, isoVictimCard, isoVictimDev}
	w.ownIDs = map[string][]string{
		pCustomerA: {isoUserA},
		pCustomerB: {isoUserB},
		pShopper:   {isoShopperUser},
		pService:   w.privateIDs, // backend services act for everyone
	}
	w.retailerIDs = map[string]string{pRetailer1: w.store1.RetailerID, pRetailer2: w.store2.RetailerID}

	// Each customer owns a session; wait until the stream workers have
	// applied both, so that the peer is refused rather than served an
	// unclaimed session.
	ts.sessionEvent(w.keys[pCustomerA], isoSessionA, w.store1.ID, "VIEW", w.sessionProduct, "")
	ts.sessionEvent(w.keys[pCustomerB], isoSessionB, w.store1.ID, "VIEW", w.sessionProduct, "")
	fs := ts.serverFeatures()
	eventually(t, 15*time.Second, func() string {
		for session, owner := range map[string]string{isoSessionA: isoUserA, isoSessionB: isoUserB} {
			if st, err := fs.Session(context.Background(), session); err != nil || st.Owner != owner {
				return fmt.Sprintf("session %s: owner %q, %v; want %s", session, st.Owner, err, owner)
			}
		}
		return ""
	})

	// A product R1 created through the API (so R1 may replace it) and one
	// a service key created (only service keys may replace it).
	for key, id := range map[string]string{w.keys[pRetailer1]: isoR1Product, w.keys[pService]: isoSharedProduct} {
		var out struct{ UpsertProducts struct{ EventIds []string } }
		ts.mustData(key, isoUpsertProducts, map[string]any{"id": id}, &out)
	}
	eventually(t, 15*time.Second, func() string {
		if n := ts.countRows(`SELECT count(*) FROM products WHERE id IN ($1, $2)`, isoR1Product, isoSharedProduct); n != 2 {
			return fmt.Sprintf("%d of the two API-created products applied", n)
		}
		return ""
	})

	// A fraud model, so that assessOrder, orderRisk and riskAlerts answer
	// with data for those allowed; then one assessed order to read.
	activateIsolationFraudModel(t, ts)
	victim := orderInput(isoVictimOrder, isoVictimUser, w.store1.ID, w.sessionProduct, isoVictimCard, isoVictimDev, 4321)
	eventually(t, 15*time.Second, func() string {
		resp := ts.query(w.keys[pService], assessOrderMutation, map[string]any{"in": victim})
		if len(resp.Errors) > 0 {
			return fmt.Sprintf("assessOrder: %+v (the model is not serving yet?)", resp.Errors)
		}
		return ""
	})
	return w
}

// activateIsolationFraudModel stores and activates a one-feature model: the
// matrix needs assessments to exist, not good ones.
func activateIsolationFraudModel(t *testing.T, ts *testServer) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, ts.main.Config.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	model := models.FraudModel{Features: []string{"amount"}, Logistic: models.LogisticModel{Means: []float64{40}, Stds: []float64{20}, Weights: []float64{0.5}, Bias: -1}}
	version, err := db.SaveFraudModel(ctx, postgres.FraudModelVersion{WindowStart: now.Add(-time.Hour), WindowEnd: now, Model: model, Metrics: map[string]float64{"rows": 0}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ActivateFraudModel(ctx, version); err != nil {
		t.Fatal(err)
	}
}

const (
	isoProductFields = `id name category brand size gtin imageUrl priceCents`
	isoStoreFields   = `id name address location { lat lon } timezone retailer { id name }
	  products(first: 2) { edges { cursor node { ` + isoProductFields + ` availability { ` + isoAvailabilityFields + ` } } }
	    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }`
	isoAvailabilityFields = `storeId productId carried probability status updatedAt`
	isoRecommendation     = `product { id name category } score reason`
	isoAssessmentFields   = `orderId score decision modelVersion assessedAt fraud reasons { feature description value contribution }`
	isoReceiptFields      = `eventId topic partition offset eventIds`

	isoR1Product      = "p-iso-r1"
	isoSharedProduct  = "p-iso-shared"
	isoUpsertProducts = `mutation($id: ID!) { upsertProducts(input: {products: [{id: $id, name: "ZZ Iso Product", category: "Iso"}]}) { eventIds } }`
)

// isolationCases is the matrix: HTTP operations, then subscriptions.
func isolationCases(w *isolationWorld) (httpCases, wsCases []isolationCase) {
	s1, s2, p := w.store1.ID, w.store2.ID, w.sessionProduct
	sessionVars := func(session string) map[string]any { return map[string]any{"session": session, "store": s1} }
	const recordEvent = `mutation($session: ID!, $store: ID!, $product: ID, $user: ID) {
	  recordSessionEvent(input: {sessionId: $session, storeId: $store, type: VIEW, productId: $product, userId: $user}) { ` + isoReceiptFields + ` } }`
	const inventory = `mutation($s: ID!, $p: ID!) { updateInventory(input: {storeId: $s, productId: $p, quantity: 7}) { ` + isoReceiptFields + ` } }`
	const pick = `mutation($s: ID!, $p: ID!, $shopper: ID) {
	  reportPick(input: {storeId: $s, productId: $p, orderId: "o-iso-pick", outcome: FOUND, shopperId: $shopper}) { ` + isoReceiptFields + ` } }`
	const assortment = `mutation($s: ID!, $p: ID!) { upsertAssortment(input: {storeId: $s, items: [{productId: $p, priceCents: 199}]}) { eventIds } }`
	const removal = `mutation($s: ID!, $p: ID!) { removeAssortment(input: {storeId: $s, productIds: [$p]}) { eventIds } }`
	const picks = `mutation($s: ID!, $p: ID!, $shopper: ID) {
	  reportPicks(input: {storeId: $s, orderId: "o-iso-picks", shopperId: $shopper, picks: [{productId: $p, outcome: FOUND}]}) { eventIds } }`
	const evidence = `query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { productId
	  evidence { found notFound lastPickAt lastPickFound feedQuantity feedAt countedAt levelSince prior signals } } }`
	const recommendations = `query($session: ID!, $store: ID!) { recommendations(sessionId: $session, storeId: $store) { ` + isoRecommendation + ` } }`

	httpCases = []isolationCase{
		{name: "stores with retailers and products",
			doc:  `{ stores(first: 3) { edges { cursor node { ` + isoStoreFields + ` } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
			rule: isoPublic()},
		{name: "store of R1", doc: `query($id: ID!) { store(id: $id) { ` + isoStoreFields + ` } }`, vars: map[string]any{"id": s1}, rule: isoPublic()},
		{name: "store of R2", doc: `query($id: ID!) { store(id: $id) { ` + isoStoreFields + ` } }`, vars: map[string]any{"id": s2}, rule: isoPublic()},
		{name: "product", doc: `query($id: ID!) { product(id: $id) { ` + isoProductFields + ` availability { status } } }`,
			vars: map[string]any{"id": p}, rule: isoPublic()},
		{name: "products by ids", doc: `query($ids: [ID!]!) { products(ids: $ids) { ` + isoProductFields + ` } }`,
			vars: map[string]any{"ids": w.store2.Products}, rule: isoPublic()},
		{name: "replacements at R2's store", doc: `query($s: ID!, $p: ID!) { replacements(storeId: $s, productId: $p, first: 3) { product { ` + isoProductFields + ` availability { status } } score reason } }`,
			vars: map[string]any{"s": s2, "p": w.store2.Products[0]}, rule: isoPublic()},
		{name: "categories", doc: `{ categories { id name productCount } }`, rule: isoPublic()},
		{name: "store of R2 listing one category", doc: `query($id: ID!) { store(id: $id) { products(first: 5, category: "fresh-fruit") { edges { node { id priceCents availability { carried status } } } } } }`,
			vars: map[string]any{"id": s2}, rule: isoPublic()},
		{name: "availability at R1's store", doc: `query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { ` + isoAvailabilityFields + ` } }`,
			vars: map[string]any{"s": s1, "p": w.store1.Products}, rule: isoPublic()},
		{name: "availability at R2's store", doc: `query($s: ID!, $p: [ID!]!) { availability(storeId: $s, productIds: $p) { ` + isoAvailabilityFields + ` } }`,
			vars: map[string]any{"s": s2, "p": w.store2.Products}, rule: isoPublic()},

		{name: "atRisk at R1's store", doc: `query($id: ID!) { store(id: $id) { atRisk(first: 3) { edges { cursor node { ` + isoAvailabilityFields + ` } }
		  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`, vars: map[string]any{"id": s1}, rule: isoPublic()},
		{name: "evidence at R1's store", doc: evidence, vars: map[string]any{"s": s1, "p": w.store1.Products[:2]},
			nested: "evidence", rule: isoOnly(pRetailer1, pOps, pService)},
		{name: "evidence at R2's store", doc: evidence, vars: map[string]any{"s": s2, "p": w.store2.Products[:2]},
			nested: "evidence", rule: isoOnly(pRetailer2, pOps, pService)},

		{name: "recommendations of A's session", doc: recommendations, vars: sessionVars(isoSessionA), rule: isoOnly(pCustomerA, pService)},
		{name: "recommendations of B's session", doc: recommendations, vars: sessionVars(isoSessionB), rule: isoOnly(pCustomerB, pService)},
		{name: "recommendations of a session nobody has used", doc: recommendations, vars: sessionVars("ss-iso-nobodys"),
			rule: isoOnly(pCustomerA, pCustomerB, pService)},
		// recommendations is non-null, so refusing either list nulls the
		// whole answer: a customer loses its own list too.
		{name: "recommendations of A's and B's sessions at once",
			doc: `query($a: ID!, $b: ID!, $store: ID!) {
			  a: recommendations(sessionId: $a, storeId: $store) { product { id } }
			  b: recommendations(sessionId: $b, storeId: $store) { product { id } } }`,
			vars: map[string]any{"a": isoSessionA, "b": isoSessionB, "store": s1}, rule: isoOnly(pService)},

		{name: "orderRisk", doc: `query($o: ID!) { orderRisk(orderId: $o) { ` + isoAssessmentFields + ` } }`,
			vars: map[string]any{"o": isoVictimOrder}, rule: isoOnly(pOps, pService)},
		{name: "orderRisk selecting only __typename", doc: `query($o: ID!) { orderRisk(orderId: $o) { __typename } }`,
			vars: map[string]any{"o": isoVictimOrder}, rule: isoOnly(pOps, pService)},
		{name: "orderRisk reasons beside public stores",
			doc:      `query($o: ID!) { stores(first: 1) { edges { node { id } } } r: orderRisk(orderId: $o) { reasons { description value } } }`,
			vars:     map[string]any{"o": isoVictimOrder},
			siblings: []string{"stores"}, rule: isoOnly(pOps, pService)},

		{name: "updateInventory at R1's store", doc: inventory, vars: map[string]any{"s": s1, "p": w.store1.Products[1]}, rule: isoOnly(pRetailer1, pService)},
		{name: "updateInventory at R2's store", doc: inventory, vars: map[string]any{"s": s2, "p": w.store2.Products[1]}, rule: isoOnly(pRetailer2, pService)},
		{name: "reportPick as the key's shopper", doc: pick, vars: map[string]any{"s": s1, "p": p, "shopper": isoShopperUser}, rule: isoOnly(pShopper, pAnyPicker, pService)},
		{name: "reportPick as another shopper", doc: pick, vars: map[string]any{"s": s1, "p": p, "shopper": "sh-iso-other"}, rule: isoOnly(pAnyPicker, pService)},
		{name: "reportPick naming no shopper", doc: pick, vars: map[string]any{"s": s1, "p": p},
			rule: isoOnly(pShopper).but(pAnyPicker, aisle.EINVALID).but(pService, aisle.EINVALID)},
		{name: "recordSessionEvent in A's session", doc: recordEvent, vars: map[string]any{"session": isoSessionA, "store": s1, "product": p},
			rule: isoOnly(pCustomerA, pService).but(pService, aisle.EINVALID)},
		{name: "recordSessionEvent in B's session", doc: recordEvent, vars: map[string]any{"session": isoSessionB, "store": s1, "product": p},
			rule: isoOnly(pCustomerB, pService).but(pService, aisle.EINVALID)},
		{name: "recordSessionEvent in A's session naming A", doc: recordEvent, vars: map[string]any{"session": isoSessionA, "store": s1, "product": p, "user": isoUserA},
			rule: isoOnly(pCustomerA, pService)},
		{name: "recordSessionEvent naming B in a new session", doc: recordEvent, vars: map[string]any{"session": "ss-iso-named-bob", "store": s1, "product": p, "user": isoUserB},
			rule: isoOnly(pCustomerB, pService)},
		{name: "labelOrder", doc: `mutation($o: ID!) { labelOrder(orderId: $o, fraud: true) { ` + isoReceiptFields + ` } }`,
			vars: map[string]any{"o": isoVictimOrder}, rule: isoOnly(pOps, pService)},
		{name: "upsertProducts of R1's product", doc: isoUpsertProducts, vars: map[string]any{"id": isoR1Product}, rule: isoOnly(pRetailer1, pService)},
		{name: "upsertProducts of a service's product", doc: isoUpsertProducts, vars: map[string]any{"id": isoSharedProduct}, rule: isoOnly(pService)},
		{name: "upsertAssortment at R1's store", doc: assortment, vars: map[string]any{"s": s1, "p": isoSharedProduct}, rule: isoOnly(pRetailer1, pService)},
		{name: "upsertAssortment at R2's store", doc: assortment, vars: map[string]any{"s": s2, "p": isoSharedProduct}, rule: isoOnly(pRetailer2, pService)},
		{name: "removeAssortment at R1's store", doc: removal, vars: map[string]any{"s": s1, "p": isoSharedProduct}, rule: isoOnly(pRetailer1, pService)},
		{name: "removeAssortment at R2's store", doc: removal, vars: map[string]any{"s": s2, "p": isoSharedProduct}, rule: isoOnly(pRetailer2, pService)},
		{name: "reportPicks as the key's shopper", doc: picks, vars: map[string]any{"s": s1, "p": p, "shopper": isoShopperUser}, rule: isoOnly(pShopper, pAnyPicker, pService)},
		{name: "reportPicks as another shopper", doc: picks, vars: map[string]any{"s": s1, "p": p, "shopper": "sh-iso-other"}, rule: isoOnly(pAnyPicker, pService)},
		{name: "pipelineStatus", doc: `{ pipelineStatus { measuredAt consumerGroup topics { topic eventsPerSecond lag newestAppliedAt newestAppliedAgeSeconds } } }`, rule: isoOnly(pOps, pService)},
		{name: "assessOrder", doc: `mutation($in: AssessOrderInput!) { assessOrder(input: $in) { ` + isoAssessmentFields + ` } }`,
			vars: map[string]any{"in": orderInput("o-iso-assess", isoVictimUser, s1, p, isoVictimCard, isoVictimDev, 1200)}, rule: isoOnly(pService)},
	}

	const recommendationsUpdated = `subscription($session: ID!, $store: ID!) { recommendationsUpdated(sessionId: $session, storeId: $store) { ` + isoRecommendation + ` } }`
	wsCases = []isolationCase{
		{name: "availabilityChanged at R1's store", doc: `subscription($s: ID!, $p: [ID!]) { availabilityChanged(storeId: $s, productIds: $p) { ` + isoAvailabilityFields + ` } }`,
			vars: map[string]any{"s": s1, "p": []string{p}}, rule: isoPublic()},
		{name: "recommendationsUpdated of A's session", doc: recommendationsUpdated, vars: sessionVars(isoSessionA), rule: isoOnly(pCustomerA, pService)},
		{name: "recommendationsUpdated of B's session", doc: recommendationsUpdated, vars: sessionVars(isoSessionB), rule: isoOnly(pCustomerB, pService)},
		{name: "statusAlerts at R1's store", doc: `subscription($s: [ID!]!) { statusAlerts(storeIds: $s) { previousStatus availability { ` + isoAvailabilityFields + ` } } }`,
			vars: map[string]any{"s": []string{s1}}, rule: isoOnly(pRetailer1, pService)},
		{name: "riskAlerts", doc: `subscription { riskAlerts(minScore: 0) { ` + isoAssessmentFields + ` } }`, rule: isoOnly(pOps, pService)},
	}
	return httpCases, wsCases
}

// checkIsolationCoverage fails for every field of the served schema's object
// types (root fields and nested ones alike) that no case selects, and for a
// case whose rule leaves a principal out.
func checkIsolationCoverage(t *testing.T, cases []isolationCase) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	selected := map[string]bool{}
	for _, c := range cases {
		doc, errs := gqlparser.LoadQuery(schema, c.doc)
		if len(errs) > 0 {
			t.Errorf("case %q: invalid document: %v", c.name, errs)
			continue
		}
		for _, op := range doc.Operations {
			isoMarkSelected(op.SelectionSet, doc.Fragments, selected)
		}
		for _, p := range isolationPrincipals {
			if _, ok := c.rule[p]; !ok {
				t.Errorf("case %q has no outcome for %s", c.name, p)
			}
		}
	}
	var missing []string
	for name, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if !strings.HasPrefix(f.Name, "__") && !selected[name+"."+f.Name] {
				missing = append(missing, name+"."+f.Name)
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no isolation case selects %s: add one to isolationCases with its access rule", m)
	}
}

func isoMarkSelected(set ast.SelectionSet, fragments ast.FragmentDefinitionList, selected map[string]bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.ObjectDefinition != nil {
				selected[s.ObjectDefinition.Name+"."+s.Name] = true
			}
			isoMarkSelected(s.SelectionSet, fragments, selected)
		case *ast.InlineFragment:
			isoMarkSelected(s.SelectionSet, fragments, selected)
		case *ast.FragmentSpread:
			if f := fragments.ForName(s.Name); f != nil {
				isoMarkSelected(f.SelectionSet, fragments, selected)
			}
		}
	}
}

// server is the world's server reporting to t, so that a subtest's
// failures are its own.
func (w *isolationWorld) server(t testing.TB) *testServer {
	c := *w.ts
	c.t = t
	return &c
}

// checkHTTP runs one case as one principal over HTTP POST or GET. GET
// runs queries only: a mutation must not run, whoever sends it.
func (w *isolationWorld) checkHTTP(t *testing.T, method string, c isolationCase, p string) {
	ts := w.server(t)
	var status int
	var resp gqlResponse
	if method == http.MethodGet {
		status, resp = w.get(t, w.keys[p], c.doc, c.vars)
	} else {
		status, resp = ts.post(w.keys[p], c.doc, c.vars)
	}
	w.checkNoLeak(t, c, p, resp)
	if p == pBadKey {
		// The whole request is refused before execution: HTTP 401, no data at all.
		if status != http.StatusUnauthorized || resp.Data != nil || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != aisle.EUNAUTHENTICATED {
			t.Errorf("HTTP %d %+v (data %s), want 401, one UNAUTHENTICATED error and no data", status, resp.Errors, resp.Data)
		}
		return
	}
	if method == http.MethodGet && strings.HasPrefix(strings.TrimSpace(c.doc), "mutation") {
		if status != http.StatusMethodNotAllowed || (resp.Data != nil && string(resp.Data) != "null") || len(resp.Errors) == 0 {
			t.Errorf("a mutation over GET: HTTP %d %+v (data %s), want 405, an error and no data", status, resp.Errors, resp.Data)
		}
		return
	}
	if status != http.StatusOK {
		t.Errorf("HTTP %d, want 200", status)
	}
	isoCheckAnswer(t, c, c.rule[p], resp)
}

// get sends a GraphQL query as GET /graphql?query=…&variables=….
func (w *isolationWorld) get(t *testing.T, key, doc string, vars map[string]any) (int, gqlResponse) {
	t.Helper()
	params := url.Values{"query": {doc}}
	if vars != nil {
		v, err := json.Marshal(vars)
		if err != nil {
			t.Fatal(err)
		}
		params.Set("variables", string(v))
	}
	req, err := http.NewRequest(http.MethodGet, w.ts.url+"/graphql?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /graphql: %v", err)
	}
	defer res.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("HTTP %d, body is not GraphQL JSON: %v", res.StatusCode, err)
	}
	return res.StatusCode, out
}

// checkWebsocketOperations runs every query and mutation case over one
// websocket per principal: the connection's principal comes from
// connection_init, or from the upgrade request's header when the init
// names none, and must meet the same rules.
func (w *isolationWorld) checkWebsocketOperations(t *testing.T, cases []isolationCase, keyOnUpgrade bool) {
	m := w.dialAll(t, isolationPrincipals, keyOnUpgrade)
	id := func(i int) string { return fmt.Sprint("op-", i) }
	// One operation at a time on each connection, so that a cap on
	// operations per connection does not refuse the later cases.
	for i, c := range cases {
		for _, conn := range m.conns {
			conn.subscribe(id(i), c.doc, c.vars)
		}
		ended := func() bool {
			for p := range m.conns {
				msgs := m.got[p][id(i)]
				if len(msgs) == 0 || (msgs[len(msgs)-1].Type != "complete" && msgs[len(msgs)-1].Type != "error") {
					return false
				}
			}
			return true
		}
		if !m.gather(10*time.Second, ended) {
			t.Errorf("%s did not end within 10s on every connection", c.name)
		}
	}
	for _, p := range isolationPrincipals {
		if m.conns[p] == nil {
			continue // the unknown key: its connection was refused (dialAll checked)
		}
		for i, c := range cases {
			msgs := m.got[p][id(i)]
			t.Run(c.name+"/"+p, func(t *testing.T) {
				if len(msgs) == 0 {
					t.Fatal("no answer")
				}
				data, errs, ok := isoWSResult(msgs[0])
				if !ok {
					t.Fatalf("first message %s %s, want a result", msgs[0].Type, msgs[0].Payload)
				}
				resp := gqlResponse{Data: data, Errors: errs}
				w.checkNoLeak(t, c, p, resp)
				isoCheckAnswer(t, c, c.rule[p], resp)
			})
		}
	}
}

// isoCheckAnswer checks an executed operation's response against want:
// isoAllowed wants data in every guarded field and no errors; a code wants
// errors of that code only, at guarded fields, with those fields null, and
// public siblings answered all the same.
func isoCheckAnswer(t *testing.T, c isolationCase, want string, resp gqlResponse) {
	t.Helper()
	var data map[string]json.RawMessage
	if len(resp.Data) > 0 && string(resp.Data) != "null" {
		if err := json.Unmarshal(resp.Data, &data); err != nil {
			t.Fatalf("data %s: %v", resp.Data, err)
		}
	}
	if c.nested != "" {
		isoCheckNested(t, c, want, resp)
		return
	}
	guarded := isoResponseKeys(t, c.doc)
	guarded = slices.DeleteFunc(guarded, func(k string) bool { return slices.Contains(c.siblings, k) })
	for _, k := range c.siblings {
		if v, ok := data[k]; !ok || string(v) == "null" {
			t.Errorf("public sibling %s = %s, want it answered (errors %+v)", k, v, resp.Errors)
		}
	}
	if want == isoAllowed {
		if len(resp.Errors) > 0 {
			t.Errorf("errors %+v, want data", resp.Errors)
		}
		for _, k := range guarded {
			if v, ok := data[k]; !ok || string(v) == "null" {
				t.Errorf("data.%s = %s, want data", k, v)
			}
		}
		return
	}
	if len(resp.Errors) == 0 {
		t.Errorf("no error (data %s), want %s", resp.Data, want)
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] != want {
			t.Errorf("error %q code %v, want %s", e.Message, e.Extensions["code"], want)
		}
		if len(e.Path) == 0 || !slices.Contains(guarded, fmt.Sprint(e.Path[0])) {
			t.Errorf("error %q at path %v, want it at a guarded field %v", e.Message, e.Path, guarded)
		}
	}
	for _, k := range guarded {
		if v, ok := data[k]; ok && string(v) != "null" {
			t.Errorf("refused, yet data.%s = %s", k, v)
		}
	}
}

// isoCheckNested checks an answer whose guarded field is c.nested, below
// public fields: allowed, every occurrence of it carries data; refused, each
// is null with an error of the rule's code at its path, and the public
// fields around it are answered.
func isoCheckNested(t *testing.T, c isolationCase, want string, resp gqlResponse) {
	t.Helper()
	var data any
	if err := json.Unmarshal(resp.Data, &data); err != nil || data == nil {
		t.Fatalf("data %s (%v), want the public fields answered; errors %+v", resp.Data, err, resp.Errors)
	}
	var values []any
	isoCollect(data, c.nested, &values)
	if len(values) == 0 {
		t.Fatalf("data %s has no %s to check", resp.Data, c.nested)
	}
	if want == isoAllowed {
		if len(resp.Errors) > 0 {
			t.Errorf("errors %+v, want data", resp.Errors)
		}
		for _, v := range values {
			if v == nil {
				t.Errorf("a %s is null, want data (data %s)", c.nested, resp.Data)
			}
		}
		return
	}
	for _, v := range values {
		if v != nil {
			t.Errorf("refused, yet a %s = %v", c.nested, v)
		}
	}
	if len(resp.Errors) != len(values) {
		t.Errorf("%d errors for %d refused %s: %+v", len(resp.Errors), len(values), c.nested, resp.Errors)
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] != want {
			t.Errorf("error %q code %v, want %s", e.Message, e.Extensions["code"], want)
		}
		if len(e.Path) == 0 || fmt.Sprint(e.Path[len(e.Path)-1]) != c.nested {
			t.Errorf("error %q at path %v, want it at a %s", e.Message, e.Path, c.nested)
		}
	}
}

// isoCollect appends the value of every key named key in v, at any depth.
func isoCollect(v any, key string, out *[]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == key {
				*out = append(*out, x)
			} else {
				isoCollect(x, key, out)
			}
		}
	case []any:
		for _, x := range v {
			isoCollect(x, key, out)
		}
	}
}

// isoResponseKeys returns the response keys (aliases or names) of the
// operation's top-level fields.
func isoResponseKeys(t *testing.T, doc string) []string {
	t.Helper()
	parsed, err := gqlparser.LoadQuery(graph.NewExecutableSchema(graph.Config{}).Schema(), doc)
	if err != nil {
		t.Fatalf("parse %q: %v", doc, err)
	}
	var keys []string
	for _, sel := range parsed.Operations[0].SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			keys = append(keys, f.Alias)
		}
	}
	return keys
}

// checkNoLeak fails when an answer carries an identifier of another tenant:
// private identifiers anywhere in it, and in error messages also the other
// retailers' ids. An identifier the caller sent itself is no leak.
func (w *isolationWorld) checkNoLeak(t *testing.T, c isolationCase, p string, resp gqlResponse) {
	t.Helper()
	sent, err := json.Marshal(c.vars)
	if err != nil {
		t.Fatal(err)
	}
	request := c.doc + string(sent)
	body, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range w.privateIDs {
		if !slices.Contains(w.ownIDs[p], id) && !strings.Contains(request, id) && strings.Contains(string(body), id) {
			t.Errorf("the answer names %s, private to another tenant: %s", id, body)
		}
	}
	for _, e := range resp.Errors {
		for owner, id := range w.retailerIDs {
			if owner != p && p != pService && !strings.Contains(request, id) && strings.Contains(e.Message, id) {
				t.Errorf("error %q names %s's retailer %s", e.Message, owner, id)
			}
		}
	}
}

// isoWSMatrix is one websocket connection per principal and the messages each
// has received, by subscription id.
type isoWSMatrix struct {
	conns  map[string]*wsClient
	got    map[string]map[string][]wsMessage
	closed map[string]error
}

// dialAll connects every principal, with its key in connection_init, or
// on the upgrade request when onUpgrade is set.
func (w *isolationWorld) dialAll(t *testing.T, principals []string, onUpgrade bool) *isoWSMatrix {
	t.Helper()
	m := &isoWSMatrix{conns: map[string]*wsClient{}, got: map[string]map[string][]wsMessage{}, closed: map[string]error{}}
	for _, p := range principals {
		init := map[string]any{}
		var header http.Header
		if key := w.keys[p]; key != "" && onUpgrade {
			header = http.Header{"Authorization": {"Bearer " + key}}
		} else if key != "" {
			init["Authorization"] = "Bearer " + key
		}
		c, err := w.server(t).dialWSWithHeader(header, init)
		if p == pBadKey {
			if err == nil {
				t.Errorf("%s: the connection was accepted, want it refused", p)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: dial: %v", p, err)
		}
		m.conns[p] = c
		m.got[p] = map[string][]wsMessage{}
	}
	return m
}

// gather files the messages that have arrived until done reports true or
// within has passed; it reports whether done did.
func (m *isoWSMatrix) gather(within time.Duration, done func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		for p, c := range m.conns {
			if m.closed[p] != nil {
				continue
			}
		drain:
			for {
				select {
				case msg, ok := <-c.messages:
					if !ok {
						m.closed[p] = fmt.Errorf("connection closed: %w", c.readErr)
						break drain
					}
					m.got[p][msg.ID] = append(m.got[p][msg.ID], msg)
				default:
					break drain
				}
			}
		}
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isoWSResult decodes a subscription message into its data and errors: a next
// message carries a result, an error message a list of errors.
func isoWSResult(msg wsMessage) (data json.RawMessage, errs []gqlError, ok bool) {
	switch msg.Type {
	case "next":
		var r gqlResponse
		if json.Unmarshal(msg.Payload, &r) != nil {
			return nil, nil, false
		}
		return r.Data, r.Errors, true
	case "error":
		if json.Unmarshal(msg.Payload, &errs) != nil {
			return nil, nil, false
		}
		return nil, errs, true
	}
	return nil, nil, false
}

// isoDelivered reports whether msgs hold a result with data and no errors.
func isoDelivered(msgs []wsMessage) bool {
	for _, msg := range msgs {
		if data, errs, ok := isoWSResult(msg); ok && len(errs) == 0 && len(data) > 0 && string(data) != "null" {
			return true
		}
	}
	return false
}

// checkSubscriptions subscribes every principal to every subscription case,
// then makes each subscription's source change. Those allowed must deliver;
// the others must get one error with their rule's code, then at most a
// complete, and nothing from the events that follow.
func (w *isolationWorld) checkSubscriptions(t *testing.T, cases []isolationCase) {
	m := w.dialAll(t, isolationPrincipals, false)
	id := func(i int) string { return fmt.Sprint("sub-", i) }
	for _, conn := range m.conns {
		for i, c := range cases {
			conn.subscribe(id(i), c.doc, c.vars)
		}
	}
	refusedAnswered := func() bool {
		for p := range m.conns {
			for i, c := range cases {
				if c.rule[p] != isoAllowed && len(m.got[p][id(i)]) == 0 {
					return false
				}
			}
		}
		return true
	}
	if !m.gather(15*time.Second, refusedAnswered) {
		t.Errorf("not every refused subscription was answered within 15s")
	}

	// Change every subscription's source: availability at store1, both
	// sessions, and a new assessment for riskAlerts. A subscription has
	// no first message to say it is in place, so the changes repeat until
	// every allowed subscription has delivered.
	ts := w.server(t)
	change := func(round int) {
		ts.mustData(w.keys[pService], `mutation($s: ID!, $p: ID!, $q: Int!) { updateInventory(input: {storeId: $s, productId: $p, quantity: $q}) { eventId } }`,
			map[string]any{"s": w.store1.ID, "p": w.sessionProduct, "q": round % 2 * 50}, &struct{}{})
		// statusAlerts needs a change of status: a product no shopper picks.
		ts.mustData(w.keys[pService], `mutation($s: ID!, $p: ID!, $q: Int!) { updateInventory(input: {storeId: $s, productId: $p, quantity: $q}) { eventId } }`,
			map[string]any{"s": w.store1.ID, "p": w.store1.Products[1], "q": round % 2 * 50}, &struct{}{})
		ts.sessionEvent(w.keys[pCustomerA], isoSessionA, w.store1.ID, "ADD_TO_CART", w.sessionProduct, "")
		ts.sessionEvent(w.keys[pCustomerB], isoSessionB, w.store1.ID, "ADD_TO_CART", w.sessionProduct, "")
		ts.assess(w.keys[pService], orderInput(fmt.Sprint("o-iso-alert-", round), isoVictimUser, w.store1.ID, w.sessionProduct, isoVictimCard, isoVictimDev, 9900))
	}
	allowedDelivered := func() bool {
		for p := range m.conns {
			for i, c := range cases {
				if c.rule[p] == isoAllowed && !isoDelivered(m.got[p][id(i)]) {
					return false
				}
			}
		}
		return true
	}
	done := false
	for round := 0; round < 10 && !done; round++ {
		change(round)
		done = m.gather(2*time.Second, allowedDelivered)
	}
	if !done {
		t.Errorf("not every allowed subscription delivered after 10 rounds of changes")
	}
	// Every allowed subscriber has seen the events by now; give the refused
	// ones a moment more in which anything sent to them would arrive.
	m.gather(500*time.Millisecond, func() bool { return false })

	for _, p := range isolationPrincipals {
		if err := m.closed[p]; err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if m.conns[p] == nil {
			continue // the unknown key: its connection was refused (dialAll checked)
		}
		for i, c := range cases {
			msgs := m.got[p][id(i)]
			t.Run(c.name+"/"+p, func(t *testing.T) {
				body, err := json.Marshal(msgs)
				if err != nil {
					t.Fatal(err)
				}
				all := gqlResponse{Data: body}
				for _, msg := range msgs {
					_, errs, _ := isoWSResult(msg)
					all.Errors = append(all.Errors, errs...)
				}
				w.checkNoLeak(t, c, p, all)
				if want := c.rule[p]; want != isoAllowed {
					isoCheckRefusedSubscription(t, msgs, want)
				} else if !isoDelivered(msgs) {
					t.Errorf("nothing delivered: %+v", msgs)
				}
			})
		}
	}
}

// isoCheckRefusedSubscription wants the subscription ended by its refusal:
// either an error message, or one result with errors of code want and no
// data followed by a complete; nothing else, whatever the events since.
func isoCheckRefusedSubscription(t *testing.T, msgs []wsMessage, want string) {
	if len(msgs) == 0 {
		t.Fatalf("no answer, want a %s error", want)
	}
	data, errs, ok := isoWSResult(msgs[0])
	if !ok || len(errs) == 0 || (len(data) > 0 && string(data) != "null") {
		t.Errorf("first message %s %s, want a %s error and no data", msgs[0].Type, msgs[0].Payload, want)
	}
	for _, e := range errs {
		if e.Extensions["code"] != want {
			t.Errorf("error %q code %v, want %s", e.Message, e.Extensions["code"], want)
		}
	}
	rest := msgs[1:]
	if msgs[0].Type == "next" {
		if len(rest) == 0 || rest[0].Type != "complete" {
			t.Errorf("the refusal did not end the subscription: %+v", msgs)
			return
		}
		rest = rest[1:]
	}
	for _, msg := range rest {
		t.Errorf("after the refusal ended the subscription: %s %s", msg.Type, msg.Payload)
	}
}

// checkClaimedSession: customer B may watch a session nobody has used yet
// (it is nobody's), but once customer A claims it with its first event, B's
// subscription must not deliver A's recommendations.
func (w *isolationWorld) checkClaimedSession(t *testing.T) {
	const session = "ss-iso-unclaimed"
	m := w.dialAll(t, []string{pCustomerB, pService}, false)
	const doc = `subscription($session: ID!, $store: ID!) { recommendationsUpdated(sessionId: $session, storeId: $store) { product { id } } }`
	for _, conn := range m.conns {
		conn.subscribe("claimed", doc, map[string]any{"session": session, "store": w.store1.ID})
	}
	if !m.gather(15*time.Second, func() bool {
		return isoDelivered(m.got[pCustomerB]["claimed"]) && isoDelivered(m.got[pService]["claimed"])
	}) {
		t.Fatalf("an unclaimed session's first list did not arrive: %+v", m.got)
	}
	ts := w.server(t)
	ts.sessionEvent(w.keys[pCustomerA], session, w.store1.ID, "VIEW", w.sessionProduct, "")
	if !m.gather(20*time.Second, func() bool { return len(m.got[pService]["claimed"]) >= 2 }) {
		t.Fatalf("the service's subscription saw no change of the session within 20s: %+v", m.got[pService])
	}
	m.gather(500*time.Millisecond, func() bool { return false })
	for _, msg := range m.got[pCustomerB]["claimed"][1:] {
		if msg.Type != "complete" {
			t.Errorf("B's subscription after A claimed the session: %s %s, want nothing but complete", msg.Type, msg.Payload)
		}
	}
	resp := ts.query(w.keys[pCustomerB], recommendationsQuery, map[string]any{"session": session, "store": w.store1.ID})
	if len(resp.Errors) == 0 || resp.Errors[0].Extensions["code"] != aisle.EFORBIDDEN || string(resp.Data) != "null" {
		t.Errorf("B reads the session A claimed: %+v %s, want FORBIDDEN and no data", resp.Errors, resp.Data)
	}
}
