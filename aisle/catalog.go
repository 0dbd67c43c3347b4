package aisle

import (
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TopicCatalog carries a marketplace's own catalog: retailers, stores,
// products and per-store assortments. Its events are keyed by the entity's
// id (store_id:product_id for assortment) and applied last-writer-wins by
// event time, so replaying the topic rebuilds the catalog.
const TopicCatalog = "aisle.catalog"

// Catalog event types.
const (
	TypeRetailerUpserted   = "retailer.upserted"
	TypeStoreUpserted      = "store.upserted"
	TypeProductUpserted    = "product.upserted"
	TypeAssortmentUpserted = "assortment.upserted"
	TypeAssortmentRemoved  = "assortment.removed"
)

// CatalogTypes are the catalog event types in the order their entities
// depend on each other: a store names its retailer, an assortment its store
// and product.
var CatalogTypes = []string{TypeRetailerUpserted, TypeStoreUpserted, TypeProductUpserted, TypeAssortmentUpserted, TypeAssortmentRemoved}

// Bounds on catalog event data.
const (
	MaxNameLength    = 256  // bytes of a retailer, store or product name
	MaxLabelLength   = 128  // bytes of a category, brand, size or aisle
	MaxAddressLength = 512  // bytes of a store address
	MaxURLLength     = 2048 // bytes of an image URL
	// MaxPriceCents bounds a shelf price (one million currency units).
	MaxPriceCents = 100_000_000
)

// RetailerUpserted is the data of retailer.upserted.
type RetailerUpserted struct {
	RetailerID string `json:"retailer_id"`
	Name       string `json:"name"`
}

// StoreUpserted is the data of store.upserted. An upsert carries the whole
// store: an optional field left out clears what an earlier upsert set.
type StoreUpserted struct {
	StoreID    string   `json:"store_id"`
	RetailerID string   `json:"retailer_id"`
	Name       string   `json:"name"`
	Address    *string  `json:"address,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
	Timezone   *string  `json:"timezone,omitempty"` // IANA name, e.g. America/Chicago
}

// ProductUpserted is the data of product.upserted. Category is the
// category's name; a name not seen before creates the category. Like a
// store, an upsert carries the whole product.
type ProductUpserted struct {
	ProductID string  `json:"product_id"`
	Name      string  `json:"name"`
	Category  string  `json:"category"`
	Brand     *string `json:"brand,omitempty"`
	Size      *string `json:"size,omitempty"`
	GTIN      *string `json:"gtin,omitempty"`
	ImageURL  *string `json:"image_url,omitempty"`
}

// Assortment is the data of assortment.upserted (a store carries a product,
// at a price and in an aisle when given) and assortment.removed (it no
// longer does; the optional fields are not allowed there).
type Assortment struct {
	StoreID    string  `json:"store_id"`
	ProductID  string  `json:"product_id"`
	PriceCents *int64  `json:"price_cents,omitempty"`
	Aisle      *string `json:"aisle,omitempty"`
}

func (r *RetailerUpserted) validate(string) error {
	if err := ValidateID("retailer_id", r.RetailerID); err != nil {
		return err
	}
	return validateText("name", r.Name, MaxNameLength)
}

func (s *StoreUpserted) validate(string) error {
	if err := validateIDs("store_id", s.StoreID, "retailer_id", s.RetailerID); err != nil {
		return err
	}
	if err := validateText("name", s.Name, MaxNameLength); err != nil {
		return err
	}
	if err := validateOptionalText("address", s.Address, MaxAddressLength); err != nil {
		return err
	}
	switch {
	case (s.Lat == nil) != (s.Lon == nil):
		return Errorf(EINVALID, "lat and lon go together: give both or neither")
	case s.Lat != nil && !(*s.Lat >= -90 && *s.Lat <= 90):
		return Errorf(EINVALID, "lat %v is not between -90 and 90", *s.Lat)
	case s.Lon != nil && !(*s.Lon >= -180 && *s.Lon <= 180):
		return Errorf(EINVALID, "lon %v is not between -180 and 180", *s.Lon)
	}
	if s.Timezone != nil {
		return ValidateTimezone(*s.Timezone)
	}
	return nil
}

// ValidateTimezone accepts IANA time zone names ("Europe/Paris", "UTC").
func ValidateTimezone(name string) error {
	// "Local" is the server's own zone, and LoadLocation reads names with
	// dots or slashes at the ends as file paths: neither is a zone name.
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || len(name) > MaxLabelLength {
		return Errorf(EINVALID, "timezone %q is not an IANA time zone name", name)
	}
	if _, err := time.LoadLocation(name); err != nil {
		return Errorf(EINVALID, "timezone %q is not an IANA time zone name", name)
	}
	return nil
}

func (p *ProductUpserted) validate(string) error {
	if err := ValidateID("product_id", p.ProductID); err != nil {
		return err
	}
	if err := validateText("name", p.Name, MaxNameLength); err != nil {
		return err
	}
	if err := validateText("category", p.Category, MaxLabelLength); err != nil {
		return err
	}
	if err := validateOptionalText("brand", p.Brand, MaxLabelLength); err != nil {
		return err
	}
	if err := validateOptionalText("size", p.Size, MaxLabelLength); err != nil {
		return err
	}
	if p.GTIN != nil {
		if err := ValidateGTIN(*p.GTIN); err != nil {
			return err
		}
	}
	if p.ImageURL != nil {
		return ValidateImageURL(*p.ImageURL)
	}
	return nil
}

// ValidateGTIN accepts GTIN-8, -12 (UPC), -13 (EAN) and -14 codes whose
// check digit is right.
func ValidateGTIN(gtin string) error {
	switch len(gtin) {
	case 8, 12, 13, 14:
	default:
		return Errorf(EINVALID, "gtin %q is not 8, 12, 13 or 14 digits", gtin)
	}
	sum := 0
	for i := range len(gtin) {
		c := gtin[len(gtin)-1-i] // from the check digit leftwards
		if c < '0' || c > '9' {
			return Errorf(EINVALID, "gtin %q is not 8, 12, 13 or 14 digits", gtin)
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	if sum%10 != 0 {
		return Errorf(EINVALID, "gtin %q has a wrong check digit", gtin)
	}
	return nil
}

// ValidateImageURL accepts absolute http and https URLs.
func ValidateImageURL(raw string) error {
	if len(raw) > MaxURLLength {
		return Errorf(EINVALID, "image_url is longer than %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsFunc(raw, unicode.IsSpace) {
		return Errorf(EINVALID, "image_url %q is not an absolute http or https URL", raw)
	}
	return nil
}

func (a *Assortment) validate(eventType string) error {
	if err := validateIDs("store_id", a.StoreID, "product_id", a.ProductID); err != nil {
		return err
	}
	if eventType == TypeAssortmentRemoved {
		if a.PriceCents != nil || a.Aisle != nil {
			return Errorf(EINVALID, "price_cents and aisle are only allowed on %s", TypeAssortmentUpserted)
		}
		return nil
	}
	if a.PriceCents != nil && (*a.PriceCents < 0 || *a.PriceCents > MaxPriceCents) {
		return Errorf(EINVALID, "price_cents %d is not between 0 and %d", *a.PriceCents, MaxPriceCents)
	}
	return validateOptionalText("aisle", a.Aisle, MaxLabelLength)
}

// validateText checks a required human-readable field: non-empty, bounded,
// valid UTF-8 without control characters.
func validateText(name, s string, maxLen int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return Errorf(EINVALID, "missing %s", name)
	case len(s) > maxLen:
		return Errorf(EINVALID, "%s is longer than %d bytes", name, maxLen)
	case !utf8.ValidString(s):
		return Errorf(EINVALID, "%s is not valid UTF-8", name)
	case strings.ContainsFunc(s, unicode.IsControl):
		return Errorf(EINVALID, "%s contains a control character", name)
	}
	return nil
}

// validateOptionalText is validateText for an optional field: absent is
// fine, present must be valid.
func validateOptionalText(name string, s *string, maxLen int) error {
	if s == nil {
		return nil
	}
	return validateText(name, *s, maxLen)
}

// catalogKey is the record key of a catalog event: the entity's id.
func (d *Decoded) catalogKey() string {
	switch {
	case d.Retailer != nil:
		return d.Retailer.RetailerID
	case d.Store != nil:
		return d.Store.StoreID
	case d.Product != nil:
		return d.Product.ProductID
	}
	return StoreProduct{d.Assortment.StoreID, d.Assortment.ProductID}.String()
}

// RetailerReferences returns the retailers the event names, which must exist
// for it to be applied: a store's retailer.
func (d *Decoded) RetailerReferences() []string {
	if d.Store != nil {
		return []string{d.Store.RetailerID}
	}
	return nil
}

// newCatalogData sets the data pointer of a catalog event type and returns it.
func (d *Decoded) newCatalogData(eventType string) interface{ validate(string) error } {
	switch eventType {
	case TypeRetailerUpserted:
		d.Retailer = new(RetailerUpserted)
		return d.Retailer
	case TypeStoreUpserted:
		d.Store = new(StoreUpserted)
		return d.Store
	case TypeProductUpserted:
		d.Product = new(ProductUpserted)
		return d.Product
	}
	d.Assortment = new(Assortment)
	return d.Assortment
}

// Unknown is what a lookup found missing from the catalog among the
// entities a batch of events names, each set nil when none is.
type Unknown struct {
	Retailers, Stores, Products map[string]bool
}

// Reason says which entity the event names is unknown ("unknown retailer
// r-9"), "" when all are known.
func (u Unknown) Reason(d *Decoded) string {
	for _, id := range d.RetailerReferences() {
		if u.Retailers[id] {
			return "unknown retailer " + id
		}
	}
	return d.UnknownReference(u.Stores, u.Products)
}

// Created takes out of u the entity the event creates, so that the events
// after it in the same batch may name it.
func (u Unknown) Created(d *Decoded) {
	switch {
	case d.Retailer != nil:
		delete(u.Retailers, d.Retailer.RetailerID)
	case d.Store != nil:
		delete(u.Stores, d.Store.StoreID)
	case d.Product != nil:
		delete(u.Products, d.Product.ProductID)
	}
}

// None reports whether nothing is unknown.
func (u Unknown) None() bool { return u.Retailers == nil && u.Stores == nil && u.Products == nil }
