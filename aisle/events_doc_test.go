package aisle_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisle/aisle/aisle"
)

// The event catalog (docs/events.md) documents every type the decoder
// accepts with at least one example line, and every example decodes; this
// keeps the two from drifting apart.
func TestEventCatalogMatchesTheDecoder(t *testing.T) {
	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("(?m)^## (aisle\\.[a-z]+)$|^### ([a-z_.]+)$|^```json\n(.*)\n```$")
	examples := make(map[string][]string) // type → example lines
	var topic, typ string
	for _, m := range heading.FindAllStringSubmatch(string(doc), -1) {
		switch {
		case m[1] != "":
			topic, typ = m[1], ""
		case m[2] != "":
			typ = m[2]
			if want, err := aisle.TopicFor(typ); err != nil || want != topic {
				t.Errorf("docs/events.md lists %s under %s; the decoder puts it on %q (%v)", typ, topic, want, err)
			}
		case typ != "":
			examples[typ] = append(examples[typ], m[3])
		}
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for typ, lines := range examples {
		for _, line := range lines {
			d, err := aisle.DecodeEvent([]byte(line), topicOf(t, typ), now)
			if err != nil {
				t.Errorf("an example of %s does not decode: %v\n%s", typ, err, line)
				continue
			}
			if d.Type != typ {
				t.Errorf("an example under %s is a %s", typ, d.Type)
			}
		}
	}
	for _, typ := range aisle.EventTypes() {
		if _, ok := examples[typ]; !ok {
			t.Errorf("docs/events.md has no section with an example for %s", typ)
		}
	}
	if extra := slices.DeleteFunc(mapKeys(examples), func(typ string) bool { return slices.Contains(aisle.EventTypes(), typ) }); len(extra) > 0 {
		t.Errorf("docs/events.md documents types the decoder does not list in aisle.EventTypes: %s", strings.Join(extra, ", "))
	}
}

func topicOf(t *testing.T, typ string) string {
	topic, err := aisle.TopicFor(typ)
	if err != nil {
		t.Fatal(err)
	}
	return topic
}

func mapKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
