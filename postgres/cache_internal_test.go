package postgres

import (
	"fmt"
	"testing"
)

// A full memo drops its least recently used answer, and each read's memo
// is bounded apart: a flood of pages evicts no store.
func TestLastGoodIsTypedLRUPerRead(t *testing.T) {
	t.Parallel()
	m := newMemo[int]("test", 3)
	m.remember([]string{"a", "b", "c"}, []int{1, 2, 3})
	if _, ok := m.recall([]string{"a"}); !ok {
		t.Fatal("a not remembered")
	}
	m.remember([]string{"d"}, []int{4})
	if got, ok := m.recall([]string{"a", "c", "d"}); !ok || fmt.Sprint(got) != "[1 3 4]" {
		t.Errorf("after adding d to a full memo: %v, %v; want a (just used), c and d kept", got, ok)
	}
	if _, ok := m.recall([]string{"b"}); ok {
		t.Error("b, the least recently used, was kept")
	}

	c := newLastGood()
	c.store.remember([]string{"s-1"}, []*Store{{ID: "s-1"}})
	for i := range 2 * maxLastGoodPages {
		c.storeProducts.remember([]string{lastGoodKey("s-1", i)}, []Page[Product]{{}})
	}
	if got, ok := c.store.recall([]string{"s-1"}); !ok || got[0].ID != "s-1" {
		t.Errorf("store s-1 after a flood of product pages: %v, %v; want it remembered", got, ok)
	}
	if n := c.storeProducts.answers.Len(); n != maxLastGoodPages {
		t.Errorf("%d pages remembered, bound is %d", n, maxLastGoodPages)
	}
}
