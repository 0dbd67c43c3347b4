// Package recommend answers "what will this customer want next?" from the
// live session: it joins the session state and recent neighbour sessions
// (features), co-purchase neighbours and popularity fitted in batch (or,
// until a fit exists, the live tallies the stream keeps), the catalog's
// categories (Postgres), and availability at the store, through
// models.RecommendModel. It also publishes session events and keeps order
// history for the batch.
package recommend

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/live"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// MaxFirst bounds the length of one list of recommendations.
const MaxFirst = 50

// DefaultRefresh is how often serving picks up a fit written by `aisle
// batch copurchase` (and catalog changes).
const DefaultRefresh = time.Minute

// livePopular and liveNeighbours bound what is read of the live tallies
// per request: like the batch fit's defaults (models.DefaultCoPurchaseConfig).
const (
	livePopular    = 200
	liveNeighbours = 30
)

// candidateSlack is how many candidates beyond first are scored for
// availability, so that dropping out-of-stock items still fills the list.
const candidateSlack = 20

// Recommendation is one recommended product.
type Recommendation struct {
	Product *postgres.Product
	Score   float64
	Reason  string
}

// Publisher writes an event to the log (Kafka) and says where it landed.
type Publisher interface {
	Publish(ctx context.Context, ev aisle.Event, key string) (aisle.Receipt, error)
}

// Service serves recommendations and publishes session events.
type Service struct {
	catalog   *postgres.DB
	features  *features.Store
	avail     *availability.Service
	publisher Publisher
	model     models.RecommendModel
	// replacementModel ranks replacement suggestions (Replacements).
	replacementModel models.ReplacementModel
	log              *slog.Logger
	state            atomic.Pointer[snapshot]
	Now              func() time.Time
}

// snapshot is what serving keeps in memory, replaced whole on refresh.
type snapshot struct {
	fitID       int64
	fit         models.CoPurchase
	products    map[string]*postgres.Product
	categories  map[string][]string        // category → its products
	assortments map[string]map[string]bool // store → products it carries
}

// sameCategory returns the products of p's category (p among them, which
// the model never recommends for itself: it is in the session).
func (s *snapshot) sameCategory(p string) []string {
	if product := s.products[p]; product != nil {
		return s.categories[product.Category]
	}
	return nil
}

// NewService returns a Service; it loads the newest fit and the catalog once
// so that answers are right from the first request.
func NewService(ctx context.Context, db *postgres.DB, fs *features.Store, avail *availability.Service, pub Publisher, model models.RecommendModel, log *slog.Logger) (*Service, error) {
	if db == nil || fs == nil || avail == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("recommend: nil dependency")
	}
	s := &Service{catalog: db, features: fs, avail: avail, publisher: pub, model: model,
		replacementModel: models.DefaultReplacementModel(), log: log, Now: time.Now}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh loads the newest fit, with the catalog, when a new fit was saved:
// checking costs one query, loading reads the whole catalog. Products added
// to the catalog in between are recommended from the next fit on.
func (s *Service) Refresh(ctx context.Context) error {
	fitID, err := s.catalog.LatestCoPurchaseFit(ctx)
	if err != nil {
		return err
	}
	if prev := s.state.Load(); prev != nil && prev.fitID == fitID {
		return nil
	}
	next := &snapshot{fitID: fitID}
	if next.fit, err = s.catalog.LoadCoPurchase(ctx, fitID); err != nil {
		return err
	}
	products, err := s.catalog.AllProducts(ctx)
	if err != nil {
		return err
	}
	next.products = make(map[string]*postgres.Product, len(products))
	next.categories = make(map[string][]string)
	for i := range products {
		p := &products[i]
		next.products[p.ID] = p
		next.categories[p.Category] = append(next.categories[p.Category], p.ID)
	}
	sc, err := s.catalog.SimulationCatalog(ctx)
	if err != nil {
		return err
	}
	next.assortments = make(map[string]map[string]bool, len(sc.Stores))
	for _, st := range sc.Stores {
		carried := make(map[string]bool, len(st.ProductIDs))
		for _, p := range st.ProductIDs {
			carried[p] = true
		}
		next.assortments[st.StoreID] = carried
	}
	s.state.Store(next)
	return nil
}

// Recommend returns up to first products for the session at the store,
// best first. A customer may ask for its own sessions (or a session nobody
// has used yet), a service for any; other callers are refused.
func (s *Service) Recommend(ctx context.Context, sessionID, storeID string, first int) ([]Recommendation, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := canReadSessions(p); err != nil {
		return nil, err
	}
	if err := aisle.ValidateID("sessionId", sessionID); err != nil {
		return nil, err
	}
	if err := aisle.ValidateID("storeId", storeID); err != nil {
		return nil, err
	}
	if first < 1 || first > MaxFirst {
		return nil, aisle.Errorf(aisle.EINVALID, "first must be between 1 and %d, got %d", MaxFirst, first)
	}
	if _, err := s.catalog.StoreRetailer(ctx, storeID); err != nil {
		return nil, err
	}
	st, err := s.features.Session(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if err := checkOwner(p, st.Owner); err != nil {
		return nil, err
	}

	snap := s.state.Load()
	query := s.model.Query(st.Session)
	queryIDs := make([]string, len(query))
	for i, q := range query {
		queryIDs[i] = q.ProductID
	}
	neighbours, err := s.features.NeighbourSessions(ctx, sessionID, queryIDs, s.model.SessionsPerItem, s.model.SampleSessions)
	if err != nil {
		return nil, err
	}
	coPurchase, popular := snap.fit.Neighbours, snap.fit.PopularAt(storeID)
	if snap.fitID == 0 {
		// Nothing fitted yet: what the stream has tallied so far.
		if coPurchase, err = s.features.LiveCoOccurrence(ctx, queryIDs, liveNeighbours); err != nil {
			return nil, err
		}
		if popular, err = s.features.LivePopular(ctx, storeID, livePopular); err != nil {
			return nil, err
		}
	}
	carried := snap.assortments[storeID]
	candidates := s.model.Candidates(models.RecommendInput{
		Session:      st.Session,
		Neighbours:   neighbours,
		CoPurchase:   func(p string) []models.ItemScore { return coPurchase[p] },
		SameCategory: snap.sameCategory,
		Popular:      popular,
		Allowed:      func(p string) bool { return carried[p] },
	}, first+candidateSlack)
	if len(candidates) == 0 {
		return []Recommendation{}, nil
	}

	ids := make([]string, len(candidates))
	for i, c := range candidates {
		ids[i] = c.ProductID
	}
	items, err := s.avail.Items(ctx, storeID, ids)
	if err != nil {
		return nil, fmt.Errorf("read availability of candidates: %w", err)
	}
	probability := make([]float64, len(items))
	for i, it := range items {
		probability[i] = it.Probability
	}
	ranked := s.model.Rank(candidates, probability, first)
	out := make([]Recommendation, 0, len(ranked))
	for _, r := range ranked {
		product := snap.products[r.ProductID]
		if product == nil {
			continue // added to the catalog between the snapshot's two reads
		}
		out = append(out, Recommendation{Product: product, Score: r.Score, Reason: reason(r, st.Session, snap.products)})
	}
	return out, nil
}

// reason says in a few words why r is on the list, naming what the
// session did with the item behind it.
func reason(r models.Recommendation, session models.Session, products map[string]*postgres.Product) string {
	anchor := r.Anchor
	if p := products[anchor]; p != nil {
		anchor = p.Name
	}
	var text string
	switch r.Reason {
	case models.ReasonSession:
		did := "viewed " + anchor
		if slices.ContainsFunc(session.Items, func(it models.SessionItem) bool {
			return it.ProductID == r.Anchor && it.Action == models.ActionAddToCart
		}) {
			did = "added " + anchor + " to their cart"
		}
		text = "people who " + did + " also picked this"
	case models.ReasonCoPurchase:
		text = "often bought with " + anchor
	case models.ReasonCategory:
		text = "similar to " + anchor
	default:
		text = "popular at this store"
	}
	if r.Uncertain {
		text += "; may be out of stock"
	}
	return text
}

// Changed is the live hub's loader: a session's recommendations depend on
// each subscription's store and length, so the hub only says which sessions
// changed and each subscription computes its own list.
func Changed(_ context.Context, keys []live.Key) ([]struct{}, error) {
	return make([]struct{}, len(keys)), nil
}

// canReadSessions is the role rule of docs/design.md "Access": sessions are
// private to their customer; backend services may read any.
func canReadSessions(p *aisle.Principal) error {
	switch {
	case !p.Authenticated():
		return aisle.Errorf(aisle.EUNAUTHENTICATED, "an API key is required: send Authorization: Bearer KEY")
	case p.Role != aisle.RoleCustomer && p.Role != aisle.RoleService:
		return aisle.Errorf(aisle.EFORBIDDEN, "only customer keys (for their own sessions) and service keys may use sessions")
	case p.Role == aisle.RoleCustomer && p.UserID == "":
		return aisle.Errorf(aisle.EFORBIDDEN, "this customer key is bound to no user")
	}
	return nil
}

// checkOwner refuses a customer a session that another user started.
func checkOwner(p *aisle.Principal, owner string) error {
	if p.Role == aisle.RoleCustomer && owner != "" && owner != p.UserID {
		return aisle.Errorf(aisle.EFORBIDDEN, "this session belongs to another customer")
	}
	return nil
}
