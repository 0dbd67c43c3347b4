package promtest

import (
	"strings"
	"testing"
)

func TestTotal(t *testing.T) {
	m := Parse(t, strings.NewReader(`# TYPE applied counter
applied{applier="a",result="ok"} 3
applied{applier="a",result="duplicate"} 2
applied{applier="b",result="duplicate"} 5
applied{result="duplicate"} 7
`))
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{nil, 17},
		{map[string]string{"result": "duplicate"}, 14},
		{map[string]string{"applier": "a", "result": "duplicate"}, 2},
		{map[string]string{"applier": ""}, 0}, // a label must be there, not merely empty
		{map[string]string{"applier": "c"}, 0},
	} {
		if got := m.Total("applied", tc.labels); got != tc.want {
			t.Errorf("Total(applied, %v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := m.Total("absent", nil); got != 0 {
		t.Errorf("Total of a missing metric = %v, want 0", got)
	}
}
