package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

// readCSV runs readCatalogCSV and describes each line's outcome.
func readCSV(t *testing.T, content string) []string {
	t.Helper()
	var got []string
	clock := func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	err := readCatalogCSV(strings.NewReader(content), clock, func(line int, d *aisle.Decoded, err error) error {
		if err != nil {
			got = append(got, fmt.Sprintf("%d: %s", line, aisle.ErrorMessage(err)))
		} else {
			got = append(got, fmt.Sprintf("%d: %s %s %s %s", line, d.Type, d.Key(), d.Time.Format(time.RFC3339), d.Data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadCatalogCSV(t *testing.T) {
	t.Parallel()
	got := readCSV(t, `store_id,product_id,price_cents,aisle,removed,time
s-1,p-1,399,7,,
s-1,p-2,,,true,2026-11-30T08:00:00Z
s-1,p-3,-5,,,
s-1,p-4,abc,,,
s-1,p-5,1,,maybe,
s-1,p-6
"s-1","p-7","0","Aisle ""A""",false,
`)
	want := []string{
		`2: assortment.upserted s-1:p-1 2026-12-01T00:00:00Z {"aisle":"7","price_cents":399,"product_id":"p-1","store_id":"s-1"}`,
		`3: assortment.removed s-1:p-2 2026-11-30T08:00:00Z {"product_id":"p-2","store_id":"s-1"}`,
		`4: price_cents -5 is not between 0 and 100000000`,
		`5: price_cents "abc" is not a number`,
		`6: removed "maybe" is not true or false`,
		`7: 2 cells, the header has 6`,
		`8: assortment.upserted s-1:p-7 2026-12-01T00:00:00Z {"aisle":"Aisle \"A\"","price_cents":0,"product_id":"p-7","store_id":"s-1"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for header, wantType := range map[string]string{
		"retailer_id,name":                aisle.TypeRetailerUpserted,
		"store_id,retailer_id,name":       aisle.TypeStoreUpserted,
		"product_id,name,category,brand":  aisle.TypeProductUpserted,
		"product_id,store_id,price_cents": aisle.TypeAssortmentUpserted,
	} {
		if typ, err := csvType(strings.Split(header, ",")); err != nil || typ != wantType {
			t.Errorf("header %s: %s, %v; want %s", header, typ, err, wantType)
		}
	}
	if _, err := csvType([]string{"name", "category"}); err == nil {
		t.Error("a header without ids was accepted")
	}
}
