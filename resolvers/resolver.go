// Package resolvers implements the GraphQL schema in graph/. Resolvers are
// thin: they take the caller from the context, make one domain call and map
// the result to GraphQL types. Authorization, validation and maths live in the
// domain packages.
package resolvers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/availability"
	"github.com/aisle/aisle/fraud"
	"github.com/aisle/aisle/live"
	"github.com/aisle/aisle/merchandising"
	"github.com/aisle/aisle/postgres"
	"github.com/aisle/aisle/recommend"
	"github.com/aisle/aisle/streamstatus"
)

// Resolver holds the dependencies every resolver shares; serve_api.go fills it.
type Resolver struct {
	Catalog              *postgres.DB
	AvailabilityService  *availability.Service
	AvailabilityHub      *live.Hub[availability.Item]
	RecommendService     *recommend.Service
	RecommendHub         *live.Hub[struct{}] // which sessions changed
	FraudService         *fraud.Service
	MerchandisingService *merchandising.Service
	Pipeline             *streamstatus.Reader // pipelineStatus; set by serve_api.go after NewResolver
}

// NewResolver checks that no dependency is missing.
func NewResolver(db *postgres.DB, avail *availability.Service, hub *live.Hub[availability.Item],
	reco *recommend.Service, recoHub *live.Hub[struct{}], fraudService *fraud.Service, merch *merchandising.Service) (*Resolver, error) {
	if db == nil || avail == nil || hub == nil || reco == nil || recoHub == nil || fraudService == nil || merch == nil {
		return nil, fmt.Errorf("resolvers: nil dependency")
	}
	return &Resolver{Catalog: db, AvailabilityService: avail, AvailabilityHub: hub,
		RecommendService: reco, RecommendHub: recoHub, FraudService: fraudService, MerchandisingService: merch}, nil
}

// loaders batch the lookups that nested fields make, per operation.
type loaders struct {
	retailers *dataloadgen.Loader[string, *postgres.Retailer]
	products  *dataloadgen.Loader[string, *postgres.Product]
	// availability batches the availability nested in a listing: one
	// read per page (per operation, within loaderWait), not one per product.
	availability *dataloadgen.Loader[aisle.StoreProduct, *availability.Item]
}

type loadersKey struct{}

// loaderWait is how long a loader collects keys before one batched query.
const loaderWait = time.Millisecond

// WithLoaders returns ctx with fresh dataloaders for one operation; install it
// with the handler's AroundOperations so HTTP and websocket operations alike
// get their own. The loaders are made when a field first asks for them: most
// operations (a hot availability read, every subscription) never do, and a
// websocket subscription would hold them for its whole life.
func (r *Resolver) WithLoaders(ctx context.Context) context.Context {
	return context.WithValue(ctx, loadersKey{}, &operationLoaders{resolver: r})
}

// operationLoaders makes one operation's loaders once, when first needed.
type operationLoaders struct {
	resolver *Resolver
	once     sync.Once
	loaders  *loaders
}

func (o *operationLoaders) get() *loaders {
	o.once.Do(func() {
		r := o.resolver
		o.loaders = &loaders{
			retailers: dataloadgen.NewLoader(r.Catalog.RetailersByIDs, dataloadgen.WithWait(loaderWait), dataloadgen.WithBatchCapacity(100)),
			products:  dataloadgen.NewLoader(r.Catalog.ProductsByIDs, dataloadgen.WithWait(loaderWait), dataloadgen.WithBatchCapacity(100)),
			availability: dataloadgen.NewLoader(r.AvailabilityService.Lookup, dataloadgen.WithWait(loaderWait),
				dataloadgen.WithBatchCapacity(availability.MaxProducts)),
		}
	})
	return o.loaders
}

func loadersFrom(ctx context.Context) *loaders {
	l, ok := ctx.Value(loadersKey{}).(*operationLoaders)
	if !ok {
		panic("resolvers: no dataloaders in context; wrap operations with Resolver.WithLoaders")
	}
	return l.get()
}
