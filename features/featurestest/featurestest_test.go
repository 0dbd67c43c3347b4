package featurestest

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	snap := func() map[string]map[string]string {
		return map[string]map[string]string{
			"avail:s:p": {"a": "1", "ver": "17"},
			"sess:x":    {"p1": "2", "p2": ""},
			"seen:e":    {"": "1"},
		}
	}
	if d := Diff(snap(), snap()); d != "" {
		t.Errorf("equal snapshots differ: %s", d)
	}
	for _, tc := range []struct {
		name   string
		change func(map[string]map[string]string)
		want   string
	}{
		{"missing key", func(s map[string]map[string]string) { delete(s, "seen:e") }, "missing seen:e"},
		{"extra key", func(s map[string]map[string]string) { s["fo:o"] = map[string]string{"f": "1"} }, "extra fo:o"},
		{"value", func(s map[string]map[string]string) { s["sess:x"]["p1"] = "3" }, `sess:x field "p1" = "3", want "2"`},
		{"empty field missing", func(s map[string]map[string]string) { delete(s["sess:x"], "p2") }, `sess:x field "p2" missing`},
		{"empty field extra", func(s map[string]map[string]string) { s["sess:x"]["p3"] = "" }, `sess:x field "p3" = "", want none`},
	} {
		got := snap()
		tc.change(got)
		if d := Diff(got, snap()); !strings.Contains(d, tc.want) {
			t.Errorf("%s: Diff = %q, want it to say %q", tc.name, d, tc.want)
		}
	}
}

func TestDropWriterState(t *testing.T) {
	s := DropWriterState(map[string]map[string]string{
		"avail:s:p": {"a": "1", "ver": "17"},
		"sess:x":    {"ver": "2"},
	})
	if _, ok := s["avail:s:p"]["ver"]; ok || s["avail:s:p"]["a"] != "1" {
		t.Errorf("availability hash after DropWriterState: %v", s["avail:s:p"])
	}
	if s["sess:x"]["ver"] != "2" {
		t.Errorf("DropWriterState touched a field of another kind of key: %v", s["sess:x"])
	}
}
