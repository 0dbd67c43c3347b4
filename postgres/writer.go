package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// changesChannel is the PostgreSQL NOTIFY channel on which ApplyEvents
// announces, in its transaction, the stores and products it changed; every
// serving process LISTENs on it (FollowChanges) to drop what it remembers
// of them.
const changesChannel = "aisle_catalog_changes"

// maxChangePayload bounds a notification (PostgreSQL refuses payloads of
// 8000 bytes or more); a larger change set is announced as "everything".
const maxChangePayload = 7000

// change is the payload of a notification.
type change struct {
	All      bool     `json:"all,omitempty"`
	Stores   []string `json:"stores,omitempty"`
	Products []string `json:"products,omitempty"`
	// Assortments are the stores whose assortment changed.
	Assortments []string `json:"assortments,omitempty"`
}

// ApplyEvents applies catalog events (aisle.TopicCatalog) in one
// transaction, idempotently and last-writer-wins by event time: an event
// changes its entity only when its time is later than the time of the
// event that last wrote it (rows written before the topic existed have
// none, so any event overrides them); on a tie the first applied wins. An
// assortment removal deletes the row and leaves a tombstone with its time,
// so an older upsert arriving later does not bring the product back, and a
// later upsert replaces the tombstone. applied[i] says whether events[i]
// changed something. Events of other topics are ignored. The referenced
// retailers, stores and products must exist (the stream dead-letters
// events naming unknown ones before they get here); a product's category
// is created from its name on first sight.
func (db *DB) ApplyEvents(ctx context.Context, events []*aisle.Decoded) (applied []bool, err error) {
	applied = make([]bool, len(events))
	w := newCatalogWrite(events)
	if w.empty() {
		return applied, nil
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply catalog events: %w", err)
	}
	defer tx.Rollback(ctx) // no-op after Commit
	if err := w.apply(ctx, tx, applied); err != nil {
		return nil, fmt.Errorf("apply catalog events: %w", err)
	}
	if err := w.notify(ctx, tx); err != nil {
		return nil, fmt.Errorf("apply catalog events: notify: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("apply catalog events: commit: %w", err)
	}
	// This process's own caches need not wait for the notification.
	db.forget(w.changed)
	return applied, nil
}

// catalogWrite is a batch of catalog events reduced to the last event of
// each entity (latest time, first on ties): one statement may not write a
// row twice, and the others would not apply anyway.
type catalogWrite struct {
	retailers, stores, products, assortments []int // indexes into events, of the winners
	events                                   []*aisle.Decoded
	changed                                  change
}

func newCatalogWrite(events []*aisle.Decoded) *catalogWrite {
	w := &catalogWrite{events: events}
	winner := map[string]int{}
	var order []string
	for i, d := range events {
		var kind string
		switch {
		case d.Retailer != nil:
			kind = "r"
		case d.Store != nil:
			kind = "s"
		case d.Product != nil:
			kind = "p"
		case d.Assortment != nil:
			kind = "a"
		default:
			continue
		}
		key := kind + ":" + d.Key()
		if j, ok := winner[key]; !ok {
			winner[key] = i
			order = append(order, key)
		} else if d.Time.After(events[j].Time) {
			winner[key] = i
		}
	}
	for _, key := range order {
		i := winner[key]
		switch key[0] {
		case 'r':
			w.retailers = append(w.retailers, i)
		case 's':
			w.stores = append(w.stores, i)
		case 'p':
			w.products = append(w.products, i)
		default:
			w.assortments = append(w.assortments, i)
		}
	}
	return w
}

func (w *catalogWrite) empty() bool {
	return len(w.retailers)+len(w.stores)+len(w.products)+len(w.assortments) == 0
}

// apply writes the winners in dependency order and marks those that changed
// a row.
func (w *catalogWrite) apply(ctx context.Context, tx pgx.Tx, applied []bool) error {
	for _, step := range []struct {
		what string
		idx  []int
		run  func(context.Context, pgx.Tx, []int) (map[string]bool, error)
	}{
		{"retailers", w.retailers, w.upsertRetailers},
		{"stores", w.stores, w.upsertStores},
		{"products", w.products, w.upsertProducts},
		{"assortments", w.assortments, w.writeAssortments},
	} {
		if len(step.idx) == 0 {
			continue
		}
		changed, err := step.run(ctx, tx, step.idx)
		if err != nil {
			return fmt.Errorf("%s: %w", step.what, err)
		}
		for _, i := range step.idx {
			applied[i] = changed[w.events[i].Key()]
		}
	}
	return nil
}

// returnedKeys adds the keys a statement's RETURNING clause yields to keys,
// and to list when it is not nil.
func returnedKeys(rows pgx.Rows, keys map[string]bool, list *[]string) error {
	var key string
	_, err := pgx.ForEachRow(rows, []any{&key}, func() error {
		keys[key] = true
		if list != nil {
			*list = append(*list, key)
		}
		return nil
	})
	return err
}

func (w *catalogWrite) upsertRetailers(ctx context.Context, tx pgx.Tx, idx []int) (map[string]bool, error) {
	ids, names, at := make([]string, len(idx)), make([]string, len(idx)), make([]time.Time, len(idx))
	for j, i := range idx {
		r := w.events[i].Retailer
		ids[j], names[j], at[j] = r.RetailerID, r.Name, w.events[i].Time
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO retailers (id, name, event_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, event_at = EXCLUDED.event_at
		WHERE retailers.event_at IS NULL OR retailers.event_at < EXCLUDED.event_at
		RETURNING id`, ids, names, at)
	changed := map[string]bool{}
	return changed, returnedKeys(rows, changed, nil)
}

func (w *catalogWrite) upsertStores(ctx context.Context, tx pgx.Tx, idx []int) (map[string]bool, error) {
	n := len(idx)
	ids, retailers, names := make([]string, n), make([]string, n), make([]string, n)
	addresses, zones := make([]*string, n), make([]*string, n)
	lats, lons := make([]*float64, n), make([]*float64, n)
	at := make([]time.Time, n)
	for j, i := range idx {
		s := w.events[i].Store
		ids[j], retailers[j], names[j] = s.StoreID, s.RetailerID, s.Name
		addresses[j], lats[j], lons[j], zones[j], at[j] = s.Address, s.Lat, s.Lon, s.Timezone, w.events[i].Time
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO stores (id, retailer_id, name, address, lat, lon, timezone, event_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::text[], $8::timestamptz[])
		ON CONFLICT (id) DO UPDATE SET retailer_id = EXCLUDED.retailer_id, name = EXCLUDED.name,
			address = EXCLUDED.address, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
			timezone = EXCLUDED.timezone, event_at = EXCLUDED.event_at
		WHERE stores.event_at IS NULL OR stores.event_at < EXCLUDED.event_at
		RETURNING id`, ids, retailers, names, addresses, lats, lons, zones, at)
	changed := map[string]bool{}
	return changed, returnedKeys(rows, changed, &w.changed.Stores)
}

func (w *catalogWrite) upsertProducts(ctx context.Context, tx pgx.Tx, idx []int) (map[string]bool, error) {
	n := len(idx)
	ids, names, categories := make([]string, n), make([]string, n), make([]string, n)
	brands, sizes, gtins, images := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	at := make([]time.Time, n)
	for j, i := range idx {
		p := w.events[i].Product
		ids[j], names[j], categories[j] = p.ProductID, p.Name, p.Category
		brands[j], sizes[j], gtins[j], images[j], at[j] = p.Brand, p.Size, p.GTIN, p.ImageURL, w.events[i].Time
	}
	if err := ensureCategories(ctx, tx, categories); err != nil {
		return nil, err
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO products (id, category_id, name, brand, size, gtin, image_url, event_at)
		SELECT u.id, c.id, u.name, u.brand, u.size, u.gtin, u.image_url, u.at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
			AS u(id, category, name, brand, size, gtin, image_url, at)
		JOIN categories c ON c.name = u.category
		ON CONFLICT (id) DO UPDATE SET category_id = EXCLUDED.category_id, name = EXCLUDED.name,
			brand = EXCLUDED.brand, size = EXCLUDED.size, gtin = EXCLUDED.gtin,
			image_url = EXCLUDED.image_url, event_at = EXCLUDED.event_at
		WHERE products.event_at IS NULL OR products.event_at < EXCLUDED.event_at
		RETURNING id`, ids, categories, names, brands, sizes, gtins, images, at)
	changed := map[string]bool{}
	return changed, returnedKeys(rows, changed, &w.changed.Products)
}

// ensureCategories creates the categories of the given names that do not
// exist yet. A category's id is its name in lower case with runs of other
// characters than letters and digits as one hyphen ("Milk & Cream" →
// milk-cream); when another name already has that id, a hash of the name is
// appended.
func ensureCategories(ctx context.Context, tx pgx.Tx, names []string) error {
	for _, suffixed := range []bool{false, true} {
		ids := make([]string, len(names))
		for i, name := range names {
			ids[i] = categoryID(name, suffixed)
		}
		// Both unique constraints (id, name) may conflict: ON CONFLICT DO
		// NOTHING skips either, and the second round gives the names whose
		// id was taken by another name an id of their own.
		_, err := tx.Exec(ctx, `
			INSERT INTO categories (id, name)
			SELECT DISTINCT ON (name) id, name FROM unnest($1::text[], $2::text[]) AS u(id, name)
			WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.name = u.name)
			ON CONFLICT DO NOTHING`, ids, names)
		if err != nil {
			return fmt.Errorf("create categories: %w", err)
		}
	}
	return nil
}

func categoryID(name string, suffixed bool) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			hyphen = false
		} else {
			hyphen = true
		}
	}
	if b.Len() == 0 || suffixed {
		h := fnv.New32a()
		h.Write([]byte(name))
		if b.Len() > 0 {
			b.WriteByte('-')
		}
		fmt.Fprintf(&b, "%08x", h.Sum32())
	}
	return b.String()
}

// writeAssortments applies the winning upserts and removals of assortments.
func (w *catalogWrite) writeAssortments(ctx context.Context, tx pgx.Tx, idx []int) (map[string]bool, error) {
	var up, rm struct {
		stores, products []string
		at               []time.Time
		prices           []*int64
		aisles           []*string
	}
	for _, i := range idx {
		d := w.events[i]
		a := d.Assortment
		t := &up
		if d.Type == aisle.TypeAssortmentRemoved {
			t = &rm
		}
		t.stores, t.products, t.at = append(t.stores, a.StoreID), append(t.products, a.ProductID), append(t.at, d.Time)
		t.prices, t.aisles = append(t.prices, a.PriceCents), append(t.aisles, a.Aisle)
	}
	changed := map[string]bool{}
	if len(up.stores) > 0 {
		// An upsert applies when it is later than both the row and the
		// tombstone; a tombstone it beats is no longer needed.
		rows, _ := tx.Query(ctx, `
			WITH ins AS (
				INSERT INTO store_products (store_id, product_id, price_cents, aisle, event_at)
				SELECT u.store_id, u.product_id, u.price_cents, u.aisle, u.at
				FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[])
					AS u(store_id, product_id, price_cents, aisle, at)
				LEFT JOIN store_product_removals r USING (store_id, product_id)
				WHERE r.removed_at IS NULL OR r.removed_at < u.at
				ON CONFLICT (store_id, product_id) DO UPDATE SET price_cents = EXCLUDED.price_cents,
					aisle = EXCLUDED.aisle, event_at = EXCLUDED.event_at
				WHERE store_products.event_at IS NULL OR store_products.event_at < EXCLUDED.event_at
				RETURNING store_id, product_id),
			del AS (
				DELETE FROM store_product_removals r USING ins
				WHERE r.store_id = ins.store_id AND r.product_id = ins.product_id)
			SELECT store_id || ':' || product_id FROM ins`, up.stores, up.products, up.prices, up.aisles, up.at)
		if err := returnedKeys(rows, changed, nil); err != nil {
			return nil, err
		}
	}
	if len(rm.stores) > 0 {
		// A removal applies when it is later than both the row (if any)
		// and the tombstone (if any).
		rows, _ := tx.Query(ctx, `
			WITH u AS (
				SELECT u.store_id, u.product_id, u.at
				FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(store_id, product_id, at)
				LEFT JOIN store_products sp USING (store_id, product_id)
				LEFT JOIN store_product_removals r USING (store_id, product_id)
				WHERE (sp.event_at IS NULL OR sp.event_at < u.at) AND (r.removed_at IS NULL OR r.removed_at < u.at)),
			del AS (
				DELETE FROM store_products sp USING u
				WHERE sp.store_id = u.store_id AND sp.product_id = u.product_id)
			INSERT INTO store_product_removals (store_id, product_id, removed_at)
			SELECT store_id, product_id, at FROM u
			ON CONFLICT (store_id, product_id) DO UPDATE SET removed_at = EXCLUDED.removed_at
			RETURNING store_id || ':' || product_id`, rm.stores, rm.products, rm.at)
		if err := returnedKeys(rows, changed, nil); err != nil {
			return nil, err
		}
	}
	for _, i := range idx {
		if storeID := w.events[i].Assortment.StoreID; changed[w.events[i].Key()] && !slices.Contains(w.changed.Assortments, storeID) {
			w.changed.Assortments = append(w.changed.Assortments, storeID)
		}
	}
	return changed, nil
}

// notify announces the changed stores and products to every process's
// FollowChanges, when the transaction commits.
func (w *catalogWrite) notify(ctx context.Context, tx pgx.Tx) error {
	if len(w.changed.Stores) == 0 && len(w.changed.Products) == 0 && len(w.changed.Assortments) == 0 {
		return nil
	}
	payload, err := json.Marshal(w.changed)
	if err != nil {
		return err
	}
	if len(payload) > maxChangePayload {
		payload = []byte(`{"all":true}`)
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, changesChannel, string(payload))
	return err
}
