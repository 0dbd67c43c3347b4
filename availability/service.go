// Package availability answers "is this product on the shelf at this store
// now?" by joining the online evidence (features), the catalog and found-rate
// priors (Postgres) through the model, and publishes the events that feed it.
package availability

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/catalog"
	"github.com/aisle/aisle/features"
	"github.com/aisle/aisle/live"
	"github.com/aisle/aisle/models"
)

// MaxProducts bounds the product ids of one availability request or subscription.
const MaxProducts = 500

// PriorsRefreshInterval is how often serving picks up priors written by
// `aisle batch priors` (server.go calls RefreshPriors).
const PriorsRefreshInterval = time.Minute

var batchedReads = promauto.NewCounter(prometheus.CounterOpts{
	Name: "aisle_availability_reads_total",
	Help: "Batched availability reads: each reads the evidence of any number of products in one Redis pipeline and their assortment in one PostgreSQL round trip.",
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
	catalog   *catalog.DB
	features  *features.Store
	publisher Publisher
	model     models.AvailabilityModel
	priors    atomic.Pointer[models.AvailabilityPriors]
	log       *slog.Logger
	Now       func() time.Time
}

// NewService returns a Service; it loads the priors once so that answers are
// right from the first request.
func NewService(ctx context.Context, db *catalog.DB, fs *features.Store, pub Publisher, model models.AvailabilityModel, log *slog.Logger) (*Service, error) {
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
// are served without a restart.
func (s *Service) RefreshPriors(ctx context.Context) error {
	priors, err := s.catalog.LoadAvailabilityPriors(ctx)
	if err != nil {
		return fmt.Errorf("load availability priors: %w", err)
	}
	s.priors.Store(&priors)
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
	priors := s.priors.Load()
	now := s.Now()
	items := make([]Item, len(sps))
	for i, sp := range sps {
		item := Item{StoreID: sp.StoreID, ProductID: sp.ProductID, Carried: carried[i], UpdatedAt: evidence[i].UpdatedAt()}
		if item.Carried {
			item.Probability = s.model.Probability(evidence[i], *priors, sp.ProductID, categories[sp.ProductID], now)
		}
		item.Status = s.model.Status(item.Probability)
		items[i] = item
	}
	return items, nil
}
