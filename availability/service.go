// Package availability answers "is this product on the shelf at this store
// now?" by joining the online evidence (features), the catalog and found-rate
// priors (Postgres) through the model, and publishes the events that feed it.
package availability

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/live"
	"github.com/aisle/aisle/models"
	"github.com/aisle/aisle/postgres"
)

// MaxProducts bounds the product ids of one availability request or subscription.
const MaxProducts = 500

// PriorsRefreshInterval is how often serving picks up priors written by
// `aisle batch priors` (serve_api.go refreshes them on a schedule).
const PriorsRefreshInterval = time.Minute

var batchedReads = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_availability_reads_total",
	Help: "Batched availability reads: each reads the evidence of any number of products in one Redis pipeline and their assortment in one PostgreSQL round trip.",
})

// servedPriorsFittedAt tells an operator which priors serving answers with:
// it moves when a refresh loads priors written by a new `aisle batch priors`.
var servedPriorsFittedAt = promauto.NewGauge(prometheus.GaugeOpts{
	Name: "aisle_availability_priors_fitted_timestamp_seconds",
	Help: "fitted_at (the latest pick time of the fit, Unix seconds) of the availability priors serving loaded; 0 for the built-in defaults.",
})

// Item is the availability of one product at one store.
type Item struct {
	StoreID   string
	ProductID string
	// Carried says whether the store's assortment lists the product. A
	// product the store does not carry is answered with probability 0 and
	// OUT_OF_STOCK whatever its evidence: a retailer that removed it from
	// the assortment does not sell it, even if the shelf still holds some.
	Carried     bool
	Probability float64
	Status      models.AvailabilityStatus
	UpdatedAt   time.Time // zero when the answer is the prior alone
}

// Publisher writes an event to the log (Kafka) and says where it landed.
type Publisher interface {
	Publish(ctx context.Context, ev aisle.Event, key string) (aisle.Receipt, error)
	// PublishEvents publishes validated events in order, keyed by entity,
	// and returns their ids.
	PublishEvents(ctx context.Context, events []*aisle.Decoded) ([]string, error)
	// PublishBatch is PublishEvents answering where each event landed.
	PublishBatch(ctx context.Context, events []*aisle.Decoded) ([]aisle.Receipt, error)
}

// Service reads and feeds item availability.
type Service struct {
	catalog   *postgres.DB
	features  *features.Store
	publisher Publisher
	model     models.AvailabilityModel
	priors    atomic.Pointer[models.AvailabilityPriors]
	log       *slog.Logger
	Now       func() time.Time
}

// NewService returns a Service; it loads the priors once so that answers are
// right from the first request.
func NewService(ctx context.Context, db *postgres.DB, fs *features.Store, pub Publisher, model models.AvailabilityModel, log *slog.Logger) (*Service, error) {
	if db == nil || fs == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("availability: nil dependency")
	}
	s := &Service{catalog: db, features: fs, publisher: pub, model: model, log: log, Now: time.Now}
	if err := s.RefreshPriors(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// RefreshPriors loads the newest priors, so that a batch job's new priors
// are served without a restart. Loading priors other than those served
// (the first load, or a new fit) is logged with what they learned, and sets
// the fitted-at gauge, so an operator can tell that a fit is being served.
func (s *Service) RefreshPriors(ctx context.Context) error {
	priors, err := s.catalog.LoadAvailabilityPriors(ctx)
	if err != nil {
		return fmt.Errorf("load availability priors: %w", err)
	}
	previous := s.priors.Swap(&priors)
	if previous == nil || !previous.FittedAt.Equal(priors.FittedAt) || previous.Observations != priors.Observations {
		fitted := 0.0
		if !priors.FittedAt.IsZero() {
			fitted = float64(priors.FittedAt.UnixMilli()) / 1000
		}
		servedPriorsFittedAt.Set(fitted)
		s.log.Info("serving new availability priors",
			"fitted_at", priors.FittedAt, "observations", priors.Observations,
			"global_found_rate", priors.GlobalRate(), "shopper_miss_rate", priors.ShopperMiss.Rate(),
			"stores_with_own_feed_reliability", len(priors.FeedReliability))
	}
	return nil
}

// Items returns the availability of productIDs at storeID, in the order asked.
func (s *Service) Items(ctx context.Context, storeID string, productIDs []string) ([]Item, error) {
	sps, err := s.checkStoreProducts(ctx, storeID, productIDs)
	if err != nil {
		return nil, err
	}
	return s.items(ctx, sps)
}

// CheckSubscription validates the arguments of a live subscription the same
// way Items validates a query; no productIDs means every product of the store.
func (s *Service) CheckSubscription(ctx context.Context, storeID string, productIDs []string) error {
	if len(productIDs) == 0 {
		if err := aisle.ValidateID("storeId", storeID); err != nil {
			return err
		}
		_, err := s.catalog.StoreRetailer(ctx, storeID)
		return err
	}
	_, err := s.checkStoreProducts(ctx, storeID, productIDs)
	return err
}

// Lookup returns the availability of each store-product in the order asked,
// with a nil item and an ENOTFOUND error where the store or product is
// unknown; the known ones are read in one batch (one Redis pipeline). Its
// signature is a vikstrous/dataloadgen fetch function, for availability
// nested in listings.
func (s *Service) Lookup(ctx context.Context, sps []aisle.StoreProduct) ([]*Item, []error) {
	missing, err := s.catalog.MissingStoreProducts(ctx, sps)
	if err != nil {
		return nil, []error{fmt.Errorf("check store products: %w", err)}
	}
	known := make([]aisle.StoreProduct, 0, len(sps))
	for _, sp := range sps {
		if _, ok := missing[sp]; !ok {
			known = append(known, sp)
		}
	}
	items, err := s.items(ctx, known)
	if err != nil {
		return nil, []error{err}
	}
	out := make([]*Item, len(sps))
	var errs []error
	for i, sp := range sps {
		if reason, ok := missing[sp]; ok {
			if errs == nil {
				errs = make([]error, len(sps))
			}
			errs[i] = aisle.Errorf(aisle.ENOTFOUND, "%s", reason)
			continue
		}
		out[i] = &items[0]
		items = items[1:]
	}
	return out, errs
}

// Changed loads the availability of changed store-products for the live hub,
// whose keys are store (topic) and product (item).
func (s *Service) Changed(ctx context.Context, keys []live.Key) ([]Item, error) {
	sps := make([]aisle.StoreProduct, len(keys))
	for i, k := range keys {
		sps[i] = aisle.StoreProduct{StoreID: k.Topic, ProductID: k.Item}
	}
	return s.items(ctx, sps)
}

func (s *Service) checkStoreProducts(ctx context.Context, storeID string, productIDs []string) ([]aisle.StoreProduct, error) {
	if len(productIDs) > MaxProducts {
		return nil, aisle.Errorf(aisle.EINVALID, "productIds has %d ids; at most %d are allowed", len(productIDs), MaxProducts)
	}
	if err := aisle.ValidateID("storeId", storeID); err != nil {
		return nil, err
	}
	sps := make([]aisle.StoreProduct, len(productIDs))
	for i, id := range productIDs {
		if err := aisle.ValidateID("productIds", id); err != nil {
			return nil, err
		}
		sps[i] = aisle.StoreProduct{StoreID: storeID, ProductID: id}
	}
	missing, err := s.catalog.MissingStoreProducts(ctx, sps)
	if err != nil {
		return nil, fmt.Errorf("check store products: %w", err)
	}
	if len(missing) > 0 {
		return nil, aisle.Errorf(aisle.ENOTFOUND, "%s", describeMissing(sps, missing))
	}
	return sps, nil
}

// describeMissing lists unknown ids in request order, a few at most.
func describeMissing(sps []aisle.StoreProduct, missing map[aisle.StoreProduct]string) string {
	const shown = 5
	var reasons []string
	seen := make(map[string]bool)
	for _, sp := range sps {
		reason, ok := missing[sp]
		if !ok || seen[reason] {
			continue
		}
		seen[reason] = true
		reasons = append(reasons, reason)
	}
	if len(reasons) > shown {
		return fmt.Sprintf("%s and %d more", strings.Join(reasons[:shown], "; "), len(reasons)-shown)
	}
	return strings.Join(reasons, "; ")
}

func (s *Service) items(ctx context.Context, sps []aisle.StoreProduct) ([]Item, error) {
	return s.itemsAt(ctx, sps, s.Now())
}

// itemsAt is items with the probabilities valued at now.
func (s *Service) itemsAt(ctx context.Context, sps []aisle.StoreProduct, now time.Time) ([]Item, error) {
	if len(sps) == 0 {
		return nil, nil
	}
	batchedReads.Inc()
	evidence, err := s.features.Availability(ctx, sps)
	if err != nil {
		return nil, fmt.Errorf("read availability evidence: %w", err)
	}
	productIDs := make([]string, len(sps))
	for i, sp := range sps {
		productIDs[i] = sp.ProductID
	}
	categories, err := s.catalog.ProductCategories(ctx, productIDs)
	if err != nil {
		return nil, fmt.Errorf("read product categories: %w", err)
	}
	carried, err := s.catalog.Carried(ctx, sps)
	if err != nil {
		return nil, fmt.Errorf("read assortments: %w", err)
	}
	zones, err := s.catalog.StoreLocations(ctx, storeIDsOf(sps))
	if err != nil {
		return nil, fmt.Errorf("read store time zones: %w", err)
	}
	priors := s.priors.Load()
	items := make([]Item, len(sps))
	for i, sp := range sps {
		item := Item{StoreID: sp.StoreID, ProductID: sp.ProductID, Carried: carried[i], UpdatedAt: evidence[i].UpdatedAt()}
		if item.Carried {
			shelf := models.ShelfItem{StoreID: sp.StoreID, ProductID: sp.ProductID, Category: categories[sp.ProductID], Location: zones[sp.StoreID]}
			item.Probability = s.model.ProbabilityOf(evidence[i], *priors, shelf, now)
		}
		item.Status = s.model.Status(item.Probability)
		items[i] = item
	}
	return items, nil
}

// At-risk pages: sizes as for other connections, and how many index
// candidates are re-scored at a time (see AtRisk).
const (
	DefaultAtRiskPageSize = 20
	MaxAtRiskPageSize     = 100
	atRiskWindow          = 256
	atRiskCursorKind      = "atrisk"
	maxAtRiskCursorLength = 1024
)

// atRiskCursor is a position in an at-risk list: the probability and the
// product id of the item it follows, and the time the list was valued at.
// Probabilities move with time (evidence decays), so every page of a list
// is valued at the time of its first page: the pages join up.
type atRiskCursor struct {
	Kind        string  `json:"k"`
	Probability float64 `json:"p"`
	ProductID   string  `json:"i"`
	AtMS        int64   `json:"t"`
}

func (c atRiskCursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a string, a finite float and a string always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeAtRiskCursor(after *string) (*atRiskCursor, error) {
	if after == nil || *after == "" {
		return nil, nil
	}
	bad := aisle.Errorf(aisle.EINVALID, "invalid cursor %q: not a cursor of an atRisk list", *after)
	if len(*after) > maxAtRiskCursorLength {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(*after)
	if err != nil {
		return nil, bad
	}
	var c atRiskCursor
	if err := json.Unmarshal(b, &c); err != nil || c.Kind != atRiskCursorKind || c.ProductID == "" || c.AtMS <= 0 {
		return nil, bad
	}
	return &c, nil
}

// before reports whether item comes before (or is) the cursor's position
// in the list's order: probability ascending, then product id.
func (c *atRiskCursor) before(item Item) bool {
	if item.Probability != c.Probability {
		return item.Probability < c.Probability
	}
	return item.ProductID <= c.ProductID
}

// AtRisk returns a page of the store's carried products most likely not on
// the shelf now, lowest probability first (then by product id).
//
// It reads no list of the store's products: the stream keeps a per-store
// index of products by their probability at their latest evidence
// (features.AtRiskCandidates). AtRisk takes its lowest-scored candidates a
// window at a time, re-scores them now with the served priors (decay has
// moved them since), drops products the store no longer carries (from the
// answer and from the index), and stops once it has the page plus a page
// more of margin beyond the cursor, or the index is exhausted. The pages
// after the first are valued at the first page's time (see atRiskCursor). Products
// without any evidence are not in the index: their answer is their prior.
func (s *Service) AtRisk(ctx context.Context, storeID string, first *int, after *string) (postgres.Page[Item], error) {
	var page postgres.Page[Item]
	if err := aisle.ValidateID("storeId", storeID); err != nil {
		return page, err
	}
	size := DefaultAtRiskPageSize
	if first != nil {
		if *first < 1 || *first > MaxAtRiskPageSize {
			return page, aisle.Errorf(aisle.EINVALID, "first must be between 1 and %d, got %d", MaxAtRiskPageSize, *first)
		}
		size = *first
	}
	cur, err := decodeAtRiskCursor(after)
	if err != nil {
		return page, err
	}
	if _, err := s.catalog.StoreRetailer(ctx, storeID); err != nil {
		return page, err
	}
	now := s.Now().Truncate(time.Millisecond) // as a cursor keeps it
	if cur != nil {
		now = time.UnixMilli(cur.AtMS)
	}
	var beyond []Item
	var dropped []string
	for read := 0; len(beyond) <= 2*size; read += atRiskWindow {
		ids, total, err := s.features.AtRiskCandidates(ctx, storeID, read, atRiskWindow)
		if err != nil {
			return page, err
		}
		items, notCarried, err := s.carriedItems(ctx, storeID, ids, now)
		if err != nil {
			return page, err
		}
		dropped = append(dropped, notCarried...)
		for _, item := range items {
			if cur == nil || !cur.before(item) {
				beyond = append(beyond, item)
			}
		}
		if int64(read+atRiskWindow) >= total {
			break
		}
	}
	// Dropped after the reads, so that the windows' ranks stay put.
	if err := s.features.DropAtRisk(ctx, storeID, dropped); err != nil {
		return page, err
	}
	slices.SortFunc(beyond, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.Probability, b.Probability), cmp.Compare(a.ProductID, b.ProductID))
	})
	page.HasPreviousPage = cur != nil
	if len(beyond) > size {
		beyond, page.HasNextPage = beyond[:size], true
	}
	page.Edges = make([]postgres.Edge[Item], len(beyond))
	for i, item := range beyond {
		c := atRiskCursor{Kind: atRiskCursorKind, Probability: item.Probability, ProductID: item.ProductID, AtMS: now.UnixMilli()}
		page.Edges[i] = postgres.Edge[Item]{Cursor: c.encode(), Node: item}
	}
	return page, nil
}

// carriedItems answers productIDs at storeID, leaving out products the
// store does not carry or the catalog does not know, which it returns apart.
func (s *Service) carriedItems(ctx context.Context, storeID string, productIDs []string, now time.Time) (carried []Item, notCarried []string, err error) {
	sps := make([]aisle.StoreProduct, len(productIDs))
	for i, id := range productIDs {
		sps[i] = aisle.StoreProduct{StoreID: storeID, ProductID: id}
	}
	missing, err := s.catalog.MissingStoreProducts(ctx, sps)
	if err != nil {
		return nil, nil, fmt.Errorf("check store products: %w", err)
	}
	known := slices.DeleteFunc(slices.Clone(sps), func(sp aisle.StoreProduct) bool { _, ok := missing[sp]; return ok })
	items, err := s.itemsAt(ctx, known, now)
	if err != nil {
		return nil, nil, err
	}
	for sp := range missing {
		notCarried = append(notCarried, sp.ProductID)
	}
	for _, item := range items {
		if item.Carried {
			carried = append(carried, item)
		} else {
			notCarried = append(notCarried, item.ProductID)
		}
	}
	return carried, notCarried, nil
}

// Evidence returns what the answer for productID at storeID rests on. It is
// a private signal of the store's retailer: visible to that retailer's
// keys, and to service and ops keys.
func (s *Service) Evidence(ctx context.Context, storeID, productID string) (models.EvidenceView, error) {
	p := aisle.PrincipalFromContext(ctx)
	if err := requireAuthenticated(p); err != nil {
		return models.EvidenceView{}, err
	}
	retailerID, err := s.catalog.StoreRetailer(ctx, storeID)
	if err != nil {
		return models.EvidenceView{}, err
	}
	if p.Role != aisle.RoleOps && !p.CanManageStore(retailerID) {
		return models.EvidenceView{}, aisle.Errorf(aisle.EFORBIDDEN, "evidence is visible to the store's retailer and to service and ops keys only")
	}
	sp := aisle.StoreProduct{StoreID: storeID, ProductID: productID}
	evidence, err := s.features.Availability(ctx, []aisle.StoreProduct{sp})
	if err != nil {
		return models.EvidenceView{}, fmt.Errorf("read availability evidence: %w", err)
	}
	categories, err := s.catalog.ProductCategories(ctx, []string{productID})
	if err != nil {
		return models.EvidenceView{}, fmt.Errorf("read product categories: %w", err)
	}
	zones, err := s.catalog.StoreLocations(ctx, []string{storeID})
	if err != nil {
		return models.EvidenceView{}, fmt.Errorf("read store time zones: %w", err)
	}
	item := models.ShelfItem{StoreID: storeID, ProductID: productID, Category: categories[productID], Location: zones[storeID]}
	return s.model.Explain(evidence[0], *s.priors.Load(), item, s.Now()), nil
}
