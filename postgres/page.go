package postgres

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/aisle/aisle/aisle"
)

// Page sizes and limits for Relay-style connections.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	MaxQueryLength  = 100 // characters of a product name search
	maxCursorLength = 1024
)

// Edge is one item of a page with the cursor that points just after it.
type Edge[T any] struct {
	Cursor string
	Node   T
}

// Page is one page of a Relay connection, ordered by (name, id).
type Page[T any] struct {
	Edges       []Edge[T]
	HasNextPage bool
	// HasPreviousPage is true when the page was requested after a cursor: the
	// item the cursor points at comes before it. (Relay lets forward-only
	// pagination answer this cheaply.)
	HasPreviousPage bool
}

// StartCursor is the cursor of the first edge, nil for an empty page.
func (p Page[T]) StartCursor() *string {
	if len(p.Edges) == 0 {
		return nil
	}
	return &p.Edges[0].Cursor
}

// EndCursor is the cursor of the last edge, nil for an empty page.
func (p Page[T]) EndCursor() *string {
	if len(p.Edges) == 0 {
		return nil
	}
	return &p.Edges[len(p.Edges)-1].Cursor
}

// cursor is a position in a list ordered by (name, id). Kind names the list
// so that a cursor from one connection is refused by another.
type cursor struct {
	Kind string `json:"k"`
	Name string `json:"n"`
	ID   string `json:"i"`
}

// Cursor kinds.
const (
	storeCursor   = "store"
	productCursor = "product"
)

// encode renders the cursor opaquely: base64url of a small JSON object.
func (c cursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // three strings always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a client's `after` argument; nil or "" means "from the
// start" and returns nil.
func decodeCursor(kind string, after *string) (*cursor, error) {
	if after == nil || *after == "" {
		return nil, nil
	}
	if len(*after) > maxCursorLength {
		return nil, aisle.Errorf(aisle.EINVALID, "invalid cursor: too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(*after)
	if err != nil {
		return nil, aisle.Errorf(aisle.EINVALID, "invalid cursor %q: not a cursor returned by this API", *after)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || !validText(c.Name) || !validText(c.ID) {
		return nil, aisle.Errorf(aisle.EINVALID, "invalid cursor %q: not a cursor returned by this API", *after)
	}
	if c.Kind != kind {
		return nil, aisle.Errorf(aisle.EINVALID, "invalid cursor %q: it belongs to a %s list, not a %s list", *after, c.Kind, kind)
	}
	return &c, nil
}

// pageSize validates a client's `first` argument; nil means the default.
func pageSize(first *int) (int, error) {
	if first == nil {
		return DefaultPageSize, nil
	}
	if *first < 1 || *first > MaxPageSize {
		return 0, aisle.Errorf(aisle.EINVALID, "first must be between 1 and %d, got %d", MaxPageSize, *first)
	}
	return *first, nil
}

// searchPattern validates a product name search and returns the ILIKE
// pattern matching it as a literal substring, or "" for no search.
func searchPattern(query *string) (string, error) {
	if query == nil {
		return "", nil
	}
	q := strings.TrimSpace(*query)
	if q == "" {
		return "", nil
	}
	if !validText(q) {
		return "", aisle.Errorf(aisle.EINVALID, "query must be UTF-8 text without NUL characters")
	}
	if n := utf8.RuneCountInString(q); n > MaxQueryLength {
		return "", aisle.Errorf(aisle.EINVALID, "query must be at most %d characters, got %d", MaxQueryLength, n)
	}
	// Escape LIKE's wildcards so "50%" searches for "50%".
	escaped := make([]rune, 0, len(q)+2)
	escaped = append(escaped, '%')
	for _, r := range q {
		if r == '%' || r == '_' || r == '\\' {
			escaped = append(escaped, '\\')
		}
		escaped = append(escaped, r)
	}
	escaped = append(escaped, '%')
	return string(escaped), nil
}

// validText reports whether PostgreSQL accepts s as text.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// newPage turns up to size+1 fetched rows into a page: the extra row only
// signals that there is a next page.
func newPage[T any](rows []T, size int, hasCursor bool, kind string, key func(T) (name, id string)) Page[T] {
	p := Page[T]{HasPreviousPage: hasCursor}
	if len(rows) > size {
		rows, p.HasNextPage = rows[:size], true
	}
	p.Edges = make([]Edge[T], len(rows))
	for i, r := range rows {
		name, id := key(r)
		p.Edges[i] = Edge[T]{Cursor: cursor{Kind: kind, Name: name, ID: id}.encode(), Node: r}
	}
	return p
}
